//! Stopping a worker: the `Shutdown` handle a signal (or a test) requests the stop through, and
//! the real-time `Pacer` whose sleeps end when the stop's grace period is over.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::Settings;
use crate::worker::import::Pacer;

/// Asks a worker to stop: it finishes the page in hand, within a grace period.
#[derive(Clone, Debug)]
pub struct Shutdown {
    state: Arc<ShutdownState>,
}

#[derive(Debug)]
struct ShutdownState {
    requested_at: Mutex<Option<Instant>>,
    grace: Duration,
}

impl Shutdown {
    /// A handle whose page in hand may take `grace` to finish once stop is requested.
    pub fn new(grace: Duration) -> Shutdown {
        Shutdown {
            state: Arc::new(ShutdownState {
                requested_at: Mutex::new(None),
                grace,
            }),
        }
    }

    /// With the grace period of `worker.shutdown_timeout_secs`.
    pub fn for_settings(settings: &Settings) -> Shutdown {
        Shutdown::new(Duration::from_secs(settings.worker.shutdown_timeout_secs))
    }

    /// Requests the stop (the first request starts the grace period).
    pub fn request(&self) {
        let mut requested_at = self.state.requested_at.lock().unwrap_or_else(PoisonError::into_inner);
        requested_at.get_or_insert_with(Instant::now);
    }

    /// Whether a stop was requested.
    pub fn requested(&self) -> bool {
        self.state
            .requested_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Whether the grace period of a requested stop is over.
    fn grace_over(&self) -> bool {
        self.state
            .requested_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() >= self.state.grace)
    }
}

/// Requests `shutdown` on SIGTERM or Ctrl-C (a thread with its own small runtime).
pub fn stop_on_signals(shutdown: Shutdown) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the signal runtime: {e}"))?;
    use tokio::signal::unix::{signal, SignalKind};
    let (mut terminate, mut hangup) = runtime
        .block_on(async { Ok::<_, std::io::Error>((signal(SignalKind::terminate())?, signal(SignalKind::hangup())?)) })
        .map_err(|e| format!("cannot listen for SIGTERM and SIGHUP: {e}"))?;
    std::thread::Builder::new()
        .name("worker-signals".into())
        .spawn(move || {
            runtime.block_on(async {
                use futures_util::future::{select, Either};
                let mut stop = select(Box::pin(terminate.recv()), Box::pin(tokio::signal::ctrl_c()));
                // A SIGHUP (a reload meant for the serve tier, a closed terminal) is logged and
                // ignored: the worker has nothing to reload.
                loop {
                    match select(stop, Box::pin(hangup.recv())).await {
                        Either::Left(_) => break,
                        Either::Right((_, pending)) => {
                            crate::telemetry::events::HangupIgnored { tier: "worker" }.emit();
                            stop = pending;
                        }
                    }
                }
            });
            tracing::info!("stop requested: finishing the page in hand, then committing");
            shutdown.request();
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    Ok(())
}

/// Real time; sleeps are cut short when the shutdown grace period ends.
pub struct LivePacer<'a> {
    /// The stop whose grace period cuts sleeps short.
    pub shutdown: &'a Shutdown,
}

impl Pacer for LivePacer<'_> {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration) -> bool {
        let end = Instant::now() + duration;
        loop {
            if self.shutdown.grace_over() {
                return false;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }

    fn jitter(&self) -> f64 {
        // 53 random bits from a v4 UUID: uniform in [0, 1) without a random-number dependency.
        (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
    }

    fn must_abandon(&self) -> bool {
        self.shutdown.grace_over()
    }
}
