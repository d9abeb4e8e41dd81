//! The compile-time check of a template: every helper call names a known helper, used as it
//! can be (block or value), with a number of arguments it takes — so a typo is a configuration
//! error, not a failure on every request.

use handlebars::template::{HelperTemplate, Parameter, Template, TemplateElement};
use handlebars::Path;
use serde_json::Value as Json;

use super::date::{parse_offset, OFFSET_EXPECTED};
use super::helpers::{spec, Spec, Usage, HELPERS};
use super::hmac;
use super::text::HASH_ALGORITHMS;

/// Which templates are checked: a listener's (trace key, data URI, success body) or a
/// handshake's answer, the only ones that may call `hmac_sha256` — and only with a key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// Trace key, data URI, success body.
    Listener,
    /// A handshake's answer; `keyed`: a key for `hmac_sha256` is configured.
    Handshake {
        /// Whether `hmac_sha256` has a key.
        keyed: bool,
    },
}

/// `hmac_sha256` as the check sees it (registered by `TemplateSet::for_handshake`, with its key).
const HMAC_SPEC: Spec = Spec {
    name: hmac::NAME,
    min_args: 2,
    max_args: Some(2),
    usage: Usage::Value,
    function: None,
};

/// A problem found in a template, with where it is when known.
pub(super) struct Problem {
    /// What is wrong.
    pub(super) message: String,
    /// Line and column, when known.
    pub(super) at: Option<(usize, usize)>,
}

impl From<String> for Problem {
    fn from(message: String) -> Problem {
        Problem { message, at: None }
    }
}

/// Where a helper is called from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Position {
    Expression,
    Block,
    Subexpression,
}

/// Checks every element of `template`, rewriting bare field names that a helper shares.
pub(super) fn check_template(template: &mut Template, scope: Scope) -> Result<(), Problem> {
    for (index, element) in template.elements.iter_mut().enumerate() {
        check_element(element, scope).map_err(|mut problem| {
            if problem.at.is_none() {
                problem.at = template.mapping.get(index).map(|mapping| (mapping.0, mapping.1));
            }
            problem
        })?;
    }
    Ok(())
}

fn check_element(element: &mut TemplateElement, scope: Scope) -> Result<(), Problem> {
    match element {
        TemplateElement::Expression(helper) | TemplateElement::HtmlExpression(helper) => {
            if helper.params.is_empty() && helper.hash.is_empty() {
                return check_field(helper, scope);
            }
            check_call(helper, Position::Expression, scope)
        }
        TemplateElement::HelperBlock(helper) => check_call(helper, Position::Block, scope),
        TemplateElement::DecoratorExpression(_) | TemplateElement::DecoratorBlock(_) => {
            Err(String::from("decorators (`{{*…}}`) are not supported").into())
        }
        TemplateElement::PartialExpression(_) | TemplateElement::PartialBlock(_) => {
            Err(String::from("partials (`{{> …}}`) are not supported").into())
        }
        _ => Ok(()),
    }
}

/// A bare `{{name}}`: a field. Handlebars would call a helper of that name instead, so the
/// name is rewritten to the equivalent path `this.name`, which no helper matches.
fn check_field(helper: &mut HelperTemplate, scope: Scope) -> Result<(), Problem> {
    if matches!(helper.name, Parameter::Subexpression(_)) {
        // `{{(join "_" a b)}}`: the value of a helper call.
        return check_parameter(&mut helper.name, scope);
    }
    let named = helper
        .name
        .as_name()
        .and_then(|name| spec(name).or((name == hmac::NAME).then_some(&HMAC_SPEC)));
    if let Some(spec) = named {
        let path = Path::parse(&format!("this.{}", spec.name))
            .map_err(|error| format!("cannot read field `{}`: {}", spec.name, error.reason()))?;
        helper.name = Parameter::Path(path);
    }
    Ok(())
}

fn check_call(helper: &mut HelperTemplate, position: Position, scope: Scope) -> Result<(), Problem> {
    let Some(name) = helper.name.as_name().map(str::to_string) else {
        return Err(String::from("a helper must be called by its name").into());
    };
    let spec = match (spec(&name), scope) {
        (Some(spec), _) => spec,
        (None, Scope::Handshake { keyed: true }) if name == hmac::NAME => &HMAC_SPEC,
        (None, Scope::Handshake { keyed: false }) if name == hmac::NAME => {
            return Err(format!(
                "`{name}` needs a key: set the rule's `secret`, or give the listener a verification secret"
            )
            .into())
        }
        (None, Scope::Listener) if name == hmac::NAME => {
            return Err(format!("`{name}` is only for handshake answers").into())
        }
        (None, _) => {
            let known: Vec<&str> = HELPERS.iter().map(|spec| spec.name).collect();
            return Err(format!("unknown helper `{name}`; helpers are {}", known.join(", ")).into());
        }
    };
    match (spec.usage, position) {
        (Usage::Value, Position::Block) => {
            return Err(format!("`{name}` is not a block helper: write {{{{{name} …}}}}, not {{{{#{name} …}}}}").into())
        }
        (Usage::Block, Position::Expression | Position::Subexpression) => {
            return Err(format!("`{name}` is a block helper: write {{{{#{name} …}}}}…{{{{/{name}}}}}").into())
        }
        _ => {}
    }
    let count = helper.params.len();
    if count < spec.min_args || spec.max_args.is_some_and(|max| count > max) {
        let expected = match spec.max_args {
            Some(max) if max == spec.min_args => format!("{max}"),
            Some(max) => format!("{} to {max}", spec.min_args),
            None => format!("at least {}", spec.min_args),
        };
        let noun = if spec.max_args == Some(1) {
            "argument"
        } else {
            "arguments"
        };
        return Err(format!("`{name}` takes {expected} {noun}, got {count}").into());
    }
    if spec.function.is_some() && !helper.hash.is_empty() {
        return Err(format!("`{name}` takes no `key=value` arguments").into());
    }
    check_literals(spec.name, &helper.params)?;
    for param in helper.params.iter_mut().chain(helper.hash.values_mut()) {
        check_parameter(param, scope)?;
    }
    for template in [&mut helper.template, &mut helper.inverse].into_iter().flatten() {
        check_template(template, scope)?;
    }
    Ok(())
}

