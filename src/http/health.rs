//! `GET /healthz` (alive) and `GET /readyz` (listeners loaded and Kafka reachable).

use actix_web::{web, HttpResponse};

use crate::http::state::AppState;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Config loaded and Kafka answered a metadata request recently.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let kafka = state.kafka_reachable.load(std::sync::atomic::Ordering::Relaxed);
    let body = serde_json::json!({
        "status": if kafka { "ready" } else { "not ready" },
        "kafka": if kafka { "reachable" } else { "unreachable" },
        "listeners": state.registry.all().len(),
    });
    if kafka {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(body)
    }
}

/// Prometheus text exposition of every `hookpipe_*` metric.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let metrics = &crate::telemetry::METRICS;
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
