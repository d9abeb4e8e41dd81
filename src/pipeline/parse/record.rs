//! One parsed record: compact JSON text, exactly as it goes into a page.

use serde_json::Value;

use super::error::ParseError;
use super::limits::RECORD_DEPTH_LIMIT;

/// One record: compact JSON text, exactly as it goes into a page's `data`.
///
/// JSON bodies keep the sender's text (see [`super::json`]); XML and form bodies are converted
/// to JSON values first. The value tree is built only where something needs one (templates,
/// samples), by parsing the text.
#[derive(Debug, Clone)]
pub struct Record {
    json: Box<str>,
    /// Where the text of its top-level `id` member is, when the parser noted it on the way.
    id: IdAt,
}

/// Where a record's top-level `id` member (the last one, as in a parsed object) is in its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdAt {
    /// Not noted: look for it.
    Unknown,
    /// The record has no top-level `id` member (or is not an object).
    Absent,
    /// The value's text is `json[start..end]`.
    At(u32, u32),
}

/// Records are their text: where the parser noted the `id` is not part of what they are.
impl PartialEq for Record {
    fn eq(&self, other: &Record) -> bool {
        self.json == other.json
    }
}

impl Eq for Record {}

impl Record {
    /// A record from JSON text that is valid and has no whitespace between tokens.
    pub(crate) fn from_compact_json(json: String) -> Record {
        Record::from_compact_json_noting_id(json, IdAt::Unknown)
    }

    /// [`Record::from_compact_json`], with where its top-level `id` is (`id` must be right).
    pub(crate) fn from_compact_json_noting_id(json: String, id: IdAt) -> Record {
        debug_assert!(match id {
            IdAt::At(start, end) => json.get(start as usize..end as usize).is_some(),
            _ => true,
        });
        Record {
            json: json.into_boxed_str(),
            id,
        }
    }

    /// A record from a value; refused if it nests deeper than [`RECORD_DEPTH_LIMIT`].
    pub fn from_value(value: &Value) -> Result<Record, ParseError> {
        if depth(value) > RECORD_DEPTH_LIMIT {
            return Err(ParseError::TooDeep {
                limit: RECORD_DEPTH_LIMIT,
            });
        }
        // `to_string`, not `Display`: the value written straight into a buffer, not through a
        // formatter (a third of an XML body's parsing time).
        let json = serde_json::to_string(value).expect("a Value always serializes");
        Ok(Record::from_compact_json(json))
    }

    /// The record's JSON text.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The text of the record's top-level `id` member (the last one), if the parser noted where
    /// it is: `Some(None)` when there is none, `None` when not noted.
    pub fn noted_id(&self) -> Option<Option<&str>> {
        match self.id {
            IdAt::Unknown => None,
            IdAt::Absent => Some(None),
            IdAt::At(start, end) => Some(self.json.get(start as usize..end as usize)),
        }
    }

    /// The record as a value tree (parses the text).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.json).expect("a record is valid JSON")
    }

    /// The record's text as a `RawValue` (validates it again: for the rare paths that need it).
    fn raw(&self) -> &serde_json::value::RawValue {
        serde_json::from_str(&self.json).expect("a record is valid JSON")
    }
}

/// Nesting depth of a value (a scalar is 0, `[]` is 1), without recursion.
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((value, level)) = stack.pop() {
        // Only containers go on the stack: scalars add no depth.
        let is_container = |child: &&Value| matches!(child, Value::Array(_) | Value::Object(_));
        match value {
            Value::Array(items) => stack.extend(items.iter().filter(is_container).map(|child| (child, level + 1))),
            Value::Object(map) => stack.extend(map.values().filter(is_container).map(|child| (child, level + 1))),
            _ => continue,
        }
        deepest = deepest.max(level + 1);
    }
    deepest
}

/// Serializes as the JSON the record is: templates and samples see the record itself.
impl serde::Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw().serialize(serializer)
    }
}
