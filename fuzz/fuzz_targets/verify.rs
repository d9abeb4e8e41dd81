//! Every verification scheme: header parsing and the MAC check. Two halves, chosen by the input:
//! - signed: a request signed here, by a signer written from the providers' documentation (not
//!   the verifier's code), for a scheme, secret, body, timestamp and id from the input: it must
//!   verify. Then one thing is changed — one bit of the MAC (re-encoded, so it still parses),
//!   one byte of the body, the timestamp, the id, the secret — and it must be refused;
//! - hostile: header values from the input (signature lists, prefixes, timestamps in any
//!   shape): verifying never panics, and whenever it accepts, the signature header holds the
//!   encoding of the correct MAC for what was signed. Basic, token and secret-URL requests are
//!   accepted exactly when a reference check written here accepts them.
#![no_main]

use hookpipe::config::recipe::{
    HmacAlgorithm, RecipeConfig, SecretEncoding, SigEncoding, SignatureList, TimestampFormat,
};
use hookpipe::config::verification::{BasicCredential, VerificationConfig};
use hookpipe::fuzzing::base64::engine::general_purpose::STANDARD;
use hookpipe::fuzzing::base64::Engine as _;
use hookpipe::fuzzing::hmac::{Hmac, Mac};
use hookpipe::fuzzing::sha1::Sha1;
use hookpipe::fuzzing::sha2::{Digest as _, Sha256, Sha384, Sha512};
use hookpipe::pipeline::verify::scheme::{Verifier, VerifyError, VerifyRequest};
use hookpipe::secret::Secret;
use hookpipe_fuzz::Input;
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_700_000_000;
const URL: &str = "https://hooks.example.com/hooks/p-123";

fn mac(algorithm: HmacAlgorithm, key: &[u8], content: &[u8]) -> Vec<u8> {
    fn of<M: Mac + hookpipe::fuzzing::hmac::digest::KeyInit>(key: &[u8], content: &[u8]) -> Vec<u8> {
        let mut mac = <M as hookpipe::fuzzing::hmac::digest::KeyInit>::new_from_slice(key).expect("any key length");
        mac.update(content);
        mac.finalize().into_bytes().to_vec()
    }
    match algorithm {
        HmacAlgorithm::Sha1 => of::<Hmac<Sha1>>(key, content),
        HmacAlgorithm::Sha256 => of::<Hmac<Sha256>>(key, content),
        HmacAlgorithm::Sha384 => of::<Hmac<Sha384>>(key, content),
        HmacAlgorithm::Sha512 => of::<Hmac<Sha512>>(key, content),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn encode(encoding: SigEncoding, bytes: &[u8]) -> String {
    match encoding {
        SigEncoding::Hex => hex(bytes),
        SigEncoding::Base64 => STANDARD.encode(bytes),
    }
}

/// One piece of a recipe's `signed_content`, as this target writes it.
#[derive(Clone, Copy)]
enum Piece<'a> {
    Literal(&'a str),
    Timestamp,
    Id,
    Url,
    Method,
    Body,
}

/// The HMAC schemes, each with what it signs and where it puts the signature.
enum Scheme<'a> {
    /// `hmac`: the body, in one header, with an optional prefix.
    Hmac {
        algorithm: HmacAlgorithm,
        encoding: SigEncoding,
        prefix: Option<&'a str>,
    },
    Github,
    Stripe,
    Slack,
    Shopify,
    StandardWebhooks,
    Zendesk,
    /// Twilio with a JSON body, authenticated by `bodySHA256` in the (signed) URL.
    TwilioJson,
    /// A recipe: pieces, a prefix and a list style from the input.
    Recipe {
        algorithm: HmacAlgorithm,
        encoding: SigEncoding,
        pieces: Vec<Piece<'a>>,
        prefix: Option<&'a str>,
        delimited: bool,
    },
}

/// What a signed request carries besides its signature.
struct Signing<'a> {
    body: &'a [u8],
    timestamp: String,
    id: String,
    url: String,
    query: String,
}

