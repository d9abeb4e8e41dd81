//! ParseActor: turns the raw body into records by content type.

pub mod charset;
pub mod error;
pub mod form;
pub mod json;
pub mod limits;
pub mod record;
pub mod records;
pub mod xml;

use actix::prelude::*;
use actix_web::http::header::CONTENT_TYPE;

use crate::pipeline::ingest_error::IngestError;
use crate::pipeline::page::{PageActor, Paginate};
use crate::pipeline::{Accepted, Admitted, Ingest, Outcome, Stage};
use error::ParseError;
use limits::ParseLimits;
use record::Record;
use records::{detect_format, parse_records};

/// Third stage of the chain.
pub struct ParseActor {
    next: Stage<PageActor>,
    limits: ParseLimits,
}

impl ParseActor {
    /// A parse stage forwarding to `next`.
    pub fn new(next: Stage<PageActor>, limits: ParseLimits) -> ParseActor {
        ParseActor { next, limits }
    }
}

impl Actor for ParseActor {
    type Context = Context<Self>;
}

impl Handler<Admitted<Ingest>> for ParseActor {
    type Result = ResponseFuture<Outcome>;

    fn handle(&mut self, admitted: Admitted<Ingest>, _ctx: &mut Context<Self>) -> Self::Result {
        let Admitted { message, permit } = admitted;
        drop(permit);
        let parsed = parse(&message, &self.limits);
        let next = self.next.clone();
        Box::pin(async move {
            let records = parsed.map_err(IngestError::Parse)?;
            let webhook = message.webhook;
            let record_count = records.len();
            let kept = (message.keep_records || webhook.listener.has_response_body()).then(|| records.clone());
            if record_count > 0 {
                next.forward(Paginate {
                    listener: webhook.listener,
                    request_id: webhook.request_id,
                    received_at_ms: webhook.received_at_ms,
                    delivery_id: message.delivery_id,
                    mock: webhook.mock,
                    records,
                })
                .await??;
            }
            Ok(Accepted {
                record_count,
                records: kept,
                challenge: None,
            })
        })
    }
}

fn parse(message: &Ingest, limits: &ParseLimits) -> Result<Vec<Record>, ParseError> {
    let webhook = &message.webhook;
    let content_type = webhook
        .headers
        .get(CONTENT_TYPE)
        .map(|value| {
            value
                .to_str()
                .map_err(|_| ParseError::UnsupportedMediaType { found: None })
        })
        .transpose()?;
    let (format, _charset) = detect_format(content_type)?;
    if !webhook.listener.accept.contains(&format) {
        return Err(ParseError::UnsupportedMediaType {
            found: content_type.map(str::to_string),
        });
    }
    parse_records(
        &webhook.body,
        content_type,
        webhook.listener.resource_path.as_ref(),
        limits,
    )
}
