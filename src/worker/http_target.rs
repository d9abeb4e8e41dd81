//! The HTTP target: POSTs a page (or each record) as JSON and turns the answer into an
//! `Answer`: 2xx imported (or per-record results), 429/5xx and connection errors retryable
//! (with `Retry-After`), everything else permanent.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use serde_json::Value;

use crate::config::worker::{HttpTargetConfig, ImportMode, TargetAuth};
use crate::telemetry::events::TargetAnswered;
use crate::telemetry::status_class;
use crate::wire::results::{bounded_target, bounded_value};
use crate::worker::backoff::{parse_retry_after, RetryPolicy};
use crate::worker::import::{Answer, RecordResult, Target};
use crate::worker::page::{record_id, IncomingPage};

/// Largest response body read (per-record results of a 10,000-record page fit easily).
const MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;
/// Error messages taken from a target's answer are cut at this many characters.
const MAX_ERROR_CHARS: usize = 500;

/// An HTTP endpoint records are POSTed to.
pub struct HttpTarget {
    config: HttpTargetConfig,
    agent: ureq::Agent,
    authorization: Option<String>,
}

impl std::fmt::Debug for HttpTarget {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("HttpTarget")
            .field("url", &self.config.url)
            .field("mode", &self.config.mode)
            .finish_non_exhaustive()
    }
}

impl HttpTarget {
    /// A target from its (validated) configuration; fails if its `ca_file` cannot be read.
    pub fn new(config: HttpTargetConfig) -> Result<HttpTarget, String> {
        let tls = crate::tls::client_config(config.ca_file.as_deref().map(std::path::Path::new))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_millis(config.timeout_ms)))
            // A redirect of a POST is a configuration problem to show, not to follow.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .build()
            .into();
        let authorization = config.auth.as_ref().map(|auth| match auth {
            TargetAuth::Bearer { token } => format!("Bearer {}", token.expose()),
            TargetAuth::Basic { username, password } => {
                let pair = format!("{username}:{}", password.expose());
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
            }
        });
        Ok(HttpTarget {
            config,
            agent,
            authorization,
        })
    }

    fn body(&self, page: &IncomingPage, records: &[usize]) -> Vec<u8> {
        match self.config.mode {
            ImportMode::Record => serde_json::to_vec(&page.records[records[0]]).unwrap_or_default(),
            ImportMode::Page => page_body(page, records),
        }
    }
}

/// The page envelope around the chosen records (all of them on the first try; the ones still
/// pending on retries).
fn page_body(page: &IncomingPage, records: &[usize]) -> Vec<u8> {
    let mut envelope = serde_json::json!({
        "type": "page",
        "version": 1,
        "listener_id": page.listener_id,
        "page_id": page.page_id,
        "created_at": page.created_at,
    });
    let chosen: Vec<&Value> = records.iter().map(|index| &page.records[*index]).collect();
    envelope["records"] = serde_json::to_value(chosen).unwrap_or_default();
    serde_json::to_vec(&envelope).unwrap_or_default()
}

impl Target for HttpTarget {
    fn send(&self, page: &IncomingPage, records: &[usize]) -> Answer {
        let listener = page.listener_id.as_str();
        let body = self.body(page, records);
        let mut request = self
            .agent
            .post(&self.config.url)
            .header("content-type", "application/json")
            .header("user-agent", concat!("hookpipe-worker/", env!("CARGO_PKG_VERSION")))
            .header("x-hookpipe-listener-id", listener)
            .header("x-hookpipe-page-id", page.page_id.as_str());
        if self.config.mode == ImportMode::Record {
            let id = record_id(&page.records[records[0]]);
            request = request.header("x-hookpipe-record-id", id).header("idempotency-key", id);
        }
        for (name, value) in &self.config.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(authorization) = &self.authorization {
            request = request.header("authorization", authorization.as_str());
        }
        let mut response = match request.send(&body[..]) {
            Ok(response) => response,
            Err(error) => {
                TargetAnswered {
                    listener,
                    status_class: "error",
                }
                .emit();
                return Answer::Retryable {
                    status: None,
                    error: format!("cannot reach the target: {error}"),
                    retry_after: None,
                };
            }
        };
        let status = response.status().as_u16();
        TargetAnswered {
            listener,
            status_class: status_class(status),
        }
        .emit();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let text = match response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
        {
            Ok(bytes) => bytes,
            // The status arrived but the body broke off: the outcome is unknown, so try again
            // (the target may see the records twice; they carry their ids).
            Err(error) => {
                return Answer::Retryable {
                    status: Some(status),
                    error: format!("HTTP {status}, then reading the answer failed: {error}"),
                    retry_after,
                }
            }
        };
        let answer = classify(
            status,
            &text,
            retry_after,
            self.config.per_record_results,
            records.len(),
        );
        if page.wait_for_import {
            keep_answers(answer, &text)
        } else {
            answer
        }
    }

