//! Kafka unavailable: 503 with Retry-After, then 2xx once it is back, and every record that
//! was answered 2xx is in Kafka exactly once. Uses librdkafka's mock cluster for the fault.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hookpipe::config::Settings;
use hookpipe::kafka::embedded::EmbeddedCluster;

use crate::helpers::app::{spawn_app, TestApp};

fn post(app: &TestApp, seq: usize) -> u16 {
    let response = app.post("plain", "application/json", format!("{{\"seq\":{seq}}}").as_bytes());
    if response.status == 503 {
        assert!(response.header("retry-after").is_some(), "503 carries Retry-After");
        assert_eq!(response.json()["error"], "storage unavailable; retry later");
    }
    response.status
}

#[test]
fn broker_outage_answers_503_and_loses_nothing_acknowledged() {
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
"#;
    let env = vec![("HOOKPIPE_KAFKA__BROKERS".to_string(), bootstrap.clone())];
    let settings = Settings::from_toml_and_env(config, env).unwrap();
    let app = spawn_app(settings, &bootstrap);

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

    let reader = app.reader("hookpipe.pages");
    let expected_min = statuses.values().filter(|s| **s == 204).count();
    let messages = reader
        .read(expected_min, Duration::from_secs(20), Duration::from_secs(2))
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
