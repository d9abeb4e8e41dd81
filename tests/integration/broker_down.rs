//! Kafka unavailable: 503 with Retry-After, then 2xx once it is back, and every record that
//! was answered 2xx is in Kafka exactly once. Uses librdkafka's mock cluster for the faults: a
//! broker taken down, and Produce requests failed with the errors that break an idempotent
//! producer's state.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hookpipe::config::Settings;
use hookpipe::kafka::embedded::EmbeddedCluster;
use rdkafka::types::RDKafkaRespErr;

use crate::helpers::app::{spawn_app, TestApp};
use crate::helpers::http::request;

fn post(app: &TestApp, seq: usize) -> u16 {
    let response = app.post("plain", "application/json", format!("{{\"seq\":{seq}}}").as_bytes());
    if response.status == 503 {
        assert!(response.header("retry-after").is_some(), "503 carries Retry-After");
        assert_eq!(response.json()["error"], "storage unavailable; retry later");
    }
    response.status
}

/// The mock cluster with hookpipe's topics, and a server producing to it.
fn start() -> (EmbeddedCluster, TestApp) {
    let cluster = EmbeddedCluster::start().unwrap();
    let bootstrap = cluster.bootstrap_servers();
    for topic in ["hookpipe.pages", "hookpipe.state", "hookpipe.debug"] {
        cluster.create_topic(topic, 1).unwrap();
    }
    let config = r#"
[server]
public_id_secret = "test-secret-0123456789"
listen = "127.0.0.1:0"
request_timeout_ms = 4000
[kafka]
message_timeout_ms = 1500
create_topics = false
[pipeline]
page_linger_ms = 0
[[listeners]]
id = "plain"
# Requests come in a tight loop: no rate limit gets in the way.
rate_limit = { capacity = 100000, refill_per_sec = 100000 }
"#;
    let env = vec![("HOOKPIPE_KAFKA__BROKERS".to_string(), bootstrap.clone())];
    let settings = Settings::from_toml_and_env(config, env).unwrap();
    let app = spawn_app(settings, &bootstrap);
    (cluster, app)
}

/// How many records with each `seq` the pages topic holds, once it holds at least `at_least`.
fn stored_seqs(app: &TestApp, at_least: usize) -> HashMap<usize, usize> {
    let messages = app
        .reader("hookpipe.pages")
        .read(at_least, Duration::from_secs(20), Duration::from_secs(2))
        .unwrap();
    let mut seen: HashMap<usize, usize> = HashMap::new();
    for message in &messages {
        let page: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        for record in page["records"].as_array().unwrap() {
            *seen
                .entry(record["data"]["seq"].as_u64().unwrap() as usize)
                .or_default() += 1;
        }
    }
    seen
}

#[test]
fn broker_outage_answers_503_and_loses_nothing_acknowledged() {
    let (cluster, app) = start();

    let mut statuses: HashMap<usize, u16> = HashMap::new();
    let mut seq = 0;
    for _ in 0..5 {
        statuses.insert(seq, post(&app, seq));
        seq += 1;
    }
    assert!(statuses.values().all(|s| *s == 204), "{statuses:?}");

    cluster.broker_down(1).unwrap();
    let mut unavailable = 0;
    for _ in 0..3 {
        let status = post(&app, seq);
        statuses.insert(seq, status);
        seq += 1;
        if status == 503 {
            unavailable += 1;
        }
        assert_ne!(status, 204, "no 2xx while the broker is down");
    }
    assert_eq!(unavailable, 3);

    cluster.broker_up(1).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut recovered = 0;
    while recovered < 5 {
        assert!(
            Instant::now() < deadline,
            "no recovery after the broker came back: {statuses:?}"
        );
        let status = post(&app, seq);
        statuses.insert(seq, status);
        seq += 1;
        if status == 204 {
            recovered += 1;
        }
    }

    let seen = stored_seqs(&app, statuses.values().filter(|s| **s == 204).count());
    for (seq, status) in &statuses {
        if *status == 204 {
            assert_eq!(
                seen.get(seq),
                Some(&1),
                "record {seq} was answered 204 and must be in Kafka exactly once"
            );
        }
    }
    drop(app);
    drop(cluster);
}

/// Produce requests refused with `errors` (what a broker answers when it lost or refuses the
/// idempotent producer's id, epoch or sequence): webhooks get 503 or 204, never anything else,
/// hookpipe is accepting again within seconds without a restart, and every record answered 204
/// is in Kafka.
fn recovers_from_injected_produce_errors(errors: &[RDKafkaRespErr]) {
    let (cluster, app) = start();
    let mut statuses: HashMap<usize, u16> = HashMap::new();
    let mut seq = 0;
    for _ in 0..3 {
        statuses.insert(seq, post(&app, seq));
        seq += 1;
    }
    assert!(statuses.values().all(|s| *s == 204), "{statuses:?}");

    cluster.fail_next_produce_requests(errors);
    let injected_at = Instant::now();
    let deadline = injected_at + Duration::from_secs(30);
    let mut in_a_row = 0;
    while in_a_row < 5 {
        assert!(
            Instant::now() < deadline,
            "not accepting again after {errors:?}: {statuses:?}"
        );
        let status = post(&app, seq);
        assert!(status == 204 || status == 503, "{status}");
        statuses.insert(seq, status);
        seq += 1;
        in_a_row = if status == 204 { in_a_row + 1 } else { 0 };
    }
    let seen = stored_seqs(&app, statuses.values().filter(|s| **s == 204).count());
    for (seq, status) in &statuses {
        if *status == 204 {
            assert!(
                seen.get(seq).is_some_and(|n| *n >= 1),
                "record {seq} answered 204 is not in Kafka"
            );
        }
    }
    let metrics = request(app.addr, "GET", "/metrics", &[], b"").text();
    let replacements: Vec<&str> = metrics
        .lines()
        .filter(|line| line.starts_with("hookpipe_kafka_producer_replacements_total{"))
        .collect();
    eprintln!(
        "injected {errors:?}: accepting again {:?} after the injection; 503s: {}; replacements: {replacements:?}",
        injected_at.elapsed(),
        statuses.values().filter(|s| **s == 503).count()
    );
    drop(app);
    drop(cluster);
}

#[test]
fn injected_out_of_order_sequence_errors_are_recovered_from() {
    recovers_from_injected_produce_errors(&[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER; 3]);
}

#[test]
fn injected_unknown_producer_id_errors_are_recovered_from() {
    recovers_from_injected_produce_errors(&[RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID; 3]);
}

#[test]
fn injected_invalid_producer_epoch_errors_are_recovered_from() {
    recovers_from_injected_produce_errors(&[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH; 3]);
}
