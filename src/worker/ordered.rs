//! Pages of listeners with an ordering key (page version 2), imported key by key: within a
//! partition, the records of one key are imported one run after the other in offset order,
//! while different keys are imported at once (by `worker::pool`); a run retried with backoff
//! holds back only the later runs of its key. Pure bookkeeping, no I/O: the worker's poll
//! thread owns the one `Scheduler`.
//!
//! Offsets: every message of a partition held here (an ordered page being imported, or any
//! other message done behind one) is settled, and its offset stored, in offset order, once it
//! and everything before it are done — so a commit never covers a record not yet imported or
//! recorded as an error, whatever order the keys finish in.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use crate::worker::import::RecordOutcome;
use crate::worker::page::{ordering_key, IncomingPage};

/// A partition of a pages topic: topic and partition number.
pub type PartitionId = (String, i32);

/// The records of one key in one page: what one pool thread imports in one go.
#[derive(Debug, Clone)]
pub struct Run {
    /// Where its page was read.
    pub partition: PartitionId,
    /// The partition's state it belongs to (a revoked and reassigned partition starts again).
    pub epoch: u64,
    /// Its page's offset.
    pub offset: i64,
    /// Its key.
    pub key: Arc<str>,
    /// Its page.
    pub page: Arc<IncomingPage>,
    /// Its records: indexes into `page.records`, in page order.
    pub indexes: Vec<usize>,
}

/// A held message whose import is over, to be settled (errors recorded) before its offset is
/// stored; `page` is `None` for a message that was done when it was marked (`mark_done`).
#[derive(Debug)]
pub struct Settleable {
    /// Its offset.
    pub offset: i64,
    /// When an ordered page was read (its import time, waits behind its key included, runs
    /// from there); `None` for a message that was done when marked.
    pub admitted: Option<Instant>,
    /// The page, the listener's retry data cap (`None`: stores none) and each record's outcome.
    pub page: Option<(Arc<IncomingPage>, Option<usize>, Vec<RecordOutcome>)>,
}

#[derive(Debug)]
struct HeldPage {
    admitted: Instant,
    page: Arc<IncomingPage>,
    keep: Option<usize>,
    outcomes: Vec<Option<RecordOutcome>>,
    runs_left: usize,
    abandoned: bool,
}

#[derive(Debug)]
enum Entry {
    Page(HeldPage),
    Done,
}

#[derive(Debug)]
struct PartitionState {
    epoch: u64,
    entries: BTreeMap<i64, Entry>,
    /// Runs of each key not finished, in offset order; the front one is being imported.
    keys: HashMap<Arc<str>, VecDeque<(i64, Vec<usize>)>>,
}

/// The ordered pages held by one worker, by partition.
#[derive(Debug, Default)]
pub struct Scheduler {
    partitions: HashMap<PartitionId, PartitionState>,
    held_records: usize,
    running: usize,
}

impl Scheduler {
    /// Records held (read and not yet settled), the figure `worker.max_held_records` caps: the
    /// records of ordered pages, and one for each other message done behind them.
    pub fn held_records(&self) -> usize {
        self.held_records
    }

    /// Runs handed out and not finished.
    pub fn running(&self) -> usize {
        self.running
    }

    /// Whether any partition is held (with nothing held, the worker runs as it always has).
    pub fn partitions_held(&self) -> bool {
        !self.partitions.is_empty()
    }

    /// Whether nothing of `partition` is held: a message done there can store its offset at once.
    pub fn is_idle(&self, partition: &PartitionId) -> bool {
        self.partitions
            .get(partition)
            .is_none_or(|state| state.entries.is_empty())
    }

    /// The epoch `partition` is held under, if any.
    pub fn epoch(&self, partition: &PartitionId) -> Option<u64> {
        self.partitions.get(partition).map(|state| state.epoch)
    }

