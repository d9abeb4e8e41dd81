//! Logging setup (metrics come with issue 4).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber: human-readable by default, JSON lines with `json`.
/// The level comes from `HOOKPIPE_LOG` (e.g. `info`, `hookpipe=debug`), default `info`.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_env("HOOKPIPE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
