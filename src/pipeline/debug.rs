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
