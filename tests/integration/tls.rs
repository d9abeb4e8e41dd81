//! TLS on the ingest listener itself (`[server.tls]`), against the real `hookpipe serve` process
//! on a real Tansu broker, with real TLS clients: curl (OpenSSL, `--cacert`) and a rustls
//! client in the test. Certificates come from a test CA made with rcgen at test time.
//!
//! A webhook over HTTPS is acknowledged and in Kafka; plain HTTP to the TLS port gets no HTTP
//! answer and a closed connection, and the server goes on serving. On SIGHUP with a new pair in
//! the same files, new connections get the new certificate while the process (same pid) and an
//! open keep-alive connection carry on; a broken file on SIGHUP keeps the certificate in
//! service. `hookpipe check-config` names a bad pair at its key.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookpipe::kafka::tail::{StartAt, TopicReader};
use rustls::pki_types::{CertificateDer, ServerName};

use crate::helpers::broker::{free_port, Broker};
use crate::helpers::fleet::{TempDir, BIN};
use crate::helpers::http::metric;
use crate::helpers::process::ChildGuard;

/// The explicit public id of the test listener (its URL is `/hooks/<this>`).
const PUBLIC_ID: &str = "tlsorders0123456789";

/// A test certificate authority, and the leaf certificates it issues for 127.0.0.1.
struct TestCa {
    certificate: rcgen::Certificate,
    key: rcgen::KeyPair,
}

/// A response: status, headers (names lower-cased) and body.
type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// A leaf certificate: its PEM, its key's PEM and its DER (what a client sees).
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl TestCa {
    fn new() -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "hookpipe test CA");
        let certificate = params.self_signed(&key).unwrap();
        TestCa { certificate, key }
    }

    /// A certificate for 127.0.0.1 and localhost with `common_name` and `serial`, on a new key.
    fn issue(&self, common_name: &str, serial: u64) -> Leaf {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
        params.serial_number = Some(rcgen::SerialNumber::from(serial));
        params.not_after = rcgen::date_time_ymd(2040, 1, 1);
        let certificate = params.signed_by(&key, &self.certificate, &self.key).unwrap();
        Leaf {
            cert_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            der: certificate.der().clone(),
        }
    }

    /// A rustls client configuration that trusts this CA only.
    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.certificate.der().clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

/// `2040-01-01T00:00:00Z`, the expiry of every leaf certificate of these tests.
const LEAF_NOT_AFTER: f64 = 2_208_988_800.0;

/// One keep-alive HTTPS connection of the rustls client.
struct TlsConnection {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl TlsConnection {
    fn open(config: &Arc<rustls::ClientConfig>, addr: SocketAddr) -> std::io::Result<TlsConnection> {
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
        let name = ServerName::IpAddress(addr.ip().into());
        let connection = rustls::ClientConnection::new(config.clone(), name).map_err(std::io::Error::other)?;
        let mut stream = rustls::StreamOwned::new(connection, tcp);
        // Complete the handshake now, so that the server's certificate can be looked at.
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(TlsConnection { stream })
    }

    /// The end-entity certificate the server presented on this connection.
    fn server_certificate(&self) -> CertificateDer<'static> {
        self.stream.conn.peer_certificates().unwrap()[0].clone().into_owned()
    }

    /// One request on this connection (kept alive): the status and the body.
    fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<Answer> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes())?;
        self.stream.write_all(body)?;
        self.stream.flush()?;
        read_response(&mut self.stream)
    }
}

/// Reads one HTTP/1.1 response off a kept-alive connection: complete at its `Content-Length`
/// (or at once for a 204, which has no body).
fn read_response(stream: &mut impl Read) -> std::io::Result<Answer> {
    let mut raw = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        if let Some(split) = raw.windows(4).position(|window| window == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..split]).into_owned();
            let mut lines = head.split("\r\n");
            let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
            let headers: Vec<(String, String)> = lines
                .filter_map(|line| line.split_once(':'))
                .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
                .collect();
            let length = headers
                .iter()
                .find(|(name, _)| name == "content-length")
                .map_or(0, |(_, value)| value.parse::<usize>().unwrap());
            assert!(
                !headers.iter().any(|(name, _)| name == "transfer-encoding"),
                "this reader does not dechunk"
            );
            if raw.len() >= split + 4 + length {
                return Ok((status, headers, raw[split + 4..split + 4 + length].to_vec()));
            }
        }
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("closed after {} bytes", raw.len()),
            ));
        }
        raw.extend_from_slice(&buffer[..read]);
    }
}

