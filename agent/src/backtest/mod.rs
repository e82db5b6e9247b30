//! Replaying a recording as `watch` would have lived it: the phase (or
//! one gate) evaluated at every snapshot, each with the snapshots before
//! it as history — the window `watch` would keep — and every round fed to
//! `watch`'s own incident state machine, so "a plan would run" means what
//! it would mean in the daemon (once per incident, after the cooldown, not
//! while a veto gate is not go). The [`Backtest`] says when each criterion
//! changed, when each trigger was raised (and since when its condition
//! held) and cleared, and when an incident opened, a plan would run or was
//! blocked, and the incident closed; [`render::table`] prints it.

pub mod render;

use crate::config::Config;
use crate::gate_set::GateSet;
use crate::history::History;
use crate::ledger::Record;
use crate::verdict::PhaseReport;
use crate::watch::incident::{Act, Firing, Incidents, RoundFacts};
use crate::watch::{MAX_WATCH_HISTORY, blind_in, firing_in, open_criteria};
use gatekeeper_model::{
    CriterionStatus, Decision, Snapshot, Timestamp, format_duration, format_timestamp,
    millis_between,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The phase of the one-gate config `gate run` and `backtest --gate` build.
pub const ONE_GATE_PHASE: &str = "run";

/// Why a recording cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error("the recording holds no snapshot")]
    Empty,
}

/// One thing that changed at a point of the recording.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at: Timestamp,
    /// `verdict`, `criterion`, `trigger-raised`, `trigger-cleared`,
    /// `incident-opened`, `plan-would-run`, `plan-blocked`,
    /// `incident-closed`, `recorded` (from the ledger).
    pub kind: &'static str,
    /// `gate/criterion`, `gate/trigger`, the plan, or the phase.
    pub subject: String,
    pub detail: String,
}

