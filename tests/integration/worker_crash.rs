//! The delivery guarantee with the real `hookpipe worker` binary against a real broker (Tansu):
//! SIGKILLed mid-stream and restarted, every record reaches the target at least once (duplicates
//! counted and printed); SIGTERM finishes the page in hand and commits; workers joining and
//! leaving the group lose nothing.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::app::{settings, spawn_app, TestApp};
use crate::helpers::broker::Broker;
use crate::helpers::http::{http_get, metric, request};
use crate::helpers::target::{Reply, TargetServer};
use crate::helpers::worker::eventually;

const BIN: &str = env!("CARGO_BIN_EXE_hookpipe");

/// Listeners `l0`…`l{listeners-1}` (pages of 5 records), a page-mode HTTP target tagging its
/// requests with `x-worker: {name}`.
fn config(target_url: &str, listeners: usize, worker_name: &str) -> String {
    let mut text = format!(
        r#"
[server]
public_id_secret = "test-secret-0123456789"
listen = "127.0.0.1:0"
[pipeline]
page_linger_ms = 0
[worker]
metrics_listen = "127.0.0.1:0"
session_timeout_ms = 6000
commit_interval_ms = 1000
page_timeout_ms = 20000
shutdown_timeout_secs = 20
[worker.default_target]
type = "http"
url = "{target_url}"
mode = "page"
initial_backoff_ms = 100
max_backoff_ms = 1000
headers = {{ "x-worker" = "{worker_name}" }}
"#
    );
    for index in 0..listeners {
        text.push_str(&format!("[[listeners]]\nid = \"l{index}\"\npage_size = 5\n"));
    }
    text
}

/// A `hookpipe worker` process; killed on drop.
struct WorkerProcess {
    child: Option<Child>,
    log: PathBuf,
}

