//! Three `hookpipe serve` processes (the built binary) on one real broker (Tansu) behind a real
//! load balancer (haproxy on loopback, health-checking `/readyz`): a rolling restart under
//! steady load answers every request 2xx and loses nothing; a SIGKILLed instance costs only
//! the requests in flight on it, and every request answered 2xx has all its records in Kafka.

use std::time::{Duration, Instant};

use crate::helpers::broker::{free_port, Broker};
use crate::helpers::fleet::{
    records_by_request, send, Haproxy, Instance, Load, Outcome, Sent, TempDir, RECORDS_PER_REQUEST,
};

/// The listener's path (its public id is fixed in the configuration).
const PATH: &str = "/hooks/balancerloadlistener0001";
/// Closed-loop senders: at most this many requests are in flight at any time.
const SENDERS: usize = 4;
/// Pause of each sender between two requests (steady, not saturating, load on two cores).
const PAUSE: Duration = Duration::from_millis(5);
/// Upper bound on each sender's requests, so the test is bounded in count as well as in time.
const MAX_REQUESTS_PER_SENDER: usize = 4000;
/// `server.drain_ms` of the test instances: ten health-check rounds of the balancer.
const DRAIN_MS: u64 = 2000;

/// The instances' configuration, written into `dir`, and the same settings parsed (to read
/// the pages topic back).
fn write_config(dir: &TempDir, bootstrap: &str) -> (std::path::PathBuf, hookpipe::config::Settings) {
    let topic = format!("balancer.pages.{}", uuid::Uuid::new_v4().simple());
    let text = format!(
        r#"
[server]
public_id_secret = "balancer-test-secret-0123456789"
workers = 1
drain_ms = {DRAIN_MS}
shutdown_timeout_secs = 10
[kafka]
pages_topic = "{topic}"
topic_partitions = 1
[[listeners]]
id = "load"
public_id = "balancerloadlistener0001"
# The bucket holds for the whole fleet: about five times the load of the senders (a few hundred
# requests a second), so that instances restarting and joining under a fleet limit are tested
# too, and no request is refused by it.
[listeners.rate_limit]
capacity = 2000
refill_per_sec = 2000
"#
    );
    let path = dir.0.join("hookpipe.toml");
    std::fs::write(&path, &text).unwrap();
    let settings = hookpipe::config::Settings::from_toml_and_env(
        &text,
        [("HOOKPIPE_KAFKA__BROKERS".to_string(), bootstrap.to_string())],
    )
    .expect("test configuration is valid");
    (path, settings)
}

/// Three ready instances behind haproxy, every server `UP`.
struct Fleet {
    broker: Broker,
    dir: TempDir,
    config: std::path::PathBuf,
    settings: hookpipe::config::Settings,
    instances: Vec<Instance>,
    haproxy: Haproxy,
    generation: usize,
}

impl Fleet {
    fn start() -> Fleet {
        let broker = Broker::start();
        let dir = TempDir::new("hookpipe-balancer");
        let (config, settings) = write_config(&dir, &broker.bootstrap);
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let instances: Vec<Instance> = ports
            .iter()
            .enumerate()
            .map(|(index, port)| {
                Instance::start(
                    &config,
                    &broker.bootstrap,
                    *port,
                    dir.0.join(format!("serve-{index}-0.log")),
                )
            })
            .collect();
        for instance in &instances {
            instance.wait_ready(Duration::from_secs(60));
        }
        let haproxy = Haproxy::start(&dir.0, &ports);
        for index in 0..instances.len() {
            haproxy.wait_status(&format!("s{index}"), "UP", Duration::from_secs(10));
        }
        Fleet {
            broker,
            dir,
            config,
            settings,
            instances,
            haproxy,
            generation: 0,
        }
    }

    /// Starts instance `index` again on its port and waits until the balancer has it back.
    fn restart(&mut self, index: usize) {
        self.generation += 1;
        let port = self.instances[index].port;
        let log = self.dir.0.join(format!("serve-{index}-{}.log", self.generation));
        self.instances[index] = Instance::start(&self.config, &self.broker.bootstrap, port, log);
        self.instances[index].wait_ready(Duration::from_secs(60));
        self.haproxy
            .wait_status(&format!("s{index}"), "UP", Duration::from_secs(10));
    }

    /// Asserts that every request answered 2xx has exactly its records in the pages topic.
    fn assert_every_accepted_request_in_kafka(&self, sent: &[Sent]) -> usize {
        let accepted: Vec<&Sent> = sent.iter().filter(|sent| sent.accepted_id().is_some()).collect();
        let (found, read_back) =
            records_by_request(&self.settings, &self.broker.bootstrap, &self.settings.kafka.pages_topic);
        let mut missing = Vec::new();
        for request in &accepted {
            let id = request.accepted_id().unwrap();
            let mut markers = found.get(id).cloned().unwrap_or_default();
            markers.sort();
            markers.dedup();
            let mut expected = request.markers.clone();
            expected.sort();
            if markers != expected {
                missing.push(format!("{id}: expected {expected:?}, found {markers:?}"));
            }
        }
        assert!(
            missing.is_empty(),
            "{} of {} requests answered 2xx lack records in Kafka ({read_back}), e.g. {:?}",
            missing.len(),
            accepted.len(),
            &missing[..missing.len().min(5)]
        );
        accepted.len()
    }
}

