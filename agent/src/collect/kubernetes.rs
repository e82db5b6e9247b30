//! Kubernetes: Deployments (with a `kubectl rollout status` verdict), Pods,
//! ConfigMaps named in config, and log-pattern counts, through `kube::Client`.
//!
//! A failed request is recorded in `errors` (the source is then partial);
//! only when nothing at all could be read is the source unavailable.

use super::{Collector, timeout_or_default};
use crate::clients::kubernetes::{self as client, rollout_status};
use crate::clients::{SourceError, remaining};
use crate::config::KubernetesSourceConfig;
use gatekeeper_model::{
    Condition, ConfigMapFacts, DeploymentFacts, KubernetesFacts, LogPatternCount, PodFacts,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, LogParams, ObjectList};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;

/// Objects per list page (the API server's `limit`).
const LIST_PAGE_SIZE: u32 = 500;

pub struct KubernetesCollector {
    config: KubernetesSourceConfig,
    base_dir: PathBuf,
}

impl KubernetesCollector {
    /// `base_dir` resolves a relative `kubeconfig` path.
    pub fn new(config: KubernetesSourceConfig, base_dir: &Path) -> Self {
        KubernetesCollector {
            config,
            base_dir: base_dir.to_path_buf(),
        }
    }
}

/// Every page of a list.
async fn list_all<K>(api: &Api<K>, selector: &str, deadline: Instant) -> Result<Vec<K>, SourceError>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug,
{
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(LIST_PAGE_SIZE);
        if !selector.is_empty() {
            params = params.labels(selector);
        }
        if let Some(t) = &token {
            params = params.continue_token(t);
        }
        let page: ObjectList<K> = within(deadline, api.list(&params)).await?;
        items.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(next) => token = Some(next),
            None => return Ok(items),
        }
    }
}

async fn within<T>(
    deadline: Instant,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, SourceError> {
    let left = remaining(deadline, "request")?;
    match tokio::time::timeout(left, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e @ kube::Error::Api(_))) => Err(SourceError::Refused(client::describe(&e))),
        Ok(Err(e)) => Err(SourceError::Unreachable(client::describe(&e))),
        Err(_) => Err(SourceError::Unreachable(format!(
            "no answer within {}ms",
            left.as_millis()
        ))),
    }
}

fn deployment_facts(namespace: &str, d: &Deployment) -> DeploymentFacts {
    let (rollout, message) = rollout_status(d);
    let status = d.status.as_ref();
    DeploymentFacts {
        namespace: namespace.to_owned(),
        name: d.metadata.name.clone().unwrap_or_default(),
        generation: d.metadata.generation,
        observed_generation: status.and_then(|s| s.observed_generation),
        replicas: d.spec.as_ref().and_then(|s| s.replicas),
        status_replicas: status.map(|s| s.replicas.unwrap_or(0)),
        updated_replicas: status.map(|s| s.updated_replicas.unwrap_or(0)),
        ready_replicas: status.map(|s| s.ready_replicas.unwrap_or(0)),
        available_replicas: status.map(|s| s.available_replicas.unwrap_or(0)),
        conditions: status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .map(|c| Condition {
                kind: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
            })
            .collect(),
        rollout: Some(rollout.as_str().to_owned()),
        rollout_message: Some(message),
    }
}

fn pod_facts(namespace: &str, p: &Pod) -> PodFacts {
    let status = p.status.as_ref();
    let containers: Vec<_> = status
        .into_iter()
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .collect();
    PodFacts {
        namespace: namespace.to_owned(),
        name: p.metadata.name.clone().unwrap_or_default(),
        labels: p.metadata.labels.clone().unwrap_or_default(),
        phase: status.and_then(|s| s.phase.clone()),
        ready: status.map(|s| {
            s.conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        }),
        restart_count: status.map(|_| {
            containers
                .iter()
                .map(|c| u32::try_from(c.restart_count).unwrap_or(0))
                .sum()
        }),
        waiting_reasons: containers
            .iter()
            .filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
            .collect(),
        last_termination_reasons: containers
            .iter()
            .filter_map(|c| c.last_state.as_ref()?.terminated.as_ref()?.reason.clone())
            .collect(),
    }
}

impl Collector for KubernetesCollector {
    type Facts = KubernetesFacts;
    const NAME: &'static str = "kubernetes";

    fn timeout(&self) -> Duration {
        timeout_or_default(self.config.timeout)
    }

