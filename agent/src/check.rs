//! `check`: evaluate one phase's gates against a snapshot and aggregate a verdict.

use crate::builtin;
use crate::config::{Config, GateConfig};
use crate::runtime::{
    Budget, EvaluationInput, EvaluationLimits, GateRuntime, LoadedGate, PendingEvaluation,
    RuntimeOptions,
};
use gatekeeper_model::{self as model, Decision, FactPath, Snapshot};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Why a phase could not be evaluated at all (exit code 3).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("unknown phase `{phase}` (phases: {defined})")]
    UnknownPhase { phase: String, defined: String },
    #[error("{path}: {message}")]
    Snapshot { path: String, message: String },
    /// The collectors could not run at all (not a source being down: that is a fact).
    #[error("cannot collect: {0}")]
    Collect(String),
    /// `watch` could not start (a gate that does not load, a bad --listen).
    #[error("{0}")]
    Watch(String),
    /// A snapshot could not be written (`snapshot --output`, `check --record`).
    #[error("{path}: cannot write: {message}")]
    Write { path: String, message: String },
}

pub use crate::recording::Recording;

/// A gate's verdict in a phase report: its decision, or `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateVerdict {
    Go,
    NoGo,
    Defer,
    Error,
}

impl GateVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            GateVerdict::Go => "go",
            GateVerdict::NoGo => "no-go",
            GateVerdict::Defer => "defer",
            GateVerdict::Error => "error",
        }
    }
}

impl From<Decision> for GateVerdict {
    fn from(d: Decision) -> Self {
        match d {
            Decision::Go => GateVerdict::Go,
            Decision::NoGo => GateVerdict::NoGo,
            Decision::Defer => GateVerdict::Defer,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    /// The gate's name in config.
    pub name: String,
    /// What runs it: `stream-topology@0.1.0`, or the wasm path.
    pub implementation: String,
    pub verdict: GateVerdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub criteria: Vec<model::Criterion>,
    pub triggers: Vec<model::Trigger>,
}

/// The answer for one phase. Its JSON is deterministic: no timings.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub phase: String,
    pub verdict: Decision,
    pub taken_at: model::Timestamp,
    /// `sha256:<hex>` of the snapshot the gates saw (canonical JSON).
    pub snapshot_digest: String,
    pub gates: Vec<GateReport>,
}

/// Any error or no-go → no-go; else any defer → defer; else go.
pub fn phase_verdict(gates: &[GateReport]) -> Decision {
    if gates
        .iter()
        .any(|g| matches!(g.verdict, GateVerdict::Error | GateVerdict::NoGo))
        || gates.is_empty()
    {
        Decision::NoGo
    } else if gates.iter().any(|g| g.verdict == GateVerdict::Defer) {
        Decision::Defer
    } else {
        Decision::Go
    }
}

/// A configured gate, loaded (or the reason it could not be).
pub struct PreparedGate {
    pub name: String,
    pub implementation: String,
    pub loaded: Result<LoadedGate, String>,
    /// Params (defaults filled in) and the facts they make the gate read.
    pub params: Result<GateParams, String>,
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

/// The runtime options a config asks for.
pub fn runtime_options(config: &Config) -> RuntimeOptions {
    let defaults = RuntimeOptions::default();
    let max_memory = config
        .gates
        .values()
        .filter_map(|g| g.limits.memory)
        .chain(config.runtime.limits.memory)
        .map(|m| m.0)
        .fold(defaults.max_memory_bytes, usize::max);
    RuntimeOptions {
        cache_dir: if config.runtime.cache == Some(false) {
            None
        } else {
            config.runtime.cache_dir.clone().or(defaults.cache_dir)
        },
        pooling: config.runtime.pooling.unwrap_or(defaults.pooling),
        max_memory_bytes: max_memory,
        threads: config.runtime.threads.unwrap_or(defaults.threads),
    }
}

impl GateSet {
    /// Loads every configured gate and checks every gate's params, in the
    /// base config and under every profile, against the gate: its declared
    /// params (names, required ones; a typo gets the closest name), and its
    /// own decoding of them — one evaluation on an empty snapshot, all gates
    /// at once within the phase budget, where only a `bad-params` answer
    /// counts. A bad param anywhere is a config error naming the file, line,
    /// profile, gate and field, so a typo under `[profiles.production]`
    /// fails in CI, not in the production window.
    pub fn load_checked(config: &Config) -> Result<GateSet, crate::config::ConfigError> {
        let set = GateSet::load(config, None);
        set.check_params(config)?;
        Ok(set)
    }

