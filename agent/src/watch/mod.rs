//! `gatekeeper watch`: every interval, collect → keep a bounded history →
//! evaluate the watched phase's trigger gates (their holds run over the
//! history) → decide (incidents, plans, alerts) → act, record, report.
//!
//! Only the HA lease holder acts and writes the ledger; the others evaluate
//! and report (logs, metrics). Shutdown is a future passed in: the running
//! plan step is interrupted and recorded, the lease released.

pub mod actions;
pub mod incident;
pub mod lease;
pub mod metrics;

use crate::check::{self, CheckError, GateSet, GateVerdict, PhaseReport};
use crate::clients::nats::JetStream;
use crate::collect;
use crate::config::{Config, LedgerBackend, LedgerConfig};
use crate::ledger::{Journal, PlanOutcome, Record};
use actions::{Executor, PlanRun};
use gatekeeper_model::{CriterionStatus, Decision, Snapshot, Source, SourceStatus, Timestamp};
use incident::{Act, Blind, Firing, Incidents, RoundFacts};
use lease::Lease;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Snapshots kept at most, whatever `history` says.
pub const MAX_WATCH_HISTORY: usize = 4000;
/// A phase verdict is recorded on change, and at least this often (the
/// ledger gate's `phase-stable` tolerates gaps up to 15m by default).
pub const VERDICT_HEARTBEAT: Duration = Duration::from_secs(5 * 60);
/// How long shutdown waits for an interrupted plan to record itself.
const PLAN_STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Default)]
pub struct WatchOptions {
    /// Overrides `watch.phase`.
    pub phase: Option<String>,
    /// Overrides `watch.interval`.
    pub interval: Option<Duration>,
    /// Or `watch.dry_run`.
    pub dry_run: bool,
    /// Overrides `watch.listen`.
    pub listen: Option<String>,
    /// This agent's name in the lease and the ledger.
    pub agent: String,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error("gate `{gate}` cannot be used: {message}")]
    Gate { gate: String, message: String },
    #[error("--listen {addr}: {message}")]
    Listen { addr: String, message: String },
}

/// What a watch did, for the caller's last line.
#[derive(Debug, Clone, Default)]
pub struct WatchSummary {
    pub rounds: u64,
    pub plans: Vec<(String, PlanOutcome)>,
}

