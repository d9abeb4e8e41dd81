//! Declarative handshakes: the checks providers make of an endpoint (Meta's `hub.challenge`,
//! Zoom's `endpoint.url_validation`, CloudEvents' `OPTIONS` …), answered by a listener's rules.
//!
//! The Receiver asks [`Handshakes::decide`] about every request once its body is read. A
//! request no rule applies to goes through the chain unchanged. A rule that answers before
//! verification (an unsigned GET challenge) is answered by the Receiver and publishes nothing —
//! validation refuses `publish` without `verified`. A `verified` rule's request goes into the
//! chain marked (`Ingest::answer_once_verified`): the verify stage checks it like any delivery
//! and answers it only if it passed, so a handshake can never carry a forged delivery past
//! verification; with `publish`, it travels the whole chain and the handshake's answer is sent
//! once Kafka acknowledged its records. Rules are compiled with the listener
//! (`ListenerConfig::compile`) and checked with it (`ListenerConfig::problems`).

pub mod presets;
pub mod rule;

use crate::config::handshake::{HandshakeConfig, HandshakeRule};
use crate::config::listener::ListenerConfig;
use crate::secret::Secret;
use rule::{rule_problems, CompiledRule};
pub use rule::{HandshakeAnswer, HandshakeRefusal, HandshakeRequest};

/// What the rules make of a request.
#[derive(Debug)]
pub enum Decision {
    /// No rule applies: a delivery like any other.
    Delivery,
    /// A rule applies and refuses it (4xx, nothing published).
    Refused(HandshakeRefusal),
    /// A rule applies: its answer, and when it may be sent.
    Handshake(Handshake),
}

/// A request a rule applies to, with the answer already rendered (before anything is
/// published, so an answer that cannot be built refuses the request instead).
#[derive(Debug)]
pub struct Handshake {
    /// The answer.
    pub answer: HandshakeAnswer,
    /// Answered only once verification passed.
    pub verified: bool,
    /// Its records are published too.
    pub publish: bool,
}

/// A listener's compiled rules, in the order written (the first that applies answers).
#[derive(Debug, Default)]
pub struct Handshakes {
    rules: Vec<CompiledRule>,
}

/// Each rule of a listener with the key its problems are reported under and its name: the
/// rules written in `handshakes`, then Slack's `url_verification` for a verification that
/// answers it (`url_verification_challenge`, set by the `slack` preset) and declares no
/// `slack` handshake itself.
fn rules_of(config: &ListenerConfig) -> Vec<(String, String, HandshakeRule)> {
    let mut rules: Vec<(String, String, HandshakeRule)> = config
        .handshakes
        .iter()
        .enumerate()
        .map(|(index, handshake)| {
            let key = format!("handshakes[{index}]");
            let rule = presets::rule_of(handshake);
            let name = match (handshake, &rule.name) {
                (HandshakeConfig::Rule(_), Some(name)) => name.clone(),
                (HandshakeConfig::Rule(_), None) => key.clone(),
                (preset, _) => preset.kind().to_owned(),
            };
            (key, name, rule)
        })
        .collect();
    let answers_slack = config
        .verification
        .as_recipe()
        .is_some_and(|(recipe, _)| recipe.url_verification_challenge);
    let declares_slack = config
        .handshakes
        .iter()
        .any(|handshake| matches!(handshake, HandshakeConfig::Slack {}));
    if answers_slack && !declares_slack {
        let slack = presets::rule_of(&HandshakeConfig::Slack {});
        rules.push(("verification".into(), "slack".into(), slack));
    }
    rules
}

/// The key of `hmac_sha256` when a rule sets none: the first secret of the listener's
/// verification (the oldest still active, which the provider holds until it is retired).
fn listener_key(config: &ListenerConfig) -> Option<&Secret> {
    config.verification.secrets().into_iter().next()
}

