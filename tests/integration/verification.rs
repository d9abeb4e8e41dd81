//! Every verification type against the running server and a real broker: the right request
//! is accepted, wrong ones get 401 (or 404 for URL tokens), and nothing rejected reaches Kafka.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::helpers::app::{spawn_app, TestApp};
use crate::helpers::broker::Broker;
use crate::helpers::http::{request, Response};

const CONFIG: &str = r#"
[server]
public_id_secret = "test-secret-0123456789"
listen = "127.0.0.1:0"
external_base_url = "https://hooks.example.com"
[pipeline]
page_linger_ms = 0

[[listeners]]
id = "basic"
[listeners.verification]
type = "basic"
credentials = [{ username = "shop", password = "old-password" }, { username = "shop", password = "new-password" }]

[[listeners]]
id = "hmac"
[listeners.verification]
type = "hmac"
algorithm = "sha512"
encoding = "base64"
header = "X-Signature"
secrets = ["hmac-secret-1", "hmac-secret-2"]

[[listeners]]
id = "secreturl"
[listeners.verification]
type = "secret_url"
tokens = ["k3J9xQ2mV7pL0sT8wZ4n"]

[[listeners]]
id = "token"
[listeners.verification]
type = "token"
tokens = ["tok_live_7f3a9c"]
json_path = "auth.token"
header = "X-Token"
query = "token"

[[listeners]]
id = "github"
[listeners.verification]
type = "github"
secrets = ["It's a Secret to Everybody"]

[[listeners]]
id = "stripe"
[listeners.verification]
type = "stripe"
secrets = ["whsec_test_secret"]

[[listeners]]
id = "slack"
[listeners.verification]
type = "slack"
secrets = ["8f742231b10e8888abcd99yyyzzz85a5"]

[[listeners]]
id = "shopify"
[listeners.verification]
type = "shopify"
secrets = ["hush"]

[[listeners]]
id = "standard"
[listeners.verification]
type = "standard_webhooks"
secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]

[[listeners]]
id = "zendesk"
[listeners.verification]
type = "zendesk"
secrets = ["zendesk-secret"]

[[listeners]]
id = "twilio"
[listeners.verification]
type = "twilio"
auth_tokens = ["12345"]
"#;

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn post(app: &TestApp, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    request(app.addr, "POST", path, &all, body)
}

struct Checker<'a> {
    app: &'a TestApp,
    accepted: usize,
}

impl Checker<'_> {
    fn accept(&mut self, what: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
        let response = post(self.app, path, headers, body);
        assert_eq!(response.status, 204, "{what} should be accepted: {}", response.text());
        self.accepted += 1;
    }

    fn reject(&self, what: &str, path: &str, headers: &[(&str, &str)], body: &[u8], status: u16) {
        let response = post(self.app, path, headers, body);
        assert_eq!(response.status, status, "{what}: {}", response.text());
        let text = response.text();
        assert!(
            !text.contains("secret") && !text.contains("password"),
            "{what}: body leaks: {text}"
        );
    }
}