impl Scheme<'_> {
    fn algorithm(&self) -> HmacAlgorithm {
        match self {
            Scheme::Hmac { algorithm, .. } | Scheme::Recipe { algorithm, .. } => *algorithm,
            Scheme::TwilioJson => HmacAlgorithm::Sha1,
            _ => HmacAlgorithm::Sha256,
        }
    }

    fn encoding(&self) -> SigEncoding {
        match self {
            Scheme::Hmac { encoding, .. } | Scheme::Recipe { encoding, .. } => *encoding,
            Scheme::Github | Scheme::Stripe | Scheme::Slack => SigEncoding::Hex,
            _ => SigEncoding::Base64,
        }
    }

    fn signature_header(&self) -> &'static str {
        match self {
            Scheme::Hmac { .. } | Scheme::Recipe { .. } => "X-Signature",
            Scheme::Github => "X-Hub-Signature-256",
            Scheme::Stripe => "Stripe-Signature",
            Scheme::Slack => "X-Slack-Signature",
            Scheme::Shopify => "X-Shopify-Hmac-Sha256",
            Scheme::StandardWebhooks => "webhook-signature",
            Scheme::Zendesk => "X-Zendesk-Webhook-Signature",
            Scheme::TwilioJson => "X-Twilio-Signature",
        }
    }

    /// The timestamp's and the id's headers, when the scheme has them.
    fn timestamp_header(&self) -> Option<&'static str> {
        match self {
            Scheme::Slack => Some("X-Slack-Request-Timestamp"),
            Scheme::StandardWebhooks => Some("webhook-timestamp"),
            Scheme::Zendesk => Some("X-Zendesk-Webhook-Signature-Timestamp"),
            Scheme::Recipe { pieces, .. } if pieces.iter().any(|p| matches!(p, Piece::Timestamp)) => Some("X-Ts"),
            _ => None,
        }
    }

    fn id_header(&self) -> Option<&'static str> {
        match self {
            Scheme::StandardWebhooks => Some("webhook-id"),
            Scheme::Recipe { pieces, .. } if pieces.iter().any(|p| matches!(p, Piece::Id)) => Some("X-Id"),
            _ => None,
        }
    }

    fn uses_timestamp(&self) -> bool {
        matches!(self, Scheme::Stripe) || self.timestamp_header().is_some()
    }

    /// The bytes signed, as each provider documents them.
    fn content(&self, signing: &Signing<'_>, url: &str) -> Vec<u8> {
        let Signing {
            body, timestamp, id, ..
        } = signing;
        match self {
            Scheme::Hmac { .. } | Scheme::Github | Scheme::Shopify => body.to_vec(),
            Scheme::Stripe => [timestamp.as_bytes(), b".", body].concat(),
            Scheme::Slack => [b"v0:", timestamp.as_bytes(), b":", body].concat(),
            Scheme::StandardWebhooks => [id.as_bytes(), b".", timestamp.as_bytes(), b".", body].concat(),
            Scheme::Zendesk => [timestamp.as_bytes(), body].concat(),
            Scheme::TwilioJson => url.as_bytes().to_vec(),
            Scheme::Recipe { pieces, .. } => {
                let mut content = Vec::new();
                for piece in pieces {
                    match piece {
                        Piece::Literal(text) => content.extend_from_slice(text.as_bytes()),
                        Piece::Timestamp => content.extend_from_slice(timestamp.as_bytes()),
                        Piece::Id => content.extend_from_slice(id.as_bytes()),
                        Piece::Url => content.extend_from_slice(url.as_bytes()),
                        Piece::Method => content.extend_from_slice(b"POST"),
                        Piece::Body => content.extend_from_slice(body),
                    }
                }
                content
            }
        }
    }

    /// The signature header's value for an encoded MAC.
    fn header_value(&self, encoded: &str, signing: &Signing<'_>) -> String {
        match self {
            Scheme::Hmac { prefix, .. } => format!("{}{encoded}", prefix.unwrap_or("")),
            Scheme::Github => format!("sha256={encoded}"),
            Scheme::Stripe => format!("t={},v1={encoded}", signing.timestamp),
            Scheme::Slack => format!("v0={encoded}"),
            Scheme::StandardWebhooks => format!("v1,{encoded}"),
            Scheme::Recipe { prefix, delimited, .. } => {
                let one = format!("{}{encoded}", prefix.unwrap_or(""));
                if *delimited {
                    format!("bogus;{one}")
                } else {
                    one
                }
            }
            _ => encoded.to_string(),
        }
    }

    /// The configuration of this scheme with `secret`.
    fn config(&self, secret: &str) -> VerificationConfig {
        let secrets = vec![Secret::new(secret)];
        match self {
            Scheme::Hmac {
                algorithm,
                encoding,
                prefix,
            } => VerificationConfig::Hmac {
                algorithm: *algorithm,
                encoding: *encoding,
                header: "X-Signature".into(),
                prefix: prefix.map(str::to_string),
                secrets,
            },
            Scheme::Github => VerificationConfig::Github { secrets },
            Scheme::Stripe => VerificationConfig::Stripe {
                secrets,
                tolerance_secs: None,
            },
            Scheme::Slack => VerificationConfig::Slack {
                secrets,
                tolerance_secs: None,
            },
            Scheme::Shopify => VerificationConfig::Shopify { secrets },
            Scheme::StandardWebhooks => VerificationConfig::StandardWebhooks {
                secrets,
                tolerance_secs: None,
            },
            Scheme::Zendesk => VerificationConfig::Zendesk {
                secrets,
                tolerance_secs: None,
            },
            Scheme::TwilioJson => VerificationConfig::Twilio { auth_tokens: secrets },
            Scheme::Recipe {
                algorithm,
                encoding,
                pieces,
                prefix,
                delimited,
            } => {
                let mut signed_content = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Literal(text) => signed_content.push_str(&text.replace('{', "{{").replace('}', "}}")),
                        Piece::Timestamp => signed_content.push_str("{timestamp}"),
                        Piece::Id => signed_content.push_str("{id}"),
                        Piece::Url => signed_content.push_str("{url}"),
                        Piece::Method => signed_content.push_str("{method}"),
                        Piece::Body => signed_content.push_str("{body}"),
                    }
                }
                VerificationConfig::Recipe(RecipeConfig {
                    algorithm: *algorithm,
                    encoding: *encoding,
                    signature_header: "X-Signature".into(),
                    prefix: prefix.map(str::to_string),
                    signature_list: if *delimited {
                        SignatureList::Delimited {
                            delimiter: ";".into(),
                            key: None,
                        }
                    } else {
                        SignatureList::Single
                    },
                    signed_content,
                    timestamp_header: self.timestamp_header().map(str::to_string),
                    timestamp_key: None,
                    timestamp_format: TimestampFormat::Unix,
                    id_header: self.id_header().map(str::to_string),
                    tolerance_secs: None,
                    secret_encoding: SecretEncoding::Raw,
                    secrets,
                    delivery_id_header: None,
                    delivery_id_json: None,
                    body_hash_query: None,
                    try_default_port: false,
                    fallback: None,
                    url_verification_challenge: false,
                })
            }
        }
    }

    /// The HMAC key of a configured secret.
    fn key(&self, secret: &str) -> Vec<u8> {
        match self {
            Scheme::StandardWebhooks => STANDARD
                .decode(secret.strip_prefix("whsec_").expect("written with the prefix"))
                .expect("written as base64"),
            _ => secret.as_bytes().to_vec(),
        }
    }
}