impl WorkerProcess {
    fn start(config: &Path, bootstrap: &str, log: PathBuf) -> WorkerProcess {
        let mut command = Command::new(BIN);
        command
            .args(["worker", "--config"])
            .arg(config)
            .env("HOOKPIPE_KAFKA__BROKERS", bootstrap)
            .env(
                "HOOKPIPE_LOG",
                std::env::var("WORKER_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for proxy in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"] {
            command.env_remove(proxy);
        }
        WorkerProcess {
            child: Some(command.spawn().expect("starting hookpipe worker")),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The address it printed for `GET /metrics`.
    fn metrics_addr(&self) -> SocketAddr {
        eventually("the worker's metrics address", Duration::from_secs(30), || {
            self.log()
                .lines()
                .find_map(|line| line.strip_prefix("worker metrics on http://"))
                .and_then(|rest| rest.strip_suffix("/metrics"))
                .and_then(|addr| addr.parse().ok())
        })
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGKILL: no chance to finish or commit anything.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, then waits for the exit; returns the exit code.
    fn terminate(&mut self) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "worker did not exit after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `GET /metrics`, or nothing when nobody listens.
fn http_get_or_empty(addr: SocketAddr) -> (u16, String) {
    match std::net::TcpStream::connect(addr) {
        Ok(_) => http_get(addr, "/metrics"),
        Err(_) => (0, String::new()),
    }
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hookpipe-worker-crash-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Posts `requests` requests of 5 records (`{"seq": n}`) round-robin over `listeners`
/// listeners, one every `interval`, on a thread; returns every record id once all are answered.
fn post_stream(
    app: &TestApp,
    listeners: usize,
    requests: usize,
    interval: Duration,
) -> std::thread::JoinHandle<Vec<String>> {
    let addr = app.addr;
    let paths: Vec<String> = (0..listeners).map(|i| app.hook_path(&format!("l{i}"))).collect();
    std::thread::spawn(move || {
        let mut ids = Vec::new();
        for index in 0..requests {
            let records: Vec<_> = (0..5).map(|r| json!({"seq": index * 5 + r})).collect();
            let body = serde_json::to_vec(&records).unwrap();
            let response = request(
                addr,
                "POST",
                &paths[index % paths.len()],
                &[("Content-Type", "application/json")],
                &body,
            );
            assert_eq!(response.status, 204, "{}", response.text());
            let request_id = response.header("x-request-id").unwrap().to_string();
            ids.extend((0..5).map(|r| format!("{request_id}-{r}")));
            std::thread::sleep(interval);
        }
        ids
    })
}

/// Record id → how many times the target accepted it, and by which worker.
fn imported(target: &TargetServer) -> (HashMap<String, usize>, BTreeMap<String, usize>) {
    let mut counts = HashMap::new();
    let mut by_worker = BTreeMap::new();
    for request in target.received() {
        if request.status != 200 {
            continue;
        }
        let records = request.records();
        *by_worker
            .entry(request.header("x-worker").unwrap_or("?").to_string())
            .or_default() += records.len();
        for record in records {
            *counts.entry(record["id"].as_str().unwrap().to_string()).or_default() += 1;
        }
    }
    (counts, by_worker)
}

/// Waits until every id was imported; returns (total imports, duplicates).
fn wait_for_all(target: &TargetServer, ids: &[String], timeout: Duration) -> (usize, usize) {
    let deadline = Instant::now() + timeout;
    loop {
        let (counts, _) = imported(target);
        let missing: Vec<&String> = ids.iter().filter(|id| !counts.contains_key(*id)).collect();
        if missing.is_empty() {
            let total: usize = ids.iter().map(|id| counts[id]).sum();
            return (total, total - ids.len());
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} records never imported, e.g. {:?}",
            missing.len(),
            ids.len(),
            &missing[..missing.len().min(5)]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A target that takes `delay` per request and accepts everything.
fn slow_target(delay: Duration) -> TargetServer {
    TargetServer::start(move |_, _| Reply::status(200).after(delay))
}

#[test]
fn sigkill_mid_stream_and_restart_imports_every_record_at_least_once() {
    sigkill_mid_stream_and_restart(false);
}

/// The same with listeners that have an ordering key (every record its own key): their pages
/// are imported key by key, concurrently, and offsets are stored in partition order only once
/// everything before is done — a kill at any point still loses nothing.
#[test]
fn sigkill_mid_stream_and_restart_imports_every_record_of_ordered_listeners_at_least_once() {
    sigkill_mid_stream_and_restart(true);
}

fn sigkill_mid_stream_and_restart(ordered: bool) {
    let broker = Broker::start();
    let target = slow_target(Duration::from_millis(20));
    let dir = temp_dir();
    let mut text = config(&target.url(), 3, "w");
    if ordered {
        text = text.replace("page_size = 5\n", "page_size = 5\nordering_key = \"seq\"\n");
    }
    let config_path = dir.join("hookpipe.toml");
    std::fs::write(&config_path, &text).unwrap();
    let app = spawn_app(settings(&text, &broker.bootstrap), &broker.bootstrap);

    let stream = post_stream(&app, 3, 120, Duration::from_millis(20));
    let mut worker = WorkerProcess::start(&config_path, &broker.bootstrap, dir.join("worker-1.log"));
    let started = Instant::now();
    let mut kills = 0;
    for threshold in [150, 350] {
        eventually(
            &format!("{threshold} records imported"),
            Duration::from_secs(60),
            || (imported(&target).0.len() >= threshold).then_some(()),
        );
        worker.kill();
        kills += 1;
        worker = WorkerProcess::start(
            &config_path,
            &broker.bootstrap,
            dir.join(format!("worker-{}.log", kills + 1)),
        );
    }
    let ids = stream.join().unwrap();
    assert_eq!(ids.len(), 600);
    let (total, duplicates) = wait_for_all(&target, &ids, Duration::from_secs(90));
    println!(
        "crash test{}: {} records, SIGKILLed {kills} times, {total} imports, {duplicates} duplicates ({:.1}%), {:.1}s",
        if ordered { " (ordered)" } else { "" },
        ids.len(),
        100.0 * duplicates as f64 / ids.len() as f64,
        started.elapsed().as_secs_f64()
    );
    // How many duplicates depends on how far the worker got past its last commit when it
    // was killed (about a second's worth, more on a loaded machine): reported, not bounded.
    assert!(total >= ids.len(), "every record imported at least once");
    if ordered {
        let keyed = target
            .received()
            .iter()
            .flat_map(|request| request.records())
            .all(|record| record["ordering_key"].as_str() == Some(record["data"]["seq"].to_string().as_str()));
        assert!(keyed, "the records came in version 2 pages, keyed by their seq");
    }
    drop(worker);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_finishes_the_page_in_hand_and_commits_so_a_restart_repeats_nothing() {
    let broker = Broker::start();
    let target = slow_target(Duration::from_millis(700));
    let dir = temp_dir();
    let text = config(&target.url(), 1, "w");
    let config_path = dir.join("hookpipe.toml");
    std::fs::write(&config_path, &text).unwrap();
    let app = spawn_app(settings(&text, &broker.bootstrap), &broker.bootstrap);
    // A backlog of 40 pages, imported at about one page per 0.7 s.
    let ids = post_stream(&app, 1, 40, Duration::ZERO).join().unwrap();

    let mut worker = WorkerProcess::start(&config_path, &broker.bootstrap, dir.join("worker-1.log"));
    let metrics_addr = worker.metrics_addr();
    // librdkafka reports the lag every 5 s: the backlog shows.
    let lag = eventually("a consumer lag above 0", Duration::from_secs(20), || {
        let (_, text) = http_get(metrics_addr, "/metrics");
        metric(&text, r#"hookpipe_worker_consumer_lag{topic="hookpipe.pages"}"#).filter(|lag| *lag > 0.0)
    });
    assert!(lag <= 40.0, "lag counts pages: {lag}");
    // SIGHUP is logged and ignored (it used to end the worker).
    let hangup = Command::new("kill").args(["-HUP", &worker.pid().to_string()]).status();
    assert!(hangup.unwrap().success());
    eventually("the SIGHUP logged", Duration::from_secs(5), || {
        worker.log().contains("SIGHUP: nothing to reload").then_some(())
    });
    assert_eq!(http_get(metrics_addr, "/metrics").0, 200, "the worker survives SIGHUP");
    // Stop while a page is in the target's hands (received, not answered yet).
    let in_hand = eventually("a page in flight", Duration::from_secs(20), || {
        let received = target.received().len();
        let (_, text) = http_get(metrics_addr, "/metrics");
        let done = metric(&text, r#"hookpipe_worker_records_imported_total{listener="l0"}"#).unwrap_or(0.0) as usize;
        (received >= 2 && done < received * 5).then_some(received)
    });
    let code = worker.terminate();
    assert_eq!(code, Some(0), "clean exit:\n{}", worker.log());
    let log = worker.log();
    assert!(log.contains("offsets committed"), "{log}");
    assert!(!log.contains("left uncommitted"), "{log}");
    assert!(http_get_or_empty(metrics_addr).1.is_empty(), "the worker is gone");
    let stopped_after = target.received().len();
    assert!(stopped_after >= in_hand, "the page in hand was answered");
    println!("sigterm test: stopped after {stopped_after} of 40 pages");
    // The rest quickly; the restarted worker must start after the last committed page: if the
    // page in hand had not been finished and committed, it would be imported twice.
    target.set_behavior(|_, _| Reply::status(200));

    let _worker = WorkerProcess::start(&config_path, &broker.bootstrap, dir.join("worker-2.log"));
    let (total, duplicates) = wait_for_all(&target, &ids, Duration::from_secs(60));
    println!(
        "sigterm test: {} records, {total} imports, {duplicates} duplicates",
        ids.len()
    );
    assert_eq!(duplicates, 0, "a graceful stop commits what it finished");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Several workers in one group while pages arrive: joins, a graceful leave, and a crash
/// followed by a restart. (Tansu 0.6.0 mishandles a member that only times out — it keeps the
/// generation and hands out the old assignment, orphaning the dead member's partitions — so
/// the crashed worker is restarted here, which makes the group rebalance; Kafka expires it
/// after `worker.session_timeout_ms` either way.)
#[test]
fn workers_joining_leaving_and_crashing_in_one_group_lose_nothing() {
    let broker = Broker::start();
    let target = slow_target(Duration::from_millis(15));
    let dir = temp_dir();
    let listeners = 6;
    let app_text = config(&target.url(), listeners, "app");
    let app = spawn_app(settings(&app_text, &broker.bootstrap), &broker.bootstrap);
    let start = |name: &str| {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config(&target.url(), listeners, name)).unwrap();
        WorkerProcess::start(&path, &broker.bootstrap, dir.join(format!("{name}.log")))
    };
    let imported_by = |name: &str| imported(&target).1.get(name).copied().unwrap_or(0);
    let mut ids = Vec::new();
    let stream = |requests: usize| post_stream(&app, listeners, requests, Duration::ZERO).join().unwrap();

    // Waits until the worker's log shows `count` assignments.
    let assigned = |name: &str, count: usize| {
        eventually(&format!("{name} assigned ({count})"), Duration::from_secs(60), || {
            let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
            (log.matches("partitions assigned").count() >= count).then_some(())
        })
    };

    let mut a = start("a");
    assigned("a", 1);
    ids.extend(stream(40));
    eventually("a importing", Duration::from_secs(60), || {
        (imported_by("a") > 0).then_some(())
    });
    // b joins: the partitions are split.
    let mut b = start("b");
    assigned("b", 1);
    assigned("a", 2);
    ids.extend(stream(60));
    eventually("b importing", Duration::from_secs(60), || {
        (imported_by("b") > 0).then_some(())
    });
    // b leaves gracefully: a takes everything back.
    assert_eq!(b.terminate(), Some(0), "{}", b.log());
    assigned("a", 3);
    ids.extend(stream(40));
    wait_for_all(&target, &ids, Duration::from_secs(60));
    // c joins, then a crashes mid-stream and is restarted (as d).
    let c = start("c");
    assigned("c", 1);
    ids.extend(stream(60));
    eventually("c importing", Duration::from_secs(60), || {
        (imported_by("c") > 0).then_some(())
    });
    let flow = post_stream(&app, listeners, 60, Duration::from_millis(20));
    std::thread::sleep(Duration::from_millis(300));
    a.kill();
    let d = start("d");
    ids.extend(flow.join().unwrap());
    let (total, duplicates) = wait_for_all(&target, &ids, Duration::from_secs(90));
    let (_, by_worker) = imported(&target);
    println!(
        "rebalance test: {} records, {total} imports ({by_worker:?}), {duplicates} duplicates",
        ids.len()
    );
    // Nothing lost is the property (wait_for_all above). Which worker ends up with the dead
    // one's partitions depends on rebalance timing (and on Tansu not expiring dead members),
    // so the share of the replacement is printed, not asserted.
    drop((c, d));
    let _ = std::fs::remove_dir_all(&dir);
}
