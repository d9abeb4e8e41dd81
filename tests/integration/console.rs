//! The web console, in a real browser: the real server on a real broker (Tansu), an import
//! worker and an HTTP import target, driven by `tests/console/e2e.mjs` (playwright-core and
//! Debian's headless Chromium) through sign-in, creating an HMAC listener, a signed webhook sent
//! with curl, sample data, a debug window, an import error retried from the console, mock
//! output, the overview, URL regeneration and secret rotation, with hostile payloads that must
//! stay text. It writes a screenshot of each page (`HOOKPIPE_SCREENSHOTS`, default
//! `target/console-screenshots`). Also: what the console is served with, without a browser.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::app::{settings, spawn_app};
use crate::helpers::broker::{free_port, Broker};
use crate::helpers::http::request;
use crate::helpers::process::ChildGuard;
use crate::helpers::target::{Reply, TargetServer};
use crate::helpers::worker::{eventually, InProcessWorker};

const TOKEN: &str = "console-admin-token-0123456789";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The whole browser scenario; it takes well under a minute when all is well.
const E2E_TIMEOUT: Duration = Duration::from_secs(300);

fn config(port: u16, target_url: &str) -> String {
    format!(
        r#"
[server]
public_id_secret = "test-secret-0123456789"
listen = "127.0.0.1:{port}"
admin_token = "{TOKEN}"
[pipeline]
page_linger_ms = 0
[worker]
metrics_listen = "127.0.0.1:0"
session_timeout_ms = 6000
[worker.default_target]
type = "http"
url = "{target_url}"
mode = "record"
initial_backoff_ms = 50
max_backoff_ms = 200
[[listeners]]
id = "from-file"
"#
    )
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What the browser test needs; `None` with the reason when it is missing. In CI (`CI` set)
/// a missing piece is a failure: `.ci/run` installs them.
fn browser_tools() -> Option<PathBuf> {
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    let playwright = repo().join("tests/console/node_modules/playwright-core");
    let missing = [
        (!node_ok).then_some("node"),
        (!Path::new(CHROMIUM).exists()).then_some(CHROMIUM),
        (!playwright.exists()).then_some("tests/console/node_modules/playwright-core (npm ci in tests/console)"),
    ];
    let missing: Vec<&str> = missing.into_iter().flatten().collect();
    if missing.is_empty() {
        return Some(repo().join("tests/console/e2e.mjs"));
    }
    let message = format!("console browser test needs: {}", missing.join(", "));
    assert!(std::env::var_os("CI").is_none(), "{message} (.ci/run installs them)");
    eprintln!("SKIPPED: {message}");
    None
}

#[test]
fn the_console_works_in_a_real_browser_against_the_real_server() {
    let Some(script) = browser_tools() else { return };
    let broker = Broker::start();
    let failing = Arc::new(AtomicBool::new(true));
    let target_failing = failing.clone();
    let target = TargetServer::start(move |request, _| {
        if request.body["control"] == "recover" {
            target_failing.store(false, Ordering::SeqCst);
            return Reply::status(200);
        }
        let refused = request.body["data"]["sku"]
            .as_str()
            .is_some_and(|sku| sku.starts_with("FAIL"));
        if refused && target_failing.load(Ordering::SeqCst) {
            // Hostile text in the target's answer too: the errors page must show it as text.
            Reply::json(
                422,
                json!({"error": "\"><img src=x onerror=\"window.__xss=3\"> out of stock"}),
            )
        } else {
            Reply::status(201)
        }
    });
    let port = free_port();
    let settings = settings(&config(port, &target.url()), &broker.bootstrap);
    let app = spawn_app(settings.clone(), &broker.bootstrap);
    let _worker = InProcessWorker::start(&settings, &broker.bootstrap);

    let shots = std::env::var_os("HOOKPIPE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/console-screenshots"));
    let mut child = ChildGuard(
        Command::new("node")
            .arg(&script)
            .current_dir(repo())
            .env("HOOKPIPE_URL", format!("http://{}", app.addr))
            .env("HOOKPIPE_TOKEN", TOKEN)
            .env("HOOKPIPE_TARGET_URL", target.url())
            .env("HOOKPIPE_SCREENSHOTS", &shots)
            .env("CHROMIUM", CHROMIUM)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node starts"),
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < E2E_TIMEOUT,
            "the browser test ran over {E2E_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    println!("{out}");
    eprintln!("{err}");
    assert!(status.success(), "the browser test failed:\n{out}\n{err}");
    assert!(out.contains("e2e: ok"), "{out}");

    // What the browser did, seen from outside: the record refused first was imported on its
    // second attempt, after the retry from the console.
    let imported = eventually("the retried record imported", Duration::from_secs(30), || {
        target
            .received()
            .into_iter()
            .find(|r| r.status == 201 && r.body["data"]["sku"] == "FAIL-1")
    });
    assert_eq!(imported.body["attempt"], 2);
    for page in [
        "signin",
        "listeners",
        "listener",
        "sample-data",
        "mock-output",
        "debug-logs",
        "errors",
        "overview",
    ] {
        let path = shots.join(format!("{page}.png"));
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "{} is missing or empty", path.display());
    }
}

#[test]
fn the_console_is_served_with_a_strict_policy_only_when_the_api_is_on() {
    let broker = Broker::start();
    let on = spawn_app(
        settings(&config(free_port(), "http://127.0.0.1:9/import"), &broker.bootstrap),
        &broker.bootstrap,
    );
    let redirect = request(on.addr, "GET", "/console", &[], b"");
    assert_eq!((redirect.status, redirect.header("location")), (302, Some("/console/")));
    let index = request(on.addr, "GET", "/console/", &[], b"");
    assert_eq!(index.status, 200);
    let csp = index.header("content-security-policy").unwrap_or_default().to_string();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(index
        .text()
        .contains("<script type=\"module\" src=\"/console/app.js\"></script>"));
    assert!(index.header("set-cookie").is_none());
    let script = request(on.addr, "GET", "/console/app.js", &[], b"");
    assert_eq!(script.status, 200);
    assert!(script.header("content-type").unwrap().starts_with("text/javascript"));
    assert_eq!(script.header("x-content-type-options"), Some("nosniff"));
    for missing in ["/console/nope.js", "/console/..%2Fapp.js", "/console/app.js/x"] {
        assert_eq!(request(on.addr, "GET", missing, &[], b"").status, 404, "{missing}");
    }
    on.stop();

    // Without an admin token the API is off, and so is the console.
    let off_config =
        config(free_port(), "http://127.0.0.1:9/import").replace(&format!("admin_token = \"{TOKEN}\"\n"), "");
    let off = spawn_app(settings(&off_config, &broker.bootstrap), &broker.bootstrap);
    for path in ["/console", "/console/", "/console/app.js"] {
        assert_eq!(request(off.addr, "GET", path, &[], b"").status, 404, "{path}");
    }
    off.stop();
}
