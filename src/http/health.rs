//! `GET /healthz` (alive) and `GET /readyz` (listeners loaded, pages being acknowledged by
//! Kafka, and not draining), and the routes of the starting server, which answers while `hookpipe serve` waits for
//! Kafka at start (`App::listen`).

use actix_web::{web, HttpResponse, ResponseError};

use crate::http::api::import_errors::ErrorsView;
use crate::http::state::AppState;
use crate::kafka::availability::Readiness;
use crate::kafka::producer::PublishError;
use crate::pipeline::ingest_error::IngestError;
use crate::shutdown::Draining;

/// Seconds `/readyz` asks to wait when not ready.
const NOT_READY_RETRY_AFTER: &str = "5";

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Ready while the producer's pages are being acknowledged: 503 while every broker is down, while
/// deliveries fail, or while the producer is being replaced — not only "a broker answered" — and
/// 503 once a drain has started (a draining instance still serves, but tells the load balancer
/// to send it nothing new).
pub async fn readyz(state: web::Data<AppState>, draining: Option<web::Data<Draining>>) -> HttpResponse {
    let readiness = state.producer.readiness();
    crate::telemetry::METRICS
        .kafka_ready
        .set(i64::from(readiness.is_ready()));
    let draining = draining.is_some_and(|draining| draining.is_draining());
    let ready = readiness.is_ready() && !draining;
    let mut body = serde_json::json!({
        "status": if ready { "ready" } else { "not ready" },
        "kafka": readiness.as_str(),
        "listeners": state.registry.all().len(),
    });
    if draining {
        body["draining"] = serde_json::Value::Bool(true);
    }
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", NOT_READY_RETRY_AFTER))
            .json(body)
    }
}

/// Prometheus text exposition of every `hookpipe_*` metric.
pub async fn metrics(state: web::Data<AppState>, errors: Option<web::Data<ErrorsView>>) -> HttpResponse {
    let metrics = &crate::telemetry::METRICS;
    if let Some(open) = errors.and_then(|errors| errors.open_count()) {
        metrics.import_errors_open.set(open as i64);
    }
    metrics
        .producer_queue_depth
        .set(i64::from(state.producer.queue_depth()));
    metrics
        .debug_windows_open
        .set(state.registry.open_debug_windows(crate::pipeline::unix_millis_now()) as i64);
    metrics
        .kafka_ready
        .set(i64::from(state.producer.readiness().is_ready()));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}

/// The routes of the starting server: alive, not ready, metrics, and 503 with `Retry-After`
/// for everything else (webhooks and the API), as when Kafka is down later on.
pub fn starting_routes(config: &mut web::ServiceConfig) {
    config
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(starting_readyz))
        .route("/metrics", web::get().to(starting_metrics))
        .default_service(web::to(starting_unavailable));
}

async fn starting_readyz() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header(("Retry-After", NOT_READY_RETRY_AFTER))
        .json(serde_json::json!({ "status": "starting", "kafka": Readiness::BrokersUnreachable.as_str() }))
}

async fn starting_metrics() -> HttpResponse {
    let metrics = &crate::telemetry::METRICS;
    metrics.kafka_ready.set(0);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}

async fn starting_unavailable() -> HttpResponse {
    IngestError::Unavailable(PublishError::Unavailable(Readiness::BrokersUnreachable)).error_response()
}
