//! JSON bodies into records without building a tree.
//!
//! A body without a resource path is read in one pass by [`super::json_scan`], which accepts
//! only what the general path below accepts, with the same records, and leaves every other body
//! (and every error message) to it.
//!
//! The general path: the body is checked for nesting depth (a byte scan), validated and split by serde_json into
//! borrowed slices of the body (`&RawValue`: one per array element, or the value at the
//! resource path), and each record is copied out once, with the whitespace between tokens
//! removed. Nothing is re-encoded: keys keep their order, numbers their spelling, strings their
//! escapes — the record in the page is the record the sender sent, minus insignificant
//! whitespace. Checks serde_json's skipping parser does not make are made during that copy:
//! no raw control characters in strings, no unpaired UTF-16 surrogate escapes (which a
//! consumer's JSON parser would refuse, poisoning the whole page).

use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::error::ParseError;
use super::json_scan::check_number;
use super::limits::{JSON_DEPTH_CEILING, RECORD_DEPTH_LIMIT};
use super::record::Record;
use crate::config::resource_path::ResourcePath;

/// The records of a JSON body: its elements if it is an array, else the body itself; with a
/// resource path, the selected array's elements or the selected object.
pub fn parse_json(
    text: &str,
    resource_path: Option<&ResourcePath>,
    max_depth: usize,
) -> Result<Vec<Record>, ParseError> {
    if text.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
        return Err(ParseError::malformed("json", "empty body"));
    }
    let limit = max_depth.min(JSON_DEPTH_CEILING);
    if resource_path.is_none() {
        // Most bodies: one pass. Anything it does not accept is decided (and named) below.
        if let Some(records) = super::json_scan::records(text, limit) {
            return Ok(records);
        }
    }
    parse_json_general(text, resource_path, limit)
}

/// [`parse_json`] without the one-pass scan, for a non-blank body and a `limit` already capped at
/// [`JSON_DEPTH_CEILING`]: serde_json validates, then each record is copied by [`compact`].
pub(super) fn parse_json_general(
    text: &str,
    resource_path: Option<&ResourcePath>,
    limit: usize,
) -> Result<Vec<Record>, ParseError> {
    if resource_path.is_some() {
        // Only the selected part is copied (and depth-checked on the way): check the whole body.
        check_json_depth(text.as_bytes(), limit)?;
    }
    // serde_json skips values without recursion, so validating before the depth check is safe.
    let whole: &RawValue = serde_json::from_str(text).map_err(|e| malformed(e, limit))?;
    match resource_path {
        Some(path) => select(whole, path)?
            .into_iter()
            .map(|raw| compact(raw.get(), usize::MAX, limit))
            .collect(),
        // The body's elements sit one level below it.
        None => match kind(whole) {
            Kind::Array => elements(whole)?
                .into_iter()
                .map(|raw| compact(raw.get(), limit.saturating_sub(1), limit))
                .collect(),
            _ => Ok(vec![compact(whole.get(), limit, limit)?]),
        },
    }
}

/// One record from a JSON text, whatever its type (an NDJSON line: an array is one record, not
/// its elements), validated and copied as [`parse_json`] copies records.
pub(crate) fn parse_json_value(text: &str, max_depth: usize) -> Result<Record, ParseError> {
    let limit = max_depth.min(JSON_DEPTH_CEILING);
    let whole: &RawValue = serde_json::from_str(text).map_err(|e| malformed(e, limit))?;
    compact(whole.get(), limit, limit)
}

fn malformed(error: serde_json::Error, limit: usize) -> ParseError {
    // Backstop in case serde_json's limit and ours ever drift apart.
    if error.to_string().starts_with("recursion limit exceeded") {
        ParseError::TooDeep { limit }
    } else {
        ParseError::malformed("json", error.to_string())
    }
}

