//! The text helpers: `join`, case, `trim`, `replace`, `substring`, `default`, `jsonSerialize`,
//! `base64` and `hash`.

use base64::Engine as _;
use handlebars::RenderError;
use serde_json::Value as Json;
use sha2::Digest;

use super::args::{scalar_text, Args};

/// `{{join "_" a b}}`: the values after the separator, arrays flattened, missing and null
/// values skipped, joined by the separator.
pub(super) fn join(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    fn collect(args: &Args<'_, '_>, value: &Json, parts: &mut Vec<String>) -> Result<(), RenderError> {
        match value {
            Json::Null => Ok(()),
            Json::Array(items) => items.iter().try_for_each(|item| collect(args, item, parts)),
            Json::Object(_) => Err(args.error("cannot join an object")),
            scalar => {
                parts.extend(scalar_text(scalar));
                Ok(())
            }
        }
    }
    let separator = args.text(0)?;
    let mut parts = Vec::new();
    for index in 1..args.params.len() {
        if let Some(value) = args.value(index)? {
            collect(args, value, &mut parts)?;
        }
    }
    Ok(Json::String(parts.join(&separator)))
}

/// `{{lowercase value}}`.
pub(super) fn lowercase(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    Ok(Json::String(args.text(0)?.to_lowercase()))
}

/// `{{uppercase value}}`.
pub(super) fn uppercase(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    Ok(Json::String(args.text(0)?.to_uppercase()))
}

/// `{{trim value}}`: without leading and trailing whitespace.
pub(super) fn trim(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    Ok(Json::String(args.text(0)?.trim().to_string()))
}

/// `{{replace value from to}}`: every occurrence of `from` replaced by `to`.
pub(super) fn replace(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    let from = args.text(1)?;
    if from.is_empty() {
        return Err(args.error("the text to replace must not be empty"));
    }
    Ok(Json::String(args.text(0)?.replace(&from, &args.text(2)?)))
}

/// `{{substring value start [end]}}`: characters `start..end`, both clamped to the text (as
/// JavaScript's `substring`: negative is 0, and start and end are swapped when reversed).
pub(super) fn substring(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    let text = args.text(0)?;
    let length = text.chars().count() as i64;
    let start = args.integer(1)?.clamp(0, length);
    let end = match args.params.get(2) {
        Some(_) => args.integer(2)?.clamp(0, length),
        None => length,
    };
    let (from, to) = (start.min(end) as usize, start.max(end) as usize);
    Ok(Json::String(text.chars().skip(from).take(to - from).collect()))
}

/// `{{default value fallback}}`: the fallback when the value is missing, null or "".
/// A missing value is never a strict-mode error here: providing for it is the point.
pub(super) fn default(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    let value = args
        .params
        .first()
        .filter(|param| !param.is_value_missing())
        .map(|param| param.value());
    match value {
        None | Some(Json::Null) => Ok(args.value(1)?.cloned().unwrap_or(Json::Null)),
        Some(Json::String(text)) if text.is_empty() => Ok(args.value(1)?.cloned().unwrap_or(Json::Null)),
        Some(value) => Ok(value.clone()),
    }
}

/// `{{jsonSerialize value}}`: the value as compact JSON (a missing value is `null`).
pub(super) fn json_serialize(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    let value = args.value(0)?.unwrap_or(&Json::Null);
    serde_json::to_string(value)
        .map(Json::String)
        .map_err(|_| args.error("value does not serialize"))
}

/// `{{base64 value}}`: standard base64 (with padding) of the text's UTF-8 bytes.
pub(super) fn base64_encode(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    Ok(Json::String(
        base64::engine::general_purpose::STANDARD.encode(args.text(0)?.as_bytes()),
    ))
}

/// Digest algorithms of `hash`, by name.
pub(super) const HASH_ALGORITHMS: &[&str] = &["sha1", "sha256", "sha512"];

/// `{{hash "sha256" value}}`: the lower-case hex digest of the text's UTF-8 bytes.
pub(super) fn hash(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    let algorithm = args.text(0)?.to_ascii_lowercase();
    let bytes = args.text(1)?;
    let digest = match algorithm.as_str() {
        "sha1" => sha1::Sha1::digest(bytes.as_bytes()).to_vec(),
        "sha256" => sha2::Sha256::digest(bytes.as_bytes()).to_vec(),
        "sha512" => sha2::Sha512::digest(bytes.as_bytes()).to_vec(),
        _ => return Err(args.error("unsupported algorithm; use sha1, sha256 or sha512")),
    };
    Ok(Json::String(digest.iter().map(|byte| format!("{byte:02x}")).collect()))
}

#[cfg(test)]
mod tests {
    use crate::templates::tests::{ok, render, render_with};
    use serde_json::json;

