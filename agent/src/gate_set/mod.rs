//! The configured gates, loaded once for many evaluations: a [`GateSet`].
//!
//! - here: loading (built-in or wasm file, read as untrusted), params
//!   checked against each gate's declared params, and what it `needs`;
//! - [`checks`]: what is checked before anything runs (params under every
//!   profile, plans' triggers) and what the gates' `needs` size;
//! - [`evaluate`]: a phase's gates run at once on the gate threads within
//!   the phase budget, aggregated into a [`PhaseReport`].

mod checks;
mod evaluate;

pub use evaluate::snapshot_digest;

use crate::builtin;
use crate::config::{Config, GateConfig};
use crate::files::FileError;
use crate::runtime::{
    EvaluationError, EvaluationLimits, GateRuntime, LoadError, LoadedGate, RuntimeOptions,
};
use crate::supply::cache::{self, Cache};
use crate::supply::oci;
use crate::supply::signature::{Signer, TrustPolicy, read_signature, signature_beside};
use gatekeeper_model as model;
use std::collections::BTreeMap;

pub use crate::verdict::{GateReport, GateVerdict, PhaseReport, phase_verdict};

/// Why a configured gate cannot be evaluated; it becomes that gate's
/// `error` verdict (and a config error where params are checked).
#[derive(Debug, thiserror::Error)]
pub enum GateUnusable {
    #[error("no built-in gate `{0}`")]
    NoSuchBuiltin(String),
    #[error("neither `builtin` nor `wasm` is set")]
    NoImplementation,
    /// The wasm file could not be read (missing, not a regular file, too big).
    #[error("{path}: {error}")]
    Unreadable { path: String, error: FileError },
    /// An `oci` gate that is not in the local cache, or changed there.
    #[error(transparent)]
    Cache(crate::supply::cache::CacheError),
    /// The `[trust]` policy refuses it (never compiled, never run).
    #[error("refused by [trust]: {0}")]
    Untrusted(crate::supply::signature::Untrusted),
    /// A `[trust]` key file could not be read, so no signature can be checked.
    #[error("refused: {0}")]
    TrustKeys(String),
    #[error(transparent)]
    Load(LoadError),
    /// The configured params do not fit the gate's declared params.
    #[error("bad params: {0}")]
    BadParams(model::ParamsError),
    /// The gate's `needs` call failed with these params.
    #[error("needs: {0}")]
    Needs(EvaluationError),
    /// Params are not checked for a gate that did not load.
    #[error("not loaded")]
    NotLoaded,
}

/// A configured gate, loaded (or the reason it could not be).
pub struct PreparedGate {
    pub name: String,
    pub implementation: String,
    pub loaded: Result<LoadedGate, GateUnusable>,
    /// Who vouches for the bytes (when they were read and checked).
    pub signer: Option<Signer>,
    /// Params (defaults filled in) and what the gate needs with them.
    pub params: Result<GateParams, GateUnusable>,
}

#[derive(Debug, Clone)]
pub struct GateParams {
    /// The effective params, a JSON object.
    pub value: serde_json::Value,
    /// `value` as JSON text, as every evaluation sends it.
    pub json: String,
    /// What the gate needs with them (its `needs`, or a 0.1 gate's `reads`).
    pub needs: crate::runtime::GateNeeds,
}

/// Loads the gates of a config once, for many evaluations.
pub struct GateSet {
    runtime: GateRuntime,
    gates: BTreeMap<String, PreparedGate>,
    /// The wall-clock budget of one phase evaluation.
    budget: std::time::Duration,
}

/// What the gates are loaded for: it decides the instance allocator when
/// the config does not (`runtime.pooling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// A command that evaluates a few times and exits (`check`, `attest`,
    /// `validate`, …): the on-demand allocator, which starts with less
    /// memory (about 6 MiB less peak RSS for `check phase-2`) and is as
    /// fast for a handful of calls.
    OneShot,
    /// The `watch` daemon, evaluating every round: the pooling allocator,
    /// whose fresh instances are faster (README, Benchmarks).
    Daemon,
}

/// The runtime options a config asks for, for a one-shot command.
pub fn runtime_options(config: &Config) -> RuntimeOptions {
    runtime_options_for(config, Workload::OneShot)
}