/// Rejects bodies whose `[`/`{` nesting (outside strings) exceeds `limit`,
/// before serde_json spends time on them.
fn check_json_depth(bytes: &[u8], limit: usize) -> Result<(), ParseError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Err(ParseError::TooDeep { limit });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

/// The type of a validated JSON value, from its first byte.
fn kind(raw: &RawValue) -> Kind {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'{') => Kind::Object,
        Some(b'[') => Kind::Array,
        Some(b'"') => Kind::String,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'n') => Kind::Null,
        _ => Kind::Number,
    }
}

fn type_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Null => "null",
        Kind::Bool => "a boolean",
        Kind::Number => "a number",
        Kind::String => "a string",
        Kind::Array => "an array",
        Kind::Object => "an object",
    }
}

/// The elements of a validated array.
fn elements(array: &RawValue) -> Result<Vec<&RawValue>, ParseError> {
    serde_json::from_str(array.get()).map_err(|e| ParseError::malformed("json", e.to_string()))
}

/// The value of `key` in a validated object (the last one, if the key repeats).
pub(crate) fn member<'a>(object: &'a str, key: &str) -> Result<Option<&'a RawValue>, ParseError> {
    struct Member<'k>(&'k str);

    impl<'de> Visitor<'de> for Member<'_> {
        type Value = Option<&'de RawValue>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == self.0 {
                    found = Some(map.next_value::<&'de RawValue>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }

    let mut deserializer = serde_json::Deserializer::from_str(object);
    deserializer
        .deserialize_map(Member(key))
        .map_err(|e: serde_json::Error| ParseError::malformed("json", e.to_string()))
}

/// The text of `key`'s value in `object`, the last one if the key repeats — like `member`, but a
/// byte scan instead of a parse, for text that is already known to be a valid JSON object
/// (a record): string values are skipped with `memchr`, nothing is decoded but a key that holds
/// escapes. `None` when the key is absent, or when `object` is not an object.
pub(crate) fn member_of_valid_object<'a>(object: &'a str, key: &str) -> Option<&'a str> {
    let bytes = object.as_bytes();
    let mut at = skip_whitespace(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    let mut found = None;
    loop {
        at = skip_whitespace(bytes, at + 1);
        if bytes.get(at) != Some(&b'"') {
            // `}` of an empty object (or, for invalid input, anything else): done.
            return found;
        }
        let key_end = skip_string(bytes, at)?;
        let raw_key = &object[at..key_end];
        let matches = if raw_key[1..raw_key.len() - 1].contains('\\') {
            serde_json::from_str::<String>(raw_key).is_ok_and(|decoded| decoded == key)
        } else {
            &raw_key[1..raw_key.len() - 1] == key
        };
        at = skip_whitespace(bytes, key_end);
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        let value_start = skip_whitespace(bytes, at + 1);
        let value_end = skip_value(bytes, value_start)?;
        if matches {
            found = Some(&object[value_start..value_end]);
        }
        at = skip_whitespace(bytes, value_end);
        match bytes.get(at) {
            Some(b',') => continue,
            Some(b'}') => return found,
            _ => return None,
        }
    }
}

fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// The index after the string starting at `at` (its opening quote).
fn skip_string(bytes: &[u8], at: usize) -> Option<usize> {
    let mut at = at + 1;
    loop {
        at += memchr::memchr2(b'"', b'\\', bytes.get(at..)?)?;
        if bytes[at] == b'\\' {
            at += 2;
        } else {
            return Some(at + 1);
        }
    }
}

