//! Declarative HMAC signature recipes: the single engine every signing preset compiles to.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use subtle::{Choice, ConstantTimeEq};

use super::scheme::{Verified, VerifyError, VerifyRequest};
use crate::config::recipe::{
    FallbackSignature, RecipeConfig, SecretEncoding, SignatureList, TimestampFormat, DEFAULT_TOLERANCE_SECS,
    PLACEHOLDERS,
};
use crate::config::recipe::{HmacAlgorithm, SigEncoding};

// ---------------------------------------------------------------------------
// Template

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(Vec<u8>),
    Timestamp,
    Id,
    Url,
    Method,
    Body,
    FormParams,
}

fn parse_template(template: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut lit = Vec::new();
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("{{") {
            lit.push(b'{');
            rest = after;
        } else if let Some(after) = rest.strip_prefix("}}") {
            lit.push(b'}');
            rest = after;
        } else if c == '{' {
            let end = rest
                .find('}')
                .ok_or_else(|| "unclosed `{` (write `{{` for a literal brace)".to_owned())?;
            let name = &rest[1..end];
            let part = match name {
                "timestamp" => Part::Timestamp,
                "id" => Part::Id,
                "url" => Part::Url,
                "method" => Part::Method,
                "body" => Part::Body,
                "form_params" => Part::FormParams,
                _ => {
                    return Err(format!(
                        "unknown placeholder {{{name}}}; allowed: {}",
                        PLACEHOLDERS
                            .iter()
                            .map(|p| format!("{{{p}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
            };
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(part);
            rest = &rest[end + 1..];
        } else if c == '}' {
            return Err("unmatched `}` (write `}}` for a literal brace)".to_owned());
        } else {
            let mut buf = [0u8; 4];
            lit.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            rest = &rest[c.len_utf8()..];
        }
    }
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(parts)
}

// ---------------------------------------------------------------------------
// Validation

/// True for a syntactically valid HTTP header name (RFC 9110 token).
pub(crate) fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parses `a.b.0.c` (optionally `$.`-prefixed) into path segments.
pub(crate) fn parse_json_path(path: &str) -> Result<Vec<String>, String> {
    let trimmed = path.strip_prefix("$.").unwrap_or(path);
    if trimmed.is_empty() {
        return Err("must name a field, e.g. `token` or `auth.token`".to_owned());
    }
    let segs: Vec<String> = trimmed.split('.').map(str::to_owned).collect();
    if segs.iter().any(String::is_empty) {
        return Err("empty path segment (use `a.b.c`)".to_owned());
    }
    Ok(segs)
}

/// Looks up a scalar at `path`; strings as-is, numbers and booleans rendered.
pub(crate) fn json_lookup(value: &serde_json::Value, path: &[String]) -> Option<String> {
    let mut cur = value;
    for seg in path {
        cur = match cur {
            serde_json::Value::Object(map) => map.get(seg)?,
            serde_json::Value::Array(items) => items.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match cur {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `json_lookup` straight from the body bytes, without building the document: everything off
/// the path is skipped with `IgnoredAny`, so looking up an event id costs a scan, not a tree.
pub(crate) fn json_lookup_bytes(body: &[u8], path: &[String]) -> Option<String> {
    use serde::de::DeserializeSeed;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    PathSeed(path).deserialize(&mut deserializer).ok().flatten()
}

struct PathSeed<'a>(&'a [String]);

impl<'de> serde::de::DeserializeSeed<'de> for PathSeed<'_> {
    type Value = Option<String>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(PathVisitor(self.0))
    }
}

struct PathVisitor<'a>(&'a [String]);

impl<'de> serde::de::Visitor<'de> for PathVisitor<'_> {
    type Value = Option<String>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.0.split_first() {
                Some((first, rest)) if found.is_none() && key == first.as_str() => {
                    found = map.next_value_seed(PathSeed(rest))?;
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let wanted = self
            .0
            .split_first()
            .and_then(|(first, rest)| Some((first.parse::<usize>().ok()?, rest)));
        let mut found = None;
        let mut index = 0;
        loop {
            match wanted {
                Some((position, rest)) if position == index => match seq.next_element_seed(PathSeed(rest))? {
                    Some(value) => found = value,
                    None => break,
                },
                _ => {
                    if seq.next_element::<serde::de::IgnoredAny>()?.is_none() {
                        break;
                    }
                }
            }
            index += 1;
        }
        Ok(found)
    }

    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then_some(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| value.to_string()))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| value.to_string()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Self::Value, E> {
        Ok(self
            .0
            .is_empty()
            .then(|| serde_json::Number::from_f64(value).map(|n| n.to_string()))
            .flatten())
    }

    fn visit_bool<E>(self, value: bool) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| value.to_string()))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

fn decode_secret(secret: &str, encoding: SecretEncoding) -> Result<Vec<u8>, String> {
    let key = match encoding {
        SecretEncoding::Raw => secret.as_bytes().to_vec(),
        SecretEncoding::Base64 => STANDARD
            .decode(secret.trim())
            .map_err(|_| "is not valid base64".to_owned())?,
        SecretEncoding::Whsec => {
            let b64 = secret.trim();
            let b64 = b64.strip_prefix("whsec_").unwrap_or(b64);
            STANDARD
                .decode(b64)
                .map_err(|_| "is not valid `whsec_<base64>` or base64".to_owned())?
        }
    };
    if key.is_empty() {
        // An empty HMAC key lets anyone sign.
        return Err("decodes to an empty key".to_owned());
    }
    Ok(key)
}

impl RecipeConfig {
    /// Problems as (field path, reason); empty when the recipe is usable.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errs: Vec<(String, String)> = Vec::new();
        let mut err = |field: &str, reason: &str| errs.push((field.to_owned(), reason.to_owned()));

        if self.secrets.is_empty() {
            err("secrets", "at least one secret is required");
        }
        for (i, s) in self.secrets.iter().enumerate() {
            if s.expose().is_empty() {
                err(&format!("secrets[{i}]"), "must not be empty");
            } else if let Err(reason) = decode_secret(s.expose(), self.secret_encoding) {
                err(&format!("secrets[{i}]"), &reason);
            }
        }
        if !valid_header_name(&self.signature_header) {
            err("signature_header", "must be a valid HTTP header name");
        }
        match &self.signature_list {
            SignatureList::Single => {}
            SignatureList::Delimited { delimiter, key } => {
                if delimiter.is_empty() {
                    err("signature_list.delimiter", "must not be empty");
                }
                if key.as_deref().is_some_and(|k| k.is_empty() || k.contains('=')) {
                    err("signature_list.key", "must be non-empty and contain no `=`");
                }
            }
            SignatureList::Versioned { version } => {
                if version.is_empty() || version.contains(',') || version.contains(char::is_whitespace) {
                    err("signature_list.version", "must be non-empty, without `,` or spaces");
                }
            }
        }
        let template = match parse_template(&self.signed_content) {
            Ok(t) => Some(t),
            Err(reason) => {
                err("signed_content", &reason);
                None
            }
        };
        let has_ts_source = self.timestamp_header.is_some() || self.timestamp_key.is_some();
        if self.timestamp_header.is_some() && self.timestamp_key.is_some() {
            err(
                "timestamp_key",
                "set either timestamp_header or timestamp_key, not both",
            );
        }
        if let Some(h) = &self.timestamp_header {
            if !valid_header_name(h) {
                err("timestamp_header", "must be a valid HTTP header name");
            }
        }
        if let Some(k) = &self.timestamp_key {
            let keyed = matches!(&self.signature_list, SignatureList::Delimited { key: Some(_), .. });
            if k.is_empty() || k.contains('=') {
                err("timestamp_key", "must be non-empty and contain no `=`");
            } else if !keyed {
                err(
                    "timestamp_key",
                    "needs signature_list = { style = \"delimited\", delimiter = ..., key = ... }",
                );
            }
        }
        if let Some(h) = &self.id_header {
            if !valid_header_name(h) {
                err("id_header", "must be a valid HTTP header name");
            }
        }
        if let Some(t) = &template {
            let uses = |p: &Part| t.contains(p);
            if uses(&Part::Timestamp) && !has_ts_source {
                err(
                    "signed_content",
                    "uses {timestamp} but neither timestamp_header nor timestamp_key is set",
                );
            }
            if has_ts_source && !uses(&Part::Timestamp) {
                // An unsigned timestamp can be refreshed by whoever replays the request.
                err("signed_content", "must include {timestamp} when a timestamp is checked");
            }
            if uses(&Part::Id) && self.id_header.is_none() {
                err("signed_content", "uses {id} but id_header is not set");
            }
            if self.id_header.is_some() && !uses(&Part::Id) {
                err("id_header", "is set but signed_content has no {id}");
            }
            if !uses(&Part::Body) && !uses(&Part::FormParams) {
                err(
                    "signed_content",
                    "must include {body} or {form_params}, or the payload is not authenticated",
                );
            }
        }
        if self.tolerance_secs.is_some() && !has_ts_source {
            err(
                "tolerance_secs",
                "has no effect without timestamp_header or timestamp_key",
            );
        }
        if let Some(h) = &self.delivery_id_header {
            if !valid_header_name(h) {
                err("delivery_id_header", "must be a valid HTTP header name");
            }
        }
        if let Some(p) = &self.delivery_id_json {
            if let Err(reason) = parse_json_path(p) {
                err("delivery_id_json", &reason);
            }
        }
        if self.body_hash_query.as_deref().is_some_and(str::is_empty) {
            err("body_hash_query", "must not be empty");
        }
        if let Some(fb) = &self.fallback {
            if !valid_header_name(&fb.header) {
                err("fallback.header", "must be a valid HTTP header name");
            }
            if !matches!(self.signature_list, SignatureList::Single) {
                err("fallback", "is only supported with signature_list style \"single\"");
            }
        }
        errs
    }

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
            challenge: self.url_verification_challenge,
        })
    }
}

