//! Listener verification: `VerificationConfig` validated and compiled into a [`Verifier`], which checks requests.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use subtle::{Choice, ConstantTimeEq};

use super::presets;
use super::recipe::engine::CompiledRecipe;
use super::recipe::json_path::{json_lookup, parse_json_path};
use super::recipe::validate::{join_errors, valid_header_name};
// Re-exported: whoever holds a `Verifier` names what `verify` takes and answers through it.
pub use super::request::{HeaderSource, Verified, VerifyError, VerifyRequest};
use crate::config::recipe::RecipeConfig;
use crate::config::verification::{VerificationConfig, MIN_URL_TOKEN_LEN};
use crate::secret::Secret;
use crate::urlencoded;

impl VerificationConfig {
    /// Problems as (field path relative to `verification`, reason); empty when valid.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        let mut err = |f: String, r: &str| errs.push((f, r.to_owned()));
        match self {
            Self::None => {}
            Self::Basic { credentials } => {
                if credentials.is_empty() {
                    err("credentials".into(), "at least one credential is required");
                }
                for (i, c) in credentials.iter().enumerate() {
                    if c.username.is_empty() || c.username.contains(':') || c.username.chars().any(char::is_control) {
                        err(
                            format!("credentials[{i}].username"),
                            "must be non-empty, without `:` or control characters",
                        );
                    }
                    if c.password.expose().is_empty() {
                        err(format!("credentials[{i}].password"), "must not be empty");
                    }
                }
            }
            Self::SecretUrl { tokens } => {
                if tokens.is_empty() {
                    err("tokens".into(), "at least one token is required");
                }
                for (i, t) in tokens.iter().enumerate() {
                    let t = t.expose();
                    if t.len() < MIN_URL_TOKEN_LEN {
                        err(format!("tokens[{i}]"), "must be at least 16 characters");
                    } else if !t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
                        err(format!("tokens[{i}]"), "may only contain A-Z a-z 0-9 - . _ ~");
                    }
                }
            }
            Self::Token {
                tokens,
                json_path,
                header,
                query,
            } => {
                if tokens.is_empty() {
                    err("tokens".into(), "at least one token is required");
                }
                for (i, t) in tokens.iter().enumerate() {
                    if t.expose().is_empty() {
                        err(format!("tokens[{i}]"), "must not be empty");
                    }
                }
                if json_path.is_none() && header.is_none() && query.is_none() {
                    err("header".into(), "set at least one of header, query or json_path");
                }
                if let Some(Err(reason)) = json_path.as_deref().map(parse_json_path) {
                    err("json_path".into(), &reason);
                }
                if header.as_deref().is_some_and(|h| !valid_header_name(h)) {
                    err("header".into(), "must be a valid HTTP header name");
                }
                if query.as_deref().is_some_and(str::is_empty) {
                    err("query".into(), "must not be empty");
                }
            }
            _ => {
                let Some((recipe, renames)) = self.as_recipe() else {
                    return errs;
                };
                for (field, reason) in recipe.validate() {
                    errs.push((rename_field(&field, renames), reason));
                }
            }
        }
        errs
    }

    /// The recipe behind a signing type, plus how recipe field names map back to this type's fields.
    pub fn as_recipe(&self) -> Option<(RecipeConfig, &'static [(&'static str, &'static str)])> {
        const SAME: &[(&str, &str)] = &[];
        Some(match self {
            Self::Hmac {
                algorithm,
                encoding,
                header,
                prefix,
                secrets,
            } => (
                presets::hmac(*algorithm, *encoding, header, prefix.as_deref(), secrets),
                &[("signature_header", "header")],
            ),
            Self::Github { secrets } => (presets::github(secrets), SAME),
            Self::Stripe {
                secrets,
                tolerance_secs,
            } => (presets::stripe(secrets, *tolerance_secs), SAME),
            Self::Slack {
                secrets,
                tolerance_secs,
            } => (presets::slack(secrets, *tolerance_secs), SAME),
            Self::Shopify { secrets } => (presets::shopify(secrets), SAME),
            Self::StandardWebhooks {
                secrets,
                tolerance_secs,
            } => (presets::standard_webhooks(secrets, *tolerance_secs), SAME),
            Self::Zendesk {
                secrets,
                tolerance_secs,
            } => (presets::zendesk(secrets, *tolerance_secs), SAME),
            Self::Twilio { auth_tokens } => (presets::twilio(auth_tokens), &[("secrets", "auth_tokens")]),
            Self::Recipe(r) => (r.clone(), SAME),
            Self::None | Self::Basic { .. } | Self::SecretUrl { .. } | Self::Token { .. } => return None,
        })
    }

    /// Validates and builds the runtime verifier; the error lists every problem.
    pub fn compile(&self) -> Result<Verifier, String> {
        let errs = self.validate();
        if !errs.is_empty() {
            return Err(join_errors(&errs));
        }
        let inner = match self {
            Self::None => Inner::None,
            Self::Basic { credentials } => Inner::Basic(
                credentials
                    .iter()
                    .map(|c| digest(format!("{}:{}", c.username, c.password.expose()).as_bytes()))
                    .collect(),
            ),
            Self::SecretUrl { tokens } => Inner::SecretUrl(digests(tokens)),
            Self::Token {
                tokens,
                json_path,
                header,
                query,
            } => Inner::Token {
                tokens: digests(tokens),
                json_path: json_path.as_deref().map(parse_json_path).transpose()?,
                header: header.clone(),
                query: query.clone(),
            },
            _ => {
                let (recipe, _) = self.as_recipe().ok_or("not a signature type")?;
                Inner::Recipe(Box::new(recipe.compile()?))
            }
        };
        Ok(Verifier {
            kind: self.kind(),
            inner,
        })
    }

    /// Short type name for logs and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Basic { .. } => "basic",
            Self::Hmac { .. } => "hmac",
            Self::SecretUrl { .. } => "secret_url",
            Self::Token { .. } => "token",
            Self::Github { .. } => "github",
            Self::Stripe { .. } => "stripe",
            Self::Slack { .. } => "slack",
            Self::Shopify { .. } => "shopify",
            Self::StandardWebhooks { .. } => "standard_webhooks",
            Self::Zendesk { .. } => "zendesk",
            Self::Twilio { .. } => "twilio",
            Self::Recipe(_) => "recipe",
        }
    }
}

