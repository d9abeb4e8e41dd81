//! The recipe engine: a validated recipe compiled once (keys decoded, template parsed), then
//! each request checked against it — every key and every candidate signature tried in constant
//! time, so timing tells nothing about which one matched.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use subtle::{Choice, ConstantTimeEq};

use super::json_path::{json_lookup_bytes, parse_json_path};
use super::template::{parse_template, Part};
use super::timestamp::parse_timestamp;
use super::validate::{decode_secret, join_errors};
use crate::config::recipe::{
    FallbackSignature, HmacAlgorithm, RecipeConfig, SigEncoding, SignatureList, TimestampFormat, DEFAULT_TOLERANCE_SECS,
};
use crate::pipeline::verify::request::{Verified, VerifyError, VerifyRequest};
use crate::urlencoded;

impl RecipeConfig {
    /// Builds the runtime form; call `validate` first for readable errors.
    pub(crate) fn compile(&self) -> Result<CompiledRecipe, String> {
        let errs = self.validate();
        if !errs.is_empty() {
            return Err(join_errors(&errs));
        }
        let template = parse_template(&self.signed_content)?;
        let keys = self
            .secrets
            .iter()
            .map(|s| decode_secret(s.expose(), self.secret_encoding))
            .collect::<Result<Vec<_>, _>>()?;
        let timestamp = match (&self.timestamp_header, &self.timestamp_key) {
            (Some(h), _) => Some(TsSource::Header(h.clone())),
            (None, Some(k)) => Some(TsSource::Key(k.clone())),
            (None, None) => None,
        };
        Ok(CompiledRecipe {
            algorithm: self.algorithm,
            encoding: self.encoding,
            signature_header: self.signature_header.clone(),
            prefix: self.prefix.clone().filter(|p| !p.is_empty()),
            list: self.signature_list.clone(),
            uses_form_params: template.contains(&Part::FormParams),
            template,
            timestamp,
            timestamp_format: self.timestamp_format,
            tolerance: self.tolerance_secs.unwrap_or(DEFAULT_TOLERANCE_SECS),
            id_header: self.id_header.clone(),
            keys,
            delivery_id_header: self.delivery_id_header.clone(),
            delivery_id_json: self.delivery_id_json.as_deref().map(parse_json_path).transpose()?,
            body_hash_query: self.body_hash_query.clone(),
            try_default_port: self.try_default_port,
            fallback: self.fallback.clone(),
        })
    }
}

#[derive(Debug, Clone)]
enum TsSource {
    Header(String),
    Key(String),
}

/// A recipe with decoded keys and a parsed template.
pub(crate) struct CompiledRecipe {
    algorithm: HmacAlgorithm,
    encoding: SigEncoding,
    signature_header: String,
    prefix: Option<String>,
    list: SignatureList,
    template: Vec<Part>,
    uses_form_params: bool,
    timestamp: Option<TsSource>,
    timestamp_format: TimestampFormat,
    tolerance: u64,
    id_header: Option<String>,
    keys: Vec<Vec<u8>>,
    delivery_id_header: Option<String>,
    delivery_id_json: Option<Vec<String>>,
    body_hash_query: Option<String>,
    try_default_port: bool,
    fallback: Option<FallbackSignature>,
}

impl std::fmt::Debug for CompiledRecipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledRecipe")
            .field("algorithm", &self.algorithm)
            .field("encoding", &self.encoding)
            .field("signature_header", &self.signature_header)
            .field("timestamp", &self.timestamp)
            .field("tolerance", &self.tolerance)
            .field("keys", &format_args!("[{} redacted]", self.keys.len()))
            .finish_non_exhaustive()
    }
}

/// Signatures found in the header, plus an inline timestamp when the list carries one.
struct ParsedHeader<'h> {
    candidates: Vec<&'h str>,
    timestamp: Option<&'h str>,
}

fn hmac_of<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC takes keys of any length, so this never fails in practice.
    let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