    fn mode(&self) -> ImportMode {
        self.config.mode
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.config.max_attempts,
            initial_backoff: Duration::from_millis(self.config.initial_backoff_ms),
            max_backoff: Duration::from_millis(self.config.max_backoff_ms),
        }
    }
}

/// The answer a status and body amount to. Pure.
pub fn classify(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    per_record_results: bool,
    sent: usize,
) -> Answer {
    match status {
        200..=299 if per_record_results => match parse_results(body, sent) {
            Ok(results) => Answer::PerRecord { status, results },
            Err(reason) => Answer::Permanent {
                status: Some(status),
                error: format!("HTTP {status} with unreadable per-record results: {reason}"),
            },
        },
        200..=299 => Answer::Accepted(None),
        429 | 500..=599 => Answer::Retryable {
            status: Some(status),
            error: error_text(status, body),
            retry_after,
        },
        _ => Answer::Permanent {
            status: Some(status),
            error: error_text(status, body),
        },
    }
}

/// A success with the target's answers kept (pages of listeners that wait for their imports):
/// the body for every record, or each record's own result object. Pure.
pub fn keep_answers(answer: Answer, body: &[u8]) -> Answer {
    match answer {
        Answer::Accepted(None) => Answer::Accepted(bounded_target(body).map(Arc::new)),
        Answer::PerRecord { status, results } => {
            let items = match serde_json::from_slice::<Value>(body) {
                Ok(Value::Array(items)) => items,
                Ok(object @ Value::Object(_)) => vec![object],
                _ => Vec::new(),
            };
            let results = results
                .into_iter()
                .enumerate()
                .map(|(index, result)| match result {
                    RecordResult::Ok(None) => RecordResult::Ok(items.get(index).and_then(bounded_value).map(Arc::new)),
                    other => other,
                })
                .collect();
            Answer::PerRecord { status, results }
        }
        other => other,
    }
}

/// `[{"ok":true},{"ok":false,"error":"…","retryable":false},…]`; with a single record sent, a
/// bare result object is accepted too.
fn parse_results(body: &[u8], sent: usize) -> Result<Vec<RecordResult>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON ({e})"))?;
    let items = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) if sent == 1 => vec![object],
        _ => return Err("expected a JSON array of results".into()),
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| match item.get("ok").and_then(Value::as_bool) {
            Some(true) => Ok(RecordResult::Ok(None)),
            Some(false) => Ok(RecordResult::Failed {
                error: item
                    .get("error")
                    .and_then(Value::as_str)
                    .map(|e| clean(e, MAX_ERROR_CHARS))
                    .filter(|e| !e.is_empty())
                    .unwrap_or_else(|| "rejected by the target".into()),
                retryable: item.get("retryable").and_then(Value::as_bool).unwrap_or(false),
            }),
            None => Err(format!("result {index} has no boolean `ok`")),
        })
        .collect()
}

/// `HTTP 422: <the target's error or message field, or the start of its body>`.
fn error_text(status: u16, body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<Value>(body).ok().and_then(|value| {
        ["error", "message", "detail"]
            .iter()
            .find_map(|key| value.get(*key).and_then(Value::as_str).map(str::to_string))
    });
    let detail = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let detail = clean(&detail, MAX_ERROR_CHARS);
    if detail.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {detail}")
    }
}

