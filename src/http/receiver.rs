//! The Receiver: resolves the listener, bounds the body, hands the request to this HTTP thread's
//! chain and renders the answer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use futures_util::StreamExt;
use tracing::Instrument;

use super::{decode, import_wait};
use crate::http::state::AppState;
use crate::import_wait::{Registered, Report, WaitOutcome};
use crate::pipeline::debug::Capture;
use crate::pipeline::handshake::{Decision, HandshakeAnswer, HandshakeRequest};
use crate::pipeline::ingest_error::IngestError;
use crate::pipeline::listener::Listener;
use crate::pipeline::reply::Reply;
use crate::pipeline::request_view::{template_headers, template_query};
use crate::pipeline::stage::TryForwardError;
use crate::pipeline::verify::ActixHeaders;
use crate::pipeline::{rfc3339_millis, unix_millis_now, Accepted, Chain, Ingest, Webhook};
use crate::redact::{redacted_body, redacted_headers, redacted_query};
use crate::shared_state::{DEBUG_BODY_LIMIT, SAMPLE_BODY_LIMIT, SAMPLE_RECORDS_LIMIT};
use crate::telemetry::events::{
    BodyReceived, DebugCaptureDropped, HandshakeDecided, RefusalCause, RequestFinished, RequestRefused, TemplateFailed,
};
use crate::telemetry::{METRICS, UNKNOWN_LISTENER};

/// Response header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Everything under `/hooks`: POST and PUT ingest, other methods get 405 unless the listener
/// reached accepts them (`content.methods`).
///
/// Routed by hand rather than with path patterns: actix-router matches dynamic segments with a
/// regex engine, which showed up at ~5 % of the CPU of an accepted request.
pub async fn route(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    chain: web::Data<Chain>,
) -> HttpResponse {
    let method = request.method();
    if method != actix_web::http::Method::POST && method != actix_web::http::Method::PUT && !opted_in(&request, &state)
    {
        return method_not_allowed().await;
    }
    ingest(request, payload, state, chain).await
}

/// Whether a method other than POST and PUT reaches a listener that accepts it (or has a
/// handshake rule for it), with the right URL token. Anything else answers 405 as before methods
/// were configurable, so such a request cannot tell a listener's URL from an unknown one.
fn opted_in(request: &HttpRequest, state: &AppState) -> bool {
    let Some((public_id, url_token)) = hook_segments(request.path()) else {
        return false;
    };
    state.registry.get(public_id).is_some_and(|listener| {
        answers_method(&listener, request.method().as_str()) && check_url_token(&listener, url_token).is_ok()
    })
}

/// Whether a request with `method` may reach the listener: a delivery method, or one a handshake
/// rule answers (such a request that is no handshake is a 405 once its body was looked at).
fn answers_method(listener: &Listener, method: &str) -> bool {
    listener.config.content.accepts_method(method) || listener.handshakes.answers_method(method)
}

/// `(public_id, url_token)` of `/hooks/{public_id}` or `/hooks/{public_id}/{url_token}`; an
/// unknown shape yields an empty public id, which no listener has (404).
fn hook_segments(path: &str) -> Option<(&str, Option<&str>)> {
    let rest = path.strip_prefix("/hooks/")?;
    let mut segments = rest.split('/');
    let public_id = segments.next().filter(|s| !s.is_empty())?;
    let token = segments.next();
    if segments.next().is_some() || token == Some("") {
        return None;
    }
    Some((public_id, token))
}

