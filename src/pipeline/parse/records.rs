//! Turns a raw webhook body into records (JSON values): detection and dispatch.
//!
//! Entry point: [`parse_records`]. The Content-Type header picks the format
//! ([`detect_media_type`]); its `charset` parameter picks the text encoding ([`super::charset`]).
//! JSON is parsed in [`super::json`], XML in [`super::xml`], form bodies in [`super::form`],
//! `multipart/form-data` in [`super::multipart`], CSV in [`super::csv`], NDJSON in
//! [`super::ndjson`] (and a body-less request's query string in [`super::query`]); what they
//! produce is a [`Record`], what they refuse a [`ParseError`].
//!
//! Charset rules:
//! - `utf-8` (and `us-ascii`, which is a subset) is validated, never repaired.
//! - Any other label known to `encoding_rs` (`iso-8859-1`, `windows-1252`,
//!   `utf-16le`, `shift_jis`, ...) is decoded without replacement characters:
//!   a malformed byte sequence is a 400, not a silent U+FFFD.
//! - An unknown label is a 415.
//! - For JSON, NDJSON, CSV and XML a byte-order mark at the start of the body wins over the
//!   label (the WHATWG rule); a UTF-8 BOM is always skipped.
//! - XML without a `charset` parameter honours `<?xml ... encoding="..."?>`
//!   (RFC 7303), defaulting to UTF-8; CSV without one uses the listener's `content.csv.charset`.
//! - Form and multipart bodies must use an ASCII-compatible charset (UTF-16 is a 415).
//!
//! Depth: JSON nesting is limited to `min(max_depth, 127)` because serde_json
//! (without its `unbounded_depth` feature) refuses a 128th nested container.
//! XML element nesting honours `max_depth` up to [`XML_DEPTH_CEILING`].

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8};
use serde_json::Value;

use super::charset::{decode_text, resolve_charset, xml_encoding};
use super::error::echo;
use super::limits::XML_DEPTH_CEILING;
use crate::config::body_format::BodyFormat;
use crate::config::listener::ContentOptions;
use crate::config::resource_path::ResourcePath;

// Re-exported: callers of `parse_records` name what it takes and answers through it.
pub use super::error::ParseError;
pub use super::limits::ParseLimits;
pub use super::record::Record;

/// A `Content-Type` as the parsers need it: the format, and the parameters they read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// The body format its essence names.
    pub format: BodyFormat,
    /// The `charset` parameter, as written (echo-safe).
    pub charset: Option<String>,
    /// The `boundary` parameter of a multipart type, as written (not cut: it must match).
    pub boundary: Option<String>,
}

/// Decide the format from a Content-Type header value (None = header missing => UnsupportedMediaType).
///
/// Matching is case-insensitive; the `charset` parameter (quoted or not) is
/// returned as written, other parameters are ignored.
pub fn detect_format(content_type: Option<&str>) -> Result<(BodyFormat, Option<String>), ParseError> {
    let media = detect_media_type(content_type)?;
    Ok((media.format, media.charset))
}

/// [`detect_format`] with the parameters a format needs besides the charset (a multipart
/// body's `boundary`).
pub fn detect_media_type(content_type: Option<&str>) -> Result<MediaType, ParseError> {
    let raw = content_type.ok_or(ParseError::UnsupportedMediaType { found: None })?;
    let (essence, params) = raw.split_once(';').unwrap_or((raw, ""));
    let essence = essence.trim().to_ascii_lowercase();
    let format = classify_media_type(&essence).ok_or_else(|| ParseError::UnsupportedMediaType {
        found: Some(echo(&essence)),
    })?;
    let boundary = match format {
        BodyFormat::Multipart => media_param(params, "boundary"),
        _ => None,
    };
    Ok(MediaType {
        format,
        charset: media_param(params, "charset").map(|c| echo(&c)),
        boundary,
    })
}
fn classify_media_type(essence: &str) -> Option<BodyFormat> {
    let (ty, subtype) = essence.split_once('/')?;
    let is_token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
    };
    if !is_token(ty) || !is_token(subtype) {
        return None;
    }
    match (ty, subtype) {
        ("application", "json") => Some(BodyFormat::Json),
        ("application", "xml") | ("text", "xml") => Some(BodyFormat::Xml),
        ("application", "x-www-form-urlencoded") => Some(BodyFormat::Form),
        ("multipart", "form-data") => Some(BodyFormat::Multipart),
        ("text", "csv") => Some(BodyFormat::Csv),
        ("application", "x-ndjson" | "jsonl" | "x-jsonlines") => Some(BodyFormat::Ndjson),
        // A bare "+json" has no base subtype, so it is not a structured-syntax suffix.
        (_, s) if s.len() > 5 && s.ends_with("+json") => Some(BodyFormat::Json),
        (_, s) if s.len() > 4 && s.ends_with("+xml") => Some(BodyFormat::Xml),
        _ => None,
    }
}