/// The index after the value starting at `at`.
fn skip_value(bytes: &[u8], at: usize) -> Option<usize> {
    match *bytes.get(at)? {
        b'"' => skip_string(bytes, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut at = at;
            loop {
                match *bytes.get(at)? {
                    b'"' => {
                        at = skip_string(bytes, at)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(at + 1);
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
        }
        _ => {
            let len = bytes[at..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(bytes.len() - at);
            Some(at + len)
        }
    }
}

/// Walks `path` through the body: an object's member by name, an array's element by index.
fn select<'a>(whole: &'a RawValue, path: &ResourcePath) -> Result<Vec<&'a RawValue>, ParseError> {
    let fail = |reason: String| ParseError::ResourcePath {
        path: path.as_str().to_owned(),
        reason,
    };
    let mut current = whole;
    for (i, segment) in path.segments().enumerate() {
        let parent = match i.checked_sub(1) {
            None => "the body".to_owned(),
            Some(previous) => format!("\"{}\"", path.prefix(previous)),
        };
        current = match kind(current) {
            Kind::Object => {
                member(current.get(), segment)?.ok_or_else(|| fail(format!("\"{}\" not found", path.prefix(i))))?
            }
            Kind::Array => {
                if !segment.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(fail(format!("{parent} is an array, so \"{segment}\" must be an index")));
                }
                let items = elements(current)?;
                let len = items.len();
                segment
                    .parse::<usize>()
                    .ok()
                    .and_then(|index| items.get(index).copied())
                    .ok_or_else(|| {
                        fail(format!(
                            "\"{}\" not found: {parent} has {len} element(s)",
                            path.prefix(i)
                        ))
                    })?
            }
            other => {
                return Err(fail(format!(
                    "{parent} is {}, not an object or array",
                    type_name(other)
                )));
            }
        };
    }
    match kind(current) {
        Kind::Array => elements(current),
        Kind::Object => Ok(vec![current]),
        other => Err(fail(format!(
            "it selects {}, expected an array or object",
            type_name(other)
        ))),
    }
}

/// Copies one validated JSON value without the whitespace between tokens, refusing `\u`
/// escapes that are unpaired surrogates and nesting deeper than `max_depth` (the body's limit,
/// `body_limit`, minus the levels above this value) or [`RECORD_DEPTH_LIMIT`]. (Raw control
/// characters in strings were refused by serde_json.)
fn compact(json: &str, max_depth: usize, body_limit: usize) -> Result<Record, ParseError> {
    let too_deep = if max_depth < RECORD_DEPTH_LIMIT {
        ParseError::TooDeep { limit: body_limit }
    } else {
        ParseError::TooDeep {
            limit: RECORD_DEPTH_LIMIT,
        }
    };
    let max_depth = max_depth.min(RECORD_DEPTH_LIMIT);
    let bytes = json.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'"' => {
                // A string: copy through its closing quote, checking `\u` escapes.
                let start = i;
                i += 1;
                loop {
                    let Some(offset) = memchr::memchr2(b'"', b'\\', &bytes[i..]) else {
                        return Err(ParseError::malformed("json", "unterminated string"));
                    };
                    i += offset;
                    if bytes[i] == b'"' {
                        break;
                    }
                    if bytes.get(i + 1) == Some(&b'u') {
                        i = check_unicode_escape(bytes, i)?;
                    } else {
                        i += 2;
                    }
                }
                i += 1;
                out.extend_from_slice(&bytes[start..i]);
            }
            b @ (b'[' | b'{') => {
                depth += 1;
                if depth > max_depth {
                    return Err(too_deep);
                }
                out.push(b);
                i += 1;
            }
            b @ (b']' | b'}') => {
                depth = depth.saturating_sub(1);
                out.push(b);
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len() && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    i += 1;
                }
                let number = &json[start..i];
                check_number(number)?;
                out.extend_from_slice(number.as_bytes());
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    // Only ASCII whitespace was removed, between tokens: still UTF-8.
    let text = String::from_utf8(out).map_err(|_| ParseError::malformed("json", "invalid UTF-8"))?;
    Ok(Record::from_compact_json(text))
}

/// Checks the `\uXXXX` escape at `at` (the backslash); a high surrogate must be followed by a
/// low one. Returns the index after the escape (or pair).
fn check_unicode_escape(bytes: &[u8], at: usize) -> Result<usize, ParseError> {
    let unit = |at: usize| -> Option<u16> {
        let hex = bytes.get(at + 2..at + 6)?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    };
    let lone = || ParseError::malformed("json", "unpaired surrogate in a \\u escape");
    let first = unit(at).ok_or_else(|| ParseError::malformed("json", "invalid \\u escape"))?;
    match first {
        0xD800..=0xDBFF => {
            let next = at + 6;
            if bytes.get(next) == Some(&b'\\') && bytes.get(next + 1) == Some(&b'u') {
                if let Some(0xDC00..=0xDFFF) = unit(next) {
                    return Ok(next + 6);
                }
            }
            Err(lone())
        }
        0xDC00..=0xDFFF => Err(lone()),
        _ => Ok(at + 6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(body: &str, path: Option<&str>) -> Result<Vec<String>, ParseError> {
        let path = path.map(|p| ResourcePath::parse(p).unwrap());
        parse_json(body, path.as_ref(), 128).map(|r| r.into_iter().map(|r| r.json().to_string()).collect())
    }

    #[test]
    fn records_keep_order_spelling_and_escapes_without_whitespace() {
        let body =
            "{ \"z\" : 1.50 ,\n \"a\" : [ 1e3 , \"x y\\n\\u00e9\\\"\" ] ,\"big\": 123456789012345678901234567890 }";
        assert_eq!(
            records(body, None).unwrap(),
            vec![r#"{"z":1.50,"a":[1e3,"x y\n\u00e9\""],"big":123456789012345678901234567890}"#]
        );
    }

    #[test]
    fn arrays_split_and_paths_select_without_copying_siblings() {
        assert_eq!(
            records(" [ {\"a\" : 1} , 2 , \"s\" ] ", None).unwrap(),
            vec![r#"{"a":1}"#, "2", r#""s""#]
        );
        let body = r#"{"data": {"skip": [1, {"items": 0}], "items": [ {"id": 1}, {"id": 2} ]}}"#;
        assert_eq!(
            records(body, Some("data.items")).unwrap(),
            vec![r#"{"id":1}"#, r#"{"id":2}"#]
        );
        // A repeated key: the last one wins, as in a parsed object.
        assert_eq!(
            records(r#"{"a":{"x":1},"a":{"x":2}}"#, Some("a")).unwrap(),
            vec![r#"{"x":2}"#]
        );
        // Escaped keys are compared decoded.
        assert_eq!(
            records(r#"{"d\u0061ta":{"x":1}}"#, Some("data")).unwrap(),
            vec![r#"{"x":1}"#]
        );
    }

    #[test]
    fn surrogates_must_pair() {
        assert_eq!(records(r#"["\ud83d\ude00"]"#, None).unwrap(), vec![r#""\ud83d\ude00""#]);
        for body in [
            r#"["\ud83d"]"#,
            r#"["\ude00"]"#,
            r#"["\ud83d\u0041"]"#,
            r#"{"a":"x\uD800"}"#,
        ] {
            let err = records(body, None).unwrap_err();
            assert_eq!((err.status(), err.kind()), (400, "json"), "{body}");
            // serde_json agrees that a tree cannot be built from it.
            assert!(serde_json::from_str::<serde_json::Value>(body).is_err(), "{body}");
        }
    }

    #[test]
    fn records_nest_at_most_the_record_limit_so_pages_stay_readable() {
        let nested = |depth: usize| format!("{}{{}}{}", r#"{"a":"#.repeat(depth - 1), "}".repeat(depth - 1));
        assert!(records(&nested(RECORD_DEPTH_LIMIT), None).is_ok());
        let err = records(&nested(RECORD_DEPTH_LIMIT + 1), None).unwrap_err();
        assert_eq!(
            err,
            ParseError::TooDeep {
                limit: RECORD_DEPTH_LIMIT
            }
        );
        // An array body's elements are records one level less deep.
        let array = format!("[{}]", nested(RECORD_DEPTH_LIMIT));
        assert_eq!(records(&array, None).unwrap().len(), 1);
        // The deepest record, inside a page envelope, still parses with serde_json.
        let page = format!(r#"{{"records":[{{"id":"r","data":{}}}]}}"#, nested(RECORD_DEPTH_LIMIT));
        assert!(serde_json::from_str::<serde_json::Value>(&page).is_ok());
    }

    #[test]
    fn numbers_a_double_cannot_hold_are_refused() {
        let huge = format!("1{}", "0".repeat(400));
        for body in [r#"[{"a":1e400}]"#, r#"{"a":-1E+400}"#, huge.as_str(), r#"[1.5e309]"#] {
            let err = records(body, None).unwrap_err();
            assert_eq!(err, ParseError::malformed("json", "number out of range"), "{body}");
            assert!(serde_json::from_str::<serde_json::Value>(body).is_err(), "{body}");
        }
        let fine = r#"[1e300,-2.5E-400,12345678901234567890123,0.1,-0]"#;
        assert_eq!(
            records(fine, None).unwrap(),
            vec!["1e300", "-2.5E-400", "12345678901234567890123", "0.1", "-0"]
        );
    }

    #[test]
    fn every_record_reads_back_as_the_value_serde_json_parses() {
        let body = r#"[{"b":[true,false,null],"a":{"\"q\"":"\\\/"}}, -0.5e-3, "é"]"#;
        let parsed: Vec<serde_json::Value> = serde_json::from_str(body).unwrap();
        let ours: Vec<serde_json::Value> = records(body, None)
            .unwrap()
            .iter()
            .map(|r| serde_json::from_str(r).unwrap())
            .collect();
        assert_eq!(ours, parsed);
    }
    proptest::proptest! {
        #[test]
        fn the_member_scan_agrees_with_the_parser(
            value in json_value(4),
            key in proptest::sample::select(vec!["id", "a", "\"", "é", "x"]),
            pretty in proptest::bool::ANY,
        ) {
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                serde_json::to_string(&value).unwrap()
            };
            let parsed = if text.starts_with('{') {
                member(&text, key).unwrap().map(|raw| raw.get().to_string())
            } else {
                None
            };
            proptest::prop_assert_eq!(member_of_valid_object(&text, key).map(str::to_string), parsed);
        }
    }

    /// Arbitrary JSON values with keys drawn from a small set (so keys repeat and match),
    /// strings with escapes, and nested containers.
    fn json_value(depth: u32) -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(serde_json::Value::from),
            (-1e9f64..1e9).prop_map(serde_json::Value::from),
            "[a-z\"\\\\\n\u{e9}{}\\[\\],: ]{0,8}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(depth, 32, 4, |inner| {
            let key = proptest::sample::select(vec!["id", "a", "\"", "é", "x", "i\\d"]).prop_map(str::to_string);
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                proptest::collection::vec((key, inner), 0..4)
                    .prop_map(|members| serde_json::Value::Object(members.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn the_member_scan_takes_the_last_repeat_and_decodes_escaped_keys() {
        assert_eq!(
            member_of_valid_object(r#"{"id":1,"x":{"id":2},"id":"3"}"#, "id"),
            Some(r#""3""#)
        );
        assert_eq!(
            member_of_valid_object(r#"{"\u0069d":[1,"]"]}"#, "id"),
            Some(r#"[1,"]"]"#)
        );
        assert_eq!(member_of_valid_object(r#"{"a":"\"id\":1"}"#, "id"), None);
        assert_eq!(member_of_valid_object(r#"{}"#, "id"), None);
        assert_eq!(member_of_valid_object(r#"["id"]"#, "id"), None);
        assert_eq!(member_of_valid_object(r#" { "id" : -1.5e3 } "#, "id"), Some("-1.5e3"));
    }
}
