//! `hookpipe worker`: an import worker that consumes pages and imports their records into the
//! listeners' targets, until SIGINT/SIGTERM and its grace period.

use std::process::ExitCode;

use crate::cli::{load, ServiceArgs};
use crate::worker::{stop_on_signals, Shutdown, Worker};

/// Runs an import worker until a signal stops it.
pub fn run(args: ServiceArgs) -> ExitCode {
    let settings = match load(args.config) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    crate::telemetry::init(args.log_json);
    let bootstrap = settings.kafka.brokers.trim().to_string();
    if bootstrap.is_empty() {
        eprintln!(
            "hookpipe worker: kafka.brokers is empty; a worker needs the brokers the serve tier uses \
             (with the embedded default, `hookpipe serve` prints its address: set HOOKPIPE_KAFKA__BROKERS to it)"
        );
        return ExitCode::from(2);
    }
    let shutdown = Shutdown::for_settings(&settings);
    if let Err(error) = stop_on_signals(shutdown.clone()) {
        eprintln!("hookpipe worker: {error}");
        return ExitCode::FAILURE;
    }
    let worker = match Worker::start(&settings, &bootstrap) {
        Ok(worker) => worker,
        Err(error) => {
            eprintln!("hookpipe worker: {error}");
            return ExitCode::FAILURE;
        }
    };
    // On stderr: standard output belongs to a `stdout` target's records.
    eprintln!(
        "hookpipe worker consuming {} as group {}",
        worker.topics().join(", "),
        settings.worker.group_id
    );
    if let Some(addr) = worker.metrics_addr() {
        eprintln!("worker metrics on http://{addr}/metrics");
    }
    worker.run(&shutdown);
    ExitCode::SUCCESS
}
