//! `POST /api/v1/listeners/{id}/preview`: renders trace key, data URI and response body
//! templates — as being edited, or as saved — over the listener's sample data, with the same
//! template registry and helpers ingestion uses. Nothing is saved.

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::auth::{authorize, parse_body, ApiResult};
use super::listeners::listener_of;
use super::samples::sample_of;
use crate::api_model::{ErrorBody, PreviewRequest, PreviewResult, RenderedRecord};
use crate::http::state::AppState;
use crate::templates::TemplateSet;

/// Records rendered at most (the console shows the first ones).
const PREVIEW_RECORDS: usize = 20;

const TRACE_KEY: &str = "trace_key";
const DATA_URI: &str = "data_uri";
const RESPONSE_BODY: &str = "response_body";

/// The template to preview: the one given (`""`: none), else the saved one.
fn chosen(given: &Option<String>, saved: &Option<String>) -> Option<String> {
    match given {
        Some(text) if text.is_empty() => None,
        Some(text) => Some(text.clone()),
        None => saved.clone(),
    }
}

/// Renders `name` when the set has it: `(text, error)`.
fn rendered(set: &TemplateSet, name: &str, data: &Value) -> (Option<String>, Option<String>) {
    if !set.has(name) {
        return (None, None);
    }
    match set.render(name, data) {
        Ok(text) => (Some(text), None),
        Err(reason) => (None, Some(reason)),
    }
}

/// Renders the templates over the records (and, for the body, the request context a sender's
/// success answer is rendered over).
pub fn preview_templates(
    input: &PreviewRequest,
    saved: &crate::config::listener::ListenerConfig,
    records_from: &str,
    records: &[Value],
    headers: &Value,
) -> PreviewResult {
    let strict = input.strict_templates.unwrap_or(saved.strict_templates);
    let mut set = TemplateSet::new(strict);
    let mut invalid = Vec::new();
    for (name, field, source) in [
        (
            TRACE_KEY,
            "trace_key_template",
            chosen(&input.trace_key_template, &saved.trace_key_template),
        ),
        (
            DATA_URI,
            "data_uri_template",
            chosen(&input.data_uri_template, &saved.data_uri_template),
        ),
        (
            RESPONSE_BODY,
            "response_body",
            chosen(&input.response_body, &saved.response.body),
        ),
    ] {
        if let Some(source) = source {
            if let Err(error) = set.add(name, &source) {
                invalid.push(ErrorBody {
                    error,
                    field: Some(field.into()),
                });
            }
        }
    }
    let rendered_records = records
        .iter()
        .take(PREVIEW_RECORDS)
        .enumerate()
        .map(|(index, record)| {
            let (trace_key, trace_key_error) = rendered(&set, TRACE_KEY, record);
            let (data_uri, data_uri_error) = rendered(&set, DATA_URI, record);
            RenderedRecord {
                index: index as u64,
                trace_key,
                trace_key_error,
                data_uri,
                data_uri_error,
            }
        })
        .collect();
    let context = json!({
        "request_id": "preview",
        "record_count": records.len(),
        "records": records,
        "headers": headers,
        "query": {},
    });
    let (response_body, response_body_error) = if records.is_empty() {
        (None, None)
    } else {
        rendered(&set, RESPONSE_BODY, &context)
    };
    PreviewResult {
        records_from: records_from.into(),
        records: rendered_records,
        response_body,
        response_body_error,
        invalid,
    }
}

#[utoipa::path(post, path = "/listeners/{id}/preview", operation_id = "previewTemplates", tag = "listeners",
    params(("id" = String, Path, description = "Listener id", example = "orders")), request_body = PreviewRequest,
    responses((status = 200, description = "What the templates give over the sample (templates that do not compile are in `invalid`)", body = PreviewResult),
        (status = 400, description = "Not a preview request", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "Unknown listener", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn preview(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Bytes,
) -> ApiResult {
    authorize(&request, &state)?;
    let listener = listener_of(&state, &path)?;
    let input: PreviewRequest = parse_body(&body)?;
    let empty = json!({});
    let sample = sample_of(&state, &path);
    let (from, records, headers) = match (&input.records, &sample) {
        (Some(records), _) => ("request", records.as_slice(), &empty),
        (None, Some(sample)) => ("sample", sample.records.as_slice(), &sample.headers),
        (None, None) => ("none", &[][..], &empty),
    };
    Ok(HttpResponse::Ok().json(preview_templates(&input, &listener.config, from, records, headers)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::listener::ListenerConfig;

    fn saved() -> ListenerConfig {
        serde_json::from_value(json!({"id": "orders", "trace_key_template": "{{order_id}}"})).unwrap()
    }

    #[test]
    fn renders_edited_templates_over_the_records_with_the_crates_helpers() {
        let input = PreviewRequest {
            data_uri_template: Some("https://shop/{{lowercase sku}}".into()),
            response_body: Some(r#"{"got": {{record_count}}}"#.into()),
            ..PreviewRequest::default()
        };
        let records = [json!({"order_id": "A-1", "sku": "XY"}), json!({"order_id": "A-2"})];
        let result = preview_templates(&input, &saved(), "sample", &records, &json!({}));
        assert_eq!(result.records_from, "sample");
        assert!(result.invalid.is_empty(), "{:?}", result.invalid);
        assert_eq!(
            result.records[0].trace_key.as_deref(),
            Some("A-1"),
            "the saved trace key template"
        );
        assert_eq!(result.records[0].data_uri.as_deref(), Some("https://shop/xy"));
        assert_eq!(
            result.records[1].data_uri.as_deref(),
            Some("https://shop/"),
            "lenient: empty"
        );
        assert_eq!(result.response_body.as_deref(), Some(r#"{"got": 2}"#));
    }

    #[test]
    fn strict_mode_and_bad_templates_are_reported_per_field() {
        let input = PreviewRequest {
            trace_key_template: Some("{{missing}}".into()),
            data_uri_template: Some("{{nosuchhelper a}}".into()),
            strict_templates: Some(true),
            ..PreviewRequest::default()
        };
        let result = preview_templates(&input, &saved(), "request", &[json!({"a": 1})], &json!({}));
        assert_eq!(result.invalid.len(), 1);
        assert_eq!(result.invalid[0].field.as_deref(), Some("data_uri_template"));
        assert!(
            result.invalid[0].error.contains("unknown helper"),
            "{:?}",
            result.invalid
        );
        assert_eq!(result.records[0].trace_key, None);
        assert!(
            result.records[0].trace_key_error.is_some(),
            "strict: a missing field fails"
        );
    }

    #[test]
    fn an_empty_template_previews_none_and_no_records_render_nothing() {
        let input = PreviewRequest {
            trace_key_template: Some(String::new()),
            ..PreviewRequest::default()
        };
        let result = preview_templates(&input, &saved(), "request", &[json!({"order_id": "1"})], &json!({}));
        assert_eq!(result.records[0].trace_key, None);
        assert_eq!(result.records[0].trace_key_error, None);
        let result = preview_templates(&PreviewRequest::default(), &saved(), "none", &[], &json!({}));
        assert!(result.records.is_empty());
        assert_eq!(result.response_body, None);
    }
}
