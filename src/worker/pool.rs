//! The threads that import runs of ordered pages (`worker::ordered`): `worker.key_concurrency`
//! of them, each importing one run (the records of one key in one page) at a time with the
//! import loop of `worker::import`, so one key retried with backoff occupies one thread and the
//! others go on. Also what the poll thread and the rebalance callback share about partitions:
//! the epoch each one is held under, and how many of its runs are out.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::worker::import::{Abandoned, Pacer, RecordOutcome};
use crate::worker::ordered::{PartitionId, Run};
use crate::worker::page::IncomingPage;

/// Imports the records of a page (a run's records, as a page of their own); the second
/// argument says when the run must be given up (its partition was revoked), for its pacer
/// ([`Cancellable`]).
pub type Import = Arc<ImportFn>;

/// What [`Import`] points to.
pub type ImportFn = dyn Fn(&IncomingPage, &dyn Fn() -> bool) -> Result<Vec<RecordOutcome>, Abandoned> + Send + Sync;

/// How often a wait of a run checks whether its partition was revoked.
const CANCEL_CHECK: Duration = Duration::from_millis(50);

/// A pacer whose waits also end when `cancelled` says so: a run of a revoked partition stops
/// at its next wait, so a revocation does not wait out a key's backoff.
pub struct Cancellable<'a> {
    /// The pacer underneath (real time, cut short by the shutdown).
    pub inner: &'a dyn Pacer,
    /// Whether the run must be given up.
    pub cancelled: &'a dyn Fn() -> bool,
}

impl Pacer for Cancellable<'_> {
    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> bool {
        let end = self.inner.now() + duration;
        loop {
            if (self.cancelled)() {
                return false;
            }
            let left = end.saturating_duration_since(self.inner.now());
            if left.is_zero() {
                return true;
            }
            if !self.inner.sleep(left.min(CANCEL_CHECK)) {
                return false;
            }
        }
    }

    fn jitter(&self) -> f64 {
        self.inner.jitter()
    }

    fn must_abandon(&self) -> bool {
        (self.cancelled)() || self.inner.must_abandon()
    }
}

/// A run and what became of it (`Err(())`: given up, or skipped because its partition was revoked).
pub type Finished = (Run, Result<Vec<RecordOutcome>, ()>);

/// Partitions as the poll thread, the pool and the rebalance callback see them.
#[derive(Debug, Default)]
pub struct Partitions {
    state: Mutex<PartitionsState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct PartitionsState {
    /// The epoch each held partition is held under; absent once revoked.
    epochs: HashMap<PartitionId, u64>,
    /// Runs of each partition being imported.
    out: HashMap<PartitionId, usize>,
    next_epoch: u64,
    /// The worker is stopping: no run starts any more.
    closed: bool,
}

impl Partitions {
    fn lock(&self) -> std::sync::MutexGuard<'_, PartitionsState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The epoch `partition` is held under: a new one if it is not held (first page, or
    /// assigned again after a revocation).
    pub fn epoch(&self, partition: &PartitionId) -> u64 {
        let mut state = self.lock();
        if let Some(epoch) = state.epochs.get(partition) {
            return *epoch;
        }
        state.next_epoch += 1;
        let epoch = state.next_epoch;
        state.epochs.insert(partition.clone(), epoch);
        epoch
    }

    /// Whether `partition` is still held under `epoch`.
    pub fn is_current(&self, partition: &PartitionId, epoch: u64) -> bool {
        self.lock().epochs.get(partition) == Some(&epoch)
    }

