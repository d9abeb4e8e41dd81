//! The Receiver's part in waiting for imports (`response.wait = "import"`, README "Wait for
//! import"): register a request before it enters the chain, wait once Kafka acknowledged it,
//! and answer what the import worker made of its records.
//!
//! - every record imported: the listener's success answer, its body template given `results`;
//! - some failed (recorded as import errors) or failed the schema: `failure_status` (unset: 422
//!   when every failure is the target calling the record invalid, or a quarantined record; else
//!   502) with `failure_body` (unset: a JSON body listing the failures);
//! - the timeout first, or the results topic not read: 202 with the request id. The records are
//!   durable either way and keep going; 202 promises exactly that.

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::config::import_wait::{DEFAULT_FAILURE_STATUS, INVALID_FAILURE_STATUS};
use crate::http::state::AppState;
use crate::import_wait::{Registered, Report, WaitOutcome};
use crate::pipeline::ingest_error::IngestError;
use crate::pipeline::listener::Listener;
use crate::pipeline::request_view::{template_headers, template_query};
use crate::pipeline::Accepted;
use crate::telemetry::events::{ImportWaitFinished, TemplateFailed};
use crate::wire::results::RecordResult;

/// Registers the request when its listener waits for its imports, before anything of it is
/// published; refused (503) when `server.max_import_waits` wait already.
pub fn register(state: &AppState, listener: &Listener, request_id: &str) -> Result<Option<Registered>, IngestError> {
    if !listener.config.response.waits_for_import() {
        return Ok(None);
    }
    match state.import_waits.register(request_id.into()) {
        Ok(registered) => Ok(Some(registered)),
        Err(_full) => {
            ImportWaitFinished {
                listener: listener.id(),
                request_id,
                outcome: "refused",
                waited: std::time::Duration::ZERO,
            }
            .emit();
            Err(IngestError::TooManyWaits)
        }
    }
}

/// Waits for the import of an accepted request's records; `None` when there is nothing to wait
/// for (a handshake's answer, a duplicate delivery published nowhere).
pub async fn finish(
    registered: Registered,
    listener: &Listener,
    accepted: &Accepted,
    request_id: &str,
) -> Option<WaitOutcome> {
    if accepted.handshake.is_some() || accepted.duplicate {
        return None;
    }
    let (expected, quarantined) = match accepted.schema {
        Some(counts) => (counts.valid, counts.quarantined),
        None => (accepted.record_count, 0),
    };
    let started = Instant::now();
    let outcome = registered
        .finish(expected, quarantined, listener.config.response.wait_timeout())
        .await;
    ImportWaitFinished {
        listener: listener.id(),
        request_id,
        outcome: outcome.label(),
        waited: started.elapsed(),
    }
    .emit();
    Some(outcome)
}

/// The `results` of a success template: one per record, in order (the first
/// `import_wait::MAX_DETAILED`).
pub fn results_context(report: &Report) -> Value {
    Value::Array(
        report
            .results
            .iter()
            .map(|(index, result)| result_json(*index, result))
            .collect(),
    )
}

fn result_json(index: usize, result: &RecordResult) -> Value {
    json!({
        "id": result.id,
        "index": index,
        "imported": result.imported,
        "status": result.status,
        "error": result.error,
        "target": result.target,
    })
}

