//! Provider presets, each expressed as a [`RecipeConfig`] so the recipe engine is the only signature code.

use crate::config::recipe::{FallbackSignature, RecipeConfig, SecretEncoding, SignatureList, TimestampFormat};
use crate::config::recipe::{HmacAlgorithm, SigEncoding};
use crate::secret::Secret;

fn base(
    algorithm: HmacAlgorithm,
    encoding: SigEncoding,
    signature_header: &str,
    signed_content: &str,
    secrets: &[Secret],
) -> RecipeConfig {
    RecipeConfig {
        algorithm,
        encoding,
        signature_header: signature_header.to_owned(),
        prefix: None,
        signature_list: SignatureList::Single,
        signed_content: signed_content.to_owned(),
        timestamp_header: None,
        timestamp_key: None,
        timestamp_format: TimestampFormat::Unix,
        id_header: None,
        tolerance_secs: None,
        secret_encoding: SecretEncoding::Raw,
        secrets: secrets.to_vec(),
        delivery_id_header: None,
        delivery_id_json: None,
        body_hash_query: None,
        try_default_port: false,
        fallback: None,
        url_verification_challenge: false,
    }
}

/// Generic HMAC over the raw body in one header (the `hmac` type).
pub fn hmac(
    algorithm: HmacAlgorithm,
    encoding: SigEncoding,
    header: &str,
    prefix: Option<&str>,
    secrets: &[Secret],
) -> RecipeConfig {
    RecipeConfig {
        prefix: prefix.map(str::to_owned),
        ..base(algorithm, encoding, header, "{body}", secrets)
    }
}

/// GitHub: `X-Hub-Signature-256: sha256=<hex>` over the body, legacy `X-Hub-Signature: sha1=` only when the former is absent.
pub fn github(secrets: &[Secret]) -> RecipeConfig {
    RecipeConfig {
        prefix: Some("sha256=".to_owned()),
        delivery_id_header: Some("X-GitHub-Delivery".to_owned()),
        fallback: Some(FallbackSignature {
            header: "X-Hub-Signature".to_owned(),
            algorithm: HmacAlgorithm::Sha1,
            prefix: Some("sha1=".to_owned()),
        }),
        ..base(
            HmacAlgorithm::Sha256,
            SigEncoding::Hex,
            "X-Hub-Signature-256",
            "{body}",
            secrets,
        )
    }
}

/// Stripe: `Stripe-Signature: t=<ts>,v1=<hex>[,v1=...]` over `{t}.{body}`; the whole `whsec_...` string is the key.
pub fn stripe(secrets: &[Secret], tolerance_secs: Option<u64>) -> RecipeConfig {
    RecipeConfig {
        signature_list: SignatureList::Delimited {
            delimiter: ",".to_owned(),
            key: Some("v1".to_owned()),
        },
        timestamp_key: Some("t".to_owned()),
        tolerance_secs,
        delivery_id_json: Some("id".to_owned()),
        ..base(
            HmacAlgorithm::Sha256,
            SigEncoding::Hex,
            "Stripe-Signature",
            "{timestamp}.{body}",
            secrets,
        )
    }
}

/// Slack: `X-Slack-Signature: v0=<hex>` over `v0:{ts}:{body}`, ts in `X-Slack-Request-Timestamp`.
pub fn slack(secrets: &[Secret], tolerance_secs: Option<u64>) -> RecipeConfig {
    RecipeConfig {
        prefix: Some("v0=".to_owned()),
        timestamp_header: Some("X-Slack-Request-Timestamp".to_owned()),
        tolerance_secs,
        url_verification_challenge: true,
        ..base(
            HmacAlgorithm::Sha256,
            SigEncoding::Hex,
            "X-Slack-Signature",
            "v0:{timestamp}:{body}",
            secrets,
        )
    }
}

/// Shopify: `X-Shopify-Hmac-Sha256: <base64>` over the body.
pub fn shopify(secrets: &[Secret]) -> RecipeConfig {
    RecipeConfig {
        delivery_id_header: Some("X-Shopify-Webhook-Id".to_owned()),
        ..base(
            HmacAlgorithm::Sha256,
            SigEncoding::Base64,
            "X-Shopify-Hmac-Sha256",
            "{body}",
            secrets,
        )
    }
}

/// Standard Webhooks: `webhook-signature: v1,<b64> [v1,<b64> ...]` over `{id}.{ts}.{body}`, key from `whsec_<base64>`.
pub fn standard_webhooks(secrets: &[Secret], tolerance_secs: Option<u64>) -> RecipeConfig {
    RecipeConfig {
        signature_list: SignatureList::Versioned {
            version: "v1".to_owned(),
        },
        timestamp_header: Some("webhook-timestamp".to_owned()),
        id_header: Some("webhook-id".to_owned()),
        tolerance_secs,
        secret_encoding: SecretEncoding::Whsec,
        delivery_id_header: Some("webhook-id".to_owned()),
        ..base(
            HmacAlgorithm::Sha256,
            SigEncoding::Base64,
            "webhook-signature",
            "{id}.{timestamp}.{body}",
            secrets,
        )
    }
}