/// `POST|PUT /hooks/{public_id}` and `/hooks/{public_id}/{url_token}`.
pub async fn ingest(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    chain: web::Data<Chain>,
) -> HttpResponse {
    let started = Instant::now();
    let request_id: Arc<str> = crate::pipeline::new_id().into();
    let mut payload = payload;
    let (public_id, url_token) = hook_segments(request.path()).unwrap_or(("", None));
    let listener = state.registry.get(public_id);
    let mut read = ReadSoFar::default();

    let result = match &listener {
        None => Err(IngestError::NotFound),
        Some(listener) => match check_url_token(listener, url_token) {
            Err(error) => Err(error),
            Ok(()) if !answers_method(listener, request.method().as_str()) => Err(method_not_allowed_for(listener)),
            Ok(()) => {
                let listener = listener.clone();
                // Every log line emitted while handling the request carries its id.
                // A debug-level span: free at the default level, where every request-scoped line
                // names its request_id explicitly; at debug, library lines get the id too.
                let span = tracing::debug_span!("request", request_id = %request_id, listener = listener.id());
                let id = request_id.clone();
                handle(&request, &mut payload, &state, &chain, listener, id, &mut read)
                    .instrument(span)
                    .await
            }
        },
    };

    // A listener that waits for its imports: the answer once the worker settled the records.
    let waited = match (&result, read.wait.take(), listener.as_deref()) {
        (Ok(accepted), Some(registered), Some(listener)) => {
            import_wait::finish(registered, listener, accepted, &request_id).await
        }
        _ => None,
    };
    let mut response = match (&result, &waited, listener.as_deref()) {
        (Ok(accepted), Some(WaitOutcome::Imported(report)), _) => {
            success_response(listener.as_deref(), &request, accepted, &request_id, Some(report))
        }
        (Ok(accepted), Some(outcome), Some(listener)) => {
            import_wait::unsuccessful_response(listener, &request, accepted, &request_id, outcome)
        }
        (Ok(accepted), _, _) => success_response(listener.as_deref(), &request, accepted, &request_id, None),
        (Err(error), _, _) => error.error_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        // Made once: `from_static` at run time checks the name on every request.
        static NAME: header::HeaderName = header::HeaderName::from_static(REQUEST_ID_HEADER);
        response.headers_mut().insert(NAME.clone(), value);
    }
    if result.is_err() && read.body.is_none() {
        // A refused request's body may not have been read to its end (413, 408, 503, 404...).
        // Dropped unread, a chunked body is drained by actix to keep the connection: a sender
        // could stream one forever. Still held while the response is sent, it makes actix
        // close the connection after the response instead. A body that was read to its end
        // (`body` is set: 401, 429, 400...) keeps the response plain and the connection alive.
        response = response
            .map_body(|_, body| UnreadBody {
                body,
                _payload: payload,
            })
            .map_into_boxed_body();
    }
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_millis() as u64;
    // Requests to an unknown listener or with a wrong URL token belong to no debug window.
    // Those refused before their body was read (413, 408, 503) are captured without it.
    let reached_listener = listener
        .as_deref()
        .filter(|_| !matches!(result, Err(IngestError::NotFound)));
    if let Some(listener) = reached_listener {
        let handshake = match &result {
            Ok(accepted) if accepted.handshake.is_some() => Some("answered"),
            Err(IngestError::Handshake(_)) => Some("refused"),
            _ => None,
        };
        if let Some(result) = handshake {
            HandshakeDecided {
                listener: listener.id(),
                result,
            }
            .emit();
        }
        after_response(
            &state,
            &request,
            listener,
            &request_id,
            read,
            &result,
            waited.as_ref(),
            status,
            latency_ms,
        );
    }
    request_finished(&request_id, listener.as_deref(), &result, status, latency_ms).emit();
    response
}

/// The 405 of a listener: its delivery methods in `Allow`.
fn method_not_allowed_for(listener: &Listener) -> IngestError {
    IngestError::MethodNotAllowed {
        allow: listener.config.content.methods.join(", "),
    }
}

/// What the Receiver got from a request before handing it to the chain.
#[derive(Default)]
struct ReadSoFar<'a> {
    /// The decoded body, once read to its end.
    body: Option<Bytes>,
    /// Whether a sample was due when the request entered the chain (its records are kept).
    sample_due: bool,
    /// The request's registration, when its listener waits for its imports.
    wait: Option<Registered>,
    /// Ties the borrow of the shared state to the request.
    _state: std::marker::PhantomData<&'a ()>,
}

