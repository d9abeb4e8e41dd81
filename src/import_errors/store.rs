//! The errors topic, mirrored (`StateTopic`), with an index of open errors by trace key kept in
//! step with the mirror by a thread (`follow_changes`) for auto-resolution.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock, Weak};

use tokio::sync::broadcast::error::RecvError;

use super::entry::{error_key, ErrorEntry};
use crate::config::kafka::KafkaSettings;
use crate::kafka::state::StateTopic;

/// Open errors per (listener, trace key), kept in step with the mirror, for auto-resolution.
#[derive(Debug, Default)]
struct TraceIndex {
    by_trace: HashMap<(String, String), BTreeSet<String>>,
    by_key: HashMap<String, (String, String)>,
}

impl TraceIndex {
    /// Sets what `key` holds: `Some((listener, trace key))` for an open error, `None` when resolved.
    fn set(&mut self, key: &str, entry: Option<(String, String)>) {
        if let Some(previous) = self.by_key.remove(key) {
            if let Some(keys) = self.by_trace.get_mut(&previous) {
                keys.remove(key);
                if keys.is_empty() {
                    self.by_trace.remove(&previous);
                }
            }
        }
        if let Some(trace) = entry {
            self.by_trace.entry(trace.clone()).or_default().insert(key.to_string());
            self.by_key.insert(key.to_string(), trace);
        }
    }

    fn keys_with(&self, listener_id: &str, trace_key: &str) -> Vec<String> {
        self.by_trace
            .get(&(listener_id.to_string(), trace_key.to_string()))
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The errors topic, mirrored, with an index by trace key.
pub struct ErrorsStore {
    state: Arc<StateTopic>,
    index: Arc<RwLock<TraceIndex>>,
}

impl std::fmt::Debug for ErrorsStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ErrorsStore")
            .field("state", &self.state)
            .finish()
    }
}

impl ErrorsStore {
    /// Opens (with `create`, creates) the errors topic, reads it and keeps following it.
    pub async fn open(settings: &KafkaSettings, bootstrap: &str, create: bool) -> Result<Arc<ErrorsStore>, String> {
        let state = StateTopic::open(settings, bootstrap, &settings.errors_topic, create).await?;
        // Subscribed before the first scan, so no change falls between the two.
        let changes = state.subscribe();
        let index = Arc::new(RwLock::new(TraceIndex::default()));
        let store = Arc::new(ErrorsStore { state, index });
        store.rebuild_index();
        let weak = Arc::downgrade(&store);
        std::thread::Builder::new()
            .name("errors-index".into())
            .spawn(move || follow_changes(weak, changes))
            .map_err(|e| format!("cannot start the errors index thread: {e}"))?;
        Ok(store)
    }

    /// Open errors of a listener, newest first.
    pub fn list(&self, listener_id: &str) -> Vec<ErrorEntry> {
        let mut entries: Vec<ErrorEntry> = self
            .state
            .scan_prefix(&format!("{listener_id}/"))
            .into_iter()
            .filter_map(|(key, value)| decode(&key, &value))
            .collect();
        entries.sort_by(|a, b| {
            b.failed_at_ms
                .cmp(&a.failed_at_ms)
                .then_with(|| b.record_id.cmp(&a.record_id))
        });
        entries
    }

    /// One open error.
    pub fn get(&self, listener_id: &str, record_id: &str) -> Option<ErrorEntry> {
        let key = error_key(listener_id, record_id);
        decode(&key, &self.state.get(&key)?)
    }

    /// Writes an error (new, or replacing the record's previous one); returns once Kafka
    /// acknowledged it and this instance's view shows it.
    pub async fn record(&self, entry: &ErrorEntry) -> Result<(), String> {
        let key = error_key(&entry.listener_id, &entry.record_id);
        let bytes = serde_json::to_vec(entry).map_err(|e| e.to_string())?;
        self.state.put(&key, &bytes).await?;
        self.write_index()
            .set(&key, Some((entry.listener_id.clone(), entry.trace_key.clone())));
        Ok(())
    }

    /// Resolves an error (a tombstone); `false` when it was not open here.
    pub async fn resolve(&self, listener_id: &str, record_id: &str) -> Result<bool, String> {
        let key = error_key(listener_id, record_id);
        if self.state.get(&key).is_none() {
            return Ok(false);
        }
        self.state.delete(&key).await?;
        self.write_index().set(&key, None);
        Ok(true)
    }

    /// Record ids of the listener's open errors with this trace key.
    pub fn open_with_trace_key(&self, listener_id: &str, trace_key: &str) -> Vec<String> {
        let prefix_len = listener_id.len() + 1;
        self.index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys_with(listener_id, trace_key)
            .into_iter()
            .map(|key| key[prefix_len..].to_string())
            .collect()
    }

    /// How many errors are open, over every listener (this instance's mirror of the topic).
    pub fn open_count(&self) -> usize {
        self.index.read().unwrap_or_else(PoisonError::into_inner).by_key.len()
    }

    fn write_index(&self) -> std::sync::RwLockWriteGuard<'_, TraceIndex> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn rebuild_index(&self) {
        let mut index = TraceIndex::default();
        for (key, value) in self.state.scan_prefix("") {
            if let Some(entry) = decode(&key, &value) {
                index.set(&key, Some((entry.listener_id, entry.trace_key)));
            }
        }
        *self.write_index() = index;
    }

    fn refresh_key(&self, key: &str) {
        let entry = self
            .state
            .get(key)
            .and_then(|value| decode(key, &value))
            .map(|entry| (entry.listener_id, entry.trace_key));
        self.write_index().set(key, entry);
    }
}

fn decode(key: &str, value: &[u8]) -> Option<ErrorEntry> {
    match serde_json::from_slice(value) {
        Ok(entry) => Some(entry),
        Err(error) => {
            tracing::warn!(%key, %error, "unreadable entry in the errors topic; ignored");
            None
        }
    }
}

/// The index thread: applies each change the mirror reports; ends when the store is dropped
/// (its mirror then stops and closes the channel).
fn follow_changes(store: Weak<ErrorsStore>, mut changes: tokio::sync::broadcast::Receiver<String>) {
    loop {
        let change = changes.blocking_recv();
        let Some(store) = store.upgrade() else { return };
        match change {
            Ok(key) => store.refresh_key(&key),
            Err(RecvError::Lagged(_)) => store.rebuild_index(),
            Err(RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_index_follows_sets_and_resolutions() {
        let mut index = TraceIndex::default();
        index.set("l/r1", Some(("l".into(), "T".into())));
        index.set("l/r2", Some(("l".into(), "T".into())));
        index.set("m/r3", Some(("m".into(), "T".into())));
        assert_eq!(index.keys_with("l", "T"), vec!["l/r1", "l/r2"]);
        // A record failing again under a new trace key moves.
        index.set("l/r2", Some(("l".into(), "U".into())));
        assert_eq!(index.keys_with("l", "T"), vec!["l/r1"]);
        assert_eq!(index.keys_with("l", "U"), vec!["l/r2"]);
        index.set("l/r1", None);
        index.set("l/never", None);
        assert!(index.keys_with("l", "T").is_empty());
        assert!(!index.by_trace.contains_key(&("l".to_string(), "T".to_string())));
        assert_eq!(index.keys_with("m", "T"), vec!["m/r3"]);
    }
}
