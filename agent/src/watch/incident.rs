//! What the daemon does about one round's triggers: open and close incidents,
//! run a plan at most once per incident, respect cooldown and vetoes, and
//! alert on triggers no plan names and on blindness — aggregated, one alert
//! per round at most for each, and a bounded number per incident. Pure: no
//! I/O, no clock.
//!
//! Gates propose, config disposes: a trigger starts a plan only when a plan
//! names it with the gate that raised it (`gate/trigger`); the severity a
//! gate gives is only shown. Every other firing trigger alerts.

use crate::ledger::PlanOutcome;
use gatekeeper_model::{Severity, Timestamp, Trigger};
use std::collections::BTreeSet;
use std::time::Duration;

/// Triggers named in one alert; the rest are counted.
pub const TRIGGERS_PER_ALERT: usize = 10;

/// A trigger and the gate that raised it.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    pub gate: String,
    pub trigger: Trigger,
}

impl Firing {
    /// `gate/trigger`, as plans name it.
    pub fn key(&self) -> String {
        format!("{}/{}", self.gate, self.trigger.id)
    }
}

/// Something the watched gates cannot see: a gate that errs, a source that
/// is down or partial. One alert per outage: keyed by `what`, not by `why`
/// (an error's wording may change from round to round).
#[derive(Debug, Clone, PartialEq)]
pub struct Blind {
    /// `gate x`, `nats unavailable`.
    pub what: String,
    /// The error, when there is one.
    pub why: Option<String>,
}

/// What one round saw.
#[derive(Debug, Clone)]
pub struct RoundFacts {
    pub now: Option<Timestamp>,
    /// Triggers the watched gates raised (their conditions held).
    pub firing: Vec<Firing>,
    /// What the watched gates could not see: `nats: unavailable: …`, `gate x: …`.
    /// A trigger that reads it is unknown, so it can never fire: alert.
    pub blind: Vec<Blind>,
    /// Why a veto gate is not go, when one is not: no plan may run.
    pub vetoed: Option<String>,
    /// This agent holds the lease (or there is no lease: one agent).
    pub acting: bool,
    /// A plan is still running.
    pub plan_running: bool,
}

/// What to do; the daemon records each in the ledger and runs plans.
#[derive(Debug, Clone, PartialEq)]
pub enum Act {
    OpenIncident {
        id: String,
        /// The round's time: the incident's start.
        at: Timestamp,
        triggers: Vec<Firing>,
    },
    CloseIncident {
        id: String,
    },
    Alert {
        trigger: Option<String>,
        message: String,
    },
    RunPlan {
        plan: String,
        trigger: Firing,
    },
    /// The plan would run but may not (vetoed, cooldown): recorded once per incident.
    Blocked {
        plan: String,
        trigger: String,
        outcome: PlanOutcome,
        detail: String,
    },
    /// Another agent holds the lease: this one only reports.
    Standby {
        plan: String,
        trigger: String,
    },
}

#[derive(Debug, Clone)]
struct Open {
    id: String,
    /// When it opened: the restart annotation's value, the same after a takeover.
    opened_at: Timestamp,
    last_firing: Timestamp,
    /// Plans that ran (or were dry-run) in this incident.
    ran: BTreeSet<String>,
    /// Keys already alerted in this incident (`unplanned:<gate/id>`, `vetoed:<plan>`, …).
    said: BTreeSet<String>,
    /// Alerts sent in this incident.
    alerts: usize,
}

/// The incident state across rounds.
#[derive(Debug, Clone)]
pub struct Incidents {
    cooldown: Duration,
    resolve_after: Duration,
    /// Alerts per incident at most (the last says the rest are suppressed).
    alert_limit: usize,
    open: Option<Open>,
    last_plan_at: Option<Timestamp>,
    /// Blindness already alerted, until it clears.
    blind: BTreeSet<String>,
}

impl Incidents {
    pub fn new(cooldown: Duration, resolve_after: Duration, alert_limit: usize) -> Self {
        Incidents {
            cooldown,
            resolve_after,
            alert_limit: alert_limit.max(1),
            open: None,
            last_plan_at: None,
            blind: BTreeSet::new(),
        }
    }

