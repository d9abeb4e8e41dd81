//! One pass over a JSON body without a resource path: validated, depth-checked, split into
//! records and copied without whitespace at once, instead of serde_json's validation followed by
//! a second pass that copies (and a third that splits an array body).
//!
//! It is an accelerator, not a second definition of JSON: it accepts only what the general path
//! (`super::json`) accepts, with the same records, and answers `None` for anything else — a
//! syntax error, a depth over the limit, an unpaired surrogate, a number a double cannot hold —
//! so that the general path decides and names the problem exactly as it always has. The
//! property tests at the bottom hold the two paths to that.
//!
//! The scan only reads: a record's text is the body's, less the whitespace between tokens, so
//! it is copied in runs — each run of the body between two stretches of whitespace in one copy
//! ([`Compact`]) — and a record without whitespace (what most senders send) is one copy of its
//! slice of the body. The runs are slices of the `&str` body cut at ASCII whitespace, so the copy
//! needs no UTF-8 check.

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
            // One buffer for the records that hold whitespace, each then copied out at its size.
            let mut compact = Compact::new(text, at, 0);
            loop {
                compact.restart(at);
                let (after, id) = compact_value(&mut compact, at, max_depth)?;
                let json = compact.copy_out(after);
                records.push(Record::from_compact_json_noting_id(json, id));
                at = skip_whitespace(bytes, after);
                match bytes.get(at) {
                    Some(b',') => at = skip_whitespace(bytes, at + 1),
                    Some(b']') => break at + 1,
                    _ => return None,
                }
            }
        }
    } else {
        let mut compact = Compact::new(text, start, bytes.len() - start);
        let (at, id) = compact_value(&mut compact, start, limit.min(RECORD_DEPTH_LIMIT))?;
        records.push(Record::from_compact_json_noting_id(compact.into_string(at), id));
        at
    };
    // Only whitespace may follow the value.
    (skip_whitespace(bytes, end) == bytes.len()).then_some(records)
}

/// A record's text being gathered: the runs of the body before the last whitespace left out are
/// in `out`, the run since then (`text[pending..]`, up to where the scan is) is not copied yet.
struct Compact<'t> {
    text: &'t str,
    out: String,
    pending: usize,
    /// What `out` reserves when it is first written to.
    reserve: usize,
}

impl<'t> Compact<'t> {
    /// A record starting at `start`; `reserve`: the most it can hold, when it is the whole body
    /// (0: the buffer grows as needed, and serves every element of an array body).
    fn new(text: &'t str, start: usize, reserve: usize) -> Compact<'t> {
        Compact {
            text,
            out: String::new(),
            pending: start,
            reserve,
        }
    }

    /// Starts the next record at `start`, keeping the buffer.
    fn restart(&mut self, start: usize) {
        self.out.clear();
        self.pending = start;
    }

    /// Skips whitespace at `at` inside the record: the run before it is copied, the whitespace is not.
    #[inline(always)]
    fn skip_whitespace(&mut self, at: usize) -> usize {
        match self.text.as_bytes().get(at) {
            Some(b' ' | b'\t' | b'\n' | b'\r') => self.gap(at),
            _ => at,
        }
    }

    /// Whitespace at `at`: the run before it goes into `out`; returns the index after it.
    #[inline(never)]
    fn gap(&mut self, at: usize) -> usize {
        if self.out.capacity() == 0 {
            self.out.reserve(self.reserve);
        }
        self.out.push_str(&self.text[self.pending..at]);
        self.pending = skip_whitespace(self.text.as_bytes(), at);
        self.pending
    }

    /// Where the body's byte at `at` (not before the current run) lands in the record.
    fn position(&self, at: usize) -> usize {
        self.out.len() + (at - self.pending)
    }

    /// The record, ending at `end`, copied out (the buffer kept for the next one).
    fn copy_out(&mut self, end: usize) -> String {
        let last_run = &self.text[self.pending..end];
        if self.out.is_empty() {
            return last_run.to_owned();
        }
        self.out.push_str(last_run);
        self.out.as_str().to_owned()
    }

    /// The record, ending at `end`.
    fn into_string(mut self, end: usize) -> String {
        let last_run = &self.text[self.pending..end];
        if self.out.is_empty() {
            return last_run.to_owned();
        }
        self.out.push_str(last_run);
        self.out
    }
}

fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// Checks the value starting at `at` (no whitespace before it), gathering it into `compact`
/// (whose current record it starts); returns the index after it, and where in the record the
/// value's top-level `id` member is (the page stage's default trace key). Containers nest at
/// most `max_depth`.
fn compact_value(compact: &mut Compact<'_>, mut at: usize, max_depth: usize) -> Option<(usize, IdAt)> {
    const { assert!(RECORD_DEPTH_LIMIT < 128, "open containers are bits of a u128") };
    let bytes = compact.text.as_bytes();
    // Bit `d` is set when the container at depth `d + 1` is an object.
    let mut objects: u128 = 0;
    let mut depth = 0usize;
    // Whether the innermost open container is an object.
    let mut in_object = false;
    let mut id = IdAt::Absent;
    // Where in the record the value of a top-level `id` member being read starts.
    let mut id_value_start = None;
    loop {
        // A value starts at `at`.
        match *bytes.get(at)? {
            b'"' => at = string_end(bytes, at)?.0,
            open @ (b'{' | b'[') => {
                depth += 1;
                if depth > max_depth {
                    return None;
                }
                let close = if open == b'{' { b'}' } else { b']' };
                at = compact.skip_whitespace(at + 1);
                if bytes.get(at) == Some(&close) {
                    at += 1;
                    depth -= 1;
                } else {
                    let bit = 1u128 << (depth - 1);
                    in_object = open == b'{';
                    if in_object {
                        objects |= bit;
                        at = member_key(compact, at, depth, &mut id, &mut id_value_start)?;
                    } else {
                        objects &= !bit;
                    }
                    continue;
                }
            }
            b't' => at = literal_end(bytes, at, b"true")?,
            b'f' => at = literal_end(bytes, at, b"false")?,
            b'n' => at = literal_end(bytes, at, b"null")?,
            b'-' | b'0'..=b'9' => at = number_end(compact.text, at)?,
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
                        let end = compact.position(at);
                        id = IdAt::At(u32::try_from(start).ok()?, u32::try_from(end).ok()?);
                    }
                }
            }
            at = compact.skip_whitespace(at);
            match (*bytes.get(at)?, in_object) {
                (b',', _) => {
                    at = compact.skip_whitespace(at + 1);
                    if in_object {
                        at = member_key(compact, at, depth, &mut id, &mut id_value_start)?;
                    }
                    break;
                }
                (b'}', true) | (b']', false) => {
                    at += 1;
                    depth -= 1;
                    in_object = depth > 0 && objects & (1u128 << (depth - 1)) != 0;
                }
                _ => return None,
            }
        }
    }
}

