//! State every instance shares through Kafka: listener definitions (secrets sealed), sample
//! data, mock output and debug windows in one compacted topic, debug captures in a 24-hour log
//! topic. Instances stay stateless: each mirrors the topics and converges within its polling
//! latency.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{listener::ListenerConfig, Settings};
use crate::kafka::state::{LogTopic, StateTopic};
use crate::pipeline::dedup::Deduplicator;
use crate::pipeline::listener::Registry;
use crate::pipeline::unix_millis_now;
use crate::secrets_at_rest::{Keyring, Sealing, SecretsError};
use crate::telemetry::METRICS;

/// Debug captures are kept this long.
pub const DEBUG_RETENTION: Duration = crate::kafka::topics::DEBUG_RETENTION;
/// Captures kept per listener in each instance's view.
pub const DEBUG_CAPTURES_PER_LISTENER: usize = 500;
/// Captured bodies are cut at this many bytes.
pub const DEBUG_BODY_LIMIT: usize = 16 * 1024;
/// Sample bodies are cut at this many bytes, and at most this many records are kept.
pub const SAMPLE_BODY_LIMIT: usize = 64 * 1024;
/// Records kept in a sample.
pub const SAMPLE_RECORDS_LIMIT: usize = 100;

/// Key of a listener definition.
fn listener_key(id: &str) -> String {
    format!("listener/{id}")
}
/// Key of a listener's sample data.
fn sample_key(id: &str) -> String {
    format!("sample/{id}")
}
/// Key of a listener's mock output.
fn mock_key(id: &str) -> String {
    format!("mock/{id}")
}
/// Key of a listener's debug window.
fn debug_key(id: &str) -> String {
    format!("debug/{id}")
}

/// A listener stored through the API (secrets included: the topic is the system of record).
/// In the topic every secret is sealed (`secrets_at_rest`); in memory, as returned by
/// [`SharedState::stored_listener`], they are plaintext.
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

/// Why a listener definition could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum PutListenerError {
    /// It carries secrets and there is no `server.secrets_key` to seal them with.
    #[error(
        "listener secrets cannot be stored: no secrets key is configured. Set server.secrets_key \
         (HOOKPIPE_SERVER__SECRETS_KEY) to base64 of 32 random bytes (`openssl rand -base64 32`)"
    )]
    NoSecretsKey,
    /// Sealing failed (random generator).
    #[error(transparent)]
    Sealing(SecretsError),
    /// The state topic did not take the write.
    #[error("{0}")]
    Storage(String),
}

/// The shared state of the tier.
pub struct SharedState {
    /// Listener definitions, samples, mocks, debug windows.
    pub state: Arc<StateTopic>,
    /// Debug captures.
    pub debug_log: Arc<LogTopic>,
    /// Delivery ids the fleet accepted (listeners with `dedup`), followed from the dedup topic
    /// once `pipeline::dedup_feed::spawn_open` has opened it.
    pub dedup: Arc<Deduplicator>,
    /// This instance's name in captures.
    pub instance: String,
    /// Keys sealing listener secrets in `state`.
    keyring: Keyring,
}

