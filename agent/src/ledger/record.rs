//! The record kinds: one for each thing that happens (a verdict, an
//! incident opened or closed, a plan or a step run, an alert delivered, an
//! attestation), as JSON with a `kind` tag.

use gatekeeper_model::{Decision, Timestamp, Trigger};
use serde::{Deserialize, Serialize};

/// A gate as a verdict record names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateRan {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
}

/// One ledger record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Record {
    /// A phase's verdict at a time (on change, and at least every few minutes).
    Verdict {
        phase: String,
        verdict: Decision,
        at: Timestamp,
        agent: String,
        /// Each gate that decided it: its digest and signer.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        gates: Vec<GateRan>,
    },
    IncidentOpened {
        incident: String,
        at: Timestamp,
        agent: String,
        summary: String,
        triggers: Vec<Trigger>,
    },
    IncidentClosed {
        incident: String,
        at: Timestamp,
        agent: String,
    },
    /// One step of a plan, with its outcome.
    Step {
        incident: String,
        plan: String,
        /// 1-based position in the plan.
        step: usize,
        action: String,
        outcome: StepOutcome,
        detail: String,
        /// When the step started.
        at: Timestamp,
        #[serde(default)]
        duration_ms: u64,
        agent: String,
    },
    /// A plan's end (or why it did not start).
    Plan {
        incident: String,
        plan: String,
        trigger: String,
        outcome: PlanOutcome,
        detail: String,
        at: Timestamp,
        agent: String,
    },
    /// One `[watch] alert` hook run for an alert (exec or webhook). Its own
    /// kind: an alert is never a plan.
    AlertDelivery {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incident: Option<String>,
        action: String,
        outcome: StepOutcome,
        detail: String,
        at: Timestamp,
        #[serde(default)]
        duration_ms: u64,
        agent: String,
    },
    Alert {
        at: Timestamp,
        agent: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incident: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trigger: Option<String>,
        message: String,
    },
    /// `gatekeeper apply`: how a phase's run ended (its steps are `step`
    /// records under the same `run`, its step sequence a `plan` record).
    Apply {
        run: String,
        phase: String,
        outcome: ApplyOutcome,
        detail: String,
        /// Who applied (`--by`, default the login name).
        by: String,
        at: Timestamp,
        agent: String,
    },
    Attestation {
        phase: String,
        criterion: String,
        by: String,
        at: Timestamp,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
}

impl Record {
    /// The last subject token: `verdict`, `incident-opened`, …
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Verdict { .. } => "verdict",
            Record::IncidentOpened { .. } => "incident-opened",
            Record::IncidentClosed { .. } => "incident-closed",
            Record::Step { .. } => "step",
            Record::Plan { .. } => "plan",
            Record::Alert { .. } => "alert",
            Record::AlertDelivery { .. } => "alert-delivery",
            Record::Attestation { .. } => "attestation",
            Record::Apply { .. } => "apply",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepOutcome {
    /// Changed what it had to.
    Done,
    /// Already as wanted; nothing changed.
    Unchanged,
    Failed,
    /// Dry run: this is what would have been done.
    WouldRun,
    /// Stopped by shutdown before it finished.
    Interrupted,
    /// Refused: this agent could not prove it still holds the lease.
    Fenced,
}

impl StepOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Done => "done",
            StepOutcome::Unchanged => "unchanged",
            StepOutcome::Failed => "failed",
            StepOutcome::WouldRun => "would-run",
            StepOutcome::Interrupted => "interrupted",
            StepOutcome::Fenced => "fenced",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanOutcome {
    Done,
    Failed,
    Interrupted,
    /// Dry run: every step recorded as `would-run`.
    DryRun,
    /// A veto gate was not go.
    Vetoed,
    /// Another plan ran less than `cooldown` ago.
    Cooldown,
    /// Stopped: this agent could not prove it still holds the lease.
    Fenced,
}

impl PlanOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanOutcome::Done => "done",
            PlanOutcome::Failed => "failed",
            PlanOutcome::Interrupted => "interrupted",
            PlanOutcome::DryRun => "dry-run",
            PlanOutcome::Vetoed => "vetoed",
            PlanOutcome::Cooldown => "cooldown",
            PlanOutcome::Fenced => "fenced",
        }
    }
}

/// The `trigger` of the `plan` record of an apply's forward steps: not a
/// rollback, so never a plan `watch` counts (cooldown, once per incident).
pub const APPLY_TRIGGER: &str = "apply";

/// How an `apply` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApplyOutcome {
    /// Written first, before the pre-gates: a ledger that refuses it stops
    /// the apply; an apply killed outright leaves it without an end.
    Started,
    /// The pre-gates were not go: nothing ran.
    Blocked,
    /// Every step ran and the verify phase went go.
    Done,
    /// A step failed (the `on_failure` plan ran, if there is one).
    Failed,
    /// The steps ran but the verify phase did not go in time.
    NotVerified,
    Interrupted,
    /// `--dry-run`: the steps were recorded as `would-run`.
    DryRun,
}

impl ApplyOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyOutcome::Started => "started",
            ApplyOutcome::Blocked => "blocked",
            ApplyOutcome::Done => "done",
            ApplyOutcome::Failed => "failed",
            ApplyOutcome::NotVerified => "not-verified",
            ApplyOutcome::Interrupted => "interrupted",
            ApplyOutcome::DryRun => "dry-run",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_read_as_in_the_json() {
        use StepOutcome::*;
        for o in [Done, Unchanged, Failed, WouldRun, Interrupted, Fenced] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        use PlanOutcome as P;
        for o in [
            P::Done,
            P::Failed,
            P::Interrupted,
            P::DryRun,
            P::Vetoed,
            P::Cooldown,
            P::Fenced,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
    }
}
