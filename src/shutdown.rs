//! Graceful drain: on SIGTERM an instance fails `/readyz` first, keeps serving for
//! `server.drain_ms` so the load balancer's health check moves traffic away, then stops
//! accepting, finishes its in-flight requests, publishes its open pages and stops the server
//! (`App::run` then flushes the producer).
//!
//! actix-web's own signal handling (stop accepting at once) is turned off in `App::build`: a
//! balancer that still routes to an instance that no longer accepts turns requests into
//! connection errors, which is exactly what a rolling restart must not do.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use futures_util::future::{select, Either};

use crate::kafka::producer::PageProducer;
use crate::pipeline::page::OpenPages;

/// Log target of the drain's lines.
const LOG_TARGET: &str = "hookpipe::shutdown";

/// How often the drain looks at the in-flight count while waiting for it to reach zero.
const IN_FLIGHT_POLL: Duration = Duration::from_millis(20);

/// Set once a drain starts: from then on `/readyz` answers 503 (`http::health::readyz`).
#[derive(Debug, Default)]
pub struct Draining(AtomicBool);

impl Draining {
    /// Whether the instance is draining.
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The signal that started a shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGTERM (an orchestrator, `kill`, systemd): the full drain.
    Terminate,
    /// SIGINT (Ctrl-C at a terminal): no drain period, the rest of the shutdown as usual.
    Interrupt,
}

/// Waits for the next SIGTERM or SIGINT. Must run inside the actix (tokio) runtime.
pub async fn next_signal() -> std::io::Result<StopSignal> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let received = select(Box::pin(terminate.recv()), Box::pin(interrupt.recv())).await;
    Ok(match received {
        Either::Left(_) => StopSignal::Terminate,
        Either::Right(_) => StopSignal::Interrupt,
    })
}

/// Everything a drain acts on, built by `App::build`.
pub struct Drain {
    /// The flag `/readyz` reads.
    pub draining: Arc<Draining>,
    /// How long requests are still served once `/readyz` fails (`server.drain_ms`).
    pub drain_period: Duration,
    /// How long in-flight requests may take once the instance stopped accepting
    /// (`server.shutdown_timeout_secs`).
    pub finish_timeout: Duration,
    /// The instance's open pages.
    pub open_pages: Arc<OpenPages>,
    /// The producer the open pages are published through.
    pub producer: PageProducer,
    /// Ingest requests being processed now (the receiver's count).
    pub in_flight: Box<dyn Fn() -> usize + Send + Sync>,
    /// Called once the instance stopped accepting: requests waiting for their import are answered
    /// 202 now (their records are durable) rather than holding the stop up to their timeout.
    pub stop_waiting: Box<dyn Fn() + Send + Sync>,
}

impl Drain {
    /// Waits for SIGTERM (or SIGINT), then drains and stops `server`. A second signal during the
    /// drain period cuts it short.
    pub async fn on_signal(self: Arc<Self>, server: ServerHandle) {
        let signal = match next_signal().await {
            Ok(signal) => signal,
            Err(error) => {
                tracing::error!(target: LOG_TARGET, %error, "cannot listen for SIGTERM: no graceful drain");
                return;
            }
        };
        let period = match signal {
            StopSignal::Terminate => self.drain_period,
            StopSignal::Interrupt => Duration::ZERO,
        };
        self.drain(&server, period).await;
    }

