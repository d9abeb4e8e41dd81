//! `GET /healthz` (alive) and `GET /readyz` (listeners loaded and Kafka reachable).

use actix_web::{web, HttpResponse};

use super::AppState;

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
