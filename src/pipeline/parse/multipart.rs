//! `multipart/form-data` bodies (RFC 7578) to a single JSON object record, with a small bounded
//! parser of its own: the body is already in memory (bounded by the listener's body limit), so
//! parts are borrowed slices found with one `memmem` scan, nothing is streamed or buffered twice.
//!
//! - A part with a `filename` (or `filename*`) parameter is a file: it becomes
//!   `{"filename", "content_type", "size", "sha256", "content_base64"}` under its field name
//!   (`content_type` is `null` when the part has none).
//! - Any other part is a text field: a string, decoded in the part's `charset`, else the value of
//!   a preceding `_charset_` field (RFC 7578 §4.6), else the request's `charset` parameter, else
//!   UTF-8 — exactly, or a 400 naming the field.
//! - As in a urlencoded form, a name seen once maps to its value and a repeated name to an array
//!   of its values in body order; object keys come out sorted.
//! - 400: no or an invalid `boundary`, a body in which the boundary never appears, a truncated
//!   body (a part or the closing boundary never comes), a part without `Content-Disposition:
//!   form-data` or without a `name`, folded or non-text headers, a `Content-Transfer-Encoding`
//!   other than 7bit/8bit/binary (RFC 7578 §4.7 deprecates it).
//! - 413: more than `max_parts` parts, part headers over `max_part_header_bytes`, a file over
//!   `max_file_bytes`. The total decoded size is the body's, bounded by the body limit: no
//!   transfer encoding is decoded.
//! - An empty form (`--boundary--`) is one empty object; preamble and epilogue are ignored.

use base64::Engine as _;
use encoding_rs::{Encoding, UTF_8};
use memchr::memmem;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::charset::{decode_exact, resolve_charset};
use super::error::{echo, ParseError};
use super::header_params::header_params;
use crate::config::body_format::MultipartOptions;

/// RFC 2046 §5.1.1: a boundary is 1 to 70 of these characters, not ending in a space.
fn valid_boundary(boundary: &str) -> bool {
    (1..=70).contains(&boundary.len())
        && !boundary.ends_with(' ')
        && boundary
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b))
}

fn malformed(reason: impl Into<String>) -> ParseError {
    ParseError::malformed("multipart", reason)
}

fn over_limit(reason: String) -> ParseError {
    ParseError::OverLimit {
        kind: "multipart",
        reason,
    }
}

/// What a part's headers say.
#[derive(Debug, Default)]
struct PartHeaders {
    name: Option<String>,
    filename: Option<String>,
    content_type: Option<String>,
    charset: Option<String>,
}