/// The request's telemetry event, with labels from fixed sets only.
fn request_finished<'a>(
    request_id: &'a str,
    listener: Option<&'a Listener>,
    result: &'a Result<Accepted, IngestError>,
    status: u16,
    latency_ms: u64,
) -> RequestFinished<'a> {
    // A wrong URL token must look like an unknown listener in metrics too.
    let (metrics_listener, counters) = match listener {
        Some(listener) if !matches!(result, Err(IngestError::NotFound)) => (listener.id(), Some(&listener.counters)),
        _ => (UNKNOWN_LISTENER, None),
    };
    RequestFinished {
        request_id,
        listener: listener.map(Listener::id),
        metrics_listener,
        counters,
        status,
        latency_ms,
        result: match result {
            Ok(accepted) => Ok(accepted.record_count),
            Err(error) => Err(RequestRefused {
                outcome: error.outcome(),
                reason: error,
                cause: match error {
                    IngestError::Unauthorized(reason) => RefusalCause::Verification(reason.reason()),
                    IngestError::RateLimited { scope, .. } => RefusalCause::RateLimited(scope),
                    IngestError::Parse(error) => RefusalCause::Parse(error.kind()),
                    _ => RefusalCause::Other,
                },
                load_shed: matches!(error, IngestError::Overloaded),
            }),
        },
    }
}

/// Sample data and debug captures: off the chain, never blocking, only when due.
#[allow(clippy::too_many_arguments)]
fn after_response(
    state: &AppState,
    request: &HttpRequest,
    listener: &Listener,
    request_id: &str,
    read: ReadSoFar<'_>,
    result: &Result<Accepted, IngestError>,
    waited: Option<&WaitOutcome>,
    status: u16,
    latency_ms: u64,
) {
    let now_ms = unix_millis_now();
    let body = &read.body.unwrap_or_default();
    if let (true, Ok(accepted)) = (read.sample_due, result) {
        // The turn is taken only by an accepted request with records: refused requests, forged
        // floods among them, never hold it.
        if let Some(records) = &accepted.records {
            if listener.sample_clock.try_claim(now_ms) {
                state.shared.offer_sample(
                    listener.id(),
                    &sample(request, listener, request_id, body, records, now_ms),
                );
            }
        }
    }
    if state.registry.debug_window(listener.id(), now_ms).is_some() {
        let capture = capture(
            request,
            listener,
            request_id,
            body,
            result,
            capture_outcome(result, waited),
            status,
            latency_ms,
            now_ms,
            &state.shared.instance,
        );
        if state.debug.try_send(Capture(capture)).is_err() {
            DebugCaptureDropped.emit();
        }
    }
}

fn sample(
    request: &HttpRequest,
    listener: &Listener,
    request_id: &str,
    body: &Bytes,
    records: &[crate::pipeline::parse::records::Record],
    now_ms: i64,
) -> serde_json::Value {
    // "Do not store retry data" keeps the raw body out of Kafka; parsed records are the sample.
    let raw = (!listener.config.do_not_store_retry_data)
        .then(|| truncated_text(&redacted_body(body, listener), SAMPLE_BODY_LIMIT));
    serde_json::json!({
        "source": "webhook",
        "listener_id": listener.id(),
        "received_at": rfc3339_millis(now_ms),
        "request_id": request_id,
        "content_type": request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        "headers": redacted_headers(request.headers(), listener.verifier.secret_header()),
        "records": records.iter().take(SAMPLE_RECORDS_LIMIT).collect::<Vec<_>>(),
        "records_total": records.len(),
        "body": raw.as_ref().map(|(text, _)| text),
        "body_truncated": raw.is_some_and(|(_, truncated)| truncated),
    })
}

