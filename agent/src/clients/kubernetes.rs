//! Kubernetes: one way to build a `kube::Client` from `[sources.kubernetes]`
//! (kubeconfig, context, or in-cluster), and a Deployment's rollout status
//! as `kubectl rollout status` computes it.

use super::{SourceError, install_crypto_provider, resolve};
use crate::config::KubernetesSourceConfig;
use k8s_openapi::api::apps::v1::Deployment;
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::Path;
use std::time::Duration;

/// A client and the namespace to use when the config names none.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    /// The kubeconfig context's namespace, or the pod's in a cluster.
    pub default_namespace: String,
}

/// Builds a client; `timeout` bounds connecting and each request.
/// `base_dir` resolves a relative `kubeconfig` path.
pub async fn connect(
    config: &KubernetesSourceConfig,
    base_dir: &Path,
    timeout: Duration,
) -> Result<Cluster, SourceError> {
    install_crypto_provider();
    let options = KubeConfigOptions {
        context: config.context.clone(),
        ..KubeConfigOptions::default()
    };
    let setup = SourceError::Setup;
    let mut kube_config = match &config.kubeconfig {
        Some(path) => {
            let path = resolve(base_dir, path);
            let kubeconfig = Kubeconfig::read_from(&path)
                .map_err(|e| setup(format!("kubeconfig {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| setup(format!("kubeconfig {}: {e}", path.display())))?
        }
        None if config.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| setup(format!("kubeconfig: {e}")))?,
        None => kube::Config::infer().await.map_err(|e| {
            setup(format!(
                "no Kubernetes config (kubeconfig or in-cluster): {e}"
            ))
        })?,
    };
    kube_config.connect_timeout = Some(timeout);
    kube_config.read_timeout = Some(timeout);
    kube_config.write_timeout = Some(timeout);
    let default_namespace = kube_config.default_namespace.clone();
    let client = kube::Client::try_from(kube_config)
        .map_err(|e| setup(format!("Kubernetes client: {e}")))?;
    Ok(Cluster {
        client,
        default_namespace,
    })
}

/// A client error as text: the API server's own status when it sent one.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            let reason = if status.reason.is_empty() {
                String::new()
            } else {
                format!(" {}", status.reason)
            };
            format!(
                "API server answered {}{reason}: {}",
                status.code, status.message
            )
        }
        other => other.to_string(),
    }
}

/// Where a Deployment's rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollout {
    /// Every replica updated and available.
    Complete,
    /// Still rolling out (or the new spec not yet observed).
    Progressing,
    /// The progress deadline was exceeded.
    Failed,
}

impl Rollout {
    /// As in the snapshot (`deployments[].rollout`).
    pub fn as_str(self) -> &'static str {
        match self {
            Rollout::Complete => "complete",
            Rollout::Progressing => "progressing",
            Rollout::Failed => "failed",
        }
    }
}

/// The rollout status as `kubectl rollout status` computes it, with its message.
pub fn rollout_status(d: &Deployment) -> (Rollout, String) {
    let name = d.metadata.name.as_deref().unwrap_or("");
    let generation = d.metadata.generation.unwrap_or(0);
    let Some(status) = &d.status else {
        return (
            Rollout::Progressing,
            "Waiting for deployment spec update to be observed...".into(),
        );
    };
    if generation > status.observed_generation.unwrap_or(0) {
        return (
            Rollout::Progressing,
            "Waiting for deployment spec update to be observed...".into(),
        );
    }
    let progressing = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing");
    if progressing.is_some_and(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded")) {
        return (
            Rollout::Failed,
            format!("deployment \"{name}\" exceeded its progress deadline"),
        );
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if let Some(desired) = d.spec.as_ref().and_then(|s| s.replicas)
        && updated < desired
    {
        return (
            Rollout::Progressing,
            format!(
                "Waiting for deployment \"{name}\" rollout to finish: {updated} out of {desired} new replicas have been updated..."
            ),
        );
    }
    if replicas > updated {
        return (
            Rollout::Progressing,
            format!(
                "Waiting for deployment \"{name}\" rollout to finish: {} old replicas are pending termination...",
                replicas - updated
            ),
        );
    }
    if available < updated {
        return (
            Rollout::Progressing,
            format!(
                "Waiting for deployment \"{name}\" rollout to finish: {available} of {updated} updated replicas are available..."
            ),
        );
    }
    (
        Rollout::Complete,
        format!("deployment \"{name}\" successfully rolled out"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(json: serde_json::Value) -> Deployment {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn rollout_status_follows_kubectl() {
        let d = deployment(serde_json::json!({
            "metadata": {"name": "api", "generation": 3},
            "spec": {"replicas": 3, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2}
        }));
        assert_eq!(rollout_status(&d).0, Rollout::Progressing);
        assert_eq!(
            rollout_status(&d).1,
            "Waiting for deployment spec update to be observed..."
        );

        let d = deployment(serde_json::json!({
            "metadata": {"name": "api", "generation": 3},
            "spec": {"replicas": 3, "selector": {}, "template": {}},
            "status": {"observedGeneration": 3, "replicas": 4, "updatedReplicas": 1, "availableReplicas": 3}
        }));
        assert_eq!(
            rollout_status(&d).1,
            "Waiting for deployment \"api\" rollout to finish: 1 out of 3 new replicas have been updated..."
        );

        let d = deployment(serde_json::json!({
            "metadata": {"name": "api", "generation": 3},
            "spec": {"replicas": 3, "selector": {}, "template": {}},
            "status": {"observedGeneration": 3, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}
        }));
        assert_eq!(
            rollout_status(&d).1,
            "Waiting for deployment \"api\" rollout to finish: 1 old replicas are pending termination..."
        );

        let d = deployment(serde_json::json!({
            "metadata": {"name": "api", "generation": 3},
            "spec": {"replicas": 3, "selector": {}, "template": {}},
            "status": {"observedGeneration": 3, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 2}
        }));
        assert_eq!(
            rollout_status(&d).1,
            "Waiting for deployment \"api\" rollout to finish: 2 of 3 updated replicas are available..."
        );

        let d = deployment(serde_json::json!({
            "metadata": {"name": "api", "generation": 3},
            "spec": {"replicas": 3, "selector": {}, "template": {}},
            "status": {"observedGeneration": 3, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}
        }));
        assert_eq!(
            rollout_status(&d),
            (
                Rollout::Complete,
                "deployment \"api\" successfully rolled out".into()
            )
        );

        let d = deployment(serde_json::json!({
            "metadata": {"name": "api", "generation": 3},
            "spec": {"replicas": 3, "selector": {}, "template": {}},
            "status": {"observedGeneration": 3, "replicas": 3, "updatedReplicas": 1,
                "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}
        }));
        assert_eq!(
            rollout_status(&d),
            (
                Rollout::Failed,
                "deployment \"api\" exceeded its progress deadline".into()
            )
        );
    }
}