fn algorithm(input: &mut Input<'_>) -> HmacAlgorithm {
    [
        HmacAlgorithm::Sha1,
        HmacAlgorithm::Sha256,
        HmacAlgorithm::Sha384,
        HmacAlgorithm::Sha512,
    ][input.below(4)]
}

fn encoding(input: &mut Input<'_>) -> SigEncoding {
    [SigEncoding::Hex, SigEncoding::Base64][input.below(2)]
}

/// A prefix: none, a provider's, or text from the input without `;` (the list delimiter).
fn prefix<'a>(input: &mut Input<'a>) -> Option<&'a str> {
    match input.below(4) {
        0 => None,
        1 => Some("sha256="),
        2 => Some("v0="),
        _ => std::str::from_utf8(input.piece())
            .ok()
            .filter(|text| !text.contains(';') && text.trim() == *text && !text.is_empty()),
    }
}

fn scheme<'a>(input: &mut Input<'a>) -> Scheme<'a> {
    match input.below(9) {
        0 => Scheme::Hmac {
            algorithm: algorithm(input),
            encoding: encoding(input),
            prefix: prefix(input),
        },
        1 => Scheme::Github,
        2 => Scheme::Stripe,
        3 => Scheme::Slack,
        4 => Scheme::Shopify,
        5 => Scheme::StandardWebhooks,
        6 => Scheme::Zendesk,
        7 => Scheme::TwilioJson,
        _ => {
            let algorithm = algorithm(input);
            let encoding = encoding(input);
            let prefix = prefix(input);
            let delimited = input.flag();
            let mut pieces = Vec::new();
            for _ in 0..input.below(6) {
                pieces.push(match input.below(6) {
                    0 => Piece::Timestamp,
                    1 => Piece::Id,
                    2 => Piece::Url,
                    3 => Piece::Method,
                    4 => Piece::Body,
                    _ => match std::str::from_utf8(input.piece()) {
                        Ok(text) => Piece::Literal(text),
                        Err(_) => Piece::Literal("."),
                    },
                });
            }
            if !pieces.iter().any(|piece| matches!(piece, Piece::Body)) {
                pieces.push(Piece::Body);
            }
            Scheme::Recipe {
                algorithm,
                encoding,
                pieces,
                prefix,
                delimited,
            }
        }
    }
}

