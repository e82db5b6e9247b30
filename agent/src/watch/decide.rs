//! Evaluating the watched phase and deciding what the round means: what
//! fired, what the gates could not see, whether a veto holds, and so which
//! acts the incident state machine asks for.

use super::Watcher;
use super::incident::{Act, Blind, Firing, RoundFacts};
use crate::verdict::{GateVerdict, PhaseReport};
use gatekeeper_model::{CriterionStatus, Decision, Snapshot, SourceStatus};

/// What the gates said this round.
pub(super) struct Evaluation {
    pub report: PhaseReport,
    /// Why a veto gate is not go, when one is not.
    pub vetoed: Option<String>,
    /// The triggers the watched gates raised.
    pub firing: Vec<Firing>,
}

impl Watcher {
    /// Runs the watched phase's gates and the veto gates over the snapshot
    /// and the history (on the gate threads; this async thread only waits).
    pub(super) fn evaluate(&self, snapshot: &Snapshot) -> Evaluation {
        let t0 = std::time::Instant::now();
        let history = &self.history;
        let report = tokio::task::block_in_place(|| {
            self.gates
                .evaluate_kept(&self.phase, &self.phase_gates, snapshot, history)
        });
        let vetoed = match self.wc.veto.is_empty() {
            true => None,
            false => {
                let v = tokio::task::block_in_place(|| {
                    self.gates
                        .evaluate_kept("veto", &self.wc.veto, snapshot, history)
                });
                (v.verdict != Decision::Go)
                    .then(|| format!("veto gates are {}: {}", v.verdict, open_criteria(&v)))
            }
        };
        self.metrics
            .evaluation_seconds
            .observe(t0.elapsed().as_secs_f64());
        self.metrics.observe_gates(&report);
        let firing = firing_in(&report);
        Evaluation {
            report,
            vetoed,
            firing,
        }
    }

    /// Collects the plan that finished, then asks the incident state machine
    /// what this round calls for.
    pub(super) async fn decide(
        &mut self,
        snapshot: &Snapshot,
        evaluation: &Evaluation,
        acting: bool,
    ) -> Vec<Act> {
        if self.plan.as_ref().is_some_and(|t| t.is_finished())
            && let Some(task) = self.plan.take()
            && let Ok(end) = task.await
        {
            if let Some(message) = end.unfinished("") {
                let (incident, trigger) = (end.incident.clone(), end.trigger.clone());
                self.alert(Some(&incident), Some(trigger), message, &evaluation.report)
                    .await;
            }
            self.summary.plans.push((end.plan, end.outcome));
        }
        let round = RoundFacts {
            now: Some(snapshot.taken_at),
            firing: evaluation.firing.clone(),
            blind: blind_in(snapshot, &evaluation.report, &self.reads),
            vetoed: evaluation.vetoed.clone(),
            acting,
            plan_running: self.plan.is_some(),
        };
        let (wc, phase) = (&self.wc, self.phase.as_str());
        let acts = self.incidents.step(&round, |gate, trigger| {
            wc.plan_for(phase, gate, trigger).map(|(n, _)| n.to_owned())
        });
        self.metrics
            .incident_open
            .set(i64::from(self.incidents.open_incident().is_some()));
        acts
    }
}

/// The triggers a report's gates raised, each with its gate.
pub(crate) fn firing_in(report: &PhaseReport) -> Vec<Firing> {
    report
        .gates
        .iter()
        .flat_map(|g| {
            g.triggers.iter().map(|t| Firing {
                gate: g.name.clone(),
                trigger: t.clone(),
            })
        })
        .collect()
}

/// What the watched gates could not see: a gate in error, or a source
/// a gate reads (`reads`: gate → sources) that is unavailable or partial.
/// Sorted, one per thing.
pub(crate) fn blind_in(
    snapshot: &Snapshot,
    report: &PhaseReport,
    reads: &std::collections::BTreeMap<String, Vec<String>>,
) -> Vec<Blind> {
    let mut blind: Vec<Blind> = Vec::new();
    for g in &report.gates {
        if g.verdict == GateVerdict::Error {
            blind.push(Blind {
                what: format!("gate {}", g.name),
                why: g.error.clone(),
            });
        }
        let read = reads.get(&g.name).map(Vec::as_slice).unwrap_or_default();
        for source in snapshot.source_states() {
            if read.iter().any(|r| r == source.name)
                && matches!(
                    source.status,
                    SourceStatus::Unavailable | SourceStatus::Partial
                )
            {
                blind.push(Blind {
                    what: format!("{} {}", source.name, source.status.as_str()),
                    why: source.error.map(str::to_owned),
                });
            }
        }
    }
    blind.sort_by(|a, b| a.what.cmp(&b.what));
    blind.dedup_by(|a, b| a.what == b.what);
    blind
}

/// `criterion: message; …` for the criteria that are not pass.
pub(crate) fn open_criteria(report: &PhaseReport) -> String {
    let mut out = Vec::new();
    for g in &report.gates {
        if let Some(e) = &g.error {
            out.push(format!("{}: {e}", g.name));
        }
        for c in &g.criteria {
            if c.status != CriterionStatus::Pass {
                out.push(format!("{}: {}", c.id, c.message));
            }
        }
    }
    out.join("; ")
}
