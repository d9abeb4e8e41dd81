//! Deduplication by provider delivery id (a listener's `dedup`): a delivery whose id was
//! accepted within the window is answered with the success response and published nowhere.
//!
//! - **When an id counts as seen.** Only once Kafka acknowledged its records: the verify stage
//!   *claims* the id ([`Deduplicator::check`]) and the claim rides in the request's reply; the
//!   reply answering success confirms it, any other answer (503, 4xx, a lost request) releases
//!   it, so a delivery that failed is never taken for a duplicate of itself when the provider
//!   retries. While a claim is open the same id gets 409 with `Retry-After` (a provider retrying
//!   fast, or two copies in flight at once): never a 2xx for records not yet acknowledged.
//! - **Across the fleet.** A confirmed id is appended to the dedup topic (key: listener id,
//!   value: the delivery id, Kafka's timestamp: when it was accepted); every instance follows the
//!   topic ([`Deduplicator::observe`]) and reads it back at start. An id accepted by one instance
//!   is known to the others within the topic's round trip (milliseconds); two copies landing on
//!   two instances within that gap are both published (at least once, never lost).
//! - **Crash.** An instance killed between Kafka's acknowledgement of the records and the id's
//!   append loses that id: the provider's retry is published again. Duplicates are possible,
//!   loss is not.
//! - **Memory.** Per listener at most `max_ids` ids (default 1 M, at most 10 M): a 128-bit digest
//!   of the id and a 32-bit time, ~40 bytes each in the hash table (~40 MB per million). A full
//!   listener forgets its oldest tenth first (counted in `hookpipe_dedup_evicted_total`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use crate::config::dedup::{MAX_IDS, MAX_WINDOW_SECS};
use crate::telemetry::METRICS;

/// Shards of one listener's ids: requests of different ids rarely wait on each other.
const SHARDS: usize = 16;
/// The share of a full shard's oldest ids forgotten at once (amortizes the scan).
const EVICT_FRACTION: usize = 10;

/// Where confirmed ids go so that the rest of the fleet learns them (the dedup topic).
pub trait Feed: Send + Sync + 'static {
    /// Enqueues `listener`'s accepted `id`; `Err` when it cannot be enqueued now.
    fn publish(&self, listener: &str, id: &str) -> Result<(), String>;
}

/// The answer of [`Deduplicator::check`].
#[derive(Debug)]
pub enum Check {
    /// Not seen: the request goes on, holding the claim.
    First(Claim),
    /// Accepted within the window: answer success, publish nothing.
    Duplicate,
    /// The same id is being published right now.
    InFlight,
}

/// Every listener's remembered ids, shared by the HTTP threads of one instance.
#[derive(Default)]
pub struct Deduplicator {
    listeners: RwLock<HashMap<String, Arc<SeenIds>>>,
    feed: OnceLock<Arc<dyn Feed>>,
}

impl std::fmt::Debug for Deduplicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deduplicator").field("ids", &self.held()).finish()
    }
}

impl Deduplicator {
    /// An empty deduplicator without a feed (ids stay on this instance until one is set).
    pub fn new() -> Arc<Deduplicator> {
        Arc::default()
    }

    /// Sends confirmed ids to `feed` from now on (set once; later calls are ignored).
    pub fn set_feed(&self, feed: Arc<dyn Feed>) {
        let _ = self.feed.set(feed);
    }

    /// Looks `id` up for `listener`, whose window and cap are given, and claims it if new.
    pub fn check(self: &Arc<Self>, listener: &str, window_secs: u64, max_ids: usize, id: &str, now_ms: i64) -> Check {
        let seen = self.seen_ids(listener);
        seen.configure(window_secs, max_ids);
        let key = Key::of(id);
        let now = secs(now_ms);
        let mut shard = seen.shard(key);
        let window = seen.window_secs();
        match shard.map.get(&key) {
            Some(entry) if entry.state != State::Seen => return Check::InFlight,
            Some(entry) if now.saturating_sub(entry.seen_at) < window => return Check::Duplicate,
            _ => {}
        }
        let evicted = shard.make_room(seen.max_per_shard());
        // An id whose window ended is claimed again in its place.
        let replaced = shard.map.insert(
            key,
            Entry {
                seen_at: now,
                state: State::Claimed,
            },
        );
        drop(shard);
        seen.count(usize::from(replaced.is_none()), evicted);
        Check::First(Claim {
            dedup: self.clone(),
            seen,
            key,
            listener: listener.to_string(),
            id: id.to_string(),
        })
    }

