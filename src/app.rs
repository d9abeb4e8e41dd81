//! Startup: everything `hookpipe serve` builds before it serves webhooks (topics, shared state,
//! the listener registry, the producer, the HTTP threads with their chains), in one `App::build`
//! that `main` and the integration tests' `spawn_app` both call, so the tests run the server
//! exactly as production starts it (zero-to-production's `Application::build`).
//!
//! The start has two phases, so that a tier started while Kafka is away still answers: phase one
//! ([`App::listen`]) binds the listen address and serves a small "starting" server at once
//! (`/healthz` 200, `/readyz` 503, everything else 503 with `Retry-After`); phase two
//! ([`Starting::finish`]) provisions the topics and opens the shared state, retrying with a
//! backoff until Kafka answers, then serves fully on the same socket.
//!
//! With `server.tls`, both servers speak TLS on that socket with one certificate resolver,
//! loaded and given its SIGHUP reload right after the bind (`crate::tls::server`): every route
//! on the port (webhooks, the management API, the console, `/metrics`, the probes) is HTTPS.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, HttpServer};
use futures_util::future::{select, Either};

use crate::config::Settings;
use crate::http::{api, state};
use crate::import_wait::Waiters;
use crate::kafka::producer::PageProducer;
use crate::pipeline::debug::DebugRecorder;
use crate::pipeline::listener::Registry;
use crate::pipeline::page::OpenPages;
use crate::pipeline::parse::records::ParseLimits;
use crate::pipeline::rate_limit::bucket::{LeakyBucket, SharedClock};
use crate::pipeline::rate_limit::fleet_feed::FleetLimiter;
use crate::pipeline::{Chain, ChainSettings};
use crate::shared_state::SharedState;
use crate::shutdown::{Drain, Draining};
use crate::tls::server::CertificateResolver;

/// A built server: bound, its HTTP threads started, serving once `server` (or `run`) is awaited.
pub struct App {
    /// The bound address (port 0 resolved).
    pub addr: SocketAddr,
    /// The server future; await it to run until stopped.
    pub server: Server,
    /// Listeners served.
    pub registry: Arc<Registry>,
    /// The producer, to flush after the server stops.
    pub producer: PageProducer,
    /// The graceful drain `hookpipe serve` runs on SIGTERM (`Drain::on_signal`).
    pub drain: Arc<Drain>,
    /// This instance's membership of the fleet's rate limits, when they are on.
    pub fleet: Option<Arc<FleetLimiter>>,
}

/// Phase one of the start: the listen address bound and the starting server answering on it.
pub struct Starting {
    listener: TcpListener,
    addr: SocketAddr,
    server: Server,
    tls: Option<ListenerTls>,
}

/// The TLS of the listen address: the rustls configuration both servers are given. It holds the
/// certificate resolver SIGHUP reloads, so a reload reaches both.
struct ListenerTls {
    config: rustls::ServerConfig,
}

impl ListenerTls {
    /// Loads `server.tls`'s pair (if set) and installs its reload on SIGHUP (without TLS, a
    /// SIGHUP is logged and ignored).
    fn start(settings: &Settings) -> Result<Option<ListenerTls>, String> {
        let sighup = |resolver| {
            crate::tls::server::reload_on_sighup(resolver)
                .map_err(|e| format!("cannot listen for SIGHUP (the TLS certificate reload): {e}"))
        };
        let Some((cert_file, key_file)) = settings.server.tls.as_ref().and_then(|tls| tls.files()) else {
            sighup(None)?;
            return Ok(None);
        };
        let resolver =
            Arc::new(CertificateResolver::open(cert_file, key_file).map_err(|e| format!("server.tls: {e}"))?);
        sighup(Some(resolver.clone()))?;
        Ok(Some(ListenerTls {
            config: resolver.server_config(),
        }))
    }
}

/// How long a connection is kept, discarding input, after answering a request whose body was
/// not read to its end.
const UNREAD_BODY_LINGER: Duration = Duration::from_secs(1);
/// Waits between two attempts to reach Kafka at start: from this...
const START_RETRY_INITIAL: Duration = Duration::from_secs(1);
/// ...doubling up to this.
const START_RETRY_MAX: Duration = Duration::from_secs(10);

