//! DebugRecorder: keeps timed captures of requests and their outcomes for listeners with an
//! open debug window. Capturing must never slow ingestion: the Receiver offers captures with
//! `try_send` and a full mailbox drops them (counted). Opening windows through the API and
//! sharing captures across instances come with issue 4.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

/// Captures kept per listener.
const CAPTURES_PER_LISTENER: usize = 500;

/// One captured request (secrets already redacted by the caller).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Capture {
    /// Listener id.
    pub listener_id: String,
    /// Request id.
    pub request_id: String,
    /// Receive time, RFC 3339.
    pub time: String,
    /// HTTP method.
    pub method: String,
    /// Answered status.
    pub status: u16,
    /// Outcome label.
    pub outcome: &'static str,
    /// Milliseconds from receipt to answer.
    pub latency_ms: u64,
}

/// Offer of a capture; dropped unless the listener's window is open.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Record(pub Capture);

/// Opens (or extends) a window for a listener.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct OpenWindow {
    /// Listener id.
    pub listener_id: String,
    /// How long it stays open.
    pub duration: Duration,
}

/// Returns the captures of a listener, newest first.
#[derive(Debug, Message)]
#[rtype(result = "Vec<Capture>")]
pub struct List {
    /// Listener id.
    pub listener_id: String,
}

/// The recorder actor (one per process).
#[derive(Default)]
pub struct DebugRecorder {
    windows: HashMap<String, Instant>,
    captures: HashMap<String, VecDeque<Capture>>,
    /// Captures dropped because the mailbox was full (read by metrics).
    pub dropped: Arc<AtomicU64>,
}

impl Actor for DebugRecorder {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1024);
        // Expired windows close by themselves.
        ctx.run_interval(Duration::from_secs(1), |actor, _| {
            let now = Instant::now();
            actor.windows.retain(|_, until| *until > now);
        });
    }
}

impl DebugRecorder {
    /// Counts a capture the Receiver could not hand over.
    pub fn count_dropped(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Handler<Record> for DebugRecorder {
    type Result = ();

    fn handle(&mut self, Record(capture): Record, _ctx: &mut Context<Self>) {
        let open = self
            .windows
            .get(&capture.listener_id)
            .is_some_and(|until| *until > Instant::now());
        if !open {
            return;
        }
        let captures = self.captures.entry(capture.listener_id.clone()).or_default();
        if captures.len() == CAPTURES_PER_LISTENER {
            captures.pop_front();
        }
        captures.push_back(capture);
    }
}

impl Handler<OpenWindow> for DebugRecorder {
    type Result = ();

    fn handle(&mut self, message: OpenWindow, _ctx: &mut Context<Self>) {
        self.windows
            .insert(message.listener_id, Instant::now() + message.duration);
    }
}

impl Handler<List> for DebugRecorder {
    type Result = MessageResult<List>;

    fn handle(&mut self, message: List, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.captures
                .get(&message.listener_id)
                .map(|captures| captures.iter().rev().cloned().collect())
                .unwrap_or_default(),
        )
    }
}