impl ListenerConfig {
    /// Problems with the listener's handshakes, keyed relative to the listener
    /// (`handshakes[1].match[0].json`).
    pub fn handshake_problems(&self) -> Vec<(String, String)> {
        let listener_keyed = listener_key(self).is_some();
        let mut problems = Vec::new();
        for (index, handshake) in self.handshakes.iter().enumerate() {
            let key = format!("handshakes[{index}]");
            let preset_problems = preset_problems(handshake, listener_keyed);
            if !preset_problems.is_empty() {
                problems.extend(preset_problems.into_iter().map(|(field, message)| {
                    let at = if field.is_empty() {
                        key.clone()
                    } else {
                        format!("{key}.{field}")
                    };
                    (at, message)
                }));
                continue;
            }
            let rule = presets::rule_of(handshake);
            let keyed = rule.secret.is_some() || listener_keyed;
            problems.extend(
                rule_problems(&rule, keyed)
                    .into_iter()
                    .map(|(field, message)| (format!("{key}.{field}"), message)),
            );
        }
        problems
    }
}

/// A preset's own parameters (a rule's are checked as a rule).
fn preset_problems(handshake: &HandshakeConfig, listener_keyed: bool) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    match handshake {
        HandshakeConfig::Meta { verify_token } if verify_token.expose().is_empty() => {
            problems.push(("verify_token".into(), "must not be empty".into()));
        }
        HandshakeConfig::Zoom {} | HandshakeConfig::Twitter {} if !listener_keyed => {
            let secret = match handshake {
                HandshakeConfig::Zoom {} => "the Zoom app's secret token",
                _ => "the app's consumer secret",
            };
            problems.push((
                String::new(),
                format!(
                    "the {} handshake signs with the listener's secret: give the listener a verification with {secret}",
                    handshake.kind()
                ),
            ));
        }
        HandshakeConfig::CloudEvents {
            allowed_origins,
            allowed_rate,
        } => {
            for (index, origin) in allowed_origins.iter().enumerate() {
                if origin.is_empty() || !origin.bytes().all(|byte| byte.is_ascii_graphic()) {
                    problems.push((format!("allowed_origins[{index}]"), "must be a host name".into()));
                }
            }
            if *allowed_rate == Some(0) {
                problems.push(("allowed_rate".into(), "must be at least 1 (or unset)".into()));
            }
        }
        _ => {}
    }
    problems
}

