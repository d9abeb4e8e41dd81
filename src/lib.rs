//! hookpipe: a self-hosted webhook listener tier that verifies, rate-limits, parses, pages and
//! publishes webhooks to Kafka, answering 2xx only once Kafka has acknowledged the data.

pub mod api_model;
pub mod app;
pub mod civil_time;
pub mod cli;
pub mod config;
pub mod dotted_path;
pub mod http;
pub mod import_errors;
pub mod import_wait;
pub mod json_schema;
pub mod kafka;
pub mod pipeline;
pub mod redact;
pub mod secret;
pub mod secrets_at_rest;
pub mod shared_state;
pub mod shutdown;
pub mod telemetry;
pub mod templates;
pub mod tls;
pub mod urlencoded;
pub mod wire;
pub mod worker;

/// Entry points and crates for the fuzz targets (`fuzz/`), which depend on this library only:
/// the same code the server runs, and the same versions of the crates they compute reference
/// values with. Not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::pipeline::verify::recipe::template::{parse_template, Part};
    pub use actix_web::web::Bytes;
    pub use base64;
    pub use flate2;
    pub use hmac;
    pub use serde_json;
    pub use sha1;
    pub use sha2;
}