impl SharedState {
    /// Opens (and with `create`, creates) the state and debug topics and mirrors them.
    pub async fn open(settings: &Settings, bootstrap: &str, create: bool) -> Result<Arc<SharedState>, String> {
        let keyring = Keyring::new(
            settings.server.secrets_key.as_ref(),
            &settings.server.previous_secrets_keys,
        )?;
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
        let dedup = Deduplicator::new();
        let instance = settings.server.instance_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "hookpipe".into());
            let port = settings.server.listen.port();
            format!("{host}:{port}")
        });
        Ok(Arc::new(SharedState {
            state,
            debug_log,
            dedup,
            instance,
            keyring,
        }))
    }

    /// Id of the key new listener secrets are sealed under; `None` when writes carrying
    /// secrets are refused.
    pub fn secrets_key_id(&self) -> Option<&str> {
        self.keyring.current_key_id()
    }

    /// Listeners stored through the API, secrets opened. A listener whose secrets do not open
    /// (unknown key, altered value) is skipped with an error log; the others are returned.
    pub fn stored_listeners(&self) -> Vec<StoredListener> {
        self.state
            .scan_prefix("listener/")
            .into_iter()
            .filter_map(|(key, value)| self.open_stored(&key, &value).map(|(stored, _)| stored))
            .collect()
    }

    /// One stored listener, secrets opened.
    pub fn stored_listener(&self, id: &str) -> Option<StoredListener> {
        let key = listener_key(id);
        self.open_stored(&key, &self.state.get(&key)?).map(|(stored, _)| stored)
    }

    /// Whether the state topic holds a definition for `id`, readable or not.
    pub fn has_stored_listener(&self, id: &str) -> bool {
        self.state.get(&listener_key(id)).is_some()
    }

    fn open_stored(&self, key: &str, value: &[u8]) -> Option<(StoredListener, Sealing)> {
        open_listener(&self.keyring, key, value)
    }

    /// Stores a listener definition with every secret sealed under the current key; returns
    /// once this instance's mirror applied it.
    pub async fn put_listener(&self, stored: &StoredListener) -> Result<(), PutListenerError> {
        let bytes = seal_listener(&self.keyring, stored)?;
        self.state
            .put(&listener_key(&stored.config.id), &bytes)
            .await
            .map_err(PutListenerError::Storage)
    }

    /// At start: rewrites stored listeners whose secrets are in clear (older versions) or under
    /// a previous key so they end up under the current key; returns how many were rewritten.
    /// Without a key nothing is rewritten and clear ones are only counted in a warning.
    pub async fn seal_stored_listeners(&self) -> usize {
        let mut outdated = Vec::new();
        for (key, value) in self.state.scan_prefix("listener/") {
            match self.open_stored(&key, &value) {
                Some((stored, sealing)) if sealing != Sealing::Current => outdated.push((key, value, stored, sealing)),
                _ => {}
            }
        }
        if self.keyring.current_key_id().is_none() {
            let in_clear = outdated
                .iter()
                .filter(|(_, _, _, sealing)| *sealing == Sealing::Clear)
                .count();
            if in_clear > 0 {
                tracing::warn!(
                    listeners = in_clear,
                    "stored listeners keep their secrets IN CLEAR in the state topic: set server.secrets_key \
                     (HOOKPIPE_SERVER__SECRETS_KEY) to seal them"
                );
            }
            return 0;
        }
        let mut rewritten = 0;
        for (key, value, stored, _) in outdated {
            // Changed since the scan (by another instance, whose write is sealed): keep that. The
            // window left between this check and the write is that of any two concurrent writes.
            if self.state.get(&key).as_deref() != Some(&value[..]) {
                continue;
            }
            match self.put_listener(&stored).await {
                Ok(()) => rewritten += 1,
                Err(error) => tracing::error!(listener = %stored.config.id, %error, "cannot reseal stored listener"),
            }
        }
        tracing::info!(
            listeners = rewritten,
            key_id = self.keyring.current_key_id().unwrap_or_default(),
            "resealed stored listeners whose secrets were in clear or under a previous key"
        );
        rewritten
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

    /// The listener's latest sample data.
    pub fn sample(&self, listener_id: &str) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.state.get(&sample_key(listener_id))?).ok()
    }

    /// Replaces the listener's sample data; returns once Kafka acknowledged it.
    pub async fn put_sample(&self, listener_id: &str, sample: &serde_json::Value) -> Result<(), String> {
        let bytes = serde_json::to_vec(sample).unwrap_or_default();
        self.state.put(&sample_key(listener_id), &bytes).await
    }

    /// The listener's saved mock output.
    pub fn mock(&self, listener_id: &str) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.state.get(&mock_key(listener_id))?).ok()
    }

    /// Saves the listener's mock output; returns once Kafka acknowledged it.
    pub async fn put_mock(&self, listener_id: &str, mock: &serde_json::Value) -> Result<(), String> {
        let bytes = serde_json::to_vec(mock).unwrap_or_default();
        self.state.put(&mock_key(listener_id), &bytes).await
    }

    /// Opens (or moves the end of) the listener's debug window, for every instance.
    pub async fn open_debug_window(&self, listener_id: &str, until_ms: i64) -> Result<(), String> {
        let bytes = serde_json::to_vec(&DebugWindow { until_ms }).unwrap_or_default();
        self.state.put(&debug_key(listener_id), &bytes).await
    }

    /// Closes the listener's debug window, for every instance.
    pub async fn close_debug_window(&self, listener_id: &str) -> Result<(), String> {
        self.state.delete(&debug_key(listener_id)).await
    }

    /// Deletes everything stored for a listener: its definition, sample, mock output and debug window.
    pub async fn forget_listener(&self, listener_id: &str) -> Result<(), String> {
        for key in [
            listener_key(listener_id),
            sample_key(listener_id),
            mock_key(listener_id),
            debug_key(listener_id),
        ] {
            self.state.delete(&key).await?;
        }
        Ok(())
    }

    /// The listener's debug captures still kept, newest first.
    pub fn captures(&self, listener_id: &str) -> Vec<serde_json::Value> {
        self.debug_log
            .entries(listener_id)
            .into_iter()
            .filter_map(|(_, bytes)| serde_json::from_slice(&bytes).ok())
            .collect()
    }

    /// Writes a sample without waiting; a full producer queue drops it (counted).
    pub fn offer_sample(&self, listener_id: &str, sample: &serde_json::Value) {
        let bytes = serde_json::to_vec(sample).unwrap_or_default();
        if self.state.try_put(&sample_key(listener_id), &bytes).is_err() {
            crate::telemetry::events::SampleDropped.emit();
        }
    }
}