impl Handshakes {
    /// Compiles the rules of a listener that passed [`ListenerConfig::handshake_problems`]; an
    /// error names the handshake.
    pub fn compile(config: &ListenerConfig) -> Result<Handshakes, (String, String)> {
        let key = listener_key(config);
        let rules = rules_of(config)
            .into_iter()
            .map(|(at, name, rule)| CompiledRule::compile(&rule, name, key).map_err(|message| (at, message)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Handshakes { rules })
    }

    /// Whether some rule answers `method`: such a request reaches the listener even when
    /// `content.methods` does not list it (it is then only a handshake, or a 405).
    pub fn answers_method(&self, method: &str) -> bool {
        self.rules.iter().any(|rule| rule.method.as_deref() == Some(method))
    }

    /// Query parameters holding a rule's token (Meta's `hub.verify_token`): shown `[redacted]`
    /// in debug captures.
    pub fn secret_query_params(&self) -> Vec<&str> {
        self.rules
            .iter()
            .flat_map(CompiledRule::token_places)
            .filter_map(|(query, name)| query.then_some(name))
            .collect()
    }

    /// Headers holding a rule's token: shown `[redacted]` in debug captures.
    pub fn secret_headers(&self) -> Vec<&str> {
        self.rules
            .iter()
            .flat_map(CompiledRule::token_places)
            .filter_map(|(query, name)| (!query).then_some(name))
            .collect()
    }

    /// Whether the listener has no rule at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first rule that applies decides; none: a delivery.
    pub fn decide(&self, request: &HandshakeRequest<'_>) -> Decision {
        for rule in &self.rules {
            let captures = match rule.decide(request) {
                None => continue,
                Some(Err(refusal)) => return Decision::Refused(refusal),
                Some(Ok(captures)) => captures,
            };
            return match rule.answer(&captures) {
                Ok(answer) => Decision::Handshake(Handshake {
                    answer,
                    verified: rule.verified,
                    publish: rule.publish,
                }),
                Err(refusal) => Decision::Refused(refusal),
            };
        }
        Decision::Delivery
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{env, BASE};
    use crate::config::Settings;

    fn problems_of(listener_toml: &str) -> Vec<String> {
        match Settings::from_toml_and_env(&format!("{BASE}{listener_toml}"), env(&[])) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_bad_handshake_is_a_load_error_naming_listener_and_key() {
        let found = problems_of(
            r#"
[[listeners.handshakes]]
type = "zoom"

[[listeners.handshakes]]
type = "meta"
verify_token = ""

[[listeners.handshakes]]
type = "rule"
match = [{ query = "x", json = "y" }]
response = { body = "{{nosuchhelper x}}" }
"#,
        );
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(
            found[0]
                .starts_with("listeners[orders].handshakes[0]: the zoom handshake signs with the listener's secret"),
            "{found:#?}"
        );
        assert_eq!(
            found[1],
            "listeners[orders].handshakes[1].verify_token: must not be empty"
        );
        assert_eq!(
            found[2],
            "listeners[orders].handshakes[2].match[0]: set exactly one of query, header or json"
        );
        assert!(
            found[3].starts_with("listeners[orders].handshakes[2].response.body: invalid template"),
            "{found:#?}"
        );
    }

    /// Every `[[listeners.handshakes]]` block of the README loads, and every preset has one.
    #[test]
    fn readme_handshake_examples_load() {
        let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        let mut kinds = Vec::new();
        for block in doc.split("```toml\n").skip(1) {
            let src = block.split("```").next().unwrap();
            if !src.starts_with("[[listeners.handshakes]]") {
                continue;
            }
            let settings = Settings::from_toml_and_env(&format!("{BASE}{src}"), env(&[]))
                .unwrap_or_else(|errors| panic!("{src}\n{errors}"));
            let listener = &settings.listeners[0];
            listener
                .compile(&settings)
                .unwrap_or_else(|errors| panic!("{src}\n{errors}"));
            kinds.extend(listener.handshakes.iter().map(HandshakeConfig::kind));
        }
        for kind in [
            "rule",
            "meta",
            "dropbox",
            "microsoft_graph",
            "zoom",
            "twitter",
            "slack",
            "cloudevents",
        ] {
            assert!(kinds.contains(&kind), "the README lacks a {kind} example");
        }
    }

    #[test]
    fn a_slack_verification_answers_url_verification_as_before() {
        let settings = crate::pipeline::testing::settings(
            "[[listeners]]\nid = \"t\"\n[listeners.verification]\ntype = \"slack\"\nsecrets = [\"s\"]\n",
        );
        let handshakes = Handshakes::compile(&settings.listeners[0]).unwrap();
        let body = br#"{"type":"url_verification","challenge":"c-1"}"#;
        let request = HandshakeRequest {
            method: "POST",
            query: "",
            headers: &[("Content-Type", "application/json")],
            body,
        };
        match handshakes.decide(&request) {
            Decision::Handshake(handshake) => {
                assert!(handshake.verified && !handshake.publish);
                assert_eq!(handshake.answer.body.as_deref(), Some("c-1"));
                assert_eq!(handshake.answer.rule, "slack");
            }
            other => panic!("{other:?}"),
        }
        // The rules answer only what they name: a GET is no Slack handshake.
        assert!(!handshakes.answers_method("GET"));
        assert!(handshakes.answers_method("POST"));
    }

    #[test]
    fn the_first_rule_that_applies_decides() {
        let settings = crate::pipeline::testing::settings(
            r#"
[[listeners]]
id = "t"
[[listeners.handshakes]]
type = "dropbox"
[[listeners.handshakes]]
type = "rule"
name = "second"
method = "GET"
match = [{ query = "challenge" }]
response = { status = 204 }
"#,
        );
        let handshakes = Handshakes::compile(&settings.listeners[0]).unwrap();
        let request = HandshakeRequest {
            method: "GET",
            query: "challenge=abc",
            headers: &[("X", "y")],
            body: b"",
        };
        match handshakes.decide(&request) {
            Decision::Handshake(handshake) => assert_eq!(handshake.answer.rule, "dropbox"),
            other => panic!("{other:?}"),
        }
        let request = HandshakeRequest {
            query: "other=1",
            ..request
        };
        assert!(matches!(handshakes.decide(&request), Decision::Delivery));
    }
}