/// Parses a multipart body into one JSON object; see the module docs. `default_charset` is the
/// request's `charset` parameter, if it has one.
pub(crate) fn parse_multipart(
    body: &[u8],
    boundary: Option<&str>,
    default_charset: Option<&'static Encoding>,
    options: &MultipartOptions,
) -> Result<Value, ParseError> {
    let boundary = boundary.ok_or_else(|| malformed("the Content-Type has no boundary parameter"))?;
    if !valid_boundary(boundary) {
        return Err(malformed(format!(
            "invalid boundary \"{}\" (1 to 70 letters, digits or '()+_,-./:=? )",
            echo(boundary)
        )));
    }
    let delimiter = format!("\r\n--{boundary}");
    let finder = memmem::Finder::new(delimiter.as_bytes());
    // The first boundary may open the body without the CRLF that precedes the others.
    let mut at = if body.starts_with(&delimiter.as_bytes()[2..]) {
        delimiter.len() - 2
    } else {
        finder
            .find(body)
            .map(|found| found + delimiter.len())
            .ok_or_else(|| malformed("the boundary never appears in the body"))?
    };
    let mut fields = Map::new();
    let mut form_charset: Option<&'static Encoding> = None;
    let mut part = 0usize;
    loop {
        // After a boundary: `--` closes the body (the epilogue is ignored), else optional
        // transport padding and the CRLF that starts the next part.
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            break;
        }
        let padding = rest.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        match &rest[padding..] {
            [] | [b'\r'] => {
                return Err(malformed(
                    "truncated body: it ends after a boundary, without the closing boundary",
                ))
            }
            [b'\r', b'\n', ..] => at += padding + 2,
            _ => return Err(malformed(format!("text after the boundary that ends part {part}"))),
        }
        part += 1;
        if part > options.max_parts {
            return Err(over_limit(format!("more than {} parts", options.max_parts)));
        }
        let (headers, content_start) = part_headers(body, at, part, options.max_part_header_bytes)?;
        let headers = parse_part_headers(headers, part, default_charset.unwrap_or(UTF_8))?;
        let name = headers
            .name
            .clone()
            .ok_or_else(|| malformed(format!("part {part} has no name")))?;
        let content_len = finder.find(&body[content_start..]).ok_or_else(|| {
            malformed(format!(
                "truncated body: part {part} (\"{}\") never ends (no boundary after it)",
                echo(&name)
            ))
        })?;
        let content = &body[content_start..content_start + content_len];
        at = content_start + content_len + delimiter.len();
        let value = if let Some(filename) = headers.filename {
            if content.len() > options.max_file_bytes {
                return Err(over_limit(format!(
                    "the file in part {part} (\"{}\") is over {} bytes",
                    echo(&name),
                    options.max_file_bytes
                )));
            }
            json!({
                "filename": filename,
                "content_type": headers.content_type,
                "size": content.len(),
                "sha256": hex(&Sha256::digest(content)),
                "content_base64": base64::engine::general_purpose::STANDARD.encode(content),
            })
        } else {
            let encoding = match &headers.charset {
                Some(label) => resolve_charset(label)?,
                None => form_charset.or(default_charset).unwrap_or(UTF_8),
            };
            let text = decode_exact(content, encoding)
                .map_err(|_| {
                    ParseError::malformed(
                        "charset",
                        format!(
                            "field \"{}\" (part {part}) is not valid {}",
                            echo(&name),
                            encoding.name()
                        ),
                    )
                })?
                .into_owned();
            if name == "_charset_" {
                form_charset = Some(resolve_charset(&text)?);
            }
            Value::String(text)
        };
        super::form::insert_repeated(&mut fields, name, value);
    }
    Ok(Value::Object(fields))
}

/// The header block of the part starting at `at` and where its content starts: headers end at
/// an empty line, which must come within `max_bytes`.
fn part_headers(body: &[u8], at: usize, part: usize, max_bytes: usize) -> Result<(&[u8], usize), ParseError> {
    let rest = &body[at..];
    if rest.starts_with(b"\r\n") {
        return Ok((&[], at + 2));
    }
    let window = &rest[..rest.len().min(max_bytes.saturating_add(4))];
    let too_long = || over_limit(format!("the headers of part {part} are over {max_bytes} bytes"));
    match memmem::find(window, b"\r\n\r\n") {
        Some(end) if end <= max_bytes => Ok((&rest[..end], at + end + 4)),
        Some(_) => Err(too_long()),
        None if window.len() < rest.len() => Err(too_long()),
        None => Err(malformed(format!(
            "truncated body: the headers of part {part} never end"
        ))),
    }
}

