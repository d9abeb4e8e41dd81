//! Verification cost per scheme, on valid requests with 1 KB and 16 KB JSON bodies.
//!
//! Throughput is body bytes, so criterion prints MB/s; requests/s is 1 / time per iteration.
//! Every request is checked to verify before it is measured, so a scheme that silently fails
//! fast cannot look cheap.
//!
//! cargo bench --bench verify -- --warm-up-time 1 --measurement-time 2

mod common;

use std::hint::black_box;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use hookpipe::config::verification::VerificationConfig;
use hookpipe::pipeline::verify::scheme::{Verifier, VerifyRequest};

/// Fixed clock: every timestamped scheme signs this instant.
const NOW: i64 = 1_700_000_000;
const NOW_RFC3339: &str = "2023-11-14T22:13:20Z";
const URL: &str = "http://127.0.0.1:8080/hooks/0123456789abcdef0123456789abcdef";

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    parts.iter().for_each(|part| mac.update(part));
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).unwrap();
    parts.iter().for_each(|part| mac.update(part));
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha512(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha512>::new_from_slice(key).unwrap();
    parts.iter().for_each(|part| mac.update(part));
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A signed request for one scheme: its verifier, headers, body and URL.
struct Case {
    name: &'static str,
    verifier: Verifier,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    url: String,
    query: String,
}

fn compile(config: serde_json::Value) -> Verifier {
    let config: VerificationConfig = serde_json::from_value(config).expect("verification config");
    config.compile().expect("compiles")
}

fn header(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_owned(), value.into())
}

/// Twilio signs form parameters, not the body: a plain alphanumeric form of about `size` bytes.
fn twilio_form(size: usize) -> (Vec<u8>, Vec<u8>) {
    let mut body = String::new();
    let mut signed = Vec::new();
    let mut index = 0;
    while body.len() < size {
        let (key, value) = (
            format!("Param{index:04}"),
            format!("value{index}abcdefghijklmnopqrstuvwxyz"),
        );
        if !body.is_empty() {
            body.push('&');
        }
        body.push_str(&format!("{key}={value}"));
        signed.extend_from_slice(key.as_bytes());
        signed.extend_from_slice(value.as_bytes());
        index += 1;
    }
    (body.into_bytes(), signed)
}

