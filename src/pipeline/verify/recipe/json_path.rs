//! Dotted JSON paths of a recipe's `delivery_id_json` and a token's `json_path`: parsed once,
//! looked up per request — in a parsed document, or straight from the body bytes.

use crate::dotted_path::{self, DottedPathError};

/// Parses `a.b.0.c` (optionally `$.`-prefixed) into path segments.
pub(crate) fn parse_json_path(path: &str) -> Result<Vec<String>, String> {
    let trimmed = path.strip_prefix("$.").unwrap_or(path);
    match dotted_path::segments(trimmed) {
        Ok(segments) => Ok(segments.into_iter().map(str::to_owned).collect()),
        Err(DottedPathError::Empty) => Err("must name a field, e.g. `token` or `auth.token`".to_owned()),
        Err(DottedPathError::EmptySegment) => Err("empty path segment (use `a.b.c`)".to_owned()),
    }
}

/// Looks up a scalar at `path`; strings as-is, numbers and booleans rendered.
pub(crate) fn json_lookup(value: &serde_json::Value, path: &[String]) -> Option<String> {
    let mut cur = value;
    for seg in path {
        cur = match cur {
            serde_json::Value::Object(map) => map.get(seg)?,
            serde_json::Value::Array(items) => items.get(dotted_path::array_index(seg)?)?,
            _ => return None,
        };
    }
    match cur {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `json_lookup` straight from the body bytes, without building the document: everything off
/// the path is skipped with `IgnoredAny`, so looking up an event id costs a scan, not a tree.
pub(crate) fn json_lookup_bytes(body: &[u8], path: &[String]) -> Option<String> {
    use serde::de::DeserializeSeed;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    PathSeed(path).deserialize(&mut deserializer).ok().flatten()
}

struct PathSeed<'a>(&'a [String]);

impl<'de> serde::de::DeserializeSeed<'de> for PathSeed<'_> {
    type Value = Option<String>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(PathVisitor(self.0))
    }
}

struct PathVisitor<'a>(&'a [String]);

impl<'de> serde::de::Visitor<'de> for PathVisitor<'_> {
    type Value = Option<String>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.0.split_first() {
                Some((first, rest)) if found.is_none() && key == first.as_str() => {
                    found = map.next_value_seed(PathSeed(rest))?;
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let wanted = self
            .0
            .split_first()
            .and_then(|(first, rest)| Some((dotted_path::array_index(first)?, rest)));
        let mut found = None;
        let mut index = 0;
        loop {
            match wanted {
                Some((position, rest)) if position == index => match seq.next_element_seed(PathSeed(rest))? {
                    Some(value) => found = value,
                    None => break,
                },
                _ => {
                    if seq.next_element::<serde::de::IgnoredAny>()?.is_none() {
                        break;
                    }
                }
            }
            index += 1;
        }
        Ok(found)
    }

    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then_some(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| value.to_string()))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| value.to_string()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Self::Value, E> {
        Ok(self
            .0
            .is_empty()
            .then(|| serde_json::Number::from_f64(value).map(|n| n.to_string()))
            .flatten())
    }

    fn visit_bool<E>(self, value: bool) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| value.to_string()))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lookup_bytes_matches_the_document_lookup() {
        let body = br#"{"a":{"b":[{"x":1},{"id":"evt_9","n":2.5}]},"id":7,"t":true,"s":"x\"y"}"#;
        let value: serde_json::Value = serde_json::from_slice(body).unwrap();
        for path in [
            "id", "a.b.1.id", "a.b.1.n", "a.b.0.x", "t", "s", "a", "missing", "a.b.5.id", "id.x",
        ] {
            let path: Vec<String> = path.split('.').map(str::to_string).collect();
            assert_eq!(json_lookup_bytes(body, &path), json_lookup(&value, &path), "{path:?}");
        }
        assert_eq!(json_lookup_bytes(b"not json", &["id".to_string()]), None);
    }

    #[test]
    fn paths_parse_as_dotted_paths_with_an_optional_root() {
        assert_eq!(parse_json_path("$.auth.token").unwrap(), ["auth", "token"]);
        assert_eq!(parse_json_path("a/b.c~d").unwrap(), ["a/b", "c~d"]);
        assert!(parse_json_path("$.").unwrap_err().contains("must name a field"));
        assert!(parse_json_path("a..b").unwrap_err().contains("empty path segment"));
    }
}
