//! Provider handshakes, each written as a [`HandshakeRule`], so the rule engine is the only
//! handshake code (as verification presets are recipes): Meta, Dropbox, Microsoft Graph, Zoom,
//! Twitter / X CRC, Slack and the CloudEvents webhook spec's `OPTIONS` abuse protection.

use std::collections::BTreeMap;

use crate::config::handshake::DEFAULT_MAX_VALUE_BYTES;
use crate::config::handshake::{HandshakeCondition, HandshakeConfig, HandshakeResponse, HandshakeRule};

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

fn query(name: &str) -> HandshakeCondition {
    HandshakeCondition {
        query: Some(name.to_owned()),
        ..HandshakeCondition::default()
    }
}

fn json(path: &str) -> HandshakeCondition {
    HandshakeCondition {
        json: Some(path.to_owned()),
        ..HandshakeCondition::default()
    }
}

fn header(name: &str) -> HandshakeCondition {
    HandshakeCondition {
        header: Some(name.to_owned()),
        ..HandshakeCondition::default()
    }
}

impl HandshakeCondition {
    fn equals(self, value: &str) -> Self {
        HandshakeCondition {
            equals: Some(value.to_owned()),
            ..self
        }
    }

    fn captured_as(self, name: &str) -> Self {
        HandshakeCondition {
            capture: Some(name.to_owned()),
            ..self
        }
    }

    fn otherwise(self, status: u16) -> Self {
        HandshakeCondition {
            otherwise: Some(status),
            ..self
        }
    }
}

