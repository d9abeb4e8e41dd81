//! ParseActor: turns the raw body into records by content type.

pub mod charset;
pub mod csv;
pub mod error;
pub mod form;
mod header_params;
pub mod json;
mod json_scan;
pub mod limits;
pub mod multipart;
pub mod ndjson;
pub mod query;
pub mod record;
pub mod records;
pub mod xml;
mod xml_scan;
mod xml_tree;

use actix::prelude::*;
use actix_web::http::header::CONTENT_TYPE;

use crate::config::body_format::BodyFormat;
use crate::pipeline::ingest_error::IngestError;
use crate::pipeline::page::Paginate;
use crate::pipeline::request_view::RequestView;
use crate::pipeline::schema::{self, Checked, SchemaCounts};
use crate::pipeline::{Accepted, Admitted, Ingest, Stage};
use error::ParseError;
use limits::ParseLimits;
use record::Record;
use records::{detect_media_type, parse_detected};

/// The parse stage: refuses bodies that do not parse, answers requests without records, forwards
/// the records of the others to be paged.
pub struct ParseActor {
    next: Stage<Paginate>,
    limits: ParseLimits,
}

impl ParseActor {
    /// A parse stage forwarding to `next`.
    pub fn new(next: Stage<Paginate>, limits: ParseLimits) -> ParseActor {
        ParseActor { next, limits }
    }
}

impl Actor for ParseActor {
    type Context = Context<Self>;
}

impl Handler<Admitted<Ingest>> for ParseActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, admitted: Admitted<Ingest>, _ctx: &mut Context<Self>) -> Self::Result {
        let message = admitted.into_message();
        let records = match parse(&message, &self.limits) {
            Ok(records) => records,
            Err(error) => {
                message.reply.refuse(IngestError::Parse(error));
                return Box::pin(async {});
            }
        };
        let Ingest {
            webhook,
            delivery_id,
            keep_records,
            reservation: _,
            answer_once_verified: _,
            reply,
        } = message;
        let record_count = records.len();
        let kept = (keep_records || webhook.listener.has_response_body()).then(|| records.clone());
        // Only a listener with a schema validates: the others pay one branch.
        let checked = match &webhook.listener.schema {
            None => Checked {
                valid: records,
                ..Checked::default()
            },
            Some(listener_schema) => match schema::check(listener_schema, webhook.listener.id(), records) {
                Ok(checked) => checked,
                Err(rejection) => {
                    reply.refuse(IngestError::Schema(rejection));
                    return Box::pin(async {});
                }
            },
        };
        let accepted = Accepted {
            record_count,
            records: kept,
            handshake: None,
            schema: webhook.listener.schema.as_ref().map(|_| SchemaCounts {
                valid: checked.valid.len(),
                quarantined: checked.quarantined.len(),
            }),
            duplicate: false,
        };
        if record_count == 0 {
            // Nothing to make durable: accepted as it is.
            reply.accept(accepted);
            return Box::pin(async {});
        }
        let next = self.next.clone();
        // Only a listener whose CloudEvents type has a template looks at the request's headers
        // (a listener publishing pages pays one branch).
        let listener = &webhook.listener;
        let request = (listener.events.is_some() && listener.has_event_type_template())
            .then(|| Box::new(RequestView::of(&webhook)));
        let paginate = Paginate {
            listener: webhook.listener,
            request_id: webhook.request_id,
            received_at_ms: webhook.received_at_ms,
            delivery_id,
            mock: webhook.mock,
            records: checked.valid,
            indexes: checked.indexes,
            quarantined: checked.quarantined,
            request,
            accepted,
            reply,
        };
        // A stopped next stage drops the message, and its reply answers 503.
        Box::pin(async move {
            let _ = next.forward(paginate).await;
        })
    }
}

