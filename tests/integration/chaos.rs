//! The fault campaign (issue #18 §2): one fault per test, against a real broker (Tansu), under
//! load, bounded. Each checks one thing: every request answered 2xx has all its records in Kafka
//! (read back and matched by request id), and hookpipe recovers by itself — plus what the fault
//! is about (503 with `Retry-After` while Kafka cannot acknowledge, in-flight requests finished
//! on SIGTERM, ...). Every case prints one row of the table (`helpers::faults`);
//! `tests/chaos/run.sh` runs these with the broker kill and the network cut of `outage` and
//! writes the table into `docs/faults.md`.
//!
//! - On the broker side (`outage::outage_under_load`): the broker down for longer than the
//!   request timeout; the connection to it blackholed; the broker slow (under the message
//!   timeout, and beyond it), latency injected by the test's TCP proxy (`helpers::proxy`).
//! - On hookpipe's side (`hookpipe serve` processes): SIGKILL under load, SIGTERM under load, the
//!   producer queue full, and the state topic missing at start.

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hookpipe::config::Settings;
use hookpipe::kafka::topics::{create_missing, debug_topic, TopicSpec};

use crate::helpers::app::{settings, spawn_app, TestApp};
use crate::helpers::broker::{free_port, Broker};
use crate::helpers::faults::{assert_none_lost, stored_records, ReadBack, Row};
use crate::helpers::fleet::{send, Instance, Load as ProcessLoad, Outcome, Sent as ProcessSent, TempDir};
use crate::helpers::http::{metric, request};
use crate::helpers::probe::kafka_answers;
use crate::helpers::proxy::Proxy;
use crate::outage::{lost_and_duplicated, outage_under_load, Fault, Load, Sent, CONFIG};

/// `kafka.message_timeout_ms` of the faults that hang instead of closing (a blackhole, a broker
/// slower than it): short, so that a case sees the timeout several times within its bound.
const HANGING_MESSAGE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a hanging fault lasts: long enough for requests started once it is noticed to be
/// answered while it lasts.
const HANGING_FAULT: Duration = Duration::from_secs(10);
/// A hanging fault costs librdkafka its connection (a request timeout) and the producer its
/// epoch: recovery takes longer than after a closed connection.
const HANGING_RECOVERY_LIMIT: Duration = Duration::from_secs(30);

/// The outage tests' configuration with the short message timeout.
fn hanging_config() -> String {
    format!(
        "{CONFIG}[kafka]\nmessage_timeout_ms = {}\n",
        HANGING_MESSAGE_TIMEOUT.as_millis()
    )
}

/// A fault that leaves the connections open and unanswered: noticed by the message timeout, so
/// refused from two seconds after it (and `/readyz` 503), every request answered within the
/// timeout plus a margin for a loaded machine; once repaired, refusals may come back for a
/// while after a first 2xx (the dead connection timing out, the producer replaced).
fn hanging<'a>(case: &'a str, diagnose: &'a dyn Fn() -> String) -> Fault<'a> {
    Fault {
        case,
        diagnose: Some(diagnose),
        lasts: HANGING_FAULT,
        refused_after: HANGING_MESSAGE_TIMEOUT + Duration::from_secs(2),
        answered_within: HANGING_MESSAGE_TIMEOUT + Duration::from_secs(3),
        recovered_within: HANGING_RECOVERY_LIMIT,
        may_flap: true,
    }
}

