//! `restart-deployments`: `kubectl rollout restart`, idempotent per incident
//! (the restart annotation holds the incident's start), then optionally
//! waits for `kubectl rollout status` to say complete.

use super::{StepError, StepResult};
use crate::clients::kubernetes::{Cluster, Rollout, rollout_status};
use crate::config::DEFAULT_ROLLOUT_WAIT;
use crate::ledger::StepOutcome;
use gatekeeper_model::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use std::time::Duration;

/// The annotation `kubectl rollout restart` sets on the pod template.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// How often a rollout's status is read while waiting.
const ROLLOUT_POLL: Duration = Duration::from_millis(500);

/// Restarts `names` in `namespace` (or the cluster's default); `wait`
/// (default [`DEFAULT_ROLLOUT_WAIT`], zero: do not wait) for the rollouts.
pub async fn restart_deployments(
    cluster: &Cluster,
    namespace: Option<&str>,
    names: &[String],
    wait: Option<Duration>,
    incident_at: Timestamp,
) -> StepResult {
    let ns = namespace.unwrap_or(&cluster.default_namespace);
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), ns);
    let stamp = incident_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut restarted = Vec::new();
    for name in names {
        let d = api
            .get(name)
            .await
            .map_err(|e| StepError::Refused(format!("deployment {ns}/{name}: {e}")))?;
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
        .map_err(|e| StepError::Refused(format!("deployment {ns}/{name}: patch: {e}")))?;
        restarted.push(name.as_str());
    }
    let wait = wait.unwrap_or(DEFAULT_ROLLOUT_WAIT);
    wait_for_rollouts(&api, ns, names, wait).await?;
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

/// Waits up to `wait` (zero: not at all) for each Deployment's rollout to
/// complete, as `kubectl rollout status` reads it.
pub(super) async fn wait_for_rollouts(
    api: &Api<Deployment>,
    ns: &str,
    names: &[String],
    wait: Duration,
) -> Result<(), StepError> {
    if wait.is_zero() {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + wait;
    for name in names {
        loop {
            let d = api
                .get(name)
                .await
                .map_err(|e| StepError::Refused(format!("deployment {ns}/{name}: {e}")))?;
            let (state, message) = rollout_status(&d);
            match state {
                Rollout::Complete => break,
                Rollout::Failed => return Err(StepError::NotDone(message)),
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(StepError::NotDone(format!(
                        "rollout not finished after {}: {message}",
                        gatekeeper_model::format_duration(wait)
                    )));
                }
                _ => tokio::time::sleep(ROLLOUT_POLL).await,
            }
        }
    }
    Ok(())
}
