//! The `hookpipe` binary as a newcomer uses it: check-config, serve on the embedded default,
//! tail, and a graceful SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::broker::free_port;
use crate::helpers::http::request;
use crate::helpers::process::ChildGuard;

const BIN: &str = env!("CARGO_BIN_EXE_hookpipe");

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hookpipe-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_config_names_every_bad_key() {
    let path = temp_file(
        "bad.toml",
        r#"
[server]
public_id_secret = "short"
[kafka]
message_timeout_ms = 60000
[[listeners]]
id = "orders"
page_size = 0
trace_key_template = "{{#each}}"
[listeners.response]
status = 302
"#,
    );
    let output = Command::new(BIN).arg("check-config").arg(&path).output().unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    for key in [
        "server.public_id_secret",
        "kafka.message_timeout_ms",
        "listeners[orders].page_size",
        "listeners[orders].trace_key_template",
        "listeners[orders].response.status",
    ] {
        assert!(
            stdout.contains(&format!("error: {key}:")),
            "missing {key} in:\n{stdout}"
        );
    }

    let output = Command::new(BIN)
        .args(["check-config", "config/hookpipe.toml"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));

    // Unknown keys are named too.
    let path = temp_file("typo.toml", "[kafka]\nbrokerz = \"x\"\n");
    let output = Command::new(BIN).arg("check-config").arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success() && stdout.contains("brokerz"), "{stdout}");
}

#[test]
fn serve_on_the_embedded_default_prints_urls_and_tail_shows_pages() {
    let port = free_port();
    let mut serve = ChildGuard(
        Command::new(BIN)
            .args(["serve", "--config", "config/hookpipe.toml"])
            .env("HOOKPIPE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("HOOKPIPE_SERVER__EXTERNAL_BASE_URL", format!("http://127.0.0.1:{port}"))
            .env("HOOKPIPE_PIPELINE__PAGE_LINGER_MS", "500")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Drain stderr while the server runs so its logs can never fill the pipe and block it.
    let mut serve_stderr = serve.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut serve_stderr, &mut text).unwrap();
        text
    });
    let mut lines = BufReader::new(serve.stdout.take().unwrap()).lines();
    let mut bootstrap = None;
    let mut urls = std::collections::HashMap::new();
    while urls.len() < 3 {
        let line = lines.next().expect("serve output").unwrap();
        if let Some(rest) = line.strip_prefix("embedded Kafka (in memory, not durable) at ") {
            bootstrap = Some(rest.trim().to_string());
        }
        if let Some(rest) = line.strip_prefix("listener ") {
            let mut parts = rest.split_whitespace();
            urls.insert(parts.next().unwrap().to_string(), parts.next().unwrap().to_string());
        }
    }
    let bootstrap = bootstrap.expect("embedded bootstrap printed");
    let orders_url = &urls["orders"];
    assert!(
        orders_url.starts_with(&format!("http://127.0.0.1:{port}/hooks/")),
        "{orders_url}"
    );
    let path = orders_url
        .trim_start_matches(&format!("http://127.0.0.1:{port}"))
        .to_string();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    let response = request(
        addr,
        "POST",
        &path,
        &[("Content-Type", "application/json")],
        br#"{"data":{"items":[{"order_id":"42","total":3}]}}"#,
    );
    assert_eq!(response.status, 204, "{}", response.text());

    let output = Command::new(BIN)
        .args([
            "tail",
            "--config",
            "config/hookpipe.toml",
            "--brokers",
            &bootstrap,
            "--from-beginning",
            "--count",
            "1",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let page: serde_json::Value = serde_json::from_slice(output.stdout.trim_ascii()).unwrap();
    assert_eq!(page["listener_id"], "orders");
    assert_eq!(page["records"][0]["trace_key"], "42");
    assert_eq!(
        page["records"][0]["data_uri"],
        "https://shop.example.com/admin/orders/42"
    );

    // SIGHUP without server.tls: logged and ignored (it used to end the process).
    let pid = serve.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(serve.try_wait().unwrap().is_none(), "serve survives SIGHUP");
    let response = request(
        addr,
        "POST",
        &path,
        &[("Content-Type", "application/json")],
        br#"{"data":{"items":[{"order_id":"41"}]}}"#,
    );
    assert_eq!(response.status, 204, "after SIGHUP: {}", response.text());

    // SIGTERM while a request waits on its page (linger 500 ms): it still gets its 204.
    let in_flight = std::thread::spawn(move || {
        request(
            addr,
            "POST",
            &path,
            &[("Content-Type", "application/json")],
            br#"{"data":{"items":[{"order_id":"43"}]}}"#,
        )
    });
    std::thread::sleep(Duration::from_millis(150));
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let response = in_flight.join().unwrap();
    assert_eq!(
        response.status,
        204,
        "in-flight request finished during shutdown: {}",
        response.text()
    );
    let status = wait_with_timeout(&mut serve, Duration::from_secs(20));
    assert!(status.success(), "serve exits cleanly on SIGTERM");
    let stderr = stderr_reader.join().unwrap();
    assert!(
        stderr.contains("NOTHING IS DURABLE"),
        "loud warning about the embedded cluster:\n{stderr}"
    );
    assert!(stderr.contains("SIGHUP: nothing to reload"), "SIGHUP logged:\n{stderr}");
}

fn wait_with_timeout(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