#[allow(clippy::too_many_arguments)]
fn capture(
    request: &HttpRequest,
    listener: &Listener,
    request_id: &str,
    body: &Bytes,
    result: &Result<Accepted, IngestError>,
    outcome: &str,
    status: u16,
    latency_ms: u64,
    now_ms: i64,
    instance: &str,
) -> serde_json::Value {
    let handshake = result.as_ref().ok().and_then(|accepted| accepted.handshake.as_ref());
    let verification = match result {
        _ if listener.verifier.kind() == "none" => "not configured".to_string(),
        // Answered by a rule before verification: an unsigned challenge, nothing published.
        Ok(_) if handshake.is_some_and(|answer| !answer.verified) => "not reached".to_string(),
        Err(IngestError::Unauthorized(reason)) => format!("failed: {}", reason.reason()),
        Err(IngestError::NotFound) => "failed: url token".to_string(),
        Ok(_) | Err(IngestError::RateLimited { .. } | IngestError::Parse(_) | IngestError::Schema(_)) => {
            "passed".to_string()
        }
        Err(_) => "not reached".to_string(),
    };
    // The secret-URL token is the last path segment: never stored.
    let path = if hook_segments(request.path()).is_some_and(|(_, token)| token.is_some()) {
        format!("/hooks/{}/[redacted]", listener.public_id)
    } else {
        request.path().to_string()
    };
    let mut query = redacted_query(request.query_string(), listener.verifier.secret_query());
    // A handshake's token (Meta's `hub.verify_token`) is a secret as much as the verifier's.
    for param in listener.handshakes.secret_query_params() {
        query = redacted_query(&query, Some(param));
    }
    let mut headers = redacted_headers(request.headers(), listener.verifier.secret_header());
    for name in listener.handshakes.secret_headers() {
        if let Some(value) = headers.get_mut(name.to_ascii_lowercase().as_str()) {
            *value = "[redacted]".into();
        }
    }
    let (text, truncated) = truncated_text(&redacted_body(body, listener), DEBUG_BODY_LIMIT);
    serde_json::json!({
        "time": rfc3339_millis(now_ms),
        "instance": instance,
        "listener_id": listener.id(),
        "request_id": request_id,
        "method": request.method().as_str(),
        "path": path,
        "query": query,
        "headers": headers,
        "body": text,
        "body_truncated": truncated,
        "verification": verification,
        "handshake": handshake.map(|answer| answer.rule.as_str()),
        "status": status,
        "outcome": outcome,
        "latency_ms": latency_ms,
    })
}

/// A debug capture's `outcome`: the refusal's, or for an accepted request of a listener that
/// waits for its import what the wait came to (a 422/502 is no "accepted").
fn capture_outcome(result: &Result<Accepted, IngestError>, waited: Option<&WaitOutcome>) -> &'static str {
    match (result, waited) {
        (Err(error), _) => error.outcome(),
        (Ok(_), None) => "accepted",
        (Ok(_), Some(WaitOutcome::Imported(_))) => "imported",
        (Ok(_), Some(WaitOutcome::Failed(_))) => "import_failed",
        (Ok(_), Some(WaitOutcome::TimedOut | WaitOutcome::NoResults)) => "import_pending",
    }
}

/// UTF-8 text of at most `limit` bytes (lossy), and whether it was cut.
fn truncated_text(body: &[u8], limit: usize) -> (String, bool) {
    let cut = body.len() > limit;
    (
        String::from_utf8_lossy(&body[..body.len().min(limit)]).into_owned(),
        cut,
    )
}

/// Wrong or missing tokens answer exactly like an unknown listener.
fn check_url_token(listener: &Listener, url_token: Option<&str>) -> Result<(), IngestError> {
    let uses_token = listener.verifier.uses_url_token();
    match url_token {
        Some(token) if uses_token && listener.verifier.check_url_token(token) => Ok(()),
        None if !uses_token => Ok(()),
        _ => Err(IngestError::NotFound),
    }
}

/// A response body that keeps the request's body stream alive until the response is sent:
/// actix decides whether to drain an unread request body or close the connection when the
/// response body ends, and closes it only if the request body is still held.
struct UnreadBody {
    body: actix_web::body::BoxBody,
    _payload: web::Payload,
}

impl actix_web::body::MessageBody for UnreadBody {
    type Error = <actix_web::body::BoxBody as actix_web::body::MessageBody>::Error;

