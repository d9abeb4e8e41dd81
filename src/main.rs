//! The `hookpipe` command line: serve | worker | check-config | tail | listeners | errors.
//! Every command lives in `hookpipe::cli`; this file parses the arguments and dispatches.

/// jemalloc rather than glibc malloc: see Cargo.toml.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::process::ExitCode;

use clap::Parser;

use hookpipe::cli::{self, Cli, Command};

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => cli::serve::run(args),
        Command::Worker(args) => cli::worker::run(args),
        Command::CheckConfig(args) => cli::check_config::run(args),
        Command::Tail(args) => cli::tail::run(args),
        Command::Listeners(args) => cli::listeners::run(args),
        Command::Errors(args) => cli::errors::run(args),
    }
}
