//! Deduplication by delivery id (`dedup`) across a fleet: `hookpipe serve` processes on one
//! Tansu broker, each with its own `/metrics`. A copy of an accepted delivery gets the success
//! answer, marked, and is published nowhere — on the instance that took the first one, on
//! another, and on one started afterwards (which reads the dedup topic back); deliveries without
//! an id, and listeners without `dedup`, are published every time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hookpipe::kafka::tail::{StartAt, TopicReader};

use crate::helpers::broker::{free_port, Broker};
use crate::helpers::fleet::{Instance, TempDir};
use crate::helpers::http::{http_get, metric, request, Response};
use crate::helpers::signing::hmac_sha256_hex;

const SECRET: &str = "github-dedup-secret";
const DEDUP_PATH: &str = "/hooks/dedupgithublistener0001";
const PLAIN_PATH: &str = "/hooks/plaingithublistener0001";

fn write_config(dir: &TempDir) -> std::path::PathBuf {
    let text = format!(
        r#"
[server]
public_id_secret = "dedup-test-secret-0123456789"
workers = 1
[kafka]
topic_partitions = 1
[[listeners]]
id = "github"
public_id = "dedupgithublistener0001"
verification = {{ type = "github", secrets = ["{SECRET}"] }}
dedup = {{ window_secs = 3600 }}
response = {{ status = 200, body = '{{"duplicate": {{{{duplicate}}}}, "records": {{{{record_count}}}} }}' }}
[[listeners]]
id = "plain"
public_id = "plaingithublistener0001"
verification = {{ type = "github", secrets = ["{SECRET}"] }}
"#
    );
    let path = dir.0.join("hookpipe.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A signed GitHub delivery carrying marker `m`, with `delivery` as `X-GitHub-Delivery`.
fn deliver(addr: SocketAddr, path: &str, delivery: Option<&str>, m: &str) -> Response {
    let body = format!(r#"{{"m":"{m}"}}"#);
    let signature = format!("sha256={}", hmac_sha256_hex(SECRET.as_bytes(), body.as_bytes()));
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("X-Hub-Signature-256", signature.as_str()),
    ];
    if let Some(delivery) = delivery {
        headers.push(("X-GitHub-Delivery", delivery));
    }
    request(addr, "POST", path, &headers, body.as_bytes())
}

fn metrics(addr: SocketAddr) -> String {
    http_get(addr, "/metrics").1
}

fn outcome(addr: SocketAddr, listener: &str, outcome: &str) -> f64 {
    let series = format!("hookpipe_dedup_deliveries_total{{listener=\"{listener}\",outcome=\"{outcome}\"}}");
    metric(&metrics(addr), &series).unwrap_or(0.0)
}

/// Waits until the instance remembers at least `ids` delivery ids (it read them from the topic).
fn wait_for_ids(instance: &Instance, ids: f64, timeout: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let held = metric(&metrics(instance.addr()), "hookpipe_dedup_ids").unwrap_or(0.0);
        if held >= ids {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "instance {} holds {held} ids, not {ids}, after {timeout:?}; log:\n{}",
            instance.port,
            instance.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_first(response: &Response) {
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json(), serde_json::json!({"duplicate": false, "records": 1}));
    assert_eq!(response.header("x-hookpipe-duplicate"), None);
}

fn assert_duplicate(response: &Response) {
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json(), serde_json::json!({"duplicate": true, "records": 0}));
    assert_eq!(response.header("x-hookpipe-duplicate"), Some("true"));
    assert!(response.header("x-request-id").is_some());
}

/// Every record of the pages topic, as (listener, marker) → count, once `expected` arrived and
/// the topic stayed quiet for a second.
fn published(broker: &Broker, expected: usize) -> HashMap<(String, String), usize> {
    let settings = hookpipe::config::kafka::KafkaSettings::default();
    let reader = TopicReader::open(
        &settings,
        &broker.bootstrap,
        &settings.pages_topic,
        StartAt::Beginning,
        Duration::from_secs(20),
    )
    .expect("topic reader");
    let messages = reader
        .read(1, Duration::from_secs(30), Duration::from_millis(1500))
        .expect("reading pages");
    let mut counts: HashMap<(String, String), usize> = HashMap::new();
    let record = |counts: &mut HashMap<(String, String), usize>, message: &hookpipe::kafka::tail::ReadMessage| {
        let page: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        for record in page["records"].as_array().unwrap() {
            let key = (
                page["listener_id"].as_str().unwrap().to_string(),
                record["data"]["m"].as_str().unwrap().to_string(),
            );
            *counts.entry(key).or_default() += 1;
        }
    };
    for message in &messages {
        record(&mut counts, message);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut quiet_until = None;
    loop {
        let now = Instant::now();
        if now >= deadline || quiet_until.is_some_and(|until| now >= until) {
            break;
        }
        if quiet_until.is_none() && counts.values().sum::<usize>() >= expected {
            quiet_until = Some(now + Duration::from_secs(1));
        }
        if let Some(message) = reader.next(Duration::from_millis(100)).unwrap() {
            record(&mut counts, &message);
        }
    }
    counts
}

#[test]
fn copies_of_a_delivery_are_answered_and_published_once_across_the_fleet() {
    let broker = Broker::start();
    let dir = TempDir::new("hookpipe-dedup");
    let config = write_config(&dir);
    let start = |name: &str| {
        let instance = Instance::start(
            &config,
            &broker.bootstrap,
            free_port(),
            dir.0.join(format!("{name}.log")),
        );
        instance.wait_ready(Duration::from_secs(60));
        instance
    };
    let a = start("a");
    let b = start("b");

    // The first delivery is published; its copy on the same instance is answered, marked.
    assert_first(&deliver(a.addr(), DEDUP_PATH, Some("d-1"), "first"));
    assert_duplicate(&deliver(a.addr(), DEDUP_PATH, Some("d-1"), "copy-a"));
    // Another instance learns the id from the dedup topic, and answers its copy the same way.
    let learned = wait_for_ids(&b, 1.0, Duration::from_secs(15));
    eprintln!("instance b knew the id {learned:?} after the first delivery was answered");
    assert_duplicate(&deliver(b.addr(), DEDUP_PATH, Some("d-1"), "copy-b"));
    // Another id is a first delivery, wherever it lands.
    assert_first(&deliver(b.addr(), DEDUP_PATH, Some("d-2"), "second"));
    // A forged copy is refused by verification: a duplicate's answer reveals nothing to it.
    let forged = request(
        a.addr(),
        "POST",
        DEDUP_PATH,
        &[
            ("Content-Type", "application/json"),
            ("X-Hub-Signature-256", "sha256=00"),
            ("X-GitHub-Delivery", "d-1"),
        ],
        br#"{"m":"forged"}"#,
    );
    assert_eq!(forged.status, 401);
    // Without a delivery id nothing is deduplicated; nor is a listener without dedup.
    assert_first(&deliver(a.addr(), DEDUP_PATH, None, "no-id-1"));
    assert_first(&deliver(a.addr(), DEDUP_PATH, None, "no-id-2"));
    for (instance, m) in [(&a, "plain-a"), (&b, "plain-b")] {
        assert_eq!(deliver(instance.addr(), PLAIN_PATH, Some("d-1"), m).status, 204);
    }

    // An instance started now reads the accepted ids back before it serves.
    let c = start("c");
    wait_for_ids(&c, 2.0, Duration::from_secs(15));
    assert_duplicate(&deliver(c.addr(), DEDUP_PATH, Some("d-2"), "copy-c"));

    // Kafka holds each first delivery once, and nothing of the copies.
    let counts = published(&broker, 6);
    let count = |listener: &str, m: &str| counts.get(&(listener.to_string(), m.to_string())).copied().unwrap_or(0);
    for m in ["first", "second", "no-id-1", "no-id-2"] {
        assert_eq!(count("github", m), 1, "{m}: {counts:?}");
    }
    for m in ["plain-a", "plain-b"] {
        assert_eq!(count("plain", m), 1, "{m}: {counts:?}");
    }
    assert_eq!(counts.values().sum::<usize>(), 6, "copies were published: {counts:?}");

    // Each instance counted what it decided.
    assert_eq!(outcome(a.addr(), "github", "first"), 1.0);
    assert_eq!(outcome(a.addr(), "github", "duplicate"), 1.0);
    assert_eq!(outcome(a.addr(), "github", "no_delivery_id"), 2.0);
    assert_eq!(outcome(b.addr(), "github", "duplicate"), 1.0);
    assert_eq!(outcome(b.addr(), "github", "first"), 1.0);
    assert_eq!(outcome(c.addr(), "github", "duplicate"), 1.0);
    assert_eq!(
        outcome(a.addr(), "plain", "first"),
        0.0,
        "a listener without dedup is not looked up"
    );
}