/// Probes the broker on its own port and through the proxy every two seconds, from the start
/// of a case to its end: a case that does not recover prints the timeline, which tells a
/// wedged broker (both fail) from a wedged proxy (only the proxy's fail) from a client that
/// does not get back (both answer).
struct Watch {
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Watch {
    fn start(broker: std::net::SocketAddr, proxy: std::net::SocketAddr) -> Watch {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (thread_lines, thread_stop) = (lines.clone(), stop.clone());
        let began = Instant::now();
        std::thread::spawn(move || {
            while !thread_stop.load(std::sync::atomic::Ordering::SeqCst) {
                let at = began.elapsed().as_secs_f64();
                let direct = kafka_answers(broker, Duration::from_secs(2));
                let through = kafka_answers(proxy, Duration::from_secs(2));
                thread_lines
                    .lock()
                    .unwrap()
                    .push(format!("{at:7.2}s broker: {direct}\n         proxy: {through}"));
                std::thread::sleep(Duration::from_secs(2));
            }
        });
        Watch { lines, stop }
    }

    fn timeline(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A durable broker, a proxy in front of it (every connection of hookpipe goes through it, the
/// broker advertising the proxy's port) and a server producing through the proxy.
fn behind_proxy(config: &str) -> (Broker, Proxy, TestApp) {
    let proxy_port = free_port();
    let broker = Broker::start_durable_behind(proxy_port);
    let proxy = Proxy::start(proxy_port, broker.bootstrap.parse().unwrap());
    let bootstrap = proxy.addr.to_string();
    let app = spawn_app(settings(config, &bootstrap), &bootstrap);
    (broker, proxy, app)
}

#[test]
fn a_broker_down_for_longer_than_the_request_timeout_is_recovered_from_under_load() {
    let mut broker = Broker::start_durable();
    let app = spawn_app(settings(CONFIG, &broker.bootstrap), &broker.bootstrap);
    let request_timeout = Duration::from_millis(app.settings.server.request_timeout_ms);
    let lasts = request_timeout + Duration::from_secs(2);
    let case = format!(
        "broker killed (SIGKILL) under load, restarted after {} s (request timeout {} s)",
        lasts.as_secs(),
        request_timeout.as_secs()
    );
    let broker = RefCell::new(&mut broker);
    outage_under_load(
        &app,
        &Fault::closing(&case, lasts),
        || broker.borrow_mut().kill(),
        || broker.borrow_mut().restart(),
    );
}

#[test]
fn a_blackholed_connection_to_the_broker_is_recovered_from_under_load() {
    let (broker, proxy, app) = behind_proxy(&hanging_config());
    let watch = Watch::start(broker.addr(), proxy.addr);
    let diagnose = || format!("{}\ntimeline:\n{}", proxy.state(), watch.timeline());
    let case = format!(
        "connection to the broker blackholed for {} s (bytes dropped, nothing closed; message timeout {} s)",
        HANGING_FAULT.as_secs(),
        HANGING_MESSAGE_TIMEOUT.as_secs()
    );
    outage_under_load(
        &app,
        &hanging(&case, &diagnose),
        || proxy.blackhole(),
        || proxy.restore(),
    );
    no_broker_panics(&broker, &case);
}

#[test]
fn a_broker_slower_than_the_message_timeout_is_refused_then_recovered_from_under_load() {
    let (broker, proxy, app) = behind_proxy(&hanging_config());
    let watch = Watch::start(broker.addr(), proxy.addr);
    let diagnose = || format!("{}\ntimeline:\n{}", proxy.state(), watch.timeline());
    // Each way, so a round trip takes three message timeouts.
    let latency = HANGING_MESSAGE_TIMEOUT * 3 / 2;
    let case = format!(
        "broker slower than the message timeout for {} s (+{:.1} s each way; message timeout {} s)",
        HANGING_FAULT.as_secs(),
        latency.as_secs_f64(),
        HANGING_MESSAGE_TIMEOUT.as_secs()
    );
    outage_under_load(
        &app,
        &hanging(&case, &diagnose),
        || proxy.set_latency(latency),
        || proxy.set_latency(Duration::ZERO),
    );
    no_broker_panics(&broker, &case);
}

/// Tansu 0.6 panics on a producer epoch it never issued (what librdkafka's idempotent producer
/// bumps to locally after a timeout with messages in flight), in the one task that serves its
/// storage: from then on it answers no request that needs storage, from any client, until it is
/// restarted. hookpipe replaces a handle whose delivery timed out before that epoch goes out, the
/// state topics' handle as the pages' (README, "Broker outages").
fn no_broker_panics(broker: &Broker, case: &str) {
    let log = broker.log();
    assert_eq!(
        log.matches("panicked").count(),
        0,
        "{case}: the broker panicked (an epoch it never issued?):\n{log}"
    );
}

/// Latency each way of the slow broker that stays within the message timeout (5 s by default).
const SLOW: Duration = Duration::from_millis(600);

#[test]
fn a_slow_broker_within_the_message_timeout_costs_latency_not_refusals() {
    let (_broker, proxy, app) = behind_proxy(CONFIG);
    let load = Load::start(app.addr, app.hook_path("load"));
    let began = Instant::now();
    load.wait_for_successes(began, 30, Duration::from_secs(30), "before the broker is slowed");
    let slow_at = Instant::now();
    proxy.set_latency(SLOW);
    load.wait_for_successes(slow_at, 20, Duration::from_secs(40), "while the broker is slow");
    let fast_at = Instant::now();
    proxy.set_latency(Duration::ZERO);
    load.wait_for_successes(fast_at, 20, Duration::from_secs(30), "once the broker is fast again");
    let (sent, readiness) = load.finish();

    let refused: Vec<&Sent> = sent.iter().filter(|s| s.status != 204).collect();
    assert!(
        refused.is_empty(),
        "a broker slower by {SLOW:?} each way, within the message timeout, refuses nothing: {refused:?}"
    );
    // Requests started while it was slow went through the delay (a lower bound, not a speed).
    let slowed: Vec<Duration> = sent
        .iter()
        .filter(|s| s.started >= slow_at && s.finished <= fast_at)
        .map(|s| s.finished - s.started)
        .collect();
    assert!(!slowed.is_empty(), "requests were answered while the broker was slow");
    let quickest = slowed.iter().min().unwrap();
    assert!(
        *quickest >= SLOW * 2,
        "every request waited at least one slowed round trip: {quickest:?}"
    );
    let not_ready: Vec<&(Instant, u16)> = readiness.iter().filter(|(_, status)| *status != 200).collect();
    assert!(
        not_ready.is_empty(),
        "/readyz stays 200 with a slow broker: {not_ready:?}"
    );
    let first_fast = sent
        .iter()
        .filter(|s| s.started >= fast_at)
        .map(|s| s.finished)
        .min()
        .unwrap();

    let acknowledged: Vec<&Sent> = sent.iter().collect();
    let (lost, duplicates, read_back) = lost_and_duplicated(&app, &acknowledged);
    let case = format!(
        "broker slow (+{:.1} s each way, within the 5 s message timeout)",
        SLOW.as_secs_f64()
    );
    Row {
        case: &case,
        ok: sent.len(),
        refused: 0,
        other: 0,
        lost: lost.len(),
        duplicates,
        recovered: Some(first_fast - fast_at),
    }
    .print();
    eprintln!(
        "{case}: {} requests while slow, the quickest {quickest:?}, the slowest {:?}",
        slowed.len(),
        slowed.iter().max().unwrap()
    );
    assert_none_lost(&case, &lost, &read_back);
}

#[test]
fn a_full_producer_queue_is_answered_503_with_retry_after_and_loses_nothing() {
    // One record a page: every request publishes at once (no group commit), so the pages in
    // flight are as many as the requests, over the queue's two.
    let config = format!("{CONFIG}page_size = 1\n[kafka]\nqueue_max_messages = 2\n");
    let (_broker, proxy, app) = behind_proxy(&config);
    let load = Load::start(app.addr, app.hook_path("load"));
    let began = Instant::now();
    load.wait_for_successes(began, 20, Duration::from_secs(30), "before the queue fills");
    // A slower broker keeps pages in the queue: the four senders need four places.
    let slow_at = Instant::now();
    proxy.set_latency(Duration::from_millis(300));
    let deadline = slow_at + Duration::from_secs(40);
    while load.answered_started_after(slow_at, 503) < 20 || load.answered_started_after(slow_at, 204) < 10 {
        assert!(
            Instant::now() < deadline,
            "no full queue: {} 503s and {} 204s in 40 s",
            load.answered_started_after(slow_at, 503),
            load.answered_started_after(slow_at, 204)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let drained_at = Instant::now();
    proxy.set_latency(Duration::ZERO);
    load.wait_for_successes(drained_at, 20, Duration::from_secs(30), "once the queue drains");
    let queue_depth_metric = request(app.addr, "GET", "/metrics", &[], b"").text();
    let (sent, readiness) = load.finish();

    for s in &sent {
        assert!(
            s.status == 204 || s.status == 503,
            "only 204 or 503 with a full queue: {s:?}"
        );
        if s.status == 503 {
            assert!(s.retry_after, "a 503 carries Retry-After: {s:?}");
        }
    }
    // The broker was never away: the 503s are the queue's, and /readyz says so by staying 200.
    let not_ready: Vec<&(Instant, u16)> = readiness.iter().filter(|(_, status)| *status != 200).collect();
    assert!(
        not_ready.is_empty(),
        "/readyz stays 200 while the queue is full: {not_ready:?}"
    );
    let first_after = sent
        .iter()
        .filter(|s| s.status == 204 && s.started >= drained_at)
        .map(|s| s.finished)
        .min()
        .unwrap();
    let acknowledged: Vec<&Sent> = sent.iter().filter(|s| s.status == 204).collect();
    let (lost, duplicates, read_back) = lost_and_duplicated(&app, &acknowledged);
    let refused = sent.len() - acknowledged.len();
    Row {
        case: "producer queue full (queue_max_messages = 2, broker +0.3 s each way, 4 senders)",
        ok: acknowledged.len(),
        refused,
        other: 0,
        lost: lost.len(),
        duplicates,
        recovered: Some(first_after - drained_at),
    }
    .print();
    eprintln!(
        "producer queue full: hookpipe_producer_queue_depth at the end {:?}",
        metric(&queue_depth_metric, "hookpipe_producer_queue_depth")
    );
    assert_none_lost("producer queue full", &lost, &read_back);
}

// ---- hookpipe's own faults: `hookpipe serve` processes ----

/// The listener of the serve processes (its public id fixed in the configuration).
const PATH: &str = "/hooks/chaosloadlistener000001";
/// Closed-loop senders of the process cases.
const SENDERS: usize = 4;
/// Pause of each sender between two requests.
const PAUSE: Duration = Duration::from_millis(20);
/// Upper bound on each sender's requests.
const MAX_REQUESTS_PER_SENDER: usize = 5000;

/// A `hookpipe serve` configuration written into `dir` (with `server` and `kafka` lines added
/// to those sections), and the same settings parsed (to read the pages back).
fn serve_config(dir: &TempDir, bootstrap: &str, server: &str, kafka: &str) -> (PathBuf, Settings) {
    let topic = format!("chaos.pages.{}", uuid::Uuid::new_v4().simple());
    let text = format!(
        r#"
[server]
public_id_secret = "chaos-test-secret-0123456789"
workers = 1
{server}
[kafka]
pages_topic = "{topic}"
topic_partitions = 1
{kafka}
[pipeline]
page_linger_ms = 0
[[listeners]]
id = "load"
public_id = "chaosloadlistener000001"
rate_limit = {{ capacity = 100000, refill_per_sec = 100000 }}
"#
    );
    let path = dir.0.join("hookpipe.toml");
    std::fs::write(&path, &text).unwrap();
    let settings = Settings::from_toml_and_env(&text, [("HOOKPIPE_KAFKA__BROKERS".to_string(), bootstrap.to_string())])
        .expect("test configuration is valid");
    (path, settings)
}

/// What the requests of a process load got, and what Kafka holds of the 2xx ones.
struct Tally {
    ok: usize,
    refused: usize,
    /// Connections refused (nothing listening).
    not_listening: usize,
    /// Connection errors after connecting (reset, closed early) and any other status.
    broken: Vec<String>,
    /// 2xx requests with a record missing from the topic.
    lost: Vec<String>,
    duplicates: usize,
    /// How far the topic was read.
    read_back: ReadBack,
}

impl Tally {
    fn of(settings: &Settings, bootstrap: &str, sent: &[ProcessSent]) -> Tally {
        let stored = stored_records(settings, bootstrap, &settings.kafka.pages_topic);
        let mut tally = Tally {
            ok: 0,
            refused: 0,
            not_listening: 0,
            broken: Vec::new(),
            lost: Vec::new(),
            duplicates: 0,
            read_back: stored.read_back.clone(),
        };
        for request in sent {
            match &request.outcome {
                Outcome::Answered { status, .. } if (200..300).contains(status) => tally.ok += 1,
                Outcome::Answered { status: 503, .. } => tally.refused += 1,
                Outcome::Answered { status, .. } => tally.broken.push(format!("status {status}")),
                Outcome::ConnectionError(error) if error.contains("refused") => tally.not_listening += 1,
                Outcome::ConnectionError(error) => tally.broken.push(error.clone()),
            }
        }
        for request in sent {
            let Some(id) = request.accepted_id() else {
                continue;
            };
            let markers: Vec<&str> = stored.get(id).iter().filter_map(|data| data["m"].as_str()).collect();
            if !request.markers.iter().all(|marker| markers.contains(&marker.as_str())) {
                tally
                    .lost
                    .push(format!("{id}: expected {:?}, found {markers:?}", request.markers));
            }
            tally.duplicates += markers.len().saturating_sub(request.markers.len());
        }
        tally
    }

    fn print(&self, case: &str, recovered: Duration) {
        Row {
            case,
            ok: self.ok,
            refused: self.refused,
            other: self.not_listening + self.broken.len(),
            lost: self.lost.len(),
            duplicates: self.duplicates,
            recovered: Some(recovered),
        }
        .print();
        eprintln!(
            "{case}: {} connections refused (nothing listening), {} broken: {:?}",
            self.not_listening,
            self.broken.len(),
            &self.broken[..self.broken.len().min(5)]
        );
    }
}

/// Posts one request until it is answered 2xx; the time that took.
fn until_accepted(instance: &Instance, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if let Ok(answer) = send(instance.addr(), "POST", PATH, br#"[{"m":"probe"}]"#) {
            if (200..300).contains(&answer.status) {
                return started.elapsed();
            }
        }
        assert!(
            started.elapsed() < limit,
            "no 2xx within {limit:?}; log:\n{}",
            instance.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn hookpipe_killed_under_load_costs_only_its_in_flight_requests_and_serves_again_when_restarted() {
    let broker = Broker::start();
    let dir = TempDir::new("hookpipe-chaos");
    let (config, settings) = serve_config(&dir, &broker.bootstrap, "", "");
    let port = free_port();
    let mut instance = Instance::start(&config, &broker.bootstrap, port, dir.0.join("serve-0.log"));
    instance.wait_ready(Duration::from_secs(60));
    let load_started = Instant::now();
    let load = ProcessLoad::start(instance.addr(), PATH, SENDERS, PAUSE, MAX_REQUESTS_PER_SENDER);
    until_accepted(&instance, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(1));
    let killed_at = load_started.elapsed();
    instance.kill();
    let restarted = Instant::now();
    let restarted_at = load_started.elapsed();
    instance = Instance::start(&config, &broker.bootstrap, port, dir.0.join("serve-1.log"));
    instance.wait_ready(Duration::from_secs(60));
    let recovered = until_accepted(&instance, Duration::from_secs(30)) + restarted.elapsed();
    // The load goes on against the restarted instance for a while.
    std::thread::sleep(Duration::from_secs(2));
    let sent = load.stop();

    let tally = Tally::of(&settings, &broker.bootstrap, &sent);
    let case = "hookpipe killed (SIGKILL) under load, restarted at once";
    // `recovered` ran until the restarted instance answered a probe 2xx, then longer: the 2xx
    // of the load came after it.
    tally.print(case, recovered);
    let ok_before = sent
        .iter()
        .filter(|s| s.sent_at < killed_at && s.accepted_id().is_some())
        .count();
    let ok_after = sent
        .iter()
        .filter(|s| s.sent_at > killed_at && s.accepted_id().is_some())
        .count();
    assert!(
        ok_before > 0 && ok_after > 0,
        "2xx before the kill ({ok_before}) and after the restart ({ok_after})"
    );
    // What breaks is what the killed process held: the requests in flight at the kill (at most
    // one a sender), and those that reached its socket before the kernel closed it (on a loaded
    // machine the teardown can outlast a sender's pause). None sent to the restarted instance
    // (its starting server handing over to the full one) breaks.
    let broken = |s: &&ProcessSent| matches!(&s.outcome, Outcome::ConnectionError(error) if !error.contains("refused"));
    let in_flight_at_kill = sent.iter().filter(broken).filter(|s| s.sent_at < killed_at).count();
    assert!(
        in_flight_at_kill <= SENDERS,
        "only the requests in flight at the kill break (at most one a sender): {:?}",
        tally.broken
    );
    let broken_after: Vec<_> = sent
        .iter()
        .filter(broken)
        .filter(|s| s.sent_at >= restarted_at)
        .map(|s| (s.sent_at, &s.outcome))
        .collect();
    assert!(
        broken_after.is_empty(),
        "requests to the restarted instance broke (restarted at {restarted_at:?}): {broken_after:?}"
    );
    assert_none_lost(case, &tally.lost, &tally.read_back);
}

/// `server.drain_ms` of the SIGTERM case.
const DRAIN: Duration = Duration::from_secs(2);
/// Latency each way of the broker during the SIGTERM case: every request started after it is
/// set takes longer than the drain, so the requests in flight when the instance stops accepting
/// are many.
const SIGTERM_LATENCY: Duration = Duration::from_millis(1500);

#[test]
fn sigterm_under_load_finishes_the_in_flight_requests_2xx_and_resets_nothing() {
    let proxy_port = free_port();
    let broker = Broker::start_durable_behind(proxy_port);
    let proxy = Proxy::start(proxy_port, broker.bootstrap.parse().unwrap());
    let bootstrap = proxy.addr.to_string();
    let dir = TempDir::new("hookpipe-chaos");
    let server = format!("drain_ms = {}\nshutdown_timeout_secs = 20", DRAIN.as_millis());
    let (config, settings) = serve_config(&dir, &bootstrap, &server, "");
    let port = free_port();
    let mut instance = Instance::start(&config, &bootstrap, port, dir.0.join("serve-0.log"));
    instance.wait_ready(Duration::from_secs(60));
    let load_started = Instant::now();
    let load = ProcessLoad::start(instance.addr(), PATH, SENDERS, PAUSE, MAX_REQUESTS_PER_SENDER);
    until_accepted(&instance, Duration::from_secs(30));
    let slowed_at = load_started.elapsed();
    proxy.set_latency(SIGTERM_LATENCY);
    std::thread::sleep(Duration::from_secs(1));
    let terminated_at = load_started.elapsed();
    instance.terminate();
    // The senders start no request past the middle of the drain period (as a balancer that took
    // the instance out would), so every request was accepted before the instance stopped
    // accepting; those in flight then must still be answered.
    std::thread::sleep(DRAIN / 2);
    let sent = load.stop();
    let status = instance.wait_exit(Duration::from_secs(40));
    assert!(
        status.success(),
        "exits cleanly after SIGTERM: {status}; log:\n{}",
        instance.log_text()
    );
    proxy.set_latency(Duration::ZERO);

    let tally = Tally::of(&settings, &broker.bootstrap, &sent);
    let restarted = Instant::now();
    instance = Instance::start(&config, &bootstrap, port, dir.0.join("serve-1.log"));
    let recovered = until_accepted(&instance, Duration::from_secs(60)) + restarted.elapsed();
    let case = format!(
        "SIGTERM under load (drain {} s, broker +{:.1} s each way so requests are in flight)",
        DRAIN.as_secs(),
        SIGTERM_LATENCY.as_secs_f64()
    );
    // Seconds to recover: from the restart of the stopped instance to its first 2xx.
    tally.print(&case, recovered);
    // Started after the latency took effect and less than a round trip before the drain ended:
    // still in flight when the instance stopped accepting.
    let round_trip = SIGTERM_LATENCY * 2;
    let in_flight_at_stop = sent
        .iter()
        .filter(|s| s.sent_at >= slowed_at && s.sent_at + round_trip > terminated_at + DRAIN)
        .count();
    eprintln!("{case}: {in_flight_at_stop} requests in flight when the instance stopped accepting");
    assert!(
        in_flight_at_stop > 0,
        "requests were in flight when the instance stopped accepting"
    );
    assert!(
        tally.broken.is_empty() && tally.not_listening == 0,
        "{case}: every request accepted before the stop is answered, none reset: {:?}",
        tally.broken
    );
    assert_eq!(tally.refused, 0, "{case}: no 503 during the drain");
    assert_eq!(tally.ok, sent.len(), "{case}: every request 2xx");
    assert_none_lost(&case, &tally.lost, &tally.read_back);
}

/// Every few hundred milliseconds over `span`, `check` holds (a state that must last, sampled).
fn holds_throughout(span: Duration, mut check: impl FnMut()) {
    let until = Instant::now() + span;
    while Instant::now() < until {
        check();
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn serve_without_its_state_topic_answers_health_and_503_and_serves_once_the_topic_exists() {
    let broker = Broker::start();
    let dir = TempDir::new("hookpipe-chaos");
    let (config, settings) = serve_config(
        &dir,
        &broker.bootstrap,
        "admin_token = \"chaos-admin-token-0123456789\"",
        "create_topics = false",
    );
    let kafka = &settings.kafka;
    let runtime = all_topics_but_the_state_topic(&settings, &broker.bootstrap);
    let port = free_port();
    let instance = Instance::start(&config, &broker.bootstrap, port, dir.0.join("serve-0.log"));
    let addr = instance.addr();
    wait_healthy(&instance);

    // What works without the state topic: /healthz, /readyz (503, "starting"), /metrics; what
    // does not: webhooks (even of listeners of the configuration file) and the API, 503 with
    // Retry-After.
    let mut refused = 0;
    let mut other = 0;
    holds_throughout(Duration::from_secs(3), || {
        assert_eq!(send(addr, "GET", "/healthz", b"").unwrap().status, 200);
        let readyz = send(addr, "GET", "/readyz", b"").unwrap();
        assert_eq!(readyz.status, 503);
        assert!(String::from_utf8_lossy(&readyz.body).contains("\"starting\""));
        assert_eq!(send(addr, "GET", "/metrics", b"").unwrap().status, 200);
        let api = request(
            addr,
            "GET",
            "/api/v1/listeners",
            &[("Authorization", "Bearer chaos-admin-token-0123456789")],
            b"",
        );
        assert_eq!(api.status, 503, "the API waits for the state topic");
        let hook = send(addr, "POST", PATH, br#"[{"m":"before-the-state-topic"}]"#).unwrap();
        if hook.status == 503 {
            assert!(hook.header("retry-after").is_some());
            refused += 1;
        } else {
            other += 1;
        }
    });
    assert_eq!(other, 0, "webhooks are 503 while the state topic is missing");

    let created = Instant::now();
    runtime
        .block_on(create_missing(
            kafka,
            &broker.bootstrap,
            &[TopicSpec::compacted(&kafka.state_topic)],
        ))
        .expect("creating the state topic");
    let deadline = created + Duration::from_secs(45);
    let (request_id, recovered) = loop {
        let answer = send(addr, "POST", PATH, br#"[{"m":"after-the-state-topic"}]"#).unwrap();
        if (200..300).contains(&answer.status) {
            break (answer.header("x-request-id").unwrap().to_string(), created.elapsed());
        }
        assert_eq!(answer.status, 503, "503 until it serves");
        refused += 1;
        assert!(
            Instant::now() < deadline,
            "not serving 45 s after the state topic appeared; log:\n{}",
            instance.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(send(addr, "GET", "/readyz", b"").unwrap().status, 200);
    let stored = stored_records(&settings, &broker.bootstrap, &kafka.pages_topic);
    let records = stored.get(&request_id);
    Row {
        case: "state topic missing at start (create_topics = false), created 3 s later",
        ok: 1,
        refused,
        other,
        lost: usize::from(records.is_empty()),
        duplicates: records.len().saturating_sub(1),
        recovered: Some(recovered),
    }
    .print();
    assert_eq!(
        records.len(),
        1,
        "the 2xx request's record is in Kafka once ({}): {:?}",
        stored.read_back,
        stored.by_request
    );
    assert_eq!(records[0]["m"], "after-the-state-topic");
}

/// Creates every topic but the state topic (for a serve started with `create_topics = false`,
/// which then answers from its starting server until the state topic exists); the runtime to
/// create the state topic with later.
fn all_topics_but_the_state_topic(settings: &Settings, bootstrap: &str) -> tokio::runtime::Runtime {
    let kafka = &settings.kafka;
    let present = [
        TopicSpec::pages(&kafka.pages_topic),
        debug_topic(kafka),
        TopicSpec::compacted(&kafka.errors_topic),
        TopicSpec::pages(&kafka.quarantine_topic),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(create_missing(kafka, bootstrap, &present))
        .expect("creating the other topics");
    runtime
}

/// Waits (up to 20 s) until `instance` answers `/healthz`: its starting server is up.
fn wait_healthy(instance: &Instance) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while send(instance.addr(), "GET", "/healthz", b"")
        .map(|answer| answer.status)
        .ok()
        != Some(200)
    {
        assert!(Instant::now() < deadline, "no /healthz; log:\n{}", instance.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Senders of the handover case: many, with almost no pause, so that connections are queued in
/// the starting server when it hands over.
const HANDOVER_SENDERS: usize = 16;

#[test]
fn the_handover_from_the_starting_server_answers_every_connection() {
    let broker = Broker::start();
    let dir = TempDir::new("hookpipe-chaos");
    let (config, settings) = serve_config(&dir, &broker.bootstrap, "", "create_topics = false");
    let runtime = all_topics_but_the_state_topic(&settings, &broker.bootstrap);
    let port = free_port();
    let instance = Instance::start(&config, &broker.bootstrap, port, dir.0.join("serve-0.log"));
    let addr = instance.addr();
    wait_healthy(&instance);
    // The load runs on the starting server (503s), across the handover, and on the full server.
    let load = ProcessLoad::start(
        addr,
        PATH,
        HANDOVER_SENDERS,
        Duration::from_millis(1),
        MAX_REQUESTS_PER_SENDER,
    );
    std::thread::sleep(Duration::from_secs(1));
    let created = Instant::now();
    runtime
        .block_on(create_missing(
            &settings.kafka,
            &broker.bootstrap,
            &[TopicSpec::compacted(&settings.kafka.state_topic)],
        ))
        .expect("creating the state topic");
    let recovered = until_accepted(&instance, Duration::from_secs(45)) + created.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let sent = load.stop();

    let tally = Tally::of(&settings, &broker.bootstrap, &sent);
    tally.print("starting server handing over to the full one under load", recovered);
    assert!(tally.ok > 0 && tally.refused > 0, "503 before the handover, 2xx after");
    assert!(
        tally.broken.is_empty() && tally.not_listening == 0,
        "every connection across the handover is answered: {} refused, {:?}; log:\n{}",
        tally.not_listening,
        tally.broken,
        instance.log_text()
    );
    assert_none_lost("handover", &tally.lost, &tally.read_back);
}
