//! One pass over a JSON body without a resource path: validated, depth-checked, split into
//! records and copied without whitespace at once, instead of serde_json's validation followed by
//! a second pass that copies (and a third that splits an array body).
//!
//! It is an accelerator, not a second definition of JSON: it accepts only what the general path
//! (`super::json`) accepts, with the same records, and answers `None` for anything else — a
//! syntax error, a depth over the limit, an unpaired surrogate, a number a double cannot hold —
//! so that the general path decides and names the problem exactly as it always has. The
//! property tests at the bottom hold the two paths to that.

use super::error::ParseError;
use super::limits::RECORD_DEPTH_LIMIT;
use super::record::{IdAt, Record};

/// The records of `text` (a body with no resource path, whose nesting `limit` is already capped
/// at serde_json's): its elements if it is an array, else the body itself. `None` unless the
/// body is valid and within the limits.
pub(super) fn records(text: &str, limit: usize) -> Option<Vec<Record>> {
    let bytes = text.as_bytes();
    let start = skip_whitespace(bytes, 0);
    let mut records = Vec::new();
    let end = if bytes.get(start) == Some(&b'[') {
        // The body's elements sit one level below it.
        let max_depth = limit.saturating_sub(1).min(RECORD_DEPTH_LIMIT);
        let mut at = skip_whitespace(bytes, start + 1);
        if bytes.get(at) == Some(&b']') {
            at + 1
        } else {
            let mut scratch = Vec::with_capacity(256);
            loop {
                scratch.clear();
                let (after, id) = compact_value(bytes, at, max_depth, &mut scratch)?;
                at = after;
                records.push(record(scratch.clone(), id)?);
                at = skip_whitespace(bytes, at);
                match bytes.get(at) {
                    Some(b',') => at = skip_whitespace(bytes, at + 1),
                    Some(b']') => break at + 1,
                    _ => return None,
                }
            }
        }
    } else {
        let mut out = Vec::with_capacity(bytes.len() - start);
        let (at, id) = compact_value(bytes, start, limit.min(RECORD_DEPTH_LIMIT), &mut out)?;
        records.push(record(out, id)?);
        at
    };
    // Only whitespace may follow the value.
    (skip_whitespace(bytes, end) == bytes.len()).then_some(records)
}

fn record(compact: Vec<u8>, id: IdAt) -> Option<Record> {
    // Only ASCII whitespace was left out, between tokens: still UTF-8.
    let json = String::from_utf8(compact).ok()?;
    Some(Record::from_compact_json_noting_id(json, id))
}

fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// Copies the value starting at `at` (no whitespace before it) into `out` (which it starts) without
/// whitespace, checking it on the way; returns the index after it, and where in `out` the value's
/// top-level `id` member is (the page stage's default trace key). Containers nest at most
/// `max_depth`.
fn compact_value(bytes: &[u8], mut at: usize, max_depth: usize, out: &mut Vec<u8>) -> Option<(usize, IdAt)> {
    const { assert!(RECORD_DEPTH_LIMIT < 128, "open containers are bits of a u128") };
    debug_assert!(out.is_empty());
    // Bit `d` is set when the container at depth `d + 1` is an object.
    let mut objects: u128 = 0;
    let mut depth = 0usize;
    let mut id = IdAt::Absent;
    // Where in `out` the value of a top-level `id` member being copied starts.
    let mut id_value_start = None;
    loop {
        // A value starts at `at`.
        match *bytes.get(at)? {
            b'"' => at = copy_string(bytes, at, out)?,
            open @ (b'{' | b'[') => {
                depth += 1;
                if depth > max_depth {
                    return None;
                }
                out.push(open);
                let close = if open == b'{' { b'}' } else { b']' };
                at = skip_whitespace(bytes, at + 1);
                if bytes.get(at) == Some(&close) {
                    out.push(close);
                    at += 1;
                    depth -= 1;
                } else {
                    let bit = 1u128 << (depth - 1);
                    if open == b'{' {
                        objects |= bit;
                        at = copy_key(bytes, at, out, depth, &mut id, &mut id_value_start)?;
                    } else {
                        objects &= !bit;
                    }
                    continue;
                }
            }
            b't' => at = copy_literal(bytes, at, b"true", out)?,
            b'f' => at = copy_literal(bytes, at, b"false", out)?,
            b'n' => at = copy_literal(bytes, at, b"null", out)?,
            b'-' | b'0'..=b'9' => at = copy_number(bytes, at, out)?,
            _ => return None,
        }
        // After a value: the next member or element, or the end of containers.
        loop {
            if depth == 0 {
                return Some((at, id));
            }
            if depth == 1 {
                if let Some(start) = id_value_start.take() {
                    if id != IdAt::Unknown {
                        id = IdAt::At(u32::try_from(start).ok()?, u32::try_from(out.len()).ok()?);
                    }
                }
            }
            let in_object = objects & (1u128 << (depth - 1)) != 0;
            at = skip_whitespace(bytes, at);
            match (*bytes.get(at)?, in_object) {
                (b',', _) => {
                    out.push(b',');
                    at = skip_whitespace(bytes, at + 1);
                    if in_object {
                        at = copy_key(bytes, at, out, depth, &mut id, &mut id_value_start)?;
                    }
                    break;
                }
                (b'}', true) | (b']', false) => {
                    out.push(bytes[at]);
                    at += 1;
                    depth -= 1;
                }
                _ => return None,
            }
        }
    }
}

