//! Rate limits that hold for the whole fleet (issue #14 §1): three `hookpipe serve` processes on
//! one real broker (Tansu) share one listener's bucket through their heartbeats. Requests sent
//! round robin, then skewed 80/15/5, for a bounded time: the fleet accepts at most
//! `capacity + rate × t + N` (the bound the README documents) and not much less than
//! `rate × t` (it does not starve). An instance that leaves is dropped by the others at once.
//! Figures are printed; only the bounds are asserted. An instance without the fleet topic starts
//! at once, as a single instance.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookpipe::config::Settings;
use hookpipe::kafka::topics::{create_missing, owned_topics, TopicRole, TopicSpec};

use crate::helpers::broker::{free_port, Broker};
use crate::helpers::fleet::{send, Instance, TempDir};

/// The listener's path (its public id is fixed in the configuration).
const PATH: &str = "/hooks/fleetratelimitlistener01";
/// The listener's bucket, for the whole fleet.
const CAPACITY: u64 = 50;
const RATE: u64 = 100;
/// Instances in the fleet.
const INSTANCES: usize = 3;
/// How long each distribution is sent.
const PHASE: Duration = Duration::from_secs(5);
/// Sender threads (closed loop, no pause: the offered load is several times the rate).
const SENDERS: usize = 6;

fn write_config(dir: &TempDir) -> std::path::PathBuf {
    write_config_with(dir, "")
}

