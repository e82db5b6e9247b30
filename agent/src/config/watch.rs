//! `[watch]` (the daemon: interval, history, plans, safety) and `[ledger]`
//! (where verdicts, incidents, actions and attestations are kept).

use super::KebabId;
use super::step_check::{StepPlace, validate_step};
use super::steps::StepConfig;
use super::{DurationValue, Invalid, LedgerBackend, at};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

pub const DEFAULT_WATCH_PHASE: &str = "canary";
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30 * 60);
pub const DEFAULT_RESOLVE_AFTER: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_RECORD_EVERY: Duration = Duration::from_secs(60);
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_ROLLOUT_WAIT: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_ALERT_LIMIT: usize = 20;
/// The plan name older agents gave alert hooks in the ledger; reserved, and
/// never counted as a plan that ran.
pub const LEGACY_ALERT_PLAN: &str = "alert";

/// `gatekeeper watch`: what to evaluate every interval and what to do about it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    /// The phase whose trigger gates are watched (default `canary`).
    pub phase: Option<String>,
    /// Time between rounds (default 5s).
    pub interval: Option<DurationValue>,
    /// How far back the gates see; default: the longest signal `for` +
    /// `window` in the watched phase, plus two intervals (at least 1m).
    pub history: Option<DurationValue>,
    /// Least time between two rollback plans (default 30m).
    pub cooldown: Option<DurationValue>,
    /// An incident closes when no trigger has fired for this long (default 5m).
    pub resolve_after: Option<DurationValue>,
    /// Record what would be done; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Gates that must be go for an automatic plan to run; any other verdict
    /// vetoes it (alert only). E.g. "the legacy stream still exists".
    #[serde(default)]
    pub veto: Vec<String>,
    /// Phases whose verdicts are recorded in the ledger (default: every phase
    /// but the watched one), evaluated every `record_every` (default 1m).
    pub record: Option<Vec<String>>,
    pub record_every: Option<DurationValue>,
    /// `host:port` for `/metrics`, `/healthz`, `/readyz` (default: not served).
    pub listen: Option<String>,
    /// Write every change of a recorded verdict as an in-toto statement,
    /// with the recording it was decided on, into this directory (relative
    /// to the config). Default: none.
    pub attest: Option<std::path::PathBuf>,
    /// Rollback plans by name: which triggers start them, and their steps.
    #[serde(default)]
    pub plans: BTreeMap<String, PlanConfig>,
    /// Steps run on every alert (only `exec` and `webhook`).
    #[serde(default)]
    pub alert: Vec<StepConfig>,
    /// Alerts also go to this Alertmanager.
    pub alertmanager: Option<super::AlertmanagerConfig>,
    /// Alerts per incident at most (default 20); the one that reaches the
    /// limit says so. Alerts are aggregated: one per round names every new
    /// trigger (the first 10, then a count).
    pub alert_limit: Option<usize>,
}

impl WatchConfig {
    pub fn phase(&self) -> &str {
        self.phase.as_deref().unwrap_or(DEFAULT_WATCH_PHASE)
    }
    pub fn interval(&self) -> Duration {
        self.interval.map_or(DEFAULT_WATCH_INTERVAL, |d| d.0)
    }
    pub fn cooldown(&self) -> Duration {
        self.cooldown.map_or(DEFAULT_COOLDOWN, |d| d.0)
    }
    pub fn resolve_after(&self) -> Duration {
        self.resolve_after.map_or(DEFAULT_RESOLVE_AFTER, |d| d.0)
    }
    pub fn record_every(&self) -> Duration {
        self.record_every.map_or(DEFAULT_RECORD_EVERY, |d| d.0)
    }
    pub fn alert_limit(&self) -> usize {
        self.alert_limit.unwrap_or(DEFAULT_ALERT_LIMIT)
    }
    /// The plan that trigger of that gate starts while `phase` is watched.
    pub fn plan_for(&self, phase: &str, gate: &str, trigger: &str) -> Option<(&str, &PlanConfig)> {
        self.plans
            .iter()
            .filter(|(_, p)| p.phase.as_deref().is_none_or(|ph| ph == phase))
            .find(|(_, p)| p.on.iter().any(|t| t.gate == gate && t.trigger == trigger))
            .map(|(name, p)| (name.as_str(), p))
    }
}

/// A trigger as a plan names it: `gate/trigger`, the gate in the watched
/// phase that raises it. Only that gate's trigger of that id starts the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerRef {
    pub gate: String,
    pub trigger: String,
}

impl std::fmt::Display for TriggerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.gate, self.trigger)
    }
}

