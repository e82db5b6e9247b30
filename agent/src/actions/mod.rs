//! The steps of a rollback plan or a phase, one file per kind:
//! `patch-configmap`, `restart-deployments`, `scale-deployment`,
//! `move-subjects`, `ensure-stream`/`delete-stream` (`streams.rs`),
//! `ensure-consumer` (`consumers.rs`), `exec`, `webhook`; `wait-for` is the [`PhaseWait`] the
//! caller gives. Each is idempotent, and [`Executor`] records each outcome
//! in the ledger as it happens. Rollback plans, alert hooks and `apply` all
//! run steps through it.

mod configmap;
pub mod consumers;
mod describe;
mod exec;
pub mod fence;
mod move_subjects;
mod restart;
mod scale;
pub mod streams;
mod webhook;

pub use configmap::{key_values, patch_configmap};
pub use describe::describe;
pub use exec::{already_done, exec};
pub use move_subjects::move_subjects;
pub use restart::{RESTARTED_AT, restart_deployments};
pub use scale::{current_replicas, scale_deployment};
pub use webhook::{origin, post_json};

use crate::clients::SourceError;
use crate::clients::kubernetes::{self as kube_client, Cluster};
use crate::clients::nats::JetStream;
use crate::config::{
    Config, DEFAULT_STEP_TIMEOUT, DEFAULT_WAIT_FOR, PlanConfig, SpecError, StepConfig,
};
use crate::ledger::{Journal, PlanOutcome, Record, StepOutcome};
use crate::metrics::Metrics;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::watch;

/// `wait-for`: re-collect until a phase (or one criterion of it) is go,
/// within a timeout. `apply` gives one; plans cannot hold the step.
pub trait PhaseWait: Send + Sync {
    fn wait_for<'a>(
        &'a self,
        phase: &'a str,
        criterion: Option<&'a str>,
        timeout: std::time::Duration,
        interval: Option<std::time::Duration>,
    ) -> Pin<Box<dyn Future<Output = StepResult> + Send + 'a>>;
}

/// What a step did and what to say about it.
pub type StepResult = Result<(StepOutcome, String), StepError>;

