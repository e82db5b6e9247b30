//! The `gatekeeper` binary: parse, run, map the outcome to an exit code.

use clap::Parser;
use gatekeeper::cli::{Cli, EXIT_CANNOT_EVALUATE};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are successes; every usage error is "could not evaluate".
            return if e.use_stderr() {
                ExitCode::from(EXIT_CANNOT_EVALUATE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let level = match cli.command {
        gatekeeper::cli::Command::Watch(_) => "info",
        _ => "warn",
    };
    gatekeeper::logging::init_logging(cli.log_format, level);
    match gatekeeper::cmd::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            gatekeeper::cmd::note(&format!(
                "gatekeeper: error: {}",
                gatekeeper::text::untrusted_line(&e.to_string())
            ));
            ExitCode::from(EXIT_CANNOT_EVALUATE)
        }
    }
}
