//! `gatekeeper check PHASE`: one verdict for a phase, on a recorded snapshot,
//! a live collection (optionally sampled for history), or live rounds until
//! go (`--wait`). Exit 0 go, 1 no-go, 2 defer.

use super::{
    AppError, async_runtime, default_agent_name, load_config, note, snapshot_limit,
    write_atomically,
};
use crate::attestation;
use crate::cli::CheckArgs;
use crate::collect;
use crate::config::Config;
use crate::files::{MAX_CONFIG_BYTES, read_untrusted};
use crate::gate_set::GateSet;
use crate::recording::{self, Recording, read_recording};
use crate::verdict::PhaseReport;
use crate::wait::{self, WaitOptions};
use gatekeeper_model::{Snapshot, format_duration};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(super) fn run(args: CheckArgs) -> Result<u8, AppError> {
    let config = load_config(&args.config)?;
    let phase = args.phase.as_str();
    // Refuse an unknown phase before reading or collecting anything.
    let gate_names = config.phase_gates(phase)?;
    let span = tracing::info_span!("check", phase);
    let _enter = span.enter();
    let gates = GateSet::load_checked(&config)?;
    let (report, recording) = if args.wait {
        let options = WaitOptions {
            interval: args.interval,
            timeout: args.timeout,
            stop: wait::Stop::default(),
        };
        let outcome = wait_live(&config, &gates, phase, gate_names, options)?;
        if let Some(dir) = &args.record {
            record_recording(dir, phase, &outcome.recording)?;
        }
        (outcome.report, outcome.recording)
    } else {
        let recording = match &args.snapshot {
            Some(path) => read_recording(path, snapshot_limit(&config))?,
            None => {
                let window = args
                    .sample
                    .or_else(|| config.phases[phase].sample.map(|d| d.0))
                    .unwrap_or_default();
                let recording = if window.is_zero() {
                    Recording {
                        current: collect_live(&config)?,
                        history: Vec::new(),
                    }
                } else {
                    sample_live(&config, window, args.interval, &wait::Stop::default())?
                };
                if let Some(dir) = &args.record {
                    record_recording(dir, phase, &recording)?;
                }
                recording
            }
        };
        let report = gates.evaluate_phase(phase, gate_names, &recording);
        (report, recording)
    };
    if let Some(dir) = &args.attest {
        let limit = snapshot_limit(&config);
        attest(&args, &gates, gate_names, &report, &recording, dir, limit)?;
    }
    super::emit_report(&report, args.output)
}

/// `--attest DIR`: the verdict as an in-toto statement whose subject is
/// the file it was decided on (the `--snapshot` file, or the recording of
/// the live collection, written into DIR beside it).
fn attest(
    args: &CheckArgs,
    gates: &GateSet,
    gate_names: &[String],
    report: &PhaseReport,
    recording: &Recording,
    dir: &Path,
    limit: u64,
) -> Result<(), AppError> {
    let subject_path = match &args.snapshot {
        Some(path) => path.clone(),
        None => record_recording(dir, &args.phase, recording)?,
    };
    let unreadable = |path: &Path, e: crate::files::FileError| AppError::Unreadable {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let subject = read_untrusted(&subject_path, limit, "a snapshot")
        .map_err(|e| unreadable(&subject_path, e))?;
    let config = read_untrusted(&args.config.config, MAX_CONFIG_BYTES, "a config")
        .map_err(|e| unreadable(&args.config.config, e))?;
    let statement = attestation::statement(
        report,
        (file_name(&subject_path), subject.sha256),
        attestation::gates_used(gates, gate_names),
        attestation::ConfigUsed {
            path: args.config.config.display().to_string(),
            sha256: config.sha256,
            profile: args.config.profile.clone(),
        },
        default_agent_name(),
        None,
    );
    std::fs::create_dir_all(dir).map_err(|error| AppError::Write {
        path: dir.display().to_string(),
        error,
    })?;
    let path = dir.join(format!(
        "{}.intoto.json",
        recording::file_stem(report.taken_at, &args.phase)
    ));
    let json = serde_json::to_string_pretty(&statement).expect("a statement encodes");
    write_atomically(&path, json.as_bytes())?;
    note(&format!("attestation: {}", path.display()));
    Ok(())
}

/// A path's last component, as a statement's subject names it.
fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

pub(super) fn collect_live(config: &Config) -> Result<Snapshot, AppError> {
    Ok(async_runtime()?.block_on(collect::collect(config)))
}

/// A one-shot check's sampling window: one collection every `interval` for
/// `window`; the last is the current snapshot, the others its history.
pub(super) fn sample_live(
    config: &Config,
    window: Duration,
    interval: Duration,
    stop: &wait::Stop,
) -> Result<Recording, AppError> {
    let runtime = async_runtime()?;
    note(&format!(
        "sampling the sources for {} (every {}) for rates and holds",
        format_duration(window),
        format_duration(interval),
    ));
    Ok(wait::sample(window, interval, stop, || {
        runtime.block_on(collect::collect(config))
    }))
}

/// `check --wait`: gates loaded once, one async runtime, a progress line per round on stderr.
fn wait_live(
    config: &Config,
    gates: &GateSet,
    phase: &str,
    gate_names: &[String],
    options: WaitOptions,
) -> Result<wait::WaitOutcome, AppError> {
    let runtime = async_runtime()?;
    let timeout = options.timeout;
    let outcome = wait::wait_until_go(
        gates,
        phase,
        gate_names,
        options,
        || runtime.block_on(collect::collect(config)),
        |round| note(&wait::progress_line(round)),
    );
    if outcome.timed_out {
        note(&format!(
            "{phase}: still {} after {} rounds; gave up at --timeout {}",
            outcome.report.verdict.as_str(),
            outcome.rounds,
            format_duration(timeout)
        ));
    }
    Ok(outcome)
}

/// Writes `DIR/<taken_at>-<phase>.json`: the snapshot, or with history a
/// recording (`{"snapshots":[…]}`, oldest first), as `--snapshot` reads them.
fn record_recording(dir: &Path, phase: &str, recording: &Recording) -> Result<PathBuf, AppError> {
    std::fs::create_dir_all(dir).map_err(|error| AppError::Write {
        path: dir.display().to_string(),
        error,
    })?;
    let path = dir.join(format!(
        "{}.json",
        recording::file_stem(recording.current.taken_at, phase)
    ));
    let json = recording::to_json(&recording.current, &recording.history);
    write_atomically(&path, json.as_bytes())?;
    tracing::info!(path = %path.display(), "snapshot recorded");
    Ok(path)
}