impl<'de> Deserialize<'de> for TriggerRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.split_once('/') {
            Some((gate, trigger))
                if KebabId::parse(gate).is_ok() && KebabId::parse(trigger).is_ok() =>
            {
                Ok(TriggerRef {
                    gate: gate.to_owned(),
                    trigger: trigger.to_owned(),
                })
            }
            Some(_) => Err(serde::de::Error::custom(format!(
                "`{text}`: gate and trigger must both be kebab-case, as `<gate>/<trigger>`"
            ))),
            None => Err(serde::de::Error::custom(format!(
                "`{text}`: name the gate that raises it, as `<gate>/{text}` (a plan starts only on triggers of the gates it names)"
            ))),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanConfig {
    /// The phase whose gates raise `on` (default `watch.phase`). A plan with
    /// a phase is active only while that phase is watched (`--phase`).
    pub phase: Option<String>,
    /// The triggers that start this plan, as `gate/trigger`.
    pub on: Vec<TriggerRef>,
    /// Run in order; the first failing step stops the plan.
    pub steps: Vec<StepConfig>,
}

pub(super) fn validate_watch(w: &WatchConfig, config: &super::Config) -> Result<(), Invalid> {
    for (field, d) in [
        ("interval", w.interval),
        ("history", w.history),
        ("cooldown", w.cooldown),
        ("resolve_after", w.resolve_after),
        ("record_every", w.record_every),
    ] {
        if d.is_some_and(|d| d.0.is_zero()) {
            return Err((at(&["watch", field]), "must be greater than 0s".into()));
        }
    }
    if w.phase.is_some() && !config.phases.contains_key(w.phase()) {
        return Err((
            at(&["watch", "phase"]),
            format!("no phase named `{}`", w.phase()),
        ));
    }
    for (i, gate) in w.veto.iter().enumerate() {
        if !config.gates.contains_key(gate) {
            return Err((
                at(&["watch", "veto", &i.to_string()]),
                format!("no gate named `{gate}`"),
            ));
        }
    }
    for (i, phase) in w.record.iter().flatten().enumerate() {
        if !config.phases.contains_key(phase) {
            return Err((
                at(&["watch", "record", &i.to_string()]),
                format!("no phase named `{phase}`"),
            ));
        }
    }
    if let Some(listen) = &w.listen
        && listen.parse::<std::net::SocketAddr>().is_err()
    {
        return Err((
            at(&["watch", "listen"]),
            "must be host:port with an IP address, e.g. `0.0.0.0:9464`".into(),
        ));
    }
    if let (Some(ledger), true) = (&config.ledger, !w.plans.is_empty())
        && ledger.backend(&config.sources) == LedgerBackend::Nats
        && ledger.lease_ttl() < w.interval() * 3
    {
        return Err((
            at(&["ledger", "lease_ttl"]),
            format!(
                "must be at least 3 watch intervals ({}), so the holder renews in time",
                gatekeeper_model::format_duration(w.interval() * 3)
            ),
        ));
    }
    if w.alert_limit == Some(0) {
        return Err((at(&["watch", "alert_limit"]), "must be at least 1".into()));
    }
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (name, plan) in &w.plans {
        if KebabId::parse(name).is_err() {
            return Err((
                at(&["watch", "plans", name]),
                format!("plan name `{name}` must be kebab-case ([a-z0-9-])"),
            ));
        }
        if name == LEGACY_ALERT_PLAN {
            return Err((
                at(&["watch", "plans", name]),
                format!(
                    "`{name}` is reserved (alerts are not plans); name the plan after what it does"
                ),
            ));
        }
        let on_failure = config
            .phases
            .values()
            .any(|p| p.on_failure.as_deref() == Some(name.as_str()));
        if plan.on.is_empty() && !on_failure {
            return Err((
                at(&["watch", "plans", name, "on"]),
                "name at least one trigger, as `<gate>/<trigger>` (a plan only a phase's `on_failure` runs may have none)".into(),
            ));
        }
        let phase = plan.phase.as_deref().unwrap_or(w.phase());
        if plan.phase.is_some() && !config.phases.contains_key(phase) {
            return Err((
                at(&["watch", "plans", name, "phase"]),
                format!("no phase named `{phase}`"),
            ));
        }
        let watched = config
            .phases
            .get(phase)
            .map(|p| p.gates.as_slice())
            .unwrap_or_default();
        for (i, t) in plan.on.iter().enumerate() {
            let field = at(&["watch", "plans", name, "on", &i.to_string()]);
            if !watched.contains(&t.gate) {
                return Err((
                    field,
                    format!(
                        "`{t}`: gate `{}` is not in the watched phase `{}` (its gates: {})",
                        t.gate,
                        phase,
                        if watched.is_empty() {
                            "none".to_owned()
                        } else {
                            watched.join(", ")
                        }
                    ),
                ));
            }
            if let Some(other) = seen.insert(format!("{phase} {t}"), name) {
                return Err((
                    field,
                    format!("trigger `{t}` already starts plan `{other}`"),
                ));
            }
        }
        if plan.steps.is_empty() {
            return Err((
                at(&["watch", "plans", name, "steps"]),
                "a plan needs at least one step".into(),
            ));
        }
        for (i, step) in plan.steps.iter().enumerate() {
            validate_step(
                step,
                config,
                &["watch", "plans", name, "steps", &i.to_string()],
                StepPlace::Plan,
            )?;
        }
    }
    for (i, step) in w.alert.iter().enumerate() {
        let field = ["watch", "alert", &i.to_string()];
        if !matches!(step, StepConfig::Exec { .. } | StepConfig::Webhook { .. }) {
            return Err((at(&field), "alert steps are `exec` or `webhook`".into()));
        }
        validate_step(step, config, &field, StepPlace::Plan)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn a_plan_with_a_phase_starts_only_while_that_phase_is_watched() {
        let text = r#"
[sources.nats]
url = "nats://127.0.0.1:1"
[gates.t]
builtin = "signals"
[phases.canary]
gates = ["t"]
[phases.canary-10]
gates = ["t"]
[watch.plans.always]
on = ["t/a"]
steps = [{ action = "exec", command = ["true"] }]
[watch.plans.canary-10-only]
phase = "canary-10"
on = ["t/b"]
steps = [{ action = "exec", command = ["true"] }]
"#;
        let config = Config::parse(text, "g.toml", None).unwrap();
        let w = config.watch.unwrap();
        let plan = |phase: &str, trigger: &str| w.plan_for(phase, "t", trigger).map(|(n, _)| n);
        assert_eq!(plan("canary", "a"), Some("always"));
        assert_eq!(plan("canary-10", "a"), Some("always"));
        assert_eq!(plan("canary", "b"), None);
        assert_eq!(plan("canary-10", "b"), Some("canary-10-only"));
    }
}
