//! `application/x-www-form-urlencoded` bodies into one record, with and without a resource path.
//! Invariants: the record is compact JSON; in UTF-8 it is exactly what a reference decoder
//! written here makes of the body (pairs on `&` then the first `=`, `+` a space, `%XX` a byte,
//! repeated keys an array), a body it decodes is never refused, one it cannot is; more fields
//! than the limit is a 413; the record's text is bounded by the body's (6 bytes per byte at
//! most: a control byte becomes `\u00XX`; plus `{"":""}`).
#![no_main]

use hookpipe::config::listener::ContentOptions;
use hookpipe::fuzzing::serde_json::{Map, Value};
use hookpipe::pipeline::parse::records::{detect_media_type, parse_detected, ParseLimits};
use hookpipe_fuzz::{check_error, check_records, reference_one_object, resource_path, total_len, Input};
use libfuzzer_sys::fuzz_target;

fn decode(raw: &[u8]) -> Option<String> {
    let mut bytes = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        match raw[at] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(raw.get(at + 1..at + 3)?).ok()?;
                if !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                    return None;
                }
                bytes.push(u8::from_str_radix(hex, 16).ok()?);
                at += 2;
            }
            other => bytes.push(other),
        }
        at += 1;
    }
    String::from_utf8(bytes).ok()
}

/// The body's object as the README describes it, `None` when a field does not decode.
fn reference(body: &[u8]) -> Option<Value> {
    let mut fields = Map::new();
    for piece in body.split(|byte| *byte == b'&').filter(|piece| !piece.is_empty()) {
        let (key, value) = match piece.iter().position(|byte| *byte == b'=') {
            Some(equals) => (&piece[..equals], &piece[equals + 1..]),
            None => (piece, &b""[..]),
        };
        let key = decode(key)?;
        let value = Value::String(decode(value)?);
        match fields.get_mut(&key) {
            Some(Value::Array(values)) => values.push(value),
            Some(existing) => *existing = Value::Array(vec![existing.take(), value]),
            None => {
                fields.insert(key, value);
            }
        }
    }
    Some(Value::Object(fields))
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let path = resource_path(&mut input);
    let max_form_fields = [1000, 2, 1][input.below(3)];
    let content_type = [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        "application/x-www-form-urlencoded; charset=iso-8859-1",
        "application/x-www-form-urlencoded; charset=utf-16",
    ][input.below(4)];
    let body = input.rest();
    let media = detect_media_type(Some(content_type)).expect("a form type");
    let limits = ParseLimits {
        max_depth: 128,
        max_form_fields,
    };
    let fields = body
        .split(|byte| *byte == b'&')
        .filter(|piece| !piece.is_empty())
        .count();
    let utf8 = media.charset.as_deref().is_none_or(|charset| charset == "utf-8");
    let text = if utf8 {
        body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
    } else {
        body
    };
    let expected = reference(text).map(|object| reference_one_object(object, path.as_ref()));
    match parse_detected(body, &media, path.as_ref(), &limits, &ContentOptions::default()) {
        Ok(records) => {
            let values = check_records(&records);
            assert!(fields <= max_form_fields, "{fields} fields accepted over the limit");
            assert!(
                total_len(&records) <= 6 * body.len() + 8,
                "records are too long for the body"
            );
            if utf8 {
                let expected = expected.expect("an accepted body decodes");
                assert_eq!(Some(values), expected, "the record is not the body's fields");
            }
        }
        Err(error) => {
            check_error(&error);
            if fields > max_form_fields && !content_type.ends_with("utf-16") {
                assert_eq!(error.status(), 413, "too many fields: {error:?}");
            } else if utf8 {
                // Refused: it does not decode, or the path selects nothing.
                assert!(
                    matches!(expected, None | Some(None)),
                    "refused a body that decodes: {error:?}"
                );
            }
        }
    }
});
