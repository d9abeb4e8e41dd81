//! The helpers a template may call: hookpipe's own (functions from arguments to a value) and
//! handlebars' built-ins, each with the arguments it takes and how it may be used.

use handlebars::{Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, ScopedJson};
use serde_json::Value as Json;

use super::args::Args;
use super::arithmetic::{add, divide, multiply, subtract};
use super::date::date_format;
use super::text::{base64_encode, default, hash, join, json_serialize, lowercase, replace, substring, trim, uppercase};

/// How a helper may be called.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Usage {
    /// `{{x a}}` or `(x a)`: it gives a value.
    Value,
    /// `{{#x a}}…{{/x}}` only.
    Block,
    /// Either.
    Any,
}

/// A helper of ours: its arguments to its value.
pub(super) type HelperFn = fn(&Args<'_, '_>) -> Result<Json, RenderError>;

/// One helper: its name, its arguments and, for hookpipe's own, its function.
pub(super) struct Spec {
    /// The name a template calls it by.
    pub(super) name: &'static str,
    /// Fewest arguments.
    pub(super) min_args: usize,
    /// Most arguments; `None`: any number.
    pub(super) max_args: Option<usize>,
    /// Block, value or either.
    pub(super) usage: Usage,
    /// `None`: built into handlebars.
    pub(super) function: Option<HelperFn>,
}

const fn builtin(name: &'static str, min_args: usize, max_args: Option<usize>, usage: Usage) -> Spec {
    Spec {
        name,
        min_args,
        max_args,
        usage,
        function: None,
    }
}

const fn ours(name: &'static str, min_args: usize, max_args: Option<usize>, function: HelperFn) -> Spec {
    Spec {
        name,
        min_args,
        max_args,
        usage: Usage::Value,
        function: Some(function),
    }
}

/// Every helper a template may call: hookpipe's, then handlebars' built-ins (its
/// `setup_builtins`; the `string_helpers` feature is off) except `log`, which would write
/// record content (and whatever secrets it holds) to the server's log.
pub(super) const HELPERS: &[Spec] = &[
    ours("join", 2, None, join),
    ours("lowercase", 1, Some(1), lowercase),
    ours("uppercase", 1, Some(1), uppercase),
    ours("trim", 1, Some(1), trim),
    ours("replace", 3, Some(3), replace),
    ours("substring", 2, Some(3), substring),
    ours("default", 2, Some(2), default),
    ours("dateFormat", 2, Some(4), date_format),
    ours("add", 2, Some(2), add),
    ours("subtract", 2, Some(2), subtract),
    ours("multiply", 2, Some(2), multiply),
    ours("divide", 2, Some(2), divide),
    ours("jsonSerialize", 1, Some(1), json_serialize),
    ours("base64", 1, Some(1), base64_encode),
    ours("hash", 2, Some(2), hash),
    builtin("if", 1, Some(1), Usage::Block),
    builtin("unless", 1, Some(1), Usage::Block),
    builtin("each", 1, Some(1), Usage::Block),
    builtin("with", 1, Some(1), Usage::Block),
    builtin("raw", 0, None, Usage::Block),
    builtin("lookup", 2, Some(2), Usage::Value),
    builtin("eq", 2, Some(2), Usage::Any),
    builtin("ne", 2, Some(2), Usage::Any),
    builtin("gt", 2, Some(2), Usage::Any),
    builtin("gte", 2, Some(2), Usage::Any),
    builtin("lt", 2, Some(2), Usage::Any),
    builtin("lte", 2, Some(2), Usage::Any),
    builtin("and", 1, None, Usage::Any),
    builtin("or", 1, None, Usage::Any),
    builtin("not", 1, Some(1), Usage::Any),
    builtin("len", 1, Some(1), Usage::Value),
];

/// The helper called `name`, if there is one.
pub(super) fn spec(name: &str) -> Option<&'static Spec> {
    HELPERS.iter().find(|spec| spec.name == name)
}

/// One of hookpipe's helpers: a function from its arguments to a value, so it composes in
/// subexpressions (`{{join "_" (lowercase a) b}}`).
pub(super) struct ValueHelper {
    /// Its name, for error messages.
    pub(super) name: &'static str,
    /// What it computes.
    pub(super) function: HelperFn,
}

impl HelperDef for ValueHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        helper: &Helper<'rc>,
        registry: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let args = Args {
            helper: self.name,
            params: helper.params(),
            strict: registry.strict_mode(),
        };
        (self.function)(&args).map(ScopedJson::Derived)
    }
}