/// One line, control characters dropped, cut at `max` characters.
fn clean(text: &str, max: usize) -> String {
    let single: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match single.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &single[..cut]),
        None => single,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_map_to_answers() {
        assert_eq!(classify(204, b"", None, false, 3), Answer::Accepted(None));
        assert_eq!(
            classify(503, b"down", Some(Duration::from_secs(2)), false, 1),
            Answer::Retryable {
                status: Some(503),
                error: "HTTP 503: down".into(),
                retry_after: Some(Duration::from_secs(2))
            }
        );
        assert!(matches!(
            classify(429, b"", None, false, 1),
            Answer::Retryable { status: Some(429), .. }
        ));
        assert_eq!(
            classify(422, br#"{"error":"unknown\nsku"}"#, None, false, 1),
            Answer::Permanent {
                status: Some(422),
                error: "HTTP 422: unknown sku".into()
            }
        );
        assert!(matches!(
            classify(404, b"", None, false, 1),
            Answer::Permanent { status: Some(404), .. }
        ));
        assert!(matches!(
            classify(301, b"", None, false, 1),
            Answer::Permanent { status: Some(301), .. }
        ));
    }

    #[test]
    fn per_record_results_are_read() {
        let body = json!([{"ok": true}, {"ok": false, "error": "bad"}, {"ok": false, "retryable": true}]).to_string();
        assert_eq!(
            classify(200, body.as_bytes(), None, true, 3),
            Answer::PerRecord {
                status: 200,
                results: vec![
                    RecordResult::Ok(None),
                    RecordResult::Failed {
                        error: "bad".into(),
                        retryable: false
                    },
                    RecordResult::Failed {
                        error: "rejected by the target".into(),
                        retryable: true
                    },
                ]
            }
        );
        assert_eq!(
            classify(200, br#"{"ok":false,"error":"x"}"#, None, true, 1),
            Answer::PerRecord {
                status: 200,
                results: vec![RecordResult::Failed {
                    error: "x".into(),
                    retryable: false
                }]
            }
        );
        for bad in [&b"nope"[..], br#"{"ok":true}"#, br#"[{"ok":"yes"}]"#] {
            assert!(
                matches!(classify(200, bad, None, true, 2), Answer::Permanent { .. }),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // Failures are failures whatever the per-record setting.
        assert!(matches!(classify(500, b"", None, true, 2), Answer::Retryable { .. }));
    }

    #[test]
    fn answers_are_kept_for_listeners_that_wait() {
        let page_answer = keep_answers(classify(201, br#"{"id":"o-1"}"#, None, false, 2), br#"{"id":"o-1"}"#);
        assert_eq!(page_answer, Answer::Accepted(Some(Arc::new(json!({"id": "o-1"})))));
        assert_eq!(
            keep_answers(classify(204, b"", None, false, 1), b""),
            Answer::Accepted(None),
            "no JSON, nothing kept"
        );
        let body = json!([{"ok": true, "id": 7}, {"ok": false, "error": "bad"}]).to_string();
        let per_record = keep_answers(classify(200, body.as_bytes(), None, true, 2), body.as_bytes());
        assert_eq!(
            per_record,
            Answer::PerRecord {
                status: 200,
                results: vec![
                    RecordResult::Ok(Some(Arc::new(json!({"ok": true, "id": 7})))),
                    RecordResult::Failed {
                        error: "bad".into(),
                        retryable: false
                    },
                ]
            }
        );
        let failure = classify(422, br#"{"error":"x"}"#, None, false, 1);
        assert_eq!(keep_answers(failure.clone(), br#"{"error":"x"}"#), failure);
    }

    #[test]
    fn long_error_bodies_are_cut() {
        let body = "x".repeat(2_000);
        let text = error_text(400, body.as_bytes());
        assert_eq!(text.chars().count(), "HTTP 400: ".len() + MAX_ERROR_CHARS + 1);
        assert_eq!(error_text(500, b"  "), "HTTP 500");
    }

    #[test]
    fn page_bodies_carry_only_the_chosen_records() {
        let page = IncomingPage {
            wait_for_import: false,
            listener_id: "l".into(),
            page_id: "p".into(),
            created_at: Some("t".into()),
            records: vec![json!({"id": "a"}), json!({"id": "b"}), json!({"id": "c"})],
        };
        let body: Value = serde_json::from_slice(&page_body(&page, &[0, 2])).unwrap();
        assert_eq!(
            body,
            json!({"type": "page", "version": 1, "listener_id": "l", "page_id": "p", "created_at": "t",
                   "records": [{"id": "a"}, {"id": "c"}]})
        );
    }
}
