//! The steps of a rollback plan, one file per kind: `patch-configmap`,
//! `restart-deployments`, `move-subjects`, `exec`, `webhook`. Each is
//! idempotent, and [`Executor`] records each outcome in the ledger as it
//! happens. Rollback plans and alert hooks both run steps through it.

mod configmap;
mod exec;
pub mod fence;
mod move_subjects;
mod restart;
mod webhook;

pub use configmap::patch_configmap;
pub use exec::exec;
pub use move_subjects::move_subjects;
pub use restart::{RESTARTED_AT, restart_deployments};
pub use webhook::{origin, post_json};

use crate::clients::SourceError;
use crate::clients::kubernetes::{self as kube_client, Cluster};
use crate::clients::nats::JetStream;
use crate::config::{Config, DEFAULT_ROLLOUT_WAIT, DEFAULT_STEP_TIMEOUT, PlanConfig, StepConfig};
use crate::ledger::{Journal, PlanOutcome, Record, StepOutcome};
use crate::metrics::Metrics;
use std::sync::Arc;
use tokio::sync::watch;

/// What a step did and what to say about it.
pub type StepResult = Result<(StepOutcome, String), StepError>;

/// Why a step failed. Its text is the step record's `detail`.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// What the step acts on could not be reached (no such source in the
    /// config, a kubeconfig that does not load, NATS down).
    #[error(transparent)]
    Connect(#[from] SourceError),
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
        }
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
            let result = tokio::select! {
                r = self.run_step(step, run) => r,
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
            self.metrics
                .action(&run.plan, step.action(), step_outcome.as_str());
            tracing::info!(plan = %run.plan, step = i + 1, action = step.action(), outcome = ?step_outcome, detail = %step_detail, "step finished");
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
            StepConfig::Exec { command, timeout } => {
                exec(command, timeout.map_or(DEFAULT_STEP_TIMEOUT, |t| t.0), run).await
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

/// What a step would do, for dry runs and logs.
pub fn describe(step: &StepConfig) -> String {
    match step {
        StepConfig::PatchConfigMap {
            namespace,
            name,
            data,
        } => format!(
            "merge-patch configmap {}{name}: {}",
            namespace
                .as_deref()
                .map(|n| format!("{n}/"))
                .unwrap_or_default(),
            configmap::key_values(data)
        ),
        StepConfig::RestartDeployments {
            namespace,
            names,
            wait,
        } => format!(
            "rollout restart {}{}{}",
            namespace
                .as_deref()
                .map(|n| format!("{n}/"))
                .unwrap_or_default(),
            names.join(", "),
            match wait.map_or(DEFAULT_ROLLOUT_WAIT, |w| w.0) {
                w if w.is_zero() => String::new(),
                w => format!(
                    ", wait up to {} for rollout status",
                    gatekeeper_model::format_duration(w)
                ),
            }
        ),
        StepConfig::MoveSubjects { subjects, from, to } => format!(
            "remove {} from {}, then add them to {to}",
            subjects.join(", "),
            from.join(", ")
        ),
        StepConfig::Exec { command, .. } => format!("exec {}", command.join(" ")),
        StepConfig::Webhook { url, .. } => format!("POST verdict to {}", origin(url)),
    }
}
