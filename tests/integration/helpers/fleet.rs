//! A fleet behind a load balancer: `hookpipe serve` processes (the built binary) on one broker,
//! behind haproxy on loopback (a generated config health-checking `/readyz`), and a steady load
//! of senders that records what every request got.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::broker::free_port;
use super::process::ChildGuard;

/// The built `hookpipe` binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_hookpipe");

/// Health-check interval of the balancer; an instance is out after `FALL` failed checks.
pub const CHECK_INTERVAL_MS: u64 = 100;
/// Failed checks before haproxy takes a server out (and passed ones before it puts it back).
pub const FALL: u64 = 2;

/// A temporary directory of one test, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new directory under the system's temporary directory.
    pub fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One `hookpipe serve` process on a fixed loopback port (fixed, so a restarted instance takes
/// its predecessor's place in the balancer's configuration).
pub struct Instance {
    /// Its port.
    pub port: u16,
    child: Option<ChildGuard>,
    /// Its stderr (logs), for failure messages.
    pub log: PathBuf,
}

impl Instance {
    /// Starts `hookpipe serve --config config` on `port`, producing to `bootstrap`.
    pub fn start(config: &Path, bootstrap: &str, port: u16, log: PathBuf) -> Instance {
        let stderr = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(config)
            .env("HOOKPIPE_KAFKA__BROKERS", bootstrap)
            .env("HOOKPIPE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("HOOKPIPE_SERVER__INSTANCE_ID", format!("serve-{port}"))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("starting hookpipe serve");
        Instance {
            port,
            child: Some(ChildGuard(child)),
            log,
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Waits until its own `/readyz` answers 200 (Kafka reachable).
    pub fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(response) = send(self.addr(), "GET", "/readyz", b"") {
                if response.status == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "instance on {} not ready within {timeout:?}; log:\n{}",
                self.port,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM (the graceful drain).
    pub fn terminate(&self) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.0.kill().unwrap();
            child.0.wait().unwrap();
        }
    }

    /// Waits for the process to exit (killing it and failing after `timeout`).
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "instance on {} did not exit within {timeout:?}; log:\n{}",
                self.port,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// haproxy's binary: on PATH, or where Debian's package puts it.
pub fn haproxy_binary() -> PathBuf {
    for candidate in ["/usr/sbin/haproxy", "/usr/bin/haproxy", "/usr/local/sbin/haproxy"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("haproxy is not installed: .ci/run installs it (apt-get install -y haproxy)");
}

/// The haproxy configuration of the tests: round robin over `backends`, health-checking
/// `GET /readyz` every `CHECK_INTERVAL_MS`, retrying only connections that failed to open (a
/// request that reached an instance is never sent twice), with a CSV stats page.
pub fn haproxy_config(port: u16, stats_port: u16, backends: &[u16]) -> String {
    let mut text = format!(
        "global\n    maxconn 4096\n\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n    \
         timeout check 1s\n    retries 3\n    retry-on conn-failure\n    option redispatch 1\n\n\
         frontend hooks\n    bind 127.0.0.1:{port}\n    default_backend serve\n\n\
         backend serve\n    balance roundrobin\n    option httpchk\n    http-check send meth GET uri /readyz\n    \
         http-check expect status 200\n    default-server inter {CHECK_INTERVAL_MS}ms fall {FALL} rise {FALL}\n"
    );
    for (index, backend) in backends.iter().enumerate() {
        text.push_str(&format!("    server s{index} 127.0.0.1:{backend} check\n"));
    }
    text.push_str(&format!(
        "\nlisten stats\n    bind 127.0.0.1:{stats_port}\n    stats enable\n    stats uri /stats\n"
    ));
    text
}

/// haproxy as a plain foreground process on loopback, killed on drop.
pub struct Haproxy {
    /// Where senders connect.
    pub addr: SocketAddr,
    stats: SocketAddr,
    _child: ChildGuard,
}

impl Haproxy {
    /// Starts haproxy in front of `backends`, its configuration written into `dir`.
    pub fn start(dir: &Path, backends: &[u16]) -> Haproxy {
        let (port, stats_port) = (free_port(), free_port());
        let config = dir.join("haproxy.cfg");
        std::fs::write(&config, haproxy_config(port, stats_port, backends)).unwrap();
        let log = std::fs::File::create(dir.join("haproxy.log")).unwrap();
        let child = Command::new(haproxy_binary())
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting haproxy");
        let haproxy = Haproxy {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            stats: SocketAddr::from(([127, 0, 0, 1], stats_port)),
            _child: ChildGuard(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(haproxy.stats).is_err() {
            assert!(
                Instant::now() < deadline,
                "haproxy did not start:\n{}",
                std::fs::read_to_string(dir.join("haproxy.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        haproxy
    }

    /// The stats row of every server of the backend, by server name (`s0`, `s1`, ...): column
    /// name to value (`status`, `wretr`, `wredis`, `eresp`, ...).
    pub fn servers(&self) -> HashMap<String, HashMap<String, String>> {
        let Ok(response) = send(self.stats, "GET", "/stats;csv", b"") else {
            return HashMap::new();
        };
        let text = String::from_utf8_lossy(&response.body).into_owned();
        let mut lines = text.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .trim_start_matches("# ")
            .split(',')
            .collect();
        lines
            .map(|line| {
                header
                    .iter()
                    .zip(line.split(','))
                    .map(|(key, value)| (key.to_string(), value.to_string()))
                    .collect::<HashMap<_, _>>()
            })
            .filter(|row| row.get("pxname").is_some_and(|name| name == "serve"))
            .filter(|row| {
                row.get("svname")
                    .is_some_and(|name| name.starts_with('s') && name != "serve")
            })
            .map(|row| (row["svname"].clone(), row))
            .collect()
    }

    /// The status haproxy gives server `name` (`UP`, `DOWN`, `UP 1/2`, ...).
    pub fn status(&self, name: &str) -> String {
        self.servers()
            .get(name)
            .and_then(|row| row.get("status").cloned())
            .unwrap_or_default()
    }

    /// Waits until haproxy reports server `name` with exactly `status`.
    pub fn wait_status(&self, name: &str, status: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.status(name);
            if now == status {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "haproxy server {name} is `{now}`, not `{status}`, after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A backend counter summed over its servers (e.g. `wretr`, connection retries).
    pub fn total(&self, column: &str) -> u64 {
        self.servers()
            .values()
            .filter_map(|row| row.get(column)?.parse::<u64>().ok())
            .sum()
    }
}

/// A response read off the wire, without panicking on anything.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// First header value by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// One request over a fresh connection (`Connection: close`, as most webhook senders do); any
/// failure to connect, write or read a whole response is an `Err` (a connection error).
pub fn send(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_answer(&raw).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("incomplete response ({} bytes)", raw.len()),
        )
    })
}

fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let split = raw.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(key, value)| key == "transfer-encoding" && value.contains("chunked"));
    if chunked {
        body = dechunk(&body)?;
    } else {
        let length = headers
            .iter()
            .find(|(key, _)| key == "content-length")
            .and_then(|(_, value)| value.parse::<usize>().ok());
        if length.is_some_and(|length| body.len() < length) {
            return None;
        }
    }
    Some(Answer { status, headers, body })
}

/// The body of a complete chunked transfer; `None` while incomplete.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|window| window == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

/// What one request of the load got.
#[derive(Debug)]
pub enum Outcome {
    /// An HTTP answer: its status and the request id hookpipe gave it (`X-Request-Id`).
    Answered {
        /// Status code.
        status: u16,
        /// `X-Request-Id`, when hookpipe answered.
        request_id: Option<String>,
    },
    /// No HTTP answer: refused, reset or closed early.
    ConnectionError(String),
}

/// One request of the load: the markers of its records, what it got and when it was sent.
#[derive(Debug)]
pub struct Sent {
    /// The `m` field of each record in its body.
    pub markers: Vec<String>,
    /// What it got.
    pub outcome: Outcome,
    /// When it was sent, from the start of the load.
    pub sent_at: Duration,
}

impl Sent {
    /// The request id of a 2xx answer.
    pub fn accepted_id(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Answered { status, request_id } if (200..300).contains(status) => request_id.as_deref(),
            _ => None,
        }
    }
}

/// Records per request of the load.
pub const RECORDS_PER_REQUEST: usize = 2;

/// Closed-loop senders, each posting one request at a time (a JSON array of
/// `RECORDS_PER_REQUEST` records with unique markers) until stopped or `max_requests` each.
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Vec<Sent>>>,
}

impl Load {
    /// Starts `senders` threads posting to `path` at `addr`, pausing `pause` between requests.
    pub fn start(addr: SocketAddr, path: &str, senders: usize, pause: Duration, max_requests: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let threads = (0..senders)
            .map(|sender| {
                let (stop, path) = (stop.clone(), path.to_string());
                std::thread::spawn(move || {
                    let mut sent = Vec::new();
                    let run = uuid::Uuid::new_v4().simple().to_string();
                    while !stop.load(Ordering::Relaxed) && sent.len() < max_requests {
                        let markers: Vec<String> = (0..RECORDS_PER_REQUEST)
                            .map(|record| format!("{run}-{sender}-{}-{record}", sent.len()))
                            .collect();
                        let body = serde_json::to_vec(
                            &markers
                                .iter()
                                .map(|marker| serde_json::json!({ "m": marker }))
                                .collect::<Vec<_>>(),
                        )
                        .unwrap();
                        let sent_at = started.elapsed();
                        let outcome = match send(addr, "POST", &path, &body) {
                            Ok(answer) => Outcome::Answered {
                                status: answer.status,
                                request_id: answer.header("x-request-id").map(str::to_string),
                            },
                            Err(error) => Outcome::ConnectionError(error.to_string()),
                        };
                        sent.push(Sent {
                            markers,
                            outcome,
                            sent_at,
                        });
                        std::thread::sleep(pause);
                    }
                    sent
                })
            })
            .collect();
        Load { stop, threads }
    }

    /// Stops the senders and returns every request they sent.
    pub fn stop(self) -> Vec<Sent> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .flat_map(|thread| thread.join().expect("sender thread"))
            .collect()
    }
}

/// The markers of the records in `topic`, by request id (`faults::stored_records`: the topic
/// read to its end), and how far the read got.
pub fn records_by_request(
    settings: &hookpipe::config::Settings,
    bootstrap: &str,
    topic: &str,
) -> (HashMap<String, Vec<String>>, super::faults::ReadBack) {
    let stored = super::faults::stored_records(settings, bootstrap, topic);
    let markers = stored
        .by_request
        .into_iter()
        .map(|(request_id, records)| {
            let markers = records
                .iter()
                .map(|data| data["m"].as_str().unwrap_or_default().to_string())
                .collect();
            (request_id, markers)
        })
        .collect();
    (markers, stored.read_back)
}
