//! Per-key ordering and parallel import (`ordering_key`, issue #16 §3) against a real broker
//! (Tansu, 3 partitions), the real server and two in-process workers of one group: 1,000
//! records over 50 keys, one key's target failing twice (503, `Retry-After`) then succeeding —
//! every key's records reach the target in the order they were sent, the other keys are not
//! held back by the failing one, and both workers import.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::app::{settings, spawn_app, TestApp};
use crate::helpers::broker::Broker;
use crate::helpers::http::{http_get, metric};
use crate::helpers::target::{Received, Reply, TargetServer};
use crate::helpers::worker::{eventually, InProcessWorker};

const KEYS: usize = 50;
const RECORDS: usize = 1_000;
const PER_REQUEST: usize = 20;
const FAILING_KEY: &str = "c-7";
/// Each of the failing key's two failures asks for this wait: its records are imported at the
/// earliest this long after its first try.
const RETRY_AFTER_SECS: u64 = 3;

fn config(target_url: &str, worker: &str) -> String {
    config_with(target_url, worker, "metrics_listen = \"\"")
}

fn config_with(target_url: &str, worker: &str, worker_extra: &str) -> String {
    format!(
        r#"
[pipeline]
page_linger_ms = 0
[kafka]
topic_partitions = 3
[worker]
{worker_extra}
session_timeout_ms = 6000
key_concurrency = 8
[worker.default_target]
type = "http"
url = "{target_url}"
mode = "page"
initial_backoff_ms = 50
max_backoff_ms = 400
headers = {{ "x-worker" = "{worker}" }}
[[listeners]]
id = "orders"
resource_path = "items"
ordering_key = "customer"
"#
    )
}

fn post(app: &TestApp, items: &[Value]) {
    let response = app.post(
        "orders",
        "application/json",
        json!({ "items": items }).to_string().as_bytes(),
    );
    assert_eq!(response.status, 204, "{}", response.text());
}

/// The target of both tests: 503 (`Retry-After`) for the first two requests carrying a record
/// of the failing key, 200 otherwise.
fn failing_twice() -> TargetServer {
    TargetServer::start(|request, history| {
        let carries_failing_key = main_records(request)
            .iter()
            .any(|record| record["data"]["customer"] == FAILING_KEY);
        let failed_before = history.iter().filter(|r| r.status == 503).count();
        if carries_failing_key && failed_before < 2 {
            return Reply::status(503).with_header("Retry-After", &RETRY_AFTER_SECS.to_string());
        }
        Reply::status(200)
    })
}

/// The 1,000 records: record n of key `c-(n % 50)` with sequence number n / 50.
fn main_phase() -> Vec<Value> {
    (0..RECORDS)
        .map(|n| json!({"customer": format!("c-{}", n % KEYS), "seq": n / KEYS, "phase": "main"}))
        .collect()
}

/// Waits until the target accepted every record of the main phase; returns what it received.
fn all_imported(target: &TargetServer) -> Vec<Received> {
    eventually("every record imported", Duration::from_secs(120), || {
        let received = target.received();
        let imported: std::collections::HashSet<(String, u64)> = received
            .iter()
            .filter(|r| r.status == 200)
            .flat_map(main_records)
            .map(|r| {
                (
                    r["data"]["customer"].as_str().unwrap().to_string(),
                    r["data"]["seq"].as_u64().unwrap(),
                )
            })
            .collect();
        (imported.len() == RECORDS).then_some(received)
    })
}

/// Checks that every key's records were accepted in sequence (a record accepted again is one
/// accepted before: at least once, never overtaken); returns the number of such duplicates.
fn assert_per_key_order(received: &[&Received]) -> usize {
    let mut next: HashMap<String, u64> = HashMap::new();
    let mut duplicates = 0;
    for request in received.iter().filter(|r| r.status == 200) {
        for record in main_records(request) {
            let key = record["data"]["customer"].as_str().unwrap().to_string();
            let seq = record["data"]["seq"].as_u64().unwrap();
            let expected = next.entry(key.clone()).or_insert(0);
            if seq < *expected {
                duplicates += 1;
                continue;
            }
            assert_eq!(
                seq, *expected,
                "key {key}: record {seq} arrived before record {expected}"
            );
            *expected += 1;
        }
    }
    assert_eq!(next.len(), KEYS);
    assert!(next.values().all(|count| *count == (RECORDS / KEYS) as u64), "{next:?}");
    duplicates
}

