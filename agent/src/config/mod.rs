//! `gatekeeper.toml`: sources, runtime limits, gates, phases, profiles,
//! the watch and the ledger.
//!
//! Every error names the file, the line and the field. A profile is an
//! overlay: its tables merge into the base config, its other values replace.
//! Every profile is checked when the file loads, so a typo in `production`
//! fails in CI, not during the production window.
//!
//! - [`schema`]: the sections and their fields (serde, `deny_unknown_fields`);
//!   [`watch`] the `[watch]` and `[ledger]` sections.
//! - [`values`]: validated values: durations, sizes, secrets, kebab-case ids.
//! - `load`: reading, profiles and environment overrides.
//! - `locate`: mapping a field back to its line (and profile).
//! - `validate`: what the types alone cannot check; `step_check` the same
//!   for plan and phase steps.

mod ledger;
mod load;
mod locate;
pub mod schema;
mod step_check;
mod steps;
mod trust;
mod validate;
pub mod values;
mod watch;

pub use ledger::*;
pub use load::{Environment, ProcessEnv};
pub use locate::ParamsByProfile;
pub use schema::*;
pub use step_check::StepPlace;
pub use steps::{ConsumerSpec, DEFAULT_WAIT_FOR, SpecError, StepConfig, StreamSpec};
pub use trust::{TrustConfig, TrustKeyConfig, TrustKeyError};
pub use values::*;
pub use watch::*;

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: crate::files::FileError,
    },
    /// Not valid TOML.
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    /// A field is missing, unknown, of the wrong type, or has a bad value.
    #[error("{path}:{line}: {profile}{field}: {message}")]
    Field {
        path: String,
        line: usize,
        profile: String,
        field: String,
        message: String,
    },
    #[error("{path}: unknown profile `{name}` (defined: {defined})")]
    UnknownProfile {
        path: String,
        name: String,
        defined: String,
    },
}

/// The whole config after the profile and environment were applied.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub sources: SourcesConfig,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    #[serde(default)]
    pub gates: BTreeMap<String, GateConfig>,
    #[serde(default)]
    pub phases: BTreeMap<String, PhaseConfig>,
    /// `gatekeeper watch`: interval, plans, safety.
    pub watch: Option<WatchConfig>,
    /// Where verdicts, incidents, actions and attestations are kept.
    pub ledger: Option<LedgerConfig>,
    /// Which keys may sign which gates; with it, unsigned gates are refused.
    pub trust: Option<TrustConfig>,
    /// The directory of the config file; relative gate paths start there.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The profile that was applied, if any.
    #[serde(skip)]
    pub profile: Option<String>,
    /// Every gate's params in the base config and under every profile, to
    /// check against the gates once they are loaded.
    #[serde(skip)]
    pub params_by_profile: std::sync::Arc<ParamsByProfile>,
}

impl Config {
    /// The ledger's JSONL file (the `file` backend), resolved against the config dir.
    pub fn ledger_file(&self) -> PathBuf {
        let file = self
            .ledger
            .as_ref()
            .and_then(|l| l.file.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_LEDGER_FILE));
        if file.is_absolute() {
            file
        } else {
            self.base_dir.join(file)
        }
    }

    /// The largest gate read (`runtime.max_gate_size`, default 32 MiB).
    pub fn max_gate_bytes(&self) -> u64 {
        self.runtime
            .max_gate_size
            .map_or(crate::files::DEFAULT_MAX_GATE_BYTES, |b| b.0 as u64)
    }

    /// Where a gate's component comes from, resolved against the config dir.
    pub fn gate_wasm_path(&self, gate: &GateConfig) -> Option<PathBuf> {
        gate.wasm.as_ref().map(|p| {
            if p.is_absolute() {
                p.clone()
            } else {
                self.base_dir.join(p)
            }
        })
    }

    /// The gates of a phase, or why there is no such phase.
    pub fn phase_gates(&self, phase: &str) -> Result<&[String], UnknownPhase> {
        self.phases
            .get(phase)
            .map(|p| p.gates.as_slice())
            .ok_or_else(|| UnknownPhase {
                phase: phase.to_owned(),
                defined: if self.phases.is_empty() {
                    "none".into()
                } else {
                    self.phases.keys().cloned().collect::<Vec<_>>().join(", ")
                },
            })
    }
}

/// A phase the config does not define (`check phase-9`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown phase `{phase}` (phases: {defined})")]
pub struct UnknownPhase {
    pub phase: String,
    /// The phases there are, for the message.
    pub defined: String,
}

/// A field path and what is wrong with it, before it is located.
type Invalid = (Vec<String>, String);

fn at(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}
