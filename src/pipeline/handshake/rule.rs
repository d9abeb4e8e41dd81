//! One handshake rule, checked and compiled: its conditions read once per request (query
//! parameters URL-decoded, headers, JSON fields scanned from the body without building it),
//! and its answer rendered from the values it captured. Pure: no actix types.

use std::borrow::Cow;

use serde_json::{Map, Value as Json};
use subtle::ConstantTimeEq;

use crate::config::handshake::{HandshakeCondition, HandshakeRule};
use crate::pipeline::verify::recipe::json_path::{json_lookup_bytes, parse_json_path};
use crate::pipeline::verify::recipe::validate::valid_header_name;
use crate::pipeline::verify::request::HeaderSource;
use crate::secret::Secret;
use crate::templates::{validate_handshake, TemplateSet};
use crate::urlencoded;

/// Methods a rule may answer: the delivery methods, and `OPTIONS` (CloudEvents).
pub const RULE_METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Most bytes a rule may read from one value (`max_value_bytes`).
const MAX_VALUE_BYTES_LIMIT: usize = 64 * 1024;

const BODY: &str = "body";

/// What a handshake rule looks at in one request.
pub struct HandshakeRequest<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// Raw query string without `?`.
    pub query: &'a str,
    /// Request headers.
    pub headers: &'a dyn HeaderSource,
    /// The decoded body, as verification sees it.
    pub body: &'a [u8],
}

/// A handshake refused: a status (4xx) and a reason naming the rule and the value's place,
/// never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRefusal {
    /// 400-499.
    pub status: u16,
    /// What the sender is told.
    pub reason: String,
}

/// A rendered answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeAnswer {
    /// The rule's name, for debug captures.
    pub rule: String,
    /// Whether it was answered only after verification.
    pub verified: bool,
    /// 200-299.
    pub status: u16,
    /// Headers, in the rule's order (by name).
    pub headers: Vec<(String, String)>,
    /// The body, when the rule has one.
    pub body: Option<String>,
}

/// Where a condition's value is.
#[derive(Debug)]
enum Place {
    Query(String),
    Header(String),
    Json(Vec<String>),
}

/// What a condition's value must be.
#[derive(Debug)]
enum Test {
    Present,
    Equals(String),
    OneOf(Vec<String>),
    EqualsToken,
}

/// One value as read from a request.
enum Read {
    Absent,
    Text(String),
    TooLong,
    NotText,
}

#[derive(Debug)]
struct Condition {
    /// As written (`query parameter `hub.challenge``), for refusals.
    label: String,
    place: Place,
    test: Test,
    capture: Option<String>,
    otherwise: Option<u16>,
}

/// A compiled rule.
pub struct CompiledRule {
    /// Its name (`meta`, `handshakes[2]`, or the one it was given).
    pub name: String,
    /// The method it answers; any when `None`.
    pub method: Option<String>,
    /// Answered only once verification passed.
    pub verified: bool,
    /// Also publishes the request's records.
    pub publish: bool,
    conditions: Vec<Condition>,
    token: Option<Secret>,
    max_value_bytes: usize,
    status: u16,
    header_names: Vec<String>,
    has_body: bool,
    has_content_type: bool,
    templates: TemplateSet,
}

impl std::fmt::Debug for CompiledRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledRule")
            .field("name", &self.name)
            .field("method", &self.method)
            .field("verified", &self.verified)
            .field("publish", &self.publish)
            .field("conditions", &self.conditions)
            .finish_non_exhaustive()
    }
}

