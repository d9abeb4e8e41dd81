//! One parsed record: compact JSON text, exactly as it goes into a page.

use serde_json::Value;

use super::error::ParseError;
use super::limits::RECORD_DEPTH_LIMIT;

/// One record: compact JSON text, exactly as it goes into a page's `data`.
///
/// JSON bodies keep the sender's text (see [`super::json`]); XML and form bodies are converted
/// to JSON values first. The value tree is built only where something needs one (templates,
/// samples), by parsing the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record(Box<str>);

impl Record {
    /// A record from JSON text that is valid and has no whitespace between tokens.
    pub(crate) fn from_compact_json(json: String) -> Record {
        Record(json.into_boxed_str())
    }

    /// A record from a value; refused if it nests deeper than [`RECORD_DEPTH_LIMIT`].
    pub fn from_value(value: &Value) -> Result<Record, ParseError> {
        if depth(value) > RECORD_DEPTH_LIMIT {
            return Err(ParseError::TooDeep {
                limit: RECORD_DEPTH_LIMIT,
            });
        }
        Ok(Record(value.to_string().into_boxed_str()))
    }

    /// The record's JSON text.
    pub fn json(&self) -> &str {
        &self.0
    }

    /// The record as a value tree (parses the text).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).expect("a record is valid JSON")
    }

    /// The record's text as a `RawValue` (validates it again: for the rare paths that need it).
    fn raw(&self) -> &serde_json::value::RawValue {
        serde_json::from_str(&self.0).expect("a record is valid JSON")
    }
}

/// Nesting depth of a value (a scalar is 0, `[]` is 1), without recursion.
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((value, level)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        deepest = deepest.max(level + 1);
        stack.extend(children.map(|child| (child, level + 1)));
    }
    deepest
}

/// Serializes as the JSON the record is: templates and samples see the record itself.
impl serde::Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw().serialize(serializer)
    }
}
