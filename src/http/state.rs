//! The state every HTTP thread shares: what the receiver, the management API and the
//! operations endpoints read.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Settings;
use crate::http::api::auth_limit::AuthFailures;
use crate::import_wait::Waiters;
use crate::kafka::producer::PageProducer;
use crate::pipeline::debug::DebugRecorder;
use crate::pipeline::listener::Registry;
use crate::shared_state::SharedState;

/// State shared by every HTTP thread.
pub struct AppState {
    /// Listeners by public id.
    pub registry: Arc<Registry>,
    /// Requests being processed now.
    pub in_flight: AtomicUsize,
    /// Cap on `in_flight`.
    pub max_in_flight: usize,
    /// Requests whose body is still being read: not yet in flight, so that slow senders cannot
    /// take the slots of those whose body has arrived.
    pub reading: AtomicUsize,
    /// Cap on `reading`.
    pub max_reading: usize,
    /// Body read deadline.
    pub body_read_timeout: Duration,
    /// Chain deadline.
    pub request_timeout: Duration,
    /// Base URL senders use.
    pub external_base_url: String,
    /// The debug recorder.
    pub debug: actix::Addr<DebugRecorder>,
    /// State shared with the other instances through Kafka.
    pub shared: Arc<SharedState>,
    /// The whole configuration.
    pub settings: Arc<Settings>,
    /// The producer (for its queue depth and readiness).
    pub producer: PageProducer,
    /// Kafka bootstrap servers (to create topics of listeners added through the API).
    pub bootstrap: String,
    /// Failed management-API authentications by peer.
    pub auth_failures: AuthFailures,
    /// Requests waiting for their import (`response.wait = "import"`).
    pub import_waits: Arc<Waiters>,
}
