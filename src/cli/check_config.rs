//! `hookpipe check-config FILE`: load a configuration file with the environment's overrides and
//! list every error, without starting anything.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::Settings;

/// `hookpipe check-config`: the file to check.
#[derive(Args, Debug)]
pub struct CheckConfigArgs {
    /// The file to check.
    pub file: PathBuf,
}

/// Prints `FILE: ok (N listeners)`, or each error and their count (exit 1), on stdout.
pub fn run(args: CheckConfigArgs) -> ExitCode {
    match Settings::load(Some(&args.file)) {
        Ok(settings) => {
            println!("{}: ok ({} listeners)", args.file.display(), settings.listeners.len());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in &errors.0 {
                println!("error: {error}");
            }
            println!("{}: {} error(s)", args.file.display(), errors.0.len());
            ExitCode::FAILURE
        }
    }
}
