//! The OpenAPI 3.1 document of `/api/v1`, derived by `utoipa` from the handlers' `#[utoipa::path]`
//! attributes and the `api_model` types they answer with; served at `/api/v1/openapi.json`
//! (behind the token) and committed as `docs/openapi.json`, which a test keeps equal to it.

use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Object, Ref, ResponseBuilder, Type};
use utoipa::OpenApi;

use super::auth::{authorize, ApiResult};
use crate::api_model::*;
use crate::http::state::AppState;

/// The document's shape: every path of the API and the schemas they name.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "hookpipe management API",
        description = "Listeners, public URLs, secrets, sample data, mock output, debug windows and import \
                       errors. Every call takes `Authorization: Bearer <server.admin_token>`; without a \
                       configured token the API is off (404).",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    servers((url = "/api/v1", description = "This instance")),
    paths(
        super::listeners::list,
        super::listeners::create,
        super::listeners::show,
        super::listeners::replace,
        super::listeners::update,
        super::listeners::delete,
        super::listeners::get_url,
        super::listeners::regenerate_url,
        super::listeners::add_secret,
        super::listeners::retire_secret,
        super::preview::preview,
        super::samples::get_sample,
        super::samples::put_sample,
        super::samples::get_mock,
        super::samples::put_mock,
        super::samples::send_mock,
        super::debug::debug_status,
        super::debug::debug_start,
        super::debug::debug_stop,
        super::debug::debug_logs,
        super::debug::debug_log,
        super::import_errors::list,
        super::import_errors::retry_many,
        super::import_errors::show,
        super::import_errors::retry_one,
        super::import_errors::resolve,
        openapi_json,
    ),
    components(schemas(
        ErrorBody, ListenerView, ListenerList, ListenerInput, ListenerSource, ListenerUrl, SecretInput,
        Sample, RecordsInput, MockOutput, MockSent, DebugStart, DebugWindow, Capture, CaptureList,
        PreviewRequest, PreviewResult, RenderedRecord, ErrorView, ErrorList, ErrorDetail, RetryRequest,
        RetryReport, Refused, RetryOne, Resolved,
    )),
    modifiers(&BearerToken),
    tags(
        (name = "listeners", description = "Listeners, their URLs, secrets and template preview"),
        (name = "samples", description = "Sample data and mock output"),
        (name = "debug", description = "Debug windows and their captures"),
        (name = "errors", description = "Import errors: list, retry, resolve"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// Adds the `bearer` security scheme every operation names.
struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        // Every operation behind the token can also answer 429 (`auth_limit`): said once here.
        let locked_out = ResponseBuilder::new()
            .description(
                "Too many failed authentications from this address lately (server.admin_auth_max_failures): \
                 refused without a look at the token until Retry-After seconds have passed",
            )
            .header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Object::with_type(Type::Integer))
                    .description(Some("Seconds until this address may present a token again"))
                    .build(),
            )
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                if operation.responses.responses.contains_key("401") {
                    operation
                        .responses
                        .responses
                        .insert("429".into(), locked_out.clone().into());
                }
            }
        }
    }
}

/// The document as committed in `docs/openapi.json`: pretty JSON with a final newline, and the
/// crate's version.
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    let mut text = doc.to_pretty_json().expect("the document serializes");
    text.push('\n');
    text
}

#[utoipa::path(get, path = "/openapi.json", operation_id = "getOpenApi", tag = "meta",
    responses((status = 200, description = "This document", content_type = "application/json"),
        (status = 401, description = "Missing or wrong token", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn openapi_json(request: HttpRequest, state: web::Data<AppState>) -> ApiResult {
    authorize(&request, &state)?;
    Ok(HttpResponse::Ok().content_type("application/json").body(document()))
}

#[cfg(test)]
mod tests {
    use super::document;

    const COMMITTED_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");

    /// `docs/openapi.json` is the generated document. To regenerate it after changing the API:
    /// `HOOKPIPE_WRITE_OPENAPI=1 cargo nextest run --lib openapi` (or `scripts/openapi.sh`).
    #[test]
    fn the_committed_document_is_the_generated_one() {
        let generated = document();
        if std::env::var_os("HOOKPIPE_WRITE_OPENAPI").is_some() {
            std::fs::write(COMMITTED_PATH, &generated).expect("docs/openapi.json written");
            return;
        }
        let committed = std::fs::read_to_string(COMMITTED_PATH).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is not the document the code generates; regenerate it with \
             `HOOKPIPE_WRITE_OPENAPI=1 cargo nextest run --lib openapi` and commit it"
        );
    }

    #[test]
    fn every_route_of_the_scope_is_in_the_document() {
        let doc: serde_json::Value = serde_json::from_str(&document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        let source = include_str!("mod.rs").to_string() + include_str!("import_errors.rs");
        let mut routes = 0;
        for route in source.split(".route(").skip(1) {
            let path = route.split('"').nth(1).unwrap();
            let method = route.split("web::").nth(1).unwrap().split("()").next().unwrap();
            routes += 1;
            assert!(
                paths.get(path).and_then(|p| p.get(method)).is_some(),
                "{method} {path} is routed but not in the document"
            );
        }
        assert!(routes >= 25, "found only {routes} routes");
        for (path, operations) in paths {
            for (method, operation) in operations.as_object().unwrap() {
                let statuses = operation["responses"].as_object().unwrap();
                assert!(statuses.contains_key("401"), "{method} {path} documents no 401");
            }
        }
    }
}
