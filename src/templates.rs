//! Listener templates (trace key, data URI, response body): the handlebars registry with
//! hookpipe's helpers, and the compile-time check that makes a template naming an unknown
//! helper — or calling one with the wrong number of arguments — a configuration error
//! instead of a failure on every request.
//!
//! Pure: no actix types. `config.rs` validates with [`validate`]; `listener.rs` compiles and
//! renders with [`TemplateSet`].

use base64::Engine as _;
use handlebars::template::{HelperTemplate, Parameter, Template, TemplateElement};
use handlebars::{
    Context, Handlebars, Helper, HelperDef, Path, PathAndJson, RenderContext, RenderError, RenderErrorReason,
    ScopedJson,
};
use serde_json::{Number, Value as Json};
use sha2::Digest;

/// A listener's compiled templates, each under a name, rendered with every helper.
pub struct TemplateSet {
    registry: Handlebars<'static>,
}

impl TemplateSet {
    /// An empty set. `strict`: a missing field is a render error instead of an empty value.
    pub fn new(strict: bool) -> TemplateSet {
        let mut registry = Handlebars::new();
        // Records are data, not HTML: `{{x}}` must not turn `&` into `&amp;`.
        registry.register_escape_fn(handlebars::no_escape);
        registry.set_strict_mode(strict);
        for spec in HELPERS {
            if let Some(function) = spec.function {
                registry.register_helper(
                    spec.name,
                    Box::new(ValueHelper {
                        name: spec.name,
                        function,
                    }),
                );
            }
        }
        TemplateSet { registry }
    }

    /// Compiles and checks `source` (see [`compile`]) and adds it as `name`.
    pub fn add(&mut self, name: &str, source: &str) -> Result<(), String> {
        let template = compile(source)?;
        self.registry.register_template(name, template);
        Ok(())
    }

    /// Whether a template was added as `name`.
    pub fn has(&self, name: &str) -> bool {
        self.registry.has_template(name)
    }

    /// Renders template `name` over `data`; the error is a short reason without record content.
    pub fn render<T: serde::Serialize>(&self, name: &str, data: &T) -> Result<String, String> {
        self.registry
            .render(name, data)
            .map_err(|error| error.reason().to_string())
    }
}

/// Checks that `source` parses and calls only known helpers with a valid number of arguments.
pub fn validate(source: &str) -> Result<(), String> {
    compile(source).map(drop)
}

/// Parses `source` and checks every helper call in it: an expression with arguments, a block
/// `{{#x}}` or a subexpression `(x …)` must name a known helper, used as that helper can be
/// (block or value), with a number of arguments it takes. A bare `{{name}}` is a field, even
/// when a helper has that name (a record may well have a `default` or `hash` field).
pub fn compile(source: &str) -> Result<Template, String> {
    let mut template = Template::compile(source).map_err(|error| invalid(error.pos(), &error.reason().to_string()))?;
    check_template(&mut template).map_err(|problem| invalid(problem.at, &problem.message))?;
    Ok(template)
}