fn rename_field(field: &str, renames: &[(&str, &str)]) -> String {
    for (from, to) in renames {
        if let Some(rest) = field.strip_prefix(from) {
            if rest.is_empty() || rest.starts_with(['[', '.']) {
                return format!("{to}{rest}");
            }
        }
    }
    field.to_owned()
}

type Digest32 = [u8; 32];

// Comparing digests rather than the strings keeps the timing independent of the secret's length.
fn digest(bytes: &[u8]) -> Digest32 {
    Sha256::digest(bytes).into()
}

fn digests(secrets: &[Secret]) -> Vec<Digest32> {
    secrets.iter().map(|s| digest(s.expose().as_bytes())).collect()
}

fn matches_any(candidate: &[u8], accepted: &[Digest32]) -> Choice {
    let d = digest(candidate);
    accepted.iter().fold(Choice::from(0), |acc, a| acc | a.ct_eq(&d))
}

enum Inner {
    None,
    Basic(Vec<Digest32>),
    SecretUrl(Vec<Digest32>),
    Token {
        tokens: Vec<Digest32>,
        json_path: Option<Vec<String>>,
        header: Option<String>,
        query: Option<String>,
    },
    Recipe(Box<CompiledRecipe>),
}

/// A compiled, ready-to-use verification scheme.
pub struct Verifier {
    kind: &'static str,
    inner: Inner,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Verifier");
        d.field("kind", &self.kind);
        match &self.inner {
            Inner::None => {}
            Inner::Basic(c) => {
                d.field("credentials", &c.len());
            }
            Inner::SecretUrl(t) => {
                d.field("tokens", &t.len());
            }
            Inner::Token {
                tokens,
                header,
                query,
                json_path,
            } => {
                d.field("tokens", &tokens.len())
                    .field("header", header)
                    .field("query", query)
                    .field("json_path", json_path);
            }
            Inner::Recipe(r) => {
                d.field("recipe", r);
            }
        }
        d.finish()
    }
}