/// The answer of a request whose import failed, or did not finish in time.
pub fn unsuccessful_response(
    listener: &Listener,
    request: &HttpRequest,
    accepted: &Accepted,
    request_id: &str,
    outcome: &WaitOutcome,
) -> HttpResponse {
    let report = match outcome {
        WaitOutcome::Failed(report) => report,
        // Durable, not (yet) known imported: accepted for processing.
        WaitOutcome::TimedOut | WaitOutcome::NoResults | WaitOutcome::Imported(_) => {
            return HttpResponse::Accepted().json(json!({"request_id": request_id, "import": "pending"}))
        }
    };
    let options = &listener.config.response;
    let status = options.failure_status.unwrap_or(if report.all_failures_invalid {
        INVALID_FAILURE_STATUS
    } else {
        DEFAULT_FAILURE_STATUS
    });
    let mut response = HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY));
    let failures: Vec<Value> = report
        .failures
        .iter()
        .map(|(index, result)| json!({"id": result.id, "index": index, "status": result.status, "error": result.error}))
        .collect();
    let context = json!({
        "request_id": request_id,
        "record_count": accepted.record_count,
        "imported": report.imported,
        "failed": report.failed,
        "records_quarantined": report.quarantined,
        "failures": failures,
        "results": results_context(report),
        "headers": template_headers(request.headers(), listener.verifier.secret_header()),
        "query": template_query(request.query_string(), listener.verifier.secret_query()),
    });
    match listener.render_failure_body(&context) {
        Some(Ok(body)) => {
            return response
                .content_type(listener.response_content_type.as_str())
                .body(body)
        }
        Some(Err(reason)) => TemplateFailed {
            listener: listener.id(),
            template: "failure_body",
            reason: &reason,
        }
        .emit(),
        None => {}
    }
    response.json(json!({
        "error": "import failed",
        "request_id": request_id,
        "imported": report.imported,
        "failed": report.failed,
        "records_quarantined": report.quarantined,
        "failures": failures,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing;

    fn report(failures: &[(usize, Option<u16>)], imported: usize) -> Report {
        let failures: Vec<(usize, RecordResult)> = failures
            .iter()
            .map(|(index, status)| {
                (
                    *index,
                    RecordResult {
                        id: format!("q-{index}"),
                        imported: false,
                        status: *status,
                        error: Some(format!("HTTP {}: nope", status.unwrap_or(0))),
                        target: None,
                    },
                )
            })
            .collect();
        Report {
            imported,
            failed: failures.len(),
            quarantined: 0,
            all_failures_invalid: failures
                .iter()
                .all(|(_, result)| crate::config::import_wait::says_invalid(result.status)),
            results: failures.clone(),
            failures,
        }
    }

    async fn answer(listener_toml: &str, outcome: &WaitOutcome) -> (u16, String) {
        let listener = testing::listener(listener_toml);
        let request = actix_web::test::TestRequest::post().uri("/hooks/x").to_http_request();
        let accepted = Accepted {
            record_count: 2,
            ..Accepted::default()
        };
        let response = unsuccessful_response(&listener, &request, &accepted, "q", outcome);
        let status = response.status().as_u16();
        let body = actix_web::body::to_bytes(response.into_body()).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    const WAITS: &str = "[listeners.response]\nstatus = 200\nwait = \"import\"\n";

    #[actix::test]
    async fn failures_answer_422_when_the_records_are_invalid_else_502_unless_configured() {
        let invalid = WaitOutcome::Failed(report(&[(1, Some(422))], 1));
        let (status, body) = answer(WAITS, &invalid).await;
        assert_eq!(status, 422);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!({"error": "import failed", "request_id": "q", "imported": 1, "failed": 1,
                   "records_quarantined": 0,
                   "failures": [{"id": "q-1", "index": 1, "status": 422, "error": "HTTP 422: nope"}]})
        );
        let unavailable = WaitOutcome::Failed(report(&[(0, Some(422)), (1, Some(503))], 0));
        assert_eq!(answer(WAITS, &unavailable).await.0, 502);
        let unreachable = WaitOutcome::Failed(report(&[(0, None)], 1));
        assert_eq!(answer(WAITS, &unreachable).await.0, 502);
        let configured = format!("{WAITS}failure_status = 409\n");
        assert_eq!(answer(&configured, &invalid).await.0, 409);
    }

    #[actix::test]
    async fn the_failure_body_template_sees_the_failures_and_a_timeout_is_202_with_the_request_id() {
        let templated = format!(
            "{WAITS}media_type = \"text\"\nfailure_body = '{{{{#each failures}}}}{{{{id}}}}={{{{error}}}};{{{{/each}}}} of {{{{record_count}}}}'\n"
        );
        let outcome = WaitOutcome::Failed(report(&[(0, Some(400)), (1, Some(404))], 0));
        assert_eq!(
            answer(&templated, &outcome).await,
            (422, "q-0=HTTP 400: nope;q-1=HTTP 404: nope; of 2".to_string())
        );
        for pending in [WaitOutcome::TimedOut, WaitOutcome::NoResults] {
            let (status, body) = answer(WAITS, &pending).await;
            assert_eq!(status, 202);
            assert_eq!(
                serde_json::from_str::<Value>(&body).unwrap(),
                json!({"request_id": "q", "import": "pending"})
            );
        }
    }
}