    #[test]
    fn join_flattens_arrays_and_skips_missing_and_null() {
        assert_eq!(ok(r#"{{join "_" a b}}"#, json!({"a": "x", "b": "y"})), "x_y");
        assert_eq!(ok(r#"{{join "_" a nothing b}}"#, json!({"a": "x", "b": null})), "x");
        assert_eq!(
            ok(r#"{{join ", " list}}"#, json!({"list": [1, [true, "z"], null]})),
            "1, true, z"
        );
        assert_eq!(ok(r#"{{join "" a "lit" 3}}"#, json!({"a": "x"})), "xlit3");
        assert!(render(r#"{{join "_" a}}"#, json!({"a": {"k": 1}}))
            .unwrap_err()
            .contains("cannot join an object"));
    }

    #[test]
    fn case_and_trim() {
        assert_eq!(ok("{{lowercase a}}", json!({"a": "ÄbC"})), "äbc");
        assert_eq!(ok("{{uppercase a}}", json!({"a": "straße"})), "STRASSE");
        assert_eq!(ok("{{trim a}}", json!({"a": " \t x y \n"})), "x y");
        assert_eq!(ok("{{uppercase a}}", json!({"a": 12})), "12");
        assert_eq!(ok("[{{lowercase nothing}}]", json!({})), "[]");
        let error = render("{{trim a}}", json!({"a": [1]})).unwrap_err();
        assert!(error.contains("trim: argument 1 must be text"), "{error}");
    }

    #[test]
    fn replace_replaces_every_occurrence() {
        assert_eq!(ok(r#"{{replace a "." "/"}}"#, json!({"a": "a.b.c"})), "a/b/c");
        assert_eq!(ok(r#"{{replace a "x" "y"}}"#, json!({"a": "abc"})), "abc");
        assert!(render(r#"{{replace a "" "y"}}"#, json!({"a": "abc"})).is_err());
    }

    #[test]
    fn substring_counts_chars_and_clamps() {
        let data = json!({"a": "héllo"});
        assert_eq!(ok("{{substring a 1 3}}", data.clone()), "él");
        assert_eq!(ok("{{substring a 2}}", data.clone()), "llo");
        assert_eq!(ok("{{substring a -5 99}}", data.clone()), "héllo");
        assert_eq!(ok("{{substring a 3 1}}", data.clone()), "él");
        assert_eq!(ok(r#"{{substring a "1" "2"}}"#, data.clone()), "é");
        assert_eq!(ok("[{{substring a 9}}]", data.clone()), "[]");
        assert!(render("{{substring a 1.5}}", data.clone())
            .unwrap_err()
            .contains("whole number"));
        assert!(render("{{substring a b}}", data).is_err());
    }

    #[test]
    fn default_applies_to_missing_null_and_empty() {
        assert_eq!(ok(r#"{{default a "n/a"}}"#, json!({})), "n/a");
        assert_eq!(ok(r#"{{default a "n/a"}}"#, json!({"a": null})), "n/a");
        assert_eq!(ok(r#"{{default a "n/a"}}"#, json!({"a": ""})), "n/a");
        assert_eq!(ok(r#"{{default a "n/a"}}"#, json!({"a": 0})), "0");
        assert_eq!(ok(r#"{{default a b}}"#, json!({"a": "x", "b": "y"})), "x");
        assert_eq!(ok(r#"{{default a b}}"#, json!({"b": "y"})), "y");
        // Strict mode: the value may be missing, the fallback may not.
        assert_eq!(render_with(true, r#"{{default a "n/a"}}"#, &json!({})).unwrap(), "n/a");
        assert!(render_with(true, r#"{{default a b}}"#, &json!({})).is_err());
    }

    #[test]
    fn json_serialize_base64_and_hash() {
        assert_eq!(
            ok("{{jsonSerialize a}}", json!({"a": [1, "x", null]})),
            r#"[1,"x",null]"#
        );
        assert_eq!(ok("{{jsonSerialize a}}", json!({"a": "q\""})), r#""q\"""#);
        assert_eq!(ok("{{jsonSerialize a}}", json!({})), "null");
        assert_eq!(ok("{{base64 a}}", json!({"a": "ü"})), "w7w=");
        assert_eq!(ok("{{base64 a}}", json!({"a": ""})), "");
        assert_eq!(
            ok(r#"{{hash "sha1" a}}"#, json!({"a": "abc"})),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            ok(r#"{{hash "SHA256" a}}"#, json!({"a": "abc"})),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(ok(r#"{{hash "sha512" a}}"#, json!({"a": "abc"})).starts_with("ddaf35a193617aba"));
        assert!(render(r#"{{hash algo a}}"#, json!({"a": "abc", "algo": "md5"})).is_err());
    }
}
