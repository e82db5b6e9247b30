//! Carrying out a round's acts: incidents recorded, alerts raised (their
//! own record kind, hooks run in the background), blocked plans recorded,
//! rollback plans started on their own task.

use super::Watcher;
use super::decide::Evaluation;
use super::incident::{self, Act};
use super::lease::LeaseState;
use crate::actions::PlanRun;
use crate::ledger::{PlanOutcome, Record};
use crate::verdict::PhaseReport;
use gatekeeper_model::Snapshot;

/// How a plan run ended, as its task returns it.
pub(super) struct PlanEnd {
    pub plan: String,
    pub outcome: PlanOutcome,
    pub detail: String,
    pub incident: String,
    pub trigger: String,
}

impl PlanEnd {
    /// The alert for a plan that did not finish (`by`: how it was stopped, if told).
    pub fn unfinished(&self, by: &str) -> Option<String> {
        (!matches!(self.outcome, PlanOutcome::Done | PlanOutcome::DryRun)).then(|| {
            format!(
                "plan {} {}{by}: {}; finish the rollback by hand",
                self.plan,
                self.outcome.as_str(),
                self.detail
            )
        })
    }
}

impl Watcher {
    /// Does what the incident state machine asked. Only the lease holder
    /// writes the ledger and runs plans; alerts go out from the holder, or
    /// from anyone while nobody can tell who holds the lease.
    pub(super) async fn act(
        &mut self,
        acts: Vec<Act>,
        snapshot: &Snapshot,
        evaluation: &Evaluation,
        lease: LeaseState,
    ) {
        let acting = lease.acting;
        let may_alert = acting || !lease.known;
        let report = &evaluation.report;
        for act in acts {
            let now = chrono::Utc::now();
            let agent = self.agent.clone();
            match act {
                Act::OpenIncident { id, at, triggers } => {
                    let summary = incident::listed(
                        triggers
                            .iter()
                            .map(|f| format!("{}: {}", f.key(), f.trigger.reason)),
                        triggers.len(),
                    );
                    tracing::warn!(incident = %id, acting, triggers = %crate::text::untrusted_line(&summary), "incident opened");
                    if may_alert && let Some(am) = &self.alertmanager {
                        let first = triggers.first().map(|f| f.key());
                        am.incident(&id, first.as_deref(), &summary, report);
                    }
                    if acting {
                        // The first few, named `gate/trigger`; the summary counts the rest.
                        let triggers = triggers
                            .into_iter()
                            .take(incident::TRIGGERS_PER_ALERT)
                            .map(|f| gatekeeper_model::Trigger {
                                id: f.key(),
                                ..f.trigger
                            })
                            .collect();
                        self.journal
                            .append(Record::IncidentOpened {
                                incident: id,
                                at,
                                agent,
                                summary,
                                triggers,
                            })
                            .await;
                    }
                }
                Act::CloseIncident { id } => {
                    tracing::info!(incident = %id, "incident closed: no trigger fired for resolve_after");
                    if may_alert && let Some(am) = &self.alertmanager {
                        am.close(&id);
                    }
                    if acting {
                        self.journal
                            .append(Record::IncidentClosed {
                                incident: id,
                                at: now,
                                agent,
                            })
                            .await;
                    }
                }
                Act::Alert { trigger, message } => {
                    if may_alert {
                        let incident = self.incidents.open_incident().map(str::to_owned);
                        self.alert(incident.as_deref(), trigger, message, report)
                            .await;
                    } else {
                        tracing::info!(message = %message, "standby: the lease holder alerts");
                    }
                }
                Act::Standby { plan, trigger } => {
                    tracing::info!(plan = %plan, trigger = %trigger, holder = self.lease.holder().unwrap_or("?"), "standby: the lease holder runs the plan");
                }
                Act::Blocked {
                    plan,
                    trigger,
                    outcome,
                    detail,
                } => {
                    let incident = self
                        .incidents
                        .open_incident()
                        .unwrap_or_default()
                        .to_owned();
                    self.journal
                        .append(Record::Plan {
                            incident: incident.clone(),
                            plan: plan.clone(),
                            trigger: trigger.clone(),
                            outcome,
                            detail: detail.clone(),
                            at: now,
                            agent,
                        })
                        .await;
                    self.summary.plans.push((plan.clone(), outcome));
                    let message = format!("plan {plan} not run ({}): {detail}", outcome.as_str());
                    self.alert(Some(&incident), Some(trigger), message, report)
                        .await;
                }
                Act::RunPlan { plan, trigger } => {
                    self.start_plan(plan, trigger, snapshot, evaluation, now);
                }
            }
        }
    }

