//! Waiting for imports (`response.wait = "import"`): the requests this instance holds until the
//! import worker has imported or failed each of their records, and the results that answer them.
//!
//! A request is registered ([`Waiters::register`]) before anything of it is published, so a
//! result however fast finds it; over `server.max_import_waits` it is refused (503) instead,
//! before anything is published. Once Kafka acknowledged its records it waits
//! ([`Registered::finish`]) for one result per record that went to the pages (schema-quarantined
//! ones never do), read from the results topic by [`feed`], up to the listener's timeout.
//!
//! Memory is bounded: at most `max_import_waits` requests; a result for a request not waiting
//! here is dropped before its value is read; a request keeps a result in full only for its first
//! [`MAX_DETAILED`] records and first [`MAX_DETAILED`] failures (counts cover all), and
//! remembers at most as many record indexes as it has records (before its count is known, at
//! most [`MAX_EARLY_RESULTS`]).

pub mod feed;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::config::import_wait::says_invalid;
use crate::telemetry::events::{ImportResultConsumed, ImportWaitsInFlight};
use crate::wire::results::{record_index, RecordResult, ResultsMessage};

/// Records of a request whose results (and failures) are kept in full for its answer's templates.
pub use crate::wire::results::MAX_DETAILED;
/// Record indexes a request remembers before it knows how many records it has (results that
/// arrive before Kafka's acknowledgement reached the receiver: a short window).
pub const MAX_EARLY_RESULTS: usize = 100_000;

/// The requests waiting here, by request id.
pub struct Waiters {
    max: usize,
    waiting: Mutex<HashMap<Arc<str>, Arc<Wait>>>,
    /// Set once the results topic is read from its end: before, nothing can answer a wait.
    feed_open: AtomicBool,
    /// Opens the results topic's feed; called on the first registration (or at start).
    opener: OnceLock<Box<dyn Fn() + Send + Sync>>,
    open_requested: AtomicBool,
    /// The feed, held as long as the waiters are.
    feed: OnceLock<feed::ResultsFeed>,
    /// Set when the instance stopped accepting (the drain): waits end now, with 202.
    stopped: AtomicBool,
}

/// `server.max_import_waits` requests are waiting already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// One request's wait.
struct Wait {
    collected: Mutex<Collected>,
    done: Notify,
}

/// What a request collected so far.
#[derive(Debug, Default)]
struct Collected {
    /// Records that went to the pages (set once Kafka acknowledged them).
    expected: Option<usize>,
    /// Records of the request, quarantined ones included (set with `expected`): record ids
    /// keep their place in the request, so a paged record's index may reach past `expected`.
    records: Option<usize>,
    /// Record indexes with a result: one bit each (a request of a million records holds
    /// 128 KiB here once all are in, not the ~30 MiB of a map).
    seen: Bits,
    /// Of those, the ones imported.
    imported_bits: Bits,
    /// Bits set in `seen`.
    seen_count: usize,
    imported: usize,
    failed: usize,
    /// Every failure so far was the target calling the record invalid.
    all_failures_invalid: bool,
    results: BTreeMap<usize, RecordResult>,
    failures: BTreeMap<usize, RecordResult>,
}

/// A set of record indexes, one bit each.
#[derive(Debug, Default)]
struct Bits(Vec<u64>);

impl Bits {
    fn contains(&self, index: usize) -> bool {
        self.0
            .get(index / 64)
            .is_some_and(|word| word & (1 << (index % 64)) != 0)
    }

    fn insert(&mut self, index: usize) {
        if self.0.len() <= index / 64 {
            self.0.resize(index / 64 + 1, 0);
        }
        self.0[index / 64] |= 1 << (index % 64);
    }

    /// Removes the indexes from `from` on; how many there were.
    fn truncate(&mut self, from: usize) -> usize {
        let mut removed = 0;
        for (word_index, word) in self.0.iter_mut().enumerate().skip(from / 64) {
            let keep = if word_index == from / 64 {
                (1u64 << (from % 64)) - 1
            } else {
                0
            };
            removed += (*word & !keep).count_ones() as usize;
            *word &= keep;
        }
        self.0.truncate(from.div_ceil(64));
        removed
    }
}

impl Collected {
    fn complete(&self) -> bool {
        self.expected.is_some_and(|expected| self.seen_count >= expected)
    }

