//! The `hookpipe` command line: the clap definition of every command and one module per command,
//! each with a `run(args) -> ExitCode` that `main` dispatches to. `serve` and `worker` run the two
//! tiers, `check-config` and `tail` are local tools, and `listeners` and `errors` are clients of a
//! running server's management API ([`client`]) that print readable text ([`render`]).

pub mod check_config;
pub mod client;
pub mod errors;
pub mod listeners;
pub mod render;
pub mod serve;
pub mod tail;
pub mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::Settings;

/// Default configuration file, relative to the working directory.
const DEFAULT_CONFIG: &str = "config/hookpipe.toml";

/// Target of the log lines `serve` writes itself: they were logged by the binary crate, and log
/// filters (`HOOKPIPE_LOG`) and JSON log consumers keep seeing them under the same name.
const LOG_TARGET: &str = "hookpipe";

/// `hookpipe`: the command line.
#[derive(Parser)]
#[command(name = "hookpipe", version, about = "Webhooks in, verified pages on Kafka out")]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// One `hookpipe` command.
#[derive(Subcommand)]
pub enum Command {
    /// Run the listener tier.
    Serve(ServiceArgs),
    /// Run an import worker: consume pages and import them into the listeners' targets.
    Worker(ServiceArgs),
    /// Validate a configuration file (with the environment's overrides) and list every error.
    CheckConfig(check_config::CheckConfigArgs),
    /// Print the pages arriving on a topic.
    Tail(tail::TailArgs),
    /// Manage listeners through a running server's management API ($HOOKPIPE_ADMIN_TOKEN).
    Listeners(listeners::ListenersArgs),
    /// List, inspect, retry and resolve import errors through a running server's API ($HOOKPIPE_ADMIN_TOKEN).
    Errors(errors::ErrorsArgs),
}

/// The options of the long-running tiers, `serve` and `worker`.
#[derive(Args, Debug)]
pub struct ServiceArgs {
    /// Configuration file (default: $HOOKPIPE_CONFIG, then config/hookpipe.toml).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Log JSON lines instead of human-readable text.
    #[arg(long)]
    pub log_json: bool,
}

/// The options of the management API's clients, `listeners` and `errors`, on every subcommand.
#[derive(Args, Debug)]
pub struct ApiArgs {
    /// Base URL of the hookpipe server [default: $HOOKPIPE_SERVER, else http://127.0.0.1:8080].
    /// The admin token is read from $HOOKPIPE_ADMIN_TOKEN.
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// Print the server's raw JSON response instead of readable text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The configuration file to read: `explicit`, else `$HOOKPIPE_CONFIG`, else the default file
/// when it exists, else none (built-in defaults and environment overrides only).
pub fn config_path(explicit: Option<PathBuf>) -> Option<PathBuf> {
    explicit
        .or_else(|| std::env::var_os("HOOKPIPE_CONFIG").map(PathBuf::from))
        .or_else(|| {
            let default = PathBuf::from(DEFAULT_CONFIG);
            default.exists().then_some(default)
        })
}

/// The settings of [`config_path`]; on errors, prints each on stderr and gives exit code 2.
pub fn load(path: Option<PathBuf>) -> Result<Settings, ExitCode> {
    Settings::load(config_path(path).as_deref()).map_err(|errors| {
        for error in &errors.0 {
            eprintln!("config error: {error}");
        }
        ExitCode::from(2)
    })
}
