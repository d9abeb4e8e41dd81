//! What the fuzz targets share: reading choices out of the fuzzer's bytes, and the reference
//! models the parsers' records are checked against.

use hookpipe::config::resource_path::ResourcePath;
use hookpipe::fuzzing::serde_json::{self, Value};
use hookpipe::pipeline::parse::record::Record;
use hookpipe::pipeline::parse::records::ParseError;

/// The fuzzer's bytes, read front to back: choices first, the body last. Reading past the end
/// gives zeros and empty slices, so every input is a valid case.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads `data`.
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }

    /// One byte (0 once the input is used up).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((first, rest)) => {
                self.data = rest;
                *first
            }
            None => 0,
        }
    }

    /// A number below `bound` (`bound` > 0).
    pub fn below(&mut self, bound: usize) -> usize {
        usize::from(self.byte()) % bound
    }

    /// A flag.
    pub fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// Up to `len` bytes.
    pub fn bytes(&mut self, len: usize) -> &'a [u8] {
        let len = len.min(self.data.len());
        let (taken, rest) = self.data.split_at(len);
        self.data = rest;
        taken
    }

    /// A length-prefixed piece (one length byte, so at most 255 bytes).
    pub fn piece(&mut self) -> &'a [u8] {
        let len = usize::from(self.byte());
        self.bytes(len)
    }

    /// A length-prefixed piece as text (invalid UTF-8 replaced).
    pub fn text(&mut self) -> String {
        String::from_utf8_lossy(self.piece()).into_owned()
    }

    /// Everything left.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// Resource paths the parse targets try: common shapes, indexes, and one from the input.
pub const PATHS: &[&str] = &[
    "data",
    "data.items",
    "items",
    "a.b",
    "0",
    "a.0",
    "orders.order",
    "root.item",
    "a.b.c",
    "x",
];

/// A resource path chosen by the input, or none: a path from [`PATHS`] or one written in it.
pub fn resource_path(input: &mut Input<'_>) -> Option<ResourcePath> {
    let choice = input.byte();
    match choice % 4 {
        0 => None,
        1 | 2 => Some(ResourcePath::parse(PATHS[usize::from(choice / 4) % PATHS.len()]).expect("valid path")),
        _ => ResourcePath::parse(&input.text()).ok(),
    }
}

/// Nesting depth of a value (a scalar is 0, `[]` is 1).
pub fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// What every record must be, whatever its format: JSON that parses, with no whitespace between
/// tokens (`compact`), that nests at most 124 levels (a page nests it 3 levels deeper and must
/// stay readable by serde_json, which stops at 128). Returns the records' values.
pub fn check_records(records: &[Record]) -> Vec<Value> {
    records
        .iter()
        .map(|record| {
            let text = record.json();
            let value: Value =
                serde_json::from_str(text).unwrap_or_else(|error| panic!("record is not JSON ({error}): {text:?}"));
            assert!(depth(&value) <= 124, "record nests {} levels", depth(&value));
            assert!(is_compact(text), "record has whitespace between tokens: {text:?}");
            // The id the parser noted (if it did) is the text of the last top-level `id`.
            match record.noted_id() {
                None => {}
                Some(None) => assert!(value.get("id").is_none(), "noted no id in {text:?}"),
                Some(Some(id)) => {
                    let noted: Value =
                        serde_json::from_str(id).unwrap_or_else(|_| panic!("noted id {id:?} in {text:?}"));
                    assert_eq!(Some(&noted), value.get("id"), "noted id of {text:?}");
                }
            }
            value
        })
        .collect()
}

/// Whether valid JSON text has no whitespace outside strings.
pub fn is_compact(text: &str) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    for byte in text.bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if byte == b'"' {
            in_string = true;
        } else if matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            return false;
        }
    }
    true
}

/// An error is a 4xx the sender can act on: 400, 413 or 415, never anything else.
pub fn check_error(error: &ParseError) {
    assert!(
        matches!(error.status(), 400 | 413 | 415),
        "{error:?} → {}",
        error.status()
    );
    let text = error.to_string();
    assert!(!text.is_empty());
    assert!(text.len() < 2048, "an error echoes too much: {} bytes", text.len());
}

/// The records a resource path selects in a body's value, as `select_json` documents them: each
/// segment an object's member or (all digits) an array's index; an array at the end gives its
/// elements, an object itself; anything else, or a missing member, is no selection.
pub fn reference_select(value: &Value, path: Option<&ResourcePath>) -> Option<Vec<Value>> {
    let mut current = value;
    if let Some(path) = path {
        for segment in path.segments() {
            current = match current {
                Value::Object(map) => map.get(segment)?,
                Value::Array(items) => {
                    if !segment.bytes().all(|byte| byte.is_ascii_digit()) {
                        return None;
                    }
                    items.get(segment.parse::<usize>().ok()?)?
                }
                _ => return None,
            };
        }
    }
    match current {
        Value::Array(items) => Some(items.clone()),
        Value::Object(_) => Some(vec![current.clone()]),
        _ if path.is_none() => Some(vec![current.clone()]),
        _ => None,
    }
}

/// The form of a body without a resource path (one object), selected by `path` as
/// `one_object` does: the object itself, or [`reference_select`] of it.
pub fn reference_one_object(object: Value, path: Option<&ResourcePath>) -> Option<Vec<Value>> {
    match path {
        None => Some(vec![object]),
        Some(_) => reference_select(&object, path),
    }
}

/// Total bytes of the records' text.
pub fn total_len(records: &[Record]) -> usize {
    records.iter().map(|record| record.json().len()).sum()
}