/// A listener definition as stored: JSON with every secret sealed for its id.
pub fn seal_listener(keyring: &Keyring, stored: &StoredListener) -> Result<Vec<u8>, PutListenerError> {
    let mut sealed = stored.clone();
    let id = sealed.config.id.clone();
    let secrets = sealed.config.secrets_mut();
    if !secrets.is_empty() {
        keyring.seal_all(secrets, &id).map_err(|error| match error {
            SecretsError::NoKey => PutListenerError::NoSecretsKey,
            other => PutListenerError::Sealing(other),
        })?;
    }
    serde_json::to_vec(&sealed).map_err(|e| PutListenerError::Storage(e.to_string()))
}

/// Parses a stored definition at `key` and opens its secrets (the listener id, from the key,
/// is the additional authenticated data); logs and returns `None` when either fails.
pub fn open_listener(keyring: &Keyring, key: &str, value: &[u8]) -> Option<(StoredListener, Sealing)> {
    let id = key.strip_prefix("listener/").unwrap_or(key);
    let mut stored: StoredListener = match serde_json::from_slice(value) {
        Ok(stored) => stored,
        Err(error) => {
            tracing::error!(%key, %error, "unreadable listener definition in the state topic; ignored");
            return None;
        }
    };
    if stored.config.id != id {
        // The key is what the secrets are bound to: a definition copied under another key
        // would otherwise be resealed for, and served as, the listener it names.
        tracing::error!(%key, "stored listener skipped: its id does not match its key");
        return None;
    }
    match keyring.open_all(stored.config.secrets_mut(), id) {
        Ok(sealing) => Some((stored, sealing)),
        Err(error) => {
            // The error names the key id, never a value.
            tracing::error!(listener = %id, %error, "stored listener skipped: its secrets do not open");
            None
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::secret::Secret;
    use serde_json::json;

    const KEY_A: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const KEY_B: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
    const CANARY: &str = "canary-0f9e8d7c6b5a";

    fn keyring(current: Option<&str>, previous: &[&str]) -> Keyring {
        let current = current.map(Secret::new);
        let previous: Vec<Secret> = previous.iter().map(|k| Secret::new(*k)).collect();
        Keyring::new(current.as_ref(), &previous).unwrap()
    }

    /// One listener per verification type, each secret a distinct canary.
    fn listeners_of_every_type() -> Vec<StoredListener> {
        let recipe = json!({"type": "recipe", "algorithm": "sha256", "encoding": "hex",
                            "signature_header": "X-Sig", "secrets": [format!("{CANARY}-r")]});
        let mut verifications = vec![
            json!({"type": "basic", "credentials": [{"username": "u", "password": format!("{CANARY}-b")}]}),
            json!({"type": "hmac", "algorithm": "sha256", "encoding": "hex", "header": "X-S",
                   "secrets": [format!("{CANARY}-h1"), format!("{CANARY}-h2")]}),
            json!({"type": "secret_url", "tokens": [format!("{CANARY}-url-token")]}),
            json!({"type": "token", "tokens": [format!("{CANARY}-t")], "header": "X-T"}),
            json!({"type": "twilio", "auth_tokens": [format!("{CANARY}-tw")]}),
            recipe,
        ];
        for preset in ["github", "stripe", "slack", "shopify", "standard_webhooks", "zendesk"] {
            verifications.push(json!({"type": preset, "secrets": [format!("{CANARY}-{preset}")]}));
        }
        verifications
            .into_iter()
            .enumerate()
            .map(|(index, verification)| StoredListener {
                config: serde_json::from_value(json!({
                    "id": format!("l{index}"), "public_id": uuid::Uuid::new_v4().simple().to_string(), "verification": verification
                }))
                .unwrap(),
                created_at: "2024-01-01T00:00:00.000Z".into(),
                updated_at: "2024-01-01T00:00:00.000Z".into(),
            })
            .collect()
    }

    fn config_json(stored: &StoredListener) -> serde_json::Value {
        serde_json::to_value(&stored.config).unwrap()
    }

    #[test]
    fn stored_definitions_hold_no_secret_in_clear() {
        let keyring = keyring(Some(KEY_A), &[]);
        let encoded_canary = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, CANARY);
        for stored in listeners_of_every_type() {
            let bytes = seal_listener(&keyring, &stored).unwrap();
            let text = String::from_utf8(bytes.clone()).unwrap();
            assert!(!text.contains("canary"), "{text}");
            assert!(!text.contains(&encoded_canary[..16]), "{text}");
            assert!(text.contains("enc:v1:"), "{text}");
            let (opened, sealing) = open_listener(&keyring, &listener_key(&stored.config.id), &bytes).unwrap();
            assert_eq!(sealing, Sealing::Current);
            assert_eq!(config_json(&opened), config_json(&stored));
        }
    }

    #[test]
    fn definitions_that_do_not_open_are_skipped() {
        let stored = listeners_of_every_type().remove(1);
        let bytes = seal_listener(&keyring(Some(KEY_A), &[]), &stored).unwrap();
        // Copied under another listener's key: the listener id is authenticated.
        assert!(open_listener(&keyring(Some(KEY_A), &[]), &listener_key("elsewhere"), &bytes).is_none());
        // Under a key this instance does not have.
        assert!(open_listener(&keyring(Some(KEY_B), &[]), &listener_key("l1"), &bytes).is_none());
        assert!(open_listener(&keyring(None, &[]), &listener_key("l1"), &bytes).is_none());
        // A definition with nothing sealed (type none), copied under another key, names a
        // listener it is not stored for: skipped too, never served or resealed as that one.
        let mut open = listeners_of_every_type().remove(0);
        open.config.verification = Default::default();
        let clear = serde_json::to_vec(&open).unwrap();
        assert!(open_listener(&keyring(Some(KEY_A), &[]), &listener_key(&open.config.id), &clear).is_some());
        assert!(open_listener(&keyring(Some(KEY_A), &[]), &listener_key("elsewhere"), &clear).is_none());
    }

    #[test]
    fn clear_and_previous_key_definitions_open_and_are_due_for_resealing() {
        let stored = listeners_of_every_type().remove(0);
        let clear = serde_json::to_vec(&stored).unwrap();
        let rotated = keyring(Some(KEY_B), &[KEY_A]);
        let (opened, sealing) = open_listener(&rotated, &listener_key("l0"), &clear).unwrap();
        assert_eq!((config_json(&opened), sealing), (config_json(&stored), Sealing::Clear));
        let old = seal_listener(&keyring(Some(KEY_A), &[]), &stored).unwrap();
        let (opened, sealing) = open_listener(&rotated, &listener_key("l0"), &old).unwrap();
        assert_eq!(
            (config_json(&opened), sealing),
            (config_json(&stored), Sealing::Previous)
        );
        // Secret-free definitions need no key at all.
        let mut plain = stored.clone();
        plain.config.verification = Default::default();
        let bytes = seal_listener(&keyring(None, &[]), &plain).unwrap();
        assert!(open_listener(&keyring(None, &[]), &listener_key("l0"), &bytes).is_some());
        // Without a key, secrets are refused rather than written in clear.
        assert!(matches!(
            seal_listener(&keyring(None, &[KEY_A]), &stored),
            Err(PutListenerError::NoSecretsKey)
        ));
    }
}
