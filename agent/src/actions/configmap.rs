//! `patch-configmap`: a merge patch of a ConfigMap's `data`; unchanged when
//! it already holds those values.

use super::{StepError, StepResult};
use crate::clients::kubernetes::Cluster;
use crate::ledger::StepOutcome;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use std::collections::BTreeMap;

pub async fn patch_configmap(
    cluster: &Cluster,
    namespace: Option<&str>,
    name: &str,
    data: &BTreeMap<String, String>,
) -> StepResult {
    let ns = namespace.unwrap_or(&cluster.default_namespace);
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), ns);
    let current = api
        .get(name)
        .await
        .map_err(|e| StepError::Refused(format!("configmap {ns}/{name}: {e}")))?;
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
    .map_err(|e| StepError::Refused(format!("configmap {ns}/{name}: patch: {e}")))?;
    Ok((StepOutcome::Done, format!("configmap {ns}/{name}: {shown}")))
}

/// `K=v, K2=v2`, as a ConfigMap step shows its data.
pub fn key_values(data: &BTreeMap<String, String>) -> String {
    data.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
