//! `gatekeeper attest PHASE CRITERION --by WHO`: one attestation record in
//! the configured ledger, for a criterion a phase's gates declare they read.

use super::{AppError, async_runtime, emit, load_config};
use crate::cli::{AttestArgs, EXIT_GO};
use crate::config::Config;
use crate::gate_set::GateSet;
use crate::ledger::{Ledger, LedgerError, Record};

pub(super) fn run(args: AttestArgs) -> Result<u8, AppError> {
    let config = load_config(&args.config)?;
    let AttestArgs {
        phase,
        criterion,
        by,
        note,
        ..
    } = args;
    config.phase_gates(&phase)?;
    let usage = |message: String| AppError::Usage {
        command: "attest",
        message,
    };
    if config.ledger.is_none() {
        return Err(usage(
            "the config has no [ledger]: there is nowhere to record an attestation".into(),
        ));
    }
    let gates = GateSet::load_checked(&config)?;
    let names = attestation_names(&gates, &config, &phase);
    if !names.contains(&criterion) {
        return Err(usage(format!(
            "{phase} has no attestation criterion `{criterion}` (it has: {})",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        )));
    }
    if by.trim().is_empty() {
        return Err(usage("--by must name who attests".into()));
    }
    let record = Record::Attestation {
        phase: phase.clone(),
        criterion: criterion.clone(),
        by: by.clone(),
        at: chrono::Utc::now(),
        note,
    };
    let where_ = async_runtime()?.block_on(async {
        let ledger = Ledger::open(&config).await?;
        ledger.append(&record).await?;
        Ok::<_, LedgerError>(ledger.describe())
    })?;
    emit(&format!(
        "attested {phase} {criterion} by {by} ({where_})\n"
    ))?;
    Ok(EXIT_GO)
}

/// The attestations a phase's gates read (their `needs`), by criterion.
fn attestation_names(gates: &GateSet, config: &Config, phase: &str) -> Vec<String> {
    let mut names: Vec<String> = config
        .phases
        .get(phase)
        .map(|p| p.gates.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|g| gates.gate(g)?.params.as_ref().ok())
        .flat_map(|p| &p.needs.attestations)
        .filter(|a| a.phase == phase)
        .map(|a| a.criterion.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}
