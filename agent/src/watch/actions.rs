//! The steps of a rollback plan: Kubernetes, NATS, exec, webhook. Each is
//! idempotent, and each outcome is recorded in the ledger as it happens.

use crate::clients::kubernetes::{self as kube_client, Rollout, rollout_status};
use crate::clients::nats::{ERR_STREAM_NOT_FOUND, JetStream};
use crate::config::{Config, DEFAULT_ROLLOUT_WAIT, DEFAULT_STEP_TIMEOUT, PlanConfig, StepConfig};
use crate::ledger::Journal;
use crate::ledger::{PlanOutcome, Record, StepOutcome};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The annotation `kubectl rollout restart` sets on the pod template.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// The largest verdict also passed in `GATEKEEPER_VERDICT` (Linux refuses
/// one variable over 128 KiB); `GATEKEEPER_VERDICT_FILE` always has it.
const MAX_VERDICT_ENV_BYTES: usize = 64 << 10;

/// How often a rollout's status is read while waiting.
const ROLLOUT_POLL: Duration = Duration::from_millis(500);

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
}

/// Runs steps against the configured cluster, NATS and endpoints.
pub struct Executor {
    config: Arc<Config>,
    journal: Arc<Journal>,
    agent: String,
    dry_run: bool,
    http: reqwest::Client,
}

type StepResult = Result<(StepOutcome, String), String>;