/// The records of the main phase a request carried.
fn main_records(request: &Received) -> Vec<Value> {
    request
        .records()
        .into_iter()
        .filter(|record| record["data"]["phase"] == "main")
        .collect()
}

/// Records the target accepted, by worker.
fn accepted_by_worker(received: &[Received]) -> BTreeMap<String, usize> {
    let mut by_worker = BTreeMap::new();
    for request in received.iter().filter(|r| r.status == 200) {
        *by_worker
            .entry(request.header("x-worker").unwrap_or("?").to_string())
            .or_default() += request.records().len();
    }
    by_worker
}

#[test]
fn records_of_a_key_are_imported_in_order_and_a_failing_key_holds_back_only_itself() {
    let broker = Broker::start();
    let target = failing_twice();
    let app_settings = settings(&config(&target.url(), "app"), &broker.bootstrap);
    let app = spawn_app(app_settings, &broker.bootstrap);
    let first = InProcessWorker::start(
        &settings(&config(&target.url(), "a"), &broker.bootstrap),
        &broker.bootstrap,
    );
    let second = InProcessWorker::start(
        &settings(&config(&target.url(), "b"), &broker.bootstrap),
        &broker.bootstrap,
    );

    // Warm-up, until both workers import (the group has rebalanced and each holds partitions):
    // what is imported from now on is not imported again by a rebalance.
    let mut round = 0;
    eventually("both workers importing", Duration::from_secs(90), || {
        let items: Vec<Value> = (0..KEYS)
            .map(|key| json!({"customer": format!("w-{key}"), "phase": "warm-up", "round": round}))
            .collect();
        post(&app, &items);
        round += 1;
        std::thread::sleep(Duration::from_millis(500));
        let by_worker = accepted_by_worker(&target.received());
        (by_worker.contains_key("a") && by_worker.contains_key("b")).then_some(())
    });
    let warmed_up = target.received().len();

    // 1,000 records, record n of key `c-(n % 50)` with sequence number n / 50, in requests of 20.
    let all = main_phase();
    let posting = Instant::now();
    for request in all.chunks(PER_REQUEST) {
        post(&app, request);
    }
    let posted_in = posting.elapsed();

    let received = eventually("every record imported", Duration::from_secs(120), || {
        let received = target.received();
        let imported: std::collections::HashSet<(String, u64)> = received
            .iter()
            .filter(|r| r.status == 200)
            .flat_map(main_records)
            .map(|r| {
                (
                    r["data"]["customer"].as_str().unwrap().to_string(),
                    r["data"]["seq"].as_u64().unwrap(),
                )
            })
            .collect();
        (imported.len() == RECORDS).then_some(received)
    });
    let main: Vec<&Received> = received[warmed_up..].iter().collect();

    // Per key, in the order the target accepted them: every record is the next one of its key,
    // or one accepted before (at least once: a record may be imported twice, never overtaken).
    let mut next: HashMap<String, u64> = HashMap::new();
    let mut duplicates = 0;
    for request in main.iter().filter(|r| r.status == 200) {
        for record in main_records(request) {
            let key = record["data"]["customer"].as_str().unwrap().to_string();
            let seq = record["data"]["seq"].as_u64().unwrap();
            let expected = next.entry(key.clone()).or_insert(0);
            if seq < *expected {
                duplicates += 1;
                continue;
            }
            assert_eq!(
                seq, *expected,
                "key {key}: record {seq} arrived before record {expected}"
            );
            *expected += 1;
        }
    }
    assert_eq!(next.len(), KEYS);
    assert!(next.values().all(|count| *count == (RECORDS / KEYS) as u64), "{next:?}");

    // The failing key failed twice, then went on.
    let failures = main.iter().filter(|r| r.status == 503).count();
    assert_eq!(failures, 2);
    let first_failing_success = main
        .iter()
        .position(|r| r.status == 200 && main_records(r).iter().any(|r| r["data"]["customer"] == FAILING_KEY))
        .expect("the failing key was imported in the end");
    // The other keys did not wait for it: each of their records was accepted before the
    // failing key's first success (which came at least 2 × Retry-After after its first try).
    let others_last = main
        .iter()
        .rposition(|r| r.status == 200 && main_records(r).iter().any(|r| r["data"]["customer"] != FAILING_KEY))
        .unwrap();
    let first_failure_at = main.iter().find(|r| r.status == 503).unwrap().at;
    let failing_done_at = main[first_failing_success].at;
    let others_done_at = main[others_last].at;
    eprintln!(
        "posted {RECORDS} records in {posted_in:?}; other keys done {:?} after the first failure, the \
         failing key's first success {:?} after it; {duplicates} duplicates; by worker {:?}",
        others_done_at.saturating_duration_since(first_failure_at),
        failing_done_at.saturating_duration_since(first_failure_at),
        accepted_by_worker(&received[warmed_up..]),
    );
    assert!(
        others_last < first_failing_success,
        "a record of another key was accepted after the failing key's retries finished"
    );
    assert!(failing_done_at.duration_since(first_failure_at) >= Duration::from_secs(2 * RETRY_AFTER_SECS));

    // Both workers imported records of the main phase.
    let by_worker = accepted_by_worker(&received[warmed_up..]);
    assert!(by_worker.get("a").is_some_and(|n| *n > 0), "{by_worker:?}");
    assert!(by_worker.get("b").is_some_and(|n| *n > 0), "{by_worker:?}");
    first.stop();
    second.stop();
}