    fn size(&self) -> actix_web::body::BodySize {
        self.body.size()
    }

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Bytes, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// A slot of a capped count (bodies being read, requests in flight), given back when the
/// request ends or moves on, however it does.
struct Slot<'a> {
    count: &'a AtomicUsize,
    gauge: Option<&'a prometheus::IntGauge>,
}

impl<'a> Slot<'a> {
    /// A slot, or `Overloaded` when all `max` are taken.
    fn take(
        count: &'a AtomicUsize,
        max: usize,
        gauge: Option<&'a prometheus::IntGauge>,
    ) -> Result<Slot<'a>, IngestError> {
        if count.fetch_add(1, Ordering::Relaxed) >= max {
            count.fetch_sub(1, Ordering::Relaxed);
            return Err(IngestError::Overloaded);
        }
        if let Some(gauge) = gauge {
            gauge.inc();
        }
        Ok(Slot { count, gauge })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
        if let Some(gauge) = self.gauge {
            gauge.dec();
        }
    }
}

async fn handle<'a>(
    request: &HttpRequest,
    payload: &mut web::Payload,
    state: &'a AppState,
    chain: &Chain,
    listener: Arc<Listener>,
    request_id: Arc<str>,
    read: &mut ReadSoFar<'a>,
) -> Result<Accepted, IngestError> {
    // Reading the body takes a reader's slot, not one of the requests in flight: senders that
    // dribble their bodies (a slowloris) cannot shed those whose body has arrived.
    let reading = Slot::take(&state.reading, state.max_reading, None)?;
    let content_encoding = request
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|value| value.to_str().unwrap_or("(not text)"));
    let encoding = decode::encoding_of(content_encoding).map_err(decode_error(listener.max_body_bytes))?;
    let body = read_body(
        request.headers(),
        payload,
        listener.max_body_bytes,
        state.body_read_timeout,
    )
    .await?;
    // Signatures are checked over the decoded body: what senders sign is the payload, and
    // compression is a transport detail applied after signing.
    let body =
        decode::decode(body, encoding, listener.max_body_bytes).map_err(decode_error(listener.max_body_bytes))?;
    let _in_flight = Slot::take(&state.in_flight, state.max_in_flight, Some(&METRICS.in_flight))?;
    drop(reading);
    BodyReceived {
        listener: listener.id(),
        bytes: body.len(),
        counters: &listener.counters,
    }
    .emit();
    read.body = Some(body.clone());
    // A promise of the tokens, not a take: while a bucket's free tokens are all promised to
    // requests being verified, this one is refused before verification costs anything.
    let reservation = chain.rate_limiter.reserve(&listener)?;
    let mut answer_once_verified = false;
    let mut handshake = None;
    match decide_handshake(request, &listener, &body) {
        Decision::Refused(refusal) => return Err(IngestError::Handshake(refusal)),
        // An unsigned challenge: answered here, never published (validation sees to it).
        Decision::Handshake(unverified) if !unverified.verified => {
            return Ok(Accepted {
                handshake: Some(unverified.answer),
                ..Accepted::default()
            })
        }
        // A signed one goes through verification like any delivery; answered only if it passes.
        Decision::Handshake(signed) => {
            answer_once_verified = !signed.publish;
            handshake = Some(signed.answer);
        }
        Decision::Delivery if !listener.config.content.accepts_method(request.method().as_str()) => {
            return Err(method_not_allowed_for(&listener));
        }
        Decision::Delivery => {}
    }
    // A load, not a claim: records are kept only while a sample is due.
    read.sample_due = listener.sample_clock.is_due(unix_millis_now());
    if handshake.is_none() {
        // Before anything is published: a result however fast finds the request waiting.
        read.wait = import_wait::register(state, &listener, &request_id)?;
    }
    let (reply, awaited) = Reply::new();
    let message = Ingest {
        webhook: webhook(request, state, listener, request_id, body, false),
        delivery_id: None,
        keep_records: read.sample_due,
        reservation: Some(reservation),
        answer_once_verified,
        reply,
    };
    // Whichever stage decides the request answers its reply; a full first mailbox sheds load.
    let answer = async {
        if let Err(TryForwardError::Full(message)) = chain.entry.try_forward(message).await {
            message.reply.refuse(IngestError::Overloaded);
        }
        awaited.outcome().await
    };
    let outcome = tokio::time::timeout(state.request_timeout, answer)
        .await
        .unwrap_or(Err(IngestError::Deadline));
    outcome.map(|accepted| Accepted { handshake, ..accepted })
}