impl Executor {
    pub fn new(config: Arc<Config>, journal: Arc<Journal>, agent: String, dry_run: bool) -> Self {
        crate::clients::install_crypto_provider();
        Executor {
            config,
            journal,
            agent,
            dry_run,
            http: reqwest::Client::new(),
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
            tracing::info!(plan = %run.plan, step = i + 1, action = step.action(), "step starting");
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
                Err(e) => (StepOutcome::Failed, e),
            };
            crate::watch::metrics::action(&run.plan, step.action(), step_outcome);
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
                match self.run_step(step, run).await {
                    Ok(r) => r,
                    Err(e) => (StepOutcome::Failed, e),
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
            } => {
                let (client, default_ns) = self.kube().await?;
                let ns = namespace.clone().unwrap_or(default_ns);
                let api: Api<ConfigMap> = Api::namespaced(client, &ns);
                let current = api
                    .get(name)
                    .await
                    .map_err(|e| format!("configmap {ns}/{name}: {e}"))?;
                let shown = key_values(data);
                let have = current.data.unwrap_or_default();
                if data.iter().all(|(k, v)| have.get(k) == Some(v)) {
                    return Ok((
                        StepOutcome::Unchanged,
                        format!("configmap {ns}/{name} already has {shown}"),
                    ));
                }
                api.patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({ "data": data })),
                )
                .await
                .map_err(|e| format!("configmap {ns}/{name}: patch: {e}"))?;
                Ok((StepOutcome::Done, format!("configmap {ns}/{name}: {shown}")))
            }
            StepConfig::RestartDeployments {
                namespace,
                names,
                wait,
            } => {
                let (client, default_ns) = self.kube().await?;
                let ns = namespace.clone().unwrap_or(default_ns);
                let api: Api<Deployment> = Api::namespaced(client, &ns);
                let stamp = run
                    .incident_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let mut restarted = Vec::new();
                for name in names {
                    let d = api
                        .get(name)
                        .await
                        .map_err(|e| format!("deployment {ns}/{name}: {e}"))?;
                    let current = d
                        .spec
                        .as_ref()
                        .and_then(|s| s.template.metadata.as_ref())
                        .and_then(|m| m.annotations.as_ref())
                        .and_then(|a| a.get(RESTARTED_AT));
                    if current.map(String::as_str) == Some(stamp.as_str()) {
                        continue;
                    }
                    api.patch(
                        name,
                        &PatchParams::default(),
                        &Patch::Merge(serde_json::json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}})),
                    )
                    .await
                    .map_err(|e| format!("deployment {ns}/{name}: patch: {e}"))?;
                    restarted.push(name.as_str());
                }
                let wait = wait.map_or(DEFAULT_ROLLOUT_WAIT, |w| w.0);
                if !wait.is_zero() {
                    let deadline = tokio::time::Instant::now() + wait;
                    for name in names {
                        loop {
                            let d = api
                                .get(name)
                                .await
                                .map_err(|e| format!("deployment {ns}/{name}: {e}"))?;
                            let (state, message) = rollout_status(&d);
                            match state {
                                Rollout::Complete => break,
                                Rollout::Failed => return Err(message),
                                _ if tokio::time::Instant::now() >= deadline => {
                                    return Err(format!(
                                        "rollout not finished after {}: {message}",
                                        gatekeeper_model::format_duration(wait)
                                    ));
                                }
                                _ => tokio::time::sleep(ROLLOUT_POLL).await,
                            }
                        }
                    }
                }
                let waited = if wait.is_zero() { "" } else { ", rolled out" };
                if restarted.is_empty() {
                    Ok((
                        StepOutcome::Unchanged,
                        format!(
                            "{} already restarted for this incident ({RESTARTED_AT}={stamp}){waited}",
                            names.join(", ")
                        ),
                    ))
                } else {
                    Ok((
                        StepOutcome::Done,
                        format!(
                            "restarted {} in {ns} ({RESTARTED_AT}={stamp}){waited}",
                            restarted.join(", ")
                        ),
                    ))
                }
            }
            StepConfig::MoveSubjects { subjects, from, to } => {
                let js = JetStream::open(&self.config)
                    .await
                    .map_err(|e| e.to_string())?;
                move_subjects(&js, subjects, from, to).await
            }
            StepConfig::Exec { command, timeout } => {
                let timeout = timeout.map_or(DEFAULT_STEP_TIMEOUT, |t| t.0);
                // The verdict in a file always; in the environment too when it
                // fits (a report can be larger than the kernel lets one
                // variable be, and that must not stop a rollback).
                let mut verdict = tempfile::NamedTempFile::new()
                    .map_err(|e| format!("cannot write the verdict file: {e}"))?;
                std::io::Write::write_all(&mut verdict, run.verdict_json.as_bytes())
                    .map_err(|e| format!("cannot write the verdict file: {e}"))?;
                let mut cmd = tokio::process::Command::new(&command[0]);
                if run.verdict_json.len() <= MAX_VERDICT_ENV_BYTES {
                    cmd.env("GATEKEEPER_VERDICT", &run.verdict_json);
                }
                let child = cmd
                    .args(&command[1..])
                    .env("GATEKEEPER_VERDICT_FILE", verdict.path())
                    .env("GATEKEEPER_INCIDENT", &run.incident)
                    .env("GATEKEEPER_PLAN", &run.plan)
                    .env("GATEKEEPER_TRIGGER", &run.trigger)
                    .env("GATEKEEPER_PHASE", &run.phase)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(|e| format!("{}: cannot start: {e}", command[0]))?;
                let out = tokio::time::timeout(timeout, child.wait_with_output())
                    .await
                    .map_err(|_| {
                        format!(
                            "{}: still running after {}; killed",
                            command[0],
                            gatekeeper_model::format_duration(timeout)
                        )
                    })?
                    .map_err(|e| format!("{}: {e}", command[0]))?;
                let tail = |b: &[u8]| {
                    let s = String::from_utf8_lossy(b);
                    let s = s.trim();
                    let start = s.char_indices().rev().nth(399).map_or(0, |(i, _)| i);
                    s[start..].to_owned()
                };
                if out.status.success() {
                    Ok((
                        StepOutcome::Done,
                        format!("{} exited 0: {}", command[0], tail(&out.stdout)),
                    ))
                } else {
                    Err(format!(
                        "{} {}: {}",
                        command[0],
                        out.status,
                        tail(&out.stderr)
                    ))
                }
            }
            StepConfig::Webhook { url, timeout } => {
                let timeout = timeout.map_or(DEFAULT_STEP_TIMEOUT, |t| t.0);
                post_json(&self.http, url, &run.verdict_json, timeout).await
            }
        }
    }

    async fn kube(&self) -> Result<(kube::Client, String), String> {
        let source = self
            .config
            .sources
            .kubernetes
            .clone()
            .ok_or("no [sources.kubernetes]")?;
        let cluster = kube_client::connect(&source, &self.config.base_dir, DEFAULT_STEP_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        Ok((cluster.client, cluster.default_namespace))
    }
}