/// The configuration, with more `[kafka]` keys.
fn write_config_with(dir: &TempDir, kafka: &str) -> std::path::PathBuf {
    let text = format!(
        r#"
[server]
public_id_secret = "fleet-rate-limit-secret-0123456789"
workers = 1
drain_ms = 100
shutdown_timeout_secs = 5
[server.fleet_rate_limit]
# Far beyond the test: an instance that leaves is dropped by its tombstone, or not at all.
member_timeout_ms = 60000
[kafka]
topic_partitions = 1
{kafka}
[pipeline]
page_linger_ms = 0
[[listeners]]
id = "limited"
public_id = "fleetratelimitlistener01"
[listeners.rate_limit]
capacity = {CAPACITY}
refill_per_sec = {RATE}
"#
    );
    let path = dir.0.join("hookpipe.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The value of an unlabelled series in `addr`'s `/metrics`, or of the first series of `name`
/// whose labels contain `labels`.
fn metric(addr: SocketAddr, name: &str, labels: &str) -> Option<f64> {
    let answer = send(addr, "GET", "/metrics", b"").ok()?;
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    text.lines()
        .filter(|line| line.starts_with(name) && !line.starts_with('#'))
        .filter(|line| line[name.len()..].starts_with([' ', '{']) && line.contains(labels))
        .find_map(|line| line.rsplit(' ').next()?.parse().ok())
}

fn members(addr: SocketAddr) -> usize {
    metric(addr, "hookpipe_rate_limit_fleet_members", "").unwrap_or(0.0) as usize
}

/// Waits until every instance of `addrs` counts `count` members; how long it took.
fn wait_members(addrs: &[SocketAddr], count: usize, timeout: Duration) -> Duration {
    let start = Instant::now();
    while !addrs.iter().all(|addr| members(*addr) == count) {
        let seen: Vec<usize> = addrs.iter().map(|addr| members(*addr)).collect();
        assert!(
            start.elapsed() < timeout,
            "members {seen:?}, not all {count}, after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

/// What one distribution got.
#[derive(Debug)]
struct Phase {
    sent: usize,
    accepted: usize,
    /// Accepted per instance.
    by_instance: Vec<usize>,
    /// From the first request sent to the last answer read.
    elapsed: Duration,
}

/// Sends to `addrs` for `PHASE`, request `n` of the fleet going to `pick(n)`.
fn run_phase(addrs: &[SocketAddr], pick: fn(usize) -> usize) -> Phase {
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let threads: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (next, stop, addrs) = (next.clone(), stop.clone(), addrs.to_vec());
            std::thread::spawn(move || {
                let mut results = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let target = pick(next.fetch_add(1, Ordering::Relaxed));
                    let status = send(addrs[target], "POST", PATH, b"{\"a\":1}").map(|answer| answer.status);
                    results.push((target, status.ok()));
                }
                results
            })
        })
        .collect();
    std::thread::sleep(PHASE);
    stop.store(true, Ordering::Relaxed);
    let results: Vec<(usize, Option<u16>)> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let elapsed = start.elapsed();
    let mut by_instance = vec![0; addrs.len()];
    for (target, status) in &results {
        if status.is_some_and(|status| (200..300).contains(&status)) {
            by_instance[*target] += 1;
        }
    }
    let unexpected: Vec<u16> = results
        .iter()
        .filter_map(|(_, status)| *status)
        .filter(|status| !(200..300).contains(status) && *status != 429)
        .collect();
    assert!(unexpected.is_empty(), "only 2xx and 429 expected: {unexpected:?}");
    Phase {
        sent: results.len(),
        accepted: by_instance.iter().sum(),
        by_instance,
        elapsed,
    }
}

/// The bound of the README: capacity + rate × t + one token per instance.
fn assert_within_bound(name: &str, phase: &Phase) {
    let t = phase.elapsed.as_secs_f64();
    let allowed = CAPACITY as f64 + RATE as f64 * t;
    let bound = allowed + INSTANCES as f64;
    eprintln!(
        "{name}: sent {} accepted {} {:?} in {t:.2} s; allowed capacity + rate × t = {allowed:.0}, bound {bound:.0}, accepted/allowed = {:.2}",
        phase.sent,
        phase.accepted,
        phase.by_instance,
        phase.accepted as f64 / allowed
    );
    assert!(
        phase.accepted as f64 <= bound,
        "{name}: the fleet accepted {} > {bound:.0}",
        phase.accepted
    );
    let reachable = (phase.sent as f64).min(RATE as f64 * t);
    assert!(
        phase.accepted as f64 >= 0.7 * reachable,
        "{name}: the fleet accepted only {} of the {reachable:.0} it could (starving)",
        phase.accepted
    );
}

#[test]
fn three_instances_hold_one_bucket_round_robin_and_skewed() {
    let broker = Broker::start();
    let dir = TempDir::new("hookpipe-fleet-rate-limit");
    let config = write_config(&dir);
    let mut instances: Vec<Instance> = (0..INSTANCES)
        .map(|index| {
            Instance::start(
                &config,
                &broker.bootstrap,
                free_port(),
                dir.0.join(format!("serve-{index}.log")),
            )
        })
        .collect();
    for instance in &instances {
        instance.wait_ready(Duration::from_secs(60));
    }
    let addrs: Vec<SocketAddr> = instances.iter().map(Instance::addr).collect();
    let settled = wait_members(&addrs, INSTANCES, Duration::from_secs(20));
    eprintln!("3 members seen by every instance {settled:?} after the last was ready");
    // Members are seen before they count each other: let every one be counted by all (a few
    // heartbeats), so the window starts with the shares of a settled fleet.
    std::thread::sleep(Duration::from_secs(1));
    // Their heartbeats are acknowledged and read back (the lag is about a heartbeat period).
    for addr in &addrs {
        let acknowledged = metric(
            *addr,
            "hookpipe_rate_limit_fleet_heartbeats_total",
            "outcome=\"acknowledged\"",
        );
        let lag = metric(*addr, "hookpipe_rate_limit_fleet_heartbeat_lag_seconds", "");
        eprintln!("{addr}: heartbeats acknowledged {acknowledged:?}, lag {lag:?} s");
        assert!(
            acknowledged.is_some_and(|count| count > 0.0),
            "{addr}: {acknowledged:?}"
        );
        assert!(lag.is_some_and(|lag| lag < 3.0), "{addr}: lag {lag:?} s");
    }

    let round_robin = run_phase(&addrs, |n| n % 3);
    assert_within_bound("round robin", &round_robin);

    // 80/15/5: of every 20 requests, 16 to the first instance, 3 to the second, 1 to the third.
    let skewed = run_phase(&addrs, |n| match n % 20 {
        0..=15 => 0,
        16..=18 => 1,
        _ => 2,
    });
    assert_within_bound("skewed 80/15/5", &skewed);
    // Every instance accepted some: the small ones are not starved by the big one.
    assert!(skewed.by_instance.iter().all(|accepted| *accepted > 0), "{skewed:?}");

    // The shares of every instance add up to at most the bucket.
    let shares: Vec<f64> = addrs
        .iter()
        .map(|addr| metric(*addr, "hookpipe_rate_limit_fleet_share", "listener=\"limited\"").unwrap_or(f64::NAN))
        .collect();
    eprintln!("shares after the skewed load: {shares:?}");
    assert!(shares.iter().sum::<f64>() <= 1.0 + 1e-9, "{shares:?}");

    // A graceful stop publishes a tombstone: the others re-divide without waiting for the member
    // timeout (a minute here, so the tombstone is the only way out within the wait).
    instances[2].terminate();
    let left = wait_members(&addrs[..2], 2, Duration::from_secs(20));
    eprintln!("a leaving instance dropped by the others {left:?} after its SIGTERM");
    instances[2].wait_exit(Duration::from_secs(20));
}

/// A fleet topic missing at start (`kafka.create_topics = false`, every other topic there): the
/// instance sees it is missing and serves at once with whole buckets, as a single instance, and
/// does not wait for a join that cannot come (it waited 5 s, the join timeout, before).
#[test]
fn a_missing_fleet_topic_does_not_hold_the_start() {
    let broker = Broker::start();
    let dir = TempDir::new("hookpipe-fleet-missing");
    let run = uuid::Uuid::new_v4().simple().to_string();
    let kafka = format!(
        "create_topics = false\npages_topic = \"fleet-missing.pages.{run}\"\nfleet_topic = \"fleet-missing.fleet.{run}\""
    );
    let config = write_config_with(&dir, &kafka);
    let text = std::fs::read_to_string(&config).unwrap();
    let settings = Settings::from_toml_and_env(
        &text,
        [("HOOKPIPE_KAFKA__BROKERS".to_string(), broker.bootstrap.clone())],
    )
    .expect("test configuration is valid");
    let present: Vec<TopicSpec> = owned_topics(&settings)
        .into_iter()
        .filter(|row| row.role != TopicRole::Fleet)
        .map(|row| row.spec)
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(create_missing(&settings.kafka, &broker.bootstrap, &present))
        .expect("creating every topic but the fleet topic");

    let started = Instant::now();
    let instance = Instance::start(&config, &broker.bootstrap, free_port(), dir.0.join("serve.log"));
    instance.wait_ready(Duration::from_secs(60));
    eprintln!("ready {:?} after the start without a fleet topic", started.elapsed());
    let log = instance.log_text();
    assert!(
        log.contains("cannot open the fleet topic"),
        "the missing topic is logged:\n{log}"
    );
    assert!(
        !log.contains("not joined to the fleet yet"),
        "the start waited for a join that could not come:\n{log}"
    );
    // Whole buckets: the listener's capacity is there at once, as for a single instance.
    let accepted = (0..CAPACITY)
        .filter(|_| send(instance.addr(), "POST", PATH, br#"[{"n":1}]"#).is_ok_and(|answer| answer.status < 300))
        .count();
    assert_eq!(accepted as u64, CAPACITY, "log:\n{}", instance.log_text());
    assert_eq!(members(instance.addr()), 1);
}