fn compute_mac(alg: HmacAlgorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match alg {
        HmacAlgorithm::Sha1 => hmac_of::<Hmac<Sha1>>(key, parts),
        HmacAlgorithm::Sha256 => hmac_of::<Hmac<Sha256>>(key, parts),
        HmacAlgorithm::Sha384 => hmac_of::<Hmac<Sha384>>(key, parts),
        HmacAlgorithm::Sha512 => hmac_of::<Hmac<Sha512>>(key, parts),
    }
}

/// Case-insensitive hex decoding; `None` on odd length or a non-hex digit.
pub(crate) fn decode_hex(s: &str) -> Option<Vec<u8>> {
    fn nibble(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

fn decode_sig(s: &str, encoding: SigEncoding) -> Option<Vec<u8>> {
    match encoding {
        SigEncoding::Hex => decode_hex(s),
        // STANDARD rejects non-zero trailing bits, so one MAC has exactly one accepted spelling.
        SigEncoding::Base64 => STANDARD.decode(s).ok(),
    }
}

/// The URL with its port removed, or the scheme's default port added (Twilio signs either form).
fn toggle_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let (userinfo, hostport) = authority.split_at(host_start);
    let port_sep = hostport.rfind(':').filter(|&i| !hostport[i..].contains(']'));
    Some(match port_sep {
        Some(i) => format!("{scheme}://{userinfo}{}{tail}", &hostport[..i]),
        None => format!("{scheme}://{userinfo}{hostport}:{default}{tail}"),
    })
}

/// A sender-chosen id we are willing to put in logs and dedup keys.
pub(crate) fn sane_id(id: &str) -> Option<String> {
    let id = id.trim();
    (!id.is_empty() && id.len() <= 256 && !id.chars().any(char::is_control)).then(|| id.to_owned())
}

impl CompiledRecipe {
    fn parse_header<'h>(&self, raw: &'h str, prefix: Option<&str>) -> Result<ParsedHeader<'h>, VerifyError> {
        let strip = |s: &'h str| -> Option<&'h str> {
            let s = s.trim();
            match prefix {
                Some(p) => s.strip_prefix(p),
                None => Some(s),
            }
        };
        let mut timestamp = None;
        let mut candidates = Vec::new();
        match &self.list {
            SignatureList::Single => candidates.extend(strip(raw)),
            SignatureList::Delimited { delimiter, key } => {
                let ts_key = match &self.timestamp {
                    Some(TsSource::Key(k)) => Some(k.as_str()),
                    _ => None,
                };
                for entry in raw.split(delimiter.as_str()) {
                    let entry = entry.trim();
                    let Some(key) = key else {
                        candidates.extend(strip(entry));
                        continue;
                    };
                    let Some((k, v)) = entry.split_once('=') else {
                        continue;
                    };
                    if Some(k.trim()) == ts_key {
                        // Two timestamps make the header ambiguous; refuse rather than pick one.
                        if timestamp.replace(v.trim()).is_some() {
                            return Err(VerifyError::Malformed);
                        }
                    } else if k.trim() == key {
                        candidates.extend(strip(v));
                    }
                }
            }
            SignatureList::Versioned { version } => {
                for entry in raw.split_whitespace() {
                    if let Some((v, sig)) = entry.split_once(',') {
                        if v == version {
                            candidates.extend(strip(sig));
                        }
                    }
                }
            }
        }
        Ok(ParsedHeader { candidates, timestamp })
    }

    /// Checks one request against this recipe.
    pub(crate) fn verify(&self, req: &VerifyRequest<'_>) -> Result<Verified, VerifyError> {
        let (raw_sig, algorithm, prefix) = match req.headers.header(&self.signature_header) {
            Some(v) => (v, self.algorithm, self.prefix.as_deref()),
            None => match &self.fallback {
                Some(fb) => (
                    req.headers.header(&fb.header).ok_or(VerifyError::MissingCredentials)?,
                    fb.algorithm,
                    fb.prefix.as_deref().filter(|p| !p.is_empty()),
                ),
                None => return Err(VerifyError::MissingCredentials),
            },
        };
        if raw_sig.trim().is_empty() {
            return Err(VerifyError::Malformed);
        }
        let parsed = self.parse_header(raw_sig, prefix)?;
        let mac_len = algorithm.output_len();
        let signatures: Vec<Vec<u8>> = parsed
            .candidates
            .iter()
            .filter_map(|c| decode_sig(c, self.encoding))
            .filter(|sig| sig.len() == mac_len)
            .collect();
        if signatures.is_empty() {
            return Err(VerifyError::Malformed);
        }

        let ts_raw = match &self.timestamp {
            None => None,
            Some(TsSource::Header(h)) => Some(req.headers.header(h).ok_or(VerifyError::MissingCredentials)?.trim()),
            Some(TsSource::Key(_)) => Some(parsed.timestamp.ok_or(VerifyError::Malformed)?),
        };
        let ts_value = ts_raw
            .map(|raw| parse_timestamp(raw, self.timestamp_format))
            .transpose()?;
        let id = match &self.id_header {
            None => None,
            Some(h) => Some(req.headers.header(h).ok_or(VerifyError::MissingCredentials)?.trim()),
        };

        let body_hash = self
            .body_hash_query
            .as_deref()
            .and_then(|name| urlencoded::query_param(req.query, name));
        // With a body hash in the (signed) URL, Twilio signs the URL alone and the hash covers the body.
        let form: Vec<(Vec<u8>, Vec<u8>)> = if self.uses_form_params && body_hash.is_none() {
            let mut pairs = urlencoded::decoded_pairs(req.body);
            pairs.sort();
            pairs.dedup();
            pairs
        } else {
            Vec::new()
        };

        let mut urls: Vec<Cow<'_, str>> = vec![Cow::Borrowed(req.url)];
        if self.try_default_port {
            urls.extend(toggle_port(req.url).map(Cow::Owned));
        }

        let mut matched = Choice::from(0);
        for url in &urls {
            let mut parts: Vec<&[u8]> = Vec::with_capacity(self.template.len() + 2 * form.len());
            for part in &self.template {
                match part {
                    Part::Lit(l) => parts.push(l),
                    Part::Timestamp => parts.push(ts_raw.unwrap_or_default().as_bytes()),
                    Part::Id => parts.push(id.unwrap_or_default().as_bytes()),
                    Part::Url => parts.push(url.as_bytes()),
                    Part::Method => parts.push(req.method.as_bytes()),
                    Part::Body => parts.push(req.body),
                    Part::FormParams => {
                        for (k, v) in &form {
                            parts.push(k);
                            parts.push(v);
                        }
                    }
                }
            }
            // Every key and candidate is tried, so timing says nothing about which one matched.
            for key in &self.keys {
                let expected = compute_mac(algorithm, key, &parts);
                for sig in &signatures {
                    matched |= expected.as_slice().ct_eq(sig.as_slice());
                }
            }
        }
        if !bool::from(matched) {
            return Err(VerifyError::Mismatch);
        }
        if let Some(claimed) = body_hash {
            let actual = Sha256::digest(req.body);
            let claimed = std::str::from_utf8(&claimed)
                .ok()
                .and_then(decode_hex)
                .unwrap_or_default();
            if !bool::from(actual.as_slice().ct_eq(claimed.as_slice())) {
                return Err(VerifyError::Mismatch);
            }
        }
        if let Some(ts) = ts_value {
            // i128 keeps absurd timestamps and clocks from overflowing.
            if (i128::from(req.now_unix) - i128::from(ts)).abs() > i128::from(self.tolerance) {
                return Err(VerifyError::Expired);
            }
        }

        let mut verified = Verified::default();
        if let Some(h) = &self.delivery_id_header {
            verified.delivery_id = req.headers.header(h).and_then(sane_id);
        }
        if verified.delivery_id.is_none() {
            if let Some(path) = &self.delivery_id_json {
                verified.delivery_id = json_lookup_bytes(req.body, path).as_deref().and_then(sane_id);
            }
        }
        // Slack's `url_verification` (`url_verification_challenge`) is a handshake rule of the
        // listener (`pipeline::handshake`), answered by the verify stage once this passed.
        Ok(verified)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::verification::VerificationConfig;
    use crate::pipeline::verify::request::tests::{headers, request};
    use crate::secret::Secret;

    /// Reference HMAC for building test requests (the provider vectors check it independently).
    pub(crate) fn mac(alg: HmacAlgorithm, key: &[u8], data: &[u8]) -> Vec<u8> {
        compute_mac(alg, key, &[data])
    }

    pub(crate) fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub(crate) fn b64(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    fn recipe(toml_src: &str) -> RecipeConfig {
        toml::from_str(toml_src).expect("recipe parses")
    }

    #[test]
    fn hex_decoding() {
        assert_eq!(decode_hex("aBcD"), Some(vec![0xab, 0xcd]));
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex("é1"), None);
    }

    #[test]
    fn toggle_port_adds_or_removes_default_port() {
        assert_eq!(
            toggle_port("https://a.com/p?q=1").as_deref(),
            Some("https://a.com:443/p?q=1")
        );
        assert_eq!(toggle_port("https://a.com:443/p").as_deref(), Some("https://a.com/p"));
        assert_eq!(toggle_port("http://u:p@a.com").as_deref(), Some("http://u:p@a.com:80"));
        assert_eq!(toggle_port("https://[::1]:8443/x").as_deref(), Some("https://[::1]/x"));
        assert_eq!(toggle_port("ftp://a.com/"), None);
        assert_eq!(toggle_port("nonsense"), None);
    }

    #[test]
    fn custom_recipe_with_every_placeholder() {
        let r = recipe(
            r#"
            algorithm = "sha512"
            encoding = "base64"
            signature_header = "X-Sig"
            prefix = "s="
            signature_list = { style = "delimited", delimiter = ";" }
            signed_content = "{method} {url}\n{id}:{timestamp}:{body}"
            timestamp_header = "X-Ts"
            id_header = "X-Id"
            tolerance_secs = 60
            secret_encoding = "base64"
            secrets = ["c2VjcmV0"]
            delivery_id_header = "X-Id"
            "#,
        );
        let v = VerificationConfig::Recipe(r).compile().unwrap();
        let content = b"POST https://hooks.example.com/in/test\nid-1:1000:{}";
        let sig = b64(&mac(HmacAlgorithm::Sha512, b"secret", content));
        let good = format!("s=AAAA; s={sig}");
        let h = headers(&[("x-sig", &good), ("X-Ts", "1000"), ("X-Id", "id-1")]);
        let ok = v.verify(&request(&h, b"{}", 1030)).unwrap();
        assert_eq!(ok.delivery_id.as_deref(), Some("id-1"));
        assert_eq!(v.verify(&request(&h, b"{}", 1061)), Err(VerifyError::Expired));
        let h = headers(&[("x-sig", &good), ("X-Ts", "1000"), ("X-Id", "id-2")]);
        assert_eq!(v.verify(&request(&h, b"{}", 1000)), Err(VerifyError::Mismatch));
        let h = headers(&[("x-sig", &good), ("X-Ts", "1000")]);
        assert_eq!(
            v.verify(&request(&h, b"{}", 1000)),
            Err(VerifyError::MissingCredentials)
        );
        let mut req = request(&h, b"{}", 1000);
        req.method = "PUT";
        let h = headers(&[("x-sig", &good), ("X-Ts", "1000"), ("X-Id", "id-1")]);
        req.headers = &h;
        assert_eq!(v.verify(&req), Err(VerifyError::Mismatch));
    }

    #[test]
    fn hex_signatures_are_case_insensitive() {
        let v = VerificationConfig::Github {
            secrets: vec![Secret::new("k")],
        }
        .compile()
        .unwrap();
        let sig = format!("sha256={}", hex(&mac(HmacAlgorithm::Sha256, b"k", b"x")).to_uppercase());
        let h = headers(&[("X-Hub-Signature-256", &sig)]);
        assert!(v.verify(&request(&h, b"x", 0)).is_ok());
    }

    #[test]
    fn debug_output_hides_keys() {
        let v = VerificationConfig::Stripe {
            secrets: vec![Secret::new("whsec_topsecret")],
            tolerance_secs: None,
        }
        .compile()
        .unwrap();
        let dbg = format!("{v:?}");
        assert!(!dbg.contains("topsecret") && dbg.contains("redacted"), "{dbg}");
    }
}