    /// The partitions are revoked: runs not started are skipped; waits until those being
    /// imported are over (or `timeout`), so that the next owner of a partition, which starts
    /// again from its last committed offset, imports nothing while this worker still does.
    pub fn revoke(&self, partitions: &[PartitionId], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        for partition in partitions {
            state.epochs.remove(partition);
        }
        loop {
            let out: usize = partitions.iter().map(|p| state.out.get(p).copied().unwrap_or(0)).sum();
            let left = deadline.saturating_duration_since(Instant::now());
            if out == 0 || left.is_zero() {
                if out > 0 {
                    tracing::warn!(runs = out, "partitions revoked while runs are still being imported");
                }
                return;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// No run starts from now on (shutdown).
    pub fn close(&self) {
        self.lock().closed = true;
    }

    fn start(&self, run: &Run) -> bool {
        let mut state = self.lock();
        if state.closed || state.epochs.get(&run.partition) != Some(&run.epoch) {
            return false;
        }
        *state.out.entry(run.partition.clone()).or_default() += 1;
        true
    }

    fn end(&self, run: &Run) {
        let mut state = self.lock();
        if let Some(out) = state.out.get_mut(&run.partition) {
            *out = out.saturating_sub(1);
            if *out == 0 {
                state.out.remove(&run.partition);
            }
        }
        drop(state);
        self.changed.notify_all();
    }
}

/// The import threads.
pub struct Pool {
    jobs: Option<SyncSender<Run>>,
    results: Receiver<Finished>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts `size` threads importing with `import`; at most `capacity` runs wait for one.
    pub fn start(size: usize, capacity: usize, import: Import, partitions: Arc<Partitions>) -> Result<Pool, String> {
        let (jobs, queue) = mpsc::sync_channel::<Run>(capacity.max(1));
        let queue = Arc::new(Mutex::new(queue));
        let (done, results) = mpsc::channel::<Finished>();
        let mut threads = Vec::with_capacity(size);
        for n in 0..size.max(1) {
            let (queue, done, import, partitions) = (queue.clone(), done.clone(), import.clone(), partitions.clone());
            let thread = std::thread::Builder::new()
                .name(format!("worker-import-{n}"))
                .spawn(move || work(&queue, &done, &*import, &partitions))
                .map_err(|e| format!("cannot start an import thread: {e}"))?;
            threads.push(thread);
        }
        Ok(Pool {
            jobs: Some(jobs),
            results,
            threads,
        })
    }

    /// Hands a run to the threads.
    pub fn submit(&self, run: Run) {
        if let Some(jobs) = &self.jobs {
            // The scheduler hands out at most one run per held key, fewer than `capacity`.
            if jobs.send(run).is_err() {
                tracing::error!("the import threads are gone");
            }
        }
    }

    /// Runs finished: waits up to `wait` for the first, then takes whatever else is there.
    pub fn finished(&self, wait: Duration) -> Vec<Finished> {
        let mut finished = Vec::new();
        match self.results.recv_timeout(wait) {
            Ok(first) => finished.push(first),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return finished,
        }
        finished.extend(self.results.try_iter());
        finished
    }
}

impl Pool {
    /// Lets the threads finish what they are importing and end; returns every run finished
    /// and not yet taken.
    pub fn stop(mut self) -> Vec<Finished> {
        self.join();
        self.results.try_iter().collect()
    }

    fn join(&mut self) {
        self.jobs.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.join();
    }
}

fn work(queue: &Mutex<Receiver<Run>>, done: &Sender<Finished>, import: &ImportFn, partitions: &Partitions) {
    loop {
        let run = match queue.lock().unwrap_or_else(PoisonError::into_inner).recv() {
            Ok(run) => run,
            Err(_) => return,
        };
        let result = if partitions.start(&run) {
            let page = IncomingPage {
                wait_for_import: run.page.wait_for_import,
                listener_id: run.page.listener_id.clone(),
                page_id: run.page.page_id.clone(),
                created_at: run.page.created_at.clone(),
                records: run
                    .indexes
                    .iter()
                    .map(|index| run.page.records[*index].clone())
                    .collect(),
            };
            let cancelled = || !partitions.is_current(&run.partition, run.epoch);
            let result = import(&page, &cancelled).map_err(|Abandoned| ());
            partitions.end(&run);
            result
        } else {
            Err(())
        };
        if done.send((run, result)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(partitions: &Partitions, key: &str) -> Run {
        let partition: PartitionId = ("t".into(), 0);
        Run {
            epoch: partitions.epoch(&partition),
            partition,
            offset: 1,
            key: Arc::from(key),
            page: Arc::new(IncomingPage {
                wait_for_import: false,
                listener_id: "l".into(),
                page_id: "p".into(),
                created_at: None,
                records: vec![json!({"id": "a", "ordering_key": key}), json!({"id": "b"})],
            }),
            indexes: vec![0],
        }
    }

    #[test]
    fn runs_are_imported_on_the_threads_with_their_records_only() {
        let partitions = Arc::new(Partitions::default());
        let import: Import = Arc::new(|page: &IncomingPage, _: &dyn Fn() -> bool| {
            assert_eq!(page.records.len(), 1, "only the run's records");
            Ok(vec![RecordOutcome::Imported { tries: 1, answer: None }])
        });
        let pool = Pool::start(2, 8, import, partitions.clone()).unwrap();
        pool.submit(run(&partitions, "x"));
        pool.submit(run(&partitions, "y"));
        let mut finished = Vec::new();
        while finished.len() < 2 {
            finished.extend(pool.finished(Duration::from_secs(10)));
        }
        assert!(finished.iter().all(|(_, result)| result.is_ok()));
    }

    /// Real time, never abandoning by itself.
    struct Live;

    impl Pacer for Live {
        fn now(&self) -> Instant {
            Instant::now()
        }
        fn sleep(&self, duration: Duration) -> bool {
            std::thread::sleep(duration);
            true
        }
        fn jitter(&self) -> f64 {
            0.0
        }
        fn must_abandon(&self) -> bool {
            false
        }
    }

    #[test]
    fn a_run_waiting_out_a_backoff_gives_up_when_its_partition_is_revoked() {
        let partitions = Arc::new(Partitions::default());
        let import: Import = Arc::new(|_: &IncomingPage, cancelled: &dyn Fn() -> bool| {
            let pacer = Cancellable {
                inner: &Live,
                cancelled,
            };
            // A backoff of a minute: cut short by the revocation, not waited out.
            if pacer.sleep(Duration::from_secs(60)) {
                Ok(vec![RecordOutcome::Imported { tries: 2, answer: None }])
            } else {
                Err(Abandoned)
            }
        });
        let pool = Pool::start(1, 8, import, partitions.clone()).unwrap();
        pool.submit(run(&partitions, "x"));
        std::thread::sleep(Duration::from_millis(100));
        partitions.revoke(&[("t".into(), 0)], Duration::from_secs(30));
        let finished = pool.finished(Duration::from_secs(10));
        assert_eq!(finished.len(), 1, "the run ended within the revocation's wait");
        assert_eq!(finished[0].1, Err(()));
    }

    #[test]
    fn a_revoked_partitions_runs_are_skipped_and_revoke_waits_for_those_out() {
        let partitions = Arc::new(Partitions::default());
        let (entered, entered_rx) = mpsc::channel::<()>();
        let entered = Mutex::new(entered);
        let import: Import = Arc::new(move |_: &IncomingPage, _: &dyn Fn() -> bool| {
            entered.lock().unwrap().send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            Ok(vec![RecordOutcome::Imported { tries: 1, answer: None }])
        });
        let pool = Pool::start(1, 8, import, partitions.clone()).unwrap();
        let slow = run(&partitions, "x");
        let queued = run(&partitions, "y");
        pool.submit(slow);
        pool.submit(queued);
        entered_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let started = Instant::now();
        partitions.revoke(&[("t".into(), 0)], Duration::from_secs(10));
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "waited for the run out"
        );
        let mut finished = Vec::new();
        while finished.len() < 2 {
            finished.extend(pool.finished(Duration::from_secs(10)));
        }
        assert!(finished[0].1.is_ok());
        assert_eq!(
            finished[1].1,
            Err(()),
            "the queued run of the revoked partition is skipped"
        );
        assert!(entered_rx.try_recv().is_err(), "and never imported");
        assert_ne!(
            partitions.epoch(&("t".into(), 0)),
            finished[0].0.epoch,
            "a new epoch after"
        );
    }
}
