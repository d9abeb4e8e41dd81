//! Dotted paths (`data.items`, `auth.token`, `batches.1.items`): how a listener names a place
//! in a body — its resource path, a token's `json_path`, a recipe's `delivery_id_json`.
//! Written once so that all of them agree on what a segment is: the text between two dots,
//! never empty, used as it is. There are no escapes, so a key may hold `/` or `~` (which a JSON
//! pointer would spell `~1` and `~0`), but not a dot.

/// What separates two segments.
pub const SEPARATOR: char = '.';

/// Why a text is not a dotted path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DottedPathError {
    /// The path is empty.
    Empty,
    /// Two dots in a row, or a dot at either end.
    EmptySegment,
}

/// The segments of `path`, in order; each caller words the error for its own field.
pub fn segments(path: &str) -> Result<Vec<&str>, DottedPathError> {
    if path.is_empty() {
        return Err(DottedPathError::Empty);
    }
    let segments: Vec<&str> = split(path).collect();
    if segments.iter().any(|segment| segment.is_empty()) {
        return Err(DottedPathError::EmptySegment);
    }
    Ok(segments)
}

/// The segments of a path already checked by [`segments`], borrowed from it.
pub fn split(path: &str) -> std::str::Split<'_, char> {
    path.split(SEPARATOR)
}

/// A segment read as an array index the way verification reads it (`str::parse::<usize>`:
/// decimal digits, a leading `+` allowed); `None` for anything else, so it names no element.
pub fn array_index(segment: &str) -> Option<usize> {
    segment.parse::<usize>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn segments_and_errors() {
        assert_eq!(segments("a.b.0"), Ok(vec!["a", "b", "0"]));
        assert_eq!(segments("a/b.c~d"), Ok(vec!["a/b", "c~d"]));
        assert_eq!(segments(""), Err(DottedPathError::Empty));
        for bad in ["a..b", ".a", "a.", "."] {
            assert_eq!(segments(bad), Err(DottedPathError::EmptySegment), "{bad}");
        }
        assert_eq!(array_index("12"), Some(12));
        assert_eq!(array_index("+1"), Some(1));
        assert_eq!(array_index("-1"), None);
        assert_eq!(array_index("x"), None);
    }

    proptest! {
        /// The three former checks (recipe `parse_json_path` after its `$.`, `ResourcePath::parse`,
        /// and the split of both) accept exactly the paths `segments` accepts.
        #[test]
        fn equals_the_former_splitting(path in "[a.~/0-9]{0,8}") {
            let former_json_path: Result<Vec<String>, &str> = if path.is_empty() {
                Err("empty")
            } else {
                let segs: Vec<String> = path.split('.').map(str::to_owned).collect();
                if segs.iter().any(String::is_empty) { Err("segment") } else { Ok(segs) }
            };
            let former_resource_path_ok = !path.is_empty() && !path.split('.').any(str::is_empty);
            let merged = segments(&path);
            prop_assert_eq!(merged.is_ok(), former_resource_path_ok);
            match (&merged, &former_json_path) {
                (Ok(new), Ok(old)) => prop_assert_eq!(new.clone(), old.iter().map(String::as_str).collect::<Vec<_>>()),
                (Err(DottedPathError::Empty), Err(old)) => prop_assert_eq!(*old, "empty"),
                (Err(DottedPathError::EmptySegment), Err(old)) => prop_assert_eq!(*old, "segment"),
                _ => prop_assert!(false, "{path:?}: {merged:?} vs {former_json_path:?}"),
            }
        }
    }
}