    /// Adds the result of the record at `index`; a second result for it (the worker imported its
    /// page again after a crash) and indexes out of range are ignored.
    fn add(&mut self, index: usize, result: RecordResult) {
        let bound = self.records.unwrap_or(MAX_EARLY_RESULTS);
        if index >= bound || self.complete() || self.seen.contains(index) {
            return;
        }
        self.seen.insert(index);
        self.seen_count += 1;
        if result.imported {
            self.imported_bits.insert(index);
            self.imported += 1;
        } else {
            self.all_failures_invalid = (self.failed == 0 || self.all_failures_invalid) && says_invalid(result.status);
            self.failed += 1;
            if self.failures.len() < MAX_DETAILED {
                self.failures.insert(index, result.clone());
            }
        }
        if index < MAX_DETAILED {
            self.results.insert(index, result);
        }
    }

    /// Forgets what is beyond the request's `records`, now that they are known, of which
    /// `expected` went to the pages.
    fn expect(&mut self, expected: usize, records: usize) {
        self.expected = Some(expected);
        self.records = Some(records);
        let removed = self.seen.truncate(records);
        let removed_imported = self.imported_bits.truncate(records);
        self.seen_count -= removed;
        self.imported -= removed_imported;
        self.failed -= removed - removed_imported;
        self.results.split_off(&records);
        self.failures.split_off(&records);
    }

    fn report(&self, quarantined: usize) -> Report {
        Report {
            imported: self.imported,
            failed: self.failed,
            quarantined,
            all_failures_invalid: self.failed == 0 || self.all_failures_invalid,
            results: self
                .results
                .iter()
                .map(|(index, result)| (*index, result.clone()))
                .collect(),
            failures: self
                .failures
                .iter()
                .map(|(index, result)| (*index, result.clone()))
                .collect(),
        }
    }
}

/// What became of a request's records.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Records imported.
    pub imported: usize,
    /// Records failed (recorded as import errors).
    pub failed: usize,
    /// Records that failed the listener's schema (quarantined, never imported).
    pub quarantined: usize,
    /// Every failure was the target calling the record invalid (a 4xx other than 408/429).
    pub all_failures_invalid: bool,
    /// The results of the first [`MAX_DETAILED`] records, by index.
    pub results: Vec<(usize, RecordResult)>,
    /// The first [`MAX_DETAILED`] failures, by index.
    pub failures: Vec<(usize, RecordResult)>,
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitOutcome {
    /// Every record imported.
    Imported(Report),
    /// Every record settled, some failed (or were quarantined).
    Failed(Report),
    /// The timeout passed first.
    TimedOut,
    /// The results topic is not read (yet): nothing can say the records were imported.
    NoResults,
}

impl WaitOutcome {
    /// The label of `hookpipe_import_waits_total`.
    pub fn label(&self) -> &'static str {
        match self {
            WaitOutcome::Imported(_) => "imported",
            WaitOutcome::Failed(_) => "failed",
            WaitOutcome::TimedOut => "timed_out",
            WaitOutcome::NoResults => "no_results",
        }
    }
}