fn cases(size: usize) -> Vec<Case> {
    let body = common::json_object(size);
    let ts = NOW.to_string();
    let json_headers = |mut extra: Vec<(String, String)>| {
        extra.push(header("Content-Type", "application/json"));
        extra
    };
    let case = |name, verifier, headers| Case {
        name,
        verifier,
        headers: json_headers(headers),
        body: body.clone(),
        url: URL.to_owned(),
        query: String::new(),
    };
    let mut out = vec![
        case(
            "hmac_sha256_hex",
            compile(json!({"type": "hmac", "algorithm": "sha256", "encoding": "hex",
                           "header": "X-Signature", "prefix": "sha256=", "secrets": ["bench-secret"]})),
            vec![header(
                "X-Signature",
                format!("sha256={}", hex(&hmac_sha256(b"bench-secret", &[&body]))),
            )],
        ),
        case(
            "hmac_sha1_hex",
            compile(json!({"type": "hmac", "algorithm": "sha1", "encoding": "hex",
                           "header": "X-Signature", "secrets": ["bench-secret"]})),
            vec![header("X-Signature", hex(&hmac_sha1(b"bench-secret", &[&body])))],
        ),
        case(
            "hmac_sha512_base64",
            compile(json!({"type": "hmac", "algorithm": "sha512", "encoding": "base64",
                           "header": "X-Signature", "secrets": ["bench-secret"]})),
            vec![header(
                "X-Signature",
                STANDARD.encode(hmac_sha512(b"bench-secret", &[&body])),
            )],
        ),
        case(
            "hmac_sha256_two_secrets",
            // Rotation: both secrets are always tried (constant time), so this costs two MACs.
            compile(json!({"type": "hmac", "algorithm": "sha256", "encoding": "hex",
                           "header": "X-Signature", "secrets": ["old-secret", "bench-secret"]})),
            vec![header("X-Signature", hex(&hmac_sha256(b"bench-secret", &[&body])))],
        ),
        case(
            "github",
            compile(json!({"type": "github", "secrets": ["gh-secret"]})),
            vec![
                header(
                    "X-Hub-Signature-256",
                    format!("sha256={}", hex(&hmac_sha256(b"gh-secret", &[&body]))),
                ),
                header("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ],
        ),
        case(
            "stripe",
            compile(json!({"type": "stripe", "secrets": ["whsec_test_secret"]})),
            vec![header(
                "Stripe-Signature",
                format!(
                    "t={ts},v1={}",
                    hex(&hmac_sha256(b"whsec_test_secret", &[ts.as_bytes(), b".", &body]))
                ),
            )],
        ),
        case(
            "slack",
            compile(json!({"type": "slack", "secrets": ["slack-signing-secret"]})),
            vec![
                header(
                    "X-Slack-Signature",
                    format!(
                        "v0={}",
                        hex(&hmac_sha256(
                            b"slack-signing-secret",
                            &[b"v0:", ts.as_bytes(), b":", &body]
                        ))
                    ),
                ),
                header("X-Slack-Request-Timestamp", ts.clone()),
            ],
        ),
        case(
            "shopify",
            compile(json!({"type": "shopify", "secrets": ["hush"]})),
            vec![
                header("X-Shopify-Hmac-Sha256", STANDARD.encode(hmac_sha256(b"hush", &[&body]))),
                header("X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
            ],
        ),
        case(
            "standard_webhooks",
            compile(json!({"type": "standard_webhooks", "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]})),
            {
                let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
                let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
                let sig = STANDARD.encode(hmac_sha256(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", &body]));
                vec![
                    header("webhook-id", id),
                    header("webhook-timestamp", ts.clone()),
                    header("webhook-signature", format!("v1,{sig}")),
                ]
            },
        ),
        case(
            "zendesk",
            compile(json!({"type": "zendesk", "secrets": ["zendesk-secret"]})),
            vec![
                header(
                    "X-Zendesk-Webhook-Signature",
                    STANDARD.encode(hmac_sha256(b"zendesk-secret", &[NOW_RFC3339.as_bytes(), &body])),
                ),
                header("X-Zendesk-Webhook-Signature-Timestamp", NOW_RFC3339),
            ],
        ),
        case(
            "recipe_svix",
            compile(json!({"type": "recipe", "algorithm": "sha256", "encoding": "base64",
                "signature_header": "svix-signature",
                "signature_list": {"style": "versioned", "version": "v1"},
                "signed_content": "{id}.{timestamp}.{body}", "id_header": "svix-id",
                "timestamp_header": "svix-timestamp", "secret_encoding": "whsec",
                "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "delivery_id_header": "svix-id"})),
            {
                let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
                let sig = STANDARD.encode(hmac_sha256(&key, &[b"msg_1", b".", ts.as_bytes(), b".", &body]));
                vec![
                    header("svix-id", "msg_1"),
                    header("svix-timestamp", ts.clone()),
                    header("svix-signature", format!("v1,{sig}")),
                ]
            },
        ),
        case(
            "basic",
            compile(json!({"type": "basic", "credentials": [{"username": "sender", "password": "correct-horse"}]})),
            vec![header(
                "Authorization",
                format!("Basic {}", STANDARD.encode("sender:correct-horse")),
            )],
        ),
        case(
            "token_header",
            compile(json!({"type": "token", "tokens": ["tok_live_7f3a9c"], "header": "Authorization"})),
            vec![header("Authorization", "Bearer tok_live_7f3a9c")],
        ),
    ];
    let (form, signed) = twilio_form(size);
    let signature = STANDARD.encode(hmac_sha1(b"twilio-token", &[URL.as_bytes(), &signed]));
    out.push(Case {
        name: "twilio_form",
        verifier: compile(json!({"type": "twilio", "auth_tokens": ["twilio-token"]})),
        headers: vec![
            header("X-Twilio-Signature", signature),
            header("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body: form,
        url: URL.to_owned(),
        query: String::new(),
    });
    out
}

fn bench_verify(c: &mut Criterion) {
    for (label, size) in [("1KB", 1024), ("16KB", 16 * 1024)] {
        let mut group = c.benchmark_group(format!("verify/{label}"));
        for case in cases(size) {
            let request = VerifyRequest {
                method: "POST",
                url: &case.url,
                query: &case.query,
                headers: &case.headers,
                body: &case.body,
                now_unix: NOW,
            };
            if let Err(error) = case.verifier.verify(&request) {
                panic!(
                    "{}: a correctly signed request failed verification: {error:?}",
                    case.name
                );
            }
            group.throughput(Throughput::Bytes(case.body.len() as u64));
            group.bench_with_input(BenchmarkId::from_parameter(case.name), &request, |b, request| {
                b.iter(|| black_box(case.verifier.verify(black_box(request))))
            });
        }
        group.finish();
    }
    // A rejected signature must cost about as much as an accepted one (constant-time compare).
    let mut group = c.benchmark_group("verify/1KB-mismatch");
    let case = cases(1024).into_iter().next().expect("hmac case");
    let mut headers = case.headers.clone();
    headers[0].1 = format!("sha256={}", "0".repeat(64));
    let request = VerifyRequest {
        method: "POST",
        url: &case.url,
        query: "",
        headers: &headers,
        body: &case.body,
        now_unix: NOW,
    };
    assert!(case.verifier.verify(&request).is_err());
    group.throughput(Throughput::Bytes(case.body.len() as u64));
    group.bench_function("hmac_sha256_hex", |b| {
        b.iter(|| black_box(case.verifier.verify(black_box(&request))))
    });
    group.finish();
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