    /// Holds an ordered page read at `offset` (its records' keys split it into runs, one per
    /// key, in the order the keys first appear) under `epoch` (a fresh one starts the
    /// partition's state again); returns the runs that may start now.
    pub fn admit(
        &mut self,
        partition: &PartitionId,
        epoch: u64,
        offset: i64,
        page: IncomingPage,
        keep: Option<usize>,
    ) -> Vec<Run> {
        let page = Arc::new(page);
        let mut runs: Vec<(Arc<str>, Vec<usize>)> = Vec::new();
        let mut run_of: HashMap<&str, usize> = HashMap::new();
        for (index, record) in page.records.iter().enumerate() {
            let key = ordering_key(record);
            match run_of.get(key) {
                Some(run) => runs[*run].1.push(index),
                None => {
                    run_of.insert(key, runs.len());
                    runs.push((Arc::from(key), vec![index]));
                }
            }
        }
        let state = self.state(partition, epoch);
        let entry = if runs.is_empty() {
            Entry::Done
        } else {
            Entry::Page(HeldPage {
                admitted: Instant::now(),
                page: page.clone(),
                keep,
                outcomes: vec![None; page.records.len()],
                runs_left: runs.len(),
                abandoned: false,
            })
        };
        state.entries.insert(offset, entry);
        let mut ready = Vec::new();
        for (key, indexes) in runs {
            let queue = state.keys.entry(key.clone()).or_default();
            queue.push_back((offset, indexes.clone()));
            if queue.len() == 1 {
                ready.push(Run {
                    partition: partition.clone(),
                    epoch,
                    offset,
                    key,
                    page: page.clone(),
                    indexes,
                });
            }
        }
        self.held_records += page.records.len().max(1);
        self.running += ready.len();
        ready
    }

    /// A message of `partition` done without the pool (another listener's page, or one that
    /// could not be read), held behind the ordered pages before it.
    pub fn mark_done(&mut self, partition: &PartitionId, epoch: u64, offset: i64) {
        self.state(partition, epoch).entries.insert(offset, Entry::Done);
        self.held_records += 1;
    }

    /// A run finished (`Err(())`: given up at shutdown, its page is never settled); returns the
    /// next run of its key, if one is waiting. A run of a revoked partition is forgotten.
    pub fn finished(&mut self, run: &Run, outcomes: Result<Vec<RecordOutcome>, ()>) -> Option<Run> {
        let state = self.partitions.get_mut(&run.partition)?;
        if state.epoch != run.epoch {
            return None;
        }
        self.running = self.running.saturating_sub(1);
        if let Some(Entry::Page(held)) = state.entries.get_mut(&run.offset) {
            match outcomes {
                Ok(outcomes) => {
                    for (index, outcome) in run.indexes.iter().zip(outcomes) {
                        held.outcomes[*index] = Some(outcome);
                    }
                }
                Err(()) => held.abandoned = true,
            }
            held.runs_left = held.runs_left.saturating_sub(1);
        }
        let queue = state.keys.get_mut(&run.key)?;
        queue.pop_front();
        let Some((offset, indexes)) = queue.front().cloned() else {
            state.keys.remove(&run.key);
            return None;
        };
        let page = match state.entries.get(&offset) {
            Some(Entry::Page(held)) => held.page.clone(),
            _ => return None,
        };
        self.running += 1;
        Some(Run {
            partition: run.partition.clone(),
            epoch: run.epoch,
            offset,
            key: run.key.clone(),
            page,
            indexes,
        })
    }

    /// Takes the messages at the front of `partition` that are done, in offset order, up to
    /// the first one that is not (or was given up at shutdown, which stays).
    pub fn settleable(&mut self, partition: &PartitionId) -> Vec<Settleable> {
        let Some(state) = self.partitions.get_mut(partition) else {
            return Vec::new();
        };
        let mut done = Vec::new();
        while let Some(mut first) = state.entries.first_entry() {
            match first.get_mut() {
                Entry::Page(held) if held.runs_left > 0 || held.abandoned => break,
                Entry::Page(_) | Entry::Done => {}
            }
            let offset = *first.key();
            let mut admitted = None;
            let entry = first.remove();
            self.held_records = self.held_records.saturating_sub(held_by(&entry));
            let page = match entry {
                Entry::Done => None,
                Entry::Page(held) => {
                    admitted = Some(held.admitted);
                    let outcomes = held
                        .outcomes
                        .into_iter()
                        .map(|outcome| outcome.expect("every run of a settled page finished"))
                        .collect();
                    Some((held.page, held.keep, outcomes))
                }
            };
            done.push(Settleable { offset, admitted, page });
        }
        done
    }

    /// Partitions holding records of ordered pages (what a pause at the cap stops fetching).
    pub fn holding(&self) -> Vec<PartitionId> {
        self.partitions
            .iter()
            .filter(|(_, state)| state.entries.values().any(|entry| matches!(entry, Entry::Page(_))))
            .map(|(partition, _)| partition.clone())
            .collect()
    }

    /// Partitions held now.
    pub fn partitions(&self) -> Vec<PartitionId> {
        self.partitions.keys().cloned().collect()
    }