/// The first parameter `wanted` (case-insensitive) in `; a=b; charset="x"`.
fn media_param(params: &str, wanted: &str) -> Option<String> {
    super::header_params::header_params(params)
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
        .map(|(_, value)| value)
}

/// The records of a body, by its Content-Type, with the default format options.
///
/// See the module docs for charset handling and [`super::xml`] / [`super::form`]
/// for how those formats map to JSON.
pub fn parse_records(
    body: &[u8],
    content_type: Option<&str>,
    resource_path: Option<&ResourcePath>,
    limits: &ParseLimits,
) -> Result<Vec<Record>, ParseError> {
    let media = detect_media_type(content_type)?;
    parse_detected(body, &media, resource_path, limits, &ContentOptions::default())
}

/// [`parse_records`] for a body whose media type [`detect_media_type`] already gave, with a
/// listener's format options.
pub fn parse_detected(
    body: &[u8],
    media: &MediaType,
    resource_path: Option<&ResourcePath>,
    limits: &ParseLimits,
    options: &ContentOptions,
) -> Result<Vec<Record>, ParseError> {
    let charset = media.charset.as_deref();
    let declared = charset.map(resolve_charset).transpose()?;
    match media.format {
        BodyFormat::Json => {
            let text = decode_text(body, declared.unwrap_or(UTF_8))?;
            super::json::parse_json(&text, resource_path, limits.max_depth)
        }
        BodyFormat::Xml => {
            let text = decode_text(body, xml_encoding(body, declared)?)?;
            let max_depth = limits.max_depth.min(XML_DEPTH_CEILING);
            super::xml::parse_xml(&text, resource_path, max_depth)
        }
        BodyFormat::Form => {
            let encoding = ascii_compatible(declared, charset)?;
            let body = if encoding == UTF_8 {
                body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
            } else {
                body
            };
            let record = super::form::parse_form(body, encoding, limits.max_form_fields)?;
            one_object(record, resource_path)
        }
        BodyFormat::Multipart => {
            let default_charset = declared.map(|_| ascii_compatible(declared, charset)).transpose()?;
            let record = super::multipart::parse_multipart(
                body,
                media.boundary.as_deref(),
                default_charset,
                &options.multipart,
            )?;
            one_object(record, resource_path)
        }
        BodyFormat::Csv => {
            let encoding = match declared {
                Some(encoding) => encoding,
                None => resolve_charset(&options.csv.charset)?,
            };
            let text = decode_text(body, encoding)?;
            super::csv::parse_csv(&text, &options.csv)
        }
        BodyFormat::Ndjson => {
            let text = decode_text(body, declared.unwrap_or(UTF_8))?;
            super::ndjson::parse_ndjson(&text, resource_path, limits.max_depth, options.ndjson.max_lines)
        }
        // Not a Content-Type: a body-less request's query string (`super::query`), never here.
        BodyFormat::Query => Err(ParseError::UnsupportedMediaType { found: None }),
    }
}

/// The declared encoding (UTF-8 if none) of a format whose syntax is ASCII (`&`, `=`, `%`,
/// boundaries): UTF-16 is refused.
fn ascii_compatible(
    declared: Option<&'static Encoding>,
    charset: Option<&str>,
) -> Result<&'static Encoding, ParseError> {
    let encoding = declared.unwrap_or(UTF_8);
    if encoding == UTF_16LE || encoding == UTF_16BE {
        return Err(ParseError::UnsupportedCharset(charset.unwrap_or_default().to_string()));
    }
    Ok(encoding)
}