/// The runtime options a config asks for, for `workload`.
pub fn runtime_options_for(config: &Config, workload: Workload) -> RuntimeOptions {
    let defaults = RuntimeOptions::default();
    let max_memory = config
        .gates
        .values()
        .filter_map(|g| g.limits.memory)
        .chain(config.runtime.limits.memory)
        .map(|m| m.0)
        .fold(defaults.max_memory_bytes, usize::max);
    RuntimeOptions {
        // Compiled code read back from the cache directory is not checked
        // against a gate's signature or pin: with `[trust]`, what runs must
        // be what was verified, so the cache is off unless the config turns
        // it on (and so vouches for that directory as for the binary).
        cache_dir: match (config.runtime.cache, &config.trust) {
            (Some(false), _) | (None, Some(_)) => None,
            _ => config.runtime.cache_dir.clone().or(defaults.cache_dir),
        },
        pooling: config
            .runtime
            .pooling
            .unwrap_or(workload == Workload::Daemon && defaults.pooling),
        max_memory_bytes: max_memory,
        threads: config.runtime.threads.unwrap_or(defaults.threads),
    }
}

impl GateSet {
    /// Loads the named gates (all configured gates when `names` is `None`)
    /// for a one-shot command.
    pub fn load(config: &Config, names: Option<&[String]>) -> GateSet {
        GateSet::load_for(config, names, Workload::OneShot)
    }

    /// [`GateSet::load`] for `workload`.
    pub fn load_for(config: &Config, names: Option<&[String]>, workload: Workload) -> GateSet {
        let runtime = GateRuntime::new(runtime_options_for(config, workload));
        let wanted: Vec<&String> = match names {
            Some(n) => n.iter().collect(),
            None => config.gates.keys().collect(),
        };
        let trust = config.trust_policy();
        let mut gates = BTreeMap::new();
        for name in wanted {
            let Some(gc) = config.gates.get(name) else {
                continue;
            };
            let span = tracing::debug_span!("gate.load", gate = %name);
            let _enter = span.enter();
            gates.insert(name.clone(), prepare(&runtime, config, &trust, name, gc));
        }
        GateSet {
            runtime,
            gates,
            budget: config
                .runtime
                .phase_budget
                .map_or(crate::runtime::limits::DEFAULT_PHASE_BUDGET, |d| d.0),
        }
    }

    pub fn gate(&self, name: &str) -> Option<&PreparedGate> {
        self.gates.get(name)
    }

    pub fn gates(&self) -> impl Iterator<Item = &PreparedGate> {
        self.gates.values()
    }

    pub fn runtime(&self) -> &GateRuntime {
        &self.runtime
    }

    /// The wall-clock budget of one phase evaluation.
    pub fn budget(&self) -> std::time::Duration {
        self.budget
    }
}

/// A gate's bytes, where they came from, and its signature if it has one.
struct Fetched {
    bytes: Vec<u8>,
    signature: Option<String>,
    /// Where the signature was looked for (for messages).
    signature_at: String,
}

fn fetch(config: &Config, gc: &GateConfig) -> (String, Result<Fetched, GateUnusable>) {
    let limit = config.max_gate_bytes();
    if let Some(b) = &gc.builtin {
        let bytes = builtin::builtin_gate(b)
            .map(|bytes| Fetched {
                bytes: bytes.to_vec(),
                signature: None,
                signature_at: String::new(),
            })
            .ok_or_else(|| GateUnusable::NoSuchBuiltin(b.clone()));
        return (b.clone(), bytes);
    }
    if let Some(path) = config.gate_wasm_path(gc) {
        let shown = path.display().to_string();
        let sig_path = match &gc.signature {
            Some(p) => crate::clients::resolve(&config.base_dir, p),
            None => signature_beside(&path),
        };
        let fetched = crate::files::read_untrusted(&path, limit, "a gate (runtime.max_gate_size)")
            .map_err(|e| GateUnusable::Unreadable {
                path: shown.clone(),
                error: e,
            })
            .and_then(|f| {
                let signature =
                    read_signature(&sig_path).map_err(|error| GateUnusable::Unreadable {
                        path: sig_path.display().to_string(),
                        error,
                    })?;
                Ok(Fetched {
                    bytes: f.bytes,
                    signature,
                    signature_at: sig_path.display().to_string(),
                })
            });
        return (shown, fetched);
    }
    if let Some(reference) = &gc.oci {
        let fetched = (|| {
            let pinned = oci::Reference::parse(reference)
                .ok()
                .and_then(|r| r.digest)
                .ok_or(GateUnusable::NoImplementation)?;
            let cache = Cache::new(cache::default_dir().map_err(GateUnusable::Cache)?);
            let artifact = cache
                .load(reference, &pinned, limit)
                .map_err(GateUnusable::Cache)?;
            Ok(Fetched {
                bytes: artifact.wasm,
                signature: artifact.signature,
                signature_at: format!(
                    "no signature artifact `{}` was pulled with it",
                    oci::signature_tag(&pinned)
                ),
            })
        })();
        return (reference.clone(), fetched);
    }
    (String::from("?"), Err(GateUnusable::NoImplementation))
}