/// A member's key and its colon; returns where its value starts. A top-level (`depth` 1) key
/// `id` marks where its value will start in `out`; a top-level key with escapes, which only
/// decoding could compare, leaves the `id` to be looked up later.
fn copy_key(
    bytes: &[u8],
    at: usize,
    out: &mut Vec<u8>,
    depth: usize,
    id: &mut IdAt,
    id_value_start: &mut Option<usize>,
) -> Option<usize> {
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let end = copy_string(bytes, at, out)?;
    if depth == 1 {
        let key = &bytes[at..end];
        if key == b"\"id\"" {
            *id_value_start = Some(out.len() + 1);
        } else if key.contains(&b'\\') {
            *id = IdAt::Unknown;
        }
    }
    let at = skip_whitespace(bytes, end);
    if bytes.get(at) != Some(&b':') {
        return None;
    }
    out.push(b':');
    Some(skip_whitespace(bytes, at + 1))
}

fn copy_literal(bytes: &[u8], at: usize, literal: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let end = at + literal.len();
    if bytes.get(at..end)? != literal {
        return None;
    }
    out.extend_from_slice(literal);
    Some(end)
}

/// A number as JSON spells it (`-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`), refused
/// refused when a double cannot hold it ([`check_number`]).
fn copy_number(bytes: &[u8], at: usize, out: &mut Vec<u8>) -> Option<usize> {
    let digits = |mut i: usize| {
        let first = i;
        while matches!(bytes.get(i), Some(b'0'..=b'9')) {
            i += 1;
        }
        (i > first).then_some(i)
    };
    let mut i = at;
    if bytes[i] == b'-' {
        i += 1;
    }
    i = match bytes.get(i)? {
        b'0' => i + 1,
        b'1'..=b'9' => digits(i)?,
        _ => return None,
    };
    if bytes.get(i) == Some(&b'.') {
        i = digits(i + 1)?;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(i)?;
    }
    let number = &bytes[at..i];
    // ASCII by construction.
    check_number(std::str::from_utf8(number).ok()?).ok()?;
    out.extend_from_slice(number);
    Some(i)
}

/// A string: no raw control characters, only JSON's escapes, `\u` surrogates in pairs.
fn copy_string(bytes: &[u8], at: usize, out: &mut Vec<u8>) -> Option<usize> {
    let mut i = at + 1;
    loop {
        i = find_string_special(bytes, i);
        match *bytes.get(i)? {
            b'"' => break,
            b'\\' => {
                i = match *bytes.get(i + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i + 2,
                    b'u' => unicode_escape(bytes, i)?,
                    _ => return None,
                }
            }
            // A control character.
            _ => return None,
        }
    }
    out.extend_from_slice(&bytes[at..=i]);
    Some(i + 1)
}

/// The `\uXXXX` escape at `at` (its backslash), and the low surrogate that must follow a high
/// one; returns the index after them.
fn unicode_escape(bytes: &[u8], at: usize) -> Option<usize> {
    let unit = |at: usize| -> Option<u16> {
        let hex = bytes.get(at + 2..at + 6)?;
        hex.iter().try_fold(0u16, |unit, digit| {
            Some(unit << 4 | (*digit as char).to_digit(16)? as u16)
        })
    };
    match unit(at)? {
        0xD800..=0xDBFF => {
            let next = at + 6;
            let paired = bytes.get(next..next + 2) == Some(b"\\u") && matches!(unit(next)?, 0xDC00..=0xDFFF);
            paired.then_some(next + 6)
        }
        0xDC00..=0xDFFF => None,
        _ => Some(at + 6),
    }
}