fn rule(
    method: &str,
    conditions: Vec<HandshakeCondition>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> HandshakeRule {
    HandshakeRule {
        name: None,
        method: Some(method.to_owned()),
        conditions,
        verified: false,
        publish: false,
        token: None,
        secret: None,
        max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
        response: HandshakeResponse {
            status: 200,
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect::<BTreeMap<_, _>>(),
            body: body.map(str::to_owned),
        },
    }
}

/// An echo of a captured value as plain text, never sniffed as HTML by a browser.
fn text_echo(method: &str, conditions: Vec<HandshakeCondition>, capture: &str) -> HandshakeRule {
    rule(
        method,
        conditions,
        &[("Content-Type", TEXT), ("X-Content-Type-Options", "nosniff")],
        Some(format!("{{{{{capture}}}}}").as_str()),
    )
}

/// The rule a handshake stands for: a rule as written, or the preset's.
pub fn rule_of(handshake: &HandshakeConfig) -> HandshakeRule {
    match handshake {
        HandshakeConfig::Rule(rule) => rule.clone(),
        // Meta's verification request: the token the app was given, and a challenge to echo.
        HandshakeConfig::Meta { verify_token } => HandshakeRule {
            token: Some(verify_token.clone()),
            ..text_echo(
                "GET",
                vec![
                    query("hub.mode").equals("subscribe"),
                    HandshakeCondition {
                        equals_token: true,
                        ..query("hub.verify_token").otherwise(403)
                    },
                    query("hub.challenge").captured_as("challenge").otherwise(400),
                ],
                "challenge",
            )
        },
        HandshakeConfig::Dropbox {} => text_echo("GET", vec![query("challenge").captured_as("challenge")], "challenge"),
        // Microsoft Graph posts `?validationToken=` with an empty body; the answer is the
        // token URL-decoded (query values always are).
        HandshakeConfig::MicrosoftGraph {} => text_echo(
            "POST",
            vec![query("validationToken").captured_as("validationToken")],
            "validationToken",
        ),
        // Signed with `x-zm-signature` like every Zoom event: answered once verified.
        HandshakeConfig::Zoom {} => HandshakeRule {
            verified: true,
            ..rule(
                "POST",
                vec![
                    json("event").equals("endpoint.url_validation"),
                    json("payload.plainToken").captured_as("plainToken").otherwise(400),
                ],
                &[("Content-Type", JSON)],
                Some(
                    r#"{"plainToken":{{jsonSerialize plainToken}},"encryptedToken":"{{hmac_sha256 plainToken "hex"}}"}"#,
                ),
            )
        },
        // An unsigned GET: the answer's HMAC is what proves the endpoint holds the secret.
        HandshakeConfig::Twitter {} => rule(
            "GET",
            vec![query("crc_token").captured_as("crc_token")],
            &[("Content-Type", JSON)],
            Some(r#"{"response_token":"sha256={{hmac_sha256 crc_token "base64"}}"}"#),
        ),
        // Signed like every Slack event: answered once verified.
        HandshakeConfig::Slack {} => HandshakeRule {
            verified: true,
            ..text_echo(
                "POST",
                vec![
                    json("type").equals("url_verification"),
                    json("challenge").captured_as("challenge").otherwise(400),
                ],
                "challenge",
            )
        },
        HandshakeConfig::CloudEvents {
            allowed_origins,
            allowed_rate,
        } => {
            let mut conditions = vec![header("WebHook-Request-Origin")];
            let mut headers = vec![("Allow", "POST".to_owned())];
            if allowed_origins.is_empty() {
                headers.push(("WebHook-Allowed-Origin", "*".to_owned()));
            } else {
                conditions.push(HandshakeCondition {
                    one_of: allowed_origins.clone(),
                    ..header("WebHook-Request-Origin").captured_as("origin").otherwise(403)
                });
                headers.push(("WebHook-Allowed-Origin", "{{origin}}".to_owned()));
            }
            if let Some(rate) = allowed_rate {
                headers.push(("WebHook-Allowed-Rate", rate.to_string()));
            }
            let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
            rule("OPTIONS", conditions, &headers, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::pipeline::handshake::rule::{rule_problems, CompiledRule, HandshakeAnswer, HandshakeRequest};
    use crate::pipeline::verify::request::HeaderSource;
    use crate::secret::Secret;

    /// Every preset, compiled with `secret` as the listener's key.
    fn compiled(handshake: HandshakeConfig, secret: &str) -> CompiledRule {
        let rule = rule_of(&handshake);
        assert_eq!(
            rule_problems(&rule, true),
            Vec::<(String, String)>::new(),
            "{handshake:?}"
        );
        CompiledRule::compile(&rule, handshake.kind().into(), Some(&Secret::new(secret))).unwrap()
    }

    fn answer(rule: &CompiledRule, request: HandshakeRequest<'_>) -> HandshakeAnswer {
        let captures = rule.decide(&request).expect("the rule applies").expect("accepted");
        rule.answer(&captures).unwrap()
    }

    const NO_HEADERS: [(&str, &str); 0] = [];

    fn request<'a>(
        method: &'a str,
        query: &'a str,
        headers: &'a dyn HeaderSource,
        body: &'a [u8],
    ) -> HandshakeRequest<'a> {
        HandshakeRequest {
            method,
            query,
            headers,
            body,
        }
    }

    fn header<'a>(answer: &'a HandshakeAnswer, name: &str) -> Option<&'a str> {
        answer
            .headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Meta, "Getting Started › Verification Requests": the request's example query.
    #[test]
    fn meta_documented_example() {
        let meta = compiled(
            HandshakeConfig::Meta {
                verify_token: Secret::new("meatyhamhock"),
            },
            "app-secret",
        );
        let query = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock";
        let answered = answer(&meta, request("GET", query, &NO_HEADERS, b""));
        assert_eq!((answered.status, answered.body.as_deref()), (200, Some("1158201444")));
        assert_eq!(header(&answered, "content-type"), Some(TEXT));
        let wrong = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=not-it";
        let refusal = meta
            .decide(&request("GET", wrong, &NO_HEADERS, b""))
            .unwrap()
            .unwrap_err();
        assert_eq!(refusal.status, 403);
        assert!(!refusal.reason.contains("meatyhamhock") && !refusal.reason.contains("not-it"));
        // A delivery (a signed POST) is not the handshake.
        assert!(meta.decide(&request("POST", query, &NO_HEADERS, b"{}")).is_none());
    }

    /// Dropbox, "Webhooks › Verification request": `GET ?challenge=…` (the docs give no value),
    /// echoed as plain text with `X-Content-Type-Options: nosniff`.
    #[test]
    fn dropbox_documented_answer() {
        let dropbox = compiled(HandshakeConfig::Dropbox {}, "app-secret");
        let answered = answer(
            &dropbox,
            request("GET", "challenge=zQuA1q2gJ2dWkqQKQuA1q2gJ2dWkqQK", &NO_HEADERS, b""),
        );
        assert_eq!(answered.body.as_deref(), Some("zQuA1q2gJ2dWkqQKQuA1q2gJ2dWkqQK"));
        assert_eq!(header(&answered, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&answered, "content-type"), Some(TEXT));
        let huge = format!("challenge={}", "a".repeat(5000));
        assert_eq!(
            dropbox
                .decide(&request("GET", &huge, &NO_HEADERS, b""))
                .unwrap()
                .unwrap_err()
                .status,
            400
        );
    }

    /// Microsoft Graph, "Receive change notifications through webhooks › Notification endpoint
    /// validation": the token is answered URL-decoded, as plain text.
    #[test]
    fn microsoft_graph_documented_example() {
        let graph = compiled(HandshakeConfig::MicrosoftGraph {}, "unused");
        let query = "validationToken=Validation%3a+Testing+client+application%21";
        let answered = answer(&graph, request("POST", query, &[("Content-Type", "text/plain")], b""));
        assert_eq!(
            answered.body.as_deref(),
            Some("Validation: Testing client application!")
        );
        assert_eq!(header(&answered, "content-type"), Some(TEXT));
        // A change notification carries no token: it is a delivery.
        assert!(graph
            .decide(&request("POST", "", &NO_HEADERS, br#"{"value":[]}"#))
            .is_none());
    }

    /// Zoom, "Webhooks › Validate your webhook endpoint": the documented request body, answered
    /// with the token and its hex HMAC-SHA256 under the secret token (the digest computed
    /// independently: `printf %s qgg8vlvZRS6UYooatFL8Aw | openssl dgst -sha256 -hmac …`).
    #[test]
    fn zoom_documented_example() {
        let zoom = compiled(HandshakeConfig::Zoom {}, "zoom-secret-token");
        assert!(
            zoom.verified && !zoom.publish,
            "signed: answered once verified, never published"
        );
        let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
        let answered = answer(&zoom, request("POST", "", &NO_HEADERS, body));
        let document: serde_json::Value = serde_json::from_str(answered.body.as_deref().unwrap()).unwrap();
        assert_eq!(
            document,
            json!({
                "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
                "encryptedToken": ZOOM_ENCRYPTED_TOKEN,
            })
        );
        assert_eq!(header(&answered, "content-type"), Some(JSON));
        let missing = br#"{"payload":{},"event":"endpoint.url_validation"}"#;
        assert_eq!(
            zoom.decide(&request("POST", "", &NO_HEADERS, missing))
                .unwrap()
                .unwrap_err()
                .status,
            400
        );
        // A token with quotes stays one JSON string.
        let quoted = br#"{"payload":{"plainToken":"a\"b"},"event":"endpoint.url_validation"}"#;
        let answered = answer(&zoom, request("POST", "", &NO_HEADERS, quoted));
        let document: serde_json::Value = serde_json::from_str(answered.body.as_deref().unwrap()).unwrap();
        assert_eq!(document["plainToken"], "a\"b");
    }

    /// HMAC-SHA256("zoom-secret-token", "qgg8vlvZRS6UYooatFL8Aw"), hex.
    const ZOOM_ENCRYPTED_TOKEN: &str = "d9e0d764a78494688ba3f2d5c0ed4ca311394b4834d959759213424d2df961e3";

    /// Twitter / X, "Securing webhooks › Challenge-Response Checks": the example consumer secret
    /// and `crc_token` of the developer docs' sample code.
    #[test]
    fn twitter_documented_example() {
        let twitter = compiled(
            HandshakeConfig::Twitter {},
            "z3ZX4v7mAAUGykl3EcmkqbartmuW8VFOOzCloLx9Q45P0hLrFu",
        );
        let answered = answer(
            &twitter,
            request(
                "GET",
                "crc_token=9b4507b3-9040-4669-9ca3-6b94edb50553&nonce=MTY2",
                &NO_HEADERS,
                b"",
            ),
        );
        let document: serde_json::Value = serde_json::from_str(answered.body.as_deref().unwrap()).unwrap();
        assert_eq!(document, json!({ "response_token": TWITTER_RESPONSE_TOKEN }));
        assert_eq!(header(&answered, "content-type"), Some(JSON));
    }

    /// `sha256=` + base64 HMAC-SHA256(consumer secret, crc_token) of the example above, computed
    /// independently (`printf %s 9b45… | openssl dgst -sha256 -hmac z3ZX… -binary | base64`).
    const TWITTER_RESPONSE_TOKEN: &str = "sha256=Cytd4Sq+NvEcV3MMrXxWJGJx5A+y/lXzzU2Maartkx8=";

    /// Slack, "Events API › url_verification": the documented event's challenge, as plain text,
    /// only once the signature verified (the rule says so; the verify stage enforces it).
    #[test]
    fn slack_documented_example() {
        let slack = compiled(HandshakeConfig::Slack {}, "slack-signing-secret");
        assert!(slack.verified && !slack.publish);
        let body = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
        let answered = answer(&slack, request("POST", "", &NO_HEADERS, body));
        assert_eq!(
            answered.body.as_deref(),
            Some("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
        );
        assert_eq!(header(&answered, "content-type"), Some(TEXT));
        // An event callback is a delivery.
        let event = br#"{"type":"event_callback","event":{"type":"app_mention"}}"#;
        assert!(slack.decide(&request("POST", "", &NO_HEADERS, event)).is_none());
    }

    /// CloudEvents "HTTP 1.1 Web Hooks for Event Delivery", section 4.2: the example validation
    /// request and its answers, with and without a list of origins.
    #[test]
    fn cloudevents_abuse_protection_spec_example() {
        let origin = [("WebHook-Request-Origin", "eventemitter.example.com")];
        let any = compiled(
            HandshakeConfig::CloudEvents {
                allowed_origins: Vec::new(),
                allowed_rate: None,
            },
            "unused",
        );
        let answered = answer(&any, request("OPTIONS", "", &origin, b""));
        assert_eq!(answered.status, 200);
        assert_eq!(header(&answered, "WebHook-Allowed-Origin"), Some("*"));
        assert_eq!(header(&answered, "Allow"), Some("POST"));
        assert_eq!(header(&answered, "WebHook-Allowed-Rate"), None);
        assert_eq!(answered.body, None);

        let listed = compiled(
            HandshakeConfig::CloudEvents {
                allowed_origins: vec!["eventemitter.example.com".into()],
                allowed_rate: Some(120),
            },
            "unused",
        );
        let answered = answer(&listed, request("OPTIONS", "", &origin, b""));
        assert_eq!(
            header(&answered, "WebHook-Allowed-Origin"),
            Some("eventemitter.example.com")
        );
        assert_eq!(header(&answered, "WebHook-Allowed-Rate"), Some("120"));
        let stranger = [("WebHook-Request-Origin", "evil.example.net")];
        let refusal = listed
            .decide(&request("OPTIONS", "", &stranger, b""))
            .unwrap()
            .unwrap_err();
        assert_eq!(refusal.status, 403);
        assert!(
            listed.decide(&request("OPTIONS", "", &NO_HEADERS, b"")).is_none(),
            "no origin: not the handshake"
        );
    }
}
