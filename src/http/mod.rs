//! The HTTP side: the route table, the handlers and the state they share. The server itself
//! is built by `crate::app::App::build`.

pub mod api;
pub mod console;
pub mod decode;
pub mod health;
pub mod import_wait;
pub mod receiver;
pub mod state;

use actix_web::web;

/// Every route hookpipe serves, registered on each HTTP thread's `actix_web::App` by
/// `App::build`: webhooks under `/hooks`, health and metrics, the console and the management API.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .service(web::scope("/hooks").default_service(web::to(receiver::route)))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .configure(console::routes)
        .service(api::scope());
}