/// `status: count` of the non-2xx answers and connection errors, for failure messages.
fn failure_summary(failures: &[&Sent]) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for failure in failures {
        let key = match &failure.outcome {
            Outcome::Answered { status, .. } => status.to_string(),
            Outcome::ConnectionError(error) => format!("connection error: {error}"),
        };
        *counts.entry(key).or_default() += 1;
    }
    format!("{counts:?}")
}

#[test]
fn a_rolling_restart_under_load_answers_every_request_2xx_and_loses_nothing() {
    let mut fleet = Fleet::start();
    let load = Load::start(fleet.haproxy.addr, PATH, SENDERS, PAUSE, MAX_REQUESTS_PER_SENDER);
    std::thread::sleep(Duration::from_secs(1));
    let restarts_started = Instant::now();
    for index in 0..fleet.instances.len() {
        let server = format!("s{index}");
        let drain_started = Instant::now();
        fleet.instances[index].terminate();
        // The balancer takes it out because /readyz fails, while it still serves.
        fleet
            .haproxy
            .wait_status(&server, "DOWN", Duration::from_millis(DRAIN_MS * 3 / 4));
        let instance = &fleet.instances[index];
        let readyz = send(instance.addr(), "GET", "/readyz", b"").expect("a draining instance still answers");
        assert_eq!(readyz.status, 503, "a draining instance fails /readyz");
        assert!(String::from_utf8_lossy(&readyz.body).contains("\"draining\":true"));
        let direct = send(instance.addr(), "POST", PATH, br#"[{"m":"direct-while-draining"}]"#)
            .expect("a draining instance still serves");
        assert!(
            (200..300).contains(&direct.status),
            "a request reaching a draining instance is still served: {}",
            direct.status
        );
        assert!(
            drain_started.elapsed() < Duration::from_millis(DRAIN_MS),
            "the checks above ran inside the drain period"
        );
        let status = fleet.instances[index].wait_exit(Duration::from_secs(30));
        assert!(
            status.success(),
            "a drained instance exits cleanly: {status}; log:\n{}",
            fleet.instances[index].log_text()
        );
        assert!(
            drain_started.elapsed() >= Duration::from_millis(DRAIN_MS),
            "it served for the whole drain period before exiting"
        );
        fleet.restart(index);
        // Steady load on the full fleet before the next one goes.
        std::thread::sleep(Duration::from_millis(500));
    }
    let restarts_took = restarts_started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let sent = load.stop();

    let failures: Vec<&Sent> = sent.iter().filter(|sent| sent.accepted_id().is_none()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} requests through the balancer were not 2xx during the rolling restart: {}",
        failures.len(),
        sent.len(),
        failure_summary(&failures)
    );
    let during_restarts = sent
        .iter()
        .filter(|sent| sent.sent_at >= Duration::from_secs(1) && sent.sent_at <= Duration::from_secs(1) + restarts_took)
        .count();
    assert!(
        during_restarts >= 100,
        "the load ran through the restarts ({during_restarts} requests during {restarts_took:?})"
    );
    let accepted = fleet.assert_every_accepted_request_in_kafka(&sent);
    eprintln!(
        "rolling restart of 3 instances in {restarts_took:?}: {} requests, {accepted} answered 2xx \
         ({} records each, all read back from Kafka by request id), {} non-2xx, {} connection retries at haproxy",
        sent.len(),
        RECORDS_PER_REQUEST,
        failures.len(),
        fleet.haproxy.total("wretr"),
    );
}

#[test]
fn a_killed_instance_costs_only_its_in_flight_requests_and_every_2xx_is_in_kafka() {
    let mut fleet = Fleet::start();
    let load = Load::start(fleet.haproxy.addr, PATH, SENDERS, PAUSE, MAX_REQUESTS_PER_SENDER);
    std::thread::sleep(Duration::from_millis(1500));
    let killed_at = Instant::now();
    fleet.instances[1].kill();
    fleet.haproxy.wait_status("s1", "DOWN", Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(3));
    let after_kill_window = killed_at.elapsed();
    let sent = load.stop();

    let failures: Vec<&Sent> = sent.iter().filter(|sent| sent.accepted_id().is_none()).collect();
    for failure in &failures {
        match &failure.outcome {
            Outcome::ConnectionError(_) => {}
            Outcome::Answered { status, .. } => assert!(
                *status >= 500,
                "a request in flight on the killed instance gets a 5xx or a connection error, not {status}"
            ),
        }
    }
    assert!(
        failures.len() <= SENDERS,
        "only requests in flight on the killed instance fail (at most one per sender, {SENDERS}), got {}: {}",
        failures.len(),
        failure_summary(&failures)
    );
    let load_started_to_kill = Duration::from_millis(1500);
    let after_kill = sent
        .iter()
        .filter(|sent| sent.sent_at > load_started_to_kill + Duration::from_millis(500))
        .filter(|sent| sent.accepted_id().is_some())
        .count();
    assert!(
        after_kill >= 50,
        "the two survivors keep answering 2xx after the kill ({after_kill} in {after_kill_window:?})"
    );
    let accepted = fleet.assert_every_accepted_request_in_kafka(&sent);
    eprintln!(
        "SIGKILL of 1 of 3 instances under load: {} requests, {accepted} answered 2xx (all records in Kafka), \
         {} failed: {}",
        sent.len(),
        failures.len(),
        failure_summary(&failures)
    );
}
