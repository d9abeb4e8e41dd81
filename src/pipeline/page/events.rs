//! The page stage's path for listeners that publish CloudEvents (`output_format`): each record
//! is one event (`wire::cloudevents`), published at once as its own Kafka message, and the
//! request is answered once Kafka has acknowledged every one of its events (and quarantine
//! pages). No page is opened: there is nothing to group.

use std::sync::Arc;

use actix::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{quarantine_pages, template_failed, trace_key_and_data_uri, PageActor, Paginate};
use crate::config::cloudevents::{DEFAULT_EVENT_TYPE, MAX_ATTRIBUTE_BYTES};
use crate::kafka::producer::PublishError;
use crate::pipeline::ingest_error::IngestError;
use crate::pipeline::listener::{EventOutput, Listener};
use crate::pipeline::parse::records::Record;
use crate::pipeline::retry_store::{Destination, PublishPage};
use crate::pipeline::rfc3339_millis;
use crate::wire;
use crate::wire::cloudevents::{EncodedEvent, EventFields};

/// The context of the `type` template, for one record.
#[derive(Serialize)]
struct TypeContext<'a> {
    headers: &'a Map<String, Value>,
    query: &'a Map<String, Value>,
    record: &'a Record,
    listener_id: &'a str,
}

impl PageActor {
    /// Publishes every record of `message` as one event, each settling a share of the reply,
    /// beside its quarantine pages; a record that cannot be encoded refuses the whole request
    /// before anything is published.
    pub(super) fn publish_events(&mut self, message: Paginate, ctx: &mut Context<Self>) {
        let Some(output) = message.listener.events.clone() else {
            debug_assert!(false, "publish_events for a listener publishing pages");
            return message.reply.refuse(IngestError::Unavailable(PublishError::Closed));
        };
        let encoded = encode_events(&message, &output, self.max_page_bytes)
            .and_then(|events| Ok((events, quarantine_pages(&message, self.max_page_bytes)?)));
        let (events, quarantine) = match encoded {
            Ok(encoded) => encoded,
            Err(error) => return message.reply.refuse(error),
        };
        let listener = message.listener;
        let request_id = message.request_id;
        let shares = message.reply.share_among_pages(message.accepted);
        self.publish_quarantine(quarantine, &listener, &request_id, &shares, ctx);
        for (event_id, event) in events {
            let share = shares.share();
            let next = self.next.clone();
            let publish = PublishPage {
                listener: listener.clone(),
                page_id: event_id,
                payload: event.payload,
                request_ids: vec![request_id.clone()],
                record_count: 1,
                destination: Destination::Event(event.headers),
                partition: None,
            };
            ctx.spawn(
                async move {
                    share.settle(next.forward(publish).await.unwrap_or(Err(PublishError::Closed)));
                }
                .into_actor(self),
            );
        }
    }
}

