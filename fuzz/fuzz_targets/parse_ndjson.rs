//! NDJSON bodies into records, with and without a resource path. Invariants: every record is
//! compact JSON within the depth limit; the records are, line by line, the values serde_json
//! reads in each line (or what the path selects in it); their text is no longer than the body;
//! a body whose every line serde_json reads (within the limits) is never refused; more lines than
//! `max_lines` is a 413.
#![no_main]

use hookpipe::config::listener::ContentOptions;
use hookpipe::fuzzing::serde_json::{self, Value};
use hookpipe::pipeline::parse::records::{detect_media_type, parse_detected, ParseLimits};
use hookpipe_fuzz::{check_error, check_records, depth, reference_select, resource_path, total_len, Input};
use libfuzzer_sys::fuzz_target;

/// The records of each line as serde_json reads them, `None` when a line does not read or
/// selects nothing; and how many lines have records.
fn reference(
    text: &[u8],
    path: Option<&hookpipe::config::resource_path::ResourcePath>,
    max_depth: usize,
) -> (Option<Vec<Value>>, usize) {
    let mut values = Some(Vec::new());
    let mut lines = 0;
    for line in text.split(|byte| *byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(|byte| matches!(byte, b' ' | b'\t' | b'\r')) {
            continue;
        }
        lines += 1;
        let selected = serde_json::from_slice::<Value>(line)
            .ok()
            .filter(|value| depth(value) <= max_depth.min(120))
            .and_then(|value| match path {
                None => Some(vec![value]),
                Some(_) => reference_select(&value, path),
            });
        match (&mut values, selected) {
            (Some(all), Some(selected)) => all.extend(selected),
            _ => values = None,
        }
    }
    (values, lines)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let path = resource_path(&mut input);
    let max_depth = [128, 3, 16][input.below(3)];
    let mut options = ContentOptions::default();
    options.ndjson.max_lines = [100_000, 3, 1][input.below(3)];
    let content_type = [
        "application/x-ndjson",
        "application/jsonl",
        "application/x-jsonlines; charset=utf-8",
    ][input.below(3)];
    let body = input.rest();
    let media = detect_media_type(Some(content_type)).expect("an NDJSON type");
    let limits = ParseLimits {
        max_depth,
        max_form_fields: 1000,
    };
    let utf8 = !body.starts_with(b"\xFF\xFE") && !body.starts_with(b"\xFE\xFF") && std::str::from_utf8(body).is_ok();
    let text = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let (expected, lines) = reference(text, path.as_ref(), max_depth);
    match parse_detected(body, &media, path.as_ref(), &limits, &options) {
        Ok(records) => {
            let values = check_records(&records);
            assert!(
                lines <= options.ndjson.max_lines,
                "{lines} lines accepted over max_lines"
            );
            if utf8 {
                // Accepted lines may be deeper than the reference's cautious limit: compare only
                // when every line read there.
                if let Some(expected) = expected {
                    assert_eq!(values, expected, "records differ from the lines' values");
                }
                assert!(total_len(&records) <= body.len(), "records are longer than the body");
            }
        }
        Err(error) => {
            check_error(&error);
            if utf8 && expected.is_some() && lines <= options.ndjson.max_lines {
                panic!("refused lines serde_json reads: {error:?}");
            }
            if lines > options.ndjson.max_lines && utf8 && error.status() != 413 && expected.is_some() {
                panic!("too many lines answered {} ({error:?})", error.status());
            }
        }
    }
});
