//! JSON bodies into records, with and without a resource path. Invariants: every record is
//! compact JSON within the depth limit; in UTF-8, the records are exactly the values serde_json
//! reads at the same place in the body (elements of an array, else the value), their text no
//! longer than the body; a body serde_json reads, within the depth limit, is never refused;
//! every refusal is a 4xx.
#![no_main]

use hookpipe::config::listener::ContentOptions;
use hookpipe::fuzzing::serde_json::{self, Value};
use hookpipe::pipeline::parse::records::{detect_media_type, parse_detected, ParseLimits};
use hookpipe_fuzz::{check_error, check_records, depth, reference_select, resource_path, total_len, Input};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "application/vnd.api+json",
    "application/json; charset=\"UTF-8\"",
    "application/json; charset=utf-16le",
    "application/json; charset=windows-1252",
    "application/json; charset=iso-8859-1",
    "application/json; charset=shift_jis",
];

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let path = resource_path(&mut input);
    let content_type = CONTENT_TYPES[input.below(CONTENT_TYPES.len())];
    let max_depth = [128, 4, 32, 127][input.below(4)];
    let body = input.rest();
    let media = detect_media_type(Some(content_type)).expect("a JSON type");
    let limits = ParseLimits {
        max_depth,
        max_form_fields: 1000,
    };
    let utf8 = media
        .charset
        .as_deref()
        .is_none_or(|charset| charset.eq_ignore_ascii_case("utf-8"))
        && !body.starts_with(b"\xFF\xFE")
        && !body.starts_with(b"\xFE\xFF");
    let text = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    // What serde_json reads there, when it reads the body and it is within the depth limit.
    let reference = utf8
        .then(|| serde_json::from_slice::<Value>(text).ok())
        .flatten()
        .map(|value| {
            let within = depth(&value) <= max_depth.min(120);
            (reference_select(&value, path.as_ref()), within)
        });
    match parse_detected(body, &media, path.as_ref(), &limits, &ContentOptions::default()) {
        Ok(records) => {
            let values = check_records(&records);
            if utf8 {
                let (expected, _) = reference.expect("a body the parser accepts is JSON to serde_json");
                assert_eq!(
                    Some(&values),
                    expected.as_ref(),
                    "records differ from the body's values"
                );
                assert!(total_len(&records) <= body.len(), "records are longer than the body");
            } else {
                // A byte becomes at most 3 bytes of UTF-8 (a UTF-16 code unit, 2 bytes, too).
                assert!(total_len(&records) <= 3 * body.len());
            }
        }
        Err(error) => {
            check_error(&error);
            if let Some((Some(_), true)) = reference {
                panic!("refused a body serde_json reads, within the depth limit: {error:?}");
            }
        }
    }
});