fn invalid(at: Option<(usize, usize)>, message: &str) -> String {
    match at {
        Some((line, column)) => format!("invalid template at line {line}, column {column}: {message}"),
        None => format!("invalid template: {message}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The helpers and what they accept

/// How a helper may be called.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Usage {
    /// `{{x a}}` or `(x a)`: it gives a value.
    Value,
    /// `{{#x a}}…{{/x}}` only.
    Block,
    /// Either.
    Any,
}

type HelperFn = fn(&Args<'_, '_>) -> Result<Json, RenderError>;

/// One helper: its name, its arguments and, for hookpipe's own, its function.
struct Spec {
    name: &'static str,
    min_args: usize,
    max_args: Option<usize>,
    usage: Usage,
    /// `None`: built into handlebars.
    function: Option<HelperFn>,
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
const HELPERS: &[Spec] = &[
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

fn spec(name: &str) -> Option<&'static Spec> {
    HELPERS.iter().find(|spec| spec.name == name)
}

/// One of hookpipe's helpers: a function from its arguments to a value, so it composes in
/// subexpressions (`{{join "_" (lowercase a) b}}`).
struct ValueHelper {
    name: &'static str,
    function: HelperFn,
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

/// The arguments of one helper call.
struct Args<'a, 'rc> {
    helper: &'static str,
    params: &'a [PathAndJson<'rc>],
    strict: bool,
}

impl Args<'_, '_> {
    /// A render error naming the helper. Messages name types, never record content.
    fn error(&self, message: impl std::fmt::Display) -> RenderError {
        RenderErrorReason::Other(format!("{}: {message}", self.helper)).into()
    }

    /// Argument `index`: `None` when absent or a missing field (an error in strict mode).
    fn value(&self, index: usize) -> Result<Option<&Json>, RenderError> {
        match self.params.get(index) {
            None => Ok(None),
            Some(param) if param.is_value_missing() => {
                if self.strict {
                    let field = param.relative_path().map(String::as_str).unwrap_or("?");
                    Err(self.error(format_args!("argument {} (`{field}`) is missing", index + 1)))
                } else {
                    Ok(None)
                }
            }
            Some(param) => Ok(Some(param.value())),
        }
    }

    /// Argument `index` as text: strings as they are, numbers and booleans written out,
    /// missing or null as "".
    fn text(&self, index: usize) -> Result<String, RenderError> {
        match self.value(index)? {
            None | Some(Json::Null) => Ok(String::new()),
            Some(value) => scalar_text(value).ok_or_else(|| {
                self.error(format_args!(
                    "argument {} must be text, a number or a boolean, not {}",
                    index + 1,
                    type_name(value)
                ))
            }),
        }
    }

    /// Argument `index` as a number: a JSON number or a string that is one (XML and form
    /// values are always strings).
    fn number(&self, index: usize) -> Result<Num, RenderError> {
        let value = self.value(index)?;
        let number = match value {
            Some(Json::Number(number)) => Num::from_json(number),
            Some(Json::String(text)) => Num::parse(text.trim()),
            _ => None,
        };
        number.ok_or_else(|| {
            self.error(format_args!(
                "argument {} must be a number, not {}",
                index + 1,
                value.map_or("a missing value", |value| match value {
                    Json::String(_) => "text that is not a number",
                    other => type_name(other),
                })
            ))
        })
    }

    /// Argument `index` as an integer (char indices).
    fn integer(&self, index: usize) -> Result<i64, RenderError> {
        match self.number(index)? {
            Num::Int(value) => Ok(value),
            Num::Float(_) => Err(self.error(format_args!("argument {} must be a whole number", index + 1))),
        }
    }
}

fn scalar_text(value: &Json) -> Option<String> {
    match value {
        Json::String(text) => Some(text.clone()),
        Json::Number(number) => Some(number.to_string()),
        Json::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn type_name(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "text",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// `{{join "_" a b}}`: the values after the separator, arrays flattened, missing and null
/// values skipped, joined by the separator.
fn join(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    fn collect(args: &Args<'_, '_>, value: &Json, parts: &mut Vec<String>) -> Result<(), RenderError> {
        match value {
            Json::Null => Ok(()),
            Json::Array(items) => items.iter().try_for_each(|item| collect(args, item, parts)),
            Json::Object(_) => Err(args.error("cannot join an object")),
            scalar => {
                parts.extend(scalar_text(scalar));
                Ok(())
            }
        }
    }
    let separator = args.text(0)?;
    let mut parts = Vec::new();
    for index in 1..args.params.len() {
        if let Some(value) = args.value(index)? {
            collect(args, value, &mut parts)?;
        }
    }
    Ok(Json::String(parts.join(&separator)))
}

fn lowercase(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    Ok(Json::String(args.text(0)?.to_lowercase()))
}

fn uppercase(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    Ok(Json::String(args.text(0)?.to_uppercase()))
}

fn trim(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    Ok(Json::String(args.text(0)?.trim().to_string()))
}

/// `{{replace value from to}}`: every occurrence of `from` replaced by `to`.
fn replace(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    let from = args.text(1)?;
    if from.is_empty() {
        return Err(args.error("the text to replace must not be empty"));
    }
    Ok(Json::String(args.text(0)?.replace(&from, &args.text(2)?)))
}

/// `{{substring value start [end]}}`: characters `start..end`, both clamped to the text (as
/// JavaScript's `substring`: negative is 0, and start and end are swapped when reversed).
fn substring(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    let text = args.text(0)?;
    let length = text.chars().count() as i64;
    let start = args.integer(1)?.clamp(0, length);
    let end = match args.params.get(2) {
        Some(_) => args.integer(2)?.clamp(0, length),
        None => length,
    };
    let (from, to) = (start.min(end) as usize, start.max(end) as usize);
    Ok(Json::String(text.chars().skip(from).take(to - from).collect()))
}

/// `{{default value fallback}}`: the fallback when the value is missing, null or "".
/// A missing value is never a strict-mode error here: providing for it is the point.
fn default(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    let value = args
        .params
        .first()
        .filter(|param| !param.is_value_missing())
        .map(|param| param.value());
    match value {
        None | Some(Json::Null) => Ok(args.value(1)?.cloned().unwrap_or(Json::Null)),
        Some(Json::String(text)) if text.is_empty() => Ok(args.value(1)?.cloned().unwrap_or(Json::Null)),
        Some(value) => Ok(value.clone()),
    }
}

/// `{{jsonSerialize value}}`: the value as compact JSON (a missing value is `null`).
fn json_serialize(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    let value = args.value(0)?.unwrap_or(&Json::Null);
    serde_json::to_string(value)
        .map(Json::String)
        .map_err(|_| args.error("value does not serialize"))
}

/// `{{base64 value}}`: standard base64 (with padding) of the text's UTF-8 bytes.
fn base64_encode(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    Ok(Json::String(
        base64::engine::general_purpose::STANDARD.encode(args.text(0)?.as_bytes()),
    ))
}

/// Digest algorithms of `hash`, by name.
const HASH_ALGORITHMS: &[&str] = &["sha1", "sha256", "sha512"];

/// `{{hash "sha256" value}}`: the lower-case hex digest of the text's UTF-8 bytes.
fn hash(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    let algorithm = args.text(0)?.to_ascii_lowercase();
    let bytes = args.text(1)?;
    let digest = match algorithm.as_str() {
        "sha1" => sha1::Sha1::digest(bytes.as_bytes()).to_vec(),
        "sha256" => sha2::Sha256::digest(bytes.as_bytes()).to_vec(),
        "sha512" => sha2::Sha512::digest(bytes.as_bytes()).to_vec(),
        _ => return Err(args.error("unsupported algorithm; use sha1, sha256 or sha512")),
    };
    Ok(Json::String(digest.iter().map(|byte| format!("{byte:02x}")).collect()))
}

// ---------------------------------------------------------------------------------------------
// Arithmetic

/// A number as the arithmetic helpers see it: integers stay integers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn from_json(number: &Number) -> Option<Num> {
        match number.as_i64() {
            Some(value) => Some(Num::Int(value)),
            None => number.as_f64().filter(|value| value.is_finite()).map(Num::Float),
        }
    }

    fn parse(text: &str) -> Option<Num> {
        if let Ok(value) = text.parse::<i64>() {
            return Some(Num::Int(value));
        }
        // Rust's float syntax also takes `inf`, `NaN` and `1e5`; only finite values count.
        text.parse::<f64>()
            .ok()
            .filter(|value| value.is_finite())
            .map(Num::Float)
    }

    fn as_f64(self) -> f64 {
        match self {
            Num::Int(value) => value as f64,
            Num::Float(value) => value,
        }
    }
}

/// A result as JSON: a float that is a whole number (within 2^53) is written as an integer.
fn num_to_json(args: &Args<'_, '_>, number: Num) -> Result<Json, RenderError> {
    match number {
        Num::Int(value) => Ok(Json::from(value)),
        Num::Float(value) if !value.is_finite() => Err(args.error("result is not a finite number")),
        Num::Float(value) if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 => {
            Ok(Json::from(value as i64))
        }
        Num::Float(value) => Number::from_f64(value)
            .map(Json::Number)
            .ok_or_else(|| args.error("result is not a finite number")),
    }
}

fn arithmetic(
    args: &Args<'_, '_>,
    integer: fn(i64, i64) -> Option<i64>,
    float: fn(f64, f64) -> f64,
) -> Result<Json, RenderError> {
    let (left, right) = (args.number(0)?, args.number(1)?);
    let result = match (left, right) {
        // On overflow, fall back to floating point like any JSON consumer would.
        (Num::Int(a), Num::Int(b)) => integer(a, b).map_or_else(|| Num::Float(float(a as f64, b as f64)), Num::Int),
        _ => Num::Float(float(left.as_f64(), right.as_f64())),
    };
    num_to_json(args, result)
}

fn add(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    arithmetic(args, i64::checked_add, |a, b| a + b)
}

fn subtract(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    arithmetic(args, i64::checked_sub, |a, b| a - b)
}

fn multiply(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    arithmetic(args, i64::checked_mul, |a, b| a * b)
}

/// `{{divide a b}}`: an integer when it divides exactly; dividing by zero is an error.
fn divide(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    if args.number(1)?.as_f64() == 0.0 {
        return Err(args.error("division by zero"));
    }
    arithmetic(
        args,
        |a, b| {
            a.checked_rem(b)
                .filter(|rest| *rest == 0)
                .and_then(|_| a.checked_div(b))
        },
        |a, b| a / b,
    )
}

// ---------------------------------------------------------------------------------------------
// Dates

const MS_PER_DAY: i64 = 86_400_000;

/// `{{dateFormat format date [input_format] [offset]}}`: `date` (an RFC 3339 / ISO 8601
/// string, `YYYY-MM-DD`, epoch milliseconds as a number, or text in `input_format`) written
/// in `format` at the fixed UTC offset `offset` (default UTC). A date without an offset of its
/// own is taken to be at `offset`.
fn date_format(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    let format = args.text(0)?;
    let input_format = args.text(2)?;
    let offset_ms = match args.text(3)? {
        offset if offset.is_empty() => 0,
        offset => parse_offset(&offset).ok_or_else(|| args.error(OFFSET_EXPECTED))?,
    };
    let instant_ms = match args.value(1)? {
        None | Some(Json::Null) => return Err(args.error("no date")),
        Some(Json::Number(number)) => epoch_number(number, &input_format),
        Some(Json::String(text)) if input_format.is_empty() => parse_iso_date(text.trim(), offset_ms),
        Some(Json::String(text)) => parse_with_format(text.trim(), &input_format, offset_ms),
        Some(other) => {
            return Err(args.error(format_args!(
                "the date must be text or a number, not {}",
                type_name(other)
            )))
        }
    }
    .ok_or_else(|| args.error("the date is not a valid date in the expected format"))?;
    format_date(instant_ms, offset_ms, &format)
        .map(Json::String)
        .ok_or_else(|| args.error("the date is outside the years 0000-9999"))
}

const OFFSET_EXPECTED: &str = "the offset must be `Z`, `UTC` or like `+02:00`, `-0530`, `+02`";

/// Epoch milliseconds, or seconds when the input format is `X`.
fn epoch_number(number: &Number, input_format: &str) -> Option<i64> {
    let scale = if input_format == "X" { 1000.0 } else { 1.0 };
    let value = number.as_f64()? * scale;
    // ±10^15 ms is ±31,000 years: beyond it the civil math below has no meaning anyway.
    (value.is_finite() && value.abs() < 1e15).then(|| value.floor() as i64)
}

/// `+02:00`, `-0530`, `+02`, `Z` or `UTC` → milliseconds east of UTC.
fn parse_offset(text: &str) -> Option<i64> {
    if text.eq_ignore_ascii_case("z") || text.eq_ignore_ascii_case("utc") {
        return Some(0);
    }
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = text[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    if text[1..].contains(':') && (digits.len() != 4 || text.len() != 6 || &text[3..4] != ":") {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    (hours <= 23 && minutes <= 59).then_some(sign * (hours * 60 + minutes) * 60_000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The fields of a civil date-time, as parsed.
struct Civil {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    millisecond: i64,
}

impl Civil {
    /// Milliseconds since the epoch of this local time at `offset_ms`, if the fields are valid.
    fn to_epoch_ms(&self, offset_ms: i64) -> Option<i64> {
        let valid = (0..=9999).contains(&self.year)
            && (1..=12).contains(&self.month)
            && (1..=days_in_month(self.year, self.month)).contains(&self.day)
            && (0..=23).contains(&self.hour)
            && (0..=59).contains(&self.minute)
            // 60: a leap second, as RFC 3339 allows; it reads as the next minute's first second.
            && (0..=60).contains(&self.second)
            && (0..=999).contains(&self.millisecond);
        let local = days_from_civil(self.year, self.month, self.day) * MS_PER_DAY
            + ((self.hour * 60 + self.minute) * 60 + self.second) * 1000
            + self.millisecond;
        valid.then_some(local - offset_ms)
    }
}

/// A cursor over the date text being parsed.
struct Scanner<'a> {
    rest: &'a str,
}

impl Scanner<'_> {
    fn digits(&mut self, count: usize) -> Option<i64> {
        let digits = self.rest.get(..count)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.rest = &self.rest[count..];
        digits.parse().ok()
    }

    fn eat(&mut self, prefix: &str) -> bool {
        match self.rest.strip_prefix(prefix) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn eat_any(&mut self, choices: &[char]) -> bool {
        match self.rest.chars().next() {
            Some(c) if choices.contains(&c) => {
                self.rest = &self.rest[c.len_utf8()..];
                true
            }
            _ => false,
        }
    }

    /// An optionally signed integer, as long as it goes.
    fn integer(&mut self) -> Option<i64> {
        let length = self
            .rest
            .char_indices()
            .find(|(index, c)| !(c.is_ascii_digit() || (*index == 0 && *c == '-')))
            .map_or(self.rest.len(), |(index, _)| index);
        let value = self.rest[..length].parse().ok()?;
        self.rest = &self.rest[length..];
        Some(value)
    }

    /// `Z`, `z` or `±HH:MM` / `±HHMM` / `±HH`, if one is next.
    fn offset(&mut self) -> Option<i64> {
        if self.eat_any(&['Z', 'z']) {
            return Some(0);
        }
        let length = self
            .rest
            .char_indices()
            .find(|(index, c)| *index > 0 && !(c.is_ascii_digit() || *c == ':'))
            .map_or(self.rest.len(), |(index, _)| index);
        let offset = parse_offset(self.rest.get(..length)?)?;
        self.rest = &self.rest[length..];
        Some(offset)
    }
}

/// `YYYY-MM-DD`, optionally followed by `T` (or a space) and `HH:mm[:ss[.fraction]]`, then an
/// optional offset; without one the time is at `default_offset_ms`.
fn parse_iso_date(text: &str, default_offset_ms: i64) -> Option<i64> {
    let mut scanner = Scanner { rest: text };
    let mut civil = Civil {
        year: scanner.digits(4)?,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        millisecond: 0,
    };
    (scanner.eat("-")).then_some(())?;
    civil.month = scanner.digits(2)?;
    (scanner.eat("-")).then_some(())?;
    civil.day = scanner.digits(2)?;
    let mut offset_ms = default_offset_ms;
    if scanner.eat_any(&['T', 't', ' ']) {
        civil.hour = scanner.digits(2)?;
        scanner.eat(":").then_some(())?;
        civil.minute = scanner.digits(2)?;
        if scanner.eat(":") {
            civil.second = scanner.digits(2)?;
            if scanner.eat_any(&['.', ',']) {
                let fraction_length = scanner.rest.bytes().take_while(u8::is_ascii_digit).count();
                if fraction_length == 0 {
                    return None;
                }
                // Milliseconds: further digits are truncated.
                let fraction = &scanner.rest[..fraction_length];
                civil.millisecond = format!("{:0<3}", &fraction[..fraction_length.min(3)]).parse().ok()?;
                scanner.rest = &scanner.rest[fraction_length..];
            }
        }
        if !scanner.rest.is_empty() {
            offset_ms = scanner.offset()?;
        }
    }
    scanner.rest.is_empty().then_some(())?;
    civil.to_epoch_ms(offset_ms)
}

/// Date tokens, longest first so that `SSS` is not read as text.
const DATE_TOKENS: &[&str] = &["YYYY", "SSS", "MM", "DD", "HH", "mm", "ss", "X", "x", "Z"];

/// One piece of a date format: a token or literal text (`[…]` quotes literal text).
enum Piece<'a> {
    Token(&'static str),
    Literal(&'a str),
}

fn format_pieces(format: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut rest = format;
    while !rest.is_empty() {
        if let Some(token) = DATE_TOKENS.iter().find(|token| rest.starts_with(**token)) {
            pieces.push(Piece::Token(token));
            rest = &rest[token.len()..];
        } else if let Some((quoted, after)) = rest.strip_prefix('[').and_then(|inner| inner.split_once(']')) {
            pieces.push(Piece::Literal(quoted));
            rest = after;
        } else {
            let length = rest.chars().next().map_or(1, char::len_utf8);
            pieces.push(Piece::Literal(&rest[..length]));
            rest = &rest[length..];
        }
    }
    pieces
}

/// Parses `text` laid out as `format`; fields the format lacks are the first of the month,
/// midnight. `X`/`x` (epoch seconds / milliseconds) give the instant outright.
fn parse_with_format(text: &str, format: &str, default_offset_ms: i64) -> Option<i64> {
    let mut scanner = Scanner { rest: text };
    let mut civil = Civil {
        year: 1970,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        millisecond: 0,
    };
    let mut offset_ms = default_offset_ms;
    let mut epoch_ms = None;
    for piece in format_pieces(format) {
        match piece {
            Piece::Literal(literal) => scanner.eat(literal).then_some(())?,
            Piece::Token("YYYY") => civil.year = scanner.digits(4)?,
            Piece::Token("MM") => civil.month = scanner.digits(2)?,
            Piece::Token("DD") => civil.day = scanner.digits(2)?,
            Piece::Token("HH") => civil.hour = scanner.digits(2)?,
            Piece::Token("mm") => civil.minute = scanner.digits(2)?,
            Piece::Token("ss") => civil.second = scanner.digits(2)?,
            Piece::Token("SSS") => civil.millisecond = scanner.digits(3)?,
            Piece::Token("X") => epoch_ms = Some(scanner.integer()?.checked_mul(1000)?),
            Piece::Token("x") => epoch_ms = Some(scanner.integer()?),
            Piece::Token(_) => offset_ms = scanner.offset()?,
        }
    }
    scanner.rest.is_empty().then_some(())?;
    match epoch_ms {
        Some(epoch_ms) => (epoch_ms.abs() < 1_000_000_000_000_000).then_some(epoch_ms),
        None => civil.to_epoch_ms(offset_ms),
    }
}

/// Writes the instant in `format` at `offset_ms`; `None` outside the years 0000-9999.
fn format_date(instant_ms: i64, offset_ms: i64, format: &str) -> Option<String> {
    let local_ms = instant_ms + offset_ms;
    let (year, month, day) = civil_from_days(local_ms.div_euclid(MS_PER_DAY));
    if !(0..=9999).contains(&year) {
        return None;
    }
    let ms_of_day = local_ms.rem_euclid(MS_PER_DAY);
    let mut out = String::with_capacity(format.len() + 8);
    for piece in format_pieces(format) {
        use std::fmt::Write;
        let _ = match piece {
            Piece::Literal(literal) => write!(out, "{literal}"),
            Piece::Token("YYYY") => write!(out, "{year:04}"),
            Piece::Token("MM") => write!(out, "{month:02}"),
            Piece::Token("DD") => write!(out, "{day:02}"),
            Piece::Token("HH") => write!(out, "{:02}", ms_of_day / 3_600_000),
            Piece::Token("mm") => write!(out, "{:02}", ms_of_day / 60_000 % 60),
            Piece::Token("ss") => write!(out, "{:02}", ms_of_day / 1000 % 60),
            Piece::Token("SSS") => write!(out, "{:03}", ms_of_day % 1000),
            Piece::Token("X") => write!(out, "{}", instant_ms.div_euclid(1000)),
            Piece::Token("x") => write!(out, "{instant_ms}"),
            Piece::Token(_) => {
                let minutes = offset_ms.abs() / 60_000;
                let sign = if offset_ms < 0 { '-' } else { '+' };
                write!(out, "{sign}{:02}:{:02}", minutes / 60, minutes % 60)
            }
        };
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Compile-time checks

/// A problem found in a template, with where it is when known.
struct Problem {
    message: String,
    at: Option<(usize, usize)>,
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

fn check_template(template: &mut Template) -> Result<(), Problem> {
    for (index, element) in template.elements.iter_mut().enumerate() {
        check_element(element).map_err(|mut problem| {
            if problem.at.is_none() {
                problem.at = template.mapping.get(index).map(|mapping| (mapping.0, mapping.1));
            }
            problem
        })?;
    }
    Ok(())
}

fn check_element(element: &mut TemplateElement) -> Result<(), Problem> {
    match element {
        TemplateElement::Expression(helper) | TemplateElement::HtmlExpression(helper) => {
            if helper.params.is_empty() && helper.hash.is_empty() {
                return check_field(helper);
            }
            check_call(helper, Position::Expression)
        }
        TemplateElement::HelperBlock(helper) => check_call(helper, Position::Block),
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
fn check_field(helper: &mut HelperTemplate) -> Result<(), Problem> {
    if matches!(helper.name, Parameter::Subexpression(_)) {
        // `{{(join "_" a b)}}`: the value of a helper call.
        return check_parameter(&mut helper.name);
    }
    if let Some(spec) = helper.name.as_name().and_then(spec) {
        let path = Path::parse(&format!("this.{}", spec.name))
            .map_err(|error| format!("cannot read field `{}`: {}", spec.name, error.reason()))?;
        helper.name = Parameter::Path(path);
    }
    Ok(())
}

fn check_call(helper: &mut HelperTemplate, position: Position) -> Result<(), Problem> {
    let Some(name) = helper.name.as_name().map(str::to_string) else {
        return Err(String::from("a helper must be called by its name").into());
    };
    let spec = spec(&name).ok_or_else(|| {
        let known: Vec<&str> = HELPERS.iter().map(|spec| spec.name).collect();
        format!("unknown helper `{name}`; helpers are {}", known.join(", "))
    })?;
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
        check_parameter(param)?;
    }
    for template in [&mut helper.template, &mut helper.inverse].into_iter().flatten() {
        check_template(template)?;
    }
    Ok(())
}

fn check_parameter(param: &mut Parameter) -> Result<(), Problem> {
    if let Parameter::Subexpression(subexpression) = param {
        if let TemplateElement::Expression(helper) = subexpression.element.as_mut() {
            return check_call(helper, Position::Subexpression);
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
    use super::*;
    use serde_json::json;

    /// Every example of README › Templates › Helpers: (template, record, result). The README
    /// table is checked against this list, and each row is rendered.
    const README_EXAMPLES: &[(&str, &str, &str)] = &[
        (r#"{{join "_" a b}}"#, r#"{"a":"x","b":"y"}"#, "x_y"),
        (
            r#"{{join "-" sku tags nothing}}"#,
            r#"{"sku":"A1","tags":["red","big"]}"#,
            "A1-red-big",
        ),
        (
            "{{lowercase email}}",
            r#"{"email":"Ada@Example.COM"}"#,
            "ada@example.com",
        ),
        ("{{uppercase country}}", r#"{"country":"de"}"#, "DE"),
        ("{{trim name}}", r#"{"name":"  Ada  "}"#, "Ada"),
        (
            r#"{{replace phone "-" ""}}"#,
            r#"{"phone":"555-123-4567"}"#,
            "5551234567",
        ),
        ("{{substring sku 0 3}}", r#"{"sku":"ABC-123"}"#, "ABC"),
        (r#"{{default region "none"}}"#, r#"{"region":""}"#, "none"),
        (
            r#"{{dateFormat "YYYY-MM-DD" created_at}}"#,
            r#"{"created_at":"2024-03-05T23:30:00-02:00"}"#,
            "2024-03-06",
        ),
        (
            r#"{{dateFormat "DD/MM/YYYY HH:mm" ts "" "+02:00"}}"#,
            r#"{"ts":1709681400000}"#,
            "06/03/2024 01:30",
        ),
        (
            r#"{{dateFormat "YYYY-MM-DD[T]HH:mm:ss.SSSZ" date "DD.MM.YYYY"}}"#,
            r#"{"date":"05.03.2024"}"#,
            "2024-03-05T00:00:00.000+00:00",
        ),
        (
            r#"{{dateFormat "X" created_at}}"#,
            r#"{"created_at":"2024-03-05"}"#,
            "1709596800",
        ),
        ("{{add qty 1}}", r#"{"qty":2}"#, "3"),
        ("{{subtract total discount}}", r#"{"total":10,"discount":2.5}"#, "7.5"),
        ("{{multiply qty 3}}", r#"{"qty":"4"}"#, "12"),
        ("{{divide total 4}}", r#"{"total":10}"#, "2.5"),
        (
            "{{jsonSerialize customer}}",
            r#"{"customer":{"id":7,"tags":["a"]}}"#,
            r#"{"id":7,"tags":["a"]}"#,
        ),
        ("{{base64 user}}", r#"{"user":"hello"}"#, "aGVsbG8="),
        (
            r#"{{hash "sha256" email}}"#,
            r#"{"email":"ada@example.com"}"#,
            "b5fc85e55755f9e0d030a10ab4429b6b2944855f9a0d60077fe832becbc41d72",
        ),
        (
            r#"{{join "_" (lowercase country) (substring sku 0 3)}}"#,
            r#"{"country":"DE","sku":"ABC-123"}"#,
            "de_ABC",
        ),
    ];

    fn render_with(strict: bool, template: &str, data: &Json) -> Result<String, String> {
        let mut set = TemplateSet::new(strict);
        set.add("t", template)?;
        set.render("t", data)
    }

    fn render(template: &str, data: Json) -> Result<String, String> {
        render_with(false, template, &data)
    }

    fn ok(template: &str, data: Json) -> String {
        render(template, data).unwrap_or_else(|error| panic!("{template}: {error}"))
    }

    #[test]
    fn every_readme_example_renders_as_documented() {
        for (template, record, expected) in README_EXAMPLES {
            let data: Json = serde_json::from_str(record).unwrap();
            assert_eq!(ok(template, data), *expected, "{template} over {record}");
        }
    }

    #[test]
    fn the_readme_shows_exactly_these_examples() {
        let readme = include_str!("../README.md");
        let start = readme.find("<!-- template helper examples -->").expect("README marker");
        let end = readme[start..]
            .find("<!-- /template helper examples -->")
            .expect("README end marker")
            + start;
        let rows: Vec<(String, String, String)> = readme[start..end]
            .lines()
            .filter(|line| line.starts_with("| ") && !line.starts_with("| helper |"))
            .map(|line| {
                // | `helper` | `template` | `record` | `result` |
                let cells: Vec<&str> = line
                    .split(" | ")
                    .map(|cell| cell.trim_matches(['|', ' ', '`']))
                    .collect();
                (cells[1].to_string(), cells[2].to_string(), cells[3].to_string())
            })
            .collect();
        let expected: Vec<(String, String, String)> = README_EXAMPLES
            .iter()
            .map(|(t, r, e)| (t.to_string(), r.to_string(), e.to_string()))
            .collect();
        assert_eq!(rows, expected);
        for spec in HELPERS.iter().filter(|spec| spec.function.is_some()) {
            assert!(
                README_EXAMPLES
                    .iter()
                    .any(|(template, _, _)| template.contains(&format!("{{{{{} ", spec.name))),
                "no README example of {}",
                spec.name
            );
        }
    }

    #[test]
    fn join_flattens_arrays_and_skips_missing_and_null() {
        assert_eq!(ok(r#"{{join "_" a b}}"#, json!({"a": "x", "b": "y"})), "x_y");
        assert_eq!(ok(r#"{{join "_" a nothing b}}"#, json!({"a": "x", "b": null})), "x");
        assert_eq!(
            ok(r#"{{join ", " list}}"#, json!({"list": [1, [true, "z"], null]})),
            "1, true, z"
        );
        assert_eq!(ok(r#"{{join "" a "lit" 3}}"#, json!({"a": "x"})), "xlit3");
        assert!(render(r#"{{join "_" a}}"#, json!({"a": {"k": 1}}))
            .unwrap_err()
            .contains("cannot join an object"));
    }

    #[test]
    fn case_and_trim() {
        assert_eq!(ok("{{lowercase a}}", json!({"a": "ÄbC"})), "äbc");
        assert_eq!(ok("{{uppercase a}}", json!({"a": "straße"})), "STRASSE");
        assert_eq!(ok("{{trim a}}", json!({"a": " \t x y \n"})), "x y");
        assert_eq!(ok("{{uppercase a}}", json!({"a": 12})), "12");
        assert_eq!(ok("[{{lowercase nothing}}]", json!({})), "[]");
        let error = render("{{trim a}}", json!({"a": [1]})).unwrap_err();
        assert!(error.contains("trim: argument 1 must be text"), "{error}");
    }

    #[test]
    fn replace_replaces_every_occurrence() {
        assert_eq!(ok(r#"{{replace a "." "/"}}"#, json!({"a": "a.b.c"})), "a/b/c");
        assert_eq!(ok(r#"{{replace a "x" "y"}}"#, json!({"a": "abc"})), "abc");
        assert!(render(r#"{{replace a "" "y"}}"#, json!({"a": "abc"})).is_err());
    }

    #[test]
    fn substring_counts_chars_and_clamps() {
        let data = json!({"a": "héllo"});
        assert_eq!(ok("{{substring a 1 3}}", data.clone()), "él");
        assert_eq!(ok("{{substring a 2}}", data.clone()), "llo");
        assert_eq!(ok("{{substring a -5 99}}", data.clone()), "héllo");
        assert_eq!(ok("{{substring a 3 1}}", data.clone()), "él");
        assert_eq!(ok(r#"{{substring a "1" "2"}}"#, data.clone()), "é");
        assert_eq!(ok("[{{substring a 9}}]", data.clone()), "[]");
        assert!(render("{{substring a 1.5}}", data.clone())
            .unwrap_err()
            .contains("whole number"));
        assert!(render("{{substring a b}}", data).is_err());
    }

    #[test]
    fn default_applies_to_missing_null_and_empty() {
        assert_eq!(ok(r#"{{default a "n/a"}}"#, json!({})), "n/a");
        assert_eq!(ok(r#"{{default a "n/a"}}"#, json!({"a": null})), "n/a");
        assert_eq!(ok(r#"{{default a "n/a"}}"#, json!({"a": ""})), "n/a");
        assert_eq!(ok(r#"{{default a "n/a"}}"#, json!({"a": 0})), "0");
        assert_eq!(ok(r#"{{default a b}}"#, json!({"a": "x", "b": "y"})), "x");
        assert_eq!(ok(r#"{{default a b}}"#, json!({"b": "y"})), "y");
        // Strict mode: the value may be missing, the fallback may not.
        assert_eq!(render_with(true, r#"{{default a "n/a"}}"#, &json!({})).unwrap(), "n/a");
        assert!(render_with(true, r#"{{default a b}}"#, &json!({})).is_err());
    }

    #[test]
    fn date_format_inputs_outputs_and_offsets() {
        let f = |template: &str, date: Json| ok(template, json!({ "d": date }));
        // RFC 3339 with offset and fraction (truncated to ms).
        assert_eq!(
            f(
                r#"{{dateFormat "YYYY-MM-DD HH:mm:ss.SSS" d}}"#,
                json!("2024-02-29T23:59:59.123456+01:00")
            ),
            "2024-02-29 22:59:59.123"
        );
        assert_eq!(f(r#"{{dateFormat "x" d}}"#, json!("1970-01-01T00:00:00Z")), "0");
        assert_eq!(f(r#"{{dateFormat "X" d}}"#, json!("1969-12-31T23:59:59.500Z")), "-1");
        assert_eq!(f(r#"{{dateFormat "YYYY-MM-DD" d}}"#, json!(-1)), "1969-12-31");
        assert_eq!(
            f(r#"{{dateFormat "YYYY-MM-DDTHH:mm" d}}"#, json!("2024-03-05 14:07")),
            "2024-03-05T14:07"
        );
        assert_eq!(
            f(
                r#"{{dateFormat "HH:mmZ" d "" "-05:30"}}"#,
                json!("2024-03-05T00:00:00Z")
            ),
            "18:30-05:30"
        );
        // Without an offset of its own, the date is at the given offset.
        assert_eq!(
            f(r#"{{dateFormat "x" d "" "+01:00"}}"#, json!("1970-01-01T01:00:00")),
            "0"
        );
        assert_eq!(f(r#"{{dateFormat "YYYY-MM-DD" d "X"}}"#, json!(86400)), "1970-01-02");
        assert_eq!(
            f(r#"{{dateFormat "YYYY-MM-DD" d "x"}}"#, json!("172800000")),
            "1970-01-03"
        );
        assert_eq!(
            f(
                r#"{{dateFormat "YYYY-MM-DD HH:mm Z" d "MM/DD/YYYY HH:mm Z"}}"#,
                json!("12/31/1999 23:00 -0100")
            ),
            "2000-01-01 00:00 +00:00"
        );
        assert_eq!(f(r#"{{dateFormat "[YYYY] YYYY" d}}"#, json!("0001-01-01")), "YYYY 0001");
        // Civil math across centuries and leap years.
        for (date, days) in [
            ("2000-03-01", 11_017),
            ("1900-03-01", -25_508),
            ("2100-02-28", 47_540),
            ("0000-01-01", -719_528),
        ] {
            let expected = (days * MS_PER_DAY).to_string();
            assert_eq!(f(r#"{{dateFormat "x" d}}"#, json!(date)), expected, "{date}");
        }
        for bad in [
            json!("2023-02-29"),
            json!("2024-13-01"),
            json!("yesterday"),
            json!("2024-03-05T25:00"),
            json!(true),
        ] {
            assert!(
                render(r#"{{dateFormat "YYYY" d}}"#, json!({ "d": bad })).is_err(),
                "{bad}"
            );
        }
        assert!(render(r#"{{dateFormat "YYYY" d}}"#, json!({}))
            .unwrap_err()
            .contains("no date"));
        assert!(render(
            r#"{{dateFormat "YYYY" d "" tz}}"#,
            json!({"d": 0, "tz": "Europe/Paris"})
        )
        .is_err());
        assert!(render(r#"{{dateFormat "YYYY" d}}"#, json!({"d": 999_999_999_999_999_i64})).is_err());
    }

    #[test]
    fn civil_date_round_trips() {
        for days in (-800_000..3_000_000).step_by(997) {
            let (year, month, day) = civil_from_days(days);
            assert!((1..=days_in_month(year, month)).contains(&day));
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }

    #[test]
    fn arithmetic_keeps_integers_integral() {
        assert_eq!(ok("{{add a b}}", json!({"a": 2, "b": 3})), "5");
        assert_eq!(ok("{{add a 0.5}}", json!({"a": 2})), "2.5");
        assert_eq!(ok("{{add a b}}", json!({"a": 1.5, "b": 1.5})), "3");
        assert_eq!(ok("{{subtract a b}}", json!({"a": "10", "b": 12})), "-2");
        assert_eq!(ok("{{multiply a b}}", json!({"a": 4, "b": " 2.5 "})), "10");
        assert_eq!(ok("{{divide a b}}", json!({"a": 9, "b": 3})), "3");
        // The README's inline examples.
        assert_eq!(ok("{{divide 9 3}}", json!({})), "3");
        assert_eq!(ok("{{divide 1 4}}", json!({})), "0.25");
        assert!(render("{{add name 1}}", json!({"name": "Ada"})).is_err());
        assert_eq!(ok("{{divide a b}}", json!({"a": 1, "b": 4})), "0.25");
        // Past i64, integers overflow into floating point rather than wrapping.
        assert!(ok("{{add a 1}}", json!({"a": i64::MAX})).starts_with("9.22337203685477"));
        assert_eq!(ok("{{add (multiply a 2) 1}}", json!({"a": 4})), "9");
        assert!(render("{{divide a 0}}", json!({"a": 1}))
            .unwrap_err()
            .contains("division by zero"));
        assert!(render("{{divide a b}}", json!({"a": 1, "b": "0.0"})).is_err());
        assert!(render("{{add a 1}}", json!({"a": "one"}))
            .unwrap_err()
            .contains("not a number"));
        assert!(render("{{add a 1}}", json!({})).is_err());
        assert!(render("{{add a 1}}", json!({"a": "NaN"})).is_err());
    }

    #[test]
    fn json_serialize_base64_and_hash() {
        assert_eq!(
            ok("{{jsonSerialize a}}", json!({"a": [1, "x", null]})),
            r#"[1,"x",null]"#
        );
        assert_eq!(ok("{{jsonSerialize a}}", json!({"a": "q\""})), r#""q\"""#);
        assert_eq!(ok("{{jsonSerialize a}}", json!({})), "null");
        assert_eq!(ok("{{base64 a}}", json!({"a": "ü"})), "w7w=");
        assert_eq!(ok("{{base64 a}}", json!({"a": ""})), "");
        assert_eq!(
            ok(r#"{{hash "sha1" a}}"#, json!({"a": "abc"})),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            ok(r#"{{hash "SHA256" a}}"#, json!({"a": "abc"})),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(ok(r#"{{hash "sha512" a}}"#, json!({"a": "abc"})).starts_with("ddaf35a193617aba"));
        assert!(render(r#"{{hash algo a}}"#, json!({"a": "abc", "algo": "md5"})).is_err());
    }

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

    #[test]
    fn strict_mode_makes_missing_fields_errors() {
        assert_eq!(render_with(false, "[{{a}}]", &json!({})).unwrap(), "[]");
        assert!(render_with(true, "[{{a}}]", &json!({})).is_err());
        assert_eq!(
            render_with(false, r#"{{join "_" a b}}"#, &json!({"a": "x"})).unwrap(),
            "x"
        );
        let error = render_with(true, r#"{{join "_" a b}}"#, &json!({"a": "x"})).unwrap_err();
        assert!(error.contains("`b`") && error.contains("missing"), "{error}");
        assert_eq!(
            render_with(true, r#"{{join "_" a b}}"#, &json!({"a": "x", "b": "y"})).unwrap(),
            "x_y"
        );
    }

    #[test]
    fn no_html_escaping() {
        assert_eq!(ok("{{a}}&{{lowercase a}}", json!({"a": "<A&B>"})), "<A&B>&<a&b>");
    }
}