/// Sources the gate reads (`nats`, `postgres`, …), from its `reads`.
fn sources_read(set: &GateSet, gate: &str) -> Vec<String> {
    let mut out: Vec<String> = set
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

/// Watches until `shutdown` resolves.
pub async fn watch(
    config: Config,
    options: WatchOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<WatchSummary, WatchError> {
    let config = Arc::new(config);
    let wc = config.watch.clone().unwrap_or_default();
    let phase = options
        .phase
        .clone()
        .unwrap_or_else(|| wc.phase().to_owned());
    let phase_gates = check::phase_gates(&config, &phase)?.to_vec();
    let interval = options.interval.unwrap_or(wc.interval());
    let dry_run = options.dry_run || wc.dry_run;
    let record_phases: Vec<String> = wc.record.clone().unwrap_or_else(|| {
        config
            .phases
            .keys()
            .filter(|p| **p != phase)
            .cloned()
            .collect()
    });

    for p in &record_phases {
        check::phase_gates(&config, p)?;
    }
    // Loading calls into the gates (metadata, reads): off the async threads.
    let gates = tokio::task::block_in_place(|| GateSet::load_checked(&config))
        .map_err(|e| WatchError::Check(CheckError::Config(e)))?;
    for name in phase_gates.iter().chain(&wc.veto) {
        let g = gates.gate(name).expect("loaded above");
        if let Err(e) = g.loaded.as_ref().map(drop).and(g.params.as_ref().map(drop)) {
            return Err(WatchError::Gate {
                gate: name.clone(),
                message: e.clone(),
            });
        }
    }
    gates
        .check_plans(&config)
        .map_err(|e| WatchError::Check(CheckError::Config(e)))?;
    let reads: BTreeMap<String, Vec<String>> = phase_gates
        .iter()
        .map(|g| (g.clone(), sources_read(&gates, g)))
        .collect();
    // The history the watched gates declare they need (0.2 `needs`); a 0.1
    // gate cannot say, so `watch.history` is the way to give it more.
    let (needed, undeclared) = gates.history_needed(&phase_gates, interval);
    for gate in &undeclared {
        tracing::warn!(gate = %gate, "gate built for contract 0.1.0 does not declare the history it needs; set watch.history if it needs more than {}", gatekeeper_model::format_duration(needed));
    }
    let history_window = wc.history.map_or(needed, |h| h.0);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let listen = options.listen.clone().or(wc.listen.clone());
    let server = match listen {
        Some(addr) => {
            let listener =
                tokio::net::TcpListener::bind(&addr)
                    .await
                    .map_err(|e| WatchError::Listen {
                        addr: addr.clone(),
                        message: e.to_string(),
                    })?;
            let mut rx = stop_rx.clone();
            let stale = (interval * 3 + Duration::from_secs(10)).as_millis() as i64;
            tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or(addr), "serving /metrics, /healthz, /readyz");
            Some(tokio::spawn(metrics::serve(listener, stale, async move {
                let _ = rx.wait_for(|s| *s).await;
            })))
        }
        None => None,
    };

    let journal = Arc::new(Journal::open(config.clone()).await);
    let default_ledger = LedgerConfig::default();
    let ledger_config = config.ledger.clone().unwrap_or(default_ledger);
    let uses_lease = ledger_config.backend(&config.sources) == LedgerBackend::Nats;
    let mut lease: Option<Lease> = None;
    let executor = Arc::new(Executor::new(
        config.clone(),
        journal.clone(),
        options.agent.clone(),
        dry_run,
    ));
    let mut incidents = Incidents::new(wc.cooldown(), wc.resolve_after(), wc.alert_limit());
    let mut history: Vec<Snapshot> = Vec::new();
    let mut ledger_facts: Source<gatekeeper_model::LedgerFacts> = Source::default();
    let mut ledger_read_at: Option<tokio::time::Instant> = None;
    let mut last_recorded: BTreeMap<String, (Decision, Timestamp)> = BTreeMap::new();
    let mut record_due = tokio::time::Instant::now();
    let mut was_acting = false;
    let mut plan_task: Option<tokio::task::JoinHandle<PlanEnd>> = None;
    let mut summary = WatchSummary::default();

    tracing::info!(
        phase = %phase,
        interval_ms = interval.as_millis() as u64,
        history_ms = history_window.as_millis() as u64,
        dry_run,
        agent = %options.agent,
        ledger = %journal.describe().await,
        "watching"
    );
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut shutdown => break,
        }
        // Collect.
        let mut snapshot = collect::collect_sources(&config).await;
        snapshot.interval_ms = Some(interval.as_millis() as u64);
        let ledger_stale = ledger_read_at.is_none_or(|t| t.elapsed() >= wc.record_every());
        if config.ledger.is_some() && ledger_stale {
            let started = chrono::Utc::now();
            let t0 = std::time::Instant::now();
            ledger_facts = match journal.read().await {
                Ok((facts, _)) => Source {
                    status: SourceStatus::Ok,
                    facts: Some(facts),
                    ..Source::default()
                },
                Err(e) => Source::unavailable(e.to_string()),
            };
            ledger_facts.collected_at = Some(started);
            ledger_facts.duration_ms = Some(t0.elapsed().as_millis() as u64);
            ledger_read_at = Some(tokio::time::Instant::now());
        }
        if config.ledger.is_some() {
            snapshot.ledger = ledger_facts.clone();
        }
        observe_sources(&snapshot);

        // Lease.
        let lease_known;
        let acting = if uses_lease {
            if lease.is_none() {
                match JetStream::open(&config).await {
                    Ok(js) => match Lease::open(js, &ledger_config, &phase, &options.agent).await {
                        Ok(l) => lease = Some(l),
                        Err(e) => tracing::warn!(error = %e, "lease bucket not reachable"),
                    },
                    Err(e) => tracing::warn!(error = %e, "lease: NATS not reachable"),
                }
            }
            match lease.as_mut() {
                Some(l) => match l.tick().await {
                    Ok(held) => {
                        lease_known = true;
                        held
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "lease: cannot renew; not acting");
                        lease = None;
                        lease_known = false;
                        false
                    }
                },
                None => {
                    lease_known = false;
                    false
                }
            }
        } else {
            lease_known = true;
            true
        };
        metrics::METRICS.lease_held.set(i64::from(acting));
        if acting && !was_acting {
            tracing::info!(agent = %options.agent, "acting: this agent holds the lease");
            journal.flush().await;
            adopt_open_incident(&journal, &mut incidents).await;
        } else if !acting && was_acting {
            tracing::warn!(agent = %options.agent, "lease lost: only reporting now");
        }
        was_acting = acting;

        // Evaluate.
        let t0 = std::time::Instant::now();
        // Gates run on the gate threads; this async thread only waits for them.
        let report = tokio::task::block_in_place(|| {
            gates.evaluate(&phase, &phase_gates, &snapshot, &history)
        });
        let veto = if wc.veto.is_empty() {
            Ok(())
        } else {
            let v = tokio::task::block_in_place(|| {
                gates.evaluate("veto", &wc.veto, &snapshot, &history)
            });
            match v.verdict {
                Decision::Go => Ok(()),
                other => Err(format!("veto gates are {other}: {}", open_criteria(&v))),
            }
        };
        metrics::METRICS
            .evaluation_seconds
            .observe(t0.elapsed().as_secs_f64());
        observe_report(&report);

        // Decide.
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
        let firing: Vec<Firing> = report
            .gates
            .iter()
            .flat_map(|g| {
                g.triggers.iter().map(|t| Firing {
                    gate: g.name.clone(),
                    trigger: t.clone(),
                })
            })
            .collect();
        if plan_task.as_ref().is_some_and(|t| t.is_finished())
            && let Some(task) = plan_task.take()
            && let Ok(end) = task.await
        {
            if let Some(message) = unfinished(&end, "") {
                alert(
                    &journal,
                    &executor,
                    &wc.alert,
                    &options.agent,
                    Some(&end.incident),
                    Some(end.trigger.clone()),
                    message,
                    &report,
                )
                .await;
            }
            summary.plans.push((end.plan, end.outcome));
        }
        let round = RoundFacts {
            now: Some(snapshot.taken_at),
            firing: firing.clone(),
            blind,
            veto,
            acting,
            plan_running: plan_task.is_some(),
        };
        let acts = incidents.step(&round, |gate, trigger| {
            wc.plan_for(gate, trigger).map(|(n, _)| n.to_owned())
        });
        metrics::METRICS
            .incident_open
            .set(i64::from(incidents.open_incident().is_some()));
        let may_alert = acting || !lease_known;
        for act in acts {
            let now = chrono::Utc::now();
            let agent = options.agent.clone();
            match act {
                Act::OpenIncident { id, at, triggers } => {
                    let summary_text = incident::listed(
                        triggers
                            .iter()
                            .map(|f| format!("{}: {}", f.key(), f.trigger.reason)),
                        triggers.len(),
                    );
                    tracing::warn!(incident = %id, acting, triggers = %crate::text::untrusted_line(&summary_text), "incident opened");
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
                        journal
                            .append(Record::IncidentOpened {
                                incident: id,
                                at,
                                agent,
                                summary: summary_text,
                                triggers,
                            })
                            .await;
                    }
                }
                Act::CloseIncident { id } => {
                    tracing::info!(incident = %id, "incident closed: no trigger fired for resolve_after");
                    if acting {
                        journal
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
                        alert(
                            &journal,
                            &executor,
                            &wc.alert,
                            &options.agent,
                            incidents.open_incident(),
                            trigger,
                            message,
                            &report,
                        )
                        .await;
                    } else {
                        tracing::info!(message = %message, "standby: the lease holder alerts");
                    }
                }
                Act::Standby { plan, trigger } => {
                    tracing::info!(plan = %plan, trigger = %trigger, holder = lease.as_ref().and_then(|l| l.holder()).unwrap_or("?"), "standby: the lease holder runs the plan");
                }
                Act::Blocked {
                    plan,
                    trigger,
                    outcome,
                    detail,
                } => {
                    let incident = incidents.open_incident().unwrap_or_default().to_owned();
                    journal
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
                    summary.plans.push((plan.clone(), outcome));
                    alert(
                        &journal,
                        &executor,
                        &wc.alert,
                        &options.agent,
                        Some(&incident),
                        Some(trigger),
                        format!("plan {plan} not run ({}): {detail}", outcome.as_str()),
                        &report,
                    )
                    .await;
                }
                Act::RunPlan { plan, trigger } => {
                    let (incident, incident_at) = (
                        incidents.open_incident().unwrap_or_default().to_owned(),
                        incidents.incident_start().unwrap_or(snapshot.taken_at),
                    );
                    let verdict_json = serde_json::json!({
                        "phase": phase, "verdict": report.verdict, "incident": incident, "plan": plan,
                        "gate": trigger.gate, "trigger": trigger.trigger, "triggers": firing.iter().map(|f| f.key()).collect::<Vec<_>>(),
                        "agent": options.agent, "at": now, "dry_run": dry_run, "report": report,
                    }).to_string();
                    let run = PlanRun {
                        incident,
                        incident_at,
                        plan: plan.clone(),
                        trigger: trigger.key(),
                        verdict_json,
                        phase: phase.clone(),
                    };
                    let steps = wc.plans[&plan].clone();
                    tracing::warn!(plan = %plan, trigger = %run.trigger, incident = %run.incident, dry_run, "running rollback plan");
                    let executor = executor.clone();
                    let stop = stop_rx.clone();
                    plan_task = Some(tokio::spawn(async move {
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
            }
        }

        // Record phase verdicts (the holder only).
        if acting {
            let mut recorded = Vec::new();
            if tokio::time::Instant::now() >= record_due {
                record_due = tokio::time::Instant::now() + wc.record_every();
                for p in &record_phases {
                    let names = check::phase_gates(&config, p)?;
                    recorded.push(tokio::task::block_in_place(|| {
                        gates.evaluate(p, names, &snapshot, &history)
                    }));
                }
            }
            for r in std::iter::once(&report).chain(&recorded) {
                metrics::one_hot(
                    &metrics::METRICS.phase_verdict,
                    &["go", "no-go", "defer"],
                    r.verdict.as_str(),
                    |v| metrics::PhaseLabels {
                        phase: r.phase.clone(),
                        verdict: v.to_owned(),
                    },
                );
                let due = match last_recorded.get(&r.phase) {
                    Some((v, at)) => {
                        *v != r.verdict
                            || gatekeeper_model::millis_between(*at, r.taken_at)
                                >= VERDICT_HEARTBEAT.as_millis() as i64
                    }
                    None => true,
                };
                if due {
                    last_recorded.insert(r.phase.clone(), (r.verdict, r.taken_at));
                    journal
                        .append(Record::Verdict {
                            phase: r.phase.clone(),
                            verdict: r.verdict,
                            at: r.taken_at,
                            agent: options.agent.clone(),
                        })
                        .await;
                }
            }
            journal.flush().await;
        }

        // Keep the history bounded.
        let oldest = snapshot.taken_at
            - chrono::Duration::from_std(history_window).unwrap_or(chrono::Duration::MAX);
        // The ledger is history already: earlier snapshots do not carry it.
        snapshot.ledger = Source::default();
        history.push(snapshot);
        history.retain(|s| s.taken_at >= oldest);
        if history.len() > MAX_WATCH_HISTORY {
            history.drain(..history.len() - MAX_WATCH_HISTORY);
        }
        summary.rounds += 1;
        metrics::METRICS.rounds.inc();
        let now_ms = chrono::Utc::now().timestamp_millis();
        metrics::METRICS.last_round.set(now_ms as f64 / 1000.0);
        metrics::LAST_ROUND_MS.store(now_ms, Ordering::Relaxed);
        metrics::READY.store(true, Ordering::Relaxed);
    }

    // Shutdown: interrupt the plan, let it record, give the lease up.
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    if let Some(task) = plan_task.take() {
        match tokio::time::timeout(PLAN_STOP_GRACE, task).await {
            Ok(Ok(end)) => {
                // The alert hooks are not run: the process is going away.
                if let Some(message) = unfinished(&end, " by shutdown") {
                    record_alert(
                        &journal,
                        &options.agent,
                        Some(&end.incident),
                        Some(end.trigger.clone()),
                        message,
                    )
                    .await;
                }
                summary.plans.push((end.plan, end.outcome));
            }
            _ => tracing::error!("the running plan did not stop in time"),
        }
    }
    journal.flush().await;
    if let Some(l) = lease.as_mut()
        && let Err(e) = l.release().await
    {
        tracing::warn!(error = %e, "lease not released; it expires after its TTL");
    }
    if let Some(server) = server {
        let _ = server.await;
    }
    tracing::info!(rounds = summary.rounds, "stopped");
    Ok(summary)
}

/// How a plan run ended, as its task returns it.
struct PlanEnd {
    plan: String,
    outcome: PlanOutcome,
    detail: String,
    incident: String,
    trigger: String,
}

/// The alert for a plan that did not finish (`by`: how it was stopped, if told).
fn unfinished(end: &PlanEnd, by: &str) -> Option<String> {
    (!matches!(end.outcome, PlanOutcome::Done | PlanOutcome::DryRun)).then(|| {
        format!(
            "plan {} {}{by}: {}; finish the rollback by hand",
            end.plan,
            end.outcome.as_str(),
            end.detail
        )
    })
}

/// `criterion: message; …` for the criteria that are not pass.
fn open_criteria(report: &PhaseReport) -> String {
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

fn observe_sources(snapshot: &Snapshot) {
    for s in snapshot.source_states() {
        if s.status == SourceStatus::NotConfigured {
            continue;
        }
        let labels = metrics::SourceLabels {
            source: s.name.to_owned(),
        };
        if let Some(ms) = s.duration_ms {
            metrics::METRICS
                .collection_seconds
                .get_or_create(&labels)
                .observe(ms as f64 / 1000.0);
        }
        if matches!(s.status, SourceStatus::Unavailable | SourceStatus::Partial) {
            metrics::METRICS
                .collector_errors
                .get_or_create(&labels)
                .inc();
        }
    }
}

fn observe_report(report: &PhaseReport) {
    for g in &report.gates {
        metrics::one_hot(
            &metrics::METRICS.gate_verdict,
            &["go", "no-go", "defer", "error"],
            g.verdict.as_str(),
            |v| metrics::GateLabels {
                phase: report.phase.clone(),
                gate: g.name.clone(),
                verdict: v.to_owned(),
            },
        );
        for c in &g.criteria {
            let state = if g.triggers.iter().any(|t| t.id == c.id) {
                "firing"
            } else if c.status == CriterionStatus::Unknown {
                "unknown"
            } else {
                "clear"
            };
            metrics::one_hot(
                &metrics::METRICS.trigger_state,
                &["clear", "unknown", "firing"],
                state,
                |s| metrics::TriggerLabels {
                    trigger: c.id.clone(),
                    state: s.to_owned(),
                },
            );
        }
    }
}

/// Logs, counts and records an alert.
async fn record_alert(
    journal: &Journal,
    agent: &str,
    incident: Option<&str>,
    trigger: Option<String>,
    message: String,
) {
    tracing::error!(alert = %message, incident = incident.unwrap_or(""), "ALERT");
    metrics::METRICS.alerts.inc();
    journal
        .append(Record::Alert {
            at: chrono::Utc::now(),
            agent: agent.to_owned(),
            incident: incident.map(str::to_owned),
            trigger,
            message,
        })
        .await;
}

/// Records an alert (see [`record_alert`]) and runs the `[watch] alert` steps.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site per kind of alert; a struct would only rename them"
)]
async fn alert(
    journal: &Arc<Journal>,
    executor: &Arc<Executor>,
    steps: &[crate::config::StepConfig],
    agent: &str,
    incident: Option<&str>,
    trigger: Option<String>,
    message: String,
    report: &PhaseReport,
) {
    record_alert(journal, agent, incident, trigger.clone(), message.clone()).await;
    if steps.is_empty() {
        return;
    }
    let body = serde_json::json!({ "alert": message, "incident": incident, "trigger": trigger, "agent": agent, "report": report }).to_string();
    let run = PlanRun {
        incident: incident.unwrap_or_default().to_owned(),
        incident_at: chrono::Utc::now(),
        plan: String::new(),
        trigger: trigger.unwrap_or_default(),
        verdict_json: body,
        phase: report.phase.clone(),
    };
    let executor = executor.clone();
    let hooks = steps.to_vec();
    // Alerts never wait on their hooks; each delivery is recorded.
    tokio::spawn(async move { executor.deliver_alert(&run, &hooks).await });
}

/// After taking the lease: an incident opened and not closed in the ledger
/// is ours now, with the plans it already ran.
async fn adopt_open_incident(journal: &Journal, incidents: &mut Incidents) {
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
    // wrote alert hooks as plan `alert`: those never count.
    let ran = |r: &Record| match r {
        Record::Plan {
            incident,
            plan,
            outcome,
            at,
            ..
        } if !matches!(outcome, PlanOutcome::Vetoed | PlanOutcome::Cooldown)
            && plan != crate::config::LEGACY_ALERT_PLAN =>
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