fn verify(
    verifier: &Verifier,
    headers: &Vec<(String, String)>,
    signing: &Signing<'_>,
    body: &[u8],
) -> Result<(), VerifyError> {
    verifier
        .verify(&VerifyRequest {
            method: "POST",
            url: &signing.url,
            query: &signing.query,
            headers,
            body,
            now_unix: NOW,
        })
        .map(drop)
}

/// The headers of a request signed with `mac_bytes`.
fn headers(scheme: &Scheme<'_>, mac_bytes: &[u8], signing: &Signing<'_>) -> Vec<(String, String)> {
    let encoded = encode(scheme.encoding(), mac_bytes);
    let mut headers = vec![(
        scheme.signature_header().to_string(),
        scheme.header_value(&encoded, signing),
    )];
    if let Some(name) = scheme.timestamp_header() {
        headers.push((name.to_string(), signing.timestamp.clone()));
    }
    if let Some(name) = scheme.id_header() {
        headers.push((name.to_string(), signing.id.clone()));
    }
    headers
}

fn signed(mut input: Input<'_>) {
    let scheme = scheme(&mut input);
    let key_bytes = input.piece();
    let secret = match scheme {
        Scheme::StandardWebhooks if key_bytes.is_empty() => format!("whsec_{}", STANDARD.encode(b"k")),
        Scheme::StandardWebhooks => format!("whsec_{}", STANDARD.encode(key_bytes)),
        _ => match std::str::from_utf8(key_bytes) {
            Ok(text) if !text.is_empty() => text.to_string(),
            _ => "a-secret".to_string(),
        },
    };
    let skew = i64::from(input.byte()) - 128;
    let timestamp = match scheme {
        Scheme::Zendesk => {
            // RFC 3339 for NOW + skew: 2023-11-14T22:13:20Z is NOW.
            let seconds = 20 + skew;
            let (minute, second) = (13 + seconds.div_euclid(60), seconds.rem_euclid(60));
            format!("2023-11-14T22:{minute:02}:{second:02}Z")
        }
        _ => (NOW + skew).to_string(),
    };
    // An id without line breaks or surrounding spaces (header values are trimmed).
    let id = format!("msg_{}", hex(input.piece()));
    let tamper = input.byte();
    let body = input.rest();
    let mut signing = Signing {
        body,
        timestamp,
        id,
        url: URL.to_string(),
        query: String::new(),
    };
    if let Scheme::TwilioJson = scheme {
        signing.query = format!("bodySHA256={}", hex(&Sha256::digest(body)));
        signing.url = format!("{URL}?{}", signing.query);
    }
    let verifier = scheme
        .config(&secret)
        .compile()
        .unwrap_or_else(|error| panic!("a scheme written here does not compile: {error}"));
    let key = scheme.key(&secret);
    let correct = mac(scheme.algorithm(), &key, &scheme.content(&signing, &signing.url));
    let good = headers(&scheme, &correct, &signing);
    assert_eq!(
        verify(&verifier, &good, &signing, body),
        Ok(()),
        "a correctly signed request was refused"
    );

    let refused = |headers: &Vec<(String, String)>, signing: &Signing<'_>, body: &[u8], what: &str| {
        let verdict = verify(&verifier, headers, signing, body);
        assert!(verdict.is_err(), "accepted with {what}");
    };
    match tamper % 6 {
        0 | 1 => {
            // One bit of the MAC: the header still parses, the bytes differ.
            let bit = usize::from(tamper / 6) % (8 * correct.len());
            let mut flipped = correct.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                verify(&verifier, &headers(&scheme, &flipped, &signing), &signing, body),
                Err(VerifyError::Mismatch),
                "a MAC with bit {bit} flipped"
            );
        }
        2 if !body.is_empty() => {
            let at = usize::from(tamper / 6) % body.len();
            let mut changed = body.to_vec();
            changed[at] ^= 1 + tamper / 64;
            refused(&good, &signing, &changed, "a body byte changed");
        }
        3 if scheme.uses_timestamp() => {
            // Another time within the tolerance: signed is signed, the timestamp is part of it.
            let mut later = clone_signing(&signing);
            later.timestamp = match scheme {
                Scheme::Zendesk => later.timestamp.replace('Z', ".5Z"),
                _ => (NOW + skew + 1).to_string(),
            };
            refused(&headers(&scheme, &correct, &later), &later, body, "another timestamp");
        }
        4 if scheme.id_header().is_some() => {
            let mut other = clone_signing(&signing);
            other.id.push('0');
            refused(&headers(&scheme, &correct, &other), &other, body, "another id");
        }
        _ => {
            // Signed with another secret.
            let other = mac(
                scheme.algorithm(),
                &[key.as_slice(), b"x"].concat(),
                &scheme.content(&signing, &signing.url),
            );
            refused(
                &headers(&scheme, &other, &signing),
                &signing,
                body,
                "another secret's MAC",
            );
        }
    }
}

