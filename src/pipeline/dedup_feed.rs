//! The dedup topic (`kafka.dedup_topic`): the delivery ids the fleet accepted, so that every
//! instance deduplicates what any of them accepted (`pipeline::dedup`). Key: the listener id;
//! value: the delivery id; Kafka's timestamp: when it was accepted. Kept `MAX_WINDOW_SECS` (the
//! longest window), read from the beginning at start and followed after, as the state topic is.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::config::dedup::MAX_WINDOW_SECS;
use crate::config::kafka::KafkaSettings;
use crate::kafka::state::{Follower, Sink};
use crate::kafka::topics::Cleanup;
use crate::pipeline::dedup::{Deduplicator, Feed};
use crate::pipeline::unix_millis_now;

/// How often ids whose window ended are dropped from memory (a scan of every id).
const PRUNE_EVERY: Duration = Duration::from_secs(30);
/// How long to wait before trying to open a missing or unreadable dedup topic again.
const OPEN_RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// Opens the dedup topic for `dedup` in the background, retrying until it is readable: an
/// instance serves (and deduplicates what it accepts itself) without it meanwhile. Must run on
/// the actix runtime. The feed lives as long as `dedup`.
pub fn spawn_open(dedup: Arc<Deduplicator>, kafka: KafkaSettings, bootstrap: String) {
    let dedup = Arc::downgrade(&dedup);
    actix_web::rt::spawn(async move {
        let mut warned = false;
        loop {
            let Some(alive) = dedup.upgrade() else { return };
            match DedupFeed::open(&kafka, &bootstrap, alive, false).await {
                Ok(_) => {
                    if warned {
                        tracing::info!(topic = %kafka.dedup_topic, "dedup topic open: deduplicating across the fleet");
                    }
                    return;
                }
                Err(error) => {
                    if !warned {
                        tracing::warn!(topic = %kafka.dedup_topic, %error,
                            "cannot open the dedup topic; deduplicating this instance's deliveries only, retrying");
                        warned = true;
                    }
                    actix_web::rt::time::sleep(OPEN_RETRY_INTERVAL).await;
                }
            }
        }
    });
}

/// The dedup topic: its follower feeds `Deduplicator::observe`, and it is the deduplicator's feed.
pub struct DedupFeed {
    follower: Follower,
}

impl DedupFeed {
    /// Reads the topic into `dedup` (up to the high watermarks at open), keeps following it, and
    /// makes it `dedup`'s feed: `dedup` holds it, and it holds `dedup` only weakly, so both go
    /// (and the follower thread stops) with the last user of `dedup`.
    pub async fn open(
        settings: &KafkaSettings,
        bootstrap: &str,
        dedup: Arc<Deduplicator>,
        create: bool,
    ) -> Result<Arc<DedupFeed>, String> {
        let sink = Arc::new(Observer {
            dedup: Arc::downgrade(&dedup),
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
    dedup: Weak<Deduplicator>,
    last_prune_ms: AtomicI64,
}

impl Sink for Observer {
    fn apply(&self, key: &str, value: Option<&[u8]>, timestamp_ms: i64) {
        // Anything else on the topic is not an id: ignored.
        let (Some(dedup), Some(id)) = (
            self.dedup.upgrade(),
            value.and_then(|value| std::str::from_utf8(value).ok()),
        ) else {
            return;
        };
        dedup.observe(key, id, timestamp_ms, unix_millis_now());
    }

    fn maintain(&self) {
        let now = unix_millis_now();
        let last = self.last_prune_ms.load(Ordering::Relaxed);
        if now - last >= PRUNE_EVERY.as_millis() as i64 {
            self.last_prune_ms.store(now, Ordering::Relaxed);
            if let Some(dedup) = self.dedup.upgrade() {
                dedup.prune(now);
            }
        }
    }
}
