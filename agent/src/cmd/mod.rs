//! One file per command, each `run(args) -> exit code`: [`check`],
//! [`snapshot`], [`watch`], [`attest`], [`ledger`], [`validate`], [`gates`].
//! [`run`] only dispatches. Every reason a command could not evaluate is an
//! [`AppError`] (exit 3); a verdict is an exit code, never an error.

mod apply;
mod apply_hold;
mod apply_wait;
mod attest;
mod backtest;
mod check;
mod gate_new;
mod gate_run;
mod gate_test;
mod gate_trust;
mod gates;
mod ledger;
mod snapshot;
mod validate;
mod verify_attestation;
mod watch;

use crate::cli::{Cli, Command, ConfigArgs, GatesCommand};
use crate::config::{Config, ConfigError, ProcessEnv, UnknownPhase};
use std::io::Write as _;
use std::path::Path;

/// Why a command could not evaluate at all (exit 3). A source being down is
/// not one of these: that is a fact in the snapshot.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    UnknownPhase(#[from] UnknownPhase),
    /// A recorded snapshot that cannot be read.
    #[error(transparent)]
    Snapshot(#[from] crate::recording::RecordingError),
    #[error("cannot start the async runtime: {0}")]
    AsyncRuntime(std::io::Error),
    /// `watch` could not start (a gate that does not load, a bad --listen).
    #[error(transparent)]
    Watch(#[from] crate::watch::WatchError),
    #[error("cannot handle signals: {0}")]
    Signals(std::io::Error),
    /// The ledger could not be read or written (its error names it).
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    /// Output that could not be written (stdout, `--output`, `--record`).
    #[error("{path}: cannot write: {error}")]
    Write { path: String, error: std::io::Error },
    /// A file a command reads that cannot be read as what it must be (a
    /// statement, the snapshot or config it names).
    #[error("{path}: {message}")]
    Unreadable { path: String, message: String },
    /// Arguments that parse but do not fit the config (`attest` of a
    /// criterion no gate reads, `gates inspect` of an unknown gate).
    #[error("{command}: {message}")]
    Usage {
        command: &'static str,
        message: String,
    },
}

/// Runs a parsed command line; `Err` means "could not evaluate" (exit 3).
pub fn run(cli: Cli) -> Result<u8, AppError> {
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Snapshot(args) => snapshot::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Attest(args) => attest::run(args),
        Command::Ledger(args) => ledger::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Gate(GatesCommand::List(args)) => gates::list(args),
        Command::Gate(GatesCommand::Inspect(args)) => gates::inspect(args),
        Command::Gate(GatesCommand::Run(args)) => gate_run::run(args),
        Command::Gate(GatesCommand::Test(args)) => gate_test::run(args),
        Command::Gate(GatesCommand::New(args)) => gate_new::run(args),
        Command::Gate(GatesCommand::Keygen(args)) => gate_trust::keygen(args),
        Command::Gate(GatesCommand::Sign(args)) => gate_trust::sign(args),
        Command::Gate(GatesCommand::Verify(args)) => gate_trust::verify(args),
        Command::Gate(GatesCommand::Push(args)) => gate_trust::push(args),
        Command::Gate(GatesCommand::Pull(args)) => gate_trust::pull(args),
        Command::Backtest(args) => backtest::run(args),
        Command::Plan(args) => apply::plan(args),
        Command::Apply(args) => apply::apply(args),
        Command::VerifyAttestation(args) => verify_attestation::run(args),
    }
}

/// Writes a command's output to stdout. A reader that went away (`| head`)
/// is not an error: the command still exits with its verdict, quietly.
fn emit(text: &str) -> Result<(), AppError> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(AppError::Write {
            path: "stdout".into(),
            error,
        }),
    }
}

/// Prints a phase report in `format` (colour on a terminal) and returns
/// its verdict's exit code.
fn emit_report(
    report: &crate::verdict::PhaseReport,
    format: crate::report::OutputFormat,
) -> Result<u8, AppError> {
    use std::io::IsTerminal as _;
    let color = format == crate::report::OutputFormat::Table
        && crate::report::use_color(std::io::stdout().is_terminal());
    emit(&crate::report::render(report, format, color))?;
    Ok(match report.verdict {
        gatekeeper_model::Decision::Go => crate::cli::EXIT_GO,
        gatekeeper_model::Decision::NoGo => crate::cli::EXIT_NO_GO,
        gatekeeper_model::Decision::Defer => crate::cli::EXIT_DEFER,
    })
}

/// One line for the person at the terminal, on stderr; a closed stderr is ignored.
pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn load_config(args: &ConfigArgs) -> Result<Config, AppError> {
    Ok(Config::load(
        &args.config,
        args.profile.as_deref(),
        &ProcessEnv,
    )?)
}

/// The config, or (when the default file is absent) an empty one: listing the
/// built-in gates needs no config.
fn load_config_or_builtins(args: &ConfigArgs) -> Result<Config, AppError> {
    if args.config.as_os_str() == "gatekeeper.toml"
        && !args.config.exists()
        && args.profile.is_none()
    {
        return Ok(Config::parse("", "(no config)", None)?);
    }
    load_config(args)
}

/// The tokio runtime a command's collections, ledger and watch run on.
fn async_runtime() -> Result<tokio::runtime::Runtime, AppError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(AppError::AsyncRuntime)
}

/// `host-pid`: unique per process, readable in the lease, the ledger and
/// attestations.
fn default_agent_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gatekeeper".into());
    format!("{host}-{}", std::process::id())
}

/// The size a snapshot or recording file may have (`runtime.max_snapshot_size`).
fn snapshot_limit(config: &Config) -> u64 {
    config
        .runtime
        .max_snapshot_size
        .map_or(crate::files::DEFAULT_MAX_SNAPSHOT_BYTES, |b| b.0 as u64)
}

/// [`crate::files::write_atomically`], its error naming the file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    crate::files::write_atomically(path, bytes).map_err(|error| AppError::Write {
        path: path.display().to_string(),
        error,
    })
}
