//! The dedup topic (`kafka.dedup_topic`): the delivery ids the fleet accepted, so that every
//! instance deduplicates what any of them accepted (`pipeline::dedup`). Key: the listener id;
//! value: the delivery id; Kafka's timestamp: when it was accepted. Kept `MAX_WINDOW_SECS` (the
//! longest window), read from the beginning at start and followed after, as the state topic is.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::state::{Follower, Sink};
use super::topics::Cleanup;
use crate::config::dedup::MAX_WINDOW_SECS;
use crate::config::kafka::KafkaSettings;
use crate::pipeline::dedup::{Deduplicator, Feed};
use crate::pipeline::unix_millis_now;

/// How often ids whose window ended are dropped from memory (a scan of every id).
const PRUNE_EVERY: Duration = Duration::from_secs(30);

/// The dedup topic: its follower feeds `Deduplicator::observe`, and it is the deduplicator's feed.
pub struct DedupFeed {
    follower: Follower,
}

impl DedupFeed {
    /// Reads the topic into `dedup` (up to the high watermarks at open), keeps following it, and
    /// makes it `dedup`'s feed.
    pub async fn open(
        settings: &KafkaSettings,
        bootstrap: &str,
        dedup: Arc<Deduplicator>,
        create: bool,
    ) -> Result<Arc<DedupFeed>, String> {
        let sink = Arc::new(Observer {
            dedup: dedup.clone(),
            last_prune_ms: AtomicI64::new(unix_millis_now()),
        });
        let cleanup = Cleanup::Delete {
            retention_ms: MAX_WINDOW_SECS * 1000,
        };
        let follower = Follower::open(settings, bootstrap, &settings.dedup_topic, cleanup, create, sink).await?;
        let feed = Arc::new(DedupFeed { follower });
        dedup.set_feed(feed.clone());
        Ok(feed)
    }
}

impl Feed for DedupFeed {
    fn publish(&self, listener: &str, id: &str) -> Result<(), String> {
        // Not awaited: the request is answered already, and a lost append only lets a later
        // copy through (published twice, never lost).
        self.follower.enqueue(listener, Some(id.as_bytes())).map(drop)
    }
}

struct Observer {
    dedup: Arc<Deduplicator>,
    last_prune_ms: AtomicI64,
}

impl Sink for Observer {
    fn apply(&self, key: &str, value: Option<&[u8]>, timestamp_ms: i64) {
        // Anything else on the topic is not an id: ignored.
        if let Some(id) = value.and_then(|value| std::str::from_utf8(value).ok()) {
            self.dedup.observe(key, id, timestamp_ms, unix_millis_now());
        }
    }

    fn maintain(&self) {
        let now = unix_millis_now();
        let last = self.last_prune_ms.load(Ordering::Relaxed);
        if now - last >= PRUNE_EVERY.as_millis() as i64 {
            self.last_prune_ms.store(now, Ordering::Relaxed);
            self.dedup.prune(now);
        }
    }
}