/// The records of a format that gives one object (form, multipart, query): the object, or what
/// the resource path selects in it.
pub(crate) fn one_object(record: Value, resource_path: Option<&ResourcePath>) -> Result<Vec<Record>, ParseError> {
    let values = match resource_path {
        None => vec![record],
        Some(path) => select_json(record, path)?,
    };
    values.iter().map(Record::from_value).collect()
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Walks `path` through `value`, moving (not cloning) the selection out.
pub(crate) fn select_json(value: Value, path: &ResourcePath) -> Result<Vec<Value>, ParseError> {
    let fail = |reason: String| ParseError::ResourcePath {
        path: path.as_str().to_owned(),
        reason,
    };
    let mut current = value;
    for (i, segment) in path.segments().enumerate() {
        let parent = match i.checked_sub(1) {
            None => "the body".to_owned(),
            Some(previous) => format!("\"{}\"", path.prefix(previous)),
        };
        current = match current {
            Value::Object(mut map) => map
                .remove(segment)
                .ok_or_else(|| fail(format!("\"{}\" not found", path.prefix(i))))?,
            Value::Array(mut items) => {
                let len = items.len();
                if !segment.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(fail(format!("{parent} is an array, so \"{segment}\" must be an index")));
                }
                let index = segment
                    .parse::<usize>()
                    .ok()
                    .filter(|&index| index < len)
                    .ok_or_else(|| {
                        fail(format!(
                            "\"{}\" not found: {parent} has {len} element(s)",
                            path.prefix(i)
                        ))
                    })?;
                items.swap_remove(index)
            }
            other => {
                return Err(fail(format!(
                    "{parent} is {}, not an object or array",
                    json_type_name(&other)
                )));
            }
        };
    }
    match current {
        Value::Array(items) => Ok(items),
        Value::Object(_) => Ok(vec![current]),
        other => Err(fail(format!(
            "it selects {}, expected an array or object",
            json_type_name(&other)
        ))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::error::MAX_REASON_CHARS;
    use super::super::limits::RECORD_DEPTH_LIMIT;
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const JSON: Option<&str> = Some("application/json");

    fn parse(body: &[u8], ct: Option<&str>, path: Option<&str>) -> Result<Vec<Value>, ParseError> {
        let path = path.map(|p| ResourcePath::parse(p).expect("valid test path"));
        parse_records(body, ct, path.as_ref(), &ParseLimits::default()).map(|r| values(&r))
    }

    pub(crate) fn values(records: &[Record]) -> Vec<Value> {
        records.iter().map(Record::to_value).collect()
    }

    fn nested_arrays(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn json_object_is_one_record() {
        let records = parse(br#"{"a":1,"b":[1,2]}"#, JSON, None).unwrap();
        assert_eq!(records, vec![json!({"a": 1, "b": [1, 2]})]);
    }

    #[test]
    fn json_scalar_is_one_record() {
        assert_eq!(parse(b" 42 ", JSON, None).unwrap(), vec![json!(42)]);
    }

    #[test]
    fn json_array_gives_one_record_per_element() {
        let records = parse(br#"[{"a":1},{"a":2},3]"#, JSON, None).unwrap();
        assert_eq!(records, vec![json!({"a": 1}), json!({"a": 2}), json!(3)]);
    }

    #[test]
    fn json_empty_array_gives_no_records() {
        assert_eq!(parse(b"[]", JSON, None).unwrap(), Vec::<Value>::new());
    }

    #[test]
    fn json_resource_path_to_array() {
        let body = br#"{"data":{"items":[{"id":1},{"id":2}]},"meta":{}}"#;
        let records = parse(body, JSON, Some("data.items")).unwrap();
        assert_eq!(records, vec![json!({"id": 1}), json!({"id": 2})]);
    }

    #[test]
    fn json_resource_path_to_object() {
        let body = br#"{"data":{"object":{"id":"evt_1"}}}"#;
        let records = parse(body, JSON, Some("data.object")).unwrap();
        assert_eq!(records, vec![json!({"id": "evt_1"})]);
    }

    #[test]
    fn json_resource_path_numeric_segment_indexes_arrays() {
        let body = br#"{"batches":[{"items":[1]},{"items":[2,3]}]}"#;
        let records = parse(body, JSON, Some("batches.1.items")).unwrap();
        assert_eq!(records, vec![json!(2), json!(3)]);
        let err = parse(body, JSON, Some("batches.7.items")).unwrap_err();
        assert_eq!(err.kind(), "resource_path");
    }

    #[test]
    fn json_numeric_segment_is_a_key_in_objects() {
        let records = parse(br#"{"0":{"x":1}}"#, JSON, Some("0")).unwrap();
        assert_eq!(records, vec![json!({"x": 1})]);
    }

    #[test]
    fn json_resource_path_missing() {
        let err = parse(br#"{"data":{}}"#, JSON, Some("data.items")).unwrap_err();
        assert_eq!(
            err,
            ParseError::ResourcePath {
                path: "data.items".into(),
                reason: "\"data.items\" not found".into()
            }
        );
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn json_resource_path_through_scalar() {
        let err = parse(br#"{"data":"x"}"#, JSON, Some("data.items")).unwrap_err();
        assert!(matches!(&err, ParseError::ResourcePath { reason, .. } if reason.contains("is a string")));
    }

    #[test]
    fn json_resource_path_selecting_scalar_or_null() {
        for body in [&br#"{"data":{"items":5}}"#[..], br#"{"data":{"items":null}}"#] {
            let err = parse(body, JSON, Some("data.items")).unwrap_err();
            assert_eq!(err.kind(), "resource_path");
            assert_eq!(err.status(), 400);
        }
    }

    #[test]
    fn resource_path_parsing() {
        assert!(ResourcePath::parse("").is_err());
        assert!(ResourcePath::parse("a..b").is_err());
        assert!(ResourcePath::parse(".a").is_err());
        assert!(ResourcePath::parse("a.").is_err());
        let path = ResourcePath::parse("soap:Envelope.soap:Body").unwrap();
        assert_eq!(path.as_str(), "soap:Envelope.soap:Body");
        assert_eq!(path.segments().collect::<Vec<_>>(), ["soap:Envelope", "soap:Body"]);
        assert_eq!(path.prefix(0), "soap:Envelope");
        assert_eq!(path.prefix(1), "soap:Envelope.soap:Body");
    }

    #[test]
    fn json_depth_129_is_too_deep() {
        let err = parse(nested_arrays(129).as_bytes(), JSON, None).unwrap_err();
        // Its records (the elements) are already deeper than a record may be.
        assert_eq!(
            err,
            ParseError::TooDeep {
                limit: RECORD_DEPTH_LIMIT
            }
        );
        assert_eq!((err.status(), err.kind()), (400, "depth"));
        let object = format!("{}1{}", r#"{"a":"#.repeat(128), "}".repeat(128));
        assert_eq!(
            parse(object.as_bytes(), JSON, None).unwrap_err(),
            ParseError::TooDeep {
                limit: RECORD_DEPTH_LIMIT
            }
        );
        // With a resource path the whole body is checked against the body limit first.
        let path = format!("{{\"x\":{}}}", nested_arrays(128));
        assert_eq!(
            parse(path.as_bytes(), JSON, Some("x")).unwrap_err(),
            ParseError::TooDeep { limit: 127 }
        );
    }

    #[test]
    fn json_depth_limit_below_serde_json_is_enforced() {
        let limits = ParseLimits {
            max_depth: 3,
            ..ParseLimits::default()
        };
        let ok = parse_records(br#"[{"a":[1]}]"#, JSON, None, &limits);
        assert!(ok.is_ok());
        let err = parse_records(br#"[{"a":[[1]]}]"#, JSON, None, &limits).unwrap_err();
        assert_eq!(err, ParseError::TooDeep { limit: 3 });
        // Brackets inside strings are data, not nesting.
        let ok = parse_records(br#"{"a":"[[[[\"[[[["}"#, JSON, None, &limits);
        assert!(ok.is_ok());
    }

    #[test]
    fn json_invalid_is_400_with_short_reason() {
        let err = parse(b"{\"a\": }", JSON, None).unwrap_err();
        assert_eq!(
            err,
            ParseError::Malformed {
                kind: "json",
                reason: "expected value at line 1 column 7".into()
            }
        );
        assert_eq!(err.status(), 400);
        assert_eq!(
            err.to_string(),
            "malformed JSON body: expected value at line 1 column 7"
        );
    }

    #[test]
    fn json_empty_body_is_malformed() {
        for body in [&b""[..], b"  \r\n\t"] {
            let err = parse(body, JSON, None).unwrap_err();
            assert_eq!(err, ParseError::malformed("json", "empty body"));
        }
    }

    #[test]
    fn json_suffix_media_types() {
        for ct in [
            "application/vnd.api+json",
            "application/problem+json; charset=utf-8",
            "APPLICATION/JSON",
            "application/cloudevents+json",
        ] {
            assert_eq!(parse(b"{}", Some(ct), None).unwrap(), vec![json!({})], "{ct}");
        }
    }

    #[test]
    fn detect_format_variants() {
        let cases = [
            ("application/json", BodyFormat::Json, None),
            ("application/json;charset=UTF-8", BodyFormat::Json, Some("UTF-8")),
            ("text/xml; charset=\"iso-8859-1\"", BodyFormat::Xml, Some("iso-8859-1")),
            (
                "application/soap+xml; action=\"a;b\"; charset=utf-8",
                BodyFormat::Xml,
                Some("utf-8"),
            ),
            ("application/atom+xml", BodyFormat::Xml, None),
            (
                "Application/X-WWW-Form-Urlencoded ; Charset=latin1",
                BodyFormat::Form,
                Some("latin1"),
            ),
        ];
        for (ct, format, charset) in cases {
            let (f, c) = detect_format(Some(ct)).unwrap();
            assert_eq!((f, c.as_deref()), (format, charset), "{ct}");
        }
    }

    #[test]
    fn unsupported_media_types_are_415_and_list_accepted_types() {
        for ct in [
            None,
            Some("text/plain"),
            Some("application/octet-stream"),
            Some("multipart/mixed; boundary=x"),
            Some("json"),
            Some("application/+json"),
            Some(""),
        ] {
            let err = parse(b"{}", ct, None).unwrap_err();
            assert!(matches!(err, ParseError::UnsupportedMediaType { .. }), "{ct:?}");
            assert_eq!((err.status(), err.kind()), (415, "media_type"));
            let msg = err.to_string();
            for accepted in [
                "application/json",
                "+json",
                "+xml",
                "text/xml",
                "application/x-www-form-urlencoded",
            ] {
                assert!(msg.contains(accepted), "{msg}");
            }
        }
        let err = detect_format(None).unwrap_err();
        assert!(err.to_string().starts_with("missing Content-Type"));
        let err = detect_format(Some("text/plain")).unwrap_err();
        assert_eq!(
            err,
            ParseError::UnsupportedMediaType {
                found: Some("text/plain".into())
            }
        );
    }

    #[test]
    fn latin1_json() {
        let body = b"{\"name\":\"caf\xe9\"}";
        let records = parse(body, Some("application/json; charset=iso-8859-1"), None).unwrap();
        assert_eq!(records, vec![json!({"name": "café"})]);
        // The same bytes claimed as UTF-8 are rejected, not repaired.
        let err = parse(body, JSON, None).unwrap_err();
        assert_eq!((err.kind(), err.status()), ("charset", 400));
    }

    #[test]
    fn utf16le_json() {
        let text = "{\"name\":\"café ☕\"}";
        let body: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let ct = Some("application/json; charset=utf-16le");
        assert_eq!(parse(&body, ct, None).unwrap(), vec![json!({"name": "café ☕"})]);
        // Odd byte count: malformed UTF-16, which must not be papered over.
        let err = parse(&body[..body.len() - 1], ct, None).unwrap_err();
        assert_eq!(err.kind(), "charset");
        // A BOM picks the encoding even without a charset parameter.
        let mut with_bom = vec![0xFF, 0xFE];
        with_bom.extend_from_slice(&body);
        assert_eq!(parse(&with_bom, JSON, None).unwrap(), vec![json!({"name": "café ☕"})]);
    }

    #[test]
    fn utf8_bom_is_skipped() {
        assert_eq!(
            parse(b"\xEF\xBB\xBF{\"a\":1}", JSON, None).unwrap(),
            vec![json!({"a": 1})]
        );
    }

    #[test]
    fn us_ascii_is_validated_as_utf8() {
        let ct = Some("application/json; charset=us-ascii");
        assert_eq!(parse(b"{\"a\":1}", ct, None).unwrap(), vec![json!({"a": 1})]);
        assert_eq!(parse(b"{\"a\":\"\xff\"}", ct, None).unwrap_err().kind(), "charset");
    }

    #[test]
    fn unknown_charset_is_415() {
        for label in ["klingon", "", "iso-2022-kr"] {
            let ct = format!("application/json; charset={label}");
            let err = parse(b"{}", Some(&ct), None).unwrap_err();
            assert_eq!(err, ParseError::UnsupportedCharset(label.into()));
            assert_eq!((err.status(), err.kind()), (415, "charset"));
        }
    }

    #[test]
    fn invalid_utf8_json_is_charset_error() {
        let err = parse(b"{\"a\":\"\xc3\x28\"}", JSON, None).unwrap_err();
        assert_eq!(err, ParseError::malformed("charset", "invalid UTF-8 at byte 6"));
    }

    #[test]
    fn shift_jis_json() {
        let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode("{\"k\":\"日本\"}");
        let records = parse(&bytes, Some("application/json; charset=shift_jis"), None).unwrap();
        assert_eq!(records, vec![json!({"k": "日本"})]);
    }

    #[test]
    fn malformed_reason_is_bounded() {
        let err = ParseError::malformed("xml", "x".repeat(10_000));
        let ParseError::Malformed { reason, .. } = &err else {
            unreachable!()
        };
        assert!(reason.chars().count() <= MAX_REASON_CHARS + 1);
        let long_type = format!("text/{}", "a".repeat(10_000));
        let msg = detect_format(Some(&long_type)).unwrap_err().to_string();
        assert!(msg.len() < 400, "{msg}");
    }

    #[test]
    fn form_with_resource_path_walks_the_form_object() {
        let ct = Some("application/x-www-form-urlencoded");
        let records = parse(b"id=1&tag=a&tag=b", ct, Some("tag")).unwrap();
        assert_eq!(records, vec![json!("a"), json!("b")]);
        assert_eq!(parse(b"id=1", ct, Some("id")).unwrap_err().kind(), "resource_path");
    }

    #[test]
    fn form_rejects_utf16() {
        let ct = Some("application/x-www-form-urlencoded; charset=utf-16le");
        assert_eq!(parse(b"a=b", ct, None).unwrap_err().status(), 415);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..256),
            ct in prop::sample::select(vec![
                "application/json",
                "application/json; charset=utf-16be",
                "application/json; charset=windows-1252",
                "text/xml",
                "text/xml; charset=shift_jis",
                "application/x-www-form-urlencoded",
                "application/x-www-form-urlencoded; charset=iso-8859-1",
            ]),
            path in prop::option::of(prop::sample::select(vec!["a", "a.b", "0", "a.0.b"])),
        ) {
            let path = path.map(|p| ResourcePath::parse(p).unwrap());
            let limits = ParseLimits { max_depth: 8, max_form_fields: 16 };
            let _ = parse_records(&body, Some(ct), path.as_ref(), &limits);
            let _ = parse_records(&body, Some(ct), path.as_ref(), &ParseLimits::default());
        }

        #[test]
        fn json_token_soup_never_panics(
            tokens in proptest::collection::vec(prop::sample::select(vec![
                "[", "]", "{", "}", ",", ":", "\"a\"", "\"\\\"[\"", "1", "-2.5e3", "null", "true", " ", "\\",
            ]), 0..200),
        ) {
            let body = tokens.concat();
            let limits = ParseLimits { max_depth: 5, ..ParseLimits::default() };
            match parse_records(body.as_bytes(), JSON, None, &limits) {
                Ok(_) => prop_assert!(serde_json::from_str::<Value>(&body).is_ok()),
                Err(e) => prop_assert_eq!(e.status(), 400),
            }
        }

        #[test]
        fn json_array_of_n_objects_gives_n_records(n in 0usize..50, key in "[a-z]{1,8}") {
            let items: Vec<Value> = (0..n)
                .map(|i| {
                    let mut object = serde_json::Map::new();
                    object.insert(key.clone(), json!(i));
                    Value::Object(object)
                })
                .collect();
            let body = serde_json::to_vec(&json!({"data": {"items": items}})).unwrap();
            let records = parse(&body, JSON, Some("data.items")).unwrap();
            prop_assert_eq!(records, items);
        }

        #[test]
        fn content_type_parsing_never_panics(ct in "\\PC{0,60}") {
            let _ = detect_format(Some(&ct));
        }
    }
}