fn clone_signing<'a>(signing: &Signing<'a>) -> Signing<'a> {
    Signing {
        body: signing.body,
        timestamp: signing.timestamp.clone(),
        id: signing.id.clone(),
        url: signing.url.clone(),
        query: signing.query.clone(),
    }
}

/// Whether `header` holds `mac` as `encoding` writes it (hex in either case).
fn holds(header: &str, encoding: SigEncoding, mac: &[u8]) -> bool {
    match encoding {
        SigEncoding::Hex => header.to_ascii_lowercase().contains(&hex(mac)),
        SigEncoding::Base64 => header.contains(&STANDARD.encode(mac)),
    }
}

fn hostile(mut input: Input<'_>) {
    let kind = input.below(4);
    if kind == 3 {
        return basic_token_secret_url(input);
    }
    let scheme = scheme(&mut input);
    let secret = match scheme {
        Scheme::StandardWebhooks => "whsec_c2VjcmV0".to_string(),
        _ => "secret".to_string(),
    };
    let Ok(verifier) = scheme.config(&secret).compile() else {
        return;
    };
    let signature = String::from_utf8_lossy(input.piece()).into_owned();
    let timestamp = String::from_utf8_lossy(input.piece()).into_owned();
    let id = String::from_utf8_lossy(input.piece()).into_owned();
    let body = input.rest();
    let mut headers = vec![(scheme.signature_header().to_string(), signature.clone())];
    if let Some(name) = scheme.timestamp_header() {
        headers.push((name.to_string(), timestamp.clone()));
    }
    if let Some(name) = scheme.id_header() {
        headers.push((name.to_string(), id.clone()));
    }
    let mut signing = Signing {
        body,
        timestamp: timestamp.trim().to_string(),
        id: id.trim().to_string(),
        url: URL.to_string(),
        query: String::new(),
    };
    if let Scheme::TwilioJson = scheme {
        signing.query = format!("bodySHA256={}", hex(&Sha256::digest(body)));
        signing.url = format!("{URL}?{}", signing.query);
    }
    if let Scheme::Stripe = scheme {
        // The timestamp is the signature header's `t=` entry.
        signing.timestamp = signature
            .split(',')
            .filter_map(|entry| entry.trim().split_once('='))
            .find(|(key, _)| key.trim() == "t")
            .map(|(_, value)| value.trim().to_string())
            .unwrap_or_default();
    }
    if verify(&verifier, &headers, &signing, body).is_ok() {
        let key = scheme.key(&secret);
        let urls = [signing.url.clone(), signing.url.replace(".com/", ".com:443/")];
        let held = urls.iter().any(|url| {
            let correct = mac(scheme.algorithm(), &key, &scheme.content(&signing, url));
            holds(&signature, scheme.encoding(), &correct)
        });
        assert!(
            held,
            "accepted a signature header without the correct MAC: {signature:?}"
        );
    }
}