    pub fn open_incident(&self) -> Option<&str> {
        self.open.as_ref().map(|o| o.id.as_str())
    }

    /// When the open incident started.
    pub fn incident_start(&self) -> Option<Timestamp> {
        self.open.as_ref().map(|o| o.opened_at)
    }

    /// Takes over an incident another agent opened (from the ledger): the
    /// plans it ran stay run.
    pub fn adopt(
        &mut self,
        id: String,
        at: Timestamp,
        ran: impl IntoIterator<Item = String>,
        last_plan_at: Option<Timestamp>,
    ) {
        self.open = Some(Open {
            id,
            opened_at: at,
            last_firing: at,
            ran: ran.into_iter().collect(),
            said: BTreeSet::new(),
            alerts: 0,
        });
        self.last_plan_at = self.last_plan_at.max(last_plan_at);
    }

    /// Forgets an incident only this agent saw (as a standby it recorded
    /// nothing): the next firing round opens, and records, a new one.
    pub fn forget_unrecorded(&mut self) {
        self.open = None;
    }

    /// A plan ran at `at` (from the ledger): the cooldown counts from there.
    pub fn adopt_cooldown(&mut self, at: Timestamp) {
        self.last_plan_at = self.last_plan_at.max(Some(at));
    }

    /// One round: what to do. `plan_for(gate, trigger)` names the plan
    /// the config starts on that trigger of that gate, if any.
    pub fn step(
        &mut self,
        round: &RoundFacts,
        plan_for: impl Fn(&str, &str) -> Option<String>,
    ) -> Vec<Act> {
        let mut acts = Vec::new();
        let now = round.now.unwrap_or_default();
        let new_blind: Vec<&Blind> = round
            .blind
            .iter()
            .filter(|b| !self.blind.contains(&b.what))
            .collect();
        if !new_blind.is_empty() {
            let message = format!(
                "cannot see: {}; triggers that read it stay unknown and will not roll back",
                listed(
                    new_blind.iter().map(|b| match &b.why {
                        Some(why) => format!("{}: {why}", b.what),
                        None => b.what.clone(),
                    }),
                    new_blind.len()
                )
            );
            self.alert(&mut acts, None, message);
        }
        self.blind = round.blind.iter().map(|b| b.what.clone()).collect();

        if round.firing.is_empty() {
            if let Some(open) = &self.open
                && gatekeeper_model::millis_between(open.last_firing, now)
                    >= self.resolve_after.as_millis() as i64
            {
                acts.push(Act::CloseIncident {
                    id: open.id.clone(),
                });
                self.open = None;
            }
            return acts;
        }
        if self.open.is_none() {
            let first = &round.firing[0];
            let id = format!("{}-{}", first.trigger.id, now.format("%Y%m%dT%H%M%SZ"));
            acts.push(Act::OpenIncident {
                id: id.clone(),
                at: now,
                triggers: round.firing.clone(),
            });
            self.open = Some(Open {
                id,
                opened_at: now,
                last_firing: now,
                ran: BTreeSet::new(),
                said: BTreeSet::new(),
                alerts: 0,
            });
        }
        let cooling = self.last_plan_at.filter(|last| {
            gatekeeper_model::millis_between(*last, now) < self.cooldown.as_millis() as i64
        });
        let open = self.open.as_mut().expect("opened above");
        open.last_firing = now;
        // Triggers no plan names: one alert for all the new ones.
        let unplanned: Vec<&Firing> = round
            .firing
            .iter()
            .filter(|f| plan_for(&f.gate, &f.trigger.id).is_none())
            .filter(|f| open.said.insert(format!("unplanned:{}", f.key())))
            .collect();
        let mut plan_acts = Vec::new();
        for f in &round.firing {
            let Some(plan) = plan_for(&f.gate, &f.trigger.id) else {
                continue;
            };
            if open.ran.contains(&plan) || round.plan_running {
                continue;
            }
            if !round.acting {
                if open.said.insert(format!("standby:{plan}")) {
                    plan_acts.push(Act::Standby {
                        plan,
                        trigger: f.key(),
                    });
                }
                continue;
            }
            let blocked = match (&round.vetoed, cooling) {
                (Some(why), _) => Some((PlanOutcome::Vetoed, why.clone())),
                (None, Some(last)) => Some((
                    PlanOutcome::Cooldown,
                    format!(
                        "a plan ran at {}, less than the cooldown ({}) ago",
                        gatekeeper_model::format_timestamp(last),
                        gatekeeper_model::format_duration(self.cooldown)
                    ),
                )),
                (None, None) => None,
            };
            if let Some((outcome, detail)) = blocked {
                // Recorded once per incident and reason; a lifted veto lets it run.
                if open.said.insert(format!("{}:{plan}", outcome.as_str())) {
                    plan_acts.push(Act::Blocked {
                        plan,
                        trigger: f.key(),
                        outcome,
                        detail,
                    });
                }
                continue;
            }
            open.ran.insert(plan.clone());
            self.last_plan_at = Some(now);
            plan_acts.push(Act::RunPlan {
                plan,
                trigger: f.clone(),
            });
            // One plan per round: the next round sees it running.
            break;
        }
        if !unplanned.is_empty() {
            let trigger = (unplanned.len() == 1).then(|| unplanned[0].key());
            let message = format!(
                "{} (no plan in [watch.plans] names {}: a person decides)",
                listed(
                    unplanned.iter().map(|f| format!(
                        "{}: {} (the gate proposes {})",
                        f.key(),
                        f.trigger.reason,
                        severity_name(f.trigger.severity)
                    )),
                    unplanned.len()
                ),
                if unplanned.len() == 1 { "it" } else { "them" }
            );
            self.alert(&mut acts, trigger, message);
        }
        acts.extend(plan_acts);
        acts
    }