impl Waiters {
    /// Room for `max` requests waiting at once.
    pub fn new(max: usize) -> Arc<Waiters> {
        Arc::new(Waiters {
            max,
            waiting: Mutex::new(HashMap::new()),
            feed_open: AtomicBool::new(false),
            opener: OnceLock::new(),
            open_requested: AtomicBool::new(false),
            feed: OnceLock::new(),
            stopped: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Arc<Wait>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What opens the results feed, once: on the first registration, or [`Waiters::open_feed`].
    pub fn set_opener(&self, opener: Box<dyn Fn() + Send + Sync>) {
        let _ = self.opener.set(opener);
    }

    /// Opens the results feed now, unless it was asked for already.
    pub fn open_feed(&self) {
        if !self.open_requested.swap(true, Ordering::AcqRel) {
            if let Some(opener) = self.opener.get() {
                opener();
            }
        }
    }

    /// The results topic is read from here on.
    pub(crate) fn feed_opened(&self, feed: feed::ResultsFeed) {
        let _ = self.feed.set(feed);
        self.feed_open.store(true, Ordering::Release);
    }

    /// Marks the feed open without one (tests: results are delivered by hand).
    #[cfg(test)]
    fn assume_feed_open(&self) {
        self.feed_open.store(true, Ordering::Release);
    }

    /// Ends every wait now and any later one at once, each answered as timed out (202): the
    /// instance is stopping, and its requests' records are durable.
    pub fn stop_waiting(&self) {
        self.stopped.store(true, Ordering::Release);
        for wait in self.lock().values() {
            wait.done.notify_one();
        }
    }

    /// Requests waiting now.
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }

    /// Registers a request before anything of it is published; [`Full`] when `max` are waiting.
    pub fn register(self: &Arc<Self>, request_id: Arc<str>) -> Result<Registered, Full> {
        self.open_feed();
        let wait = Arc::new(Wait {
            collected: Mutex::new(Collected::default()),
            done: Notify::new(),
        });
        let in_flight = {
            let mut waiting = self.lock();
            if waiting.len() >= self.max {
                return Err(Full);
            }
            waiting.insert(request_id.clone(), wait.clone());
            waiting.len()
        };
        ImportWaitsInFlight { in_flight }.emit();
        Ok(Registered {
            // Read after the request is in the map: a feed open now reads from an end found
            // before anything of the request was published, so no result of it can be missed.
            feed_was_open: self.feed_open.load(Ordering::Acquire),
            waiters: self.clone(),
            request_id,
            wait,
        })
    }

    /// A message of the results topic (`key`: its request id): applied to the request waiting
    /// here, or dropped unread when there is none.
    pub fn deliver(&self, key: &str, value: Option<&[u8]>) {
        let Some(wait) = self.lock().get(key).cloned() else {
            return ImportResultConsumed { outcome: "unknown" }.emit();
        };
        let message = match value.map(ResultsMessage::read) {
            Some(Ok(message)) if message.request_id == key => message,
            _ => return ImportResultConsumed { outcome: "malformed" }.emit(),
        };
        ImportResultConsumed { outcome: "matched" }.emit();
        let complete = {
            let mut collected = wait.collected.lock().unwrap_or_else(PoisonError::into_inner);
            for result in message.records {
                if let Some(index) = record_index(key, &result.id) {
                    collected.add(index, result);
                }
            }
            collected.complete()
        };
        if complete {
            wait.done.notify_one();
        }
    }
}

/// A registered request: unregistered when dropped, however its answer ends.
pub struct Registered {
    /// The results feed was open when the request registered. A feed opened later starts at
    /// an end that may already be past the request's results: waiting could only time out.
    feed_was_open: bool,
    waiters: Arc<Waiters>,
    request_id: Arc<str>,
    wait: Arc<Wait>,
}

impl Registered {
    /// Waits, once Kafka acknowledged the request's records, for the results of the `expected`
    /// records that went to the pages, up to `timeout` (`quarantined` more never will).
    pub async fn finish(self, expected: usize, quarantined: usize, timeout: Duration) -> WaitOutcome {
        if !self.feed_was_open {
            return WaitOutcome::NoResults;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let report = {
                let mut collected = self.wait.collected.lock().unwrap_or_else(PoisonError::into_inner);
                if collected.expected.is_none() {
                    collected.expect(expected, expected + quarantined);
                }
                collected.complete().then(|| collected.report(quarantined))
            };
            match report {
                Some(report) if report.failed == 0 && report.quarantined == 0 => return WaitOutcome::Imported(report),
                Some(report) => return WaitOutcome::Failed(report),
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if self.waiters.stopped.load(Ordering::Acquire)
                || left.is_zero()
                || tokio::time::timeout(left, self.wait.done.notified()).await.is_err()
            {
                return WaitOutcome::TimedOut;
            }
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let in_flight = {
            let mut waiting = self.waiters.lock();
            waiting.remove(&self.request_id);
            waiting.len()
        };
        ImportWaitsInFlight { in_flight }.emit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::results::ResultsMessage;
    use serde_json::json;

    fn imported(id: &str, target: serde_json::Value) -> RecordResult {
        RecordResult {
            id: id.into(),
            imported: true,
            status: None,
            error: None,
            target: Some(target),
        }
    }

    fn failed(id: &str, status: Option<u16>) -> RecordResult {
        RecordResult {
            id: id.into(),
            imported: false,
            status,
            error: Some(format!("HTTP {status:?}: no")),
            target: None,
        }
    }

    fn message(request_id: &str, records: Vec<RecordResult>) -> Vec<u8> {
        ResultsMessage::new("orders", request_id, "p", records).to_bytes()
    }

    fn waiters(max: usize) -> Arc<Waiters> {
        let waiters = Waiters::new(max);
        waiters.assume_feed_open();
        waiters
    }

    #[actix::test]
    async fn a_request_is_answered_once_every_record_has_its_result() {
        let waiters = waiters(4);
        let wait = waiters.register("q".into()).unwrap();
        // A fast result, before the receiver heard Kafka's acknowledgement, is kept.
        waiters.deliver("q", Some(&message("q", vec![imported("q-1", json!({"id": 2}))])));
        let finishing = tokio::spawn(wait.finish(3, 0, Duration::from_secs(30)));
        waiters.deliver(
            "q",
            Some(&message(
                "q",
                vec![imported("q-0", json!({"id": 1})), imported("q-1", json!({"id": 2}))],
            )),
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !finishing.is_finished(),
            "one record has no result yet (q-1 came twice)"
        );
        waiters.deliver("q", Some(&message("q", vec![imported("q-2", json!({"id": 3}))])));
        let WaitOutcome::Imported(report) = finishing.await.unwrap() else {
            panic!("imported")
        };
        assert_eq!((report.imported, report.failed), (3, 0));
        let ids: Vec<(usize, &serde_json::Value)> = report
            .results
            .iter()
            .map(|(index, result)| (*index, result.target.as_ref().unwrap()))
            .collect();
        assert_eq!(
            ids,
            [(0, &json!({"id": 1})), (1, &json!({"id": 2})), (2, &json!({"id": 3}))]
        );
        assert_eq!(waiters.in_flight(), 0, "unregistered once answered");
    }

    #[actix::test]
    async fn failures_are_reported_and_only_invalid_records_say_so() {
        let waiters = waiters(4);
        let wait = waiters.register("a".into()).unwrap();
        waiters.deliver(
            "a",
            Some(&message("a", vec![imported("a-0", json!(1)), failed("a-1", Some(422))])),
        );
        let WaitOutcome::Failed(report) = wait.finish(2, 0, Duration::from_secs(5)).await else {
            panic!("failed")
        };
        assert_eq!(
            (report.imported, report.failed, report.all_failures_invalid),
            (1, 1, true)
        );
        assert_eq!(report.failures[0].0, 1);
        let wait = waiters.register("b".into()).unwrap();
        waiters.deliver(
            "b",
            Some(&message("b", vec![failed("b-0", Some(422)), failed("b-1", Some(503))])),
        );
        let WaitOutcome::Failed(report) = wait.finish(2, 0, Duration::from_secs(5)).await else {
            panic!("failed")
        };
        assert!(!report.all_failures_invalid, "a 503 is not the data's fault");
        // Quarantined records are failures too, whatever the worker says of the others.
        let wait = waiters.register("c".into()).unwrap();
        waiters.deliver("c", Some(&message("c", vec![imported("c-0", json!(1))])));
        assert!(matches!(
            wait.finish(1, 1, Duration::from_secs(5)).await,
            WaitOutcome::Failed(Report { quarantined: 1, .. })
        ));
    }

    #[actix::test]
    async fn records_paged_after_a_quarantined_one_keep_their_place() {
        // Records 0 and 2 failed the schema: 1 and 3 were paged, with those ids.
        let waiters = waiters(2);
        let wait = waiters.register("q".into()).unwrap();
        waiters.deliver("q", Some(&message("q", vec![imported("q-3", json!(3))])));
        let finishing = tokio::spawn(wait.finish(2, 2, Duration::from_millis(500)));
        tokio::time::sleep(Duration::from_millis(20)).await;
        waiters.deliver("q", Some(&message("q", vec![imported("q-1", json!(1))])));
        let WaitOutcome::Failed(report) = finishing.await.unwrap() else {
            panic!("settled: both paged records imported, two quarantined")
        };
        assert_eq!((report.imported, report.failed, report.quarantined), (2, 0, 2));
        let indexes: Vec<usize> = report.results.iter().map(|(index, _)| *index).collect();
        assert_eq!(indexes, [1, 3]);
        // And one with every record valid still ignores an index beyond the request.
        let wait = waiters.register("r".into()).unwrap();
        waiters.deliver("r", Some(&message("r", vec![imported("r-1", json!(1))])));
        assert_eq!(
            wait.finish(1, 0, Duration::from_millis(100)).await,
            WaitOutcome::TimedOut
        );
    }

    #[actix::test]
    async fn the_cap_refuses_and_a_finished_wait_gives_its_room_back() {
        let waiters = waiters(2);
        let first = waiters.register("1".into()).unwrap();
        let _second = waiters.register("2".into()).unwrap();
        assert_eq!(waiters.register("3".into()).err(), Some(Full));
        drop(first);
        assert!(waiters.register("3".into()).is_ok());
    }

    #[actix::test]
    async fn a_wait_times_out_and_unknown_or_foreign_results_are_dropped() {
        let waiters = waiters(2);
        let wait = waiters.register("q".into()).unwrap();
        waiters.deliver("other", Some(&message("other", vec![imported("other-0", json!(1))])));
        // Another request's record id, an index beyond the request, junk: none counts.
        waiters.deliver(
            "q",
            Some(&message(
                "q",
                vec![imported("other-0", json!(1)), imported("q-9", json!(1))],
            )),
        );
        waiters.deliver("q", Some(b"junk"));
        waiters.deliver("q", Some(&message("not-q", vec![imported("q-0", json!(1))])));
        let started = Instant::now();
        assert_eq!(
            wait.finish(1, 0, Duration::from_millis(100)).await,
            WaitOutcome::TimedOut
        );
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(waiters.in_flight(), 0);
        waiters.deliver("q", Some(&message("q", vec![imported("q-0", json!(1))])));
        assert_eq!(
            waiters.in_flight(),
            0,
            "a result after the answer finds nobody, and is dropped"
        );
    }

    #[actix::test]
    async fn a_stopping_instance_ends_its_waits_with_202() {
        let waiters = waiters(2);
        let wait = waiters.register("q".into()).unwrap();
        let finishing = tokio::spawn(wait.finish(1, 0, Duration::from_secs(60)));
        tokio::time::sleep(Duration::from_millis(20)).await;
        waiters.stop_waiting();
        let outcome = tokio::time::timeout(Duration::from_secs(5), finishing).await;
        assert_eq!(outcome.unwrap().unwrap(), WaitOutcome::TimedOut);
        let later = waiters.register("r".into()).unwrap();
        assert_eq!(later.finish(1, 0, Duration::from_secs(60)).await, WaitOutcome::TimedOut);
    }

    #[actix::test]
    async fn without_the_results_feed_nothing_waits() {
        let waiters = Waiters::new(2);
        let wait = waiters.register("q".into()).unwrap();
        assert_eq!(wait.finish(1, 0, Duration::from_secs(30)).await, WaitOutcome::NoResults);
        // Nor one registered before the feed opened: the feed's end may be past its results,
        // so it is answered 202 at once instead of at its timeout.
        let early = waiters.register("r".into()).unwrap();
        waiters.assume_feed_open();
        let started = Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(5), early.finish(1, 0, Duration::from_secs(30))).await;
        assert_eq!(outcome, Ok(WaitOutcome::NoResults), "after {:?}", started.elapsed());
        let later = waiters.register("s".into()).unwrap();
        assert_eq!(
            later.finish(1, 0, Duration::from_millis(50)).await,
            WaitOutcome::TimedOut
        );
    }

    #[actix::test]
    async fn a_big_request_keeps_only_its_first_results_in_full() {
        let waiters = waiters(1);
        let wait = waiters.register("q".into()).unwrap();
        let records = 1000;
        let results: Vec<RecordResult> = (0..records)
            .map(|index| {
                if index % 2 == 0 {
                    imported(&format!("q-{index}"), json!(index))
                } else {
                    failed(&format!("q-{index}"), Some(400))
                }
            })
            .collect();
        waiters.deliver("q", Some(&message("q", results)));
        let WaitOutcome::Failed(report) = wait.finish(records, 0, Duration::from_secs(5)).await else {
            panic!("failed")
        };
        assert_eq!((report.imported, report.failed), (500, 500));
        assert_eq!(report.results.len(), MAX_DETAILED);
        assert_eq!(report.failures.len(), MAX_DETAILED);
        assert_eq!(report.failures.last().unwrap().0, 2 * MAX_DETAILED - 1);
    }

    #[test]
    fn bits_hold_indexes_and_cut_from_any_place() {
        let mut bits = Bits::default();
        for index in [0, 5, 63, 64, 130, 200] {
            bits.insert(index);
        }
        assert!(bits.contains(63) && bits.contains(64) && !bits.contains(62) && !bits.contains(100_000));
        assert_eq!(bits.truncate(64), 3);
        assert!(bits.contains(63) && !bits.contains(64) && !bits.contains(130));
        assert_eq!(bits.truncate(0), 3);
        assert!(!bits.contains(0));
        assert_eq!(bits.0.len(), 0);
    }

    #[test]
    fn record_indexes_come_from_the_record_ids() {
        assert_eq!(record_index("q1", "q1-0"), Some(0));
        assert_eq!(record_index("q1", "q1-12"), Some(12));
        assert_eq!(record_index("q1", "q12-0"), None);
        assert_eq!(record_index("q1", "q1-x"), None);
        assert_eq!(record_index("q1", "q1"), None);
    }
}
