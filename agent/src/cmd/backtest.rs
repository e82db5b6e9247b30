//! `gatekeeper backtest (PHASE | --gate G) --recording F`: the phase (or
//! one gate) evaluated at every point of a recording, each snapshot with
//! the ones before it as history — the window `watch` would keep — and the
//! rounds fed to `watch`'s own incident state machine, so "a plan would
//! run" means what it would mean in the daemon (once per incident, after
//! the cooldown, not while a veto gate is not go). The timeline says when
//! each criterion changed, when each trigger was raised (and since when
//! its condition held) and cleared, and when an incident opened, a plan
//! would run or was blocked, and the incident closed.

use super::gate_run::{RUN_PHASE, one_gate_config};
use super::{AppError, async_runtime, emit, load_config, snapshot_limit};
use crate::backtest::{self, render};
use crate::cli::{BacktestArgs, EXIT_GO, InspectFormat};
use crate::gate_set::GateSet;
use crate::ledger::Ledger;
use crate::recording::read_recording;
use gatekeeper_model::Snapshot;
use std::path::PathBuf;

pub(super) fn run(args: BacktestArgs) -> Result<u8, AppError> {
    let (config, phase) = match (&args.phase, &args.gate) {
        (Some(phase), _) => (load_config(&args.config)?, phase.clone()),
        (None, Some(gate)) => {
            let (config, _) =
                one_gate_config(gate, args.params.as_deref(), args.params_file.as_deref())?;
            (config, RUN_PHASE.to_owned())
        }
        (None, None) => unreachable!("clap requires a phase or --gate"),
    };
    let names = config.phase_gates(&phase)?.to_vec();
    let gates = GateSet::load_checked(&config)?;
    let snapshots = read_all(&args.recording, snapshot_limit(&config))?;
    let mut result = backtest::replay(&config, &gates, &phase, &names, snapshots).map_err(|e| {
        AppError::Usage {
            command: "backtest",
            message: e.to_string(),
        }
    })?;
    if args.ledger {
        let records = async_runtime()?.block_on(async {
            let ledger = Ledger::open_to_read(&config).await?;
            ledger.read().await
        })?;
        result.compare_ledger(&records);
    }
    match args.output {
        InspectFormat::Json => emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&result).expect("encodes")
        ))?,
        InspectFormat::Table => emit(&render::table(&result))?,
    }
    Ok(EXIT_GO)
}

/// Every snapshot of the recordings (files, or directories of them),
/// oldest first, one per time.
fn read_all(paths: &[PathBuf], limit: u64) -> Result<Vec<Snapshot>, AppError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| AppError::Unreadable {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            let mut inside: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default();
                    name.ends_with(".json") && !name.ends_with(".intoto.json")
                })
                .collect();
            inside.sort();
            if inside.is_empty() {
                return Err(AppError::Unreadable {
                    path: path.display().to_string(),
                    message: "no snapshot or recording (*.json) in this directory".into(),
                });
            }
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    let mut all: Vec<(Snapshot, usize)> = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let r = read_recording(file, limit)?;
        all.extend(r.history.into_iter().map(|s| (s, i)));
        all.push((r.current, i));
    }
    all.sort_by_key(|(s, _)| s.taken_at);
    let mut out: Vec<(Snapshot, usize)> = Vec::with_capacity(all.len());
    for (s, i) in all {
        match out.last() {
            // The same snapshot in two files (a recording and a copy of
            // its last snapshot): once.
            Some((last, _)) if last.taken_at == s.taken_at && *last == s => {}
            // Two different facts for one moment: which is the truth is
            // not for the replay to guess.
            Some((last, j)) if last.taken_at == s.taken_at => {
                return Err(AppError::Unreadable {
                    path: files[i].display().to_string(),
                    message: format!(
                        "its snapshot at {} differs from the one {} has at that time; \
                         replay one of them",
                        gatekeeper_model::format_timestamp(s.taken_at),
                        files[*j].display()
                    ),
                });
            }
            _ => out.push((s, i)),
        }
    }
    Ok(out.into_iter().map(|(s, _)| s).collect())
}
