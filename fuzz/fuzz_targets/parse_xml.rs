//! XML bodies into records, with and without a resource path. Invariants: every record is
//! compact JSON within the depth limit, its text bounded by the body's (8 bytes per byte: a
//! control character's reference becomes `\u00XX`); the streaming path mode agrees with the tree
//! the whole document makes: with the root's name as the path, the one record is the root's
//! value, and with `root.child` the records are the values at `child` in it (each of its
//! repeated elements); every refusal is a 4xx.
#![no_main]

use hookpipe::config::listener::ContentOptions;
use hookpipe::config::resource_path::ResourcePath;
use hookpipe::fuzzing::serde_json::Value;
use hookpipe::pipeline::parse::records::{detect_media_type, parse_detected, ParseLimits};
use hookpipe_fuzz::{check_error, check_records, resource_path, total_len, Input};
use libfuzzer_sys::fuzz_target;

/// The records a path `root.a.b` selects in the tree `{"root": value}` of the whole document.
fn select(root_name: &str, root: &Value, path: &ResourcePath) -> Option<Vec<Value>> {
    let mut segments = path.segments();
    if segments.next()? != root_name {
        return None;
    }
    let mut current = vec![root.clone()];
    for segment in segments {
        if segment.starts_with(['@', '#']) {
            return None;
        }
        let mut next = Vec::new();
        for value in &current {
            match value.as_object().and_then(|object| object.get(segment)) {
                Some(Value::Array(items)) => next.extend(items.iter().cloned()),
                Some(other) => next.push(other.clone()),
                None => {}
            }
        }
        current = next;
    }
    (!current.is_empty()).then_some(current)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let path = resource_path(&mut input);
    let content_type = [
        "application/xml",
        "text/xml; charset=utf-8",
        "application/soap+xml",
        "text/xml; charset=iso-8859-1",
    ][input.below(4)];
    let max_depth = [128, 3, 1024][input.below(3)];
    let body = input.rest();
    let media = detect_media_type(Some(content_type)).expect("an XML type");
    let limits = ParseLimits {
        max_depth,
        max_form_fields: 1000,
    };
    let options = ContentOptions::default();
    let whole = parse_detected(body, &media, None, &limits, &options);
    match &whole {
        Ok(records) => {
            let values = check_records(records);
            assert_eq!(values.len(), 1, "a document is one record");
            assert!(
                total_len(records) <= 8 * body.len() + 16,
                "records too long for the body"
            );
            let object = values[0].as_object().expect("a document is {root: value}");
            assert_eq!(object.len(), 1, "a document has one root");
        }
        Err(error) => check_error(error),
    }
    let Some(path) = path else { return };
    let selected = parse_detected(body, &media, Some(&path), &limits, &options);
    match &selected {
        Ok(records) => {
            check_records(records);
            assert!(
                total_len(records) <= 8 * body.len() + 16,
                "records too long for the body"
            );
        }
        Err(error) => check_error(error),
    }
    // Only where both modes read the document (depth limits apply to the whole in both).
    if let (Ok(whole), Ok(records)) = (&whole, &selected) {
        let value = whole[0].to_value();
        let (root_name, root) = value
            .as_object()
            .and_then(|object| object.iter().next())
            .expect("one root");
        if let Some(expected) = select(root_name, root, &path) {
            let values: Vec<Value> = records.iter().map(|record| record.to_value()).collect();
            assert_eq!(
                values, expected,
                "the path's records differ from the tree's values at {path}"
            );
        }
    }
    if let (Ok(whole), Err(error)) = (&whole, &selected) {
        let value = whole[0].to_value();
        let (root_name, root) = value
            .as_object()
            .and_then(|object| object.iter().next())
            .expect("one root");
        if select(root_name, root, &path).is_some() {
            panic!("the path {path} selects records in the tree, yet was refused: {error:?}");
        }
    }
});