/// Whether `name` may name a capture: a template field (`[A-Za-z_][A-Za-z0-9_]*`).
fn valid_capture_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Problems with a rule, keyed relative to it (`match[1].equals_token`). `keyed`: a key for
/// `hmac_sha256` exists (the rule's `secret` or the listener's verification secret).
pub fn rule_problems(rule: &HandshakeRule, keyed: bool) -> Vec<(String, String)> {
    let mut problems: Vec<(String, String)> = Vec::new();
    let mut problem = |key: String, message: &str| problems.push((key, message.to_string()));
    if let Some(name) = &rule.name {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !valid {
            problem("name".into(), "must be 1-64 letters, digits, '-', '_' or '.'");
        }
    }
    if let Some(method) = &rule.method {
        if !RULE_METHODS.contains(&method.as_str()) {
            problem(
                "method".into(),
                "must be GET, POST, PUT, PATCH, DELETE or OPTIONS (upper case)",
            );
        }
    }
    if !rule.conditions.iter().any(|condition| condition.otherwise.is_none()) {
        problem(
            "match".into(),
            "needs at least one condition without `otherwise`: those decide which requests are this handshake",
        );
    }
    let mut captures: Vec<&str> = Vec::new();
    for (index, condition) in rule.conditions.iter().enumerate() {
        let at = |field: &str| format!("match[{index}].{field}");
        let places = [&condition.query, &condition.header, &condition.json]
            .iter()
            .filter(|place| place.is_some())
            .count();
        if places != 1 {
            problem(format!("match[{index}]"), "set exactly one of query, header or json");
        }
        if condition.query.as_deref() == Some("") {
            problem(at("query"), "must name a parameter");
        }
        if condition
            .header
            .as_deref()
            .is_some_and(|header| !valid_header_name(header))
        {
            problem(at("header"), "must be a valid HTTP header name");
        }
        if let Some(Err(message)) = condition.json.as_deref().map(parse_json_path) {
            problem(at("json"), &message);
        }
        let tests = usize::from(condition.equals.is_some())
            + usize::from(condition.equals_token)
            + usize::from(!condition.one_of.is_empty());
        if tests > 1 {
            problem(
                format!("match[{index}]"),
                "set at most one of equals, equals_token or one_of",
            );
        }
        if condition.equals_token {
            if rule.token.is_none() {
                problem(at("equals_token"), "needs the rule's `token`");
            }
            if condition.capture.is_some() {
                problem(
                    at("as"),
                    "would show the token to the answer: a token is compared, never captured",
                );
            }
        }
        if let Some(name) = &condition.capture {
            if !valid_capture_name(name) {
                problem(
                    at("as"),
                    "must be a name of letters, digits and '_' (not starting with a digit)",
                );
            } else if captures.contains(&name.as_str()) {
                problem(at("as"), "is captured twice");
            }
            captures.push(name);
        }
        if condition.otherwise.is_some_and(|status| !(400..=499).contains(&status)) {
            problem(at("otherwise"), "must be a 4xx status");
        }
    }
    for (key, secret) in [("token", &rule.token), ("secret", &rule.secret)] {
        if secret.as_ref().is_some_and(|secret| secret.expose().is_empty()) {
            problem(key.into(), "must not be empty");
        }
    }
    if rule.max_value_bytes == 0 || rule.max_value_bytes > MAX_VALUE_BYTES_LIMIT {
        problem("max_value_bytes".into(), "must be between 1 and 65536");
    }
    if rule.publish && !rule.verified {
        problem(
            "publish".into(),
            "needs `verified = true`: records are published only from requests that passed verification",
        );
    }
    let response = &rule.response;
    if !(200..=299).contains(&response.status) {
        problem("response.status".into(), "must be a 2xx status");
    }
    if response.status == 204 && response.body.is_some() {
        problem("response.body".into(), "a 204 answer has no body; choose 200");
    }
    for (name, template) in &response.headers {
        let key = format!("response.headers.{name}");
        if !valid_header_name(name) {
            problem(key.clone(), "must be a valid HTTP header name");
        }
        if let Err(message) = validate_handshake(template, keyed) {
            problem(key, &message);
        }
    }
    if let Some(Err(message)) = response.body.as_deref().map(|body| validate_handshake(body, keyed)) {
        problem("response.body".into(), &message);
    }
    problems
}

