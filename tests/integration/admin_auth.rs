//! The management API's token under attack, against the built binary (`hookpipe serve` on the
//! embedded cluster, logging at `trace`): the token never appears in what the process prints
//! (start, right and wrong tokens, the lockout), and repeated failures from one peer end in 429
//! with `Retry-After` without the token being looked at, the right token included.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::broker::free_port;
use crate::helpers::http::request;
use crate::helpers::process::ChildGuard;

const BIN: &str = env!("CARGO_BIN_EXE_hookpipe");
const TOKEN: &str = "admin-token-MUST-NOT-LEAK-0123456789";
const WRONG: &str = "wrong-token-MUST-NOT-LEAK-9876543210";

#[test]
fn the_token_is_never_logged_and_repeated_failures_get_429_without_a_look_at_the_token() {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("hookpipe-admin-auth-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("hookpipe.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_id_secret = \"auth-test-public-id-secret-0123\"\n\
             admin_token = \"{TOKEN}\"\nadmin_auth_max_failures = 5\nadmin_auth_window_secs = 600\n\
             [[listeners]]\nid = \"orders\"\n"
        ),
    )
    .unwrap();
    let mut serve = ChildGuard(
        Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&config)
            .env("HOOKPIPE_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout = serve.stdout.take().unwrap();
    let mut stderr = serve.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).ok();
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).ok();
        text
    });
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready =
            std::net::TcpStream::connect(addr).is_ok() && request(addr, "GET", "/readyz", &[], b"").status == 200;
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "serve did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }

    let call = |token: &str| {
        let auth = format!("Bearer {token}");
        request(addr, "GET", "/api/v1/listeners", &[("Authorization", &auth)], b"")
    };
    assert_eq!(call(TOKEN).status, 200);
    // Four failures of five: still a 401 each, and the right token still works (and forgets them).
    for _ in 0..4 {
        assert_eq!(call(WRONG).status, 401);
    }
    assert_eq!(call(TOKEN).status, 200);
    for attempt in 1..=5 {
        let response = call(WRONG);
        assert_eq!(response.status, 401, "failure {attempt} is answered 401");
    }
    // Locked out: 429 with Retry-After for the window, whatever the token.
    for token in [WRONG, TOKEN, ""] {
        let response = call(token);
        assert_eq!(response.status, 429, "{token:?}: {}", response.text());
        let retry_after: u64 = response.header("retry-after").expect("Retry-After").parse().unwrap();
        assert!((1..=600).contains(&retry_after), "{retry_after}");
        assert!(!response.text().contains(TOKEN) && !response.text().contains(WRONG));
    }
    // Ingest is not the API: webhooks from the same peer are still served.
    let metrics = request(addr, "GET", "/metrics", &[], b"").text();
    let counted = |outcome: &str| {
        metrics
            .lines()
            .find(|line| line.starts_with(&format!("hookpipe_api_auth_failures_total{{outcome=\"{outcome}\"}}")))
            .and_then(|line| line.rsplit(' ').next())
            .map(|value| value.to_string())
    };
    assert_eq!(counted("wrong_token").as_deref(), Some("9"), "{metrics}");
    assert_eq!(counted("locked_out").as_deref(), Some("3"), "{metrics}");

    assert!(Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap()
        .success());
    let _ = serve.wait();
    let printed = out_reader.join().unwrap() + &err_reader.join().unwrap();
    assert!(printed.contains("listening on"), "the start was captured:\n{printed}");
    assert!(
        printed.contains("too many failed management-API authentications"),
        "the lockout is logged"
    );
    for secret in [TOKEN, WRONG, "MUST-NOT-LEAK"] {
        assert!(!printed.contains(secret), "{secret} appears in the output:\n{printed}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
