//! `gatekeeper check PHASE`: one verdict for a phase, on a recorded snapshot,
//! a live collection (optionally sampled for history), or live rounds until
//! go (`--wait`). Exit 0 go, 1 no-go, 2 defer.

use super::{AppError, async_runtime, emit, load_config, note, snapshot_json, write_atomically};
use crate::cli::{CheckArgs, EXIT_DEFER, EXIT_GO, EXIT_NO_GO};
use crate::collect;
use crate::config::Config;
use crate::gate_set::GateSet;
use crate::recording::{Recording, read_recording};
use crate::report;
use crate::verdict::PhaseReport;
use crate::wait::{self, WaitOptions};
use gatekeeper_model::{Decision, Snapshot, format_duration};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(super) fn run(args: CheckArgs) -> Result<u8, AppError> {
    let config = load_config(&args.config)?;
    let phase = args.phase.as_str();
    // Refuse an unknown phase before reading or collecting anything.
    let gate_names = config.phase_gates(phase)?;
    let report = if args.wait {
        let options = WaitOptions {
            interval: args.interval,
            timeout: args.timeout,
        };
        let outcome = wait_live(&config, phase, gate_names, options)?;
        if let Some(dir) = &args.record {
            record_recording(dir, phase, &outcome.recording)?;
        }
        outcome.report
    } else {
        let recording = match &args.snapshot {
            Some(path) => read_recording(
                path,
                config
                    .runtime
                    .max_snapshot_size
                    .map_or(crate::files::DEFAULT_MAX_SNAPSHOT_BYTES, |b| b.0 as u64),
            )?,
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
                    sample_live(&config, window, args.interval)?
                };
                if let Some(dir) = &args.record {
                    record_recording(dir, phase, &recording)?;
                }
                recording
            }
        };
        check_phase(&config, phase, gate_names, &recording)?
    };
    let color = args.output == report::OutputFormat::Table
        && report::use_color(std::io::stdout().is_terminal());
    emit(&report::render(&report, args.output, color))?;
    Ok(match report.verdict {
        Decision::Go => EXIT_GO,
        Decision::NoGo => EXIT_NO_GO,
        Decision::Defer => EXIT_DEFER,
    })
}

/// Loads the config's gates (params checked under every profile) and
/// evaluates the phase's on a recording.
fn check_phase(
    config: &Config,
    phase: &str,
    gate_names: &[String],
    recording: &Recording,
) -> Result<PhaseReport, AppError> {
    let span = tracing::info_span!("check", phase);
    let _enter = span.enter();
    let gates = GateSet::load_checked(config)?;
    Ok(gates.evaluate_phase(phase, gate_names, recording))
}

pub(super) fn collect_live(config: &Config) -> Result<Snapshot, AppError> {
    Ok(async_runtime()?.block_on(collect::collect(config)))
}

/// A one-shot check's sampling window: one collection every `interval` for
/// `window`; the last is the current snapshot, the others its history.
fn sample_live(
    config: &Config,
    window: Duration,
    interval: Duration,
) -> Result<Recording, AppError> {
    let runtime = async_runtime()?;
    note(&format!(
        "sampling the sources for {} (every {}) for rates and holds",
        format_duration(window),
        format_duration(interval),
    ));
    Ok(wait::sample(window, interval, || {
        runtime.block_on(collect::collect(config))
    }))
}

/// `check --wait`: gates loaded once, one async runtime, a progress line per round on stderr.
fn wait_live(
    config: &Config,
    phase: &str,
    gate_names: &[String],
    options: WaitOptions,
) -> Result<wait::WaitOutcome, AppError> {
    let runtime = async_runtime()?;
    let span = tracing::info_span!("check", phase);
    let _enter = span.enter();
    let gates = GateSet::load_checked(config)?;
    let outcome = wait::wait_until_go(
        &gates,
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
            format_duration(options.timeout)
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
    let stamp = recording.current.taken_at.format("%Y%m%dT%H%M%S%.3fZ");
    let path = dir.join(format!("{stamp}-{phase}.json"));
    let json = if recording.history.is_empty() {
        snapshot_json(&recording.current)
    } else {
        let snapshots: Vec<&Snapshot> = recording
            .history
            .iter()
            .chain([&recording.current])
            .collect();
        serde_json::to_string_pretty(&serde_json::json!({ "snapshots": snapshots }))
            .expect("snapshots always encode")
    };
    write_atomically(&path, json.as_bytes())?;
    tracing::info!(path = %path.display(), "snapshot recorded");
    Ok(path)
}