/// `https://hooks.example` of `https://user:pw@hooks.example/T0/secret?x`:
/// webhook paths and queries often hold tokens, and never reach a log.
pub fn origin(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(webhook)".into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let more = if rest.len() > authority.len() {
        "/…"
    } else {
        ""
    };
    format!("{scheme}://{host}{more}")
}

/// POSTs JSON; anything but 2xx is a failure.
pub async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: &str,
    timeout: Duration,
) -> StepResult {
    let answer = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| format!("POST {}: {}", origin(url), e.without_url()))?;
    let status = answer.status();
    if status.is_success() {
        Ok((StepOutcome::Done, format!("POST {}: {status}", origin(url))))
    } else {
        Err(format!("POST {}: answered {status}", origin(url)))
    }
}

/// Removes `subjects` from each `from` stream, then adds them to `to`, each
/// a read-modify-write of the stream's current config (only `subjects`
/// changes). Removing first means the streams never overlap in between.
pub async fn move_subjects(
    js: &JetStream,
    subjects: &[String],
    from: &[String],
    to: &str,
) -> StepResult {
    let mut changed = Vec::new();
    for stream in from {
        let mut config = match js.stream_config(stream).await {
            Ok(c) => c,
            Err(e) if e.code == ERR_STREAM_NOT_FOUND => continue,
            Err(e) => return Err(e.message),
        };
        let current = subjects_of(&config);
        let kept: Vec<String> = current
            .iter()
            .filter(|s| !subjects.contains(s))
            .cloned()
            .collect();
        if kept.len() == current.len() {
            continue;
        }
        config["subjects"] = serde_json::json!(kept);
        js.update_stream(&config).await.map_err(|e| e.message)?;
        changed.push(format!(
            "removed {} from {stream}",
            current
                .iter()
                .filter(|s| subjects.contains(s))
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut config = js.stream_config(to).await.map_err(|e| e.message)?;
    let mut current = subjects_of(&config);
    let missing: Vec<String> = subjects
        .iter()
        .filter(|s| !current.contains(s))
        .cloned()
        .collect();
    if !missing.is_empty() {
        current.extend(missing.iter().cloned());
        config["subjects"] = serde_json::json!(current);
        js.update_stream(&config).await.map_err(|e| e.message)?;
        changed.push(format!("added {} to {to}", missing.join(", ")));
    }
    if changed.is_empty() {
        Ok((
            StepOutcome::Unchanged,
            format!(
                "{to} already has {}; no other stream does",
                subjects.join(", ")
            ),
        ))
    } else {
        Ok((StepOutcome::Done, changed.join("; ")))
    }
}

fn subjects_of(config: &serde_json::Value) -> Vec<String> {
    config["subjects"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `K=v, K2=v2`, as a ConfigMap step shows its data.
fn key_values(data: &std::collections::BTreeMap<String, String>) -> String {
    data.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
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
            key_values(data)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_shown_without_their_secrets() {
        assert_eq!(
            origin("https://user:pw@hooks.example.com/services/T0/B1/secret?token=x"),
            "https://hooks.example.com/…"
        );
        assert_eq!(origin("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
        assert_eq!(origin("nonsense"), "(webhook)");
    }
}