/// The body's records, refusing a `Content-Type` the listener does not accept before parsing.
/// The format is detected once, here, and handed to the parser. A request without a body, to a
/// listener that accepts `query`, has its query string as its record.
fn parse(message: &Ingest, limits: &ParseLimits) -> Result<Vec<Record>, ParseError> {
    let webhook = &message.webhook;
    let listener = &webhook.listener;
    if webhook.body.is_empty() && listener.accept.contains(&BodyFormat::Query) {
        return query::parse_query(
            &webhook.query,
            listener.verifier.secret_query(),
            listener.resource_path.as_ref(),
            limits,
        );
    }
    let content_type = webhook
        .headers
        .get(CONTENT_TYPE)
        .map(|value| {
            value
                .to_str()
                .map_err(|_| ParseError::UnsupportedMediaType { found: None })
        })
        .transpose()?;
    let media = detect_media_type(content_type)?;
    if !listener.accept.contains(&media.format) {
        return Err(ParseError::UnsupportedMediaType {
            found: content_type.map(str::to_string),
        });
    }
    parse_detected(
        &webhook.body,
        &media,
        listener.resource_path.as_ref(),
        limits,
        &listener.config.content,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::stage::probe::{probe, Probe};
    use crate::pipeline::testing::{ingest, ingest_typed, listener};

    fn stage() -> (Stage<Ingest>, Probe<Paginate>) {
        let (next, probe) = probe();
        (
            Stage::start("parse", 4, ParseActor::new(next, ParseLimits::default())),
            probe,
        )
    }

    #[actix::test]
    async fn records_go_to_the_page_stage_with_the_reply() {
        let (stage, probe) = stage();
        let listener = listener("");
        let (mut message, mut awaited) = ingest(&listener, &[], br#"[{"a":1},{"a":2}]"#);
        message.keep_records = true;
        message.delivery_id = Some("d-1".into());
        stage.forward(message).await.unwrap();
        let mut arrived = probe.drain();
        assert_eq!(arrived.len(), 1);
        let paginate = arrived.remove(0);
        assert_eq!(paginate.records.len(), 2);
        assert_eq!(paginate.records[1].json(), r#"{"a":2}"#);
        assert_eq!(paginate.delivery_id.as_deref(), Some("d-1"));
        assert_eq!(paginate.accepted.record_count, 2);
        assert_eq!(
            paginate.accepted.records.as_ref().map(Vec::len),
            Some(2),
            "kept for the sample"
        );
        assert!(awaited.try_outcome().is_none(), "the page stage answers");
        paginate.reply.accept(paginate.accepted);
        assert_eq!(awaited.outcome().await.unwrap().record_count, 2);
    }

    #[actix::test]
    async fn a_body_without_records_is_answered_here() {
        let (stage, probe) = stage();
        let (message, awaited) = ingest(&listener(""), &[], b"[]");
        stage.forward(message).await.unwrap();
        let accepted = awaited.outcome().await.unwrap();
        assert_eq!(accepted.record_count, 0);
        assert!(probe.drain().is_empty());
    }

    #[actix::test]
    async fn bad_bodies_and_unaccepted_types_are_refused_here() {
        let (stage, probe) = stage();
        let json_only = listener("[listeners.content]\naccept = [\"json\"]\n");
        let cases: [(Option<&str>, &[u8], u16); 4] = [
            (Some("application/json"), b"{oops", 400),
            (Some("text/plain"), b"x", 415),
            (None, b"{}", 415),
            (Some("application/xml"), b"<a/>", 415),
        ];
        for (content_type, body, status) in cases {
            let (message, awaited) = ingest_typed(&json_only, content_type, &[], body);
            stage.forward(message).await.unwrap();
            match awaited.outcome().await {
                Err(IngestError::Parse(error)) => assert_eq!(error.status(), status, "{content_type:?}: {error}"),
                other => panic!("{content_type:?}: {other:?}"),
            }
        }
        assert!(probe.drain().is_empty());
    }

    const ORDER_SCHEMA: &str = "[listeners.schema.document]\ntype = \"object\"\nrequired = [\"id\"]\n\
         [listeners.schema.document.properties.qty]\ntype = \"integer\"\n";

    #[actix::test]
    async fn a_reject_schema_refuses_the_request_with_422_before_any_page() {
        let (stage, probe) = stage();
        let listener = listener(ORDER_SCHEMA);
        let (message, awaited) = ingest(&listener, &[], br#"[{"id":1,"qty":1},{"id":2,"qty":"2"}]"#);
        stage.forward(message).await.unwrap();
        match awaited.outcome().await {
            Err(IngestError::Schema(rejection)) => {
                assert_eq!((rejection.record, rejection.instance_path.as_str()), (1, "/qty"));
                use actix_web::ResponseError;
                assert_eq!(IngestError::Schema(rejection).status_code(), 422);
            }
            other => panic!("{other:?}"),
        }
        assert!(probe.drain().is_empty(), "nothing paged");
    }

    #[actix::test]
    async fn a_quarantine_schema_checks_xml_and_form_records_as_their_json() {
        let (stage, probe) = stage();
        let toml =
            format!("resource_path = \"orders.order\"\n{ORDER_SCHEMA}[listeners.schema]\npolicy = \"quarantine\"\n");
        let xml_listener = listener(&toml);
        // XML text becomes JSON strings: `qty` is "2", not 2, so only the order without it passes.
        let xml = b"<orders><order><id>1</id></order><order><id>2</id><qty>2</qty></order><order><qty>3</qty></order></orders>";
        let (message, awaited) = ingest_typed(&xml_listener, Some("application/xml"), &[], xml);
        stage.forward(message).await.unwrap();
        let mut arrived = probe.drain();
        let paginate = arrived.remove(0);
        assert_eq!(paginate.records.len(), 1);
        assert_eq!(paginate.records[0].json(), r#"{"id":"1"}"#);
        assert_eq!(paginate.indexes, Some(vec![0]));
        let quarantined: Vec<(usize, &str)> = paginate
            .quarantined
            .iter()
            .map(|q| (q.index, q.violations.errors[0].instance_path.as_str()))
            .collect();
        assert_eq!(quarantined, [(1, "/qty"), (2, "")]);
        assert_eq!(
            paginate.accepted.schema,
            Some(SchemaCounts {
                valid: 1,
                quarantined: 2
            })
        );
        assert_eq!(paginate.accepted.record_count, 3);
        paginate.reply.accept(paginate.accepted);
        assert_eq!(awaited.outcome().await.unwrap().record_count, 3);

        // A form's fields are strings too; the whole body is one record.
        let form = listener(&format!("{ORDER_SCHEMA}[listeners.schema]\npolicy = \"quarantine\"\n"));
        let (message, _awaited) = ingest_typed(&form, Some("application/x-www-form-urlencoded"), &[], b"id=7&qty=1");
        stage.forward(message).await.unwrap();
        let paginate = probe.drain().remove(0);
        assert!(paginate.records.is_empty());
        assert_eq!(paginate.quarantined[0].record.json(), r#"{"id":"7","qty":"1"}"#);
        assert_eq!(
            paginate.quarantined[0].violations.errors[0].message,
            r#"value is not of type "integer""#
        );
    }

    #[actix::test]
    async fn listeners_without_a_schema_report_no_schema_counts() {
        let (stage, probe) = stage();
        let (message, _awaited) = ingest(&listener(""), &[], br#"[{"qty":"x"}]"#);
        stage.forward(message).await.unwrap();
        let paginate = probe.drain().remove(0);
        assert_eq!((paginate.records.len(), paginate.indexes.is_none()), (1, true));
        assert!(paginate.quarantined.is_empty());
        assert_eq!(paginate.accepted.schema, None);
    }
}
