//! What the daemon does about one round's triggers: open and close incidents,
//! run a plan at most once per incident, respect cooldown and vetoes, and
//! alert on manual triggers and on blindness. Pure: no I/O, no clock.

use crate::ledger::PlanOutcome;
use gatekeeper_model::{Severity, Timestamp, Trigger};
use std::collections::BTreeSet;
use std::time::Duration;

/// What one round saw.
#[derive(Debug, Clone)]
pub struct RoundFacts {
    pub now: Option<Timestamp>,
    /// Triggers the watched gates raised (their conditions held).
    pub firing: Vec<Trigger>,
    /// What the watched gates could not see: `nats: unavailable: …`, `gate x: …`.
    /// A trigger that reads it is unknown, so it can never fire: alert.
    pub blind: Vec<String>,
    /// `Err(why)` when a veto gate is not go.
    pub veto: Result<(), String>,
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
        triggers: Vec<Trigger>,
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
        trigger: Trigger,
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
    /// Keys already alerted in this incident (`manual:<id>`, `veto:<plan>`, …).
    said: BTreeSet<String>,
}

/// The incident state across rounds.
#[derive(Debug, Clone)]
pub struct Incidents {
    cooldown: Duration,
    resolve_after: Duration,
    open: Option<Open>,
    last_plan_at: Option<Timestamp>,
    /// Blindness already alerted, until it clears.
    blind: BTreeSet<String>,
}

impl Incidents {
    pub fn new(cooldown: Duration, resolve_after: Duration) -> Self {
        Incidents {
            cooldown,
            resolve_after,
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

    /// One round: what to do. `plan_for` maps a trigger id to its plan's name.
    pub fn step(
        &mut self,
        round: &RoundFacts,
        plan_for: impl Fn(&str) -> Option<String>,
    ) -> Vec<Act> {
        let mut acts = Vec::new();
        let now = round.now.unwrap_or_default();
        for b in &round.blind {
            if self.blind.insert(b.clone()) {
                acts.push(Act::Alert {
                    trigger: None,
                    message: format!(
                        "cannot see: {b}; triggers that read it stay unknown and will not roll back"
                    ),
                });
            }
        }
        self.blind.retain(|b| round.blind.contains(b));

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
        let open = self.open.get_or_insert_with(|| {
            let first = &round.firing[0];
            let id = format!("{}-{}", first.id, now.format("%Y%m%dT%H%M%SZ"));
            acts.push(Act::OpenIncident {
                id: id.clone(),
                at: now,
                triggers: round.firing.clone(),
            });
            Open {
                id,
                opened_at: now,
                last_firing: now,
                ran: BTreeSet::new(),
                said: BTreeSet::new(),
            }
        });
        open.last_firing = now;
        for t in &round.firing {
            let plan = match (t.severity, plan_for(&t.id)) {
                (Severity::Automatic, Some(plan)) => plan,
                (severity, _) => {
                    let (key, why) = if severity == Severity::Manual {
                        ("manual", "manual trigger: a person decides")
                    } else {
                        (
                            "no-plan",
                            "automatic trigger, but no plan names it in [watch.plans]",
                        )
                    };
                    if open.said.insert(format!("{key}:{}", t.id)) {
                        acts.push(Act::Alert {
                            trigger: Some(t.id.clone()),
                            message: format!("{}: {} ({why})", t.id, t.reason),
                        });
                    }
                    continue;
                }
            };
            if open.ran.contains(&plan) || round.plan_running {
                continue;
            }
            if !round.acting {
                if open.said.insert(format!("standby:{plan}")) {
                    acts.push(Act::Standby {
                        plan,
                        trigger: t.id.clone(),
                    });
                }
                continue;
            }
            let cooling = self.last_plan_at.filter(|last| {
                gatekeeper_model::millis_between(*last, now) < self.cooldown.as_millis() as i64
            });
            let blocked = match (&round.veto, cooling) {
                (Err(why), _) => Some((PlanOutcome::Vetoed, why.clone())),
                (Ok(()), Some(last)) => Some((
                    PlanOutcome::Cooldown,
                    format!(
                        "a plan ran at {}, less than the cooldown ({}) ago",
                        gatekeeper_model::format_timestamp(last),
                        gatekeeper_model::format_duration(self.cooldown)
                    ),
                )),
                (Ok(()), None) => None,
            };
            if let Some((outcome, detail)) = blocked {
                // Recorded once per incident and reason; a lifted veto lets it run.
                if open.said.insert(format!("{}:{plan}", outcome.as_str())) {
                    acts.push(Act::Blocked {
                        plan,
                        trigger: t.id.clone(),
                        outcome,
                        detail,
                    });
                }
                continue;
            }
            open.ran.insert(plan.clone());
            self.last_plan_at = Some(now);
            acts.push(Act::RunPlan {
                plan,
                trigger: t.clone(),
            });
            // One plan per round: the next round sees it running.
            break;
        }
        acts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, severity: Severity) -> Trigger {
        Trigger {
            id: id.into(),
            severity,
            reason: "held".into(),
            since: None,
        }
    }

    fn round(at: &str, firing: Vec<Trigger>) -> RoundFacts {
        RoundFacts {
            now: Some(at.parse().unwrap()),
            firing,
            blind: vec![],
            veto: Ok(()),
            acting: true,
            plan_running: false,
        }
    }

    fn plans(id: &str) -> Option<String> {
        (id == "dlq-spike" || id == "crash-loop").then(|| "rollback".to_owned())
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
        let mut s = Incidents::new(Duration::from_secs(1800), Duration::from_secs(300));
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
    fn manual_triggers_alert_once_and_never_run() {
        let mut s = Incidents::new(Duration::from_secs(1800), Duration::from_secs(300));
        let lag = || vec![t("consumer-lag-high", Severity::Manual)];
        assert_eq!(
            kinds(&s.step(&round("2025-10-02T10:00:00Z", lag()), plans)),
            ["open", "alert"]
        );
        assert!(
            s.step(&round("2025-10-02T10:00:05Z", lag()), plans)
                .is_empty()
        );
        // An automatic trigger without a plan alerts too.
        let a = s.step(
            &round(
                "2025-10-02T10:00:10Z",
                vec![t("db-inserts-stopped", Severity::Automatic)],
            ),
            plans,
        );
        assert_eq!(kinds(&a), ["alert"]);
    }

    #[test]
    fn veto_standby_and_running_plans_hold_the_plan_back() {
        let mut s = Incidents::new(Duration::from_secs(1800), Duration::from_secs(300));
        let spike = || vec![t("dlq-spike", Severity::Automatic)];
        let mut r = round("2025-10-02T10:00:00Z", spike());
        r.acting = false;
        assert_eq!(kinds(&s.step(&r, plans)), ["open", "standby"]);
        assert!(s.step(&r, plans).is_empty());
        let mut r = round("2025-10-02T10:00:05Z", spike());
        r.veto = Err("legacy-stream-present: stream gone".into());
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
        let mut s = Incidents::new(Duration::from_secs(1800), Duration::from_secs(300));
        let mut r = round("2025-10-02T10:00:00Z", vec![]);
        r.blind = vec!["nats: unavailable: connection refused".into()];
        let a = s.step(&r, plans);
        assert_eq!(kinds(&a), ["alert"]);
        assert!(
            matches!(&a[0], Act::Alert { message, .. } if message.starts_with("cannot see: nats: unavailable"))
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
        let mut s = Incidents::new(Duration::from_secs(1800), Duration::from_secs(300));
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
