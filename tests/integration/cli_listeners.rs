//! `hookpipe listeners …` against a real server (port 0, real Tansu broker): the management CLI
//! end to end, and its error paths (wrong token, API disabled, server unreachable).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::app::{settings, spawn_app};
use crate::helpers::broker::{free_port, Broker};
use crate::helpers::http::request;

const BIN: &str = env!("CARGO_BIN_EXE_hookpipe");
const ADMIN_TOKEN: &str = "cli-test-admin-token-0123456789";
const FIRST_URL_TOKEN: &str = "first-url-token-0123456789";
const ADDED_URL_TOKEN: &str = "added-url-token-0123456789";

/// What one CLI run printed.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "command failed: {self:#?}");
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// Runs `hookpipe listeners ARGS` against `server` with `token` in the environment.
fn cli(server: &str, token: Option<&str>, args: &[&str]) -> Run {
    let mut command = Command::new(BIN);
    command.arg("listeners").args(args).env("HOOKPIPE_SERVER", server);
    for proxy in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"] {
        command.env_remove(proxy);
    }
    match token {
        Some(token) => command.env("HOOKPIPE_ADMIN_TOKEN", token),
        None => command.env_remove("HOOKPIPE_ADMIN_TOKEN"),
    };
    let output = command.output().expect("running hookpipe");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hookpipe-cli-listeners-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Fingerprints of the view's URL tokens.
fn token_fingerprints(view: &Value) -> Vec<String> {
    view["verification"]["tokens"]
        .as_array()
        .unwrap_or_else(|| panic!("no verification.tokens in {view}"))
        .iter()
        .map(|t| t["fingerprint"].as_str().expect("fingerprint").to_string())
        .collect()
}

