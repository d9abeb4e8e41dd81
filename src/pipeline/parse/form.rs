//! `application/x-www-form-urlencoded` bodies to a single JSON object record.
//!
//! - Pairs are split on `&` (empty pieces skipped), then on the first `=`; a
//!   piece without `=` is a key with value `""`.
//! - `+` is a space and `%XX` (exactly two hex digits) is a byte; anything else
//!   after `%` is a 400. Unlike the lenient WHATWG parser, nothing is passed
//!   through or replaced: the decoded bytes must be valid in the charset
//!   (UTF-8 unless the Content-Type says otherwise), else 400.
//! - A key seen once maps to a string; a repeated key maps to an array of
//!   strings in body order. Object keys come out sorted.
//! - More than `max_form_fields` pairs is a 413, detected before decoding.
//! - An empty body is one empty object.

use encoding_rs::Encoding;
use serde_json::{Map, Value};

use super::charset::decode_exact;
use super::error::ParseError;
use crate::urlencoded;

fn decode_component(raw: &[u8], encoding: &'static Encoding, field: usize) -> Result<String, ParseError> {
    let bytes = urlencoded::decode_strict(raw)
        .ok_or_else(|| ParseError::malformed("form", format!("invalid percent-encoding in field {field}")))?;
    match decode_exact(&bytes, encoding) {
        Ok(text) => Ok(text.into_owned()),
        Err(_) => Err(ParseError::malformed(
            "charset",
            format!("field {field} is not valid {}", encoding.name()),
        )),
    }
}

/// Parses a form body into one JSON object; see the module docs.
pub(crate) fn parse_form(body: &[u8], encoding: &'static Encoding, max_fields: usize) -> Result<Value, ParseError> {
    // Counting first is allocation-free, so an oversized body is refused cheaply.
    if urlencoded::pieces(body).nth(max_fields).is_some() {
        return Err(ParseError::TooManyFields { limit: max_fields });
    }
    let mut fields = Map::new();
    for (index, (raw_key, raw_value)) in urlencoded::pairs(body).enumerate() {
        let field = index + 1;
        let key = decode_component(raw_key, encoding, field)?;
        let value = Value::String(decode_component(raw_value, encoding, field)?);
        insert_repeated(&mut fields, key, value);
    }
    Ok(Value::Object(fields))
}

/// Adds a form field to its record: a name given again turns its value into an array, in order
/// (urlencoded forms and multipart text fields alike).
pub(crate) fn insert_repeated(fields: &mut serde_json::Map<String, Value>, key: String, value: Value) {
    match fields.get_mut(&key) {
        Some(Value::Array(values)) => values.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            fields.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::limits::ParseLimits;
    use super::super::records::parse_records;
    use super::super::records::tests::values;
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    fn parse(body: &[u8]) -> Result<Vec<Value>, ParseError> {
        parse_records(body, FORM, None, &ParseLimits::default()).map(|r| values(&r))
    }

    #[test]
    fn simple_fields() {
        assert_eq!(parse(b"a=1&b=two").unwrap(), vec![json!({"a": "1", "b": "two"})]);
    }

    #[test]
    fn repeated_keys_become_arrays_in_order() {
        assert_eq!(
            parse(b"tag=z&id=1&tag=a&tag=m").unwrap(),
            vec![json!({"tag": ["z", "a", "m"], "id": "1"})]
        );
    }

    #[test]
    fn plus_and_percent_decoding() {
        assert_eq!(
            parse(b"name=Jane+Doe&q=a%20b%2Bc%26d%3De&k%C3%A9y=%E2%98%95").unwrap(),
            vec![json!({"name": "Jane Doe", "q": "a b+c&d=e", "kéy": "☕"})]
        );
    }

    #[test]
    fn empty_pieces_missing_values_and_empty_body() {
        assert_eq!(
            parse(b"&&flag&x=&=v&").unwrap(),
            vec![json!({"flag": "", "x": "", "": "v"})]
        );
        assert_eq!(parse(b"").unwrap(), vec![json!({})]);
        assert_eq!(parse(b"a=b=c").unwrap(), vec![json!({"a": "b=c"})]);
    }

    #[test]
    fn bad_percent_encoding_is_400() {
        for body in [&b"a=%zz"[..], b"a=%4", b"a=%", b"%g0=1", b"a=1&b=%4x"] {
            let err = parse(body).unwrap_err();
            assert_eq!((err.status(), err.kind()), (400, "form"), "{body:?}");
        }
        assert_eq!(
            parse(b"a=1&b=%zz").unwrap_err().to_string(),
            "malformed form body: invalid percent-encoding in field 2"
        );
    }

    #[test]
    fn invalid_utf8_is_400() {
        for body in [&b"a=%ff"[..], b"a=%C3", b"a=\xff"] {
            let err = parse(body).unwrap_err();
            assert_eq!((err.status(), err.kind()), (400, "charset"), "{body:?}");
        }
    }

    #[test]
    fn other_charsets() {
        let ct = Some("application/x-www-form-urlencoded; charset=iso-8859-1");
        let records = parse_records(b"name=caf%E9", ct, None, &ParseLimits::default()).unwrap();
        assert_eq!(values(&records), vec![json!({"name": "café"})]);
        let ct = Some("application/x-www-form-urlencoded; charset=shift_jis");
        let err = parse_records(b"a=%82", ct, None, &ParseLimits::default()).unwrap_err();
        assert_eq!(err.kind(), "charset");
    }

    #[test]
    fn too_many_fields_is_413() {
        let limits = ParseLimits {
            max_form_fields: 3,
            ..ParseLimits::default()
        };
        assert!(parse_records(b"a=1&b=2&c=3&&", FORM, None, &limits).is_ok());
        let err = parse_records(b"a=1&b=2&c=3&d=%zz", FORM, None, &limits).unwrap_err();
        assert_eq!(err, ParseError::TooManyFields { limit: 3 });
        assert_eq!((err.status(), err.kind()), (413, "fields"));
        let body = "x=1&".repeat(1001);
        let err = parse(body.as_bytes()).unwrap_err();
        assert_eq!(err, ParseError::TooManyFields { limit: 1000 });
    }

    fn encode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b' ' => "+".to_owned(),
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
                other => format!("%{other:02X}"),
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn token_soup_never_panics(
            tokens in proptest::collection::vec(prop::sample::select(vec![
                "a", "=", "&", "+", "%", "%2", "%41", "%zz", "%ff", "%C3%A9", "\u{e9}", "\u{ff}",
            ]), 0..80),
            max_form_fields in 0usize..8,
        ) {
            let limits = ParseLimits { max_form_fields, ..ParseLimits::default() };
            if let Err(e) = parse_records(tokens.concat().as_bytes(), FORM, None, &limits) {
                prop_assert!(e.status() == 400 || e.status() == 413);
            }
        }

        #[test]
        fn round_trip(pairs in proptest::collection::vec(("\\PC{0,12}", "\\PC{0,12}"), 0..20)) {
            let body = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect::<Vec<_>>()
                .join("&");
            let mut expected = Map::new();
            for (k, v) in &pairs {
                let v = Value::String(v.clone());
                match expected.get_mut(k) {
                    Some(Value::Array(values)) => values.push(v),
                    Some(existing) => {
                        let first = existing.take();
                        *existing = Value::Array(vec![first, v]);
                    }
                    None => {
                        expected.insert(k.clone(), v);
                    }
                }
            }
            // An empty key and value encode as "=", which is still a pair.
            prop_assert_eq!(parse(body.as_bytes()).unwrap(), vec![Value::Object(expected)]);
        }
    }
}
