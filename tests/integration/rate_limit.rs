//! Leaky buckets per listener and per instance, driven by an injected clock: exact counts,
//! 429 with Retry-After, nothing published for limited requests.

use std::sync::Arc;
use std::time::Duration;

use hookpipe::pipeline::rate_limit::bucket::ManualClock;

use crate::helpers::app::{settings, spawn_app_with_clock};
use crate::helpers::broker::Broker;
use crate::helpers::http::request;
use crate::helpers::signing::hmac_sha256_hex;

#[test]
fn listener_bucket_limits_bursts_and_refills_with_the_clock() {
    let broker = Broker::start();
    let config = r#"
[pipeline]
page_linger_ms = 0
[[listeners]]
id = "limited"
[listeners.rate_limit]
capacity = 5
refill_per_sec = 2
[[listeners]]
id = "other"
"#;
    let clock = Arc::new(ManualClock::default());
    let app = spawn_app_with_clock(settings(config, &broker.bootstrap), &broker.bootstrap, clock.clone());
    let post = |listener: &str| app.post(listener, "application/json", b"{\"a\":1}");

    let statuses: Vec<u16> = (0..8).map(|_| post("limited").status).collect();
    assert_eq!(statuses, vec![204, 204, 204, 204, 204, 429, 429, 429]);
    let limited = post("limited");
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.header("retry-after"),
        Some("1"),
        "whole seconds until a token is free"
    );
    assert_eq!(limited.json()["error"], "rate limit exceeded; retry later");
    // Another listener has its own bucket.
    assert_eq!(post("other").status, 204);

    clock.advance(Duration::from_secs(1));
    let statuses: Vec<u16> = (0..3).map(|_| post("limited").status).collect();
    assert_eq!(statuses, vec![204, 204, 429], "two tokens per second");

    clock.advance(Duration::from_secs(3600));
    let accepted = (0..10).filter(|_| post("limited").status == 204).count();
    assert_eq!(accepted, 5, "an idle bucket refills only up to its capacity");

    let pages = app.read_pages(13);
    assert_eq!(pages.len(), 13, "only accepted requests were published");

    // All of the above with fleet limits on (real broker): a lone member, holding every bucket
    // whole, behaves exactly as an instance without them.
    let metrics = request(app.addr, "GET", "/metrics", &[], b"").text();
    assert!(metrics.contains("hookpipe_rate_limit_fleet_members 1\n"), "{metrics}");
    assert!(
        metrics.contains("hookpipe_rate_limit_fleet_share{listener=\"limited\",scope=\"listener\"} 1\n"),
        "{metrics}"
    );
}

#[test]
fn global_bucket_caps_the_instance() {
    let broker = Broker::start();
    let config = r#"
[server]
public_id_secret = "test-secret-0123456789"
listen = "127.0.0.1:0"
global_rate_limit = { capacity = 3, refill_per_sec = 1 }
[[listeners]]
id = "a"
[[listeners]]
id = "b"
"#;
    let clock = Arc::new(ManualClock::default());
    let app = spawn_app_with_clock(settings(config, &broker.bootstrap), &broker.bootstrap, clock.clone());
    let statuses: Vec<u16> = ["a", "b", "a", "b"]
        .iter()
        .map(|l| app.post(l, "application/json", b"{}").status)
        .collect();
    assert_eq!(statuses, vec![204, 204, 204, 429]);
    clock.advance(Duration::from_secs(1));
    assert_eq!(app.post("b", "application/json", b"{}").status, 204);
}

#[test]
fn rate_limiting_happens_before_parsing() {
    let broker = Broker::start();
    let config = r#"
[[listeners]]
id = "limited"
[listeners.rate_limit]
capacity = 1
refill_per_sec = 1
"#;
    let clock = Arc::new(ManualClock::default());
    let app = spawn_app_with_clock(settings(config, &broker.bootstrap), &broker.bootstrap, clock);
    assert_eq!(app.post("limited", "application/json", b"{}").status, 204);
    // A malformed body over the limit is refused by the bucket, not the parser: 429, not 400.
    assert_eq!(app.post("limited", "application/json", b"{not json").status, 429);
}

#[test]
fn an_empty_bucket_refuses_before_verification_and_unsigned_requests_never_drain_it() {
    let broker = Broker::start();
    let config = r#"
[pipeline]
page_linger_ms = 0
[[listeners]]
id = "signed"
[listeners.verification]
type = "hmac"
algorithm = "sha256"
encoding = "hex"
header = "X-Signature"
secrets = ["rate-limit-test-secret"]
[listeners.rate_limit]
capacity = 2
refill_per_sec = 1
"#;
    let clock = Arc::new(ManualClock::default());
    let app = spawn_app_with_clock(settings(config, &broker.bootstrap), &broker.bootstrap, clock.clone());
    let body = br#"{"a":1}"#;
    let signature = hmac_sha256_hex(b"rate-limit-test-secret", body);
    let send = |signature: &str| {
        request(
            app.addr,
            "POST",
            &app.hook_path("signed"),
            &[("Content-Type", "application/json"), ("X-Signature", signature)],
            body,
        )
        .status
    };

    // Unsigned requests are refused by verification and take nothing from the bucket...
    let unsigned: Vec<u16> = (0..5).map(|_| send("00")).collect();
    assert_eq!(unsigned, vec![401; 5]);
    // ...so both tokens are still there for signed ones.
    assert_eq!([send(&signature), send(&signature), send(&signature)], [204, 204, 429]);
    // While the bucket is empty every request is refused, signed or not, before verification.
    assert_eq!(send("00"), 429);
    // A token leaks back: the unsigned request is verified (401) and does not take it.
    clock.advance(Duration::from_secs(1));
    assert_eq!(send("00"), 401);
    assert_eq!(send(&signature), 204);
    assert_eq!(app.read_pages(3).len(), 3);
}