/// Zendesk: `X-Zendesk-Webhook-Signature: <base64>` over `{ts}{body}`, ts an RFC 3339 string.
pub fn zendesk(secrets: &[Secret], tolerance_secs: Option<u64>) -> RecipeConfig {
    RecipeConfig {
        timestamp_header: Some("X-Zendesk-Webhook-Signature-Timestamp".to_owned()),
        timestamp_format: TimestampFormat::Rfc3339,
        tolerance_secs,
        delivery_id_header: Some("X-Zendesk-Webhook-Invocation-Id".to_owned()),
        ..base(
            HmacAlgorithm::Sha256,
            SigEncoding::Base64,
            "X-Zendesk-Webhook-Signature",
            "{timestamp}{body}",
            secrets,
        )
    }
}

/// Twilio: `X-Twilio-Signature: base64(HMAC-SHA1(token, url + sorted form params))`; JSON bodies via `bodySHA256`.
pub fn twilio(auth_tokens: &[Secret]) -> RecipeConfig {
    RecipeConfig {
        body_hash_query: Some("bodySHA256".to_owned()),
        try_default_port: true,
        delivery_id_header: Some("I-Twilio-Idempotency-Token".to_owned()),
        ..base(
            HmacAlgorithm::Sha1,
            SigEncoding::Base64,
            "X-Twilio-Signature",
            "{url}{form_params}",
            auth_tokens,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::recipe::engine::tests::{b64, hex, mac};
    use super::super::request::tests::{headers, request};
    use super::super::request::{Verified, VerifyError, VerifyRequest};
    use super::super::scheme::Verifier;
    use super::*;
    use crate::config::verification::VerificationConfig;
    use crate::secret::Secret;
    use proptest::prelude::*;

    fn secrets(list: &[&str]) -> Vec<Secret> {
        list.iter().map(|s| Secret::new(*s)).collect()
    }

    fn compile(c: VerificationConfig) -> Verifier {
        c.compile().expect("config compiles")
    }

    // ---- Providers' published vectors ---------------------------------------------------------

    /// GitHub docs, "Validating webhook deliveries" → "Testing the webhook payload validation".
    #[test]
    fn github_documented_vector() {
        let v = compile(VerificationConfig::Github {
            secrets: secrets(&["It's a Secret to Everybody"]),
        });
        let h = headers(&[
            (
                "X-Hub-Signature-256",
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            ),
            ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ]);
        let ok = v.verify(&request(&h, b"Hello, World!", 0)).unwrap();
        assert_eq!(ok.delivery_id.as_deref(), Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
        assert_eq!(v.verify(&request(&h, b"Hello, World?", 0)), Err(VerifyError::Mismatch));
    }

    /// Slack docs, "Verifying requests from Slack" worked example.
    #[test]
    fn slack_documented_vector() {
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let v = compile(VerificationConfig::Slack {
            secrets: secrets(&["8f742231b10e8888abcd99yyyzzz85a5"]),
            tolerance_secs: None,
        });
        let h = headers(&[
            (
                "X-Slack-Signature",
                "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            ),
            ("X-Slack-Request-Timestamp", "1531420618"),
        ]);
        assert_eq!(
            v.verify(&request(&h, body.as_bytes(), 1_531_420_618 + 10)),
            Ok(Default::default())
        );
        assert_eq!(
            v.verify(&request(&h, body.as_bytes(), 1_531_420_618 + 301)),
            Err(VerifyError::Expired)
        );
    }

    /// Standard Webhooks spec / reference libraries' test vector (also in Svix's manual-verification docs).
    #[test]
    fn standard_webhooks_documented_vector() {
        for secret in [
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ] {
            let v = compile(VerificationConfig::StandardWebhooks {
                secrets: secrets(&[secret]),
                tolerance_secs: None,
            });
            let h = headers(&[
                ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
                ("webhook-timestamp", "1614265330"),
                (
                    "webhook-signature",
                    "v1a,AAAA v1,bm90LXRoZS1zaWduYXR1cmU= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                ),
            ]);
            let ok = v
                .verify(&request(&h, br#"{"test": 2432232314}"#, 1_614_265_330))
                .unwrap();
            assert_eq!(ok.delivery_id.as_deref(), Some("msg_p5jXN8AQM9LWM0D4loKWxJek"));
        }
    }

    /// Twilio's request-validation example (auth token 12345), as used by twilio-python/-php/-csharp tests.
    #[test]
    fn twilio_documented_vectors() {
        let v = compile(VerificationConfig::Twilio {
            auth_tokens: secrets(&["12345"]),
        });
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let form = b"To=%2B18005551212&From=%2B14158675309&Digits=1234&Caller=%2B14158675309&CallSid=CA1234567890ABCDE";
        let check = |url: &str, query: &str, body: &[u8], sig: &str| {
            let h = headers(&[("X-Twilio-Signature", sig), ("I-Twilio-Idempotency-Token", "idem-1")]);
            let req = VerifyRequest {
                method: "POST",
                url,
                query,
                headers: &h,
                body,
                now_unix: 0,
            };
            v.verify(&req)
        };
        let ok = check(url, "foo=1&bar=2", form, "RSOYDt4T1cUTdK1PDd93/VVr8B8=").unwrap();
        assert_eq!(ok.delivery_id.as_deref(), Some("idem-1"));
        // Twilio's libraries accept the URL with the default port added; so do we.
        assert!(check(
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            "foo=1&bar=2",
            form,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        )
        .is_ok());
        // twilio-python's duplicate-parameter vector: values sorted, exact duplicates dropped.
        let dup = b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234";
        assert!(check(url, "foo=1&bar=2", dup, "IK+Dwps556ElfBT0I3Rgjkr1wJU=").is_ok());
        // JSON body: URL carries bodySHA256 and only the URL is signed.
        let json_url = "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        let json_query = "foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        let json = br#"{"property": "value", "boolean": true}"#;
        assert!(check(json_url, json_query, json, "a9nBmqA0ju/hNViExpshrM61xv4=").is_ok());
        assert_eq!(
            check(
                json_url,
                json_query,
                br#"{"property": "value", "boolean": false}"#,
                "a9nBmqA0ju/hNViExpshrM61xv4="
            ),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            check(url, "foo=1&bar=2", b"Digits=9999", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
            Err(VerifyError::Mismatch)
        );
    }

    /// Stripe publishes no vector; this one was computed independently with:
    /// `printf '1700000000.{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event"}' | openssl dgst -sha256 -hmac whsec_test_secret`
    #[test]
    fn stripe_openssl_vector() {
        let v = compile(VerificationConfig::Stripe {
            secrets: secrets(&["whsec_test_secret"]),
            tolerance_secs: None,
        });
        let body = br#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event"}"#;
        let h = headers(&[(
            "Stripe-Signature",
            "t=1700000000,v1=0000000000000000000000000000000000000000000000000000000000000000,v1=0d82a261071768f1ddd21d94f6476ec95b9b2a1f4de9fd55aa93ad34e86c6ca1,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39",
        )]);
        let ok = v.verify(&request(&h, body, 1_700_000_000)).unwrap();
        assert_eq!(ok.delivery_id.as_deref(), Some("evt_1NG8Du2eZvKYlo2CUI79vXWy"));
    }

    /// Shopify publishes no vector; computed with:
    /// `printf '{"id":820982911946154508,"email":"jon@example.com"}' | openssl dgst -sha256 -hmac hush -binary | base64`
    #[test]
    fn shopify_openssl_vector() {
        let v = compile(VerificationConfig::Shopify {
            secrets: secrets(&["hush"]),
        });
        let h = headers(&[
            ("X-Shopify-Hmac-Sha256", "D0UMXmhjwBRi4y66TmhJrDlhQABD7zI2fm3p6/QLMo8="),
            ("X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
        ]);
        let ok = v
            .verify(&request(
                &h,
                br#"{"id":820982911946154508,"email":"jon@example.com"}"#,
                0,
            ))
            .unwrap();
        assert_eq!(ok.delivery_id.as_deref(), Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"));
    }

    /// Zendesk documents the formula and its test-webhook secret but no output; computed with:
    /// `printf '2021-03-25T05:09:27Z{"ticket":{"id":35436}}' | openssl dgst -sha256 -hmac dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ== -binary | base64`
    #[test]
    fn zendesk_openssl_vector() {
        let v = compile(VerificationConfig::Zendesk {
            secrets: secrets(&["dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="]),
            tolerance_secs: None,
        });
        let h = headers(&[
            (
                "X-Zendesk-Webhook-Signature",
                "SI9g6lzKBJgXNoi/XZIjI3YFiJEqf6r6kgyKCnTgoLw=",
            ),
            ("X-Zendesk-Webhook-Signature-Timestamp", "2021-03-25T05:09:27Z"),
        ]);
        let body = br#"{"ticket":{"id":35436}}"#;
        assert!(v.verify(&request(&h, body, 1_616_648_967)).is_ok());
        assert_eq!(
            v.verify(&request(&h, body, 1_616_648_967 - 301)),
            Err(VerifyError::Expired)
        );
    }

    // ---- Bypass list, run against every preset ------------------------------------------------

    const NOW: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1","type":"ping","n":1}"#;
    const OTHER_BODY: &[u8] = br#"{"id":"evt_1","type":"ping","n":2}"#;
    const URL: &str = "https://hooks.example.com/in/test";

    type Headers = Vec<(String, String)>;
    /// Signs `(secret, body, timestamp)`, optionally flipping one MAC bit.
    type Signer = fn(&str, &[u8], i64, Option<usize>) -> Headers;

    /// One preset plus how to sign for it.
    struct Case {
        name: &'static str,
        config: fn(Vec<Secret>) -> VerificationConfig,
        secret: &'static str,
        wrong: &'static str,
        sig_header: &'static str,
        /// Header value with the signature left out, `{ts}` replaced.
        bare: &'static str,
        /// Header carrying the timestamp, if a separate one.
        ts_header: Option<&'static str>,
        timestamped: bool,
        sign: Signer,
    }

    fn sw_key(secret: &str) -> Vec<u8> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(secret.trim_start_matches("whsec_"))
            .unwrap()
    }

    fn cases() -> Vec<Case> {
        vec![
            Case {
                name: "hmac",
                config: |s| VerificationConfig::Hmac {
                    algorithm: HmacAlgorithm::Sha384,
                    encoding: SigEncoding::Hex,
                    header: "X-Signature".into(),
                    prefix: Some("sha384=".into()),
                    secrets: s,
                },
                secret: "hmac-secret",
                wrong: "hmac-secreT",
                sig_header: "X-Signature",
                bare: "sha384=",
                ts_header: None,
                timestamped: false,
                sign: |k, body, _, f| {
                    vec![(
                        "x-signature".into(),
                        format!(
                            "sha384={}",
                            hex(&tweak(mac(HmacAlgorithm::Sha384, k.as_bytes(), body), f))
                        ),
                    )]
                },
            },
            Case {
                name: "github",
                config: |s| VerificationConfig::Github { secrets: s },
                secret: "gh-secret",
                wrong: "gh-secret2",
                sig_header: "X-Hub-Signature-256",
                bare: "sha256=",
                ts_header: None,
                timestamped: false,
                sign: |k, body, _, f| {
                    vec![
                        (
                            "X-Hub-Signature-256".into(),
                            format!(
                                "sha256={}",
                                hex(&tweak(mac(HmacAlgorithm::Sha256, k.as_bytes(), body), f))
                            ),
                        ),
                        ("X-GitHub-Delivery".into(), "d-1".into()),
                    ]
                },
            },
            Case {
                name: "stripe",
                config: |s| VerificationConfig::Stripe {
                    secrets: s,
                    tolerance_secs: None,
                },
                secret: "whsec_stripe",
                wrong: "whsec_stripf",
                sig_header: "Stripe-Signature",
                bare: "t={ts},v1=",
                ts_header: None,
                timestamped: true,
                sign: |k, body, ts, f| {
                    let content = [format!("{ts}.").as_bytes(), body].concat();
                    vec![(
                        "Stripe-Signature".into(),
                        format!(
                            "t={ts},v1={}",
                            hex(&tweak(mac(HmacAlgorithm::Sha256, k.as_bytes(), &content), f))
                        ),
                    )]
                },
            },
            Case {
                name: "slack",
                config: |s| VerificationConfig::Slack {
                    secrets: s,
                    tolerance_secs: None,
                },
                secret: "slack-secret",
                wrong: "slack-secret-old",
                sig_header: "X-Slack-Signature",
                bare: "v0=",
                ts_header: Some("X-Slack-Request-Timestamp"),
                timestamped: true,
                sign: |k, body, ts, f| {
                    let content = [format!("v0:{ts}:").as_bytes(), body].concat();
                    vec![
                        (
                            "X-Slack-Signature".into(),
                            format!(
                                "v0={}",
                                hex(&tweak(mac(HmacAlgorithm::Sha256, k.as_bytes(), &content), f))
                            ),
                        ),
                        ("X-Slack-Request-Timestamp".into(), ts.to_string()),
                    ]
                },
            },
            Case {
                name: "shopify",
                config: |s| VerificationConfig::Shopify { secrets: s },
                secret: "shpss_secret",
                wrong: "shpss_other",
                sig_header: "X-Shopify-Hmac-Sha256",
                bare: "",
                ts_header: None,
                timestamped: false,
                sign: |k, body, _, f| {
                    vec![(
                        "X-Shopify-Hmac-Sha256".into(),
                        b64(&tweak(mac(HmacAlgorithm::Sha256, k.as_bytes(), body), f)),
                    )]
                },
            },
            Case {
                name: "standard_webhooks",
                config: |s| VerificationConfig::StandardWebhooks {
                    secrets: s,
                    tolerance_secs: None,
                },
                secret: "whsec_c2VjcmV0LWtleS1ieXRlcw==",
                wrong: "whsec_b3RoZXIta2V5LWJ5dGVz",
                sig_header: "webhook-signature",
                bare: "v1,",
                ts_header: Some("webhook-timestamp"),
                timestamped: true,
                sign: |k, body, ts, f| {
                    let content = [format!("msg_1.{ts}.").as_bytes(), body].concat();
                    vec![
                        ("webhook-id".into(), "msg_1".into()),
                        ("webhook-timestamp".into(), ts.to_string()),
                        (
                            "webhook-signature".into(),
                            format!(
                                "v1,{}",
                                b64(&tweak(mac(HmacAlgorithm::Sha256, &sw_key(k), &content), f))
                            ),
                        ),
                    ]
                },
            },
            Case {
                name: "zendesk",
                config: |s| VerificationConfig::Zendesk {
                    secrets: s,
                    tolerance_secs: None,
                },
                secret: "zd-secret",
                wrong: "zd-secret-2",
                sig_header: "X-Zendesk-Webhook-Signature",
                bare: "",
                ts_header: Some("X-Zendesk-Webhook-Signature-Timestamp"),
                timestamped: true,
                sign: |k, body, ts, f| {
                    let stamp = rfc3339(ts);
                    let content = [stamp.as_bytes(), body].concat();
                    vec![
                        (
                            "X-Zendesk-Webhook-Signature".into(),
                            b64(&tweak(mac(HmacAlgorithm::Sha256, k.as_bytes(), &content), f)),
                        ),
                        ("X-Zendesk-Webhook-Signature-Timestamp".into(), stamp),
                    ]
                },
            },
            Case {
                name: "twilio",
                config: |s| VerificationConfig::Twilio { auth_tokens: s },
                secret: "twilio-token",
                wrong: "twilio-token2",
                sig_header: "X-Twilio-Signature",
                bare: "",
                ts_header: None,
                timestamped: false,
                sign: |k, body, _, f| {
                    let mut pairs = crate::urlencoded::decoded_pairs(body);
                    pairs.sort();
                    pairs.dedup();
                    let mut content = URL.as_bytes().to_vec();
                    for (key, value) in pairs {
                        content.extend(key);
                        content.extend(value);
                    }
                    vec![(
                        "X-Twilio-Signature".into(),
                        b64(&tweak(mac(HmacAlgorithm::Sha1, k.as_bytes(), &content), f)),
                    )]
                },
            },
        ]
    }

    /// Flips one bit of a freshly computed MAC, for the tamper properties.
    fn tweak(mac: Vec<u8>, bit: Option<usize>) -> Vec<u8> {
        match bit {
            Some(b) => flip(&mac, b),
            None => mac,
        }
    }

    /// Unix seconds to `YYYY-MM-DDTHH:MM:SSZ` (test-only inverse of the parser).
    fn rfc3339(ts: i64) -> String {
        let (days, secs) = (ts.div_euclid(86_400), ts.rem_euclid(86_400));
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }

    fn run(v: &Verifier, h: &Vec<(String, String)>, body: &[u8], now: i64) -> Result<(), VerifyError> {
        let req = VerifyRequest {
            method: "POST",
            url: URL,
            query: "",
            headers: h,
            body,
            now_unix: now,
        };
        v.verify(&req).map(|_| ())
    }

    fn set(h: &[(String, String)], name: &str, value: Option<&str>) -> Vec<(String, String)> {
        let mut out: Vec<_> = h
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case(name))
            .cloned()
            .collect();
        if let Some(v) = value {
            out.push((name.to_owned(), v.to_owned()));
        }
        out
    }

    fn get<'h>(h: &'h [(String, String)], name: &str) -> &'h str {
        h.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    #[test]
    fn every_preset_accepts_good_and_rejects_the_bypass_list() {
        for c in cases() {
            let n = c.name;
            let v = compile((c.config)(secrets(&[c.secret])));
            let good = (c.sign)(c.secret, BODY, NOW, None);
            assert_eq!(run(&v, &good, BODY, NOW), Ok(()), "{n}: good request");
            let sig = get(&good, c.sig_header).to_owned();

            let mut bad: Vec<(&str, Headers, &[u8])> = vec![
                ("missing header", set(&good, c.sig_header, None), BODY),
                ("empty signature", set(&good, c.sig_header, Some("")), BODY),
                ("blank signature", set(&good, c.sig_header, Some("   ")), BODY),
                (
                    "prefix only",
                    set(&good, c.sig_header, Some(&c.bare.replace("{ts}", &NOW.to_string()))),
                    BODY,
                ),
                ("other body", good.clone(), OTHER_BODY),
                ("wrong secret", (c.sign)(c.wrong, BODY, NOW, None), BODY),
                ("empty body", good.clone(), b""),
            ];
            for cut in [1, 2, 3, 4, 8] {
                let truncated = set(&good, c.sig_header, Some(&sig[..sig.len() - cut]));
                bad.push(("truncated", truncated, BODY));
            }
            for extra in ["0", "00", "AAAA", "A===", "0000000000000000"] {
                bad.push(("longer", set(&good, c.sig_header, Some(&format!("{sig}{extra}"))), BODY));
            }
            for junk in ["zz", "!!!!", "sha256=zz", "v1,!!!", "t=1,v1=zz", "\u{0}", "é"] {
                bad.push(("garbage", set(&good, c.sig_header, Some(junk)), BODY));
            }
            for (what, headers, body) in &bad {
                let res = run(&v, headers, body, NOW);
                assert!(res.is_err(), "{n}: {what} must be rejected, got {res:?}");
            }
            assert_eq!(
                run(&v, &set(&good, c.sig_header, None), BODY, NOW),
                Err(VerifyError::MissingCredentials),
                "{n}"
            );

            if c.timestamped {
                for skew in [-301, 301, -100_000, 100_000] {
                    let stale = (c.sign)(c.secret, BODY, NOW + skew, None);
                    assert_eq!(
                        run(&v, &stale, BODY, NOW),
                        Err(VerifyError::Expired),
                        "{n}: skew {skew}"
                    );
                }
                for skew in [-300, 300] {
                    let edge = (c.sign)(c.secret, BODY, NOW + skew, None);
                    assert_eq!(run(&v, &edge, BODY, NOW), Ok(()), "{n}: edge skew {skew}");
                }
                // A genuine signature with its timestamp moved must not verify.
                if let Some(th) = c.ts_header {
                    let moved = set(&good, th, Some(get(&(c.sign)(c.secret, BODY, NOW + 1, None), th)));
                    assert_eq!(run(&v, &moved, BODY, NOW), Err(VerifyError::Mismatch), "{n}: moved ts");
                    assert_eq!(
                        run(&v, &set(&good, th, Some("abc")), BODY, NOW),
                        Err(VerifyError::Malformed),
                        "{n}"
                    );
                    assert_eq!(
                        run(&v, &set(&good, th, Some("")), BODY, NOW),
                        Err(VerifyError::Malformed),
                        "{n}"
                    );
                    assert_eq!(
                        run(&v, &set(&good, th, None), BODY, NOW),
                        Err(VerifyError::MissingCredentials),
                        "{n}"
                    );
                } else {
                    let moved = sig.replacen(&NOW.to_string(), &(NOW + 1).to_string(), 1);
                    assert_eq!(
                        run(&v, &set(&good, c.sig_header, Some(&moved)), BODY, NOW),
                        Err(VerifyError::Mismatch),
                        "{n}"
                    );
                    let nan = sig.replacen(&NOW.to_string(), "17e8", 1);
                    assert_eq!(
                        run(&v, &set(&good, c.sig_header, Some(&nan)), BODY, NOW),
                        Err(VerifyError::Malformed),
                        "{n}"
                    );
                    let no_ts = sig.replacen(&format!("t={NOW},"), "", 1);
                    assert_eq!(
                        run(&v, &set(&good, c.sig_header, Some(&no_ts)), BODY, NOW),
                        Err(VerifyError::Malformed),
                        "{n}"
                    );
                }
            }

            // Rotation: the second configured secret verifies, and so does the first.
            let rotated = compile((c.config)(secrets(&[c.wrong, c.secret])));
            assert_eq!(run(&rotated, &good, BODY, NOW), Ok(()), "{n}: rotation");
            assert_eq!(
                run(&rotated, &(c.sign)(c.wrong, BODY, NOW, None), BODY, NOW),
                Ok(()),
                "{n}: rotation old"
            );
        }
    }

    #[test]
    fn custom_tolerance_is_honoured() {
        let v = compile(VerificationConfig::Stripe {
            secrets: secrets(&["k"]),
            tolerance_secs: Some(10),
        });
        let content = [format!("{}.", NOW - 11).as_bytes(), BODY].concat();
        let h = headers(&[(
            "Stripe-Signature",
            &format!("t={},v1={}", NOW - 11, hex(&mac(HmacAlgorithm::Sha256, b"k", &content))),
        )]);
        assert_eq!(run(&v, &h, BODY, NOW), Err(VerifyError::Expired));
        assert_eq!(run(&v, &h, BODY, NOW - 1), Ok(()));
    }

    #[test]
    fn stripe_ignores_v0_and_rejects_duplicate_timestamps() {
        let v = compile(VerificationConfig::Stripe {
            secrets: secrets(&["k"]),
            tolerance_secs: None,
        });
        let content = [format!("{NOW}.").as_bytes(), BODY].concat();
        let good = hex(&mac(HmacAlgorithm::Sha256, b"k", &content));
        let only_v0 = headers(&[("Stripe-Signature", &format!("t={NOW},v0={good}"))]);
        assert_eq!(run(&v, &only_v0, BODY, NOW), Err(VerifyError::Malformed));
        let two_ts = headers(&[("Stripe-Signature", &format!("t={NOW},t={NOW},v1={good}"))]);
        assert_eq!(run(&v, &two_ts, BODY, NOW), Err(VerifyError::Malformed));
        let spaced = headers(&[("Stripe-Signature", &format!(" t={NOW} , v1={good} "))]);
        assert_eq!(run(&v, &spaced, BODY, NOW), Ok(()));
    }

    #[test]
    fn standard_webhooks_ignores_other_versions_and_empty_entries() {
        let c = &cases()[5];
        let v = compile((c.config)(secrets(&[c.secret])));
        let good = (c.sign)(c.secret, BODY, NOW, None);
        let sig = get(&good, "webhook-signature").trim_start_matches("v1,").to_owned();
        let only_v1a = set(&good, "webhook-signature", Some(&format!("v1a,{sig}")));
        assert_eq!(run(&v, &only_v1a, BODY, NOW), Err(VerifyError::Malformed));
        let empty_then_good = set(&good, "webhook-signature", Some(&format!("v1, v1,{sig}")));
        assert_eq!(run(&v, &empty_then_good, BODY, NOW), Ok(()));
        let missing_id = set(&good, "webhook-id", None);
        assert_eq!(run(&v, &missing_id, BODY, NOW), Err(VerifyError::MissingCredentials));
        let other_id = set(&good, "webhook-id", Some("msg_2"));
        assert_eq!(run(&v, &other_id, BODY, NOW), Err(VerifyError::Mismatch));
    }

    #[test]
    fn github_falls_back_to_sha1_only_without_the_sha256_header() {
        let v = compile(VerificationConfig::Github {
            secrets: secrets(&["k"]),
        });
        let sha1 = format!("sha1={}", hex(&mac(HmacAlgorithm::Sha1, b"k", BODY)));
        let legacy = headers(&[("X-Hub-Signature", &sha1)]);
        assert_eq!(run(&v, &legacy, BODY, NOW), Ok(()));
        // A bad 256 header is not rescued by a good legacy one.
        let both = headers(&[("X-Hub-Signature-256", "sha256=00"), ("X-Hub-Signature", &sha1)]);
        assert_eq!(run(&v, &both, BODY, NOW), Err(VerifyError::Malformed));
        let wrong_prefix = headers(&[("X-Hub-Signature", &sha1.replace("sha1=", "sha256="))]);
        assert!(run(&v, &wrong_prefix, BODY, NOW).is_err());
        let sha256_in_legacy = headers(&[(
            "X-Hub-Signature",
            &format!("sha1={}", hex(&mac(HmacAlgorithm::Sha256, b"k", BODY))),
        )]);
        assert_eq!(run(&v, &sha256_in_legacy, BODY, NOW), Err(VerifyError::Malformed));
    }

    /// Slack's `url_verification` is signed like any event: the verifier checks it as one (the
    /// `slack` handshake answers it only after, `pipeline::handshake`), and the preset still
    /// says it is answered.
    #[test]
    fn slack_url_verification_is_verified_like_any_event() {
        let config = VerificationConfig::Slack {
            secrets: secrets(&["k"]),
            tolerance_secs: None,
        };
        assert!(config.as_recipe().unwrap().0.url_verification_challenge);
        let v = compile(config);
        let body = br#"{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
        let c = &cases()[3];
        let h = (c.sign)("k", body, NOW, None);
        let req = VerifyRequest {
            method: "POST",
            url: URL,
            query: "",
            headers: &h,
            body,
            now_unix: NOW,
        };
        assert_eq!(v.verify(&req), Ok(Verified::default()));
        let forged = (c.sign)("not-k", body, NOW, None);
        let req = VerifyRequest {
            headers: &forged,
            ..req
        };
        assert_eq!(v.verify(&req), Err(VerifyError::Mismatch));
    }

    #[test]
    fn twilio_get_request_signs_url_only_and_port_variants() {
        let v = compile(VerificationConfig::Twilio {
            auth_tokens: secrets(&["tok"]),
        });
        let url = "https://hooks.example.com:443/in/sms?From=%2B1";
        let plain = "https://hooks.example.com/in/sms?From=%2B1";
        let sig = b64(&mac(HmacAlgorithm::Sha1, b"tok", plain.as_bytes()));
        let h = headers(&[("X-Twilio-Signature", &sig)]);
        for u in [url, plain] {
            let req = VerifyRequest {
                method: "GET",
                url: u,
                query: "From=%2B1",
                headers: &h,
                body: b"",
                now_unix: 0,
            };
            assert!(v.verify(&req).is_ok(), "{u}");
        }
        let req = VerifyRequest {
            method: "GET",
            url: "https://hooks.example.com/in/sms?From=%2B2",
            query: "From=%2B2",
            headers: &h,
            body: b"",
            now_unix: 0,
        };
        assert_eq!(v.verify(&req), Err(VerifyError::Mismatch));
        // A bodySHA256 that doesn't match the body fails even though the URL signature is right.
        let hashed = "https://hooks.example.com/in/sms?bodySHA256=00";
        let sig = b64(&mac(HmacAlgorithm::Sha1, b"tok", hashed.as_bytes()));
        let h = headers(&[("X-Twilio-Signature", &sig)]);
        let req = VerifyRequest {
            method: "POST",
            url: hashed,
            query: "bodySHA256=00",
            headers: &h,
            body: b"{}",
            now_unix: 0,
        };
        assert_eq!(v.verify(&req), Err(VerifyError::Mismatch));
    }

    #[test]
    fn oversized_or_odd_delivery_ids_are_dropped() {
        let v = compile(VerificationConfig::Github {
            secrets: secrets(&["k"]),
        });
        let sig = format!("sha256={}", hex(&mac(HmacAlgorithm::Sha256, b"k", BODY)));
        for (id, want) in [
            ("x".repeat(300), None),
            ("a\u{7}b".to_owned(), None),
            (" d-1 ".to_owned(), Some("d-1")),
        ] {
            let h = headers(&[("X-Hub-Signature-256", &sig), ("X-GitHub-Delivery", &id)]);
            let got = v.verify(&request(&h, BODY, 0)).unwrap().delivery_id;
            assert_eq!(got.as_deref(), want);
        }
    }

    // ---- Properties ---------------------------------------------------------------------------

    fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
        let mut out = bytes.to_vec();
        if !out.is_empty() {
            let i = (bit / 8) % out.len();
            out[i] ^= 1 << (bit % 8);
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn flipping_a_body_bit_never_verifies(case in 0usize..8, body in proptest::collection::vec(any::<u8>(), 1..200), bit in any::<usize>()) {
            let c = &cases()[case];
            let v = compile((c.config)(secrets(&[c.secret])));
            let h = (c.sign)(c.secret, &body, NOW, None);
            prop_assert_eq!(run(&v, &h, &body, NOW), Ok(()));
            let flipped = flip(&body, bit);
            // Twilio decodes form bodies, so `+` and `%20` are the same byte; skip that lone equivalence.
            let equivalent = c.name == "twilio" && crate::urlencoded::decoded_pairs(&flipped) == crate::urlencoded::decoded_pairs(&body);
            if !equivalent {
                prop_assert!(run(&v, &h, &flipped, NOW).is_err());
            }
        }

        #[test]
        fn flipping_a_signature_bit_never_verifies(case in 0usize..8, body in proptest::collection::vec(any::<u8>(), 0..100), bit in any::<usize>()) {
            let c = &cases()[case];
            let v = compile((c.config)(secrets(&[c.secret])));
            let good = (c.sign)(c.secret, &body, NOW, None);
            let header = get(&good, c.sig_header).to_owned();
            // Bit flip in the transmitted text; a hex digit's case change is the one harmless flip.
            let raw = flip(header.as_bytes(), bit);
            if let Ok(text) = String::from_utf8(raw) {
                let h = set(&good, c.sig_header, Some(&text));
                if run(&v, &h, &body, NOW).is_ok() {
                    prop_assert!(text.eq_ignore_ascii_case(&header), "{} accepted {:?}", c.name, text);
                }
            }
        }

        #[test]
        fn flipping_a_mac_bit_never_verifies(case in 0usize..8, bit in 0usize..160) {
            let c = &cases()[case];
            let v = compile((c.config)(secrets(&[c.secret])));
            let h = (c.sign)(c.secret, BODY, NOW, Some(bit));
            prop_assert_eq!(run(&v, &h, BODY, NOW), Err(VerifyError::Mismatch));
        }

        #[test]
        fn arbitrary_headers_never_panic(
            case in 0usize..8,
            sig in ".{0,120}", ts in ".{0,40}", id in ".{0,40}", url in ".{0,80}", query in ".{0,80}",
            body in proptest::collection::vec(any::<u8>(), 0..120),
            now in any::<i64>(),
        ) {
            let c = &cases()[case];
            let v = compile((c.config)(secrets(&[c.secret])));
            let mut h = vec![(c.sig_header.to_owned(), sig.clone())];
            for name in ["X-Slack-Request-Timestamp", "webhook-timestamp", "X-Zendesk-Webhook-Signature-Timestamp", "X-Hub-Signature"] {
                h.push((name.to_owned(), ts.clone()));
            }
            h.push(("webhook-id".to_owned(), id.clone()));
            let req = VerifyRequest { method: "POST", url: &url, query: &query, headers: &h, body: &body, now_unix: now };
            let _ = v.verify(&req);
            for structured in [format!("t={ts},v1={sig}"), format!("v1,{sig} {id}"), format!("sha256={sig}"), format!("v0={sig}")] {
                let h = set(&h, c.sig_header, Some(&structured));
                let req = VerifyRequest { method: "POST", url: &url, query: &query, headers: &h, body: &body, now_unix: now };
                prop_assert!(v.verify(&req).is_err());
            }
        }
    }
}