/// What the listener's handshake rules make of the request (a delivery when it has none).
fn decide_handshake(request: &HttpRequest, listener: &Listener, body: &[u8]) -> Decision {
    if listener.handshakes.is_empty() {
        return Decision::Delivery;
    }
    listener.handshakes.decide(&HandshakeRequest {
        method: request.method().as_str(),
        query: request.query_string(),
        headers: &ActixHeaders(request.headers()),
        body,
    })
}

fn decode_error(limit: usize) -> impl Fn(decode::DecodeError) -> IngestError {
    move |error| match error {
        decode::DecodeError::Unsupported(encoding) => IngestError::UnsupportedEncoding(encoding),
        decode::DecodeError::TooLarge => IngestError::BodyTooLarge { limit },
        decode::DecodeError::Corrupt => IngestError::CorruptEncoding,
    }
}

/// A request as the chain sees it.
pub fn webhook(
    request: &HttpRequest,
    state: &AppState,
    listener: Arc<Listener>,
    request_id: Arc<str>,
    body: Bytes,
    mock: bool,
) -> Webhook {
    let query = request.query_string().to_string();
    let mut url = format!("{}{}", state.external_base_url, request.path());
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query);
    }
    Webhook {
        request_id,
        listener,
        method: request.method().as_str().to_string(),
        url,
        query,
        headers: request.headers().clone(),
        body,
        received_at_ms: unix_millis_now(),
        mock,
    }
}

/// Reads the body up to `limit` bytes within `deadline`.
async fn read_body(
    headers: &HeaderMap,
    payload: &mut web::Payload,
    limit: usize,
    deadline: Duration,
) -> Result<Bytes, IngestError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(IngestError::BodyTooLarge { limit });
    }
    let read = async {
        let mut body = BytesMut::with_capacity(declared.map_or(8 * 1024, |length| length as usize));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| IngestError::BodyIncomplete)?;
            if body.len() + chunk.len() > limit {
                return Err(IngestError::BodyTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    tokio::time::timeout(deadline, read)
        .await
        .map_err(|_| IngestError::BodyTimeout)?
}

/// Marks the success answer of a delivery deduplicated away (`dedup`).
const DUPLICATE_HEADER: &str = "x-hookpipe-duplicate";

fn success_response(
    listener: Option<&Listener>,
    request: &HttpRequest,
    accepted: &Accepted,
    request_id: &str,
    import: Option<&Report>,
) -> HttpResponse {
    let Some(listener) = listener else {
        return HttpResponse::NoContent().finish();
    };
    if let Some(answer) = &accepted.handshake {
        return handshake_response(answer);
    }
    let status = StatusCode::from_u16(listener.config.response.status).unwrap_or(StatusCode::NO_CONTENT);
    let mut response = HttpResponse::build(status);
    if accepted.duplicate {
        // The success answer the first delivery got, marked: nothing was published for this one.
        response.insert_header((DUPLICATE_HEADER, "true"));
    }
    if !listener.has_response_body() || status == StatusCode::NO_CONTENT {
        return response.finish();
    }
    let mut context = serde_json::json!({
        "request_id": request_id,
        "record_count": accepted.record_count,
        "records": accepted.records,
        "duplicate": accepted.duplicate,
        // Listeners with a schema: how many records went to the pages and to the quarantine.
        "records_valid": accepted.schema.map(|counts| counts.valid),
        "records_quarantined": accepted.schema.map(|counts| counts.quarantined),
        "headers": template_headers(request.headers(), listener.verifier.secret_header()),
        "query": template_query(request.query_string(), listener.verifier.secret_query()),
    });
    if let Some(report) = import {
        // Waited for the import: what the target answered for each record.
        context["results"] = import_wait::results_context(report);
        context["imported"] = report.imported.into();
    }
    match listener.render_response_body(&context) {
        Ok(body) => response
            .content_type(listener.response_content_type.as_str())
            .body(body),
        Err(reason) => {
            // The records are already acknowledged: answer success, without the body (strict or
            // not: refusing now would tell the sender to resend data that is stored).
            TemplateFailed {
                listener: listener.id(),
                template: "response_body",
                reason: &reason,
            }
            .emit();
            response.finish()
        }
    }
}

/// A handshake's answer. Its header values were checked when it was rendered (visible ASCII),
/// its names when the rule was loaded.
fn handshake_response(answer: &HandshakeAnswer) -> HttpResponse {
    let mut response = HttpResponse::build(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK));
    for (name, value) in &answer.headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.insert_header((name, value));
        }
    }
    match &answer.body {
        Some(body) => response.body(body.clone()),
        None => response.finish(),
    }
}

