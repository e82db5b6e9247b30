//! `scale-deployment`: a Deployment's replicas set (a canary's share of
//! pods, seed 001's `kubectl scale`), then its rollout waited for.

use super::restart::wait_for_rollouts;
use super::{StepError, StepResult};
use crate::clients::kubernetes::Cluster;
use crate::config::DEFAULT_ROLLOUT_WAIT;
use crate::ledger::StepOutcome;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use std::time::Duration;

/// The replicas a Deployment's spec asks for now.
pub async fn current_replicas(
    cluster: &Cluster,
    namespace: Option<&str>,
    name: &str,
) -> Result<i32, StepError> {
    let ns = namespace.unwrap_or(&cluster.default_namespace);
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), ns);
    let d = api
        .get(name)
        .await
        .map_err(|e| StepError::Refused(format!("deployment {ns}/{name}: {e}")))?;
    Ok(d.spec.and_then(|s| s.replicas).unwrap_or(1))
}

pub async fn scale_deployment(
    cluster: &Cluster,
    namespace: Option<&str>,
    name: &str,
    replicas: u32,
    wait: Option<Duration>,
) -> StepResult {
    let ns = namespace.unwrap_or(&cluster.default_namespace);
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), ns);
    let have = current_replicas(cluster, namespace, name).await?;
    let changed = have != replicas as i32;
    if changed {
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}})),
        )
        .await
        .map_err(|e| StepError::Refused(format!("deployment {ns}/{name}: patch: {e}")))?;
    }
    let wait = wait.unwrap_or(DEFAULT_ROLLOUT_WAIT);
    wait_for_rollouts(&api, ns, &[name.to_owned()], wait).await?;
    let waited = if wait.is_zero() { "" } else { ", rolled out" };
    Ok(if changed {
        (
            StepOutcome::Done,
            format!("deployment {ns}/{name}: replicas {have} → {replicas}{waited}"),
        )
    } else {
        (
            StepOutcome::Unchanged,
            format!("deployment {ns}/{name} already has {replicas} replicas{waited}"),
        )
    })
}