impl App {
    /// Both phases: binds, then provisions the topics (`kafka::topics::provision`, unless
    /// `topics_exist`), opens the shared state, builds the registry and producer and starts the
    /// HTTP threads. Must be called inside an actix system.
    pub async fn build(
        settings: &Settings,
        bootstrap: &str,
        clock: SharedClock,
        topics_exist: bool,
    ) -> Result<App, String> {
        App::listen(settings)?
            .finish(settings, bootstrap, clock, topics_exist)
            .await?
            .ok_or_else(|| "stopped before Kafka was available".to_string())
    }

    /// Phase one: binds `server.listen` and answers on it at once (the starting server) while
    /// [`Starting::finish`] waits for Kafka. Must be called inside an actix system.
    pub fn listen(settings: &Settings) -> Result<Starting, String> {
        let listen = settings.server.listen;
        let listener = TcpListener::bind(listen).map_err(|e| format!("cannot bind {listen}: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot bind {listen}: {e}"))?;
        let starting_socket = listener
            .try_clone()
            .map_err(|e| format!("cannot share the socket of {listen}: {e}"))?;
        // Right after the bind, before anything answers: a SIGHUP from now on reloads.
        let tls = ListenerTls::start(settings)?;
        let server = HttpServer::new(|| actix_web::App::new().configure(crate::http::health::starting_routes))
            .workers(1)
            .shutdown_timeout(1);
        let server = match &tls {
            Some(tls) => server.listen_rustls_0_23(starting_socket, tls.config.clone()),
            None => server.listen(starting_socket),
        }
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?
        .run();
        Ok(Starting {
            listener,
            addr,
            server,
            tls,
        })
    }

    /// A handle that stops the server from another task or thread.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped (the drain, or `handle().stop()`), publishes the pages
    /// still open, then flushes the producer for at most `flush_timeout` so nothing queued is
    /// dropped on the way out.
    pub async fn run(self, flush_timeout: Duration) -> Result<(), String> {
        self.server.await.map_err(|e| format!("server error: {e}"))?;
        if let Some(fleet) = &self.fleet {
            // Nothing is accepted any more: the others may take this instance's shares now.
            fleet.leave().await;
        }
        let pages = self.drain.open_pages.flush(&self.producer).await;
        tracing::info!(open_pages_published = pages, "server stopped; flushing the producer");
        self.producer
            .flush(flush_timeout)
            .map_err(|e| format!("producer flush failed: {e}"))
    }
}

impl Starting {
    /// The bound address (port 0 resolved).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Phase two: provisions the topics (unless `topics_exist`) and opens the shared state,
    /// retrying until Kafka answers, then builds the registry, the producer and the HTTP threads
    /// and serves them on the socket of phase one, whose server then stops. `None` when the
    /// starting server stopped first (SIGTERM or Ctrl-C while Kafka was away).
    pub async fn finish(
        self,
        settings: &Settings,
        bootstrap: &str,
        clock: SharedClock,
        topics_exist: bool,
    ) -> Result<Option<App>, String> {
        let Starting {
            listener,
            addr,
            server,
            tls,
        } = self;
        let starting_handle = server.handle();
        let mut starting = Box::pin(actix_web::rt::spawn(server));
        let mut delay = START_RETRY_INITIAL;
        let shared = loop {
            let attempt = Box::pin(open_shared(settings, bootstrap, topics_exist));
            match select(attempt, starting).await {
                Either::Left((Ok(shared), rest)) => {
                    starting = rest;
                    break shared;
                }
                Either::Left((Err(error), rest)) => {
                    tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64,
                        "Kafka not available yet: answering /healthz, and 503 to webhooks, meanwhile");
                    match select(Box::pin(tokio::time::sleep(delay)), rest).await {
                        Either::Left((_, rest)) => starting = rest,
                        Either::Right(_) => return Ok(None),
                    }
                    delay = (delay * 2).min(START_RETRY_MAX);
                }
                Either::Right(_) => return Ok(None),
            }
        };
        // A stop (SIGTERM, Ctrl-C) that came as Kafka answered still wins: the full server
        // handles no signals of its own until the drain is installed, so it would be lost.
        if starting.is_finished() {
            return Ok(None);
        }
        // Joins the fleet's rate limits before serving: a newcomer must not serve whole buckets.
        let fleet =
            crate::pipeline::rate_limit::fleet_feed::start(settings, bootstrap, clock.clone(), &shared.instance).await;
        let app = serve_fully(settings, bootstrap, clock, shared, fleet, listener, addr, tls)?;
        // The full server accepts on the same socket already; the starting one stops accepting
        // first, answers the connections it took, then lets go. Stopped at once, it dropped the
        // connections its accept thread had queued for its worker (resets and empty answers to
        // senders at the handover; a loaded CI run saw several).
        crate::shutdown::stop_accepting(&starting_handle).await;
        starting_handle.stop(true).await;
        drop(starting);
        Ok(Some(app))
    }
}

