//! Shared state in Kafka (`StateTopic`, `LogTopic`) against a real broker (Tansu) and against
//! the embedded mock cluster: read-your-writes, convergence between instances, late joiners,
//! the log's per-key cap, and durability across a broker restart.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookpipe::config::kafka::KafkaSettings;
use hookpipe::kafka::embedded::EmbeddedCluster;
use hookpipe::kafka::state::{LogTopic, StateTopic};

use crate::helpers::broker::Broker;

/// Every handle's mirror runs on its own thread, so a current-thread runtime is enough.
fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

fn kafka_settings() -> KafkaSettings {
    KafkaSettings {
        topic_partitions: 3,
        ..KafkaSettings::default()
    }
}

fn unique_topic(name: &str) -> String {
    format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Polls `condition` until it holds or `timeout` passes; the time it took, if it held.
fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if condition() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    condition().then(|| start.elapsed())
}

fn text(value: Option<Arc<[u8]>>) -> Option<String> {
    value.map(|v| String::from_utf8_lossy(&v).into_owned())
}

fn texts(scan: Vec<(String, Arc<[u8]>)>) -> Vec<(String, String)> {
    scan.into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect()
}

/// Names of this process's threads (Linux truncates them to 15 bytes).
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
                .map(|name| name.trim_end().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn put_get_delete_scan_with_read_your_writes() {
    let broker = Broker::start();
    let settings = kafka_settings();
    let topic = unique_topic("state-basic");
    block_on(async {
        let state = StateTopic::open(&settings, &broker.bootstrap, &topic, true)
            .await
            .expect("open");
        assert_eq!(state.get("listener/a"), None);
        let mut changes = state.subscribe();

        state.put("listener/a", b"1").await.unwrap();
        assert_eq!(text(state.get("listener/a")).as_deref(), Some("1"));
        state.put("listener/b", b"2").await.unwrap();
        state.put("listenerx", b"3").await.unwrap();
        state.put("sample/a", b"4").await.unwrap();
        state.put("listener/a", b"1b").await.unwrap();
        state.delete("listener/b").await.unwrap();
        assert_eq!(state.get("listener/b"), None);
        assert_eq!(
            texts(state.scan_prefix("listener/")),
            [("listener/a".to_string(), "1b".to_string())]
        );
        assert_eq!(state.scan_prefix("").len(), 3);

        let mut seen = Vec::new();
        while let Ok(key) = changes.try_recv() {
            seen.push(key);
        }
        assert_eq!(
            seen,
            [
                "listener/a",
                "listener/b",
                "listenerx",
                "sample/a",
                "listener/a",
                "listener/b"
            ]
        );

        // An empty value is a value, not a tombstone.
        state.put("empty", b"").await.unwrap();
        assert_eq!(state.get("empty").as_deref(), Some(&b""[..]));

        // Read-your-writes holds on every write, whichever partition the key lands on.
        for i in 0..30 {
            let key = format!("ryw/{i}");
            state.put(&key, i.to_string().as_bytes()).await.unwrap();
            assert_eq!(text(state.get(&key)), Some(i.to_string()), "{key}");
        }
        // Deleting what does not exist is fine.
        state.delete("never/set").await.unwrap();
    });
}

#[test]
fn instances_converge_and_a_late_joiner_sees_the_full_state() {
    let broker = Broker::start();
    let settings = kafka_settings();
    let topic = unique_topic("state-shared");
    block_on(async {
        let a = StateTopic::open(&settings, &broker.bootstrap, &topic, true)
            .await
            .expect("open a");
        // The second instance also asks to create: an existing topic is fine.
        let b = StateTopic::open(&settings, &broker.bootstrap, &topic, true)
            .await
            .expect("open b");

        a.put("k/1", b"from-a").await.unwrap();
        let latency = wait_until(Duration::from_secs(5), || {
            b.get("k/1").as_deref() == Some(&b"from-a"[..])
        })
        .expect("b sees a's put within 5 s");
        eprintln!("a -> b latency: {latency:?}");
        b.put("k/2", b"from-b").await.unwrap();
        wait_until(Duration::from_secs(5), || a.get("k/2").is_some()).expect("a sees b's put");
        b.delete("k/1").await.unwrap();
        wait_until(Duration::from_secs(5), || a.get("k/1").is_none()).expect("a sees b's delete");

        for i in 0..40 {
            a.put(&format!("bulk/{i:02}"), format!("v{i}").as_bytes())
                .await
                .unwrap();
        }
        for i in (0..40).step_by(3) {
            b.delete(&format!("bulk/{i:02}")).await.unwrap();
        }
        a.put("bulk/05", b"overwritten").await.unwrap();
        wait_until(Duration::from_secs(5), || {
            texts(a.scan_prefix("")) == texts(b.scan_prefix(""))
        })
        .expect("a and b converge");

        let late = StateTopic::open(&settings, &broker.bootstrap, &topic, false)
            .await
            .expect("open late");
        // Complete on return, without waiting.
        let expected = texts(a.scan_prefix(""));
        assert_eq!(texts(late.scan_prefix("")), expected);
        assert_eq!(expected.len(), 1 + 40 - 14);
        assert_eq!(text(late.get("bulk/05")).as_deref(), Some("overwritten"));
        assert_eq!(late.get("bulk/03"), None);
        assert_eq!(late.get("k/1"), None);
    });
}

#[test]
fn log_topic_keeps_the_newest_entries_per_key() {
    let broker = Broker::start();
    let settings = kafka_settings();
    let topic = unique_topic("log-debug");
    let retention = Duration::from_secs(24 * 3600);
    block_on(async {
        let log = LogTopic::open(&settings, &broker.bootstrap, &topic, retention, 3, true)
            .await
            .expect("open");
        for i in 0..5 {
            log.append("listener-1", format!("capture {i}").as_bytes())
                .await
                .unwrap();
        }
        log.append("listener-2", b"only one").await.unwrap();
        let values = |entries: Vec<(i64, Arc<[u8]>)>| -> Vec<String> {
            entries
                .iter()
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .collect()
        };
        assert_eq!(
            values(log.entries("listener-1")),
            ["capture 4", "capture 3", "capture 2"]
        );
        assert_eq!(values(log.entries("listener-2")), ["only one"]);
        assert!(log.entries("listener-3").is_empty());

        let entries = log.entries("listener-1");
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!(entries.windows(2).all(|pair| pair[0].0 >= pair[1].0));
        assert!(
            entries
                .iter()
                .all(|(t, _)| (now_ms - 60_000..=now_ms + 5_000).contains(t)),
            "timestamps are the messages' times: {:?}",
            entries.iter().map(|(t, _)| t).collect::<Vec<_>>()
        );

        let second = LogTopic::open(&settings, &broker.bootstrap, &topic, retention, 3, false)
            .await
            .expect("open second");
        assert_eq!(
            values(second.entries("listener-1")),
            ["capture 4", "capture 3", "capture 2"]
        );
        assert_eq!(values(second.entries("listener-2")), ["only one"]);

        // Fire-and-forget appends reach every instance.
        log.try_append("listener-2", b"queued").unwrap();
        wait_until(Duration::from_secs(5), || {
            values(second.entries("listener-2")) == ["queued", "only one"]
        })
        .expect("second handle sees the queued append");
        wait_until(Duration::from_secs(5), || log.entries("listener-2").len() == 2)
            .expect("first handle sees its own queued append");
    });
}

#[test]
fn state_survives_a_broker_restart() {
    let mut broker = Broker::start_durable();
    let settings = kafka_settings();
    let topic = unique_topic("state-durable");
    let original = block_on(async {
        let state = StateTopic::open(&settings, &broker.bootstrap, &topic, true)
            .await
            .expect("open");
        state.put("listener/a", b"kept").await.unwrap();
        state.put("listener/b", b"deleted").await.unwrap();
        state.put("listener/c", b"old").await.unwrap();
        state.put("listener/c", b"new").await.unwrap();
        state.delete("listener/b").await.unwrap();
        state
    });
    broker.restart();
    block_on(async {
        let reopened = StateTopic::open(&settings, &broker.bootstrap, &topic, true)
            .await
            .expect("reopen after restart");
        assert_eq!(
            texts(reopened.scan_prefix("")),
            [
                ("listener/a".to_string(), "kept".to_string()),
                ("listener/c".to_string(), "new".to_string()),
            ]
        );
        // A handle that was open across the restart reconnects and keeps working.
        original.put("listener/d", b"after restart").await.unwrap();
        assert_eq!(text(original.get("listener/d")).as_deref(), Some("after restart"));
        wait_until(Duration::from_secs(5), || reopened.get("listener/d").is_some()).expect("new handle sees it");
    });
}

/// librdkafka's mock cluster (the embedded default) ignores CreateTopics, so hookpipe creates
/// the topics with the mock's own call and opens with `create = false`.
#[test]
fn embedded_cluster_with_topics_created_beforehand() {
    let cluster = EmbeddedCluster::start().expect("mock cluster");
    let bootstrap = cluster.bootstrap_servers();
    let settings = kafka_settings();
    let state_topic = unique_topic("st");
    let log_topic = unique_topic("lg");
    cluster.create_topic(&state_topic, 3).unwrap();
    cluster.create_topic(&log_topic, 3).unwrap();
    let thread_name: String = format!("state-{state_topic}").chars().take(15).collect();
    block_on(async {
        let a = StateTopic::open(&settings, &bootstrap, &state_topic, false)
            .await
            .expect("open a");
        a.put("x", b"1").await.unwrap();
        a.put("y", b"2").await.unwrap();
        a.delete("x").await.unwrap();
        assert_eq!(a.get("x"), None);
        let b = StateTopic::open(&settings, &bootstrap, &state_topic, false)
            .await
            .expect("open b");
        assert_eq!(texts(b.scan_prefix("")), [("y".to_string(), "2".to_string())]);
        a.put("z", b"3").await.unwrap();
        wait_until(Duration::from_secs(5), || b.get("z").is_some()).expect("b sees z");

        let log = LogTopic::open(&settings, &bootstrap, &log_topic, Duration::from_secs(3600), 2, false)
            .await
            .expect("open log");
        for i in 0..3 {
            log.append("k", &[i]).await.unwrap();
        }
        let entries: Vec<Vec<u8>> = log.entries("k").iter().map(|(_, v)| v.to_vec()).collect();
        assert_eq!(entries, [vec![2], vec![1]]);

        assert!(thread_names().contains(&thread_name), "{:?}", thread_names());
        drop(a);
        assert!(thread_names().contains(&thread_name), "b still holds a follower");
        drop(b);
    });
    // The follower thread notices within one poll that its last handle is gone.
    wait_until(Duration::from_secs(5), || !thread_names().contains(&thread_name))
        .expect("follower thread stops after the last handle is dropped");
}

#[test]
fn opening_a_missing_topic_without_create_fails_with_context() {
    let cluster = EmbeddedCluster::start().expect("mock cluster");
    let started = Instant::now();
    let error = block_on(StateTopic::open(
        &kafka_settings(),
        &cluster.bootstrap_servers(),
        "does-not-exist",
        false,
    ))
    .expect_err("missing topic");
    assert!(error.contains("does-not-exist"), "{error}");
    eprintln!("missing topic error after {:?}: {error}", started.elapsed());
}

/// Settings whose every topic is this test's own.
fn provisioned_settings(bootstrap: &str) -> hookpipe::config::Settings {
    let toml = format!(
        "[kafka]\ntopic_partitions = 2\npages_topic = \"{}\"\nstate_topic = \"{}\"\ndebug_topic = \"{}\"\n\
         errors_topic = \"{}\"\nretry_topic = \"{}\"\n[[listeners]]\nid = \"own\"\ntopic = \"{}\"\n",
        unique_topic("pages"),
        unique_topic("state"),
        unique_topic("debug"),
        unique_topic("errors"),
        unique_topic("retry"),
        unique_topic("own-pages"),
    );
    crate::helpers::app::settings(&toml, bootstrap)
}

/// Opens every follower of serve without creating its topic, and checks each pages topic has
/// the configured partitions.
async fn open_provisioned(settings: &hookpipe::config::Settings, bootstrap: &str) {
    let kafka = &settings.kafka;
    let state = StateTopic::open(kafka, bootstrap, &kafka.state_topic, false)
        .await
        .expect("state topic provisioned");
    state.put("k", b"v").await.unwrap();
    let log = LogTopic::open(kafka, bootstrap, &kafka.debug_topic, Duration::from_secs(60), 2, false)
        .await
        .expect("debug topic provisioned");
    log.append("k", b"v").await.unwrap();
    let errors = hookpipe::import_errors::ErrorsStore::open(kafka, bootstrap, false)
        .await
        .expect("errors topic provisioned");
    assert!(errors.list("own").is_empty());
    let consumer: rdkafka::consumer::BaseConsumer =
        hookpipe::kafka::base_client_config(kafka, bootstrap).create().unwrap();
    for topic in settings.pages_topics() {
        let partitions = hookpipe::kafka::partitions_of(&consumer, &topic, Duration::from_secs(10)).unwrap();
        assert_eq!(partitions.len(), 2, "{topic}");
    }
    // The retry topic of earlier versions is only read, never created.
    let retry = hookpipe::kafka::partitions_of(&consumer, &kafka.retry_topic, Duration::from_secs(10)).unwrap();
    assert!(retry.is_empty(), "{} was created", kafka.retry_topic);
}

#[test]
fn provision_creates_every_owned_topic_so_followers_open_without_creating() {
    let broker = Broker::start();
    let settings = provisioned_settings(&broker.bootstrap);
    block_on(async {
        hookpipe::kafka::topics::provision(&settings, &broker.bootstrap, None)
            .await
            .expect("provision");
        open_provisioned(&settings, &broker.bootstrap).await;
        // Everything exists now: a second run creates nothing and succeeds.
        hookpipe::kafka::topics::provision(&settings, &broker.bootstrap, None)
            .await
            .expect("provision again");
        hookpipe::kafka::topics::provision_topic(&settings, &broker.bootstrap, &unique_topic("api"))
            .await
            .expect("one more pages topic");
    });
}

#[test]
fn provision_creates_every_owned_topic_in_the_embedded_cluster() {
    let cluster = EmbeddedCluster::start().expect("mock cluster");
    let bootstrap = cluster.bootstrap_servers();
    let settings = provisioned_settings(&bootstrap);
    block_on(async {
        hookpipe::kafka::topics::provision(&settings, &bootstrap, Some(&cluster))
            .await
            .expect("provision");
        open_provisioned(&settings, &bootstrap).await;
    });
}