impl CompiledRule {
    /// Compiles a rule that passed [`rule_problems`]; `hmac_key`: the key of `hmac_sha256`.
    pub fn compile(rule: &HandshakeRule, name: String, hmac_key: Option<&Secret>) -> Result<CompiledRule, String> {
        let key = rule
            .secret
            .as_ref()
            .or(hmac_key)
            .map(|secret| secret.expose().as_bytes().to_vec());
        let mut templates = TemplateSet::for_handshake(key);
        let mut header_names = Vec::new();
        for (index, (header, template)) in rule.response.headers.iter().enumerate() {
            templates.add(&format!("header{index}"), template)?;
            header_names.push(header.clone());
        }
        if let Some(body) = &rule.response.body {
            templates.add(BODY, body)?;
        }
        let conditions = rule
            .conditions
            .iter()
            .map(compile_condition)
            .collect::<Result<Vec<_>, String>>()?;
        Ok(CompiledRule {
            name,
            method: rule.method.clone(),
            verified: rule.verified,
            publish: rule.publish,
            conditions,
            token: rule.token.clone(),
            max_value_bytes: rule.max_value_bytes,
            status: rule.response.status,
            has_content_type: header_names
                .iter()
                .any(|name| name.eq_ignore_ascii_case("content-type")),
            header_names,
            has_body: rule.response.body.is_some(),
            templates,
        })
    }

    /// `None`: the rule does not apply. `Some(Ok(captures))`: it applies, with the values it
    /// captured. `Some(Err(_))`: it applies and refuses the request.
    pub fn decide(&self, request: &HandshakeRequest<'_>) -> Option<Result<Map<String, Json>, HandshakeRefusal>> {
        if self.method.as_deref().is_some_and(|method| method != request.method) {
            return None;
        }
        let mut values = Vec::with_capacity(self.conditions.len());
        // The conditions without `otherwise` decide whether this is the handshake at all…
        for condition in self.conditions.iter().filter(|c| c.otherwise.is_none()) {
            let value = self.read(condition, request);
            if !self.holds(condition, &value) {
                return None;
            }
            values.push((condition, value));
        }
        // …the others whether it is a good one.
        for condition in self.conditions.iter().filter(|c| c.otherwise.is_some()) {
            let value = self.read(condition, request);
            if !self.holds(condition, &value) {
                let status = condition.otherwise.unwrap_or(400);
                let what = match value {
                    Read::Absent => "is missing",
                    Read::TooLong => "is too long",
                    Read::NotText => "is not UTF-8 text",
                    Read::Text(_) => "does not match",
                };
                return Some(Err(self.refusal(status, format!("{} {what}", condition.label))));
            }
            values.push((condition, value));
        }
        let mut captures = Map::new();
        for (condition, value) in values {
            let Some(name) = &condition.capture else { continue };
            match value {
                Read::Text(text) => {
                    captures.insert(name.clone(), Json::String(text));
                }
                Read::TooLong => {
                    let reason = format!("{} is longer than {} bytes", condition.label, self.max_value_bytes);
                    return Some(Err(self.refusal(400, reason)));
                }
                Read::NotText | Read::Absent => {
                    let reason = format!("{} is not UTF-8 text", condition.label);
                    return Some(Err(self.refusal(400, reason)));
                }
            }
        }
        Some(Ok(captures))
    }

    /// The answer over the captured values; a value that cannot go into it (a header value with
    /// a line break) refuses the request instead.
    pub fn answer(&self, captures: &Map<String, Json>) -> Result<HandshakeAnswer, HandshakeRefusal> {
        let context = Json::Object(captures.clone());
        let cannot_render = |_| self.refusal(400, "the answer cannot be built from this request".into());
        let mut headers = Vec::with_capacity(self.header_names.len() + 1);
        for (index, name) in self.header_names.iter().enumerate() {
            let value = self
                .templates
                .render(&format!("header{index}"), &context)
                .map_err(cannot_render)?;
            // Visible ASCII and tabs only: an echoed value can never end the header.
            if !value.bytes().all(|byte| byte == b'\t' || (0x20..0x7f).contains(&byte)) {
                let reason = format!("the answer's `{name}` header cannot carry this value");
                return Err(self.refusal(400, reason));
            }
            headers.push((name.clone(), value));
        }
        let body = if self.has_body {
            Some(self.templates.render(BODY, &context).map_err(cannot_render)?)
        } else {
            None
        };
        if body.is_some() && !self.has_content_type {
            headers.push(("Content-Type".into(), "text/plain; charset=utf-8".into()));
        }
        Ok(HandshakeAnswer {
            rule: self.name.clone(),
            verified: self.verified,
            status: self.status,
            headers,
            body,
        })
    }

