//! Importing one page into a target: one request per page or per record, retried with backoff
//! on retryable answers, until every record is imported or has failed. No I/O of its own: the
//! target and the clock/sleeper are passed in, so the loop is tested with fakes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::config::worker::ImportMode;
use crate::worker::backoff::RetryPolicy;
use crate::worker::page::IncomingPage;

/// The target's JSON answer for a record (the answer to its request, or its per-record result),
/// kept only for pages whose listener waits for its imports (`IncomingPage::wait_for_import`)
/// and only when small (`wire::results::MAX_TARGET_BYTES`).
pub type TargetAnswer = Option<Arc<Value>>;

/// What a target answered to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Every record sent was imported; the answer, when kept.
    Accepted(TargetAnswer),
    /// A 2xx with one result per record sent, in the order sent.
    PerRecord {
        /// The response's status.
        status: u16,
        /// The results.
        results: Vec<RecordResult>,
    },
    /// Worth trying again: connection error, timeout, 5xx, 429.
    Retryable {
        /// The status, when a response arrived.
        status: Option<u16>,
        /// What went wrong.
        error: String,
        /// The target's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Not worth trying again: other 4xx, malformed answers.
    Permanent {
        /// The status, when a response arrived.
        status: Option<u16>,
        /// What went wrong.
        error: String,
    },
}

/// One record's result in a per-record answer.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordResult {
    /// Imported; the result, when kept.
    Ok(TargetAnswer),
    /// Not imported.
    Failed {
        /// The target's reason.
        error: String,
        /// The target asked for this record to be tried again.
        retryable: bool,
    },
}

