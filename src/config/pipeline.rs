//! `[pipeline]`: tuning of the actor chain — mailbox sizes, page lingering and parser limits.

use serde::{Deserialize, Serialize};

/// Actor chain tuning.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSettings {
    /// Capacity of every stage mailbox.
    #[serde(default = "default_mailbox_capacity")]
    pub mailbox_capacity: usize,
    /// How long an open page waits for records of concurrent requests before it is published.
    #[serde(default = "default_page_linger_ms")]
    pub page_linger_ms: u64,
    /// Serialized size cap of a page's records (5 MB).
    #[serde(default = "default_max_page_bytes")]
    pub max_page_bytes: usize,
    /// JSON and XML nesting limit.
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,
    /// Form field count limit.
    #[serde(default = "default_max_form_fields")]
    pub max_form_fields: usize,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            mailbox_capacity: default_mailbox_capacity(),
            page_linger_ms: default_page_linger_ms(),
            max_page_bytes: default_max_page_bytes(),
            max_depth: default_max_depth(),
            max_form_fields: default_max_form_fields(),
        }
    }
}

fn default_mailbox_capacity() -> usize {
    1024
}
fn default_page_linger_ms() -> u64 {
    2
}
fn default_max_page_bytes() -> usize {
    5 * 1024 * 1024
}
/// [`MAX_DEPTH`], the highest accepted.
fn default_max_depth() -> usize {
    MAX_DEPTH
}
fn default_max_form_fields() -> usize {
    1000
}

/// Highest `max_depth` accepted, and its default.
const MAX_DEPTH: usize = 128;

impl PipelineSettings {
    /// Problems with these settings, as `(key relative to [pipeline], message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.mailbox_capacity == 0 {
            problems.push(("mailbox_capacity".into(), "must be at least 1".into()));
        }
        if self.max_page_bytes < 1024 {
            problems.push(("max_page_bytes".into(), "must be at least 1024".into()));
        }
        if self.max_depth == 0 || self.max_depth > MAX_DEPTH {
            problems.push(("max_depth".into(), format!("must be between 1 and {MAX_DEPTH}")));
        }
        problems
    }
}