    /// An id another instance (or this one, read back) accepted at `seen_at_ms`.
    pub fn observe(&self, listener: &str, id: &str, seen_at_ms: i64, now_ms: i64) {
        let seen = self.seen_ids(listener);
        let seen_at = secs(seen_at_ms);
        if secs(now_ms).saturating_sub(seen_at) >= seen.window_secs() {
            return;
        }
        let key = Key::of(id);
        let mut shard = seen.shard(key);
        let (added, evicted) = match shard.map.get_mut(&key) {
            Some(entry) if entry.state == State::Claimed => {
                // Accepted elsewhere while this instance publishes a copy: released or not,
                // the id stays seen.
                entry.state = State::ClaimedSeenElsewhere;
                (0, 0)
            }
            Some(entry) => {
                entry.seen_at = entry.seen_at.max(seen_at);
                (0, 0)
            }
            None => {
                let evicted = shard.make_room(seen.max_per_shard());
                shard.map.insert(
                    key,
                    Entry {
                        seen_at,
                        state: State::Seen,
                    },
                );
                (1, evicted)
            }
        };
        drop(shard);
        seen.count(added, evicted);
    }

    /// Forgets every id whose window has ended.
    pub fn prune(&self, now_ms: i64) {
        let now = secs(now_ms);
        let listeners: Vec<Arc<SeenIds>> = self.read().values().cloned().collect();
        for seen in listeners {
            let window = seen.window_secs();
            let mut removed = 0;
            for shard in &seen.shards {
                let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
                let before = shard.map.len();
                shard
                    .map
                    .retain(|_, entry| entry.state != State::Seen || now.saturating_sub(entry.seen_at) < window);
                removed += before - shard.map.len();
            }
            METRICS.dedup_ids.sub(removed as i64);
        }
    }

    /// Ids remembered, every listener.
    pub fn held(&self) -> usize {
        self.read()
            .values()
            .map(|seen| {
                seen.shards
                    .iter()
                    .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).map.len())
                    .sum::<usize>()
            })
            .sum()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<SeenIds>>> {
        self.listeners.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn seen_ids(&self, listener: &str) -> Arc<SeenIds> {
        if let Some(seen) = self.read().get(listener) {
            return seen.clone();
        }
        self.listeners
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(listener.to_string())
            .or_insert_with(|| Arc::new(SeenIds::new()))
            .clone()
    }
}

/// A claimed id: confirmed once the request's records are acknowledged, released when dropped
/// unconfirmed.
pub struct Claim {
    dedup: Arc<Deduplicator>,
    seen: Arc<SeenIds>,
    key: Key,
    listener: String,
    id: String,
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl Claim {
    /// The request was accepted: the id is seen from now on, here and (through the feed) on
    /// every instance.
    pub fn confirm(self, now_ms: i64) {
        {
            let mut shard = self.seen.shard(self.key);
            if let Some(entry) = shard.map.get_mut(&self.key) {
                entry.state = State::Seen;
                entry.seen_at = secs(now_ms);
            }
        }
        if let Some(feed) = self.dedup.feed.get() {
            if let Err(error) = feed.publish(&self.listener, &self.id) {
                METRICS.dedup_feed_dropped.inc();
                tracing::warn!(listener = %self.listener, %error,
                    "accepted delivery id not sent to the dedup topic: other instances will not know it");
            }
        }
        // Dropped seen, the claim has nothing left to release.
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut shard = self.seen.shard(self.key);
        let removed = match shard.map.get_mut(&self.key) {
            Some(entry) if entry.state == State::Claimed => {
                shard.map.remove(&self.key);
                true
            }
            Some(entry) if entry.state == State::ClaimedSeenElsewhere => {
                entry.state = State::Seen;
                false
            }
            _ => false,
        };
        drop(shard);
        if removed {
            METRICS.dedup_ids.dec();
        }
    }
}

/// One listener's ids.
struct SeenIds {
    shards: [Mutex<Shard>; SHARDS],
    window_secs: std::sync::atomic::AtomicU64,
    max_ids: std::sync::atomic::AtomicUsize,
}

impl SeenIds {
    /// Until its listener is checked, the set keeps what the dedup topic can hold.
    fn new() -> SeenIds {
        SeenIds {
            shards: std::array::from_fn(|_| Mutex::default()),
            window_secs: MAX_WINDOW_SECS.into(),
            max_ids: MAX_IDS.into(),
        }
    }