/// Where records are imported.
pub trait Target: Send + Sync {
    /// Sends these records of `page` (indexes into `page.records`) in one request.
    fn send(&self, page: &IncomingPage, records: &[usize]) -> Answer;
    /// One request per page or per record.
    fn mode(&self) -> ImportMode;
    /// How failures are retried.
    fn retry_policy(&self) -> RetryPolicy;
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOutcome {
    /// Imported after `tries` requests.
    Imported {
        /// Requests that carried the record.
        tries: u32,
        /// The target's answer, when kept.
        answer: TargetAnswer,
    },
    /// Failed for good: to be recorded as an error.
    Failed {
        /// Why.
        error: String,
        /// The target's last status.
        status: Option<u16>,
        /// Requests that carried the record.
        tries: u32,
    },
}

/// Time and waiting, injected.
pub trait Pacer {
    /// Now.
    fn now(&self) -> Instant;
    /// Waits `duration`; `false` when the wait was cut short because the page must be abandoned.
    fn sleep(&self, duration: Duration) -> bool;
    /// A number in [0, 1) for jitter.
    fn jitter(&self) -> f64;
    /// Whether the page in hand must be given up now (shutdown grace period over).
    fn must_abandon(&self) -> bool;
}

/// The page was given up unfinished (shutdown); its offset must not be committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abandoned;

/// Imports every record of `page`; retries stop at `deadline` (the page time budget).
pub fn import_page(
    target: &dyn Target,
    page: &IncomingPage,
    deadline: Instant,
    pacer: &dyn Pacer,
) -> Result<Vec<RecordOutcome>, Abandoned> {
    let count = page.records.len();
    let mut outcomes: Vec<Option<RecordOutcome>> = vec![None; count];
    let batches: Vec<Vec<usize>> = match target.mode() {
        ImportMode::Page if count > 0 => vec![(0..count).collect()],
        ImportMode::Page => Vec::new(),
        ImportMode::Record => (0..count).map(|index| vec![index]).collect(),
    };
    for batch in batches {
        import_batch(target, page, batch, deadline, pacer, &mut outcomes)?;
    }
    Ok(outcomes
        .into_iter()
        .map(|outcome| outcome.expect("every record of every batch is decided"))
        .collect())
}

/// The last failure of a record still pending: status and error.
type LastFailure = (Option<u16>, String);

fn import_batch(
    target: &dyn Target,
    page: &IncomingPage,
    batch: Vec<usize>,
    deadline: Instant,
    pacer: &dyn Pacer,
    outcomes: &mut [Option<RecordOutcome>],
) -> Result<(), Abandoned> {
    let policy = target.retry_policy();
    let mut pending: Vec<(usize, Option<LastFailure>)> = batch.into_iter().map(|index| (index, None)).collect();
    let mut tries = 0u32;
    loop {
        if pacer.must_abandon() {
            return Err(Abandoned);
        }
        tries += 1;
        let indexes: Vec<usize> = pending.iter().map(|(index, _)| *index).collect();
        let retry_after = match target.send(page, &indexes) {
            Answer::Accepted(answer) => {
                for (index, _) in pending {
                    outcomes[index] = Some(RecordOutcome::Imported {
                        tries,
                        answer: answer.clone(),
                    });
                }
                return Ok(());
            }
            Answer::Permanent { status, error } => {
                for (index, _) in pending {
                    outcomes[index] = Some(RecordOutcome::Failed {
                        error: error.clone(),
                        status,
                        tries,
                    });
                }
                return Ok(());
            }
            Answer::PerRecord { status, results } if results.len() != pending.len() => {
                let error = format!(
                    "target answered {} per-record results for {} records",
                    results.len(),
                    pending.len()
                );
                for (index, _) in pending {
                    outcomes[index] = Some(RecordOutcome::Failed {
                        error: error.clone(),
                        status: Some(status),
                        tries,
                    });
                }
                return Ok(());
            }
            Answer::PerRecord { status, results } => {
                let mut again = Vec::new();
                for ((index, _), result) in pending.into_iter().zip(results) {
                    match result {
                        RecordResult::Ok(answer) => outcomes[index] = Some(RecordOutcome::Imported { tries, answer }),
                        RecordResult::Failed {
                            error,
                            retryable: false,
                        } => {
                            outcomes[index] = Some(RecordOutcome::Failed {
                                error,
                                status: Some(status),
                                tries,
                            })
                        }
                        RecordResult::Failed { error, retryable: true } => {
                            again.push((index, Some((Some(status), error))))
                        }
                    }
                }
                if again.is_empty() {
                    return Ok(());
                }
                pending = again;
                None
            }
            Answer::Retryable {
                status,
                error,
                retry_after,
            } => {
                for (_, last) in pending.iter_mut() {
                    *last = Some((status, error.clone()));
                }
                retry_after
            }
        };
        let give_up =
            |pending: Vec<(usize, Option<LastFailure>)>, why: &str, outcomes: &mut [Option<RecordOutcome>]| {
                for (index, last) in pending {
                    let (status, error) = last.unwrap_or((None, "failed".into()));
                    outcomes[index] = Some(RecordOutcome::Failed {
                        error: format!("{error} ({why})"),
                        status,
                        tries,
                    });
                }
            };
        if tries >= policy.max_attempts {
            give_up(pending, &format!("gave up after {tries} tries"), outcomes);
            return Ok(());
        }
        let wait = retry_after.unwrap_or_else(|| policy.backoff(tries, pacer.jitter()));
        if pacer.now() + wait > deadline {
            give_up(
                pending,
                &format!(
                    "retries stopped after {tries} tries: the next one, in {}s, would pass worker.page_timeout_ms",
                    wait.as_secs_f64().ceil()
                ),
                outcomes,
            );
            return Ok(());
        }
        if !pacer.sleep(wait) {
            return Err(Abandoned);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cell::{Cell, RefCell};
    use std::sync::Mutex;

    /// Answers from a script, one per request; records what was sent.
    struct Scripted {
        mode: ImportMode,
        answers: Mutex<Vec<Answer>>,
        sent: Mutex<Vec<Vec<usize>>>,
    }

    impl Scripted {
        fn new(mode: ImportMode, answers: Vec<Answer>) -> Scripted {
            Scripted {
                mode,
                answers: Mutex::new(answers.into_iter().rev().collect()),
                sent: Mutex::new(Vec::new()),
            }
        }
    }

    impl Target for Scripted {
        fn send(&self, _page: &IncomingPage, records: &[usize]) -> Answer {
            self.sent.lock().unwrap().push(records.to_vec());
            self.answers.lock().unwrap().pop().expect("a scripted answer")
        }
        fn mode(&self) -> ImportMode {
            self.mode
        }
        fn retry_policy(&self) -> RetryPolicy {
            RetryPolicy {
                max_attempts: 3,
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(10),
            }
        }
    }

    /// Accelerated time: sleeping advances the clock.
    struct FakeTime {
        start: Instant,
        elapsed: Cell<Duration>,
        slept: RefCell<Vec<Duration>>,
        abandon_after_sleeps: Option<usize>,
    }

    impl FakeTime {
        fn new() -> FakeTime {
            FakeTime {
                start: Instant::now(),
                elapsed: Cell::new(Duration::ZERO),
                slept: RefCell::new(Vec::new()),
                abandon_after_sleeps: None,
            }
        }
    }

    impl Pacer for FakeTime {
        fn now(&self) -> Instant {
            self.start + self.elapsed.get()
        }
        fn sleep(&self, duration: Duration) -> bool {
            self.slept.borrow_mut().push(duration);
            self.elapsed.set(self.elapsed.get() + duration);
            self.abandon_after_sleeps.is_none_or(|n| self.slept.borrow().len() < n)
        }
        fn jitter(&self) -> f64 {
            0.0
        }
        fn must_abandon(&self) -> bool {
            false
        }
    }

    fn page(records: usize) -> IncomingPage {
        IncomingPage {
            wait_for_import: false,
            listener_id: "l".into(),
            page_id: "p".into(),
            created_at: None,
            records: (0..records).map(|i| json!({"id": format!("r-{i}")})).collect(),
        }
    }

    fn retryable(status: u16, retry_after: Option<Duration>) -> Answer {
        Answer::Retryable {
            status: Some(status),
            error: format!("HTTP {status}"),
            retry_after,
        }
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[test]
    fn a_5xx_is_retried_with_backoff_then_imported_once() {
        let target = Scripted::new(
            ImportMode::Page,
            vec![retryable(503, None), retryable(500, None), Answer::Accepted(None)],
        );
        let time = FakeTime::new();
        let outcomes = import_page(&target, &page(2), far(), &time).unwrap();
        assert_eq!(outcomes, vec![RecordOutcome::Imported { tries: 3, answer: None }; 2]);
        assert_eq!(
            *time.slept.borrow(),
            vec![Duration::from_millis(50), Duration::from_millis(100)]
        );
        assert_eq!(target.sent.lock().unwrap().len(), 3);
    }

    #[test]
    fn retry_after_is_honoured_and_tries_are_bounded() {
        let target = Scripted::new(
            ImportMode::Page,
            vec![
                retryable(429, Some(Duration::from_secs(7))),
                retryable(503, None),
                retryable(503, None),
            ],
        );
        let time = FakeTime::new();
        let outcomes = import_page(&target, &page(1), far(), &time).unwrap();
        assert_eq!(time.slept.borrow()[0], Duration::from_secs(7));
        assert_eq!(
            outcomes,
            vec![RecordOutcome::Failed {
                error: "HTTP 503 (gave up after 3 tries)".into(),
                status: Some(503),
                tries: 3
            }]
        );
    }

    #[test]
    fn a_4xx_is_not_retried() {
        let target = Scripted::new(
            ImportMode::Page,
            vec![Answer::Permanent {
                status: Some(422),
                error: "HTTP 422: bad sku".into(),
            }],
        );
        let outcomes = import_page(&target, &page(2), far(), &FakeTime::new()).unwrap();
        assert!(outcomes.iter().all(|o| matches!(
            o,
            RecordOutcome::Failed {
                status: Some(422),
                tries: 1,
                ..
            }
        )));
    }

    #[test]
    fn per_record_results_fail_and_retry_only_their_records() {
        let failed = |error: &str, retryable| RecordResult::Failed {
            error: error.into(),
            retryable,
        };
        let target = Scripted::new(
            ImportMode::Page,
            vec![
                Answer::PerRecord {
                    status: 200,
                    results: vec![
                        RecordResult::Ok(None),
                        failed("unknown sku", false),
                        failed("locked", true),
                    ],
                },
                Answer::PerRecord {
                    status: 207,
                    results: vec![RecordResult::Ok(None)],
                },
            ],
        );
        let outcomes = import_page(&target, &page(3), far(), &FakeTime::new()).unwrap();
        assert_eq!(
            outcomes,
            vec![
                RecordOutcome::Imported { tries: 1, answer: None },
                RecordOutcome::Failed {
                    error: "unknown sku".into(),
                    status: Some(200),
                    tries: 1
                },
                RecordOutcome::Imported { tries: 2, answer: None },
            ]
        );
        assert_eq!(*target.sent.lock().unwrap(), vec![vec![0, 1, 2], vec![2]]);
    }

    #[test]
    fn per_record_results_of_the_wrong_length_fail_the_batch() {
        let target = Scripted::new(
            ImportMode::Page,
            vec![Answer::PerRecord {
                status: 200,
                results: vec![RecordResult::Ok(None)],
            }],
        );
        let outcomes = import_page(&target, &page(2), far(), &FakeTime::new()).unwrap();
        assert!(outcomes
            .iter()
            .all(|o| matches!(o, RecordOutcome::Failed { error, .. } if error.contains("1 per-record results for 2"))));
    }

    #[test]
    fn record_mode_sends_and_retries_each_record_alone() {
        let target = Scripted::new(
            ImportMode::Record,
            vec![Answer::Accepted(None), retryable(502, None), Answer::Accepted(None)],
        );
        let outcomes = import_page(&target, &page(2), far(), &FakeTime::new()).unwrap();
        assert_eq!(
            outcomes,
            vec![
                RecordOutcome::Imported { tries: 1, answer: None },
                RecordOutcome::Imported { tries: 2, answer: None }
            ]
        );
        assert_eq!(*target.sent.lock().unwrap(), vec![vec![0], vec![1], vec![1]]);
    }

    #[test]
    fn retries_stop_at_the_page_deadline() {
        let target = Scripted::new(ImportMode::Page, vec![retryable(429, Some(Duration::from_secs(120)))]);
        let time = FakeTime::new();
        let deadline = time.now() + Duration::from_secs(60);
        let outcomes = import_page(&target, &page(1), deadline, &time).unwrap();
        assert!(time.slept.borrow().is_empty());
        match &outcomes[0] {
            RecordOutcome::Failed { error, tries: 1, .. } => assert!(error.contains("page_timeout_ms"), "{error}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn shutdown_during_a_wait_abandons_the_page() {
        let target = Scripted::new(ImportMode::Page, vec![retryable(503, None)]);
        let time = FakeTime {
            abandon_after_sleeps: Some(1),
            ..FakeTime::new()
        };
        assert_eq!(import_page(&target, &page(1), far(), &time), Err(Abandoned));
    }

    #[test]
    fn an_empty_page_needs_no_request() {
        let target = Scripted::new(ImportMode::Page, vec![]);
        assert_eq!(import_page(&target, &page(0), far(), &FakeTime::new()), Ok(vec![]));
    }
}
