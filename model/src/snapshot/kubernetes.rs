//! Kubernetes: deployments, pods, config maps and log-pattern counts.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KubernetesFacts {
    /// Namespaces read.
    pub namespaces: Vec<String>,
    /// What could not be read (one line per failed request), for a partial source.
    pub errors: Vec<String>,
    pub deployments: Vec<DeploymentFacts>,
    pub pods: Vec<PodFacts>,
    pub config_maps: Vec<ConfigMapFacts>,
    pub log_patterns: Vec<LogPatternCount>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DeploymentFacts {
    pub namespace: String,
    pub name: String,
    pub generation: Option<i64>,
    pub observed_generation: Option<i64>,
    /// Desired replicas (`spec.replicas`).
    pub replicas: Option<i32>,
    /// Replicas that exist, old and new (`status.replicas`).
    pub status_replicas: Option<i32>,
    pub updated_replicas: Option<i32>,
    pub ready_replicas: Option<i32>,
    pub available_replicas: Option<i32>,
    pub conditions: Vec<Condition>,
    /// `complete`, `progressing`, `failed` (ProgressDeadlineExceeded), computed
    /// the way `kubectl rollout status` does.
    pub rollout: Option<String>,
    pub rollout_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Condition {
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PodFacts {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub phase: Option<String>,
    pub ready: Option<bool>,
    pub restart_count: Option<u32>,
    /// Waiting reasons of containers (CrashLoopBackOff, ImagePullBackOff, ...).
    pub waiting_reasons: Vec<String>,
    /// Last termination reasons of containers (OOMKilled, Error, ...).
    pub last_termination_reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigMapFacts {
    pub namespace: String,
    pub name: String,
    /// False when the ConfigMap does not exist (a 404), as opposed to an error.
    pub exists: Option<bool>,
    pub data: BTreeMap<String, String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LogPatternCount {
    /// The pattern's name from config.
    pub name: String,
    pub pattern: String,
    /// The pod label selector whose pods' logs were read.
    pub selector: String,
    pub window_ms: Option<u64>,
    pub matches: Option<u64>,
    pub pods_read: Option<u64>,
    pub error: Option<String>,
}