/// What needs Kafka to answer: the topics (unless they exist) and the shared state.
async fn open_shared(settings: &Settings, bootstrap: &str, topics_exist: bool) -> Result<Arc<SharedState>, String> {
    if !topics_exist {
        crate::kafka::topics::provision(settings, bootstrap, None).await?;
    }
    let shared = SharedState::open(settings, bootstrap, false).await?;
    // Before the registry is built: definitions in clear or under a previous key are resealed.
    shared.seal_stored_listeners().await;
    Ok(shared)
}

/// The rest of the start, once the shared state is open: registry, producer, HTTP threads.
#[allow(clippy::too_many_arguments)] // the parts of `Starting` and what phase two opened
fn serve_fully(
    settings: &Settings,
    bootstrap: &str,
    clock: SharedClock,
    shared: Arc<SharedState>,
    fleet: Option<Arc<FleetLimiter>>,
    listener: TcpListener,
    addr: SocketAddr,
    tls: Option<ListenerTls>,
) -> Result<App, String> {
    let errors_view = web::Data::new(api::import_errors::ErrorsView::opening());
    api::import_errors::spawn_open(
        errors_view.clone(),
        settings.kafka.clone(),
        bootstrap.to_string(),
        false,
    );
    let registry = Arc::new(Registry::from_settings(settings)?);
    let global_bucket = settings
        .server
        .global_rate_limit
        .map(|limit| Arc::new(LeakyBucket::new(limit.capacity, limit.refill_per_sec)));
    if let Some(fleet) = &fleet {
        // Before the stored listeners are added: their buckets get their shares as they come.
        registry.set_shares(fleet.clone());
        fleet.attach(&registry, global_bucket.clone());
    }
    let settings_arc = Arc::new(settings.clone());
    crate::shared_state::spawn_sync(shared.clone(), registry.clone(), settings_arc.clone());
    let producer =
        PageProducer::new(&settings.kafka, bootstrap).map_err(|e| format!("cannot create Kafka producer: {e}"))?;

    let partitions_of = producer.clone();
    let open_pages = Arc::new(OpenPages::with_partitions(Arc::new(move |topic: &str| {
        partitions_of.partition_count(topic)
    })));
    prefetch_partition_counts(settings, &producer);
    let dedup = shared.dedup.clone();
    crate::pipeline::dedup_feed::spawn_open(dedup.clone(), settings.kafka.clone(), bootstrap.to_string());
    let import_waits = Waiters::new(settings.server.max_import_waits);
    crate::import_wait::feed::open_when_needed(&import_waits, settings.kafka.clone(), bootstrap.to_string());
    open_results_feed_once_a_listener_waits(&shared, &registry, &import_waits);
    let draining = web::Data::new(Draining::default());
    let state = web::Data::new(state::AppState {
        import_waits,
        registry: registry.clone(),
        in_flight: AtomicUsize::new(0),
        max_in_flight: settings.server.max_in_flight,
        reading: AtomicUsize::new(0),
        max_reading: settings.server.max_body_readers,
        body_read_timeout: Duration::from_millis(settings.server.body_read_timeout_ms),
        request_timeout: Duration::from_millis(settings.server.request_timeout_ms),
        external_base_url: settings.external_base_url(),
        debug: DebugRecorder::new(shared.debug_log.clone()).start(),
        shared,
        settings: settings_arc,
        producer: producer.clone(),
        bootstrap: bootstrap.to_string(),
        auth_failures: api::auth_limit::AuthFailures::new(
            settings.server.admin_auth_max_failures,
            Duration::from_secs(settings.server.admin_auth_window_secs),
            api::auth_limit::MAX_TRACKED_PEERS,
            clock.clone(),
        ),
    });
    let chain_settings = ChainSettings {
        mailbox_capacity: settings.pipeline.mailbox_capacity,
        page_linger: Duration::from_millis(settings.pipeline.page_linger_ms),
        max_page_bytes: settings.pipeline.max_page_bytes,
        parse_limits: ParseLimits {
            max_depth: settings.pipeline.max_depth,
            max_form_fields: settings.pipeline.max_form_fields,
        },
        clock,
        global_bucket,
        open_pages: open_pages.clone(),
        dedup,
    };
    let drain = Arc::new(Drain {
        draining: draining.clone().into_inner(),
        drain_period: Duration::from_millis(settings.server.drain_ms),
        finish_timeout: Duration::from_secs(settings.server.shutdown_timeout_secs),
        open_pages,
        producer: producer.clone(),
        in_flight: {
            let state = state.clone();
            // Requests still sending their body are in flight for the drain: they are finished too.
            // And those waiting for their import, which left the receiver's count with their ack.
            Box::new(move || {
                state.in_flight.load(Ordering::Relaxed)
                    + state.reading.load(Ordering::Relaxed)
                    + state.import_waits.in_flight()
            })
        },
        stop_waiting: {
            let waits = state.import_waits.clone();
            Box::new(move || waits.stop_waiting())
        },
    });
    let http_threads = match settings.server.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let chain_producer = producer.clone();
    let listen = settings.server.listen;
    let server = HttpServer::new(move || {
        // Runs once per HTTP thread: each gets its own chain on its own arbiter.
        let chain = Chain::start(&chain_settings, chain_producer.clone());
        actix_web::App::new()
            .app_data(state.clone())
            .app_data(draining.clone())
            .app_data(errors_view.clone())
            .app_data(web::Data::new(chain))
            .configure(crate::http::routes)
    })
    .workers(http_threads)
    .max_connection_rate(1024)
    .shutdown_timeout(settings.server.shutdown_timeout_secs)
    // SIGTERM and SIGINT are `shutdown::Drain`'s: actix would stop accepting at once.
    .disable_signals()
    .client_request_timeout(Duration::from_millis(settings.server.body_read_timeout_ms))
    // After refusing a request whose body is still coming (413, 408, ...), actix closes the
    // connection, reading and discarding for at most this long first so the sender can read
    // the answer (a lingering close) — bounded, so an endless body cannot hold it.
    .client_disconnect_timeout(UNREAD_BODY_LINGER);
    let server = match tls {
        Some(tls) => server.listen_rustls_0_23(listener, tls.config),
        None => server.listen(listener),
    }
    .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    Ok(App {
        addr,
        server: server.run(),
        registry,
        producer,
        drain,
        fleet,
    })
}