/// Why a step failed. Its text is the step record's `detail`.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// What the step acts on could not be reached (no such source in the
    /// config, a kubeconfig that does not load, NATS down).
    #[error(transparent)]
    Connect(#[from] SourceError),
    /// The step's stream or consumer spec cannot be read.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A change nats-server cannot make in place.
    #[error(transparent)]
    NotInPlace(#[from] streams::NotInPlace),
    /// The target refused or failed the change.
    #[error("{0}")]
    Refused(String),
    /// The change was made but did not take effect in time (a rollout).
    #[error("{0}")]
    NotDone(String),
    /// The command could not start, failed, or was killed at its timeout.
    #[error("{0}")]
    Command(String),
}

/// Everything one plan run knows.
#[derive(Debug, Clone)]
pub struct PlanRun {
    pub incident: String,
    /// When the incident opened: the restart annotation's value, so a
    /// repeated restart in the same incident changes nothing.
    pub incident_at: gatekeeper_model::Timestamp,
    pub plan: String,
    pub trigger: String,
    /// The verdict as JSON, for exec (`GATEKEEPER_VERDICT`) and webhooks.
    pub verdict_json: String,
    pub phase: String,
    /// The lease epoch the step runs under (set per step by the fence).
    pub epoch: Option<u64>,
    /// A phase's forward steps (`apply`), not a rollback: a restart runs
    /// only when an earlier step of the run changed something.
    pub forward: bool,
}

/// Runs steps against the configured cluster, NATS and endpoints.
pub struct Executor {
    config: Arc<Config>,
    journal: Arc<Journal>,
    metrics: Arc<Metrics>,
    agent: String,
    dry_run: bool,
    http: reqwest::Client,
    /// Checked before every step and alert hook; `None`: no lease to fence.
    fence: Option<fence::Fence>,
    /// What `wait-for` steps wait with (`apply` only).
    waiter: Option<Arc<dyn PhaseWait>>,
    /// Print each step's outcome on stderr as it finishes (`apply`).
    progress: bool,
}

impl Executor {
    pub fn new(
        config: Arc<Config>,
        journal: Arc<Journal>,
        metrics: Arc<Metrics>,
        agent: String,
        dry_run: bool,
        fence: Option<fence::Fence>,
    ) -> Self {
        crate::clients::install_crypto_provider();
        Executor {
            config,
            journal,
            metrics,
            agent,
            dry_run,
            http: reqwest::Client::new(),
            fence,
            waiter: None,
            progress: false,
        }
    }

    /// Prints each step's outcome on stderr as it finishes.
    pub fn with_progress(mut self) -> Self {
        self.progress = true;
        self
    }

    /// Records an alert and runs the alert hooks for it.
    pub async fn alert(&self, run: &PlanRun, message: String, hooks: &[StepConfig]) {
        tracing::error!(phase = %run.phase, message = %message, "alert");
        self.journal
            .append(Record::Alert {
                at: chrono::Utc::now(),
                agent: self.agent.clone(),
                incident: Some(run.incident.clone()),
                trigger: Some(run.trigger.clone()),
                message,
            })
            .await;
        self.deliver_alert(run, hooks).await;
    }

    /// Gives `wait-for` steps something to wait with.
    pub fn with_waiter(mut self, waiter: Arc<dyn PhaseWait>) -> Self {
        self.waiter = Some(waiter);
        self
    }

    /// The epoch a step may run under, or why it may not (a fenced step is
    /// logged and counted as such).
    async fn fence(&self, run: &PlanRun, action: &str) -> Result<Option<u64>, fence::Fenced> {
        let Some(f) = &self.fence else {
            return Ok(None);
        };
        match f.check().await {
            Ok(epoch) => Ok(Some(epoch)),
            Err(why) => {
                tracing::error!(plan = %run.plan, action, reason = %why, "step refused: fenced");
                self.metrics
                    .action(&run.plan, action, StepOutcome::Fenced.as_str());
                Err(why)
            }
        }
    }

    /// Runs the plan's steps in order, recording each; the first failure
    /// stops it. `stop` turning true interrupts the running step. Returns
    /// the plan's outcome and what to say about it.
    pub async fn run_plan(
        &self,
        run: &PlanRun,
        plan: &PlanConfig,
        mut stop: watch::Receiver<bool>,
    ) -> (PlanOutcome, String) {
        let now = chrono::Utc::now;
        type Started = (gatekeeper_model::Timestamp, std::time::Instant);
        let record_step = |i: usize,
                           step: &StepConfig,
                           started: Started,
                           outcome: StepOutcome,
                           detail: String| Record::Step {
            incident: run.incident.clone(),
            plan: run.plan.clone(),
            step: i + 1,
            action: step.action().to_owned(),
            outcome,
            detail,
            at: started.0,
            duration_ms: started.1.elapsed().as_millis() as u64,
            agent: self.agent.clone(),
        };
        let mut outcome = if self.dry_run {
            PlanOutcome::DryRun
        } else {
            PlanOutcome::Done
        };
        let mut detail = format!("{} steps", plan.steps.len());
        // Whether a step of this run changed something (forward restarts).
        let mut changed = false;
        for (i, step) in plan.steps.iter().enumerate() {
            let stopped = *stop.borrow();
            if stopped {
                outcome = PlanOutcome::Interrupted;
                detail = format!("stopped before step {} ({})", i + 1, step.action());
                break;
            }
            let started: Started = (now(), std::time::Instant::now());
            if self.dry_run {
                self.journal
                    .append(record_step(
                        i,
                        step,
                        started,
                        StepOutcome::WouldRun,
                        describe(step),
                    ))
                    .await;
                continue;
            }
            let mut run = run.clone();
            run.epoch = match self.fence(&run, step.action()).await {
                Ok(epoch) => epoch,
                Err(why) => {
                    self.journal
                        .append(record_step(
                            i,
                            step,
                            started,
                            StepOutcome::Fenced,
                            why.to_string(),
                        ))
                        .await;
                    outcome = PlanOutcome::Fenced;
                    detail = format!("refused at step {} ({}): {why}", i + 1, step.action());
                    break;
                }
            };
            let run = &run;
            tracing::info!(plan = %run.plan, step = i + 1, action = step.action(), epoch = ?run.epoch, "step starting");
            let skip_restart =
                run.forward && !changed && matches!(step, StepConfig::RestartDeployments { .. });
            let result = tokio::select! {
                r = async {
                    if skip_restart {
                        Ok((StepOutcome::Unchanged, "no earlier step of this apply changed anything; no restart".to_owned()))
                    } else {
                        self.run_step(step, run).await
                    }
                } => r,
                _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => {
                    self.journal
                        .append(record_step(i, step, started, StepOutcome::Interrupted, "stopped by shutdown".into()))
                        .await;
                    outcome = PlanOutcome::Interrupted;
                    detail = format!("stopped during step {} ({})", i + 1, step.action());
                    break;
                }
            };
            let (step_outcome, step_detail) = match result {
                Ok(r) => r,
                Err(e) => (StepOutcome::Failed, e.to_string()),
            };
            changed |= step_outcome == StepOutcome::Done;
            self.metrics
                .action(&run.plan, step.action(), step_outcome.as_str());
            tracing::info!(plan = %run.plan, step = i + 1, action = step.action(), outcome = ?step_outcome, detail = %step_detail, "step finished");
            if self.progress {
                eprintln!(
                    "  {} step {} {}: {} — {}",
                    run.plan,
                    i + 1,
                    step.action(),
                    step_outcome.as_str(),
                    crate::text::untrusted_line(&step_detail)
                );
            }
            self.journal
                .append(record_step(
                    i,
                    step,
                    started,
                    step_outcome,
                    step_detail.clone(),
                ))
                .await;
            if step_outcome == StepOutcome::Failed {
                outcome = PlanOutcome::Failed;
                detail = format!("step {} ({}) failed: {step_detail}", i + 1, step.action());
                break;
            }
        }
        self.journal
            .append(Record::Plan {
                incident: run.incident.clone(),
                plan: run.plan.clone(),
                trigger: run.trigger.clone(),
                outcome,
                detail: detail.clone(),
                at: now(),
                agent: self.agent.clone(),
            })
            .await;
        (outcome, detail)
    }

    /// Runs the `[watch] alert` hooks for one alert: every hook, each
    /// recorded as an `alert-delivery` (never as a plan or a step: alerts do
    /// not count as plans for cooldowns or "once per incident").
    pub async fn deliver_alert(&self, run: &PlanRun, hooks: &[StepConfig]) {
        for step in hooks {
            let started = (chrono::Utc::now(), std::time::Instant::now());
            let (outcome, detail) = if self.dry_run {
                (StepOutcome::WouldRun, describe(step))
            } else {
                match self.fence(run, step.action()).await {
                    Err(why) => (StepOutcome::Fenced, why.to_string()),
                    Ok(epoch) => {
                        let run = PlanRun {
                            epoch,
                            ..run.clone()
                        };
                        match self.run_step(step, &run).await {
                            Ok(r) => r,
                            Err(e) => (StepOutcome::Failed, e.to_string()),
                        }
                    }
                }
            };
            if outcome == StepOutcome::Failed {
                tracing::error!(action = step.action(), detail = %detail, "alert hook failed");
            }
            self.journal
                .append(Record::AlertDelivery {
                    incident: (!run.incident.is_empty()).then(|| run.incident.clone()),
                    action: step.action().to_owned(),
                    outcome,
                    detail,
                    at: started.0,
                    duration_ms: started.1.elapsed().as_millis() as u64,
                    agent: self.agent.clone(),
                })
                .await;
        }
    }

    async fn run_step(&self, step: &StepConfig, run: &PlanRun) -> StepResult {
        match step {
            StepConfig::PatchConfigMap {
                namespace,
                name,
                data,
            } => patch_configmap(&self.kube().await?, namespace.as_deref(), name, data).await,
            StepConfig::RestartDeployments {
                namespace,
                names,
                wait,
            } => {
                let cluster = self.kube().await?;
                let wait = wait.map(|w| w.0);
                restart_deployments(&cluster, namespace.as_deref(), names, wait, run.incident_at)
                    .await
            }
            StepConfig::MoveSubjects { subjects, from, to } => {
                let js = JetStream::open(&self.config).await?;
                move_subjects(&js, subjects, from, to).await
            }
            StepConfig::Exec {
                command,
                timeout,
                unless,
            } => {
                let timeout = timeout.map_or(DEFAULT_STEP_TIMEOUT, |t| t.0);
                if let Some(unless) = unless
                    && already_done(unless, timeout, &run.phase).await?
                {
                    return Ok((
                        StepOutcome::Unchanged,
                        format!("{} exited 0: already done", unless.join(" ")),
                    ));
                }
                exec(command, timeout, run).await
            }
            StepConfig::EnsureStream { .. } => {
                let specs = step.stream_specs(&self.config)?;
                let js = JetStream::open(&self.config).await?;
                streams::ensure_streams(&js, &specs).await
            }
            StepConfig::EnsureConsumer { .. } => {
                let specs = step.consumer_specs(&self.config)?;
                let js = JetStream::open(&self.config).await?;
                consumers::ensure_consumers(&js, &specs).await
            }
            StepConfig::DeleteStream { stream } => {
                let js = JetStream::open(&self.config).await?;
                streams::delete_stream(&js, stream).await
            }
            StepConfig::ScaleDeployment {
                namespace,
                name,
                replicas,
                wait,
            } => {
                let cluster = self.kube().await?;
                scale_deployment(
                    &cluster,
                    namespace.as_deref(),
                    name,
                    *replicas,
                    wait.map(|w| w.0),
                )
                .await
            }
            StepConfig::WaitFor {
                phase,
                criterion,
                timeout,
                interval,
            } => {
                let waiter = self.waiter.as_ref().ok_or_else(|| {
                    StepError::Refused("`wait-for` runs only under `apply`".into())
                })?;
                waiter
                    .wait_for(
                        phase,
                        criterion.as_deref(),
                        timeout.map_or(DEFAULT_WAIT_FOR, |t| t.0),
                        interval.map(|i| i.0),
                    )
                    .await
            }
            StepConfig::Webhook { url, timeout } => {
                let timeout = timeout.map_or(DEFAULT_STEP_TIMEOUT, |t| t.0);
                post_json(&self.http, url, &run.verdict_json, run.epoch, timeout).await
            }
        }
    }

    async fn kube(&self) -> Result<Cluster, SourceError> {
        let source = self
            .config
            .sources
            .kubernetes
            .as_ref()
            .ok_or_else(|| SourceError::Setup("no [sources.kubernetes]".into()))?;
        kube_client::connect(source, &self.config.base_dir, DEFAULT_STEP_TIMEOUT).await
    }
}