    /// Starts a rollback plan on its own task; the next rounds collect its end.
    fn start_plan(
        &mut self,
        plan: String,
        trigger: incident::Firing,
        snapshot: &Snapshot,
        evaluation: &Evaluation,
        now: gatekeeper_model::Timestamp,
    ) {
        let (incident, incident_at) = (
            self.incidents
                .open_incident()
                .unwrap_or_default()
                .to_owned(),
            self.incidents.incident_start().unwrap_or(snapshot.taken_at),
        );
        let report = &evaluation.report;
        let verdict_json = serde_json::json!({
            "phase": self.phase, "verdict": report.verdict, "incident": incident, "plan": plan,
            "gate": trigger.gate, "trigger": trigger.trigger,
            "triggers": evaluation.firing.iter().map(|f| f.key()).collect::<Vec<_>>(),
            "agent": self.agent, "at": now, "dry_run": self.dry_run, "report": report,
        })
        .to_string();
        let run = PlanRun {
            forward: false,
            incident,
            incident_at,
            plan: plan.clone(),
            trigger: trigger.key(),
            verdict_json,
            phase: self.phase.clone(),
            epoch: None,
        };
        let steps = self.wc.plans[&plan].clone();
        tracing::warn!(plan = %plan, trigger = %run.trigger, incident = %run.incident, dry_run = self.dry_run, "running rollback plan");
        let executor = self.executor.clone();
        let stop = self.stop.clone();
        self.plan = Some(tokio::spawn(async move {
            let (outcome, detail) = executor.run_plan(&run, &steps, stop).await;
            tracing::warn!(plan = %run.plan, outcome = outcome.as_str(), detail = %detail, "rollback plan ended");
            PlanEnd {
                plan: run.plan,
                outcome,
                detail,
                incident: run.incident,
                trigger: run.trigger,
            }
        }));
    }

    /// Logs, counts and records an alert.
    pub(super) async fn record_alert(
        &self,
        incident: Option<&str>,
        trigger: Option<String>,
        message: String,
    ) {
        tracing::error!(alert = %message, incident = incident.unwrap_or(""), "ALERT");
        self.metrics.alerts.inc();
        self.journal
            .append(Record::Alert {
                at: chrono::Utc::now(),
                agent: self.agent.clone(),
                incident: incident.map(str::to_owned),
                trigger,
                message,
            })
            .await;
    }

    /// Records an alert (see [`Self::record_alert`]) and runs the
    /// `[watch] alert` hooks without waiting for them.
    pub(super) async fn alert(
        &self,
        incident: Option<&str>,
        trigger: Option<String>,
        message: String,
        report: &PhaseReport,
    ) {
        self.record_alert(incident, trigger.clone(), message.clone())
            .await;
        if let Some(am) = &self.alertmanager {
            am.fire(incident, trigger.as_deref(), &message, report);
        }
        if self.wc.alert.is_empty() {
            return;
        }
        let body = serde_json::json!({ "alert": message, "incident": incident, "trigger": trigger, "agent": self.agent, "report": report }).to_string();
        let run = PlanRun {
            forward: false,
            incident: incident.unwrap_or_default().to_owned(),
            incident_at: chrono::Utc::now(),
            plan: String::new(),
            trigger: trigger.unwrap_or_default(),
            verdict_json: body,
            phase: report.phase.clone(),
            epoch: None,
        };
        let executor = self.executor.clone();
        let hooks = self.wc.alert.clone();
        // Alerts never wait on their hooks; each delivery is recorded.
        tokio::spawn(async move { executor.deliver_alert(&run, &hooks).await });
    }
}