/// Asks the brokers, in the background, for the partitions of the topics of the configured
/// listeners with an ordering key, so that their first request does not wait for it (README
/// "Ordering"); a failure here is only logged: the first request asks again.
/// The results topic is read from the moment a listener waits for its imports: one of the file
/// or stored already, or one set to wait through the API later (seen on every instance as the
/// registry follows the state topic). Best effort: a request that waits opens it anyway.
fn open_results_feed_once_a_listener_waits(shared: &SharedState, registry: &Arc<Registry>, waits: &Arc<Waiters>) {
    let any_waits = |registry: &Registry| {
        registry
            .all()
            .iter()
            .any(|listener| listener.config.response.waits_for_import())
    };
    if any_waits(registry) {
        return waits.open_feed();
    }
    let mut changes = shared.state.subscribe();
    let (registry, waits) = (Arc::downgrade(registry), Arc::downgrade(waits));
    actix_web::rt::spawn(async move {
        loop {
            match changes.recv().await {
                Ok(key) if !key.starts_with("listener/") => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                _ => {}
            }
            // The registry is rebuilt on the same change (`shared_state::spawn_sync`): after it.
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            let (Some(registry), Some(waits)) = (registry.upgrade(), waits.upgrade()) else {
                return;
            };
            if any_waits(&registry) {
                return waits.open_feed();
            }
        }
    });
}

fn prefetch_partition_counts(settings: &Settings, producer: &PageProducer) {
    let topics: std::collections::BTreeSet<String> = settings
        .listeners
        .iter()
        .filter(|listener| listener.ordering_key.is_some())
        .map(|listener| {
            listener
                .topic
                .clone()
                .unwrap_or_else(|| settings.kafka.pages_topic.clone())
        })
        .collect();
    if topics.is_empty() {
        return;
    }
    let producer = producer.clone();
    let spawned = std::thread::Builder::new()
        .name("partition-counts".into())
        .spawn(move || {
            for topic in topics {
                if let Err(error) = producer.partition_count(&topic) {
                    tracing::warn!(topic, %error, "cannot read the partitions of an ordered listener's topic yet");
                }
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot start the partition count prefetch");
    }
}