    /// Query parameters and headers this rule compares with its token: what a debug capture
    /// must not show.
    pub fn token_places(&self) -> impl Iterator<Item = (bool, &str)> + '_ {
        self.conditions
            .iter()
            .filter(|condition| matches!(condition.test, Test::EqualsToken))
            .filter_map(|condition| match &condition.place {
                Place::Query(name) => Some((true, name.as_str())),
                Place::Header(name) => Some((false, name.as_str())),
                Place::Json(_) => None,
            })
    }

    fn refusal(&self, status: u16, what: String) -> HandshakeRefusal {
        HandshakeRefusal {
            status,
            reason: format!("handshake `{}`: {what}", self.name),
        }
    }

    fn read(&self, condition: &Condition, request: &HandshakeRequest<'_>) -> Read {
        let bytes: Cow<'_, [u8]> = match &condition.place {
            Place::Query(name) => {
                let found = urlencoded::pairs(request.query.as_bytes())
                    .find(|(key, _)| urlencoded::decode_lenient(key) == name.as_bytes());
                match found {
                    // Decoded only when it can fit: each `%XX` is at least one byte.
                    Some((_, raw)) if raw.len() > self.max_value_bytes * 3 => return Read::TooLong,
                    Some((_, raw)) => Cow::Owned(urlencoded::decode_lenient(raw)),
                    None => return Read::Absent,
                }
            }
            Place::Header(name) => match request.headers.header(name) {
                Some(value) => Cow::Borrowed(value.as_bytes()),
                None => return Read::Absent,
            },
            Place::Json(path) => {
                if !json_may_match(condition, request.body) {
                    return Read::Absent;
                }
                match json_lookup_bytes(request.body, path) {
                    Some(value) => Cow::Owned(value.into_bytes()),
                    None => return Read::Absent,
                }
            }
        };
        if bytes.len() > self.max_value_bytes {
            return Read::TooLong;
        }
        match String::from_utf8(bytes.into_owned()) {
            Ok(text) => Read::Text(text),
            Err(_) => Read::NotText,
        }
    }

    fn holds(&self, condition: &Condition, value: &Read) -> bool {
        match (&condition.test, value) {
            (_, Read::Absent) => false,
            // Present, however unusable: whether it can be captured is decided after.
            (Test::Present, _) => true,
            (_, Read::TooLong | Read::NotText) => false,
            (Test::Equals(expected), Read::Text(text)) => text == expected,
            (Test::OneOf(allowed), Read::Text(text)) => allowed.iter().any(|allowed| allowed == text),
            (Test::EqualsToken, Read::Text(text)) => self
                .token
                .as_ref()
                .is_some_and(|token| bool::from(token.expose().as_bytes().ct_eq(text.as_bytes()))),
        }
    }
}

/// A body that cannot hold the JSON field's expected text is not scanned: most requests to a
/// listener are deliveries, and only handshakes mention, say, `url_verification`.
fn json_may_match(condition: &Condition, body: &[u8]) -> bool {
    let first = body.iter().find(|byte| !byte.is_ascii_whitespace());
    if !matches!(first, Some(b'{' | b'[')) {
        return false;
    }
    match &condition.test {
        Test::Equals(expected) => memchr::memmem::find(body, expected.as_bytes()).is_some(),
        Test::Present | Test::OneOf(_) | Test::EqualsToken => true,
    }
}

