//! How deep and how wide a body may be: the limits a listener sets and the ceilings the
//! parsers impose whatever it sets.

/// The deepest JSON nesting serde_json accepts with its default recursion limit.
pub const JSON_DEPTH_CEILING: usize = 127;

/// The deepest a record's JSON may nest. A page nests each record's `data` three levels down
/// (page object, `records` array, record object), and a page must stay readable by JSON parsers
/// with a nesting limit — serde_json, which the import worker uses, refuses a 128th level.
pub const RECORD_DEPTH_LIMIT: usize = 124;

/// Upper bound on XML element nesting, whatever `max_depth` says: keeps the
/// recursive drop of the resulting `Value` far away from the stack limit.
pub const XML_DEPTH_CEILING: usize = 1024;

/// Limits applied while parsing a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLimits {
    /// Maximum nesting of JSON arrays/objects or XML elements (the outermost counts as 1).
    pub max_depth: usize,
    /// Maximum number of `key=value` pairs in a form body.
    pub max_form_fields: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_depth: 128,
            max_form_fields: 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn nested_arrays(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn serde_json_recursion_ceiling_is_what_we_assume() {
        let ok = nested_arrays(JSON_DEPTH_CEILING);
        assert!(serde_json::from_str::<Value>(&ok).is_ok());
        let too_deep = nested_arrays(JSON_DEPTH_CEILING + 1);
        assert!(serde_json::from_str::<Value>(&too_deep).is_err());
    }
}