/// The last path segment of a URL (query and fragment ignored).
fn last_path_segment(url: &str) -> &str {
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => url,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    path.rsplit('/').next().unwrap_or("")
}

impl Verifier {
    /// Same as `VerificationConfig::kind`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Checks a request; `Ok` carries the delivery id when the scheme has one.
    pub fn verify(&self, req: &VerifyRequest<'_>) -> Result<Verified, VerifyError> {
        match &self.inner {
            Inner::None => Ok(Verified::default()),
            Inner::Basic(creds) => {
                let value = req
                    .headers
                    .header("Authorization")
                    .ok_or(VerifyError::MissingCredentials)?
                    .trim();
                let (scheme, encoded) = value.split_once(' ').ok_or(VerifyError::Malformed)?;
                if !scheme.eq_ignore_ascii_case("basic") {
                    return Err(VerifyError::MissingCredentials);
                }
                let decoded = STANDARD.decode(encoded.trim()).map_err(|_| VerifyError::Malformed)?;
                if !decoded.contains(&b':') {
                    return Err(VerifyError::Malformed);
                }
                ok_if(matches_any(&decoded, creds))
            }
            Inner::SecretUrl(tokens) => {
                // Re-checked here so a receiver that forgets `check_url_token` still cannot let a request through.
                let seg = last_path_segment(req.url);
                if seg.is_empty() {
                    return Err(VerifyError::MissingCredentials);
                }
                ok_if(matches_any(seg.as_bytes(), tokens))
            }
            Inner::Token {
                tokens,
                json_path,
                header,
                query,
            } => {
                let mut found = false;
                let mut malformed = false;
                let mut ok = Choice::from(0);
                if let Some(h) = header {
                    if let Some(v) = req.headers.header(h) {
                        let v = v.trim();
                        found = true;
                        ok |= matches_any(v.as_bytes(), tokens);
                        if let Some((scheme, rest)) = v.split_once(' ') {
                            if scheme.eq_ignore_ascii_case("bearer") {
                                ok |= matches_any(rest.trim().as_bytes(), tokens);
                            }
                        }
                    }
                }
                if let Some(q) = query {
                    if let Some(v) = urlencoded::query_param(req.query, q) {
                        found = true;
                        ok |= matches_any(&v, tokens);
                    }
                }
                if let Some(path) = json_path {
                    match serde_json::from_slice::<serde_json::Value>(req.body) {
                        Ok(json) => {
                            if let Some(v) = json_lookup(&json, path) {
                                found = true;
                                ok |= matches_any(v.as_bytes(), tokens);
                            }
                        }
                        Err(_) => malformed = true,
                    }
                }
                if bool::from(ok) {
                    Ok(Verified::default())
                } else if found {
                    Err(VerifyError::Mismatch)
                } else if malformed {
                    Err(VerifyError::Malformed)
                } else {
                    Err(VerifyError::MissingCredentials)
                }
            }
            Inner::Recipe(r) => r.verify(req),
        }
    }

    /// Constant-time check of a secret-URL token (any active token matches); false for other verifiers.
    pub fn check_url_token(&self, token: &str) -> bool {
        match &self.inner {
            Inner::SecretUrl(tokens) => !token.is_empty() && bool::from(matches_any(token.as_bytes(), tokens)),
            _ => false,
        }
    }

    /// True when the listener's URL ends with a secret token.
    pub fn uses_url_token(&self) -> bool {
        matches!(self.inner, Inner::SecretUrl(_))
    }

    /// A header that carries a token for this scheme (beyond the well-known signature
    /// headers), to be redacted wherever headers are shown.
    pub fn secret_header(&self) -> Option<&str> {
        match &self.inner {
            Inner::Token { header, .. } => header.as_deref(),
            _ => None,
        }
    }

    /// A query parameter that carries a token, to be redacted wherever queries are shown.
    pub fn secret_query(&self) -> Option<&str> {
        match &self.inner {
            Inner::Token { query, .. } => query.as_deref(),
            _ => None,
        }
    }