pub(crate) fn join_errors(errs: &[(String, String)]) -> String {
    errs.iter()
        .map(|(f, r)| format!("{f}: {r}"))
        .collect::<Vec<_>>()
        .join("; ")
}

// ---------------------------------------------------------------------------
// Runtime

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
    challenge: bool,
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

/// `application/x-www-form-urlencoded` decoding; invalid `%` escapes stay literal, as browsers and Python do.
pub(crate) fn form_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push((hi << 4) | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Decoded `(key, value)` pairs of a query string or form body, in order.
pub(crate) fn form_pairs(s: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    s.split(|&b| b == b'&')
        .filter(|seg| !seg.is_empty())
        .map(|seg| match seg.iter().position(|&b| b == b'=') {
            Some(eq) => (form_decode(&seg[..eq]), form_decode(&seg[eq + 1..])),
            None => (form_decode(seg), Vec::new()),
        })
        .collect()
}

/// First decoded value of query parameter `name`.
pub(crate) fn query_param(query: &str, name: &str) -> Option<Vec<u8>> {
    form_pairs(query.as_bytes())
        .into_iter()
        .find(|(k, _)| k == name.as_bytes())
        .map(|(_, v)| v)
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

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` into Unix seconds.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(s.get(0..4)?)?;
    let month = digits(s.get(5..7)?)?;
    let day = digits(s.get(8..10)?)?;
    let hour = digits(s.get(11..13)?)?;
    let min = digits(s.get(14..16)?)?;
    let sec = digits(s.get(17..19)?)?;
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let ob = rest.as_bytes();
            if ob.len() != 6 || ob[3] != b':' {
                return None;
            }
            let sign = match ob[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = (digits(&rest[1..3])?, digits(&rest[4..6])?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&month) || day < 1 || day > month_days[(month - 1) as usize] {
        return None;
    }
    if hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec - offset)
}

fn parse_timestamp(raw: &str, format: TimestampFormat) -> Result<i64, VerifyError> {
    match format {
        // Digits only: `+5`, `-5`, ` 5` and `5.0` are all refused.
        TimestampFormat::Unix => digits(raw).ok_or(VerifyError::Malformed),
        TimestampFormat::Rfc3339 => parse_rfc3339(raw).ok_or(VerifyError::Malformed),
    }
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
            .and_then(|name| query_param(req.query, name));
        // With a body hash in the (signed) URL, Twilio signs the URL alone and the hash covers the body.
        let form: Vec<(Vec<u8>, Vec<u8>)> = if self.uses_form_params && body_hash.is_none() {
            let mut pairs = form_pairs(req.body);
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
        // Only a body that mentions the handshake is worth building as a document.
        let maybe_handshake = self.challenge && req.body.windows(16).any(|w| w == b"url_verification");
        if maybe_handshake {
            if let Ok(json) = serde_json::from_slice::<serde_json::Value>(req.body) {
                if json.get("type").and_then(|t| t.as_str()) == Some("url_verification") {
                    verified.challenge = json.get("challenge").and_then(|c| c.as_str()).map(str::to_owned);
                }
            }
        }
        Ok(verified)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn json_lookup_bytes_matches_the_document_lookup() {
        let body = br#"{"a":{"b":[{"x":1},{"id":"evt_9","n":2.5}]},"id":7,"t":true,"s":"x\"y"}"#;
        let value: serde_json::Value = serde_json::from_slice(body).unwrap();
        for path in [
            "id", "a.b.1.id", "a.b.1.n", "a.b.0.x", "t", "s", "a", "missing", "a.b.5.id", "id.x",
        ] {
            let path: Vec<String> = path.split('.').map(str::to_string).collect();
            assert_eq!(json_lookup_bytes(body, &path), json_lookup(&value, &path), "{path:?}");
        }
        assert_eq!(json_lookup_bytes(b"not json", &["id".to_string()]), None);
    }
    use crate::config::verification::VerificationConfig;
    use crate::pipeline::verify::scheme::HeaderSource;
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

    pub(crate) fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    pub(crate) fn request<'a>(headers: &'a dyn HeaderSource, body: &'a [u8], now: i64) -> VerifyRequest<'a> {
        VerifyRequest {
            method: "POST",
            url: "https://hooks.example.com/in/test",
            query: "",
            headers,
            body,
            now_unix: now,
        }
    }

    fn recipe(toml_src: &str) -> RecipeConfig {
        toml::from_str(toml_src).expect("recipe parses")
    }

    fn errors_for(r: &RecipeConfig) -> Vec<String> {
        r.validate().into_iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn template_parses_placeholders_literals_and_escapes() {
        let parts = parse_template("v0:{timestamp}:{body}{{x}}").unwrap();
        assert_eq!(
            parts,
            vec![
                Part::Lit(b"v0:".to_vec()),
                Part::Timestamp,
                Part::Lit(b":".to_vec()),
                Part::Body,
                Part::Lit(b"{x}".to_vec()),
            ]
        );
        assert!(parse_template("{bogus}")
            .unwrap_err()
            .contains("unknown placeholder {bogus}"));
        assert!(parse_template("{body").is_err());
        assert!(parse_template("body}").is_err());
        assert_eq!(parse_template("é{url}").unwrap()[0], Part::Lit("é".as_bytes().to_vec()));
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2021-03-25T05:09:27Z"), Some(1_616_648_967));
        assert_eq!(parse_rfc3339("2021-03-25T07:09:27.123+02:00"), Some(1_616_648_967));
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400));
        for bad in [
            "2021-02-29T00:00:00Z",
            "2021-13-01T00:00:00Z",
            "2021-03-25 05:09:27Z",
            "2021-03-25T05:09:27",
            "x",
            "",
            "2021-03-25T05:09:27.Z",
            "2021-03-25T25:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn hex_and_form_decoding() {
        assert_eq!(decode_hex("aBcD"), Some(vec![0xab, 0xcd]));
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex("é1"), None);
        assert_eq!(form_decode(b"a+b%2Bc%zz%4"), b"a b+c%zz%4".to_vec());
        assert_eq!(
            form_pairs(b"b=2&&a&c=%3D="),
            vec![
                (b"b".to_vec(), b"2".to_vec()),
                (b"a".to_vec(), vec![]),
                (b"c".to_vec(), b"==".to_vec())
            ]
        );
        assert_eq!(query_param("x=1&token=a%20b", "token"), Some(b"a b".to_vec()));
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
    fn validation_names_the_offending_field() {
        let base = r#"
            algorithm = "sha256"
            encoding = "hex"
            signature_header = "X-Sig"
            secrets = ["s"]
        "#;
        assert!(recipe(base).validate().is_empty());
        let bad_template = recipe(&format!("{base}\nsigned_content = \"{{nope}}.{{body}}\""));
        assert_eq!(errors_for(&bad_template), vec!["signed_content"]);
        let unsigned_ts = recipe(&format!(
            "{base}\nsigned_content = \"{{body}}\"\ntimestamp_header = \"X-Ts\""
        ));
        assert_eq!(errors_for(&unsigned_ts), vec!["signed_content"]);
        let no_body = recipe(&format!("{base}\nsigned_content = \"{{url}}\""));
        assert_eq!(errors_for(&no_body), vec!["signed_content"]);
        let orphan_ts = recipe(&format!("{base}\nsigned_content = \"{{timestamp}}{{body}}\""));
        assert_eq!(errors_for(&orphan_ts), vec!["signed_content"]);
        let key_without_list = recipe(&format!(
            "{base}\nsigned_content = \"{{timestamp}}{{body}}\"\ntimestamp_key = \"t\""
        ));
        assert_eq!(errors_for(&key_without_list), vec!["timestamp_key"]);
        let tolerance_alone = recipe(&format!("{base}\ntolerance_secs = 5"));
        assert_eq!(errors_for(&tolerance_alone), vec!["tolerance_secs"]);
        let bad_header = recipe(&base.replace("X-Sig", "X Sig"));
        assert_eq!(errors_for(&bad_header), vec!["signature_header"]);
        let no_secrets = recipe(&base.replace("[\"s\"]", "[]"));
        assert_eq!(errors_for(&no_secrets), vec!["secrets"]);
        let empty_secret = recipe(&base.replace("[\"s\"]", "[\"ok\", \"\"]"));
        assert_eq!(errors_for(&empty_secret), vec!["secrets[1]"]);
        let bad_b64 = recipe(&format!("{base}\nsecret_encoding = \"base64\"").replace("[\"s\"]", "[\"%%%\"]"));
        assert_eq!(errors_for(&bad_b64), vec!["secrets[0]"]);
        let empty_whsec = recipe(&format!("{base}\nsecret_encoding = \"whsec\"").replace("[\"s\"]", "[\"whsec_\"]"));
        assert_eq!(errors_for(&empty_whsec), vec!["secrets[0]"]);
        let bad_list = recipe(&format!(
            "{base}\nsignature_list = {{ style = \"delimited\", delimiter = \"\" }}"
        ));
        assert_eq!(errors_for(&bad_list), vec!["signature_list.delimiter"]);
        let bad_path = recipe(&format!("{base}\ndelivery_id_json = \"a..b\""));
        assert_eq!(errors_for(&bad_path), vec!["delivery_id_json"]);
        // Errors never quote a secret.
        let msg = VerificationConfig::Recipe(bad_b64).compile().unwrap_err();
        assert!(!msg.contains("%%%"), "{msg}");
    }

    #[test]
    fn unknown_fields_and_list_styles_are_rejected() {
        let r: Result<RecipeConfig, _> = toml::from_str(
            "algorithm = \"sha256\"\nencoding = \"hex\"\nsignature_header = \"X\"\nsecrets = [\"s\"]\nsigned_contnet = \"{body}\"",
        );
        assert!(r.unwrap_err().to_string().contains("signed_contnet"));
        let r: Result<RecipeConfig, _> = toml::from_str(
            "algorithm = \"sha256\"\nencoding = \"hex\"\nsignature_header = \"X\"\nsecrets = [\"s\"]\nsignature_list = { style = \"csv\" }",
        );
        assert!(r.is_err());
        let r: RecipeConfig = toml::from_str(
            "algorithm = \"sha256\"\nencoding = \"hex\"\nsignature_header = \"X\"\nsecrets = [\"s\"]\nsignature_list = { style = \"none\" }",
        )
        .unwrap();
        assert_eq!(r.signature_list, SignatureList::Single);
    }

    /// A custom recipe exercising `{method}`, `{url}`, `{id}`, delimited unkeyed lists, sha512 and base64 secrets.
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
