//! What the user hands `hookpipe listeners …` besides flags: JSON files (or standard input), a
//! secret read from standard input, and `--set key=value` pairs turned into a JSON merge patch.

use std::io::{BufRead, Read};
use std::path::Path;

use serde_json::{Map, Value};

use crate::cli::client::CliError;

/// The JSON in `path`; `-` reads standard input.
pub fn read_json_file(path: &Path) -> Result<Value, CliError> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::Local(format!("reading standard input: {e}")))?;
        text
    } else {
        std::fs::read_to_string(path).map_err(|e| CliError::Local(format!("{}: {e}", path.display())))?
    };
    serde_json::from_str(&text).map_err(|e| CliError::Local(format!("{}: not valid JSON: {e}", path.display())))
}

/// `{"records": [...]}` as given, or a bare array wrapped into it.
pub fn records_body(value: Value) -> Result<Value, CliError> {
    match value {
        Value::Array(records) => Ok(serde_json::json!({ "records": records })),
        Value::Object(ref object) if object.get("records").is_some_and(Value::is_array) => Ok(value),
        _ => Err(CliError::Local(
            "the file must hold {\"records\": [...]} or an array of records".into(),
        )),
    }
}

/// `-` reads one line from standard input so secrets stay out of shell history and `ps`.
pub fn from_stdin_if_dash(value: String, what: &str) -> Result<String, CliError> {
    if value != "-" {
        return Ok(value);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Local(format!("reading the {what} from standard input: {e}")))?;
    let without_line_break = line.trim_end_matches(['\r', '\n']).to_string();
    if without_line_break.is_empty() {
        return Err(CliError::Usage(format!("no {what} on standard input")));
    }
    Ok(without_line_break)
}

/// Merges `key=value` pairs into a JSON merge patch: dotted keys make nested objects, values are
/// JSON when they parse as JSON (`50`, `true`, `null`, `["json"]`, `"007"`), else strings.
pub fn merge_sets(patch: &mut Value, pairs: &[String]) -> Result<(), String> {
    for pair in pairs {
        let Some((key, raw_value)) = pair.split_once('=') else {
            return Err(format!("--set {pair}: expected KEY=VALUE"));
        };
        let segments: Vec<&str> = key.trim().split('.').collect();
        if segments.iter().any(|segment| segment.is_empty()) {
            return Err(format!("--set {pair}: bad key {key:?}"));
        }
        let value = serde_json::from_str::<Value>(raw_value).unwrap_or_else(|_| Value::String(raw_value.to_string()));
        let (last, parents) = segments.split_last().expect("split yields at least one segment");
        let mut node = &mut *patch;
        let mut walked = String::new();
        for segment in parents {
            if !walked.is_empty() {
                walked.push('.');
            }
            walked.push_str(segment);
            let object = node.as_object_mut().expect("only objects are descended into");
            let child = object
                .entry(segment.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !child.is_object() {
                return Err(format!("--set {pair}: {walked} is already set to a value"));
            }
            node = child;
        }
        let object = node.as_object_mut().expect("only objects are descended into");
        if object.get(*last).is_some_and(Value::is_object) && !value.is_object() {
            return Err(format!("--set {pair}: {key} already has sub-keys set"));
        }
        object.insert(last.to_string(), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sets(pairs: &[&str]) -> Result<Value, String> {
        let mut patch = json!({});
        merge_sets(&mut patch, &pairs.iter().map(|p| p.to_string()).collect::<Vec<_>>())?;
        Ok(patch)
    }

    #[test]
    fn sets_build_a_nested_merge_patch_with_json_values() {
        let patch = sets(&[
            "page_size=50",
            "response.status=202",
            "response.media_type=json",
            "name=Orders from Shopify",
            "content.accept=[\"json\",\"xml\"]",
            "do_not_store_retry_data=true",
            "data_uri_template=null",
            "description=",
            "public_id=\"0123456789\"",
            "trace_key_template={{order_id}}",
            "resource_path=a=b",
        ])
        .unwrap();
        assert_eq!(
            patch,
            json!({
                "page_size": 50,
                "response": {"status": 202, "media_type": "json"},
                "name": "Orders from Shopify",
                "content": {"accept": ["json", "xml"]},
                "do_not_store_retry_data": true,
                "data_uri_template": null,
                "description": "",
                "public_id": "0123456789",
                "trace_key_template": "{{order_id}}",
                "resource_path": "a=b",
            })
        );
    }

    #[test]
    fn sets_merge_into_a_file_patch_and_later_values_win() {
        let mut patch = json!({"response": {"status": 200, "body": "ok"}, "page_size": 5});
        merge_sets(
            &mut patch,
            &["response.status=202".into(), "page_size=7".into(), "page_size=8".into()],
        )
        .unwrap();
        assert_eq!(
            patch,
            json!({"response": {"status": 202, "body": "ok"}, "page_size": 8})
        );
    }

    #[test]
    fn bad_sets_are_refused_with_the_offending_pair() {
        for (pairs, expected) in [
            (&["page_size"][..], "expected KEY=VALUE"),
            (&["=5"][..], "bad key"),
            (&["response..status=1"][..], "bad key"),
            (&["response.=1"][..], "bad key"),
            (&["page_size=5", "page_size.x=1"][..], "page_size is already set"),
            (&["response.status=1", "response=2"][..], "already has sub-keys"),
        ] {
            let error = sets(pairs).unwrap_err();
            assert!(error.contains(expected), "{pairs:?}: {error}");
        }
        // Replacing sub-keys by a whole object is fine: it is a merge patch too.
        assert_eq!(
            sets(&["response.status=1", "response={\"status\":2}"]).unwrap(),
            json!({"response": {"status": 2}})
        );
    }

    #[test]
    fn records_files_may_be_bare_arrays() {
        assert_eq!(records_body(json!([{"a": 1}])).unwrap(), json!({"records": [{"a": 1}]}));
        assert_eq!(records_body(json!({"records": []})).unwrap(), json!({"records": []}));
        assert!(records_body(json!({"a": 1})).is_err());
    }
}
