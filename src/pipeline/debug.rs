//! DebugRecorder: writes captures of requests to listeners with an open debug window to the
//! shared debug topic (kept 24 hours, visible from every instance). Capturing never slows
//! ingestion: the Receiver offers captures with `try_send` (a full mailbox drops them), and the
//! recorder enqueues them without waiting (a full producer queue drops them); both are counted
//! in `hookpipe_debug_captures_dropped_total`.

use std::sync::Arc;

use actix::prelude::*;

use crate::kafka::state::LogTopic;
use crate::telemetry::events::DebugCaptureDropped;

/// Mailbox capacity of the recorder.
const MAILBOX: usize = 1024;

/// One capture (secrets already redacted by the Receiver), keyed by its `listener_id`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Capture(pub serde_json::Value);

/// The recorder actor (one per process).
pub struct DebugRecorder {
    log: Arc<LogTopic>,
}

impl DebugRecorder {
    /// A recorder writing to `log`.
    pub fn new(log: Arc<LogTopic>) -> DebugRecorder {
        DebugRecorder { log }
    }
}

impl Actor for DebugRecorder {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
    }
}

impl Handler<Capture> for DebugRecorder {
    type Result = ();

    fn handle(&mut self, Capture(capture): Capture, _ctx: &mut Context<Self>) {
        let listener_id = capture["listener_id"].as_str().unwrap_or_default().to_string();
        let bytes = serde_json::to_vec(&capture).unwrap_or_default();
        if self.log.try_append(&listener_id, &bytes).is_err() {
            DebugCaptureDropped.emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::kafka::embedded::EmbeddedCluster;
    use crate::pipeline::testing;

    /// A capture sent to the recorder lands in the debug topic, under its listener, as written.
    #[actix::test]
    async fn captures_are_appended_to_the_debug_topic_by_listener() {
        let cluster = EmbeddedCluster::start().unwrap();
        let settings = testing::settings("");
        let topic = &settings.kafka.debug_topic;
        cluster.create_topic(topic, 1).unwrap();
        let bootstrap = cluster.bootstrap_servers();
        let log = LogTopic::open(&settings.kafka, &bootstrap, topic, Duration::from_secs(3600), 10, false)
            .await
            .unwrap();
        let recorder = DebugRecorder::new(log.clone()).start();
        let capture = serde_json::json!({"listener_id": "t", "request_id": "r1", "status": 204});
        recorder.send(Capture(capture.clone())).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let entries = loop {
            let entries = log.entries("t");
            if !entries.is_empty() || Instant::now() > deadline {
                break entries;
            }
            actix::clock::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(entries.len(), 1, "one capture under its listener");
        let stored: serde_json::Value = serde_json::from_slice(&entries[0].1).unwrap();
        assert_eq!(stored, capture);
        assert!(log.entries("other").is_empty());
    }
}
