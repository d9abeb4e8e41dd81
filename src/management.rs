//! State every instance shares through Kafka: listener definitions, sample data, mock output
//! and debug windows in one compacted topic, debug captures in a 24-hour log topic. Instances
//! stay stateless: each mirrors the topics and converges within its polling latency.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{ListenerConfig, Settings};
use crate::kafka::state::{LogTopic, StateTopic};
use crate::listener::Registry;
use crate::pipeline::unix_millis_now;
use crate::telemetry::METRICS;

/// Debug captures are kept this long.
pub const DEBUG_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// Captures kept per listener in each instance's view.
pub const DEBUG_CAPTURES_PER_LISTENER: usize = 500;
/// Captured bodies are cut at this many bytes.
pub const DEBUG_BODY_LIMIT: usize = 16 * 1024;
/// Sample bodies are cut at this many bytes, and at most this many records are kept.
pub const SAMPLE_BODY_LIMIT: usize = 64 * 1024;
/// Records kept in a sample.
pub const SAMPLE_RECORDS_LIMIT: usize = 100;
/// An instance writes a listener's sample at most this often.
pub const SAMPLE_INTERVAL_MS: i64 = 1000;

/// Key of a listener definition.
pub fn listener_key(id: &str) -> String {
    format!("listener/{id}")
}
/// Key of a listener's sample data.
pub fn sample_key(id: &str) -> String {
    format!("sample/{id}")
}
/// Key of a listener's mock output.
pub fn mock_key(id: &str) -> String {
    format!("mock/{id}")
}
/// Key of a listener's debug window.
pub fn debug_key(id: &str) -> String {
    format!("debug/{id}")
}

/// A listener stored through the API (secrets included: the topic is the system of record).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredListener {
    /// Its settings; `public_id` is always set.
    pub config: ListenerConfig,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

/// An open debug window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DebugWindow {
    /// End, Unix ms.
    pub until_ms: i64,
}

/// The shared state of the tier.
pub struct SharedState {
    /// Listener definitions, samples, mocks, debug windows.
    pub state: Arc<StateTopic>,
    /// Debug captures.
    pub debug_log: Arc<LogTopic>,
    /// This instance's name in captures.
    pub instance: String,
    sample_written: Mutex<HashMap<String, i64>>,
}

impl SharedState {
    /// Opens (and with `create`, creates) the state and debug topics and mirrors them.
    pub async fn open(settings: &Settings, bootstrap: &str, create: bool) -> Result<Arc<SharedState>, String> {
        let state = StateTopic::open(&settings.kafka, bootstrap, &settings.kafka.state_topic, create).await?;
        let debug_log = LogTopic::open(
            &settings.kafka,
            bootstrap,
            &settings.kafka.debug_topic,
            DEBUG_RETENTION,
            DEBUG_CAPTURES_PER_LISTENER,
            create,
        )
        .await?;
        let instance = settings.server.instance_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "hookpipe".into());
            let port = settings.server.listen.rsplit(':').next().unwrap_or("0");
            format!("{host}:{port}")
        });
        Ok(Arc::new(SharedState {
            state,
            debug_log,
            instance,
            sample_written: Mutex::new(HashMap::new()),
        }))
    }

    /// Listeners stored through the API.
    pub fn stored_listeners(&self) -> Vec<StoredListener> {
        self.state
            .scan_prefix("listener/")
            .into_iter()
            .filter_map(|(key, value)| match serde_json::from_slice(&value) {
                Ok(stored) => Some(stored),
                Err(error) => {
                    tracing::error!(%key, %error, "unreadable listener definition in the state topic; ignored");
                    None
                }
            })
            .collect()
    }

    /// One stored listener.
    pub fn stored_listener(&self, id: &str) -> Option<StoredListener> {
        serde_json::from_slice(&self.state.get(&listener_key(id))?).ok()
    }

    /// Open debug windows, listener id → end (Unix ms).
    pub fn debug_windows(&self) -> HashMap<String, i64> {
        self.state
            .scan_prefix("debug/")
            .into_iter()
            .filter_map(|(key, value)| {
                let window: DebugWindow = serde_json::from_slice(&value).ok()?;
                Some((key.trim_start_matches("debug/").to_string(), window.until_ms))
            })
            .collect()
    }

    /// Whether this instance should write a sample for the listener now (at most one per
    /// second per listener per instance, so samples cost nothing at high rates).
    pub fn sample_due(&self, listener_id: &str, now_ms: i64) -> bool {
        let mut written = self.sample_written.lock().unwrap_or_else(|poison| poison.into_inner());
        match written.get(listener_id) {
            Some(last) if now_ms - last < SAMPLE_INTERVAL_MS => false,
            _ => {
                written.insert(listener_id.to_string(), now_ms);
                true
            }
        }
    }

    /// Whether a sample for the listener was written less than a second ago (no claim made).
    pub fn sample_recently_written(&self, listener_id: &str, now_ms: i64) -> bool {
        let written = self.sample_written.lock().unwrap_or_else(|poison| poison.into_inner());
        written
            .get(listener_id)
            .is_some_and(|last| now_ms - last < SAMPLE_INTERVAL_MS)
    }

    /// Writes a sample without waiting; a full producer queue drops it (counted).
    pub fn offer_sample(&self, listener_id: &str, sample: &serde_json::Value) {
        let bytes = serde_json::to_vec(sample).unwrap_or_default();
        if self.state.try_put(&sample_key(listener_id), &bytes).is_err() {
            METRICS.samples_dropped.inc();
        }
    }
}

