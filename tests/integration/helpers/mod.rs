//! Test harness: a real Tansu broker per test, the server on port 0, a raw HTTP client and a
//! reader of what landed in Kafka.
#![allow(dead_code)]

pub mod target;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookpipe::config::Settings;
use hookpipe::kafka::tail::{ReadMessage, StartAt, TopicReader};
use hookpipe::pipeline::rate_limit::bucket::{MonotonicClock, SharedClock};

/// Where the Tansu binary is: `$HOOKPIPE_TANSU`, else the cache `scripts/test.sh` installs to.
pub fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("HOOKPIPE_TANSU") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    PathBuf::from(home).join(".cache/hookpipe/tansu/bin/tansu")
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A Tansu broker process on a free loopback port, killed on drop.
pub struct Broker {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub bootstrap: String,
    port: u16,
    storage: String,
    workdir: PathBuf,
}

impl Broker {
    /// A broker with in-memory storage.
    pub fn start() -> Broker {
        let workdir = std::env::temp_dir().join(format!("hookpipe-tansu-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&workdir).unwrap();
        Broker::start_with(free_port(), "memory://tansu/".into(), workdir)
    }

    /// A broker storing in SQLite under its own directory: survives kill and restart.
    pub fn start_durable() -> Broker {
        let workdir = std::env::temp_dir().join(format!("hookpipe-tansu-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&workdir).unwrap();
        Broker::start_with(free_port(), "sqlite://tansu.db".into(), workdir)
    }

    fn start_with(port: u16, storage: String, workdir: PathBuf) -> Broker {
        let mut broker = Broker {
            child: None,
            bootstrap: format!("127.0.0.1:{port}"),
            port,
            storage,
            workdir,
        };
        broker.spawn();
        broker
    }

    fn spawn(&mut self) {
        let binary = tansu_binary();
        assert!(
            binary.exists(),
            "Tansu broker not found at {}: run scripts/test.sh (it installs Tansu) or set HOOKPIPE_TANSU",
            binary.display()
        );
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::File::create(self.workdir.join("tansu.log")).unwrap();
        let child = Command::new(&binary)
            .current_dir(&self.workdir)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                &self.storage,
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting tansu");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {} in time",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the broker process (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.workdir);
    }
}

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
            // Creates the topics on the real broker (unless the test turned creation off).
            let running = hookpipe::http::start(&thread_settings, &thread_bootstrap, clock, false)
                .await
                .expect("server starts");
            let public_ids = running
                .registry
                .all()
                .iter()
                .map(|l| (l.id().to_string(), l.public_id.clone()))
                .collect();
            sender
                .send((running.addr, running.server.handle(), public_ids))
                .unwrap();
            running.server.await.unwrap();
            running.producer.flush(Duration::from_secs(5)).ok();
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

/// An HTTP response read off the wire.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// First header value by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.text()))
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`), raw so tests control
/// every byte. `Content-Length` is added unless a header sets it or `Transfer-Encoding`.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    let sets_length = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding"));
    for (key, value) in headers {
        head.push_str(&format!("{key}: {value}\r\n"));
    }
    if !sets_length {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) and close before reading a large body: ignore write errors.
    let _ = stream.write_all(body);
    read_response(&mut stream)
}

/// Reads one response: until the server closes the connection, or until a response with a
/// `Content-Length` is complete (a server draining an unfinished request body keeps the
/// connection open after answering).
pub fn read_response(stream: &mut TcpStream) -> Response {
    let mut raw = Vec::new();
    let mut buffer = [0u8; 64 * 1024];
    loop {
        if response_complete(&raw) {
            break;
        }
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !raw.is_empty() => break,
            Err(e) => panic!("reading response: {e} (got {} bytes)", raw.len()),
        }
    }
    parse_response(&raw)
}

fn response_complete(raw: &[u8]) -> bool {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    head.lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|length| length.trim().parse::<usize>().ok())
        .is_some_and(|length| raw.len() >= split + 4 + length)
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("incomplete response: {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Response { status, headers, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
    out
}

/// A child process killed when dropped, so a failing test never leaves a server behind.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for ChildGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// HMAC-SHA256 of `data` under `key`, lower-case hex: the signature most tests send.
pub fn hmac_sha256_hex(key: &[u8], data: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}