    /// The check [`GateSet::load_checked`] makes, on a set already loaded.
    pub fn check_params(&self, config: &Config) -> Result<(), crate::config::ConfigError> {
        let by_profile = &config.params_by_profile;
        let empty = serde_json::to_string(&Snapshot::empty(model::Timestamp::default()))
            .expect("a snapshot encodes");
        let mut seen = std::collections::BTreeSet::new();
        for (profile, gates) in &by_profile.variants {
            let profile = profile.as_deref();
            let budget = Budget::starting_now(self.budget);
            let mut pending = Vec::new();
            for (name, params) in gates {
                let Some(Ok(loaded)) = self.gates.get(name).map(|g| &g.loaded) else {
                    // A gate that does not load is that gate's error when it runs.
                    continue;
                };
                let value = effective_params(loaded.metadata(), params).map_err(|e| {
                    let field: Vec<String> = e.param().map(str::to_owned).into_iter().collect();
                    by_profile.error(profile, name, &field, e.to_string())
                })?;
                let json = value.to_string();
                if !seen.insert((name.clone(), json.clone())) {
                    continue;
                }
                let input = EvaluationInput {
                    taken_at: model::Timestamp::default(),
                    snapshot_json: &empty,
                    history_json: &[],
                    params_json: &json,
                };
                pending.push((name, loaded.start_evaluate(&input, Some(budget))));
            }
            for (name, p) in pending {
                if let Err(crate::runtime::EvaluationError::Gate(model::GateError::BadParams(m))) =
                    p.wait()
                {
                    let (field, message) = field_of(&m);
                    return Err(by_profile.error(
                        profile,
                        name,
                        &field,
                        format!("bad params: {message}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The sources a gate reads (`nats`, `postgres`, …), from its `reads`.
    pub fn sources_read(&self, gate: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .gate(gate)
            .and_then(|g| g.params.as_ref().ok())
            .map(|p| {
                p.needs
                    .reads
                    .iter()
                    .map(|r| {
                        r.to_string()
                            .split('.')
                            .next()
                            .unwrap_or_default()
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out.dedup();
        out
    }

    /// The history the named gates declare they need (the longest), plus
    /// two intervals, at least a minute; and the gates that cannot say (0.1).
    pub fn history_needed(
        &self,
        names: &[String],
        interval: std::time::Duration,
    ) -> (std::time::Duration, Vec<String>) {
        let mut longest = 0u64;
        let mut undeclared = Vec::new();
        for name in names {
            match self
                .gates
                .get(name)
                .and_then(|g| g.params.as_ref().ok())
                .map(|p| p.needs.history_ms)
            {
                Some(Some(ms)) => longest = longest.max(ms),
                Some(None) => undeclared.push(name.clone()),
                None => {}
            }
        }
        let window = (std::time::Duration::from_millis(longest) + interval * 2)
            .max(std::time::Duration::from_secs(60));
        (window, undeclared)
    }

    /// Every plan's `on` names a trigger its gate declares (`needs`). A gate
    /// built for 0.1.0 declares none: such an entry is accepted with a
    /// warning. Checked when `watch` starts and by `validate`.
    pub fn check_plans(&self, config: &Config) -> Result<(), crate::config::ConfigError> {
        let Some(watch) = &config.watch else {
            return Ok(());
        };
        for (plan, pc) in &watch.plans {
            for (i, t) in pc.on.iter().enumerate() {
                let Some(Ok(params)) = self.gates.get(&t.gate).map(|g| &g.params) else {
                    continue;
                };
                match &params.needs.triggers {
                    None => {
                        tracing::warn!(plan = %plan, trigger = %t, "the gate is built for contract 0.1.0 and declares no triggers: this plan entry cannot be checked")
                    }
                    Some(declared) if !declared.iter().any(|d| d.id == t.trigger) => {
                        let ids: Vec<&str> = declared.iter().map(|d| d.id.as_str()).collect();
                        let hint = model::closest(&t.trigger, ids.iter().copied())
                            .map(|c| format!("; did you mean `{}/{c}`?", t.gate))
                            .unwrap_or_default();
                        return Err(config.params_by_profile.error_at(
                            config.profile.as_deref(),
                            &[
                                "watch".into(),
                                "plans".into(),
                                plan.clone(),
                                "on".into(),
                                i.to_string(),
                            ],
                            format!(
                                "gate `{}` raises no trigger `{}`{hint} (it can raise: {})",
                                t.gate,
                                t.trigger,
                                if ids.is_empty() {
                                    "none".to_owned()
                                } else {
                                    ids.join(", ")
                                }
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    /// Loads the named gates (all configured gates when `names` is `None`).
    pub fn load(config: &Config, names: Option<&[String]>) -> GateSet {
        let runtime = GateRuntime::new(runtime_options(config));
        let wanted: Vec<&String> = match names {
            Some(n) => n.iter().collect(),
            None => config.gates.keys().collect(),
        };
        let mut gates = BTreeMap::new();
        for name in wanted {
            let Some(gc) = config.gates.get(name) else {
                continue;
            };
            let span = tracing::debug_span!("gate.load", gate = %name);
            let _enter = span.enter();
            gates.insert(name.clone(), prepare(&runtime, config, name, gc));
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

    /// Evaluates `gate_names` on the recording and aggregates the verdict.
    pub fn evaluate_phase(
        &self,
        phase: &str,
        gate_names: &[String],
        recording: &Recording,
    ) -> PhaseReport {
        self.evaluate(phase, gate_names, &recording.current, &recording.history)
    }

    /// Evaluates `gate_names` on `current` with `history` (oldest first).
    /// The gates run at once on the gate threads, all within the phase's
    /// budget; a gate that cannot finish inside it is an error.
    pub fn evaluate(
        &self,
        phase: &str,
        gate_names: &[String],
        current: &Snapshot,
        history: &[Snapshot],
    ) -> PhaseReport {
        let digest = snapshot_digest(current);
        let budget = Budget::starting_now(self.budget);
        let mut projections: BTreeMap<Vec<FactPath>, (String, Vec<String>)> = BTreeMap::new();
        // Every gate but the last goes to the gate threads; the last runs
        // here when this thread may run gates, while the others run.
        let here = crate::runtime::may_run_gates_here();
        let running: Vec<(&String, Result<Started, String>)> = gate_names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let inline = here && i + 1 == gate_names.len();
                let started = self.start(name, current, history, &mut projections, budget, inline);
                (name, started)
            })
            .collect();
        let mut reports = Vec::new();
        for (name, started) in running {
            let implementation = self
                .gates
                .get(name.as_str())
                .map_or("?", |g| g.implementation.as_str());
            let report = match started.map(Started::wait) {
                Err(e) => error_report(name, implementation, e),
                Ok(Err(e)) => error_report(name, implementation, e.to_string()),
                Ok(Ok(e)) => match self.undeclared_trigger(name, &e) {
                    Some(id) => error_report(
                        name,
                        implementation,
                        format!(
                            "malformed output: trigger `{id}` is not one the gate declared in `needs`"
                        ),
                    ),
                    None => GateReport {
                        name: name.clone(),
                        implementation: implementation.to_owned(),
                        verdict: e.decision.into(),
                        error: None,
                        criteria: e.criteria,
                        triggers: e.triggers,
                    },
                },
            };
            tracing::info!(gate = %name, verdict = report.verdict.as_str(), error = report.error.as_deref().map(crate::text::untrusted_line), "gate evaluated");
            reports.push(report);
        }
        PhaseReport {
            phase: phase.to_owned(),
            verdict: phase_verdict(&reports),
            taken_at: current.taken_at,
            snapshot_digest: digest,
            gates: reports,
        }
    }

    /// A trigger the gate raised but did not declare (0.2 gates declare all).
    fn undeclared_trigger<'e>(&self, gate: &str, e: &'e model::Evaluation) -> Option<&'e str> {
        let declared = self
            .gates
            .get(gate)?
            .params
            .as_ref()
            .ok()?
            .needs
            .triggers
            .as_ref()?;
        e.triggers
            .iter()
            .find(|t| !declared.iter().any(|d| d.id == t.id))
            .map(|t| t.id.as_str())
    }

    /// Starts one gate's evaluation, or says why it cannot run.
    fn start(
        &self,
        name: &str,
        current: &Snapshot,
        history: &[Snapshot],
        projections: &mut BTreeMap<Vec<FactPath>, (String, Vec<String>)>,
        budget: Budget,
        inline: bool,
    ) -> Result<Started, String> {
        let Some(gate) = self.gates.get(name) else {
            return Err(format!("gate `{name}` is not loaded"));
        };
        let (loaded, params) = match (&gate.loaded, &gate.params) {
            (Err(e), _) => return Err(format!("failed to load: {e}")),
            (_, Err(e)) => return Err(e.clone()),
            (Ok(loaded), Ok(params)) => (loaded, params),
        };
        let reads = &params.needs.reads;
        let (snap, history) = projections.entry(reads.clone()).or_insert_with(|| {
            let select = |s: &Snapshot| serde_json::to_string(&s.select(reads)).expect("encodes");
            (select(current), history.iter().map(select).collect())
        });
        let input = EvaluationInput {
            taken_at: current.taken_at,
            snapshot_json: snap,
            history_json: history,
            params_json: &params.json,
        };
        Ok(if inline {
            Started::Done(loaded.evaluate_within(&input, Some(budget)))
        } else {
            Started::Running(loaded.start_evaluate(&input, Some(budget)))
        })
    }
}

/// A gate evaluation that was started on a gate thread, or already ran here.
enum Started {
    Running(PendingEvaluation),
    Done(Result<model::Evaluation, crate::runtime::EvaluationError>),
}

impl Started {
    fn wait(self) -> Result<model::Evaluation, crate::runtime::EvaluationError> {
        match self {
            Started::Running(p) => p.wait(),
            Started::Done(r) => r,
        }
    }
}

/// Splits a gate's `field `a.b[0].c`: message` into the field's path
/// (`["a", "b", "0", "c"]`) and the message; other messages have no path.
fn field_of(message: &str) -> (Vec<String>, &str) {
    let Some((path, rest)) = message
        .strip_prefix("field `")
        .and_then(|r| r.split_once("`: "))
    else {
        return (Vec::new(), message);
    };
    let field = path
        .split(['.', '['])
        .map(|seg| seg.trim_end_matches(']'))
        .filter(|seg| !seg.is_empty())
        .map(str::to_owned)
        .collect();
    (field, rest)
}

/// `sha256:<hex>` of the snapshot's canonical JSON, hashed as it is written
/// (never held as one string).
pub fn snapshot_digest(snapshot: &Snapshot) -> String {
    struct HashWriter(Sha256);
    impl std::io::Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = HashWriter(Sha256::new());
    serde_json::to_writer(&mut w, snapshot).expect("a snapshot always encodes");
    format!("sha256:{}", hex::encode(w.0.finalize()))
}

fn error_report(name: &str, implementation: &str, error: String) -> GateReport {
    GateReport {
        name: name.to_owned(),
        implementation: implementation.to_owned(),
        verdict: GateVerdict::Error,
        error: Some(error),
        criteria: Vec::new(),
        triggers: Vec::new(),
    }
}

fn prepare(runtime: &GateRuntime, config: &Config, name: &str, gc: &GateConfig) -> PreparedGate {
    let limits = EvaluationLimits::default()
        .with(&config.runtime.limits.overrides())
        .with(&gc.limits.overrides());
    let (implementation, bytes): (String, Result<Vec<u8>, String>) =
        match (&gc.builtin, config.gate_wasm_path(gc)) {
            (Some(b), _) => (
                b.clone(),
                builtin::builtin_gate(b)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| format!("no built-in gate `{b}`")),
            ),
            (None, Some(path)) => {
                let shown = path.display().to_string();
                let limit = config
                    .runtime
                    .max_gate_size
                    .map_or(crate::files::DEFAULT_MAX_GATE_BYTES, |b| b.0 as u64);
                (
                    shown.clone(),
                    crate::files::read_untrusted(&path, limit, "a gate (runtime.max_gate_size)")
                        .map(|f| f.bytes)
                        .map_err(|e| format!("{shown}: {e}")),
                )
            }
            (None, None) => (
                String::from("?"),
                Err("neither `builtin` nor `wasm` is set".into()),
            ),
        };
    let loaded = bytes.and_then(|b| {
        runtime
            .load(&b, gc.sha256.as_deref(), limits)
            .map_err(|e| e.to_string())
    });
    let implementation = match &loaded {
        Ok(l) if gc.builtin.is_some() => format!("{}@{}", l.metadata().name, l.metadata().version),
        _ => implementation,
    };
    let params = match &loaded {
        Ok(l) => effective_params(l.metadata(), &gc.params)
            .map_err(|e| format!("bad params: {e}"))
            .and_then(|value| {
                let json = value.to_string();
                let needs = l.needs(&json).map_err(|e| format!("needs: {e}"))?;
                Ok(GateParams { value, json, needs })
            }),
        Err(_) => Err("not loaded".into()),
    };
    if let Err(e) = &loaded {
        tracing::warn!(gate = %name, error = %e, "gate failed to load");
    }
    PreparedGate {
        name: name.to_owned(),
        implementation,
        loaded,
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

/// Loads the phase's gates and evaluates them on a recording.
pub fn check_phase(
    config: &Config,
    phase: &str,
    recording: &Recording,
) -> Result<PhaseReport, CheckError> {
    let gate_names = phase_gates(config, phase)?;
    let span = tracing::info_span!("check", phase);
    let _enter = span.enter();
    let gates = GateSet::load_checked(config)?;
    Ok(gates.evaluate_phase(phase, gate_names, recording))
}

/// The gates of a phase, or `UnknownPhase` listing the phases there are.
pub fn phase_gates<'c>(config: &'c Config, phase: &str) -> Result<&'c [String], CheckError> {
    config
        .phases
        .get(phase)
        .map(|p| p.gates.as_slice())
        .ok_or_else(|| CheckError::UnknownPhase {
            phase: phase.to_owned(),
            defined: if config.phases.is_empty() {
                "none".into()
            } else {
                config.phases.keys().cloned().collect::<Vec<_>>().join(", ")
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_verdict_is_fail_closed() {
        let g = |v| GateReport {
            name: "g".into(),
            implementation: "i".into(),
            verdict: v,
            error: None,
            criteria: vec![],
            triggers: vec![],
        };
        assert_eq!(
            phase_verdict(&[g(GateVerdict::Go), g(GateVerdict::Go)]),
            Decision::Go
        );
        assert_eq!(
            phase_verdict(&[g(GateVerdict::Go), g(GateVerdict::Defer)]),
            Decision::Defer
        );
        assert_eq!(
            phase_verdict(&[g(GateVerdict::Defer), g(GateVerdict::Error)]),
            Decision::NoGo
        );
        assert_eq!(
            phase_verdict(&[g(GateVerdict::NoGo), g(GateVerdict::Defer)]),
            Decision::NoGo
        );
        assert_eq!(phase_verdict(&[]), Decision::NoGo);
    }

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