    /// The drain itself: fail readiness, serve for `period`, stop accepting, wait for in-flight
    /// requests (publishing open pages so none waits for its linger), stop the server.
    pub async fn drain(&self, server: &ServerHandle, period: Duration) {
        self.draining.start();
        tracing::info!(
            target: LOG_TARGET,
            drain_ms = period.as_millis() as u64,
            "draining: /readyz answers 503; still serving until the load balancer moves away"
        );
        if !period.is_zero() {
            let cut_short = async {
                if next_signal().await.is_err() {
                    // Without a signal stream, only the timer ends the drain period.
                    futures_util::future::pending::<()>().await;
                }
            };
            if let Either::Right(_) = select(Box::pin(actix_web::rt::time::sleep(period)), Box::pin(cut_short)).await {
                tracing::warn!(target: LOG_TARGET, "second signal: drain period cut short");
            }
        }
        stop_accepting(server).await;
        (self.stop_waiting)();
        tracing::info!(target: LOG_TARGET, "stopped accepting; finishing in-flight requests");
        let deadline = Instant::now() + self.finish_timeout;
        let finished = loop {
            // Pages still open hold records of in-flight requests: publish them now.
            self.open_pages.flush(&self.producer).await;
            if (self.in_flight)() == 0 {
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
            actix_web::rt::time::sleep(IN_FLIGHT_POLL).await;
        };
        if finished {
            tracing::info!(target: LOG_TARGET, "no request in flight; stopping the server");
        } else {
            tracing::warn!(
                target: LOG_TARGET,
                in_flight = (self.in_flight)(),
                "requests still in flight after server.shutdown_timeout_secs; stopping anyway"
            );
        }
        // Graceful while nothing is in flight: idle keep-alive connections close on their own
        // (and a request still arriving on one is served); forced once the deadline has passed.
        server.stop(finished).await;
    }
}

/// How long an actix server's accept thread gets to act on a pause: it does so asynchronously,
/// and a connection it accepted meanwhile is still queued for a worker, which a stop drops
/// (a reset, or a closed connection without an answer, to its sender).
const PAUSE_SETTLE: Duration = Duration::from_millis(100);

/// Stops `server` accepting and waits until the connections it accepted reached its workers,
/// so that a graceful stop afterwards answers all of them.
pub async fn stop_accepting(server: &ServerHandle) {
    server.pause().await;
    actix_web::rt::time::sleep(PAUSE_SETTLE).await;
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::atomic::AtomicUsize;

    use actix_web::{web, App, HttpServer};

    use super::*;

    /// `GET /` over a fresh connection: the status line, or the error.
    fn get(addr: std::net::SocketAddr) -> std::io::Result<String> {
        let mut stream = std::net::TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer.lines().next().unwrap_or_default().to_string())
    }

    #[actix::test]
    async fn a_drain_fails_readiness_at_once_serves_through_its_period_and_waits_for_in_flight_requests() {
        let server = HttpServer::new(|| App::new().route("/", web::get().to(|| async { "ok" })))
            .workers(1)
            .disable_signals()
            .bind("127.0.0.1:0")
            .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        let running = actix_web::rt::spawn(server);
        let in_flight = Arc::new(AtomicUsize::new(1));
        let drain = Arc::new(Drain {
            draining: Arc::default(),
            drain_period: Duration::from_millis(300),
            finish_timeout: Duration::from_secs(30),
            open_pages: Arc::default(),
            // Never contacted: there is no open page to publish.
            producer: PageProducer::new(&crate::config::kafka::KafkaSettings::default(), "127.0.0.1:9").unwrap(),
            in_flight: {
                let in_flight = in_flight.clone();
                Box::new(move || in_flight.load(Ordering::Relaxed))
            },
            stop_waiting: Box::new(|| {}),
        });
        let drained = actix_web::rt::spawn({
            let drain = drain.clone();
            async move { drain.drain(&handle, drain.drain_period).await }
        });
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        assert!(
            drain.draining.is_draining(),
            "readiness fails as soon as the drain starts"
        );
        assert_eq!(
            get(addr).unwrap(),
            "HTTP/1.1 200 OK",
            "still serving during the drain period"
        );

        actix_web::rt::time::sleep(Duration::from_millis(600)).await;
        assert!(
            !drained.is_finished(),
            "the period is over, but a request is still in flight"
        );
        assert!(!running.is_finished());
        in_flight.store(0, Ordering::Relaxed);
        drained.await.unwrap();
        running.await.unwrap().unwrap();
        assert!(get(addr).is_err(), "stopped: nothing listens any more");
    }

    #[test]
    fn draining_starts_unset_and_stays_set() {
        let draining = Draining::default();
        assert!(!draining.is_draining());
        draining.start();
        draining.start();
        assert!(draining.is_draining());
    }
}
