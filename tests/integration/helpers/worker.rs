//! An import worker running inside the test process, and polling for what it did.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A worker running in this process, stopped (SIGTERM-like) on drop.
pub struct InProcessWorker {
    shutdown: hookpipe::worker::Shutdown,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Its metrics listener.
    pub metrics_addr: Option<SocketAddr>,
}

impl InProcessWorker {
    /// Starts a worker with `settings` on a thread.
    pub fn start(settings: &hookpipe::config::Settings, bootstrap: &str) -> InProcessWorker {
        let worker = hookpipe::worker::Worker::start(settings, bootstrap).expect("worker starts");
        let metrics_addr = worker.metrics_addr();
        let shutdown = hookpipe::worker::Shutdown::for_settings(settings);
        let thread_shutdown = shutdown.clone();
        let thread = std::thread::spawn(move || worker.run(&thread_shutdown));
        InProcessWorker {
            shutdown,
            thread: Some(thread),
            metrics_addr,
        }
    }

    /// Requests the stop and waits for the worker to finish.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        self.shutdown.request();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for InProcessWorker {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// Polls `check` every 100 ms until it gives a value or `timeout` passes.
pub fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
