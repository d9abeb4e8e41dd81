//! The arguments of one helper call, read as text, numbers or values — with errors that name
//! the helper and the argument's type, never the record's content.

use handlebars::{PathAndJson, RenderError, RenderErrorReason};
use serde_json::{Number, Value as Json};

/// The arguments of one helper call.
pub(super) struct Args<'a, 'rc> {
    /// The helper's name, for error messages.
    pub(super) helper: &'static str,
    /// The arguments as handlebars resolved them.
    pub(super) params: &'a [PathAndJson<'rc>],
    /// Strict mode: a missing field is an error.
    pub(super) strict: bool,
}

impl Args<'_, '_> {
    /// A render error naming the helper. Messages name types, never record content.
    pub(super) fn error(&self, message: impl std::fmt::Display) -> RenderError {
        RenderErrorReason::Other(format!("{}: {message}", self.helper)).into()
    }

    /// Argument `index`: `None` when absent or a missing field (an error in strict mode).
    pub(super) fn value(&self, index: usize) -> Result<Option<&Json>, RenderError> {
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
    pub(super) fn text(&self, index: usize) -> Result<String, RenderError> {
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
    pub(super) fn number(&self, index: usize) -> Result<Num, RenderError> {
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
    pub(super) fn integer(&self, index: usize) -> Result<i64, RenderError> {
        match self.number(index)? {
            Num::Int(value) => Ok(value),
            Num::Float(_) => Err(self.error(format_args!("argument {} must be a whole number", index + 1))),
        }
    }
}

/// A string, number or boolean as text; `None` for anything else.
pub(super) fn scalar_text(value: &Json) -> Option<String> {
    match value {
        Json::String(text) => Some(text.clone()),
        Json::Number(number) => Some(number.to_string()),
        Json::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// What a value is, for error messages (never the value itself).
pub(super) fn type_name(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "text",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// A number as the arithmetic helpers see it: integers stay integers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Num {
    /// An integer that fits an `i64`.
    Int(i64),
    /// Any other finite number.
    Float(f64),
}

impl Num {
    /// A JSON number; `None` if it is not finite.
    pub(super) fn from_json(number: &Number) -> Option<Num> {
        match number.as_i64() {
            Some(value) => Some(Num::Int(value)),
            None => number.as_f64().filter(|value| value.is_finite()).map(Num::Float),
        }
    }

    /// Text that is a finite number.
    pub(super) fn parse(text: &str) -> Option<Num> {
        if let Ok(value) = text.parse::<i64>() {
            return Some(Num::Int(value));
        }
        // Rust's float syntax also takes `inf`, `NaN` and `1e5`; only finite values count.
        text.parse::<f64>()
            .ok()
            .filter(|value| value.is_finite())
            .map(Num::Float)
    }

    /// The number as a float.
    pub(super) fn as_f64(self) -> f64 {
        match self {
            Num::Int(value) => value as f64,
            Num::Float(value) => value,
        }
    }
}