fn lenient(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        let hex_at = |i: usize| raw.get(i).and_then(|b| (*b as char).to_digit(16));
        match raw[at] {
            b'+' => out.push(b' '),
            b'%' if at + 2 < raw.len() => match (hex_at(at + 1), hex_at(at + 2)) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    at += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        at += 1;
    }
    out
}

/// Basic, token and secret-URL verification against reference checks.
fn basic_token_secret_url(mut input: Input<'_>) {
    let which = input.below(3);
    let configured = String::from_utf8_lossy(input.piece()).into_owned();
    let presented = String::from_utf8_lossy(input.piece()).into_owned();
    let query = String::from_utf8_lossy(input.piece()).into_owned();
    let mut headers = Vec::new();
    match which {
        0 => {
            let (username, password) = configured.split_once(':').unwrap_or(("user", configured.as_str()));
            let config = VerificationConfig::Basic {
                credentials: vec![BasicCredential {
                    username: username.to_string(),
                    password: Secret::new(password),
                }],
            };
            let Ok(verifier) = config.compile() else { return };
            // Either the credentials the input gives, encoded, or an Authorization header as is.
            let authorization = if input.flag() {
                format!("Basic {}", STANDARD.encode(presented.as_bytes()))
            } else {
                presented.clone()
            };
            headers.push(("Authorization".to_string(), authorization.clone()));
            let expected = authorization
                .trim()
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
                .and_then(|(_, encoded)| STANDARD.decode(encoded.trim()).ok())
                .is_some_and(|decoded| decoded == format!("{username}:{password}").as_bytes());
            let signing = Signing {
                body: b"",
                timestamp: String::new(),
                id: String::new(),
                url: URL.into(),
                query: String::new(),
            };
            let verdict = verify(&verifier, &headers, &signing, b"").is_ok();
            assert_eq!(
                verdict, expected,
                "Basic {authorization:?} against {username:?}:{password:?}"
            );
        }
        1 => {
            let config = VerificationConfig::Token {
                tokens: vec![Secret::new(configured.clone())],
                json_path: None,
                header: Some("X-Token".into()),
                query: Some("token".into()),
            };
            let Ok(verifier) = config.compile() else { return };
            headers.push(("X-Token".to_string(), presented.clone()));
            let value = presented.trim();
            let by_header = value == configured
                || value
                    .split_once(' ')
                    .is_some_and(|(scheme, rest)| scheme.eq_ignore_ascii_case("bearer") && rest.trim() == configured);
            let by_query = query
                .as_bytes()
                .split(|b| *b == b'&')
                .filter(|piece| !piece.is_empty())
                .map(|piece| match piece.iter().position(|b| *b == b'=') {
                    Some(equals) => (lenient(&piece[..equals]), lenient(&piece[equals + 1..])),
                    None => (lenient(piece), Vec::new()),
                })
                .find(|(key, _)| key == b"token")
                .is_some_and(|(_, value)| value == configured.as_bytes());
            let signing = Signing {
                body: b"",
                timestamp: String::new(),
                id: String::new(),
                url: URL.into(),
                query,
            };
            let verdict = verify(&verifier, &headers, &signing, b"").is_ok();
            assert_eq!(
                verdict,
                by_header || by_query,
                "token {presented:?} / query {:?} against {configured:?}",
                signing.query
            );
        }
        _ => {
            let config = VerificationConfig::SecretUrl {
                tokens: vec![Secret::new(configured.clone())],
            };
            let Ok(verifier) = config.compile() else { return };
            let url = format!("https://hooks.example.com/hooks/p-1/{presented}");
            let last = url["https://".len()..]
                .split(['?', '#'])
                .next()
                .and_then(|path| path.rsplit('/').next())
                .unwrap_or("");
            let expected = !last.is_empty() && last == configured;
            let signing = Signing {
                body: b"",
                timestamp: String::new(),
                id: String::new(),
                url,
                query: String::new(),
            };
            let verdict = verify(&verifier, &headers, &signing, b"").is_ok();
            assert_eq!(verdict, expected, "URL {:?} against {configured:?}", signing.url);
            assert_eq!(
                verifier.check_url_token(&presented),
                !presented.is_empty() && presented == configured
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    if input.flag() {
        signed(input)
    } else {
        hostile(input)
    }
});
