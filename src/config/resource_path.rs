//! A listener's resource path: where its records are inside the body (`data.items`).

use crate::dotted_path::{self, DottedPathError};

/// A dot-separated path like `data.items` or `shipments.shipment`; numeric segments index JSON arrays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath(String);

impl ResourcePath {
    /// Parses a path, rejecting an empty path and empty segments (`a..b`, `.a`, `a.`).
    pub fn parse(s: &str) -> Result<ResourcePath, String> {
        match dotted_path::segments(s) {
            Ok(_) => Ok(ResourcePath(s.to_owned())),
            Err(DottedPathError::Empty) => Err("resource path is empty".to_owned()),
            Err(DottedPathError::EmptySegment) => Err(format!("resource path \"{s}\" has an empty segment")),
        }
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's segments, in order; never empty, no segment is empty.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        dotted_path::split(&self.0)
    }

    /// The path up to and including segment `index`, for error messages.
    pub(crate) fn prefix(&self, index: usize) -> &str {
        let end = self
            .0
            .match_indices(dotted_path::SEPARATOR)
            .nth(index)
            .map_or(self.0.len(), |(at, _)| at);
        &self.0[..end]
    }
}

impl std::fmt::Display for ResourcePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