fn compile_condition(condition: &HandshakeCondition) -> Result<Condition, String> {
    let (label, place) = match (&condition.query, &condition.header, &condition.json) {
        (Some(name), None, None) => (format!("query parameter `{name}`"), Place::Query(name.clone())),
        (None, Some(name), None) => (format!("header `{name}`"), Place::Header(name.clone())),
        (None, None, Some(path)) => (format!("JSON field `{path}`"), Place::Json(parse_json_path(path)?)),
        _ => return Err("set exactly one of query, header or json".into()),
    };
    let test = match (&condition.equals, condition.equals_token, condition.one_of.is_empty()) {
        (Some(expected), false, true) => Test::Equals(expected.clone()),
        (None, true, true) => Test::EqualsToken,
        (None, false, false) => Test::OneOf(condition.one_of.clone()),
        (None, false, true) => Test::Present,
        _ => return Err("set at most one of equals, equals_token or one_of".into()),
    };
    Ok(Condition {
        label,
        place,
        test,
        capture: condition.capture.clone(),
        otherwise: condition.otherwise,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::handshake::HandshakeConfig;

    fn rule(json: Json) -> HandshakeRule {
        match serde_json::from_value::<HandshakeConfig>(json).unwrap() {
            HandshakeConfig::Rule(rule) => rule,
            other => panic!("{other:?}"),
        }
    }

    fn compiled(json: Json) -> CompiledRule {
        let rule = rule(json);
        assert_eq!(rule_problems(&rule, false), Vec::<(String, String)>::new());
        CompiledRule::compile(&rule, "r".into(), None).unwrap()
    }

    const NO_HEADERS: [(&str, &str); 0] = [];

    fn get(query: &str) -> HandshakeRequest<'_> {
        HandshakeRequest {
            method: "GET",
            query,
            headers: &NO_HEADERS,
            body: b"",
        }
    }

    fn ping() -> CompiledRule {
        compiled(serde_json::json!({
            "type": "rule", "method": "GET", "token": "tok-1",
            "match": [
                {"query": "mode", "equals": "ping"},
                {"query": "key", "equals_token": true, "otherwise": 403},
                {"query": "echo", "as": "echo", "otherwise": 400},
            ],
            "response": {"headers": {"X-Echo": "{{echo}}"}, "body": "pong {{echo}}"},
        }))
    }

    #[test]
    fn selecting_conditions_decide_and_guarded_ones_refuse() {
        let rule = ping();
        assert!(
            rule.decide(&get("mode=other&key=tok-1&echo=x")).is_none(),
            "not this handshake"
        );
        assert!(rule
            .decide(&HandshakeRequest {
                method: "POST",
                ..get("mode=ping&key=tok-1&echo=x")
            })
            .is_none());
        let captures = rule.decide(&get("mode=ping&key=tok-1&echo=a%20b")).unwrap().unwrap();
        assert_eq!(captures["echo"], "a b");
        let answer = rule.answer(&captures).unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body.as_deref(), Some("pong a b"));
        assert_eq!(
            answer.headers,
            [
                ("X-Echo".to_string(), "a b".to_string()),
                ("Content-Type".to_string(), "text/plain; charset=utf-8".to_string())
            ]
        );
        for (query, status, reason) in [
            (
                "mode=ping&key=wrong&echo=x",
                403,
                "handshake `r`: query parameter `key` does not match",
            ),
            (
                "mode=ping&echo=x",
                403,
                "handshake `r`: query parameter `key` is missing",
            ),
            (
                "mode=ping&key=tok-1",
                400,
                "handshake `r`: query parameter `echo` is missing",
            ),
            (
                "mode=ping&key=tok-1&echo=%FF",
                400,
                "handshake `r`: query parameter `echo` is not UTF-8 text",
            ),
        ] {
            let refusal = rule.decide(&get(query)).unwrap().unwrap_err();
            assert_eq!((refusal.status, refusal.reason.as_str()), (status, reason), "{query}");
        }
        let long = format!("mode=ping&key=tok-1&echo={}", "x".repeat(1025));
        let refusal = rule.decide(&get(&long)).unwrap().unwrap_err();
        assert_eq!(
            refusal.reason,
            "handshake `r`: query parameter `echo` is longer than 1024 bytes"
        );
    }

    #[test]
    fn an_echo_that_would_end_a_header_is_refused() {
        let rule = ping();
        let captures = rule
            .decide(&get("mode=ping&key=tok-1&echo=a%0D%0ASet-Cookie:%20x"))
            .unwrap()
            .unwrap();
        let refusal = rule.answer(&captures).unwrap_err();
        assert_eq!(refusal.status, 400);
        assert!(!refusal.reason.contains("Set-Cookie"), "{}", refusal.reason);
    }

    #[test]
    fn json_fields_are_read_from_the_body_only_when_they_can_be_there() {
        let rule = compiled(serde_json::json!({
            "type": "rule",
            "match": [{"json": "event", "equals": "ping"}, {"json": "data.id", "as": "id", "otherwise": 400}],
            "response": {"body": "{{id}}"},
        }));
        let request = |body: &'static [u8]| HandshakeRequest {
            method: "POST",
            query: "",
            headers: &NO_HEADERS,
            body,
        };
        let captures = rule
            .decide(&request(br#"{"event":"ping","data":{"id":7}}"#))
            .unwrap()
            .unwrap();
        assert_eq!(captures["id"], "7");
        assert!(rule.decide(&request(br#"{"event":"order"}"#)).is_none());
        assert!(rule.decide(&request(b"event=ping")).is_none(), "not JSON");
        assert!(
            rule.decide(&request(b"{\"event\":\"ping\",\xff}")).is_none(),
            "invalid JSON"
        );
        let refusal = rule.decide(&request(br#"{"event":"ping"}"#)).unwrap().unwrap_err();
        assert_eq!(refusal.reason, "handshake `r`: JSON field `data.id` is missing");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever bytes a sender puts in a value (percent-encoded in the query, or any text in
        /// a JSON string), the rule echoes it exactly or refuses with a 400 — never panics, never
        /// lets a line break into a header, and a refusal never repeats the value.
        #[test]
        fn hostile_values_are_echoed_exactly_or_refused(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1100),
            text in ".{0,40}",
        ) {
            let encoded: String = bytes.iter().map(|byte| format!("%{byte:02X}")).collect();
            let query = format!("mode=ping&key=tok-1&echo={encoded}");
            let request = HandshakeRequest { method: "GET", query: &query, headers: &NO_HEADERS, body: b"" };
            let rule = ping();
            let decided = rule.decide(&request).expect("the rule applies");
            let answered = decided.and_then(|captures| rule.answer(&captures));
            let printable = bytes.iter().all(|byte| *byte == b'\t' || (0x20..0x7f).contains(byte));
            match answered {
                Ok(answer) => {
                    proptest::prop_assert!(printable, "only visible ASCII reaches a header");
                    proptest::prop_assert_eq!(answer.body, Some(format!("pong {}", String::from_utf8_lossy(&bytes))));
                }
                Err(refusal) => {
                    proptest::prop_assert_eq!(refusal.status, 400);
                    proptest::prop_assert!(!printable || bytes.len() > 1024);
                    if bytes.len() > 8 {
                        proptest::prop_assert!(!refusal.reason.contains(&*String::from_utf8_lossy(&bytes)));
                    }
                }
            }

            let by_json = compiled(serde_json::json!({
                "type": "rule",
                "match": [{"json": "kind", "equals": "ping"}, {"json": "id", "as": "id", "otherwise": 400}],
                "response": {"headers": {"Content-Type": "application/json"}, "body": "{\"id\":{{jsonSerialize id}}}"},
            }));
            let body = serde_json::to_vec(&serde_json::json!({"kind": "ping", "id": text})).unwrap();
            let request = HandshakeRequest { method: "POST", query: "", headers: &NO_HEADERS, body: &body };
            let captures = by_json.decide(&request).expect("applies").expect("accepted");
            let answer = by_json.answer(&captures).unwrap();
            let echoed: serde_json::Value = serde_json::from_str(answer.body.as_deref().unwrap()).unwrap();
            proptest::prop_assert_eq!(echoed, serde_json::json!({"id": text}), "a JSON answer stays JSON");
        }
    }

    #[test]
    fn every_mistake_is_named_by_its_key() {
        let bad = rule(serde_json::json!({
            "type": "rule", "name": "bad name", "method": "get", "publish": true, "max_value_bytes": 0,
            "match": [
                {"query": "a", "header": "b", "otherwise": 400},
                {"json": "a..b", "otherwise": 200},
                {"header": "bad header", "equals_token": true, "as": "t", "otherwise": 403},
                {"query": "c", "as": "1x", "otherwise": 400},
            ],
            "response": {"status": 302, "headers": {"X": "{{nosuch a}}"}, "body": "{{hmac_sha256 c \"hex\"}}"},
        }));
        let keys: Vec<String> = rule_problems(&bad, false).into_iter().map(|(key, _)| key).collect();
        assert_eq!(
            keys,
            [
                "name",
                "method",
                "match",
                "match[0]",
                "match[1].json",
                "match[1].otherwise",
                "match[2].header",
                "match[2].equals_token",
                "match[2].as",
                "match[3].as",
                "max_value_bytes",
                "publish",
                "response.status",
                "response.headers.X",
                "response.body",
            ]
        );
    }
}