/// `hookpipe serve` with TLS on a free port: the process, its address, the files it serves.
struct TlsServe {
    child: ChildGuard,
    addr: SocketAddr,
    cert_file: PathBuf,
    key_file: PathBuf,
    ca_file: PathBuf,
    log: PathBuf,
    /// The lines it printed on stdout (the listening line, the listener URLs).
    printed: std::sync::mpsc::Receiver<String>,
}

impl TlsServe {
    /// Writes `leaf` to `cert.pem`/`key.pem` in `dir`, the CA to `ca.pem`, and starts the server.
    fn start(dir: &Path, ca: &TestCa, leaf: &Leaf, brokers: &str) -> TlsServe {
        let (cert_file, key_file, ca_file) = (dir.join("cert.pem"), dir.join("key.pem"), dir.join("ca.pem"));
        std::fs::write(&cert_file, &leaf.cert_pem).unwrap();
        std::fs::write(&key_file, &leaf.key_pem).unwrap();
        std::fs::write(&ca_file, ca.certificate.pem()).unwrap();
        let config = dir.join("hookpipe.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\npublic_id_secret = \"test-secret-0123456789\"\n\
                 [server.tls]\ncert_file = {:?}\nkey_file = {:?}\n\
                 [pipeline]\npage_linger_ms = 0\n\
                 [[listeners]]\nid = \"orders\"\npublic_id = \"{PUBLIC_ID}\"\n",
                cert_file.display().to_string(),
                key_file.display().to_string(),
            ),
        )
        .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = dir.join("serve.log");
        let mut child = ChildGuard(
            Command::new(BIN)
                .args(["serve", "--config"])
                .arg(&config)
                .env("HOOKPIPE_SERVER__LISTEN", addr.to_string())
                .env("HOOKPIPE_KAFKA__BROKERS", brokers)
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("starting hookpipe serve"),
        );
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (sender, printed) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        TlsServe {
            child,
            addr,
            cert_file,
            key_file,
            ca_file,
            log,
            printed,
        }
    }

    /// Waits until `/readyz` answers 200 over HTTPS (Kafka reachable).
    fn wait_ready(&self, config: &Arc<rustls::ClientConfig>) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = TlsConnection::open(config, self.addr)
                .and_then(|mut connection| connection.request("GET", "/readyz", &[], b""))
                .is_ok_and(|(status, _, _)| status == 200);
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not ready over HTTPS in time; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The lines printed on stdout until one starts with `prefix` (that one included).
    fn printed_until(&self, prefix: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self
                .printed
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no line starting with {prefix:?} in {lines:?}"));
            let done = line.starts_with(prefix);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// Sends `signal` (`-HUP`, `-TERM`) to the process.
    fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
    }

    /// `/metrics` over a new HTTPS connection.
    fn metrics(&self, config: &Arc<rustls::ClientConfig>) -> String {
        let (status, _, body) = TlsConnection::open(config, self.addr)
            .unwrap()
            .request("GET", "/metrics", &[], b"")
            .unwrap();
        assert_eq!(status, 200);
        String::from_utf8(body).unwrap()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status (the drain period is the default 5 s).
    fn stop(mut self) {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{status:?}; log:\n{}", self.log_text());
                return;
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `curl --cacert` with `arguments`: its exit status, stdout and stderr.
fn curl(ca_file: &Path, arguments: &[&str]) -> (bool, String, String) {
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20", "--cacert"])
        .arg(ca_file)
        .args(arguments)
        .output()
        .expect("curl is installed (.ci/run installs it)");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// POSTs one JSON webhook with curl; the response head and body as curl printed them.
fn curl_post(serve: &TlsServe, body: &str) -> String {
    let (ok, stdout, stderr) = curl(
        &serve.ca_file,
        &[
            "--include",
            "--request",
            "POST",
            "--header",
            "Content-Type: application/json",
            "--data",
            body,
            &serve.url(&format!("/hooks/{PUBLIC_ID}")),
        ],
    );
    assert!(ok, "curl failed: {stderr}\nlog:\n{}", serve.log_text());
    stdout
}

/// The `X-Request-Id` of a response curl printed with `--include`.
fn request_id(response: &str) -> String {
    response
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("x-request-id"))
        .map(|(_, id)| id.trim().to_string())
        .unwrap_or_else(|| panic!("no X-Request-Id in {response}"))
}

/// The records of the pages topic, by request id: reads until `request_ids` are all there.
fn assert_in_kafka(brokers: &str, request_ids: &[String]) {
    let reader = TopicReader::open(
        &hookpipe::config::Settings::default().kafka,
        brokers,
        "hookpipe.pages",
        StartAt::Beginning,
        Duration::from_secs(20),
    )
    .unwrap();
    let pages = reader
        .read(request_ids.len(), Duration::from_secs(20), Duration::from_millis(500))
        .unwrap();
    let found: Vec<String> = pages
        .iter()
        .flat_map(|page| {
            let page: serde_json::Value = serde_json::from_slice(&page.payload).unwrap();
            page["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|record| record["request_id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    for id in request_ids {
        assert!(found.contains(id), "{id} not in Kafka ({found:?})");
    }
}

#[test]
fn serve_answers_https_with_its_certificate_publishes_to_kafka_and_refuses_plain_http() {
    let broker = Broker::start();
    let dir = TempDir::new("hookpipe-tls");
    let ca = TestCa::new();
    let leaf = ca.issue("hookpipe-first", 1);
    let serve = TlsServe::start(&dir.0, &ca, &leaf, &broker.bootstrap);
    let client = ca.client_config();

    let printed = serve.printed_until("hookpipe listening on");
    let base = format!("https://{}", serve.addr);
    assert_eq!(
        printed.last().unwrap(),
        &format!("hookpipe listening on {base} (public base URL {base})"),
        "the listening URL and the default public base URL say https"
    );
    serve.wait_ready(&client);
    let printed = serve.printed_until("listener orders");
    assert_eq!(
        printed.last().unwrap().split_whitespace().last().unwrap(),
        format!("{base}/hooks/{PUBLIC_ID}")
    );

    // A real TLS client: curl (OpenSSL) trusting only the test CA.
    let response = curl_post(&serve, r#"{"order":1}"#);
    assert!(
        response.starts_with("HTTP/1.1 204"),
        "acknowledged, over HTTP/1.1 (ALPN offers no h2): {response}"
    );
    let first_id = request_id(&response);
    // The rustls client, on one keep-alive connection: two webhooks, the server's certificate.
    let mut connection = TlsConnection::open(&client, serve.addr).unwrap();
    assert_eq!(connection.server_certificate(), leaf.der);
    let mut ids = vec![first_id];
    for order in [2, 3] {
        let (status, headers, _) = connection
            .request(
                "POST",
                &format!("/hooks/{PUBLIC_ID}"),
                &[("Content-Type", "application/json")],
                format!("{{\"order\":{order}}}").as_bytes(),
            )
            .unwrap();
        assert_eq!(status, 204);
        ids.push(
            headers
                .iter()
                .find(|(name, _)| name == "x-request-id")
                .unwrap()
                .1
                .clone(),
        );
    }
    assert_in_kafka(&broker.bootstrap, &ids);

    // Plain HTTP to the TLS port: no HTTP answer, and the connection is closed at once.
    let mut plain = TcpStream::connect(serve.addr).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let sent_at = Instant::now();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let read = plain.read_to_end(&mut answer);
    let closed_after = sent_at.elapsed();
    assert!(
        read.is_ok()
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{read:?}"
    );
    assert!(
        !answer.starts_with(b"HTTP/"),
        "no HTTP answer over plain HTTP: {answer:?}"
    );
    assert!(
        answer.is_empty() || answer[0] == 0x15,
        "nothing, or a TLS alert record: {answer:?}"
    );
    assert!(
        closed_after < Duration::from_secs(5),
        "closed at once, not at a timeout: {closed_after:?}"
    );
    let (ok, _, stderr) = curl(&serve.ca_file, &[&format!("http://{}/healthz", serve.addr)]);
    assert!(!ok, "curl over plain HTTP fails");
    eprintln!(
        "TLS FIGURES plain HTTP to the TLS port: closed after {closed_after:?}, {} bytes back; curl said: {}",
        answer.len(),
        stderr.trim()
    );
    // ...and a client that does not trust the certificate is refused by its own TLS stack.
    let untrusted = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20", &serve.url("/healthz")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert!(
        !untrusted.status.success() && stderr.contains("certificate"),
        "{stderr}"
    );
    drop(connection);

    // Still serving; every route of the port is HTTPS: the probes and /metrics too.
    let mut again = TlsConnection::open(&client, serve.addr).unwrap();
    assert_eq!(again.request("GET", "/healthz", &[], b"").unwrap().0, 200);
    let metrics = serve.metrics(&client);
    assert_eq!(
        metric(&metrics, "hookpipe_tls_certificate_expiry_timestamp_seconds"),
        Some(LEAF_NOT_AFTER),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "hookpipe_tls_reloads_total{outcome=\"reloaded\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(&metrics, "hookpipe_tls_reloads_total{outcome=\"failed\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &metrics,
            "hookpipe_http_requests_total{listener=\"orders\",status_class=\"2xx\"}"
        ),
        Some(3.0)
    );
    serve.stop();
}

#[test]
fn sighup_serves_a_new_certificate_to_new_connections_keeps_open_ones_and_survives_a_broken_file() {
    let broker = Broker::start();
    let dir = TempDir::new("hookpipe-tls-reload");
    let ca = TestCa::new();
    let first = ca.issue("hookpipe-first", 1);
    let serve = TlsServe::start(&dir.0, &ca, &first, &broker.bootstrap);
    let client = ca.client_config();
    serve.wait_ready(&client);
    let pid = serve.child.id();

    // A keep-alive connection opened on the first certificate.
    let mut kept = TlsConnection::open(&client, serve.addr).unwrap();
    assert_eq!(kept.server_certificate(), first.der);
    assert_eq!(kept.request("GET", "/healthz", &[], b"").unwrap().0, 200);

    // A new pair (another key, common name and serial) in the same files, then SIGHUP.
    let second = ca.issue("hookpipe-second", 2);
    std::fs::write(&serve.key_file, &second.key_pem).unwrap();
    std::fs::write(&serve.cert_file, &second.cert_pem).unwrap();
    let hangup_at = Instant::now();
    serve.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let fresh = TlsConnection::open(&client, serve.addr).unwrap();
        if fresh.server_certificate() == second.der {
            break;
        }
        assert_eq!(fresh.server_certificate(), first.der);
        // The kept connection is used meanwhile (also so that its keep-alive does not lapse).
        assert_eq!(kept.request("GET", "/healthz", &[], b"").unwrap().0, 200);
        assert!(
            Instant::now() < deadline,
            "no new certificate after SIGHUP; log:\n{}",
            serve.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let swapped_after = hangup_at.elapsed();
    assert!(
        serve.child.id() == pid && serve_running(&serve),
        "the same process serves on"
    );
    // curl (OpenSSL) sees the new subject too.
    let (ok, _, verbose) = curl(
        &serve.ca_file,
        &["--verbose", "--output", "/dev/null", &serve.url("/healthz")],
    );
    assert!(ok, "{verbose}");
    assert!(verbose.contains("CN=hookpipe-second"), "{verbose}");
    // The connection opened before the reload still works, on its own (first) certificate.
    let (status, headers, _) = kept
        .request(
            "POST",
            &format!("/hooks/{PUBLIC_ID}"),
            &[("Content-Type", "application/json")],
            br#"{"on":"kept connection"}"#,
        )
        .unwrap();
    assert_eq!(status, 204);
    assert_eq!(kept.server_certificate(), first.der);
    let mut ids = vec![headers
        .iter()
        .find(|(name, _)| name == "x-request-id")
        .unwrap()
        .1
        .clone()];
    ids.push(request_id(&curl_post(&serve, r#"{"on":"new connection"}"#)));
    let metrics = serve.metrics(&client);
    assert_eq!(
        metric(&metrics, "hookpipe_tls_reloads_total{outcome=\"reloaded\"}"),
        Some(1.0)
    );

    // A certificate file that does not load, then SIGHUP: the reload fails (the `failures`-th),
    // and the second pair stays in service.
    let refused_reload = |cert_pem: &str, failures: f64| {
        std::fs::write(&serve.cert_file, cert_pem).unwrap();
        serve.signal("-HUP");
        let deadline = Instant::now() + Duration::from_secs(10);
        while metric(
            &serve.metrics(&client),
            "hookpipe_tls_reloads_total{outcome=\"failed\"}",
        ) != Some(failures)
        {
            assert!(
                Instant::now() < deadline,
                "no failed reload counted; log:\n{}",
                serve.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            TlsConnection::open(&client, serve.addr).unwrap().server_certificate(),
            second.der
        );
    };
    // A broken PEM file.
    refused_reload("-----BEGIN CERTIFICATE-----\nbroken\n", 1.0);
    // A certificate whose key is not in the key file.
    refused_reload(&ca.issue("hookpipe-third", 3).cert_pem, 2.0);
    ids.push(request_id(&curl_post(&serve, r#"{"on":"after the failed reloads"}"#)));
    assert!(serve_running(&serve), "a failed reload does not stop the server");
    let log = serve.log_text();
    assert!(log.contains("TLS certificate reloaded"), "{log}");
    assert_eq!(log.matches("TLS certificate reload failed").count(), 2, "{log}");
    assert!(log.contains("does not match the certificate of"), "{log}");
    assert!(
        !log.contains(second.key_pem.lines().nth(1).unwrap()),
        "no key material in the log"
    );
    assert_in_kafka(&broker.bootstrap, &ids);
    eprintln!("TLS FIGURES SIGHUP: new certificate on new connections within {swapped_after:?}");
    drop(kept);
    serve.stop();
}

fn serve_running(serve: &TlsServe) -> bool {
    // `try_wait` needs `&mut`; a signal 0 asks the kernel whether the pid is alive instead.
    Command::new("kill")
        .args(["-0", &serve.child.id().to_string()])
        .status()
        .unwrap()
        .success()
}

#[test]
fn check_config_names_a_missing_unreadable_or_mismatched_tls_file() {
    let dir = TempDir::new("hookpipe-tls-check");
    let ca = TestCa::new();
    let (first, second) = (ca.issue("first", 1), ca.issue("second", 2));
    let write = |name: &str, text: &str| {
        let path = dir.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (cert, key, other_key) = (
        write("cert.pem", &first.cert_pem),
        write("key.pem", &first.key_pem),
        write("other-key.pem", &second.key_pem),
    );
    let garbage = write("garbage.pem", "not pem at all\n");
    let config = write(
        "hookpipe.toml",
        &format!("[server]\npublic_id_secret = \"test-secret-0123456789\"\n[server.tls]\ncert_file = {cert:?}\nkey_file = {key:?}\n"),
    );
    let check = |env: &[(&str, &str)]| {
        let output = Command::new(BIN)
            .args(["check-config", &config])
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (ok, stdout) = check(&[]);
    assert!(ok, "{stdout}");
    let missing = dir.0.join("missing.pem").display().to_string();
    for (env, expected) in [
        (
            ("HOOKPIPE_SERVER__TLS__KEY_FILE", other_key.as_str()),
            format!("error: server.tls.key_file: {other_key} does not match the certificate of {cert}"),
        ),
        (
            ("HOOKPIPE_SERVER__TLS__CERT_FILE", missing.as_str()),
            format!("error: server.tls.cert_file: cannot read {missing}: No such file or directory"),
        ),
        (
            ("HOOKPIPE_SERVER__TLS__CERT_FILE", garbage.as_str()),
            format!("error: server.tls.cert_file: {garbage} holds no PEM certificate (BEGIN CERTIFICATE)"),
        ),
        (
            ("HOOKPIPE_SERVER__TLS__KEY_FILE", garbage.as_str()),
            format!("error: server.tls.key_file: {garbage} holds no PEM private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"),
        ),
    ] {
        let (ok, stdout) = check(&[env]);
        assert!(!ok, "{env:?}: {stdout}");
        assert!(stdout.lines().any(|line| line.starts_with(&expected)), "{env:?}: expected {expected:?} in\n{stdout}");
    }
}