#[test]
fn every_scheme_accepts_the_right_request_and_rejects_the_wrong_ones() {
    let broker = Broker::start();
    let settings = {
        let env = vec![("HOOKPIPE_KAFKA__BROKERS".to_string(), broker.bootstrap.clone())];
        hookpipe::config::Settings::from_toml_and_env(CONFIG, env).unwrap()
    };
    let app = spawn_app(settings, &broker.bootstrap);
    let mut check = Checker { app: &app, accepted: 0 };
    let body = br#"{"event":"ping","n":1}"#;

    // Basic, with rotation.
    let path = app.hook_path("basic");
    let auth = |user: &str, pass: &str| format!("Basic {}", b64(format!("{user}:{pass}").as_bytes()));
    check.accept(
        "basic old",
        &path,
        &[("Authorization", &auth("shop", "old-password"))],
        body,
    );
    check.accept(
        "basic new",
        &path,
        &[("Authorization", &auth("shop", "new-password"))],
        body,
    );
    check.reject(
        "basic wrong",
        &path,
        &[("Authorization", &auth("shop", "nope"))],
        body,
        401,
    );
    check.reject(
        "basic user",
        &path,
        &[("Authorization", &auth("other", "new-password"))],
        body,
        401,
    );
    check.reject("basic missing", &path, &[], body, 401);
    check.reject("basic garbage", &path, &[("Authorization", "Basic %%%")], body, 401);

    // Generic HMAC (SHA-512, base64), second secret.
    let path = app.hook_path("hmac");
    let signature = {
        let mut mac = Hmac::<sha2::Sha512>::new_from_slice(b"hmac-secret-2").unwrap();
        mac.update(body);
        b64(&mac.finalize().into_bytes())
    };
    check.accept("hmac", &path, &[("X-Signature", &signature)], body);
    check.reject(
        "hmac other body",
        &path,
        &[("X-Signature", &signature)],
        br#"{"event":"ping","n":2}"#,
        401,
    );
    check.reject("hmac empty", &path, &[("X-Signature", "")], body, 401);
    check.reject("hmac truncated", &path, &[("X-Signature", &signature[..20])], body, 401);
    check.reject(
        "hmac longer",
        &path,
        &[("X-Signature", &format!("{signature}AAAA"))],
        body,
        401,
    );

    // Secret URL: wrong or missing token is 404, like an unknown listener.
    let path = app.hook_path("secreturl");
    check.accept("secret url", &format!("{path}/k3J9xQ2mV7pL0sT8wZ4n"), &[], body);
    check.reject(
        "secret url wrong",
        &format!("{path}/k3J9xQ2mV7pL0sT8wZ4X"),
        &[],
        body,
        404,
    );
    check.reject("secret url missing", &path, &[], body, 404);
    let unknown = post(&app, "/hooks/00000000000000000000000000000000", &[], body);
    let wrong = post(&app, &format!("{path}/wrongwrongwrongwrong"), &[], body);
    assert_eq!(
        (unknown.status, unknown.text()),
        (wrong.status, wrong.text()),
        "indistinguishable"
    );

    // Token at a JSON path, in a header, or in the query.
    let path = app.hook_path("token");
    check.accept(
        "token json",
        &path,
        &[],
        br#"{"auth":{"token":"tok_live_7f3a9c"},"x":1}"#,
    );
    check.accept("token header", &path, &[("X-Token", "tok_live_7f3a9c")], body);
    check.accept("token query", &format!("{path}?token=tok_live_7f3a9c"), &[], body);
    check.reject(
        "token wrong",
        &path,
        &[],
        br#"{"auth":{"token":"tok_live_000000"}}"#,
        401,
    );
    check.reject("token wrong type", &path, &[], br#"{"auth":{"token":12345}}"#, 401);
    check.reject("token missing", &path, &[], body, 401);

    // GitHub: the documented vector, and the legacy SHA-1 header.
    let path = app.hook_path("github");
    let gh_body = b"Hello, World!";
    let gh_headers = [
        (
            "X-Hub-Signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        ),
        ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    ];
    // GitHub's vector body is not JSON: send it as a form so it parses.
    let response = request(
        app.addr,
        "POST",
        &path,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            gh_headers[0],
            gh_headers[1],
        ],
        gh_body,
    );
    assert_eq!(response.status, 204, "{}", response.text());
    check.accepted += 1;
    let legacy = {
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"It's a Secret to Everybody").unwrap();
        mac.update(body);
        format!("sha1={}", hex(&mac.finalize().into_bytes()))
    };
    check.accept("github legacy sha1", &path, &[("X-Hub-Signature", &legacy)], body);
    check.reject("github wrong", &path, &[gh_headers[0]], body, 401);

    // Stripe: t.body, several v1 values, tolerance.
    let path = app.hook_path("stripe");
    let stripe_body = br#"{"id":"evt_123","object":"event"}"#;
    let t = now();
    let good = hex(&hmac256(
        b"whsec_test_secret",
        format!("{t}.{}", std::str::from_utf8(stripe_body).unwrap()).as_bytes(),
    ));
    check.accept(
        "stripe",
        &path,
        &[(
            "Stripe-Signature",
            &format!("t={t},v1={},v1={good},v0=abc", "0".repeat(64)),
        )],
        stripe_body,
    );
    check.reject(
        "stripe v1 empty",
        &path,
        &[("Stripe-Signature", &format!("t={t},v1="))],
        stripe_body,
        401,
    );
    let old = t - 600;
    let stale = hex(&hmac256(
        b"whsec_test_secret",
        format!("{old}.{}", std::str::from_utf8(stripe_body).unwrap()).as_bytes(),
    ));
    check.reject(
        "stripe expired",
        &path,
        &[("Stripe-Signature", &format!("t={old},v1={stale}"))],
        stripe_body,
        401,
    );

    // Slack: signed url_verification is answered with its challenge and not published.
    let path = app.hook_path("slack");
    let slack_body =
        br#"{"type":"url_verification","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#;
    let ts = now().to_string();
    let base = format!("v0:{ts}:{}", std::str::from_utf8(slack_body).unwrap());
    let sig = format!(
        "v0={}",
        hex(&hmac256(b"8f742231b10e8888abcd99yyyzzz85a5", base.as_bytes()))
    );
    let response = post(
        &app,
        &path,
        &[("X-Slack-Signature", &sig), ("X-Slack-Request-Timestamp", &ts)],
        slack_body,
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
    let event = br#"{"type":"event_callback","event":{"type":"message"}}"#;
    let base = format!("v0:{ts}:{}", std::str::from_utf8(event).unwrap());
    let sig = format!(
        "v0={}",
        hex(&hmac256(b"8f742231b10e8888abcd99yyyzzz85a5", base.as_bytes()))
    );
    check.accept(
        "slack event",
        &path,
        &[("X-Slack-Signature", &sig), ("X-Slack-Request-Timestamp", &ts)],
        event,
    );
    check.reject(
        "slack unsigned challenge",
        &path,
        &[("X-Slack-Request-Timestamp", &ts)],
        slack_body,
        401,
    );

    // Shopify: base64 of the body's HMAC.
    let path = app.hook_path("shopify");
    let sig = b64(&hmac256(b"hush", body));
    check.accept(
        "shopify",
        &path,
        &[("X-Shopify-Hmac-Sha256", &sig), ("X-Shopify-Webhook-Id", "wh-1")],
        body,
    );
    check.reject(
        "shopify wrong",
        &path,
        &[("X-Shopify-Hmac-Sha256", &b64(&hmac256(b"hush2", body)))],
        body,
        401,
    );

    // Standard Webhooks.
    let path = app.hook_path("standard");
    let key = base64::engine::general_purpose::STANDARD
        .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .unwrap();
    let ts = now().to_string();
    let signed = format!("msg_1.{ts}.{}", std::str::from_utf8(body).unwrap());
    let sig = format!("v1a,xyz v1,{}", b64(&hmac256(&key, signed.as_bytes())));
    check.accept(
        "standard",
        &path,
        &[
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", &ts),
            ("webhook-signature", &sig),
        ],
        body,
    );
    check.reject(
        "standard v1 empty",
        &path,
        &[
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", &ts),
            ("webhook-signature", "v1,"),
        ],
        body,
        401,
    );
    check.reject(
        "standard other id",
        &path,
        &[
            ("webhook-id", "msg_2"),
            ("webhook-timestamp", &ts),
            ("webhook-signature", &sig),
        ],
        body,
        401,
    );

    // Zendesk: timestamp + body, base64.
    let path = app.hook_path("zendesk");
    let ts = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let sig = b64(&hmac256(
        b"zendesk-secret",
        format!("{ts}{}", std::str::from_utf8(body).unwrap()).as_bytes(),
    ));
    check.accept(
        "zendesk",
        &path,
        &[
            ("X-Zendesk-Webhook-Signature", &sig),
            ("X-Zendesk-Webhook-Signature-Timestamp", &ts),
        ],
        body,
    );
    check.reject(
        "zendesk wrong",
        &path,
        &[
            ("X-Zendesk-Webhook-Signature", &sig),
            ("X-Zendesk-Webhook-Signature-Timestamp", "2020-01-01T00:00:00Z"),
        ],
        body,
        401,
    );

    // Twilio: HMAC-SHA1 over the external URL plus sorted form parameters.
    let path = app.hook_path("twilio");
    let url = format!("https://hooks.example.com{path}");
    let form = b"From=%2B15551234567&Body=Hello";
    let sig = {
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"12345").unwrap();
        mac.update(format!("{url}BodyHelloFrom+15551234567").as_bytes());
        b64(&mac.finalize().into_bytes())
    };
    let twilio = |sig: &str| {
        request(
            app.addr,
            "POST",
            &path,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Twilio-Signature", sig),
            ],
            form,
        )
    };
    assert_eq!(twilio(&sig).status, 204);
    check.accepted += 1;
    assert_eq!(twilio("AAAA").status, 401);

    // What landed: exactly the accepted requests, with delivery ids recorded.
    let pages = app.read_pages(check.accepted);
    assert_eq!(
        pages.len(),
        check.accepted,
        "nothing from a rejected request reached Kafka"
    );
    let delivery_ids: Vec<_> = pages
        .iter()
        .flat_map(|p| p.records().iter().map(|r| r["delivery_id"].clone()))
        .collect();
    for expected in ["72d3162e-cc78-11e3-81ab-4c9367dc0958", "evt_123", "wh-1", "msg_1"] {
        assert!(
            delivery_ids.contains(&json!(expected)),
            "delivery id {expected} recorded: {delivery_ids:?}"
        );
    }
    for page in &pages {
        for (key, value) in &page.message.headers {
            for secret in [
                "old-password",
                "new-password",
                "hmac-secret",
                "k3J9xQ2mV7pL0sT8wZ4n",
                "tok_live",
                "whsec",
                "hush",
            ] {
                assert!(
                    !value.contains(secret) && !key.contains(secret),
                    "Kafka header leaks {secret}"
                );
            }
        }
    }
}

#[test]
fn validation_errors_name_the_verification_field() {
    let errors = hookpipe::config::Settings::from_toml_and_env(
        "[server]\npublic_id_secret = \"test-secret-0123456789\"\n[[listeners]]\nid = \"x\"\n[listeners.verification]\ntype = \"hmac\"\nalgorithm = \"sha256\"\nencoding = \"hex\"\nheader = \"X-Sig\"\nsecrets = []\n",
        Vec::new(),
    )
    .unwrap_err();
    assert!(
        errors.0.iter().any(|e| e.key == "listeners[x].verification.secrets"),
        "{errors}"
    );
}
