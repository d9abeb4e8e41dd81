//! `hookpipe tail`: print the pages arriving on a topic, one JSON line (or indented JSON) each;
//! a CloudEvent is printed in the JSON event format, whatever its mode (`wire::cloudevents`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::cli::load;
use crate::kafka::tail::{ReadMessage, StartAt, TopicReader};

/// `hookpipe tail`: where to read and how to print.
#[derive(Args, Debug)]
pub struct TailArgs {
    /// Bootstrap servers (default: kafka.brokers of the configuration).
    #[arg(long)]
    pub brokers: Option<String>,
    /// Topic (default: kafka.pages_topic of the configuration).
    #[arg(long)]
    pub topic: Option<String>,
    /// Start from the oldest stored page instead of new ones only.
    #[arg(long)]
    pub from_beginning: bool,
    /// Print each page (or event) indented instead of one line per page.
    #[arg(long)]
    pub pretty: bool,
    /// Stop after this many pages.
    #[arg(long)]
    pub count: Option<usize>,
    /// Configuration file to read defaults from.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

/// Prints pages until `--count` of them, Ctrl-C, or a read error (exit 1).
pub fn run(args: TailArgs) -> ExitCode {
    let settings = match load(args.config) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let configured_brokers = Some(settings.kafka.brokers.clone()).filter(|brokers| !brokers.is_empty());
    let Some(brokers) = args.brokers.or(configured_brokers) else {
        eprintln!("no brokers: pass --brokers (hookpipe serve prints the embedded cluster's address)");
        return ExitCode::from(2);
    };
    let topic = args.topic.unwrap_or_else(|| settings.kafka.pages_topic.clone());
    let from = if args.from_beginning {
        StartAt::Beginning
    } else {
        StartAt::End
    };
    let reader = match TopicReader::open(&settings.kafka, &brokers, &topic, from, Duration::from_secs(10)) {
        Ok(reader) => reader,
        Err(error) => {
            eprintln!("hookpipe tail: {error}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("reading {topic} from {brokers} (Ctrl-C to stop)");
    let mut printed = 0;
    while args.count.is_none_or(|count| printed < count) {
        match reader.next(Duration::from_millis(500)) {
            Ok(None) => {}
            Ok(Some(message)) => {
                println!("{}", message_text(&message, args.pretty));
                printed += 1;
            }
            Err(error) => {
                eprintln!("hookpipe tail: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// A message as text: a binary CloudEvent as the structured event it is (attributes from its
/// headers, the value as `data`), anything else as its value.
fn message_text(message: &ReadMessage, pretty: bool) -> String {
    let headers: Vec<(&str, &[u8])> = message
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    match crate::wire::cloudevents::read(&headers, &message.payload) {
        Some(Ok(event)) if event.mode == crate::wire::cloudevents::Mode::Binary => {
            let shown = event.to_structured();
            if pretty {
                serde_json::to_string_pretty(&shown).unwrap_or_default()
            } else {
                shown.to_string()
            }
        }
        _ => page_text(&message.payload, pretty),
    }
}

/// A page as JSON (indented with `--pretty`); a payload that is not JSON as lossy UTF-8.
fn page_text(payload: &[u8], pretty: bool) -> String {
    match serde_json::from_slice::<serde_json::Value>(payload) {
        Ok(value) if pretty => serde_json::to_string_pretty(&value).unwrap_or_default(),
        Ok(value) => value.to_string(),
        Err(_) => String::from_utf8_lossy(payload).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::cloudevents::{encode, EventFields, Mode};

    fn message(headers: Vec<(String, String)>, payload: Vec<u8>) -> ReadMessage {
        ReadMessage {
            partition: 0,
            offset: 0,
            key: Some("gh".into()),
            headers,
            payload,
        }
    }

    #[test]
    fn a_binary_event_is_shown_as_the_structured_event_it_is() {
        let fields = EventFields {
            id: "r1-0",
            source: "/listeners/gh",
            event_type: "com.github.push",
            time: "2026-01-01T00:00:00.000Z",
            listener_id: "gh",
            request_id: "r1",
            trace_key: "A",
            data_uri: None,
            delivery_id: None,
            mock: false,
            attempt: None,
            retry_data_stored: true,
            partition_key: "gh",
            data_json: r#"{"x":1}"#,
        };
        let binary = encode(Mode::Binary, &fields);
        let shown: serde_json::Value =
            serde_json::from_str(&message_text(&message(binary.headers, binary.payload), false)).unwrap();
        assert_eq!(shown["specversion"], "1.0");
        assert_eq!(shown["type"], "com.github.push");
        assert_eq!(shown["datacontenttype"], "application/json");
        assert_eq!(shown["hookpipetrace"], "A");
        assert_eq!(shown["data"], serde_json::json!({"x": 1}));
        let structured = encode(Mode::Structured, &fields);
        let expected = page_text(&structured.payload, false);
        assert_eq!(
            message_text(&message(structured.headers, structured.payload), false),
            expected
        );
        let page = br#"{"type":"page","records":[]}"#.to_vec();
        assert_eq!(
            message_text(&message(Vec::new(), page), false),
            r#"{"records":[],"type":"page"}"#
        );
    }
}