fn check_parameter(param: &mut Parameter, scope: Scope) -> Result<(), Problem> {
    if let Parameter::Subexpression(subexpression) = param {
        if let TemplateElement::Expression(helper) = subexpression.element.as_mut() {
            return check_call(helper, Position::Subexpression, scope);
        }
    }
    Ok(())
}

/// Literal arguments that can be checked before any record arrives.
fn check_literals(name: &str, params: &[Parameter]) -> Result<(), String> {
    let literal = |index: usize| match params.get(index) {
        Some(Parameter::Literal(Json::String(text))) => Some(text.as_str()),
        _ => None,
    };
    match name {
        "hash" => match literal(0) {
            Some(algorithm) if !HASH_ALGORITHMS.contains(&algorithm.to_ascii_lowercase().as_str()) => {
                Err("`hash`: unsupported algorithm; use sha1, sha256 or sha512".into())
            }
            _ => Ok(()),
        },
        hmac::NAME => match literal(1) {
            Some(encoding) if !hmac::ENCODINGS.contains(&encoding) => {
                Err(format!("`{name}`: the encoding must be \"hex\" or \"base64\""))
            }
            _ => Ok(()),
        },
        "dateFormat" => match literal(3) {
            Some(offset) if !offset.is_empty() && parse_offset(offset).is_none() => {
                Err(format!("`dateFormat`: {OFFSET_EXPECTED}"))
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::templates::tests::ok;
    use crate::templates::validate;
    use serde_json::json;

    #[test]
    fn unknown_helpers_and_bad_arity_are_refused_at_compile_time() {
        for (template, expected) in [
            ("{{nosuchhelper a}}", "unknown helper `nosuchhelper`"),
            // `log` would write record content to the server's log.
            ("{{log a}}", "unknown helper `log`"),
            ("x {{join \"_\" (nosuchhelper a) b}}", "unknown helper `nosuchhelper`"),
            ("{{#nosuchhelper a}}x{{/nosuchhelper}}", "unknown helper `nosuchhelper`"),
            (
                "{{#if a}}{{#each b}}{{nosuchhelper this}}{{/each}}{{/if}}",
                "unknown helper `nosuchhelper`",
            ),
            (
                "{{#if a}}x{{else}}{{nosuchhelper b}}{{/if}}",
                "unknown helper `nosuchhelper`",
            ),
            (
                "{{#if a}}x{{else if (nosuchhelper b)}}y{{/if}}",
                "unknown helper `nosuchhelper`",
            ),
            ("{{lowercase a b}}", "`lowercase` takes 1 argument, got 2"),
            ("{{join \"_\"}}", "`join` takes at least 2 arguments, got 1"),
            ("{{substring a}}", "`substring` takes 2 to 3 arguments, got 1"),
            ("{{#join \"_\" a}}x{{/join}}", "`join` is not a block helper"),
            ("{{if a}}", "`if` is a block helper"),
            ("{{eq a}}", "`eq` takes 2 arguments, got 1"),
            ("{{trim a x=1}}", "takes no `key=value` arguments"),
            ("{{hash \"md5\" a}}", "unsupported algorithm"),
            ("{{dateFormat \"YYYY\" a \"\" \"Europe/Paris\"}}", "the offset must be"),
            ("{{> other}}", "partials"),
            ("{{#*inline \"x\"}}y{{/inline}}", "decorators"),
            ("{{#if}", "invalid template"),
        ] {
            let error = validate(template).expect_err(template);
            assert!(error.contains(expected), "{template}: {error}");
        }
        let error = validate("ab\n  {{nosuchhelper a}}").unwrap_err();
        assert!(error.contains("line 2, column 3"), "{error}");
    }

    #[test]
    fn known_helpers_and_plain_fields_compile() {
        for template in [
            "{{order_id}}",
            "{{a.b.[0]}}-{{{raw_text}}}",
            r#"{{join "_" a b}}"#,
            "{{#if (eq a 1)}}one{{else}}{{#each items}}{{@index}}{{this}}{{/each}}{{/if}}",
            "{{#with customer}}{{lookup this \"id\"}}{{/with}}",
            "{{#unless (and a (not b))}}{{len list}}{{/unless}}",
            "{{#if a includeZero=true}}z{{/if}}",
            "{{! a comment }}{{lowercase (trim a)}}",
        ] {
            validate(template).unwrap_or_else(|error| panic!("{template}: {error}"));
        }
    }

    #[test]
    fn a_bare_name_is_a_field_even_when_a_helper_has_that_name() {
        let data = json!({"default": "d", "hash": "h", "len": 3, "items": [{"trim": "t"}]});
        assert_eq!(
            ok("{{default}}-{{{hash}}}-{{len}}-{{#each items}}{{trim}}{{/each}}", data),
            "d-h-3-t"
        );
        assert_eq!(ok("[{{default}}]", json!({})), "[]");
    }
}