/// Answer for methods other than POST and PUT on an ingest path.
pub async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST, PUT"))
        .json(serde_json::json!({ "error": "method not allowed; use POST or PUT" }))
}

#[cfg(test)]
mod tests {
    use super::{hook_segments, template_headers, template_query};

    #[test]
    fn a_capture_says_what_a_wait_for_the_import_came_to() {
        use super::capture_outcome;
        use crate::import_wait::{Report, WaitOutcome};
        use crate::pipeline::ingest_error::IngestError;
        use crate::pipeline::Accepted;
        let report = Report {
            imported: 0,
            failed: 1,
            quarantined: 0,
            all_failures_invalid: true,
            results: Vec::new(),
            failures: Vec::new(),
        };
        let accepted = Ok(Accepted::default());
        assert_eq!(capture_outcome(&accepted, None), "accepted");
        assert_eq!(
            capture_outcome(&accepted, Some(&WaitOutcome::Failed(report.clone()))),
            "import_failed"
        );
        assert_eq!(
            capture_outcome(&accepted, Some(&WaitOutcome::Imported(report))),
            "imported"
        );
        assert_eq!(
            capture_outcome(&accepted, Some(&WaitOutcome::TimedOut)),
            "import_pending"
        );
        assert_eq!(
            capture_outcome(&accepted, Some(&WaitOutcome::NoResults)),
            "import_pending"
        );
        assert_eq!(
            capture_outcome(&Err(IngestError::TooManyWaits), None),
            "import_waits_full"
        );
    }

    #[test]
    fn response_templates_never_see_the_listener_token() {
        let query = template_query("a=1&token=s3cr3t&%74oken=s3cr3t&b=x%20y", Some("token"));
        assert_eq!(
            serde_json::Value::Object(query),
            serde_json::json!({"a": "1", "b": "x y"})
        );
        let mut headers = actix_web::http::header::HeaderMap::new();
        for (name, value) in [
            ("x-token", "s3cr3t"),
            ("authorization", "Bearer s3cr3t"),
            ("x-shop", "s1"),
        ] {
            headers.insert(
                actix_web::http::header::HeaderName::from_static(name),
                actix_web::http::header::HeaderValue::from_static(value),
            );
        }
        let headers = template_headers(&headers, Some("X-Token"));
        assert_eq!(serde_json::Value::Object(headers), serde_json::json!({"x-shop": "s1"}));
    }

    #[test]
    fn hook_paths_split_into_public_id_and_token() {
        assert_eq!(hook_segments("/hooks/abc"), Some(("abc", None)));
        assert_eq!(hook_segments("/hooks/abc/tok"), Some(("abc", Some("tok"))));
        for bad in [
            "/hooks/",
            "/hooks",
            "/hooks//tok",
            "/hooks/abc/",
            "/hooks/abc/tok/x",
            "/other/abc",
        ] {
            assert_eq!(hook_segments(bad), None, "{bad}");
        }
    }
}
