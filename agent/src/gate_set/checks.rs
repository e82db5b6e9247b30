//! What is checked before any gate runs for real, from the gates'
//! declarations: params under every profile (and the gates' own decoding of
//! them), plans' `on` triggers, and the history and sources the watched
//! gates need.

use super::GateSet;
use crate::config::{Config, ConfigError};
use crate::runtime::{Budget, EvaluationError, EvaluationInput};
use gatekeeper_model::{self as model, Snapshot};

impl GateSet {
    /// Loads every configured gate and checks every gate's params, in the
    /// base config and under every profile, against the gate: its declared
    /// params (names, required ones; a typo gets the closest name), and its
    /// own decoding of them — one evaluation on an empty snapshot, all gates
    /// at once within the phase budget, where only a `bad-params` answer
    /// counts. A bad param anywhere is a config error naming the file, line,
    /// profile, gate and field, so a typo under `[profiles.production]`
    /// fails in CI, not in the production window.
    pub fn load_checked(config: &Config) -> Result<GateSet, ConfigError> {
        GateSet::load_checked_for(config, super::Workload::OneShot)
    }

    /// [`GateSet::load_checked`] for `workload`.
    pub fn load_checked_for(
        config: &Config,
        workload: super::Workload,
    ) -> Result<GateSet, ConfigError> {
        let set = GateSet::load_for(config, None, workload);
        set.check_params(config)?;
        Ok(set)
    }

    /// The check [`GateSet::load_checked`] makes, on a set already loaded.
    pub fn check_params(&self, config: &Config) -> Result<(), ConfigError> {
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
                let value = super::effective_params(loaded.metadata(), params).map_err(|e| {
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
                if let Err(EvaluationError::Gate(model::GateError::BadParams(m))) = p.wait() {
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
    pub fn check_plans(&self, config: &Config) -> Result<(), ConfigError> {
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
}

/// Splits a gate's `field `a.b[0].c`: message` into the field's path
/// (`["a", "b", "0", "c"]`) and the message; other messages have no path.
pub(super) fn field_of(message: &str) -> (Vec<String>, &str) {
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