/// How one trigger behaved over the recording.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TriggerSummary {
    pub raised: usize,
    pub first_raised: Option<Timestamp>,
    /// Rounds in which it was raised.
    pub rounds: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Backtest {
    pub phase: String,
    pub snapshots: usize,
    pub from: Timestamp,
    pub to: Timestamp,
    /// The typical gap between snapshots.
    pub interval_ms: u64,
    /// The history window the gates were given.
    pub window_ms: u64,
    /// Rounds by phase verdict.
    pub verdicts: BTreeMap<String, usize>,
    pub triggers: BTreeMap<String, TriggerSummary>,
    /// Plan → the times it would have run.
    pub plans: BTreeMap<String, Vec<Timestamp>>,
    pub incidents: usize,
    pub events: Vec<Event>,
    /// With --ledger: recorded verdicts the replay disagrees with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerComparison>,
    pub elapsed_ms: u64,
    pub snapshots_per_second: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LedgerComparison {
    pub recorded: usize,
    pub disagreements: Vec<Event>,
}

/// The median gap between snapshots (5s for a single one).
fn typical_gap(snapshots: &[Snapshot]) -> Duration {
    let mut gaps: Vec<i64> = snapshots
        .windows(2)
        .map(|w| millis_between(w[0].taken_at, w[1].taken_at))
        .collect();
    gaps.sort_unstable();
    gaps.get(gaps.len() / 2)
        .map_or(Duration::from_secs(5), |ms| {
            Duration::from_millis((*ms).max(1) as u64)
        })
}

/// Evaluates `names` at every snapshot, as `watch` would over this time.
pub fn replay(
    config: &Config,
    gates: &GateSet,
    phase: &str,
    names: &[String],
    snapshots: Vec<Snapshot>,
) -> Result<Backtest, BacktestError> {
    let (Some(first), Some(last)) = (snapshots.first(), snapshots.last()) else {
        return Err(BacktestError::Empty);
    };
    let (from, to) = (first.taken_at, last.taken_at);
    let interval = typical_gap(&snapshots);
    let wc = config.watch.clone().unwrap_or_default();
    let (needed, _) = gates.history_needed(names, interval);
    let window = wc.history.map_or(needed, |h| h.0);
    let reads: BTreeMap<String, Vec<String>> = names
        .iter()
        .map(|g| (g.clone(), gates.sources_read(g)))
        .collect();
    // Empty for a lone gate: its one-gate config has no [watch].
    let veto = wc.veto.clone();
    let mut incidents = Incidents::new(wc.cooldown(), wc.resolve_after(), usize::MAX);
    let mut history = History::with_window(MAX_WATCH_HISTORY, window);
    let mut timeline = Timeline::default();
    let count = snapshots.len();
    let started = Instant::now();
    for snapshot in snapshots {
        let report = gates.evaluate_kept(phase, names, &snapshot, &history);
        let vetoed = (!veto.is_empty())
            .then(|| gates.evaluate_kept("veto", &veto, &snapshot, &history))
            .filter(|v| v.verdict != Decision::Go)
            .map(|v| format!("veto gates are {}: {}", v.verdict, open_criteria(&v)));
        let round = RoundFacts {
            now: Some(snapshot.taken_at),
            firing: firing_in(&report),
            blind: blind_in(&snapshot, &report, &reads),
            vetoed,
            acting: true,
            plan_running: false,
        };
        let acts = incidents.step(&round, |gate, trigger| {
            wc.plan_for(phase, gate, trigger).map(|(n, _)| n.to_owned())
        });
        timeline.observe(&report, &acts);
        history.push(snapshot);
    }
    let elapsed = started.elapsed();
    Ok(Backtest {
        phase: phase.to_owned(),
        snapshots: count,
        from,
        to,
        interval_ms: interval.as_millis() as u64,
        window_ms: window.as_millis() as u64,
        verdicts: timeline.verdicts,
        triggers: timeline.triggers,
        plans: timeline.plans,
        incidents: timeline.incidents,
        events: timeline.events,
        ledger: None,
        elapsed_ms: elapsed.as_millis() as u64,
        snapshots_per_second: count as f64 / elapsed.as_secs_f64().max(1e-9),
    })
}

/// What changed from round to round.
#[derive(Default)]
struct Timeline {
    verdict: Option<Decision>,
    criteria: BTreeMap<String, CriterionStatus>,
    raised: BTreeMap<String, ()>,
    verdicts: BTreeMap<String, usize>,
    triggers: BTreeMap<String, TriggerSummary>,
    plans: BTreeMap<String, Vec<Timestamp>>,
    incidents: usize,
    events: Vec<Event>,
}

impl Timeline {
    fn push(&mut self, at: Timestamp, kind: &'static str, subject: String, detail: String) {
        self.events.push(Event {
            at,
            kind,
            subject,
            detail,
        });
    }

    fn observe(&mut self, report: &PhaseReport, acts: &[Act]) {
        let at = report.taken_at;
        *self.verdicts.entry(report.verdict.to_string()).or_default() += 1;
        if self.verdict != Some(report.verdict) {
            let from = self.verdict.map_or("start".to_owned(), |v| v.to_string());
            self.verdict = Some(report.verdict);
            self.push(
                at,
                "verdict",
                report.phase.clone(),
                format!("{from} → {}", report.verdict),
            );
        }
        let mut raised_now = BTreeMap::new();
        for g in &report.gates {
            if let Some(e) = &g.error {
                let key = format!("{}/(gate)", g.name);
                let before = self.criteria.insert(key.clone(), CriterionStatus::Unknown);
                if before != Some(CriterionStatus::Unknown) {
                    self.push(at, "criterion", key, format!("error: {e}"));
                }
            } else if self
                .criteria
                .remove(&format!("{}/(gate)", g.name))
                .is_some()
            {
                self.push(
                    at,
                    "criterion",
                    format!("{}/(gate)", g.name),
                    "no longer in error".into(),
                );
            }
            for c in &g.criteria {
                let key = format!("{}/{}", g.name, c.id);
                let before = self.criteria.insert(key.clone(), c.status);
                if before != Some(c.status) {
                    let from = before.map_or("start".to_owned(), |s| s.as_str().to_owned());
                    let observed = c
                        .observed
                        .as_deref()
                        .map(|o| format!(" (observed {o})"))
                        .unwrap_or_default();
                    self.push(
                        at,
                        "criterion",
                        key,
                        format!("{from} → {}: {}{observed}", c.status.as_str(), c.message),
                    );
                }
            }
            for t in &g.triggers {
                let key = format!("{}/{}", g.name, t.id);
                raised_now.insert(key.clone(), ());
                let summary = self.triggers.entry(key.clone()).or_default();
                summary.rounds += 1;
                if !self.raised.contains_key(&key) {
                    summary.raised += 1;
                    summary.first_raised.get_or_insert(at);
                    let held = t
                        .since
                        .map(|s| {
                            format!(
                                "; condition held since {} ({})",
                                format_timestamp(s),
                                format_duration(Duration::from_millis(
                                    millis_between(s, at).max(0) as u64
                                ))
                            )
                        })
                        .unwrap_or_default();
                    self.push(
                        at,
                        "trigger-raised",
                        key,
                        format!("{} {}{held}", severity(t.severity), t.reason),
                    );
                }
            }
        }
        for key in self.raised.keys() {
            if !raised_now.contains_key(key) {
                self.events.push(Event {
                    at,
                    kind: "trigger-cleared",
                    subject: key.clone(),
                    detail: String::new(),
                });
            }
        }
        self.raised = raised_now;
        for act in acts {
            match act {
                Act::OpenIncident { id, triggers, .. } => {
                    self.incidents += 1;
                    let keys: Vec<String> = triggers.iter().map(Firing::key).collect();
                    self.push(at, "incident-opened", id.clone(), keys.join(", "));
                }
                Act::CloseIncident { id } => {
                    self.push(at, "incident-closed", id.clone(), String::new())
                }
                Act::RunPlan { plan, trigger } => {
                    self.plans.entry(plan.clone()).or_default().push(at);
                    self.push(
                        at,
                        "plan-would-run",
                        plan.clone(),
                        format!("on {}", trigger.key()),
                    );
                }
                Act::Blocked {
                    plan,
                    trigger,
                    outcome,
                    detail,
                } => self.push(
                    at,
                    "plan-blocked",
                    plan.clone(),
                    format!("{} on {trigger}: {detail}", outcome.as_str()),
                ),
                Act::Alert { .. } | Act::Standby { .. } => {}
            }
        }
    }
}

impl Backtest {
    /// Sets `ledger` from the verdicts `watch` recorded for this phase over
    /// the recording's span, each compared with the replay's verdict at
    /// the last snapshot at or before it.
    pub fn compare_ledger(&mut self, records: &[Record]) {
        let rounds: Vec<(Timestamp, Decision)> = self
            .events
            .iter()
            .filter(|e| e.kind == "verdict")
            .filter_map(|e| {
                let to = e.detail.rsplit(' ').next()?;
                Some((e.at, parse_decision(to)?))
            })
            .collect();
        let mut recorded = 0;
        let mut disagreements = Vec::new();
        for r in records {
            let Record::Verdict {
                phase,
                verdict,
                at,
                agent,
                ..
            } = r
            else {
                continue;
            };
            if phase != &self.phase || *at < self.from || *at > self.to {
                continue;
            }
            recorded += 1;
            self.events.push(Event {
                at: *at,
                kind: "recorded",
                subject: phase.clone(),
                detail: format!("{verdict} by {agent}"),
            });
            let replayed = rounds.iter().rev().find(|(t, _)| t <= at).map(|(_, v)| *v);
            if replayed != Some(*verdict) {
                disagreements.push(Event {
                    at: *at,
                    kind: "recorded",
                    subject: phase.clone(),
                    detail: format!(
                        "watch recorded {verdict}; the replay says {}",
                        replayed.map_or("nothing yet".to_owned(), |v| v.to_string())
                    ),
                });
            }
        }
        self.events.sort_by_key(|e| e.at);
        self.ledger = Some(LedgerComparison {
            recorded,
            disagreements,
        });
    }
}

fn severity(s: gatekeeper_model::Severity) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn parse_decision(text: &str) -> Option<Decision> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
}