/// A member's key and its colon; returns where its value starts. A top-level (`depth` 1) key
/// `id` marks where its value will start in the record; a top-level key with escapes, which
/// only decoding could compare, leaves the `id` to be looked up later.
#[inline(always)]
fn member_key(
    compact: &mut Compact<'_>,
    at: usize,
    depth: usize,
    id: &mut IdAt,
    id_value_start: &mut Option<usize>,
) -> Option<usize> {
    let bytes = compact.text.as_bytes();
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let (end, escaped) = string_end(bytes, at)?;
    let is_id = depth == 1 && !escaped && &bytes[at..end] == b"\"id\"";
    if depth == 1 && escaped {
        *id = IdAt::Unknown;
    }
    let at = compact.skip_whitespace(end);
    if bytes.get(at) != Some(&b':') {
        return None;
    }
    let at = compact.skip_whitespace(at + 1);
    if is_id {
        *id_value_start = Some(compact.position(at));
    }
    Some(at)
}

fn literal_end(bytes: &[u8], at: usize, literal: &[u8]) -> Option<usize> {
    let end = at + literal.len();
    (bytes.get(at..end)? == literal).then_some(end)
}

/// The end of a number as JSON spells it (`-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`),
/// refused when a double cannot hold it ([`check_number`], for the numbers that may overflow).
fn number_end(text: &str, at: usize) -> Option<usize> {
    let bytes = text.as_bytes();
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
    let mut exponent = false;
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        exponent = true;
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(i)?;
    }
    if exponent || i - at > MAX_SAFE_NUMBER_LEN {
        check_number(&text[at..i]).ok()?;
    }
    Some(i)
}

/// A string: no raw control characters, only JSON's escapes, `\u` surrogates in pairs. Returns
/// the index after it, and whether it holds escapes.
#[inline(always)]
fn string_end(bytes: &[u8], at: usize) -> Option<(usize, bool)> {
    let mut i = at + 1;
    let mut escaped = false;
    loop {
        i = find_string_special(bytes, i);
        match *bytes.get(i)? {
            b'"' => return Some((i + 1, escaped)),
            b'\\' => {
                escaped = true;
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

/// The longest number without an exponent that a double always holds (`1e308` has 309 digits).
const MAX_SAFE_NUMBER_LEN: usize = 300;

/// Refuses a number that overflows a double (`1e400`, 400 digits): serde_json's skipping parser
/// accepts its syntax, but a JSON parser building values — the worker's, and hookpipe's own for
/// samples and templates — refuses it, which would poison the whole page. Only a number with an
/// exponent or more than 300 characters can overflow; those are parsed to check.
pub(super) fn check_number(number: &str) -> Result<(), ParseError> {
    let may_overflow = number.len() > MAX_SAFE_NUMBER_LEN || number.bytes().any(|b| b == b'e' || b == b'E');
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
