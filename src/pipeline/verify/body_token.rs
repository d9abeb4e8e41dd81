//! A verification token carried in the JSON body (`token` verification with `json_path`) is the
//! listener's secret: once verification has used it, it is cut out of the body so that no record,
//! page, sample or debug capture carries it.
//!
//! The body stays the sender's text: only the token's value is replaced (by `"[redacted]"`, the
//! key kept so the record keeps its shape), located with borrowed `RawValue`s rather than by
//! re-encoding a value tree.

use serde_json::value::RawValue;

use crate::dotted_path;

/// What a token value is replaced with.
pub const REDACTED: &str = "\"[redacted]\"";

/// The body with the scalar at `path` replaced by `"[redacted]"`; `None` when the body is not
/// JSON or holds no scalar there (nothing to hide).
///
/// Lookups follow the verifier's: an object member by name (the last one when a name repeats,
/// as in a parsed object), an array element by index.
pub fn redact(body: &[u8], path: &[String]) -> Option<Vec<u8>> {
    let (start, end) = token_span(body, path)?;
    let mut redacted = Vec::with_capacity(body.len() - (end - start) + REDACTED.len());
    redacted.extend_from_slice(&body[..start]);
    redacted.extend_from_slice(REDACTED.as_bytes());
    redacted.extend_from_slice(&body[end..]);
    Some(redacted)
}

/// Byte range of the scalar at `path` in `body`.
fn token_span(body: &[u8], path: &[String]) -> Option<(usize, usize)> {
    let text = std::str::from_utf8(body).ok()?;
    let mut current: &RawValue = serde_json::from_str(text).ok()?;
    for segment in path {
        let inner = current.get();
        current = match inner.as_bytes().first()? {
            b'{' => {
                let members: std::collections::HashMap<String, &RawValue> = serde_json::from_str(inner).ok()?;
                members.get(segment.as_str()).copied()?
            }
            b'[' => {
                let items: Vec<&RawValue> = serde_json::from_str(inner).ok()?;
                items.get(dotted_path::array_index(segment)?).copied()?
            }
            _ => return None,
        };
    }
    let value = current.get();
    if !matches!(value.as_bytes().first()?, b'"' | b'-' | b'0'..=b'9' | b't' | b'f') {
        return None;
    }
    // A borrowed RawValue is a slice of the text it was read from.
    let start = value.as_ptr() as usize - text.as_ptr() as usize;
    debug_assert!(start + value.len() <= body.len());
    Some((start, start + value.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn path(dotted: &str) -> Vec<String> {
        dotted.split('.').map(str::to_string).collect()
    }

    fn redacted(body: &str, dotted: &str) -> Option<String> {
        redact(body.as_bytes(), &path(dotted)).map(|bytes| String::from_utf8(bytes).unwrap())
    }

    #[test]
    fn only_the_token_changes_and_the_text_stays() {
        let body = r#"{ "myAuth" : {"token":"s3cr3t", "user":"u"},"items":[1, 2.50]}"#;
        assert_eq!(
            redacted(body, "myAuth.token").unwrap(),
            r#"{ "myAuth" : {"token":"[redacted]", "user":"u"},"items":[1, 2.50]}"#
        );
    }

    #[test]
    fn arrays_numbers_escapes_and_repeated_keys() {
        assert_eq!(
            redacted(r#"{"a":[{"t":1},{"t":12345}]}"#, "a.1.t").unwrap(),
            r#"{"a":[{"t":1},{"t":"[redacted]"}]}"#
        );
        assert_eq!(redacted(r#"{"t":"a\"b\u00e9"}"#, "t").unwrap(), r#"{"t":"[redacted]"}"#);
        // The verifier reads the last of repeated members: that is the one hidden.
        assert_eq!(
            redacted(r#"{"t":"first","t":"last"}"#, "t").unwrap(),
            r#"{"t":"first","t":"[redacted]"}"#
        );
        assert_eq!(redacted(r#"{"t":true}"#, "t").unwrap(), r#"{"t":"[redacted]"}"#);
    }

    #[test]
    fn keys_with_slashes_and_tildes_are_found() {
        // A JSON pointer would need `~1` and `~0` here; the path segments are used as they are.
        assert_eq!(
            redacted(r#"{"a/b":{"c~d":"s3cr3t"}}"#, "a/b.c~d").unwrap(),
            r#"{"a/b":{"c~d":"[redacted]"}}"#
        );
    }

    #[test]
    fn nothing_to_hide_is_none() {
        for (body, dotted) in [
            (r#"{"t":{"x":1}}"#, "t"),
            (r#"{"t":null}"#, "t"),
            (r#"{"u":"x"}"#, "t"),
            ("not json", "t"),
            (r#"["x"]"#, "t"),
            (r#"{"t":"x"} trailing"#, "t"),
        ] {
            assert_eq!(redacted(body, dotted), None, "{body}");
        }
    }

    proptest! {
        #[test]
        fn redacted_bodies_stay_json_and_lose_the_token(
            token in "[a-zA-Z0-9]{8,24}",
            other in "[0-9]{0,6}",
            depth in 0usize..4,
        ) {
            let mut value = serde_json::json!({ "token": token, "other": other });
            let mut dotted = String::from("token");
            for level in 0..depth {
                let key = format!("k{level}");
                value = serde_json::json!({ key.clone(): value, "pad": [1, 2] });
                dotted = format!("{key}.{dotted}");
            }
            let body = serde_json::to_string_pretty(&value).unwrap();
            let out = redacted(&body, &dotted).unwrap();
            prop_assert!(!out.contains(&token));
            let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
            let pointer = format!("/{}", dotted.replace('.', "/"));
            prop_assert_eq!(parsed.pointer(&pointer).unwrap(), "[redacted]");
        }
    }
}
