//! A scriptable HTTP import target (std `TcpListener` on a thread) standing in for the import
//! worker's target: answers per a behavior, records every request.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A request the target received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
    /// The status the target answered.
    pub status: u16,
}

impl Received {
    /// First header value by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The records the request carried: the page's records, or the record itself.
    pub fn records(&self) -> Vec<Value> {
        match self.body.get("records") {
            Some(Value::Array(records)) => records.clone(),
            _ => vec![self.body.clone()],
        }
    }
}

/// What the target answers.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body (JSON or text).
    pub body: String,
    /// How long to take before answering (the request is already recorded meanwhile).
    pub delay: Duration,
}

impl Reply {
    /// `status` with an empty JSON object.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: "{}".into(),
            delay: Duration::ZERO,
        }
    }

    /// `status` with a JSON body.
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    /// Answers only after `delay`.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Decides the reply to a request, given the requests received before it.
pub type Behavior = dyn Fn(&Received, &[Received]) -> Reply + Send + Sync;

/// An HTTP server standing in for an import target; answers per `behavior`, records everything.
pub struct TargetServer {
    /// Bound address.
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    behavior: Arc<Mutex<Arc<Behavior>>>,
    stop: Arc<AtomicBool>,
    /// With TLS: the PEM file of its self-signed certificate.
    ca_file: Option<std::path::PathBuf>,
}

impl TargetServer {
    /// Starts on a free loopback port.
    pub fn start(behavior: impl Fn(&Received, &[Received]) -> Reply + Send + Sync + 'static) -> TargetServer {
        Self::start_with(None, behavior)
    }

    /// Starts an https target on a free loopback port, with a new self-signed certificate for
    /// 127.0.0.1 (its PEM file: `ca_file`).
    pub fn start_tls(behavior: impl Fn(&Received, &[Received]) -> Reply + Send + Sync + 'static) -> TargetServer {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .unwrap();
        let mut server = Self::start_with(Some(Arc::new(config)), behavior);
        let path = std::env::temp_dir().join(format!("hookpipe-target-{}.pem", server.addr.port()));
        std::fs::write(&path, certified.cert.pem()).unwrap();
        server.ca_file = Some(path);
        server
    }

    fn start_with(
        tls: Option<Arc<rustls::ServerConfig>>,
        behavior: impl Fn(&Received, &[Received]) -> Reply + Send + Sync + 'static,
    ) -> TargetServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let behavior: Arc<Mutex<Arc<Behavior>>> = Arc::new(Mutex::new(Arc::new(behavior)));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_received, thread_behavior, thread_stop) = (received.clone(), behavior.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
                let (received, behavior, tls) = (thread_received.clone(), thread_behavior.clone(), tls.clone());
                std::thread::spawn(move || match tls {
                    None => serve(stream, &received, &behavior),
                    Some(config) => {
                        let Ok(connection) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        let mut tls_stream = rustls::StreamOwned::new(connection, stream);
                        serve(&mut tls_stream, &received, &behavior);
                        tls_stream.conn.send_close_notify();
                        let _ = tls_stream.flush();
                    }
                });
            }
        });
        TargetServer {
            addr,
            received,
            behavior,
            stop,
            ca_file: None,
        }
    }

    /// `http://addr/import` (`https://` for a TLS target).
    pub fn url(&self) -> String {
        let scheme = if self.ca_file.is_some() { "https" } else { "http" };
        format!("{scheme}://{}/import", self.addr)
    }

    /// The PEM file of a TLS target's certificate.
    pub fn ca_file(&self) -> &std::path::Path {
        self.ca_file.as_deref().expect("a TLS target")
    }

    /// Replaces the behavior (e.g. the target got fixed).
    pub fn set_behavior(&self, behavior: impl Fn(&Received, &[Received]) -> Reply + Send + Sync + 'static) {
        *self.behavior.lock().unwrap() = Arc::new(behavior);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for TargetServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
        if let Some(path) = &self.ca_file {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn serve(mut stream: impl Read + Write, received: &Mutex<Vec<Received>>, behavior: &Mutex<Arc<Behavior>>) {
    let mut raw = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buffer[..n]),
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    // The request line (method, path) is not kept: tests look at headers and body only.
    let headers: Vec<(String, String)> = head
        .split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = raw[head_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&buffer[..n]),
        }
    }
    let mut request = Received {
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        at: Instant::now(),
        status: 0,
    };
    let behavior = behavior.lock().unwrap().clone();
    let reply = {
        let mut all = received.lock().unwrap();
        let reply = behavior(&request, &all);
        request.status = reply.status;
        all.push(request);
        reply
    };
    std::thread::sleep(reply.delay);
    let mut response = format!(
        "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(&reply.body);
    let _ = stream.write_all(response.as_bytes());
}

/// How many requests before this one carried a record with this id.
pub fn times_seen(history: &[Received], record_id: &str) -> usize {
    history
        .iter()
        .flat_map(|r| r.records())
        .filter(|record| record["id"] == record_id)
        .count()
}
