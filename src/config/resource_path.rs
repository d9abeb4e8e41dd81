//! A listener's resource path: where its records are inside the body (`data.items`).

/// A dot-separated path like `data.items` or `shipments.shipment`; numeric segments index JSON arrays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath(String);

impl ResourcePath {
    /// Parses a path, rejecting an empty path and empty segments (`a..b`, `.a`, `a.`).
    pub fn parse(s: &str) -> Result<ResourcePath, String> {
        if s.is_empty() {
            return Err("resource path is empty".to_owned());
        }
        if s.split('.').any(str::is_empty) {
            return Err(format!("resource path \"{s}\" has an empty segment"));
        }
        Ok(ResourcePath(s.to_owned()))
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's segments, in order; never empty, no segment is empty.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }

    /// The path up to and including segment `index`, for error messages.
    pub(crate) fn prefix(&self, index: usize) -> &str {
        let end = self.0.match_indices('.').nth(index).map_or(self.0.len(), |(at, _)| at);
        &self.0[..end]
    }
}

impl std::fmt::Display for ResourcePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