    async fn collect(&self, deadline: Instant) -> Result<KubernetesFacts, SourceError> {
        let client::Cluster {
            client,
            default_namespace,
        } = client::connect(
            &self.config,
            &self.base_dir,
            remaining(deadline, "connect")?,
        )
        .await?;
        let namespaces = if self.config.namespaces.is_empty() {
            vec![default_namespace]
        } else {
            self.config.namespaces.clone()
        };
        let mut facts = KubernetesFacts {
            namespaces: namespaces.clone(),
            ..KubernetesFacts::default()
        };
        let mut reads = 0usize;
        for ns in &namespaces {
            if let Some(selector) = &self.config.deployments {
                let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
                match list_all(&api, selector, deadline).await {
                    Ok(items) => {
                        reads += 1;
                        facts
                            .deployments
                            .extend(items.iter().map(|d| deployment_facts(ns, d)));
                    }
                    Err(e) => facts
                        .errors
                        .push(format!("deployments in {ns} ({selector}): {e}")),
                }
            }
            if let Some(selector) = &self.config.pods {
                let api: Api<Pod> = Api::namespaced(client.clone(), ns);
                match list_all(&api, selector, deadline).await {
                    Ok(items) => {
                        reads += 1;
                        facts.pods.extend(items.iter().map(|p| pod_facts(ns, p)));
                    }
                    Err(e) => facts.errors.push(format!("pods in {ns} ({selector}): {e}")),
                }
            }
            let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
            for name in &self.config.config_maps {
                let mut cm = ConfigMapFacts {
                    namespace: ns.clone(),
                    name: name.clone(),
                    ..ConfigMapFacts::default()
                };
                match within(deadline, config_maps.get_opt(name)).await {
                    Ok(Some(found)) => {
                        reads += 1;
                        cm.exists = Some(true);
                        cm.data = found.data.unwrap_or_default();
                    }
                    Ok(None) => {
                        reads += 1;
                        cm.exists = Some(false);
                    }
                    Err(e) => {
                        facts.errors.push(format!("configmap {ns}/{name}: {e}"));
                        cm.error = Some(e.to_string());
                    }
                }
                facts.config_maps.push(cm);
            }
        }
        for pattern in &self.config.log_patterns {
            let (count, ok) = count_log_pattern(&client, &namespaces, pattern, deadline).await;
            if ok {
                reads += 1;
            }
            if let Some(e) = &count.error {
                facts
                    .errors
                    .push(format!("log pattern {}: {e}", pattern.name));
            }
            facts.log_patterns.push(count);
        }
        let asked = namespaces.len()
            * (usize::from(self.config.deployments.is_some())
                + usize::from(self.config.pods.is_some())
                + self.config.config_maps.len())
            + self.config.log_patterns.len();
        if reads == 0 && asked > 0 {
            return Err(SourceError::NothingRead(facts.errors));
        }
        Ok(facts)
    }

    fn complete(facts: &KubernetesFacts) -> bool {
        facts.errors.is_empty()
    }
}

/// Counts matching log lines over every container of every matching pod.
/// Returns the count and whether anything at all was read.
async fn count_log_pattern(
    client: &kube::Client,
    namespaces: &[String],
    pattern: &crate::config::LogPatternConfig,
    deadline: Instant,
) -> (LogPatternCount, bool) {
    let window = pattern.window.0;
    let mut count = LogPatternCount {
        name: pattern.name.to_string(),
        pattern: pattern.pattern.clone(),
        selector: pattern.selector.clone(),
        window_ms: Some(u64::try_from(window.as_millis()).unwrap_or(u64::MAX)),
        ..LogPatternCount::default()
    };
    let regex = match regex::Regex::new(&pattern.pattern) {
        Ok(r) => r,
        Err(e) => {
            count.error = Some(format!("invalid pattern: {e}"));
            return (count, false);
        }
    };
    let mut errors = Vec::new();
    let mut matches = 0u64;
    let mut pods_read = 0u64;
    let mut any_read = false;
    for ns in namespaces {
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let pods = match list_all(&api, &pattern.selector, deadline).await {
            Ok(p) => p,
            Err(e) => {
                errors.push(format!("pods in {ns}: {e}"));
                continue;
            }
        };
        any_read = true;
        for pod in pods {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let containers: Vec<String> = pod
                .spec
                .iter()
                .flat_map(|s| s.containers.iter().map(|c| c.name.clone()))
                .collect();
            let mut pod_ok = true;
            for container in containers {
                let params = LogParams {
                    container: Some(container.clone()),
                    since_seconds: Some(i64::try_from(window.as_secs().max(1)).unwrap_or(i64::MAX)),
                    ..LogParams::default()
                };
                match within(deadline, api.logs(&name, &params)).await {
                    Ok(text) => {
                        matches += text.lines().filter(|l| regex.is_match(l)).count() as u64;
                    }
                    Err(e) => {
                        pod_ok = false;
                        errors.push(format!("{ns}/{name}/{container}: {e}"));
                    }
                }
            }
            if pod_ok {
                pods_read += 1;
            }
        }
    }
    if any_read {
        count.matches = Some(matches);
        count.pods_read = Some(pods_read);
    }
    if !errors.is_empty() {
        count.error = Some(errors.join("; "));
    }
    (count, any_read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_reasons_and_restarts() {
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "labels": {"app": "x"}},
            "status": {"phase": "Running",
              "conditions": [{"type": "Ready", "status": "False"}],
              "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 7,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}
        }))
        .unwrap();
        let f = pod_facts("ns", &p);
        assert_eq!(f.ready, Some(false));
        assert_eq!(f.restart_count, Some(7));
        assert_eq!(f.waiting_reasons, vec!["CrashLoopBackOff"]);
        assert_eq!(f.last_termination_reasons, vec!["OOMKilled"]);
        assert_eq!(f.labels.get("app").map(String::as_str), Some("x"));
    }
}