/// Retries `attempt` every 200 ms for up to 10 s.
fn poll<T>(what: &str, mut attempt: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match attempt() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => panic!("{what} did not happen within 10 s; last: {last}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

const SERVER_CONFIG: &str = r#"
[server]
public_id_secret = "test-secret-0123456789"
listen = "127.0.0.1:0"
admin_token = "cli-test-admin-token-0123456789"

[pipeline]
page_linger_ms = 0

[[listeners]]
id = "cfg-forms"
name = "Forms from the config file"
"#;

#[test]
fn listeners_lifecycle_through_the_cli() {
    let broker = Broker::start();
    let app = spawn_app(settings(SERVER_CONFIG, &broker.bootstrap), &broker.bootstrap);
    let server = format!("http://{}", app.addr);
    let hp = |args: &[&str]| cli(&server, Some(ADMIN_TOKEN), args);

    // create from a file
    let file = temp_file(
        "listener.json",
        &serde_json::json!({
            "id": "cli-orders",
            "name": "CLI orders",
            "description": "created by the CLI test",
            "resource_path": "items",
            "page_size": 10,
            "verification": {"type": "secret_url", "tokens": [FIRST_URL_TOKEN]},
        })
        .to_string(),
    );
    let created = hp(&["create", "--file", file.to_str().unwrap()]).ok();
    assert!(created.stdout.contains("created listener cli-orders"), "{created:#?}");
    assert!(
        !created.stdout.contains(FIRST_URL_TOKEN),
        "secret printed: {created:#?}"
    );

    // creating it again is a conflict
    let again = hp(&["create", "--file", file.to_str().unwrap()]);
    assert_eq!(again.code, 1, "{again:#?}");
    assert!(again.stderr.contains("409"), "{again:#?}");

    // list: a table with both listeners
    let list = hp(&["list"]).ok();
    let header = list.stdout.lines().next().unwrap_or_default();
    for column in ["ID", "NAME", "SOURCE", "VERIFICATION", "TOPIC", "URL"] {
        assert!(header.contains(column), "{list:#?}");
    }
    let row = list
        .stdout
        .lines()
        .find(|line| line.starts_with("cli-orders "))
        .unwrap_or_else(|| panic!("no cli-orders row: {list:#?}"));
    assert!(row.contains(" api ") && row.contains("secret_url"), "{row}");
    assert!(
        list.stdout
            .lines()
            .any(|line| line.starts_with("cfg-forms ") && line.contains(" config ")),
        "{list:#?}"
    );

    // show --json: the stored settings with the token as a fingerprint
    let shown = hp(&["show", "cli-orders", "--json"]).ok();
    assert!(!shown.stdout.contains(FIRST_URL_TOKEN), "secret leaked: {shown:#?}");
    let view = shown.json();
    assert_eq!(view["id"], "cli-orders");
    assert_eq!(view["page_size"], 10);
    assert_eq!(view["source"], "api");
    let original_fingerprints = token_fingerprints(&view);
    assert_eq!(original_fingerprints.len(), 1, "{view}");

    // show: key: value lines
    let shown = hp(&["show", "cli-orders"]).ok();
    assert!(
        shown
            .stdout
            .lines()
            .any(|l| l.starts_with("id:") && l.ends_with(" cli-orders")),
        "{shown:#?}"
    );
    assert!(
        shown
            .stdout
            .lines()
            .any(|l| l.starts_with("verification.tokens:") && l.contains(&original_fingerprints[0])),
        "{shown:#?}"
    );

    // update --set: a merge patch; untouched keys and the token are kept
    hp(&[
        "update",
        "cli-orders",
        "--set",
        "page_size=50",
        "--set",
        "response.status=202",
    ])
    .ok();
    let view = hp(&["show", "cli-orders", "--json"]).ok().json();
    assert_eq!(view["page_size"], 50, "{view}");
    assert_eq!(view["response"]["status"], 202, "{view}");
    assert_eq!(view["resource_path"], "items", "{view}");
    assert_eq!(token_fingerprints(&view), original_fingerprints, "{view}");

    // a validation error names the field, exit 1
    let invalid = hp(&["update", "cli-orders", "--set", "page_size=0"]);
    assert_eq!(invalid.code, 1, "{invalid:#?}");
    assert!(
        invalid.stderr.contains("400") && invalid.stderr.contains("page_size"),
        "{invalid:#?}"
    );

    // a listener from the configuration file is read-only
    let read_only = hp(&["update", "cfg-forms", "--set", "page_size=5"]);
    assert_eq!(read_only.code, 1, "{read_only:#?}");
    assert!(read_only.stderr.contains("409"), "{read_only:#?}");

    // a usage error is exit 2 and never reaches the server
    let usage = hp(&["update", "cli-orders", "--set", "page_size"]);
    assert_eq!(usage.code, 2, "{usage:#?}");

    // url: the full URL with its token; --regenerate changes it
    let url = hp(&["url", "cli-orders"]).ok().stdout.trim().to_string();
    assert!(url.starts_with("http") && url.contains("/hooks/"), "{url}");
    assert!(url.contains(FIRST_URL_TOKEN), "a secret URL includes its token: {url}");
    let regenerated = hp(&["url", "cli-orders", "--regenerate"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(regenerated.contains("/hooks/"), "{regenerated}");
    assert_ne!(regenerated, url);
    let url = hp(&["url", "cli-orders"]).ok().stdout.trim().to_string();
    assert_eq!(url, regenerated);
    let url_json = hp(&["url", "cli-orders", "--json"]).ok().json();
    assert_eq!(url_json["url"], url.as_str());
    assert!(
        url.contains(url_json["public_id"].as_str().expect("public_id")),
        "{url_json}"
    );

    // secrets add / retire
    let before = token_fingerprints(&hp(&["show", "cli-orders", "--json"]).ok().json());
    let added = hp(&["secrets", "cli-orders", "add", "--secret", ADDED_URL_TOKEN]).ok();
    assert!(!added.stdout.contains(ADDED_URL_TOKEN), "secret printed: {added:#?}");
    let after_add = token_fingerprints(&hp(&["show", "cli-orders", "--json"]).ok().json());
    assert_eq!(after_add.len(), before.len() + 1, "{before:?} → {after_add:?}");
    let new_fingerprint = after_add
        .iter()
        .find(|f| !before.contains(f))
        .expect("a new fingerprint")
        .clone();
    assert!(added.stdout.contains(&new_fingerprint), "{added:#?}");
    let retired = hp(&["secrets", "cli-orders", "retire", &new_fingerprint]).ok();
    assert!(!retired.stdout.contains(&new_fingerprint), "{retired:#?}");
    let after_retire = token_fingerprints(&hp(&["show", "cli-orders", "--json"]).ok().json());
    assert_eq!(after_retire, before);

    // debug start / status
    let started = hp(&["debug", "cli-orders", "start", "--minutes", "5"]).ok();
    assert!(started.stdout.contains("open until"), "{started:#?}");
    let status = hp(&["debug", "cli-orders", "status", "--json"]).ok().json();
    assert_eq!(status["open"], true, "{status}");
    assert!(status["until"].is_string(), "{status}");
    assert!(hp(&["debug", "cli-orders", "status"])
        .ok()
        .stdout
        .contains("open until"));

    // a webhook to the URL `url` printed; then its sample
    let no_sample = hp(&["sample", "cli-orders"]);
    assert_eq!(no_sample.code, 1, "no sample before any webhook: {no_sample:#?}");
    let path = &url[url.find("/hooks/").expect("a /hooks/ URL")..];
    let response = request(
        app.addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        br#"{"items":[{"id":"a1","total":3},{"id":"a2","total":4}]}"#,
    );
    assert_eq!(response.status, 202, "{}", response.text());
    let request_id = response.header("x-request-id").expect("X-Request-Id").to_string();
    let sample = poll("a sample", || {
        let run = hp(&["sample", "cli-orders", "--json"]);
        if run.code == 0 {
            Ok(run.json())
        } else {
            Err(format!("{run:?}"))
        }
    });
    assert_eq!(sample["source"], "webhook", "{sample}");
    assert_eq!(sample["request_id"], request_id.as_str(), "{sample}");
    assert_eq!(sample["records"][0]["id"], "a1", "{sample}");
    let pretty = hp(&["sample", "cli-orders"]).ok();
    assert!(pretty.stdout.contains("\n  \"records\": ["), "pretty JSON: {pretty:#?}");

    // debug logs: the captured request in the table, then in full
    let logs = poll("a debug capture", || {
        let run = hp(&["debug", "cli-orders", "logs"]);
        if run.code == 0 && run.stdout.contains(&request_id) {
            Ok(run)
        } else {
            Err(format!("{run:?}"))
        }
    });
    let header = logs.stdout.lines().next().unwrap_or_default();
    for column in ["TIME", "STATUS", "METHOD", "LATENCY", "VERIFICATION", "REQUEST ID"] {
        assert!(header.contains(column), "{logs:#?}");
    }
    let row = logs.stdout.lines().find(|l| l.contains(&request_id)).unwrap();
    assert!(row.contains("202") && row.contains("POST"), "{row}");
    let capture = hp(&["debug", "cli-orders", "logs", "--request", &request_id, "--json"])
        .ok()
        .json();
    assert_eq!(capture["request_id"], request_id.as_str(), "{capture}");
    assert_eq!(capture["status"], 202, "{capture}");
    let details = hp(&["debug", "cli-orders", "logs", "--request", &request_id]).ok();
    assert!(details.stdout.contains("\"a1\""), "the body is shown: {details:#?}");
    let url_token = path.rsplit('/').next().unwrap();
    assert!(
        !details.stdout.contains(url_token),
        "capture leaks the URL token: {details:#?}"
    );

    // debug stop
    hp(&["debug", "cli-orders", "stop"]).ok();
    let status = hp(&["debug", "cli-orders", "status", "--json"]).ok().json();
    assert_eq!(status["open"], false, "{status}");
    assert!(hp(&["debug", "cli-orders", "status"]).ok().stdout.contains("closed"));

    // a wrong token: exit 1 and a message that says so
    let wrong = cli(&server, Some("not-the-admin-token"), &["list"]);
    assert_eq!(wrong.code, 1, "{wrong:#?}");
    assert!(
        wrong.stderr.contains("401") && wrong.stderr.contains("HOOKPIPE_ADMIN_TOKEN"),
        "{wrong:#?}"
    );
    assert!(wrong.stdout.is_empty(), "{wrong:#?}");
    // no token at all: a usage error before any request
    let missing = cli(&server, None, &["list"]);
    assert_eq!(missing.code, 2, "{missing:#?}");
    assert!(missing.stderr.contains("HOOKPIPE_ADMIN_TOKEN"), "{missing:#?}");

    // delete
    let deleted = hp(&["delete", "cli-orders"]).ok();
    assert!(deleted.stdout.contains("deleted listener cli-orders"), "{deleted:#?}");
    let gone = hp(&["show", "cli-orders"]);
    assert_eq!(gone.code, 1, "{gone:#?}");
    assert!(gone.stderr.contains("404"), "{gone:#?}");
    let list = hp(&["list"]).ok();
    assert!(!list.stdout.contains("cli-orders"), "{list:#?}");
}

#[test]
fn without_an_admin_token_the_server_says_the_api_is_disabled() {
    let broker = Broker::start();
    let app = spawn_app(settings("", &broker.bootstrap), &broker.bootstrap);
    let run = cli(&format!("http://{}", app.addr), Some(ADMIN_TOKEN), &["list"]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("management API disabled"), "{run:#?}");
}

#[test]
fn an_unreachable_server_is_named() {
    let port = free_port();
    let server = format!("http://127.0.0.1:{port}");
    let run = cli(&server, Some(ADMIN_TOKEN), &["list"]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains("cannot reach") && run.stderr.contains(&server),
        "{run:#?}"
    );
    assert!(run.stdout.is_empty(), "{run:#?}");
}
