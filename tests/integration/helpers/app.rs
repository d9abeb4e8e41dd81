//! The server under test: settings for a test broker, `spawn_app` (the production startup,
//! `hookpipe::app::App::build`, on port 0 in its own actix system thread) and the pages it
//! published.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hookpipe::app::App;
use hookpipe::config::Settings;
use hookpipe::kafka::tail::{ReadMessage, StartAt, TopicReader};
use hookpipe::pipeline::rate_limit::bucket::{MonotonicClock, SharedClock};

use super::http::{request, Response};

/// The `server.secrets_key` of test servers (base64 of "hookpipe-test-secrets-key-32byte").
pub const TEST_SECRETS_KEY: &str = "aG9va3BpcGUtdGVzdC1zZWNyZXRzLWtleS0zMmJ5dGU=";

/// Settings from TOML with the brokers, port 0 and (unless the TOML sets one) the test secrets
/// key filled in; every test uses its own topic.
pub fn settings(toml: &str, bootstrap: &str) -> Settings {
    let mut text = String::from(toml);
    if !text.contains("public_id_secret") {
        text = format!("[server]\npublic_id_secret = \"test-secret-0123456789\"\nlisten = \"127.0.0.1:0\"\n{text}");
    }
    let mut env = vec![("HOOKPIPE_KAFKA__BROKERS".to_string(), bootstrap.to_string())];
    if !text.contains("secrets_key") {
        // Through the environment, so it reaches TOML that brings its own [server] section.
        env.push(("HOOKPIPE_SERVER__SECRETS_KEY".to_string(), TEST_SECRETS_KEY.to_string()));
    }
    Settings::from_toml_and_env(&text, env).unwrap_or_else(|e| panic!("test config invalid:\n{e}"))
}

/// A running server in its own actix system thread.
pub struct TestApp {
    /// Bound address.
    pub addr: SocketAddr,
    /// Its settings.
    pub settings: Settings,
    /// Bootstrap servers it produces to.
    pub bootstrap: String,
    /// Public ids by listener id.
    pub public_ids: std::collections::HashMap<String, String>,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Creates the topics of `settings` on a real broker, then starts the server.
pub fn spawn_app(settings: Settings, bootstrap: &str) -> TestApp {
    spawn_app_with_clock(settings, bootstrap, Arc::new(MonotonicClock::default()))
}

/// Like `spawn_app`, with an injected rate-limit clock.
pub fn spawn_app_with_clock(settings: Settings, bootstrap: &str, clock: SharedClock) -> TestApp {
    let (sender, receiver) = std::sync::mpsc::channel();
    let thread_settings = settings.clone();
    let thread_bootstrap = bootstrap.to_string();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            // The production startup; creates the topics on the real broker (unless the test
            // turned creation off).
            let app = App::build(&thread_settings, &thread_bootstrap, clock, false)
                .await
                .expect("server starts");
            let public_ids = app
                .registry
                .all()
                .iter()
                .map(|l| (l.id().to_string(), l.public_id.clone()))
                .collect();
            sender.send((app.addr, app.handle(), public_ids)).unwrap();
            // A failed flush fails no test (the broker may be gone by now): tests check what was
            // answered and what landed in Kafka, not the way out.
            if let Err(error) = app.run(Duration::from_secs(5)).await {
                eprintln!("test server: {error}");
            }
        });
    });
    let (addr, handle, public_ids) = receiver.recv_timeout(Duration::from_secs(60)).expect("server started");
    TestApp {
        addr,
        settings,
        bootstrap: bootstrap.to_string(),
        public_ids,
        handle,
        thread: Some(thread),
    }
}

impl TestApp {
    /// `/hooks/{public id of listener}`.
    pub fn hook_path(&self, listener_id: &str) -> String {
        format!("/hooks/{}", self.public_ids[listener_id])
    }

    /// POSTs a body with a content type to a listener.
    pub fn post(&self, listener_id: &str, content_type: &str, body: &[u8]) -> Response {
        request(
            self.addr,
            "POST",
            &self.hook_path(listener_id),
            &[("Content-Type", content_type)],
            body,
        )
    }

    /// A reader over `topic` from the beginning.
    pub fn reader(&self, topic: &str) -> TopicReader {
        TopicReader::open(
            &self.settings.kafka,
            &self.bootstrap,
            topic,
            StartAt::Beginning,
            Duration::from_secs(20),
        )
        .expect("topic reader")
    }

    /// Reads `count` messages from the default pages topic, then waits a little for extras.
    pub fn read_pages(&self, count: usize) -> Vec<Page> {
        self.read_pages_from(&self.settings.kafka.pages_topic.clone(), count)
    }

    /// Reads `count` messages from `topic`, then waits a little for extras.
    pub fn read_pages_from(&self, topic: &str, count: usize) -> Vec<Page> {
        let messages = self
            .reader(topic)
            .read(count, Duration::from_secs(30), Duration::from_millis(1500))
            .expect("reading pages");
        messages.into_iter().map(Page::from).collect()
    }

    /// Stops the server gracefully and waits for it.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        if let Some(thread) = self.thread.take() {
            let handle = self.handle.clone();
            let _ = std::thread::spawn(move || actix_web::rt::System::new().block_on(handle.stop(true))).join();
            let _ = thread.join();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// A page message as read back.
#[derive(Debug)]
pub struct Page {
    /// The Kafka message.
    pub message: ReadMessage,
    /// Its parsed value.
    pub value: serde_json::Value,
}

impl From<ReadMessage> for Page {
    fn from(message: ReadMessage) -> Page {
        let value = serde_json::from_slice(&message.payload).expect("page is JSON");
        Page { message, value }
    }
}

impl Page {
    /// The page's records.
    pub fn records(&self) -> &Vec<serde_json::Value> {
        self.value["records"].as_array().expect("records array")
    }

    /// The `data` of each record.
    pub fn data(&self) -> Vec<serde_json::Value> {
        self.records().iter().map(|r| r["data"].clone()).collect()
    }
}

/// All records' data across pages, in order.
pub fn all_data(pages: &[Page]) -> Vec<serde_json::Value> {
    pages.iter().flat_map(|p| p.data()).collect()
}