/// `worker.max_held_records` bounds what a key in retry holds back: one worker, a cap of 60
/// records, the failing key's partition stops fetching at the cap (paused, counted), the held
/// records never go far over it, and every key still arrives complete and in order.
#[test]
fn held_back_records_are_bounded_by_max_held_records() {
    const CAP: usize = 60;
    let broker = Broker::start();
    let target = failing_twice();
    let app = spawn_app(
        settings(&config(&target.url(), "app"), &broker.bootstrap),
        &broker.bootstrap,
    );
    let extra = format!("metrics_listen = \"127.0.0.1:0\"\nmax_held_records = {CAP}");
    let worker_settings = settings(&config_with(&target.url(), "a", &extra), &broker.bootstrap);
    let worker = InProcessWorker::start(&worker_settings, &broker.bootstrap);
    let metrics_addr = worker.metrics_addr.expect("metrics served");
    let read = |name: &str| metric(&http_get(metrics_addr, "/metrics").1, name).unwrap_or(0.0);

    // Sampled while the records go through: the most held at once.
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let mut most = 0.0f64;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                let text = http_get(metrics_addr, "/metrics").1;
                most = most.max(metric(&text, "hookpipe_worker_held_records").unwrap_or(0.0));
                std::thread::sleep(Duration::from_millis(20));
            }
            most
        })
    };
    for request in main_phase().chunks(PER_REQUEST) {
        post(&app, request);
    }
    let received = all_imported(&target);
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let most_held = sampler.join().unwrap();
    let all: Vec<&Received> = received.iter().collect();
    let duplicates = assert_per_key_order(&all);
    let pauses = read("hookpipe_worker_fetch_pauses_total");
    eprintln!("held at most {most_held} records (cap {CAP}); {pauses} pauses; {duplicates} duplicates");
    assert!(pauses >= 1.0, "the cap was reached and fetching paused");
    // The cap, plus what one poll hands over after it (a page of 20) on each of 3 partitions.
    assert!(most_held <= (CAP + 3 * PER_REQUEST) as f64, "held {most_held}");
    assert_eq!(
        read("hookpipe_worker_held_records"),
        0.0,
        "nothing held once all is settled"
    );
    worker.stop();
}