    /// The path (segments) of a token in the JSON body: cut out of the body once verified.
    pub fn secret_json_path(&self) -> Option<&[String]> {
        match &self.inner {
            Inner::Token { json_path, .. } => json_path.as_deref(),
            _ => None,
        }
    }
}

fn ok_if(ok: Choice) -> Result<Verified, VerifyError> {
    if bool::from(ok) {
        Ok(Verified::default())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::recipe::{HmacAlgorithm, SigEncoding};
    use crate::config::verification::BasicCredential;
    use crate::pipeline::verify::request::tests::{headers, request};
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct File {
        listeners: Listeners,
    }

    #[derive(Deserialize)]
    struct Listeners {
        verification: VerificationConfig,
    }

    fn parse(src: &str) -> VerificationConfig {
        toml::from_str::<File>(src)
            .unwrap_or_else(|e| panic!("{e}\n{src}"))
            .listeners
            .verification
    }

    fn secrets(list: &[&str]) -> Vec<Secret> {
        list.iter().map(|s| Secret::new(*s)).collect()
    }

    fn with_url<'a>(h: &'a dyn HeaderSource, url: &'a str) -> VerifyRequest<'a> {
        VerifyRequest {
            url,
            ..request(h, b"{}", 0)
        }
    }

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "[redacted] [redacted]");
        let cfg = parse("[listeners.verification]\ntype = \"github\"\nsecrets = [\"hunter2\"]");
        assert!(!format!("{cfg:?}").contains("hunter2"));
        let v = cfg.compile().unwrap();
        assert!(!format!("{v:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    /// Every `[listeners.verification]` block of the README deserializes, validates and compiles.
    #[test]
    fn docs_examples_parse() {
        let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        let mut kinds = Vec::new();
        for block in doc.split("```toml\n").skip(1) {
            let src = block.split("```").next().unwrap();
            // Only verification examples; the README has other TOML too.
            if !src.starts_with("[listeners.verification]") {
                continue;
            }
            let cfg = parse(src);
            assert_eq!(cfg.validate(), vec![], "{src}");
            let v = cfg.compile().unwrap();
            assert_eq!(v.kind(), cfg.kind());
            kinds.push(cfg.kind());
        }
        for kind in [
            "none",
            "basic",
            "secret_url",
            "token",
            "hmac",
            "github",
            "stripe",
            "slack",
            "shopify",
            "standard_webhooks",
            "zendesk",
            "twilio",
            "recipe",
        ] {
            assert!(kinds.contains(&kind), "docs lack a {kind} example");
        }
    }

    #[test]
    fn toml_rejects_unknown_types_and_fields() {
        for bad in [
            "[listeners.verification]\ntype = \"gitlab\"\nsecrets = [\"x\"]",
            "[listeners.verification]\ntype = \"github\"\nsecrets = [\"x\"]\nsecret = \"y\"",
            "[listeners.verification]\ntype = \"stripe\"\nsecrets = [\"x\"]\ntolerance = 5",
            "[listeners.verification]\ntype = \"recipe\"\nalgorithm = \"md5\"\nencoding = \"hex\"\nsignature_header = \"X\"\nsecrets = [\"x\"]",
            "[listeners.verification]\ntype = \"basic\"\ncredentials = [{ username = \"u\", password = \"p\", extra = 1 }]",
            "[listeners.verification]\nsecrets = [\"x\"]",
        ] {
            assert!(toml::from_str::<File>(bad).is_err(), "{bad}");
        }
        assert_eq!(VerificationConfig::default(), VerificationConfig::None);
    }

    #[test]
    fn json_config_deserializes_too() {
        let cfg: VerificationConfig = serde_json::from_str(
            r#"{"type":"standard_webhooks","secrets":["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]}"#,
        )
        .unwrap();
        assert_eq!(cfg.kind(), "standard_webhooks");
        let cfg: VerificationConfig = serde_json::from_str(
            r#"{"type":"recipe","algorithm":"sha256","encoding":"hex","signature_header":"X-S","secrets":["k"]}"#,
        )
        .unwrap();
        assert!(cfg.compile().is_ok());
        assert!(serde_json::from_str::<VerificationConfig>(r#"{"type":"recipe","algorithm":"sha256","encoding":"hex","signature_header":"X-S","secrets":["k"],"typo":1}"#).is_err());
    }

    #[test]
    fn validation_paths_use_the_variant_field_names() {
        let cases: Vec<(VerificationConfig, Vec<&str>)> = vec![
            (VerificationConfig::Twilio { auth_tokens: vec![] }, vec!["auth_tokens"]),
            (
                VerificationConfig::Twilio {
                    auth_tokens: secrets(&["ok", ""]),
                },
                vec!["auth_tokens[1]"],
            ),
            (
                VerificationConfig::Hmac {
                    algorithm: HmacAlgorithm::Sha256,
                    encoding: SigEncoding::Hex,
                    header: "".into(),
                    prefix: None,
                    secrets: secrets(&["k"]),
                },
                vec!["header"],
            ),
            (VerificationConfig::Github { secrets: vec![] }, vec!["secrets"]),
            (
                VerificationConfig::StandardWebhooks {
                    secrets: secrets(&["whsec_!!"]),
                    tolerance_secs: None,
                },
                vec!["secrets[0]"],
            ),
            (VerificationConfig::Basic { credentials: vec![] }, vec!["credentials"]),
            (
                VerificationConfig::Basic {
                    credentials: vec![BasicCredential {
                        username: "a:b".into(),
                        password: Secret::new(""),
                    }],
                },
                vec!["credentials[0].username", "credentials[0].password"],
            ),
            (
                VerificationConfig::SecretUrl {
                    tokens: secrets(&["short"]),
                },
                vec!["tokens[0]"],
            ),
            (
                VerificationConfig::SecretUrl {
                    tokens: secrets(&["has/slash/in/it/0123456"]),
                },
                vec!["tokens[0]"],
            ),
            (
                VerificationConfig::Token {
                    tokens: secrets(&["t"]),
                    json_path: None,
                    header: None,
                    query: None,
                },
                vec!["header"],
            ),
            (
                VerificationConfig::Token {
                    tokens: secrets(&["t"]),
                    json_path: Some("a..b".into()),
                    header: None,
                    query: None,
                },
                vec!["json_path"],
            ),
        ];
        for (cfg, want) in cases {
            let got: Vec<String> = cfg.validate().into_iter().map(|(f, _)| f).collect();
            assert_eq!(got, want, "{}", cfg.kind());
            assert!(cfg.compile().is_err());
        }
    }

    #[test]
    fn none_accepts_everything() {
        let v = VerificationConfig::None.compile().unwrap();
        let h: [(&str, &str); 0] = [];
        assert_eq!(v.verify(&request(&h, b"", 0)), Ok(Verified::default()));
        assert!(!v.uses_url_token() && !v.check_url_token("anything"));
    }

    #[test]
    fn basic_auth_with_rotation() {
        let v = parse(
            "[listeners.verification]\ntype = \"basic\"\ncredentials = [{ username = \"u\", password = \"old\" }, { username = \"u\", password = \"p:w\" }]",
        )
        .compile()
        .unwrap();
        let auth = |creds: &str| format!("Basic {}", STANDARD.encode(creds));
        for (value, want) in [
            (auth("u:old"), Ok(())),
            (auth("u:p:w"), Ok(())),
            (format!("basic  {}", STANDARD.encode("u:p:w")), Ok(())),
            (auth("u:p"), Err(VerifyError::Mismatch)),
            (auth("U:old"), Err(VerifyError::Mismatch)),
            (auth("u:old "), Err(VerifyError::Mismatch)),
            (auth("u"), Err(VerifyError::Malformed)),
            ("Basic !!!".to_owned(), Err(VerifyError::Malformed)),
            ("Basic".to_owned(), Err(VerifyError::Malformed)),
            ("Bearer abc".to_owned(), Err(VerifyError::MissingCredentials)),
            (String::new(), Err(VerifyError::Malformed)),
        ] {
            let h = headers(&[("authorization", &value)]);
            assert_eq!(v.verify(&request(&h, b"", 0)).map(|_| ()), want, "{value:?}");
        }
        let none: [(&str, &str); 0] = [];
        assert_eq!(v.verify(&request(&none, b"", 0)), Err(VerifyError::MissingCredentials));
    }

    #[test]
    fn secret_url_checks_last_segment() {
        let v = VerificationConfig::SecretUrl {
            tokens: secrets(&["old-token-0123456789", "k3J9xQ2mV7pL0sT8wZ4n"]),
        }
        .compile()
        .unwrap();
        assert!(v.uses_url_token());
        assert!(v.check_url_token("k3J9xQ2mV7pL0sT8wZ4n"));
        assert!(v.check_url_token("old-token-0123456789"));
        assert!(!v.check_url_token("k3J9xQ2mV7pL0sT8wZ4"));
        assert!(!v.check_url_token(""));
        let h: [(&str, &str); 0] = [];
        for (url, want) in [
            ("https://h.example/in/k3J9xQ2mV7pL0sT8wZ4n", Ok(())),
            ("https://h.example/in/k3J9xQ2mV7pL0sT8wZ4n?x=1#f", Ok(())),
            ("/in/k3J9xQ2mV7pL0sT8wZ4n", Ok(())),
            (
                "https://h.example/in/k3J9xQ2mV7pL0sT8wZ4n/",
                Err(VerifyError::MissingCredentials),
            ),
            ("https://h.example/k3J9xQ2mV7pL0sT8wZ4n/in", Err(VerifyError::Mismatch)),
            (
                "https://h.example/in?t=k3J9xQ2mV7pL0sT8wZ4n",
                Err(VerifyError::Mismatch),
            ),
            ("https://k3J9xQ2mV7pL0sT8wZ4n", Err(VerifyError::MissingCredentials)),
        ] {
            assert_eq!(v.verify(&with_url(&h, url)).map(|_| ()), want, "{url}");
        }
        let other = VerificationConfig::Github {
            secrets: secrets(&["k3J9xQ2mV7pL0sT8wZ4n"]),
        }
        .compile()
        .unwrap();
        assert!(!other.uses_url_token() && !other.check_url_token("k3J9xQ2mV7pL0sT8wZ4n"));
    }

    #[test]
    fn token_in_header_query_or_json() {
        let v = parse(
            "[listeners.verification]\ntype = \"token\"\ntokens = [\"old\", \"tok\"]\nheader = \"X-Token\"\nquery = \"token\"\njson_path = \"$.auth.token\"",
        )
        .compile()
        .unwrap();
        let none: [(&str, &str); 0] = [];
        let run = |h: &dyn HeaderSource, query: &str, body: &[u8]| {
            v.verify(&VerifyRequest {
                query,
                body,
                ..request(h, body, 0)
            })
            .map(|_| ())
        };
        assert_eq!(run(&[("x-token", "tok")], "", b""), Ok(()));
        assert_eq!(run(&[("x-token", "Bearer old")], "", b""), Ok(()));
        assert_eq!(run(&none, "a=1&token=tok", b""), Ok(()));
        assert_eq!(run(&none, "token=t%6Fk", b""), Ok(()));
        assert_eq!(run(&none, "", br#"{"auth":{"token":"tok"}}"#), Ok(()));
        assert_eq!(run(&[("x-token", "nope")], "token=tok", b""), Ok(()));
        assert_eq!(run(&[("x-token", "nope")], "", b""), Err(VerifyError::Mismatch));
        assert_eq!(run(&[("x-token", "")], "", b""), Err(VerifyError::Mismatch));
        assert_eq!(run(&[("x-token", "Bearer ")], "", b""), Err(VerifyError::Mismatch));
        assert_eq!(run(&none, "token=to", b""), Err(VerifyError::Mismatch));
        assert_eq!(
            run(&none, "", br#"{"auth":{"token":"tok2"}}"#),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            run(&none, "", br#"{"auth":{"token":["tok"]}}"#),
            Err(VerifyError::MissingCredentials)
        );
        assert_eq!(run(&none, "", b"not json"), Err(VerifyError::Malformed));
        assert_eq!(run(&none, "", b"{}"), Err(VerifyError::MissingCredentials));
    }
}
