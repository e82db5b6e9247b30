//! `gatekeeper verify-attestation STATEMENT [--snapshot S] [-c CONFIG]`: a
//! verdict statement (`check --attest`) checked for consistency, and with
//! the snapshot it names, re-evaluated with the config to the identical
//! report. Exit 0 verified, 1 it does not hold.

use super::{AppError, emit, load_config, snapshot_limit};
use crate::attestation::{self, Mismatch, Statement};
use crate::cli::{EXIT_GO, EXIT_NO_GO, VerifyAttestationArgs};
use crate::files::{DEFAULT_MAX_SNAPSHOT_BYTES, MAX_CONFIG_BYTES, read_untrusted};
use crate::gate_set::GateSet;
use crate::recording::{RecordingError, parse_recording};
use crate::text::untrusted_line;

pub(super) fn run(args: VerifyAttestationArgs) -> Result<u8, AppError> {
    let shown = args.statement.display().to_string();
    let unreadable = |message: String| AppError::Unreadable {
        path: shown.clone(),
        message,
    };
    let bytes = read_untrusted(&args.statement, DEFAULT_MAX_SNAPSHOT_BYTES, "a statement")
        .map_err(|e| unreadable(e.to_string()))?;
    let statement: Statement = serde_json::from_slice(&bytes.bytes)
        .map_err(|e| unreadable(format!("not a verdict statement: {e}")))?;
    let verdict = match verify(&args, &statement) {
        Ok(v) => v,
        Err(Failure::Mismatch(m)) => {
            emit(&format!(
                "NOT VERIFIED: {}\n",
                untrusted_line(&m.to_string())
            ))?;
            return Ok(EXIT_NO_GO);
        }
        Err(Failure::Cannot(e)) => return Err(e),
    };
    emit(&verdict)?;
    Ok(EXIT_GO)
}

enum Failure {
    Mismatch(Mismatch),
    Cannot(AppError),
}

impl From<Mismatch> for Failure {
    fn from(m: Mismatch) -> Self {
        Failure::Mismatch(m)
    }
}

impl<E: Into<AppError>> From<E> for Failure
where
    E: NotMismatch,
{
    fn from(e: E) -> Self {
        Failure::Cannot(e.into())
    }
}

/// Errors that mean "could not check" (exit 3), not "does not hold".
trait NotMismatch {}
impl NotMismatch for AppError {}
impl NotMismatch for crate::config::ConfigError {}
impl NotMismatch for crate::config::UnknownPhase {}
impl NotMismatch for RecordingError {}

fn verify(args: &VerifyAttestationArgs, statement: &Statement) -> Result<String, Failure> {
    statement.check_consistent()?;
    let p = &statement.predicate;
    let subject = &statement.subject[0];
    let summary = format!(
        "{} {} on {} (sha256 {}), by {}",
        untrusted_line(&p.phase),
        untrusted_line(&p.verdict),
        untrusted_line(&subject.name),
        untrusted_line(&subject.digest["sha256"]),
        p.gates
            .iter()
            .map(|g| untrusted_line(&g.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let Some(snapshot) = &args.snapshot else {
        return Ok(format!(
            "consistent: {summary}\nnot re-evaluated: pass --snapshot (and -c) to replay it\n"
        ));
    };
    let config_file =
        read_untrusted(&args.config.config, MAX_CONFIG_BYTES, "a config").map_err(|e| {
            AppError::Unreadable {
                path: args.config.config.display().to_string(),
                message: e.to_string(),
            }
        })?;
    let config = load_config(&args.config)?;
    let file = read_untrusted(snapshot, snapshot_limit(&config), "a snapshot").map_err(|e| {
        AppError::Unreadable {
            path: snapshot.display().to_string(),
            message: e.to_string(),
        }
    })?;
    statement.check_subject(&file.bytes)?;
    let names = config.phase_gates(&p.phase)?;
    let gates = GateSet::load_checked(&config)?;
    let recording = parse_recording(&file.bytes).map_err(|problem| RecordingError {
        path: snapshot.display().to_string(),
        problem,
    })?;
    let report = gates.evaluate_phase(&p.phase, names, &recording);
    statement.check_replay(
        &config_file.sha256,
        &attestation::gates_used(&gates, names),
        &report,
    )?;
    Ok(format!(
        "verified: {summary}\nre-evaluated to the identical report ({})\n",
        p.report_sha256
    ))
}
