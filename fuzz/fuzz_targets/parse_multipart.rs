//! `multipart/form-data` bodies into one record. Two halves, chosen by the first byte:
//! - built: parts (text fields and files, names and file names with quotes and backslashes)
//!   written into a body as a browser writes it; the record must be exactly those fields (a
//!   repeated name an array; a file its name, type, size, SHA-256 and base64 content), or a 413
//!   when over `max_parts` / `max_file_bytes`, a 400 when a text field is not UTF-8;
//! - raw: any body, any boundary, with and without a resource path: a 4xx or compact records,
//!   every file's `size` and `sha256` those of its `content_base64`, the record's text bounded
//!   by the body's.
#![no_main]

use hookpipe::config::listener::ContentOptions;
use hookpipe::fuzzing::base64::engine::general_purpose::STANDARD;
use hookpipe::fuzzing::base64::Engine as _;
use hookpipe::fuzzing::serde_json::{json, Map, Value};
use hookpipe::fuzzing::sha2::{Digest as _, Sha256};
use hookpipe::pipeline::parse::records::{detect_media_type, parse_detected, ParseLimits};
use hookpipe_fuzz::{check_error, check_records, resource_path, total_len, Input};
use libfuzzer_sys::fuzz_target;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A header parameter's quoted string.
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Text without line breaks (a header line), and not the `_charset_` field, which changes how
/// the fields after it decode.
fn header_text(input: &mut Input<'_>) -> String {
    let text: String = input.text().chars().filter(|c| *c != '\r' && *c != '\n').collect();
    if text == "_charset_" {
        "charset".into()
    } else {
        text
    }
}

/// Every file entry of a record is consistent: its size and digest are its content's.
fn check_files(value: &Value) {
    let check_one = |entry: &Value| {
        if let Some(file) = entry.as_object() {
            let content = STANDARD
                .decode(file["content_base64"].as_str().expect("content_base64 is a string"))
                .expect("content_base64 is base64");
            assert_eq!(file["size"], json!(content.len()));
            assert_eq!(file["sha256"], json!(hex(&Sha256::digest(&content))));
            assert!(file["filename"].is_string());
            assert!(file["content_type"].is_string() || file["content_type"].is_null());
        } else {
            assert!(entry.is_string(), "a field is a string or a file: {entry}");
        }
    };
    if let Some(fields) = value.as_object() {
        for field in fields.values() {
            match field {
                Value::Array(values) => values.iter().for_each(check_one),
                other => check_one(other),
            }
        }
    }
}

fn built(mut input: Input<'_>) {
    let boundary = ["----WebKitFormBoundary7MA4YWxkTrZu0gW", "b", "x-y_z"][input.below(3)];
    let mut options = ContentOptions::default();
    if input.flag() {
        options.multipart.max_parts = 2;
        options.multipart.max_file_bytes = 8;
    }
    let delimiter = format!("\r\n--{boundary}");
    let mut body = Vec::new();
    let mut fields = Map::new();
    let (mut parts, mut over_limit, mut invalid_text) = (0usize, false, false);
    for _ in 0..input.below(6) {
        let name = header_text(&mut input);
        let is_file = input.flag();
        let filename = is_file.then(|| header_text(&mut input));
        let content_type = ["", "image/png", "application/octet-stream", "text/plain; charset=utf-8"][input.below(4)];
        let content = input.piece();
        // A content holding the delimiter would end early: not this case.
        let mut tail = content.to_vec();
        tail.extend_from_slice(delimiter.as_bytes());
        if memchr_find(&tail, delimiter.as_bytes()) != Some(content.len()) {
            return;
        }
        parts += 1;
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name={}", quoted(&name));
        let value = match &filename {
            Some(filename) => {
                disposition.push_str(&format!("; filename={}", quoted(filename)));
                body.extend_from_slice(disposition.as_bytes());
                body.extend_from_slice(b"\r\n");
                if !content_type.is_empty() {
                    body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
                }
                over_limit |= content.len() > options.multipart.max_file_bytes;
                json!({
                    "filename": filename,
                    "content_type": (!content_type.is_empty()).then_some(content_type),
                    "size": content.len(),
                    "sha256": hex(&Sha256::digest(content)),
                    "content_base64": STANDARD.encode(content),
                })
            }
            None => {
                body.extend_from_slice(disposition.as_bytes());
                body.extend_from_slice(b"\r\n");
                match std::str::from_utf8(content) {
                    Ok(text) => Value::String(text.to_string()),
                    Err(_) => {
                        invalid_text = true;
                        Value::Null
                    }
                }
            }
        };
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
        match fields.get_mut(&name) {
            Some(Value::Array(values)) => values.push(value),
            Some(existing) => *existing = Value::Array(vec![existing.take(), value]),
            None => {
                fields.insert(name, value);
            }
        }
    }
    over_limit |= parts > options.multipart.max_parts;
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let media = detect_media_type(Some(&format!("multipart/form-data; boundary={boundary}"))).expect("multipart");
    let result = parse_detected(&body, &media, None, &ParseLimits::default(), &options);
    match (result, over_limit, invalid_text) {
        (Ok(records), false, false) => {
            let values = check_records(&records);
            assert_eq!(
                values,
                vec![Value::Object(fields)],
                "the record is not the parts written"
            );
        }
        (Err(error), true, false) => assert_eq!(error.status(), 413, "{error:?}"),
        (Err(error), false, true) => assert_eq!(error.status(), 400, "{error:?}"),
        (Err(error), true, true) => check_error(&error),
        (result, over_limit, invalid_text) => {
            panic!("over limit {over_limit}, invalid text {invalid_text}: {result:?}")
        }
    }
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

fn raw(mut input: Input<'_>) {
    let path = resource_path(&mut input);
    let boundary = match input.below(3) {
        0 => "b".to_string(),
        1 => "----WebKitFormBoundary7MA4YWxkTrZu0gW".to_string(),
        _ => input.text(),
    };
    let charset = ["", "; charset=utf-8", "; charset=iso-8859-1", "; charset=utf-16"][input.below(4)];
    let mut options = ContentOptions::default();
    if input.flag() {
        options.multipart.max_parts = 3;
        options.multipart.max_part_header_bytes = 64;
        options.multipart.max_file_bytes = 16;
    }
    let body = input.rest();
    let Ok(media) = detect_media_type(Some(&format!("multipart/form-data; boundary=\"{boundary}\"{charset}"))) else {
        return;
    };
    match parse_detected(body, &media, path.as_ref(), &ParseLimits::default(), &options) {
        Ok(records) => {
            let values = check_records(&records);
            if path.is_none() {
                check_files(&values[0]);
            }
            // Base64 makes 4 bytes of 3, JSON escapes make 6 of 1; a file's entry adds its
            // digest and member names (~130 bytes) to a part of at least ~55.
            assert!(
                total_len(&records) <= 6 * body.len() + 2,
                "records are too long for the body"
            );
        }
        Err(error) => check_error(&error),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    if input.flag() {
        built(input)
    } else {
        raw(input)
    }
});