    /// Forgets `partition` (revoked): what was held there is imported again by its next owner
    /// from the last offset committed; runs still out are forgotten when they finish.
    pub fn revoke(&mut self, partition: &PartitionId) {
        let Some(state) = self.partitions.remove(partition) else {
            return;
        };
        for entry in state.entries.values() {
            self.held_records = self.held_records.saturating_sub(held_by(entry));
        }
        let out = state.keys.values().filter(|queue| !queue.is_empty()).count();
        self.running = self.running.saturating_sub(out);
    }

    fn state(&mut self, partition: &PartitionId, epoch: u64) -> &mut PartitionState {
        if self.partitions.get(partition).is_some_and(|state| state.epoch != epoch) {
            self.revoke(partition);
        }
        self.partitions
            .entry(partition.clone())
            .or_insert_with(|| PartitionState {
                epoch,
                entries: BTreeMap::new(),
                keys: HashMap::new(),
            })
    }
}

/// What an entry counts towards `Scheduler::held_records`: a page its records, a message done
/// (or an empty page) one.
fn held_by(entry: &Entry) -> usize {
    match entry {
        Entry::Page(held) => held.page.records.len().max(1),
        Entry::Done => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page(id: &str, keys: &[&str]) -> IncomingPage {
        IncomingPage {
            wait_for_import: false,
            listener_id: "l".into(),
            page_id: id.into(),
            created_at: None,
            records: keys
                .iter()
                .enumerate()
                .map(|(n, key)| json!({"id": format!("{id}-{n}"), "ordering_key": key, "data": n}))
                .collect(),
        }
    }

    fn p0() -> PartitionId {
        ("t".into(), 0)
    }

    fn ok(run: &Run) -> Result<Vec<RecordOutcome>, ()> {
        Ok(vec![
            RecordOutcome::Imported { tries: 1, answer: None };
            run.indexes.len()
        ])
    }

    fn described(runs: &[Run]) -> Vec<(i64, String, Vec<usize>)> {
        runs.iter()
            .map(|run| (run.offset, run.key.to_string(), run.indexes.clone()))
            .collect()
    }

    #[test]
    fn keys_run_at_once_and_a_key_runs_in_offset_order() {
        let mut scheduler = Scheduler::default();
        let first = scheduler.admit(&p0(), 1, 10, page("a", &["x", "y", "x"]), None);
        assert_eq!(
            described(&first),
            [(10, "x".into(), vec![0, 2]), (10, "y".into(), vec![1])]
        );
        // The next page: `z` is new and starts; `x` and `y` wait for their runs at offset 10.
        let second = scheduler.admit(&p0(), 1, 11, page("b", &["y", "z", "x"]), None);
        assert_eq!(described(&second), [(11, "z".into(), vec![1])]);
        assert_eq!((scheduler.held_records(), scheduler.running()), (6, 3));

        // `z` (offset 11) finishes first: nothing can be settled before offset 10 is.
        assert!(scheduler.finished(&second[0], ok(&second[0])).is_none());
        assert!(scheduler.settleable(&p0()).is_empty());
        // `y` at 10 finishes: its run at 11 starts.
        let next_y = scheduler.finished(&first[1], ok(&first[1])).unwrap();
        assert_eq!(described(std::slice::from_ref(&next_y)), [(11, "y".into(), vec![0])]);
        assert!(scheduler.settleable(&p0()).is_empty(), "x is still out at 10");
        let next_x = scheduler.finished(&first[0], ok(&first[0])).unwrap();
        assert_eq!((next_x.offset, next_x.indexes.clone()), (11, vec![2]));
        let settled = scheduler.settleable(&p0());
        assert_eq!(settled.iter().map(|s| s.offset).collect::<Vec<_>>(), [10]);
        assert_eq!(settled[0].page.as_ref().unwrap().2.len(), 3);
        assert_eq!(scheduler.held_records(), 3);
        assert!(scheduler.finished(&next_y, ok(&next_y)).is_none());
        assert!(scheduler.finished(&next_x, ok(&next_x)).is_none());
        let settled = scheduler.settleable(&p0());
        assert_eq!(settled.iter().map(|s| s.offset).collect::<Vec<_>>(), [11]);
        assert_eq!((scheduler.held_records(), scheduler.running()), (0, 0));
        assert!(scheduler.is_idle(&p0()));
    }

    #[test]
    fn a_key_being_retried_holds_back_only_its_own_key_and_what_is_committed() {
        let mut scheduler = Scheduler::default();
        let slow = scheduler.admit(&p0(), 1, 1, page("a", &["slow"]), None);
        let mut done_offsets = Vec::new();
        for offset in 2..6 {
            let runs = scheduler.admit(&p0(), 1, offset, page(&format!("p{offset}"), &["fast"]), None);
            // `fast` of the previous page finished, so each new one starts at once... unless the
            // previous run is still out: finish every run as soon as it is handed out.
            for run in runs {
                let mut next = Some(run);
                while let Some(run) = next {
                    done_offsets.push(run.offset);
                    next = scheduler.finished(&run, ok(&run));
                }
            }
        }
        assert_eq!(done_offsets, [2, 3, 4, 5], "the other key went on");
        // Another message of the partition, done at once, waits behind as well.
        scheduler.mark_done(&p0(), 1, 6);
        assert!(scheduler.settleable(&p0()).is_empty(), "offset 1 holds the commit back");
        assert_eq!(
            scheduler.held_records(),
            6,
            "five records and the message done behind them"
        );
        let failed = RecordOutcome::Failed {
            error: "HTTP 503".into(),
            status: Some(503),
            tries: 3,
        };
        assert!(scheduler.finished(&slow[0], Ok(vec![failed.clone()])).is_none());
        let settled = scheduler.settleable(&p0());
        assert_eq!(settled.iter().map(|s| s.offset).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
        assert_eq!(settled[0].page.as_ref().unwrap().2, [failed]);
        assert!(settled[5].page.is_none());
    }

    #[test]
    fn a_run_given_up_at_shutdown_is_never_settled() {
        let mut scheduler = Scheduler::default();
        let runs = scheduler.admit(&p0(), 1, 1, page("a", &["x"]), None);
        scheduler.admit(&p0(), 1, 2, page("b", &["y"]), None);
        scheduler.finished(&runs[0], Err(()));
        assert!(scheduler.settleable(&p0()).is_empty());
    }

    #[test]
    fn a_revoked_partition_is_forgotten_and_its_late_runs_ignored() {
        let mut scheduler = Scheduler::default();
        let runs = scheduler.admit(&p0(), 1, 1, page("a", &["x", "y"]), None);
        scheduler.admit(&p0(), 1, 2, page("b", &["x"]), None);
        let other: PartitionId = ("t".into(), 1);
        scheduler.admit(&other, 1, 1, page("c", &["x"]), None);
        scheduler.revoke(&p0());
        assert_eq!((scheduler.held_records(), scheduler.running()), (1, 1));
        // Reassigned under a new epoch: the run of the old one changes nothing.
        let again = scheduler.admit(&p0(), 2, 1, page("a", &["x"]), None);
        assert_eq!(again.len(), 1);
        assert!(scheduler.finished(&runs[0], ok(&runs[0])).is_none());
        assert!(scheduler.settleable(&p0()).is_empty());
        assert!(scheduler.finished(&again[0], ok(&again[0])).is_none());
        assert_eq!(scheduler.settleable(&p0()).len(), 1);
    }

    /// Messages done behind a page still in retry (another listener's pages on the same
    /// partition, read and imported at full speed) are held too, until the page before them
    /// settles: they count towards `worker.max_held_records`, or nothing would bound them.
    #[test]
    fn messages_done_behind_a_held_page_count_as_held() {
        let mut scheduler = Scheduler::default();
        let slow = scheduler.admit(&p0(), 1, 1, page("a", &["slow"]), None);
        for offset in 2..102 {
            scheduler.mark_done(&p0(), 1, offset);
        }
        assert_eq!(
            scheduler.held_records(),
            101,
            "the page's record and the 100 messages behind it"
        );
        assert_eq!(scheduler.holding(), [p0()]);
        scheduler.finished(&slow[0], ok(&slow[0]));
        assert_eq!(scheduler.settleable(&p0()).len(), 101);
        assert_eq!(scheduler.held_records(), 0);

        let other: PartitionId = ("t".into(), 1);
        scheduler.admit(&other, 1, 1, page("b", &["x"]), None);
        scheduler.admit(&other, 1, 2, page("c", &[]), None);
        scheduler.mark_done(&other, 1, 3);
        assert_eq!(scheduler.held_records(), 3);
        scheduler.revoke(&other);
        assert_eq!(scheduler.held_records(), 0, "a revocation forgets them all");
    }

    #[test]
    fn an_empty_page_is_done_at_once() {
        let mut scheduler = Scheduler::default();
        assert!(scheduler.admit(&p0(), 1, 4, page("a", &[]), None).is_empty());
        let settled = scheduler.settleable(&p0());
        assert_eq!((settled.len(), settled[0].offset), (1, 4));
    }
}
