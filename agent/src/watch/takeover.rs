//! Taking over: after taking the lease, an incident opened and not closed
//! in the ledger is ours now, with the plans it already ran.

use super::incident::Incidents;
use crate::ledger::{APPLY_TRIGGER, Journal, PlanOutcome, Record};
use gatekeeper_model::Timestamp;

/// After taking the lease: an incident opened and not closed in the ledger
/// is ours now, with the plans it already ran.
pub(super) async fn adopt_open_incident(journal: &Journal, incidents: &mut Incidents) {
    let records = match journal.read().await {
        Ok((_, events)) => events,
        Err(e) => {
            tracing::warn!(error = %e, "ledger unreadable: cannot check for an open incident");
            return;
        }
    };
    let mut open: Option<(String, Timestamp)> = None;
    for r in &records {
        match r {
            Record::IncidentOpened { incident, at, .. } => open = Some((incident.clone(), *at)),
            Record::IncidentClosed { incident, .. }
                if open.as_ref().is_some_and(|(i, _)| i == incident) =>
            {
                open = None
            }
            _ => {}
        }
    }
    // Plans that ran. Agents before alerts had a record kind of their own
    // wrote alert hooks as plan `alert`: those never count. Nor does a plan
    // a stale holder was fenced from (its steps are idempotent: run again),
    // nor an apply's forward steps (not a rollback).
    let ran = |r: &Record| match r {
        Record::Plan {
            incident,
            plan,
            trigger,
            outcome,
            at,
            ..
        } if !matches!(
            outcome,
            PlanOutcome::Vetoed | PlanOutcome::Cooldown | PlanOutcome::Fenced
        ) && plan != crate::config::LEGACY_ALERT_PLAN
            && trigger != APPLY_TRIGGER =>
        {
            Some((incident.clone(), plan.clone(), *at))
        }
        _ => None,
    };
    let last_plan_at = records.iter().filter_map(ran).map(|(_, _, at)| at).max();
    if let Some((id, at)) = open {
        let plans: Vec<String> = records
            .iter()
            .filter_map(ran)
            .filter(|(i, _, _)| *i == id)
            .map(|(_, p, _)| p)
            .collect();
        tracing::warn!(incident = %id, plans_run = ?plans, "adopting the open incident from the ledger");
        incidents.adopt(id, at, plans, last_plan_at);
    } else {
        incidents.forget_unrecorded();
        if let Some(at) = last_plan_at {
            incidents.adopt_cooldown(at);
        }
    }
}
