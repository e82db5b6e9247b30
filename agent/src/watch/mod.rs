//! `gatekeeper watch`: every interval, one [`Watcher::round`] — collect →
//! lease → evaluate the watched phase's trigger gates (their holds run over
//! the history) → decide (incidents, plans, alerts) → act → record.
//!
//! Only the HA lease holder acts and writes the ledger; the others evaluate
//! and report (logs, metrics). Shutdown is a future passed in: the running
//! plan step is interrupted and recorded, the lease released.
//!
//! - [`incident`]: the incident state machine (pure: facts in, acts out).
//! - [`lease`]: the HA lease in a JetStream KV bucket.
//! - `decide`, `act`: a round's decision and its effects.
//! - `record`: phase verdicts into the ledger (on change, with a heartbeat).
//! - `takeover`: adopting the ledger's open incident on taking the lease.

mod act;
mod alertmanager;
mod decide;
pub mod incident;
pub(crate) use decide::{blind_in, firing_in, open_criteria};
pub mod lease;
mod record;
mod takeover;

use crate::actions::Executor;
use crate::collect;
use crate::config::{Config, ConfigError, UnknownPhase, WatchConfig};
use crate::gate_set::GateSet;
use crate::history::History;
use crate::ledger::{Journal, PlanOutcome};
use crate::metrics::Metrics;
use act::PlanEnd;
use gatekeeper_model::{LedgerFacts, Snapshot, Source, SourceStatus};
use incident::Incidents;
use lease::LeaseKeeper;
use record::VerdictRecorder;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
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
    Config(#[from] ConfigError),
    #[error(transparent)]
    UnknownPhase(#[from] UnknownPhase),
    #[error("gate `{gate}` cannot be used: {message}")]
    Gate { gate: String, message: String },
    #[error("--listen {addr}: {message}")]
    Listen { addr: String, message: String },
    #[error("watch.alertmanager: {0}")]
    Alertmanager(String),
}

/// What a watch did, for the caller's last line.
#[derive(Debug, Clone, Default)]
pub struct WatchSummary {
    pub rounds: u64,
    pub plans: Vec<(String, PlanOutcome)>,
}

/// Watches until `shutdown` resolves.
pub async fn watch(
    config: Config,
    options: WatchOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<WatchSummary, WatchError> {
    let metrics = Metrics::new();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut watcher = Watcher::start(config, &options, metrics.clone(), stop_rx.clone()).await?;
    let server = match options.listen.clone().or(watcher.wc.listen.clone()) {
        Some(addr) => Some(serve_metrics(&addr, metrics, watcher.interval, stop_rx).await?),
        None => None,
    };
    let mut ticker = tokio::time::interval(watcher.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut shutdown => break,
        }
        watcher.round().await?;
    }
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let summary = watcher.stop().await;
    if let Some(server) = server {
        let _ = server.await;
    }
    tracing::info!(rounds = summary.rounds, "stopped");
    Ok(summary)
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until `stop`.
async fn serve_metrics(
    addr: &str,
    metrics: Arc<Metrics>,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, WatchError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| WatchError::Listen {
            addr: addr.to_owned(),
            message: e.to_string(),
        })?;
    let stale = (interval * 3 + Duration::from_secs(10)).as_millis() as i64;
    let shown = listener
        .local_addr()
        .map_or_else(|_| addr.to_owned(), |a| a.to_string());
    tracing::info!(addr = %shown, "serving /metrics, /healthz, /readyz");
    Ok(tokio::spawn(crate::metrics::serve(
        listener,
        metrics,
        stale,
        async move {
            let _ = stop.wait_for(|s| *s).await;
        },
    )))
}

/// The watch's state across rounds.
pub struct Watcher {
    config: Arc<Config>,
    wc: WatchConfig,
    /// This agent's name in the lease and the ledger.
    agent: String,
    phase: String,
    phase_gates: Vec<String>,
    gates: GateSet,
    /// The sources each watched gate reads (`nats`, `postgres`, …).
    reads: BTreeMap<String, Vec<String>>,
    interval: Duration,
    dry_run: bool,
    history: History,
    journal: Arc<Journal>,
    executor: Arc<Executor>,
    metrics: Arc<Metrics>,
    lease: LeaseKeeper,
    incidents: Incidents,
    /// The ledger as last read, and when (it is read every `record_every`).
    ledger: Source<LedgerFacts>,
    ledger_read_at: Option<tokio::time::Instant>,
    recorder: VerdictRecorder,
    /// The rollback plan running, if one is.
    plan: Option<tokio::task::JoinHandle<PlanEnd>>,
    /// Turns true at shutdown: interrupts the running plan.
    stop: tokio::sync::watch::Receiver<bool>,
    summary: WatchSummary,
    /// Alerts also go here when `[watch.alertmanager]` is set.
    alertmanager: Option<alertmanager::AlertmanagerSender>,
}

impl Watcher {
    /// Loads and checks the gates and plans, opens the journal.
    pub async fn start(
        config: Config,
        options: &WatchOptions,
        metrics: Arc<Metrics>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Watcher, WatchError> {
        let config = Arc::new(config);
        let wc = config.watch.clone().unwrap_or_default();
        let phase = options
            .phase
            .clone()
            .unwrap_or_else(|| wc.phase().to_owned());
        let phase_gates = config.phase_gates(&phase)?.to_vec();
        let interval = options.interval.unwrap_or(wc.interval());
        let dry_run = options.dry_run || wc.dry_run;
        let recorder = VerdictRecorder::new(&config, &wc, &phase)?;
        // Loading calls into the gates (metadata, needs): off the async threads.
        let gates = tokio::task::block_in_place(|| {
            GateSet::load_checked_for(&config, crate::gate_set::Workload::Daemon)
        })?;
        for name in phase_gates.iter().chain(&wc.veto) {
            let g = gates.gate(name).expect("loaded above");
            if let Err(e) = g.loaded.as_ref().map(drop).and(g.params.as_ref().map(drop)) {
                return Err(WatchError::Gate {
                    gate: name.clone(),
                    message: e.to_string(),
                });
            }
        }
        gates.check_plans(&config)?;
        let reads = phase_gates
            .iter()
            .map(|g| (g.clone(), gates.sources_read(g)))
            .collect();
        // The history the watched gates declare they need (0.2 `needs`); a
        // 0.1 gate cannot say, so `watch.history` is the way to give it more.
        let (needed, undeclared) = gates.history_needed(&phase_gates, interval);
        for gate in &undeclared {
            tracing::warn!(gate = %gate, "gate built for contract 0.1.0 does not declare the history it needs; set watch.history if it needs more than {}", gatekeeper_model::format_duration(needed));
        }
        let history_window = wc.history.map_or(needed, |h| h.0);

        let journal = Arc::new(Journal::open(config.clone(), metrics.ledger_errors.clone()).await);
        let lease = LeaseKeeper::new(&config, &phase, &options.agent);
        let executor = Arc::new(Executor::new(
            config.clone(),
            journal.clone(),
            metrics.clone(),
            options.agent.clone(),
            dry_run,
            lease.fence(),
        ));
        tracing::info!(
            phase = %phase,
            interval_ms = interval.as_millis() as u64,
            history_ms = history_window.as_millis() as u64,
            dry_run,
            agent = %options.agent,
            ledger = %journal.describe().await,
            "watching"
        );
        let alertmanager = match &wc.alertmanager {
            Some(am) => Some(alertmanager::AlertmanagerSender::start(
                am,
                metrics.clone(),
                &options.agent,
            )?),
            None => None,
        };
        Ok(Watcher {
            alertmanager,
            lease,
            incidents: Incidents::new(wc.cooldown(), wc.resolve_after(), wc.alert_limit()),
            history: History::with_window(MAX_WATCH_HISTORY, history_window),
            agent: options.agent.clone(),
            ledger: Source::default(),
            ledger_read_at: None,
            plan: None,
            summary: WatchSummary::default(),
            config,
            wc,
            phase,
            phase_gates,
            gates,
            reads,
            interval,
            dry_run,
            journal,
            executor,
            metrics,
            recorder,
            stop,
        })
    }

    /// One round, in the order it happens.
    pub async fn round(&mut self) -> Result<(), WatchError> {
        let mut snapshot = self.collect().await;
        let lease = self.lease.step().await;
        self.metrics.lease_held.set(i64::from(lease.acting));
        self.lease_changed(lease.acting).await;
        let evaluation = self.evaluate(&snapshot);
        let acts = self.decide(&snapshot, &evaluation, lease.acting).await;
        self.act(acts, &snapshot, &evaluation, lease).await;
        if lease.acting {
            self.record(&snapshot, &evaluation.report).await?;
        }
        // The ledger is history already: earlier snapshots do not carry it.
        snapshot.ledger = Source::default();
        self.history.push(snapshot);
        self.summary.rounds += 1;
        self.metrics.round_done();
        Ok(())
    }

    /// The configured sources, and the ledger when it is due a read.
    async fn collect(&mut self) -> Snapshot {
        let mut snapshot = collect::collect_sources(&self.config).await;
        snapshot.interval_ms = Some(self.interval.as_millis() as u64);
        if self.config.ledger.is_some() {
            let stale = self
                .ledger_read_at
                .is_none_or(|t| t.elapsed() >= self.wc.record_every());
            if stale {
                self.refresh_ledger().await;
            }
            snapshot.ledger = self.ledger.clone();
        }
        self.metrics.observe_sources(&snapshot);
        snapshot
    }

    /// Reads what the ledger gained since the last read.
    async fn refresh_ledger(&mut self) {
        let started = chrono::Utc::now();
        let t0 = std::time::Instant::now();
        self.ledger = match self.journal.read().await {
            Ok((facts, _)) => Source {
                status: SourceStatus::Ok,
                facts: Some(facts),
                ..Source::default()
            },
            Err(e) => Source::unavailable(e.to_string()),
        };
        self.ledger.collected_at = Some(started);
        self.ledger.duration_ms = Some(t0.elapsed().as_millis() as u64);
        self.ledger_read_at = Some(tokio::time::Instant::now());
    }

    /// On taking the lease: flush the spool, adopt the ledger's open
    /// incident. On losing it: say so.
    async fn lease_changed(&mut self, acting: bool) {
        match (acting, self.lease.was_acting) {
            (true, false) => {
                tracing::info!(agent = %self.agent, "acting: this agent holds the lease");
                self.journal.flush().await;
                takeover::adopt_open_incident(&self.journal, &mut self.incidents).await;
            }
            (false, true) => {
                tracing::warn!(agent = %self.agent, "lease lost: only reporting now")
            }
            _ => {}
        }
        self.lease.was_acting = acting;
    }

    /// Interrupts the running plan and lets it record itself, flushes the
    /// journal, gives the lease up.
    pub async fn stop(mut self) -> WatchSummary {
        if let Some(task) = self.plan.take() {
            match tokio::time::timeout(PLAN_STOP_GRACE, task).await {
                Ok(Ok(end)) => {
                    // The alert hooks are not run: the process is going away.
                    if let Some(message) = end.unfinished(" by shutdown") {
                        let (incident, trigger) = (end.incident.clone(), end.trigger.clone());
                        self.record_alert(Some(&incident), Some(trigger), message)
                            .await;
                    }
                    self.summary.plans.push((end.plan, end.outcome));
                }
                _ => tracing::error!("the running plan did not stop in time"),
            }
        }
        self.journal.flush().await;
        self.lease.release().await;
        self.summary
    }
}