    fn configure(&self, window_secs: u64, max_ids: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.window_secs.store(window_secs.min(MAX_WINDOW_SECS), Relaxed);
        self.max_ids.store(max_ids.clamp(1, MAX_IDS), Relaxed);
    }

    fn window_secs(&self) -> u32 {
        self.window_secs.load(std::sync::atomic::Ordering::Relaxed) as u32
    }

    fn max_per_shard(&self) -> usize {
        self.max_ids.load(std::sync::atomic::Ordering::Relaxed).div_ceil(SHARDS)
    }

    fn shard(&self, key: Key) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[(key.0[1] as usize) % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, added: usize, evicted: usize) {
        METRICS.dedup_ids.add(added as i64 - evicted as i64);
        if evicted > 0 {
            METRICS.dedup_evicted.inc_by(evicted as u64);
        }
    }
}

#[derive(Default)]
struct Shard {
    map: HashMap<Key, Entry, BuildHasherDefault<KeyHasher>>,
}

impl Shard {
    /// When the shard holds `max` ids, forgets its oldest tenth of seen ids (claimed ones
    /// stay); returns how many it forgot.
    fn make_room(&mut self, max: usize) -> usize {
        if self.map.len() < max {
            return 0;
        }
        let mut times: Vec<u32> = self
            .map
            .values()
            .filter(|entry| entry.state == State::Seen)
            .map(|entry| entry.seen_at)
            .collect();
        if times.is_empty() {
            return 0;
        }
        let cut = (times.len() / EVICT_FRACTION).min(times.len() - 1);
        let (_, threshold, _) = times.select_nth_unstable(cut);
        let threshold = *threshold;
        let before = self.map.len();
        self.map
            .retain(|_, entry| entry.state != State::Seen || entry.seen_at > threshold);
        before - self.map.len()
    }
}

/// An id's place: the first 128 bits of its SHA-256 (no collision among 10¹⁰ ids, with
/// overwhelming probability; ids come from verified requests only).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key([u64; 2]);

impl Key {
    fn of(id: &str) -> Key {
        let digest = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
        let bytes = digest.as_ref();
        let word = |range: std::ops::Range<usize>| u64::from_le_bytes(bytes[range].try_into().expect("8 bytes"));
        Key([word(0..8), word(8..16)])
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already uniformly random: the first word is the hash.
        state.write_u64(self.0[0]);
    }
}

/// Passes a [`Key`]'s first word through as its hash.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Being published by a request on this instance.
    Claimed,
    /// Being published here, and accepted by another instance meanwhile.
    ClaimedSeenElsewhere,
    /// Accepted.
    Seen,
}

#[derive(Clone, Copy)]
struct Entry {
    /// Seconds since the Unix epoch (u32 lasts until 2106).
    seen_at: u32,
    state: State,
}

