//! `GET /healthz` (alive) and `GET /readyz` (listeners loaded, Kafka reachable, not draining).

use actix_web::{web, HttpResponse};

use crate::http::api::import_errors::ErrorsView;
use crate::http::state::AppState;
use crate::shutdown::Draining;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Config loaded and Kafka answered a metadata request recently, and no drain has started (a
/// draining instance still serves, but tells the load balancer to send it nothing new).
pub async fn readyz(state: web::Data<AppState>, draining: Option<web::Data<Draining>>) -> HttpResponse {
    let kafka = state.kafka_reachable.load(std::sync::atomic::Ordering::Relaxed);
    let draining = draining.is_some_and(|draining| draining.is_draining());
    let ready = kafka && !draining;
    let mut body = serde_json::json!({
        "status": if ready { "ready" } else { "not ready" },
        "kafka": if kafka { "reachable" } else { "unreachable" },
        "listeners": state.registry.all().len(),
    });
    if draining {
        body["draining"] = serde_json::Value::Bool(true);
    }
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
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
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}