fn parse_part_headers(block: &[u8], part: usize, encoding: &'static Encoding) -> Result<PartHeaders, ParseError> {
    let text = decode_exact(block, encoding)
        .map_err(|_| malformed(format!("the headers of part {part} are not valid {}", encoding.name())))?;
    let mut headers = PartHeaders::default();
    let mut disposition = false;
    for line in text.split("\r\n").filter(|_| !block.is_empty()) {
        if line.starts_with([' ', '\t']) {
            return Err(malformed(format!("part {part} has a folded header line")));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| malformed(format!("part {part} has a header line without ':'")))?;
        let value = value.trim();
        let (first, params) = value.split_once(';').unwrap_or((value, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "content-disposition" => {
                if !first.trim().eq_ignore_ascii_case("form-data") {
                    return Err(malformed(format!("part {part}'s Content-Disposition is not form-data")));
                }
                disposition = true;
                let mut filename_ext = None;
                for (param, value) in header_params(params) {
                    match param.to_ascii_lowercase().as_str() {
                        "name" => headers.name = headers.name.take().or(Some(value)),
                        "filename" => headers.filename = headers.filename.take().or(Some(value)),
                        "filename*" => filename_ext = filename_ext.or(Some(value)),
                        _ => {}
                    }
                }
                // RFC 6266: a `filename*` the parser can read wins over `filename`.
                if let Some(decoded) = filename_ext.as_deref().and_then(decode_ext_value) {
                    headers.filename = Some(decoded);
                }
            }
            "content-type" => {
                headers.content_type = Some(value.to_string());
                headers.charset = header_params(params)
                    .into_iter()
                    .find(|(param, _)| param.eq_ignore_ascii_case("charset"))
                    .map(|(_, value)| value);
            }
            "content-transfer-encoding"
                if !["7bit", "8bit", "binary"]
                    .iter()
                    .any(|ok| value.eq_ignore_ascii_case(ok)) =>
            {
                return Err(malformed(format!(
                    "part {part} uses Content-Transfer-Encoding \"{}\" (RFC 7578 deprecates it; send the bytes as they are)",
                    echo(value)
                )));
            }
            _ => {}
        }
    }
    if !disposition {
        return Err(malformed(format!(
            "part {part} has no Content-Disposition: form-data header"
        )));
    }
    Ok(headers)
}

/// An RFC 8187 `charset'language'percent-encoded` value, if its charset is known and the bytes
/// are valid in it.
fn decode_ext_value(value: &str) -> Option<String> {
    let mut pieces = value.splitn(3, '\'');
    let (charset, _language, encoded) = (pieces.next()?, pieces.next()?, pieces.next()?);
    let bytes = crate::urlencoded::decode_strict(encoded.as_bytes())?;
    let encoding = resolve_charset(charset).ok()?;
    decode_exact(&bytes, encoding).ok().map(|text| text.into_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::super::limits::ParseLimits;
    use super::super::records::{parse_records, tests::values};
    use super::*;
    use proptest::prelude::*;

    const BOUNDARY: &str = "----WebKitFormBoundary7MA4YWxkTrZu0gW";

    fn parse_with(body: &[u8], content_type: &str, options: &MultipartOptions) -> Result<Value, ParseError> {
        let media = super::super::records::detect_media_type(Some(content_type))?;
        let charset = media.charset.as_deref().map(resolve_charset).transpose()?;
        parse_multipart(body, media.boundary.as_deref(), charset, options)
    }

    fn parse(body: &[u8]) -> Result<Value, ParseError> {
        parse_with(
            body,
            &format!("multipart/form-data; boundary={BOUNDARY}"),
            &MultipartOptions::default(),
        )
    }

    /// A part to build: its name, its file name and type if it is a file, its content.
    type BuiltPart<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a [u8]);

    /// A body built as a browser builds it: CRLF line ends, `--boundary` lines, no preamble.
    fn browser_body(parts: &[BuiltPart<'_>]) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, file, content) in parts {
            body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
            match file {
                None => body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
                Some((filename, content_type)) => body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
                    )
                    .as_bytes(),
                ),
            }
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        body
    }

    #[test]
    fn text_fields_and_files_make_one_record() {
        let binary: Vec<u8> = (0..=255u8).collect();
        let body = browser_body(&[
            ("name", None, b"Jane Doe"),
            ("tag", None, b"a"),
            ("tag", None, "caf\u{e9}".as_bytes()),
            ("avatar", Some(("me.png", "image/png")), &binary),
            ("notes", Some(("", "application/octet-stream")), b""),
        ]);
        let record = parse(&body).unwrap();
        assert_eq!(record["name"], "Jane Doe");
        assert_eq!(record["tag"], json!(["a", "café"]));
        let avatar = &record["avatar"];
        assert_eq!(avatar["filename"], "me.png");
        assert_eq!(avatar["content_type"], "image/png");
        assert_eq!(avatar["size"], 256);
        assert_eq!(avatar["sha256"], hex(&Sha256::digest(&binary)));
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(avatar["content_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(decoded, binary);
        // A browser's empty file input: a file entry of size 0.
        assert_eq!(record["notes"]["size"], 0);
        assert_eq!(record["notes"]["filename"], "");
    }

    #[test]
    fn through_parse_records_with_a_quoted_boundary_preamble_and_epilogue() {
        let body = b"preamble text\r\n--xyz \t\r\ncontent-disposition: FORM-DATA; name=\"a\"\r\n\r\n1\r\n--xyz\r\nContent-Disposition: form-data; name=a\r\n\r\n2\r\n--xyz--\r\nepilogue";
        let records = parse_records(
            body,
            Some("Multipart/Form-Data; boundary=\"xyz\""),
            None,
            &ParseLimits::default(),
        )
        .unwrap();
        assert_eq!(values(&records), vec![json!({"a": ["1", "2"]})]);
    }

    #[test]
    fn empty_form_is_one_empty_object() {
        assert_eq!(parse(format!("--{BOUNDARY}--\r\n").as_bytes()).unwrap(), json!({}));
    }

    #[test]
    fn charsets_of_text_fields() {
        let mut body = Vec::new();
        body.extend_from_slice(b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\ncaf\xe9\r\n");
        body.extend_from_slice(b"--b\r\nContent-Disposition: form-data; name=\"_charset_\"\r\n\r\nwindows-1252\r\n");
        body.extend_from_slice(b"--b\r\nContent-Disposition: form-data; name=\"y\"\r\n\r\n\x80\r\n--b--");
        let record = parse_with(&body, "multipart/form-data; boundary=b", &MultipartOptions::default()).unwrap();
        assert_eq!(record["x"], "café");
        assert_eq!(record["y"], "€");
        let bad = b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n\xff\r\n--b--";
        let error = parse_with(bad, "multipart/form-data; boundary=b", &MultipartOptions::default()).unwrap_err();
        assert_eq!((error.status(), error.kind()), (400, "charset"));
        assert_eq!(
            error.to_string(),
            "body is not valid in its charset: field \"x\" (part 1) is not valid UTF-8"
        );
    }

    #[test]
    fn filename_star_wins() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"EURO rates.txt\"; filename*=UTF-8''%e2%82%ac%20rates.txt\r\n\r\nx\r\n--b--";
        let record = parse_with(body, "multipart/form-data; boundary=b", &MultipartOptions::default()).unwrap();
        assert_eq!(record["f"]["filename"], "€ rates.txt");
        assert_eq!(record["f"]["content_type"], Value::Null);
    }

    #[test]
    fn malformed_bodies_are_400_naming_the_problem() {
        let ct = "multipart/form-data; boundary=b";
        let cases: [(&str, &[u8], &str); 11] = [
            ("multipart/form-data", b"--b--", "the Content-Type has no boundary parameter"),
            ("multipart/form-data; boundary=\"\"", b"--b--", "invalid boundary"),
            ("multipart/form-data; boundary=\"a b \"", b"--b--", "invalid boundary"),
            (ct, b"no boundary here at all", "the boundary never appears in the body"),
            (ct, b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nnever ends", "part 1 (\"a\") never ends"),
            (ct, b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n", "the headers of part 1 never end"),
            (ct, b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--b", "without the closing boundary"),
            (ct, b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--", "part 1 has no name"),
            (ct, b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--", "part 1 has no Content-Disposition"),
            (ct, b"--b\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--b--", "is not form-data"),
            (
                ct,
                b"--b\r\nContent-Disposition: form-data; name=a\r\nContent-Transfer-Encoding: base64\r\n\r\neA==\r\n--b--",
                "Content-Transfer-Encoding",
            ),
        ];
        for (content_type, body, expected) in cases {
            let error = parse_with(body, content_type, &MultipartOptions::default()).unwrap_err();
            assert_eq!((error.status(), error.kind()), (400, "multipart"), "{error}");
            assert!(error.to_string().contains(expected), "{error} ≠ {expected}");
        }
        let error = parse_with(b"--bx\r\n", ct, &MultipartOptions::default()).unwrap_err();
        assert!(error.to_string().contains("text after the boundary"), "{error}");
    }

    #[test]
    fn limits_are_413() {
        let options = MultipartOptions {
            max_parts: 2,
            max_part_header_bytes: 64,
            max_file_bytes: 4,
        };
        let ct = "multipart/form-data; boundary=b";
        let part = "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n";
        assert!(parse_with(format!("{part}{part}--b--").as_bytes(), ct, &options).is_ok());
        let error = parse_with(format!("{part}{part}{part}--b--").as_bytes(), ct, &options).unwrap_err();
        assert_eq!(
            (error.status(), error.to_string().as_str()),
            (413, "multipart body over a limit: more than 2 parts")
        );
        let long = format!(
            "--b\r\nContent-Disposition: form-data; name={}\r\n\r\nx\r\n--b--",
            "n".repeat(80)
        );
        let error = parse_with(long.as_bytes(), ct, &options).unwrap_err();
        assert_eq!(error.status(), 413, "{error}");
        assert!(
            error.to_string().contains("headers of part 1 are over 64 bytes"),
            "{error}"
        );
        // Headers that never end within the limit, in a body that goes on: 413, not a search.
        let endless = format!("--b\r\nX: {}", "h".repeat(10_000));
        assert_eq!(parse_with(endless.as_bytes(), ct, &options).unwrap_err().status(), 413);
        let file = "--b\r\nContent-Disposition: form-data; name=f; filename=a\r\n\r\n12345\r\n--b--";
        let error = parse_with(file.as_bytes(), ct, &options).unwrap_err();
        assert_eq!(error.status(), 413);
        assert!(
            error.to_string().contains("file in part 1 (\"f\") is over 4 bytes"),
            "{error}"
        );
        // A text field is bounded by the body, not by the file limit.
        let text = "--b\r\nContent-Disposition: form-data; name=t\r\n\r\n12345\r\n--b--";
        assert!(parse_with(text.as_bytes(), ct, &options).is_ok());
    }

    #[test]
    fn a_million_tiny_parts_stop_at_the_limit() {
        let body = "--b\r\n\r\n\r\n".repeat(1_000_000);
        let error = parse_with(
            body.as_bytes(),
            "multipart/form-data; boundary=b",
            &MultipartOptions::default(),
        )
        .unwrap_err();
        // The first part has no Content-Disposition: refused before the count matters.
        assert_eq!(error.status(), 400);
        let part = "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n";
        let body = format!("{}--b--", part.repeat(200_000));
        let error = parse_with(
            body.as_bytes(),
            "multipart/form-data; boundary=b",
            &MultipartOptions::default(),
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "multipart body over a limit: more than 1000 parts");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn token_soup_never_panics(
            tokens in proptest::collection::vec(prop::sample::select(vec![
                "--b", "\r\n", "--", "Content-Disposition: form-data; name=a", "; filename=f",
                "Content-Type: text/plain; charset=latin1", "\r\n\r\n", "x", "\u{ff}", " ", ":",
            ]), 0..60),
        ) {
            let options = MultipartOptions { max_parts: 4, max_part_header_bytes: 64, max_file_bytes: 8 };
            if let Err(e) = parse_with(tokens.concat().as_bytes(), "multipart/form-data; boundary=b", &options) {
                prop_assert!(matches!(e.status(), 400 | 413 | 415), "{}", e);
            }
        }

        #[test]
        fn round_trip(fields in proptest::collection::vec(("[a-z]{1,4}", "\\PC{0,12}"), 0..12)) {
            let parts: Vec<BuiltPart<'_>> =
                fields.iter().map(|(k, v)| (k.as_str(), None, v.as_bytes())).collect();
            let mut expected = Map::new();
            for (k, v) in &fields {
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
            prop_assert_eq!(parse(&browser_body(&parts)).unwrap(), Value::Object(expected));
        }
    }
}