fn secs(unix_ms: i64) -> u32 {
    (unix_ms.max(0) / 1000).min(i64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;

    fn first(check: Check) -> Claim {
        match check {
            Check::First(claim) => claim,
            other => panic!("expected a first delivery, got {other:?}"),
        }
    }

    #[derive(Default)]
    struct RecordingFeed(Mutex<Vec<(String, String)>>);

    impl Feed for RecordingFeed {
        fn publish(&self, listener: &str, id: &str) -> Result<(), String> {
            self.0.lock().unwrap().push((listener.into(), id.into()));
            Ok(())
        }
    }

    #[test]
    fn a_confirmed_id_is_a_duplicate_within_its_window_and_new_after() {
        let dedup = Deduplicator::new();
        let feed = Arc::new(RecordingFeed::default());
        dedup.set_feed(feed.clone());
        first(dedup.check("l", 60, 100, "evt_1", T0)).confirm(T0);
        assert!(matches!(
            dedup.check("l", 60, 100, "evt_1", T0 + 59_000),
            Check::Duplicate
        ));
        // Another listener, another id: not duplicates.
        first(dedup.check("other", 60, 100, "evt_1", T0));
        first(dedup.check("l", 60, 100, "evt_2", T0));
        assert!(matches!(
            dedup.check("l", 60, 100, "evt_1", T0 + 60_000),
            Check::First(_)
        ));
        assert_eq!(*feed.0.lock().unwrap(), vec![("l".to_string(), "evt_1".to_string())]);
    }

    #[test]
    fn a_released_claim_leaves_nothing_and_an_open_one_is_in_flight() {
        let dedup = Deduplicator::new();
        let claim = first(dedup.check("l", 60, 100, "evt_1", T0));
        assert!(matches!(dedup.check("l", 60, 100, "evt_1", T0), Check::InFlight));
        drop(claim); // the request failed (503): its retry must be published
        let claim = first(dedup.check("l", 60, 100, "evt_1", T0 + 1000));
        claim.confirm(T0 + 1000);
        assert!(matches!(
            dedup.check("l", 60, 100, "evt_1", T0 + 2000),
            Check::Duplicate
        ));
    }

    #[test]
    fn ids_seen_elsewhere_are_duplicates_here_and_survive_a_local_release() {
        let dedup = Deduplicator::new();
        dedup.observe("l", "evt_a", T0, T0 + 10);
        assert!(matches!(
            dedup.check("l", 60, 100, "evt_a", T0 + 1000),
            Check::Duplicate
        ));
        // Too old for the window when it arrives: ignored.
        dedup.observe("l", "evt_old", T0 - 61_000, T0);
        first(dedup.check("l", 60, 100, "evt_old", T0));
        // Accepted elsewhere while a copy is published here, whose publish then fails.
        let claim = first(dedup.check("l", 60, 100, "evt_b", T0));
        dedup.observe("l", "evt_b", T0, T0);
        drop(claim);
        assert!(matches!(
            dedup.check("l", 60, 100, "evt_b", T0 + 1000),
            Check::Duplicate
        ));
    }

    #[test]
    fn a_full_listener_forgets_its_oldest_ids_first_and_keeps_claims() {
        let dedup = Deduplicator::new();
        let max = 16 * 50;
        let claim = first(dedup.check("l", 3600, max, "claimed", T0));
        for i in 0..(max * 3) {
            first(dedup.check("l", 3600, max, &format!("id-{i}"), T0 + i as i64 * 1000)).confirm(T0 + i as i64 * 1000);
        }
        let held = dedup.held();
        assert!(held <= max + SHARDS, "{held} ids held with max_ids {max}");
        // The newest are remembered, the oldest forgotten, the open claim kept.
        let newest = format!("id-{}", max * 3 - 1);
        assert!(matches!(
            dedup.check("l", 3600, max, &newest, T0 + (max * 3) as i64 * 1000),
            Check::Duplicate
        ));
        assert!(matches!(
            dedup.check("l", 3600, max, "id-0", T0 + (max * 3) as i64 * 1000),
            Check::First(_)
        ));
        assert!(matches!(dedup.check("l", 3600, max, "claimed", T0), Check::InFlight));
        drop(claim);
    }

    #[test]
    fn pruning_forgets_ids_whose_window_ended() {
        let dedup = Deduplicator::new();
        first(dedup.check("l", 10, 100, "a", T0)).confirm(T0);
        first(dedup.check("l", 10, 100, "b", T0 + 8000)).confirm(T0 + 8000);
        dedup.prune(T0 + 11_000);
        assert_eq!(dedup.held(), 1);
        // An id claimed again after its window takes its old place; a released claim leaves.
        first(dedup.check("l", 10, 100, "b", T0 + 30_000)).confirm(T0 + 30_000);
        drop(first(dedup.check("l", 10, 100, "c", T0 + 30_000)));
        // nextest runs each test in its own process: the gauge is this test's alone.
        assert_eq!((dedup.held(), METRICS.dedup_ids.get()), (1, 1));
    }
}