/// The index of the first `"`, `\` or control character at or after `at` (or the end), eight
/// bytes at a time.
fn find_string_special(bytes: &[u8], mut at: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        // A byte that is zero (after the xor), or below 0x20: its high bit set in the mask. Only
        // bytes above the first true one can be flagged falsely (borrows run upwards), so the
        // lowest flag is exact.
        let mask = (quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash
            | word.wrapping_sub(ONES * 0x20) & !word)
            & HIGHS;
        if mask != 0 {
            return at + (mask.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while let Some(&byte) = bytes.get(at) {
        if byte == b'"' || byte == b'\\' || byte < 0x20 {
            break;
        }
        at += 1;
    }
    at
}

/// Refuses a number that overflows a double (`1e400`, 400 digits): serde_json's skipping parser
/// accepts its syntax, but a JSON parser building values — the worker's, and hookpipe's own for
/// samples and templates — refuses it, which would poison the whole page. Only a number with an
/// exponent or more than 300 characters can overflow; those are parsed to check.
pub(super) fn check_number(number: &str) -> Result<(), ParseError> {
    let may_overflow = number.len() > 300 || number.bytes().any(|b| b == b'e' || b == b'E');
    if may_overflow && serde_json::from_str::<serde_json::Number>(number).is_err() {
        return Err(ParseError::malformed("json", "number out of range"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::parse::json::parse_json_general;

    fn ours(text: &str, limit: usize) -> Option<Vec<String>> {
        records(text, limit).map(|records| records.iter().map(|r| r.json().to_string()).collect())
    }

    fn general(text: &str, limit: usize) -> Option<Vec<String>> {
        parse_json_general(text, None, limit)
            .ok()
            .map(|records| records.iter().map(|r| r.json().to_string()).collect())
    }

    /// Whatever the scan accepts, the general path accepts with the same records.
    fn agrees(text: &str, limit: usize) -> Result<(), String> {
        match ours(text, limit) {
            Some(records) if general(text, limit).as_ref() != Some(&records) => Err(format!(
                "{text:?}: scan {records:?}, general {:?}",
                parse_json_general(text, None, limit).map(|r| r.len())
            )),
            _ => Ok(()),
        }
    }

    #[test]
    fn accepts_what_the_general_path_accepts_with_the_same_records() {
        for text in [
            r#"{ "z" : 1.50 ,"a" : [ 1e3 , "x y\n\u00e9\"" ] ,"big": 123456789012345678901234567890 }"#,
            " [ {\"a\" : 1} , 2 , \"s\" , [ ] , { } , true , false , null , -0 , 0.5e-3 ] \n",
            r#"["\ud83d\ude00", "\/\b\f\r\t\\", "é€😀", "a\u0041"]"#,
            "[]",
            " {} ",
            "\"just a string\"",
            "-12.5E+3",
            r#"[1e300,-2.5E-400,12345678901234567890123,0.1,-0]"#,
        ] {
            assert!(ours(text, 127).is_some(), "{text}");
            agrees(text, 127).unwrap();
        }
    }

    #[test]
    fn leaves_everything_else_to_the_general_path() {
        let huge = format!("1{}", "0".repeat(400));
        let too_deep = format!("{}{}", "[".repeat(126), "]".repeat(126));
        for text in [
            "{oops",
            "[1,]",
            r#"{"a":1,}"#,
            "[01]",
            "[1.]",
            "[.5]",
            "[1e]",
            "[+1]",
            "[tru]",
            "[truex]",
            "{\"a\" 1}",
            "{1:2}",
            "[\"a\u{1}b\"]",
            r#"["\x"]"#,
            r#"["\u12G4"]"#,
            r#"["\ud83d"]"#,
            r#"["\ude00"]"#,
            r#"["\ud83d\u0041"]"#,
            r#"[1e400]"#,
            huge.as_str(),
            "[1] [2]",
            "[1] x",
            "\u{a0}[1]",
            too_deep.as_str(),
            "\"unterminated",
        ] {
            assert_eq!(ours(text, 127), None, "{text}");
        }
    }

    #[test]
    fn depth_limits_are_the_general_paths() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        for limit in [0, 1, 2, 5, 124, 125, 126, 127] {
            for depth in 0..=127 {
                let object = format!("{}{{}}{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
                for text in [nested(depth), object, format!("[{}]", nested(depth))] {
                    agrees(&text, limit).unwrap();
                    assert_eq!(
                        ours(&text, limit).is_some(),
                        general(&text, limit).is_some(),
                        "{limit} {text}"
                    );
                }
            }
        }
    }

    #[test]
    fn notes_the_top_level_id_as_the_member_scan_finds_it() {
        for text in [
            r#"{"id":"a","x":{"id":2}}"#,
            r#"{ "x" : [1, {"id": 3}], "id" : 7 , "id": {"deep": [1,2]} }"#,
            r#"{"x":1}"#,
            r#"{"\u0069d":"escaped","y":2}"#,
            r#"[{"id":1},{"y":{"id":2}},{"id":"a\"b"}]"#,
            r#""id""#,
            "{}",
        ] {
            for record in records(text, 127).unwrap() {
                let scanned = super::super::json::member_of_valid_object(record.json(), "id");
                if let Some(noted) = record.noted_id() {
                    assert_eq!(noted, scanned, "{text}");
                } else {
                    assert!(
                        record.json().contains('\\'),
                        "only escaped keys are left unnoted: {text}"
                    );
                }
            }
        }
    }

    #[test]
    fn finds_specials_at_every_offset() {
        for len in 0..20 {
            for special in [b'"', b'\\', 0x01, 0x1f] {
                for at in 0..=len {
                    let mut bytes = vec![b'a'; len];
                    bytes.extend_from_slice(&[0xc3, 0xa9, b' ', 0x7f]);
                    if at < len {
                        bytes[at] = special;
                    }
                    let expected = bytes.iter().position(|b| *b == b'"' || *b == b'\\' || *b < 0x20);
                    assert_eq!(
                        find_string_special(&bytes, 0),
                        expected.unwrap_or(bytes.len()),
                        "{bytes:?}"
                    );
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Valid JSON, compact or pretty: the scan accepts it, with the general path's records.
        #[test]
        fn valid_bodies_are_scanned_as_the_general_path_parses_them(
            value in json_value(5),
            pretty in proptest::bool::ANY,
        ) {
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                serde_json::to_string(&value).unwrap()
            };
            proptest::prop_assert!(ours(&text, 127).is_some(), "{}", text);
            proptest::prop_assert_eq!(ours(&text, 127), general(&text, 127));
            for record in records(&text, 127).unwrap() {
                if let Some(noted) = record.noted_id() {
                    let scanned = super::super::json::member_of_valid_object(record.json(), "id");
                    proptest::prop_assert_eq!(noted, scanned);
                }
            }
        }

        /// Broken bodies (a byte changed, inserted or removed): never accepted where the
        /// general path refuses, never with other records.
        #[test]
        fn broken_bodies_are_never_accepted_otherwise(
            value in json_value(4),
            edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::sample::select(
                vec![b'"', b'\\', b',', b':', b'[', b']', b'{', b'}', b'0', b'-', b'e', b'.', b'u', b' ', b'\n', 0x01, b'x']
            ), 0..3usize), 1..4),
        ) {
            let mut bytes = serde_json::to_string(&value).unwrap().into_bytes();
            for (position, byte, kind) in edits {
                let at = position % (bytes.len() + 1);
                match kind {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ if at < bytes.len() => { bytes.remove(at); }
                    _ => {}
                }
            }
            if let Ok(text) = std::str::from_utf8(&bytes) {
                if let Err(problem) = agrees(text, 127) {
                    return Err(proptest::test_runner::TestCaseError::fail(problem));
                }
            }
        }
    }

    /// Arbitrary JSON values: escapes, non-ASCII text, surrogate pairs, numbers of every shape.
    fn json_value(depth: u32) -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let number = prop_oneof![
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            "-?(0|[1-9][0-9]{0,30})(\\.[0-9]{1,5})?([eE][+-]?[0-9]{1,3})?".prop_filter_map("a double", |text| {
                serde_json::from_str::<serde_json::Number>(&text)
                    .ok()
                    .map(serde_json::Value::Number)
            }),
        ];
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            number,
            "[a-z\"\\\\\n\t\u{1}\u{1f}\u{e9}\u{1F600}{}\\[\\],: ]{0,12}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(depth, 48, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
                proptest::collection::vec(("[a-z\"\u{e9}]{0,3}", inner), 0..5)
                    .prop_map(|members| serde_json::Value::Object(members.into_iter().collect())),
            ]
        })
    }
}