/// Every record of the request as an event, with its id, or the refusal of the whole request.
fn encode_events(
    message: &Paginate,
    output: &EventOutput,
    max_message_bytes: usize,
) -> Result<Vec<(String, EncodedEvent)>, IngestError> {
    let listener: &Arc<Listener> = &message.listener;
    let time = rfc3339_millis(message.received_at_ms);
    let empty = Map::new();
    let (headers, query) = message
        .request
        .as_deref()
        .map_or((&empty, &empty), |view| (&view.headers, &view.query));
    let mut out = Vec::with_capacity(message.records.len());
    for (position, record) in message.records.iter().enumerate() {
        let index = message.indexes.as_ref().map_or(position, |indexes| indexes[position]);
        let id = wire::record_id(&message.request_id, index);
        let (trace_key, data_uri) = trace_key_and_data_uri(listener, record)?;
        let context = TypeContext {
            headers,
            query,
            record,
            listener_id: listener.id(),
        };
        let event_type = match listener.render_event_type(&context) {
            Some(Ok(rendered)) if rendered.len() > MAX_ATTRIBUTE_BYTES => template_failed(
                listener,
                "event_type",
                "event type",
                format!("rendered more than {MAX_ATTRIBUTE_BYTES} bytes"),
            )?,
            Some(Ok(rendered)) => Some(rendered).filter(|rendered| !rendered.trim().is_empty()),
            Some(Err(reason)) => template_failed(listener, "event_type", "event type", reason)?,
            None => None,
        };
        let event = wire::cloudevents::encode(
            output.mode,
            &EventFields {
                id: &id,
                source: &output.source,
                event_type: event_type.as_deref().unwrap_or(DEFAULT_EVENT_TYPE),
                time: &time,
                listener_id: listener.id(),
                request_id: &message.request_id,
                trace_key: &trace_key,
                data_uri: data_uri.as_deref(),
                delivery_id: message.delivery_id.as_deref(),
                mock: message.mock,
                attempt: None,
                retry_data_stored: !listener.config.do_not_store_retry_data,
                partition_key: listener.id(),
                data_json: record.json(),
            },
        );
        if event.message_bytes() > max_message_bytes {
            return Err(IngestError::RecordTooLarge {
                limit: max_message_bytes,
            });
        }
        out.push((id, event));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::pipeline::reply::{AwaitedReply, Reply};
    use crate::pipeline::request_view::RequestView;
    use crate::pipeline::stage::probe::{probe_answering, Probe};
    use crate::pipeline::stage::Stage;
    use crate::pipeline::testing::listener;
    use crate::pipeline::Accepted;

    fn page_stage(
        kafka: impl Fn(&PublishPage) -> Result<(), PublishError> + 'static,
    ) -> (Stage<Paginate>, Probe<PublishPage>) {
        let (next, probe) = probe_answering(kafka);
        let actor = PageActor::new(next, Duration::ZERO, 1 << 20, Arc::default());
        (Stage::start("page", 4, actor), probe)
    }

    fn paginate(listener: &Arc<Listener>, records: &[Value], headers: &[(&str, &str)]) -> (Paginate, AwaitedReply) {
        let (reply, awaited) = Reply::new();
        let view = RequestView {
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_string(), Value::String(value.to_string())))
                .collect(),
            query: Map::new(),
        };
        let message = Paginate {
            listener: listener.clone(),
            request_id: Arc::from("r1"),
            received_at_ms: 1_767_225_600_010,
            delivery_id: Some("d-1".into()),
            mock: false,
            records: records.iter().map(|value| Record::from_value(value).unwrap()).collect(),
            indexes: None,
            quarantined: Vec::new(),
            request: Some(Box::new(view)),
            accepted: Accepted {
                record_count: records.len(),
                ..Accepted::default()
            },
            reply,
        };
        (message, awaited)
    }

    const BINARY: &str = "output_format = \"cloudevents_binary\"\ntrace_key_template = \"{{n}}\"\n\
        [listeners.cloudevents]\ntype_template = \"com.github.{{headers.x-github-event}}\"\n";

    fn header<'a>(page: &'a PublishPage, name: &str) -> Option<&'a str> {
        match &page.destination {
            Destination::Event(headers) => headers
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str()),
            _ => None,
        }
    }

    #[actix::test]
    async fn each_record_is_one_event_and_the_request_waits_for_all() {
        let (stage, probe) = page_stage(|_| Ok(()));
        let records = [json!({"n": "a"}), json!({"n": "b"}), json!({"n": "c"})];
        let (message, awaited) = paginate(&listener(BINARY), &records, &[("x-github-event", "push")]);
        stage.forward(message).await.unwrap();
        assert_eq!(awaited.outcome().await.unwrap().record_count, 3);
        let events = probe.drain();
        assert_eq!(events.len(), 3, "one message per record");
        for (index, event) in events.iter().enumerate() {
            assert_eq!(event.page_id, format!("r1-{index}"));
            assert_eq!(event.record_count, 1);
            assert_eq!(event.payload, serde_json::to_vec(&records[index]).unwrap());
            assert_eq!(header(event, "ce_id"), Some(event.page_id.as_str()));
            assert_eq!(header(event, "ce_type"), Some("com.github.push"));
            assert_eq!(header(event, "ce_source"), Some("/listeners/t"));
            assert_eq!(header(event, "ce_time"), Some("2026-01-01T00:00:00.010Z"));
            assert_eq!(header(event, "ce_hookpipetrace"), Some(["a", "b", "c"][index]));
            assert_eq!(header(event, "ce_hookpiperequestid"), Some("r1"));
            assert_eq!(header(event, "ce_hookpipedeliveryid"), Some("d-1"));
            assert_eq!(header(event, "content-type"), Some("application/json"));
        }
    }

    #[actix::test]
    async fn one_event_kafka_refused_refuses_the_request() {
        let (stage, _probe) = page_stage(|event| match event.page_id.as_str() {
            "r1-1" => Err(PublishError::QueueFull),
            _ => Ok(()),
        });
        let (message, awaited) = paginate(&listener(BINARY), &[json!({"n": 1}), json!({"n": 2})], &[]);
        stage.forward(message).await.unwrap();
        assert!(matches!(
            awaited.outcome().await,
            Err(IngestError::Unavailable(PublishError::QueueFull))
        ));
    }

    /// A binary event's attributes are Kafka headers, as much a part of the message as its
    /// value: a record whose id (its default trace key, `ce_hookpipetrace`) is as large as the
    /// limit is too large (413), not a message Kafka refuses (503, retried for ever).
    #[actix::test]
    async fn a_binary_event_counts_its_headers_in_the_size_limit() {
        let (stage, probe) = page_stage(|_| Ok(()));
        let binary = "output_format = \"cloudevents_binary\"\n";
        let record = json!({"id": "i".repeat(600 * 1024)});
        let (message, awaited) = paginate(&listener(binary), &[record], &[]);
        stage.forward(message).await.unwrap();
        assert!(
            matches!(awaited.outcome().await, Err(IngestError::RecordTooLarge { limit }) if limit == 1 << 20),
            "refused as too large"
        );
        assert!(probe.drain().is_empty(), "nothing published");
    }

    #[actix::test]
    async fn the_type_falls_back_unless_strict_and_structured_events_carry_the_record() {
        let (stage, probe) = page_stage(|_| Ok(()));
        let structured = "output_format = \"cloudevents_structured\"\n[listeners.cloudevents]\n\
            type_template = \"{{headers.x-github-event}}\"\nsource = \"https://hooks.example.com/gh\"\n";
        let (message, awaited) = paginate(&listener(structured), &[json!({"id": "A"})], &[]);
        stage.forward(message).await.unwrap();
        awaited.outcome().await.unwrap();
        let event = probe.drain().remove(0);
        assert_eq!(
            header(&event, "content-type"),
            Some("application/cloudevents+json; charset=UTF-8")
        );
        let value: Value = serde_json::from_slice(&event.payload).unwrap();
        assert_eq!(value["type"], DEFAULT_EVENT_TYPE, "no header: the default type");
        assert_eq!(value["source"], "https://hooks.example.com/gh");
        assert_eq!(value["hookpipetrace"], "A");
        assert_eq!(value["data"], json!({"id": "A"}));

        let strict = format!("strict_templates = true\n{structured}");
        let (message, awaited) = paginate(&listener(&strict), &[json!({"id": "A"})], &[]);
        stage.forward(message).await.unwrap();
        match awaited.outcome().await {
            Err(IngestError::Template { what, .. }) => assert_eq!(what, "event type"),
            other => panic!("{other:?}"),
        }
        assert!(probe.drain().is_empty(), "nothing published");
    }

    #[test]
    fn kafka_output_format_is_the_default_a_listener_overrides() {
        use crate::pipeline::testing::{listener_of, settings};
        use crate::wire::cloudevents::Mode;
        let by_default = settings("[kafka]\noutput_format = \"cloudevents_structured\"\n[[listeners]]\nid = \"t\"\n");
        let compiled = listener_of(&by_default);
        assert_eq!(
            compiled
                .events
                .as_ref()
                .map(|events| (events.mode, events.source.as_str())),
            Some((Mode::Structured, "/listeners/t"))
        );
        let own = settings(
            "[kafka]\noutput_format = \"cloudevents_structured\"\n[[listeners]]\nid = \"t\"\noutput_format = \"page\"\n",
        );
        assert!(listener_of(&own).events.is_none(), "the listener's own format wins");
        assert!(listener("").events.is_none(), "pages unless asked");
    }

    #[actix::test]
    async fn pages_listeners_are_untouched() {
        let (stage, probe) = page_stage(|_| Ok(()));
        let (message, awaited) = paginate(&listener(""), &[json!({"n": 1}), json!({"n": 2})], &[]);
        stage.forward(message).await.unwrap();
        awaited.outcome().await.unwrap();
        let pages = probe.drain();
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].destination, Destination::Pages);
    }
}