fn prepare(
    runtime: &GateRuntime,
    config: &Config,
    trust: &Result<Option<TrustPolicy>, crate::config::TrustKeyError>,
    name: &str,
    gc: &GateConfig,
) -> PreparedGate {
    let limits = EvaluationLimits::default()
        .with(&config.runtime.limits.overrides())
        .with(&gc.limits.overrides());
    let (implementation, fetched) = fetch(config, gc);
    // The signature is checked before the bytes are compiled: a refused
    // gate never reaches the engine.
    let vouched = fetched.and_then(|f| {
        let signer = match (gc.builtin.is_some(), trust) {
            (true, _) => Signer::BuiltIn,
            (false, Err(e)) => return Err(GateUnusable::TrustKeys(e.to_string())),
            (false, Ok(None)) => Signer::Unchecked,
            (false, Ok(Some(policy))) => policy
                .check(name, &f.bytes, f.signature.as_deref(), &f.signature_at)
                .map_err(GateUnusable::Untrusted)?,
        };
        Ok((f.bytes, signer))
    });
    let signer = vouched.as_ref().ok().map(|(_, s)| s.clone());
    let loaded = vouched.and_then(|(b, _)| {
        runtime
            .load(&b, gc.sha256.as_deref(), limits)
            .map_err(GateUnusable::Load)
    });
    let implementation = match &loaded {
        Ok(l) if gc.builtin.is_some() => format!("{}@{}", l.metadata().name, l.metadata().version),
        _ => implementation,
    };
    let params = match &loaded {
        Ok(l) => effective_params(l.metadata(), &gc.params)
            .map_err(GateUnusable::BadParams)
            .and_then(|value| {
                let json = value.to_string();
                let needs = l.needs(&json).map_err(GateUnusable::Needs)?;
                Ok(GateParams { value, json, needs })
            }),
        Err(_) => Err(GateUnusable::NotLoaded),
    };
    if let Err(e) = &loaded {
        tracing::warn!(gate = %name, error = %e, "gate failed to load");
    }
    PreparedGate {
        name: name.to_owned(),
        implementation,
        loaded,
        signer,
        params,
    }
}

/// Config params checked against the gate's declared params, defaults filled in.
pub fn effective_params(
    md: &model::Metadata,
    configured: &toml::Table,
) -> Result<serde_json::Value, model::ParamsError> {
    let configured =
        serde_json::to_value(configured).map_err(|_| model::ParamsError::NotAnObject)?;
    md.effective_params(&configured)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate_set::checks::field_of;

    #[test]
    fn params_are_checked_against_the_gate() {
        let md = model::Metadata {
            name: "g".into(),
            version: "1".into(),
            description: "d".into(),
            sources: vec![],
            params: vec![
                model::ParamSpec {
                    name: "streams".into(),
                    description: "the streams".into(),
                    default: None,
                },
                model::ParamSpec {
                    name: "max".into(),
                    description: "m".into(),
                    default: Some(serde_json::json!(5)),
                },
            ],
            snapshot_schema: 1,
        };
        let t = |s: &str| -> toml::Table { toml::from_str(s).unwrap() };
        assert_eq!(
            effective_params(&md, &t("streams = []")).unwrap(),
            serde_json::json!({"streams": [], "max": 5})
        );
        assert_eq!(
            effective_params(&md, &t("")).unwrap_err().to_string(),
            "param `streams` is required (the streams)"
        );
        assert_eq!(
            effective_params(&md, &t("streams = []\nmax_x = 1"))
                .unwrap_err()
                .to_string(),
            "unknown param `max_x` (accepts: streams, max)"
        );
        assert_eq!(
            field_of("field `streams[0].replicas`: invalid type"),
            (
                vec!["streams".to_owned(), "0".into(), "replicas".into()],
                "invalid type"
            )
        );
        assert_eq!(field_of("plain"), (vec![], "plain"));
    }
}