/// Keeps the registry and debug windows in step with the state topic, on the current arbiter.
pub fn spawn_sync(shared: Arc<SharedState>, registry: Arc<Registry>, settings: Arc<Settings>) {
    let mut changes = shared.state.subscribe();
    apply_listeners(&shared, &registry, &settings);
    apply_debug_windows(&shared, &registry);
    actix_web::rt::spawn(async move {
        loop {
            match changes.recv().await {
                Ok(key) if key.starts_with("listener/") => apply_listeners(&shared, &registry, &settings),
                Ok(key) if key.starts_with("debug/") => apply_debug_windows(&shared, &registry),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    apply_listeners(&shared, &registry, &settings);
                    apply_debug_windows(&shared, &registry);
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

pub fn apply_listeners(shared: &SharedState, registry: &Registry, settings: &Settings) {
    let stored = shared.stored_listeners().into_iter().map(|s| s.config).collect();
    if let Err(error) = registry.rebuild(settings, stored) {
        tracing::error!(%error, "cannot rebuild the listener registry");
    }
}

pub fn apply_debug_windows(shared: &SharedState, registry: &Registry) {
    let windows = shared.debug_windows();
    registry.set_debug_windows(windows);
    METRICS
        .debug_windows_open
        .set(registry.open_debug_windows(unix_millis_now()) as i64);
}

/// A short, stable, non-reversible name for a secret: the first 8 hex digits of its SHA-256.
pub fn fingerprint(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Fields of a verification config that hold secrets.
const SECRET_LIST_FIELDS: &[&str] = &["secrets", "tokens", "auth_tokens"];

/// A listener's settings as JSON with every secret replaced by its fingerprint.
pub fn redacted_settings(config: &ListenerConfig) -> serde_json::Value {
    let mut value = serde_json::to_value(config).unwrap_or_default();
    if let Some(verification) = value.get_mut("verification").and_then(|v| v.as_object_mut()) {
        for field in SECRET_LIST_FIELDS {
            if let Some(list) = verification.get_mut(*field).and_then(|v| v.as_array_mut()) {
                for item in list.iter_mut() {
                    let secret = item.as_str().unwrap_or_default().to_string();
                    *item = serde_json::json!({ "fingerprint": fingerprint(&secret) });
                }
            }
        }
        if let Some(list) = verification.get_mut("credentials").and_then(|v| v.as_array_mut()) {
            for item in list.iter_mut() {
                let username = item.get("username").cloned().unwrap_or_default();
                let password = item
                    .get("password")
                    .and_then(|p| p.as_str())
                    .unwrap_or_default()
                    .to_string();
                *item = serde_json::json!({ "username": username, "fingerprint": fingerprint(&password) });
            }
        }
    }
    value
}

/// The name of the list holding a verification type's secrets.
pub fn secret_field(verification_type: &str) -> Option<&'static str> {
    match verification_type {
        "none" => None,
        "basic" => Some("credentials"),
        "secret_url" | "token" => Some("tokens"),
        "twilio" => Some("auth_tokens"),
        _ => Some("secrets"),
    }
}

/// RFC 7396 JSON merge patch.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match patch {
        serde_json::Value::Object(patch) => {
            if !target.is_object() {
                *target = serde_json::Value::Object(Default::default());
            }
            let target = target.as_object_mut().expect("made an object above");
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge_patch(target.entry(key.clone()).or_insert(serde_json::Value::Null), value);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// A random token for public ids and secret URLs: 128 bits, 32 hex digits.
pub fn random_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Headers as a JSON object with secrets replaced.
pub fn redacted_headers(headers: &actix_web::http::header::HeaderMap, extra: Option<&str>) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (name, value) in headers {
        let name = name.as_str();
        let sensitive = crate::http::receiver::SENSITIVE_HEADERS.contains(&name)
            || extra.is_some_and(|extra| extra.eq_ignore_ascii_case(name));
        let value = if sensitive {
            "[redacted]".to_string()
        } else {
            value.to_str().unwrap_or("[not text]").to_string()
        };
        map.insert(name.to_string(), value.into());
    }
    map.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]});
        merge_patch(&mut target, &json!({"a": "z", "c": {"f": null}, "list": [3]}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}, "list": [3]}));
    }

    #[test]
    fn redaction_replaces_every_secret() {
        let config: ListenerConfig = serde_json::from_value(json!({
            "id": "x",
            "verification": {"type": "basic", "credentials": [{"username": "u", "password": "hunter2-password"}]}
        }))
        .unwrap();
        let text = redacted_settings(&config).to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains(&fingerprint("hunter2-password")));
        let config: ListenerConfig = serde_json::from_value(json!({
            "id": "x",
            "verification": {"type": "hmac", "algorithm": "sha256", "encoding": "hex", "header": "X-S", "secrets": ["s3cr3t-value"]}
        }))
        .unwrap();
        let text = redacted_settings(&config).to_string();
        assert!(!text.contains("s3cr3t-value"), "{text}");
    }
}