    /// Adds an alert, within the open incident's alert limit: the alert
    /// that reaches it says so, later ones are dropped.
    fn alert(&mut self, acts: &mut Vec<Act>, trigger: Option<String>, message: String) {
        let limit = self.alert_limit;
        if let Some(open) = self.open.as_mut() {
            open.alerts += 1;
            if open.alerts > limit {
                return;
            }
            if open.alerts == limit {
                acts.push(Act::Alert {
                    trigger,
                    message: format!(
                        "{message}; alert limit ({limit}) reached in incident {}: further alerts in it are dropped (the ledger still records every plan)",
                        open.id
                    ),
                });
                return;
            }
        }
        acts.push(Act::Alert { trigger, message });
    }
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Automatic => "automatic",
        Severity::Manual => "manual",
    }
}

/// `a; b; c; … and 7 more`, naming at most [`TRIGGERS_PER_ALERT`].
pub fn listed<S: AsRef<str>>(items: impl Iterator<Item = S>, total: usize) -> String {
    let mut out: Vec<String> = items
        .take(TRIGGERS_PER_ALERT)
        .map(|s| s.as_ref().to_owned())
        .collect();
    if total > TRIGGERS_PER_ALERT {
        out.push(format!("… and {} more", total - TRIGGERS_PER_ALERT));
    }
    out.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, severity: Severity) -> Firing {
        Firing {
            gate: "triggers".into(),
            trigger: Trigger {
                id: id.into(),
                severity,
                reason: "held".into(),
                since: None,
            },
        }
    }

    fn round(at: &str, firing: Vec<Firing>) -> RoundFacts {
        RoundFacts {
            now: Some(at.parse().unwrap()),
            firing,
            blind: vec![],
            vetoed: None,
            acting: true,
            plan_running: false,
        }
    }

    fn plans(gate: &str, id: &str) -> Option<String> {
        (gate == "triggers" && (id == "dlq-spike" || id == "crash-loop"))
            .then(|| "rollback".to_owned())
    }

    fn incidents() -> Incidents {
        Incidents::new(Duration::from_secs(1800), Duration::from_secs(300), 20)
    }

    fn kinds(acts: &[Act]) -> Vec<&'static str> {
        acts.iter()
            .map(|a| match a {
                Act::OpenIncident { .. } => "open",
                Act::CloseIncident { .. } => "close",
                Act::Alert { .. } => "alert",
                Act::RunPlan { .. } => "run",
                Act::Blocked { outcome, .. } => outcome.as_str(),
                Act::Standby { .. } => "standby",
            })
            .collect()
    }

    #[test]
    fn a_plan_runs_once_per_incident_and_the_incident_closes_when_quiet() {
        let mut s = incidents();
        let spike = || vec![t("dlq-spike", Severity::Automatic)];
        let a = s.step(&round("2025-10-02T10:00:00Z", spike()), plans);
        assert_eq!(kinds(&a), ["open", "run"]);
        assert_eq!(s.open_incident(), Some("dlq-spike-20251002T100000Z"));
        assert_eq!(
            s.incident_start(),
            Some("2025-10-02T10:00:00Z".parse().unwrap())
        );
        // Still firing, and another automatic trigger for the same plan: nothing more.
        let both = vec![
            t("dlq-spike", Severity::Automatic),
            t("crash-loop", Severity::Automatic),
        ];
        assert!(
            s.step(&round("2025-10-02T10:00:05Z", both), plans)
                .is_empty()
        );
        // Quiet for less than resolve_after: still open.
        assert!(
            s.step(&round("2025-10-02T10:04:00Z", vec![]), plans)
                .is_empty()
        );
        let a = s.step(&round("2025-10-02T10:05:05Z", vec![]), plans);
        assert_eq!(kinds(&a), ["close"]);
        // A new incident inside the cooldown: recorded, blocked once.
        let a = s.step(&round("2025-10-02T10:10:00Z", spike()), plans);
        assert_eq!(kinds(&a), ["open", "cooldown"]);
        assert!(
            s.step(&round("2025-10-02T10:10:05Z", spike()), plans)
                .is_empty()
        );
        // After the cooldown, in the same incident, it runs.
        let a = s.step(&round("2025-10-02T10:31:00Z", spike()), plans);
        assert_eq!(kinds(&a), ["run"]);
    }

    #[test]
    fn unplanned_triggers_alert_once_and_never_run() {
        let mut s = incidents();
        let lag = || vec![t("consumer-lag-high", Severity::Manual)];
        assert_eq!(
            kinds(&s.step(&round("2025-10-02T10:00:00Z", lag()), plans)),
            ["open", "alert"]
        );
        assert!(
            s.step(&round("2025-10-02T10:00:05Z", lag()), plans)
                .is_empty()
        );
        // A trigger the gate calls automatic but no plan names: alert only.
        let a = s.step(
            &round(
                "2025-10-02T10:00:10Z",
                vec![t("db-inserts-stopped", Severity::Automatic)],
            ),
            plans,
        );
        assert_eq!(kinds(&a), ["alert"]);
        assert!(
            matches!(&a[0], Act::Alert { message, .. } if message == "triggers/db-inserts-stopped: held (the gate proposes automatic) (no plan in [watch.plans] names it: a person decides)"),
            "{a:?}"
        );
    }

    #[test]
    fn only_the_gate_a_plan_names_can_start_it_and_the_config_decides() {
        let mut s = incidents();
        // Another gate raising `dlq-spike` as automatic: an alert, no plan.
        let mut impostor = t("dlq-spike", Severity::Automatic);
        impostor.gate = "my-team-gate".into();
        let a = s.step(&round("2025-10-02T10:00:00Z", vec![impostor]), plans);
        assert_eq!(kinds(&a), ["open", "alert"]);
        // The named gate's trigger runs the plan even when the gate calls it
        // manual: the config decides.
        let a = s.step(
            &round(
                "2025-10-02T10:00:05Z",
                vec![t("dlq-spike", Severity::Manual)],
            ),
            plans,
        );
        assert_eq!(kinds(&a), ["run"]);
    }

    #[test]
    fn alerts_are_aggregated_per_round_and_bounded_per_incident() {
        let mut s = Incidents::new(Duration::from_secs(1800), Duration::from_secs(300), 3);
        let storm = |n: usize, from: usize| {
            (from..from + n)
                .map(|i| t(&format!("storm-{i}"), Severity::Manual))
                .collect::<Vec<_>>()
        };
        let a = s.step(&round("2025-10-02T10:00:00Z", storm(2000, 0)), plans);
        assert_eq!(kinds(&a), ["open", "alert"]);
        let Act::Alert { message, trigger } = &a[1] else {
            unreachable!()
        };
        assert_eq!(*trigger, None);
        assert!(message.contains("triggers/storm-9: held"), "{message}");
        assert!(!message.contains("storm-10:"), "{message}");
        assert!(message.contains("… and 1990 more"), "{message}");
        // The same triggers again: nothing new to say.
        assert!(
            s.step(&round("2025-10-02T10:00:01Z", storm(2000, 0)), plans)
                .is_empty()
        );
        // New ones: the second alert, then the third says the limit is reached.
        assert_eq!(
            kinds(&s.step(&round("2025-10-02T10:00:02Z", storm(5, 2000)), plans)),
            ["alert"]
        );
        let a = s.step(&round("2025-10-02T10:00:03Z", storm(5, 3000)), plans);
        assert!(
            matches!(&a[..], [Act::Alert { message, .. }] if message.contains("alert limit (3) reached")),
            "{a:?}"
        );
        // Beyond the limit: silent, but a plan still runs.
        let mut more = storm(5, 4000);
        more.push(t("dlq-spike", Severity::Automatic));
        assert_eq!(
            kinds(&s.step(&round("2025-10-02T10:00:04Z", more), plans)),
            ["run"]
        );
    }

    #[test]
    fn veto_standby_and_running_plans_hold_the_plan_back() {
        let mut s = incidents();
        let spike = || vec![t("dlq-spike", Severity::Automatic)];
        let mut r = round("2025-10-02T10:00:00Z", spike());
        r.acting = false;
        assert_eq!(kinds(&s.step(&r, plans)), ["open", "standby"]);
        assert!(s.step(&r, plans).is_empty());
        let mut r = round("2025-10-02T10:00:05Z", spike());
        r.vetoed = Some("legacy-stream-present: stream gone".into());
        assert_eq!(kinds(&s.step(&r, plans)), ["vetoed"]);
        assert!(s.step(&r, plans).is_empty());
        let mut r = round("2025-10-02T10:00:10Z", spike());
        r.plan_running = true;
        assert!(s.step(&r, plans).is_empty());
        // Veto lifted, lease held, nothing running: it runs now.
        assert_eq!(
            kinds(&s.step(&round("2025-10-02T10:00:15Z", spike()), plans)),
            ["run"]
        );
    }

    #[test]
    fn blindness_alerts_once_per_outage_and_never_runs_a_plan() {
        let mut s = incidents();
        let mut r = round("2025-10-02T10:00:00Z", vec![]);
        r.blind = vec![Blind {
            what: "nats unavailable".into(),
            why: Some("connection refused".into()),
        }];
        let a = s.step(&r, plans);
        assert_eq!(kinds(&a), ["alert"]);
        assert!(
            matches!(&a[0], Act::Alert { message, .. } if message.starts_with("cannot see: nats unavailable: connection refused"))
        );
        assert!(s.step(&r, plans).is_empty());
        assert!(
            s.step(&round("2025-10-02T10:00:10Z", vec![]), plans)
                .is_empty()
        );
        assert_eq!(kinds(&s.step(&r, plans)), ["alert"]);
        assert_eq!(s.open_incident(), None);
    }

    #[test]
    fn an_adopted_incident_does_not_rerun_its_plan() {
        let mut s = incidents();
        let at = "2025-10-02T10:00:00Z".parse().unwrap();
        s.adopt("dlq-spike-x".into(), at, ["rollback".to_owned()], Some(at));
        assert_eq!(s.incident_start(), Some(at));
        let a = s.step(
            &round(
                "2025-10-02T10:00:05Z",
                vec![t("dlq-spike", Severity::Automatic)],
            ),
            plans,
        );
        assert!(a.is_empty(), "{a:?}");
    }
}
