//! Gate `workloads-healthy` (seeds 001/003: "rollout status", "no
//! CrashLoopBackOff", "no unplanned restarts"): each named Deployment exists,
//! its rollout is complete and all replicas are available; no selected pod is
//! stuck waiting (CrashLoopBackOff, ImagePullBackOff, ...) and, when
//! `max_restarts` is set, none restarted more often.

use gatekeeper_gate_sdk::check::{Part, all_of, id};
use gatekeeper_gate_sdk::model::KubernetesFacts;
use gatekeeper_gate_sdk::{Evaluation, Gate, GateError, Input, Metadata, ParamSpec};
use serde::Deserialize;

pub struct WorkloadsHealthy;

gatekeeper_gate_sdk::export_gate!(WorkloadsHealthy);

/// Waiting reasons that mean a container cannot run.
pub const STUCK_REASONS: [&str; 6] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    pub id: String,
    pub title: String,
    /// Deployment names (in any namespace read) that must be rolled out.
    pub deployments: Vec<String>,
    /// Restarts per pod allowed; unset: not checked.
    pub max_restarts: Option<u32>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            id: "workloads-healthy".into(),
            title: "Workloads healthy".into(),
            deployments: Vec::new(),
            max_restarts: None,
        }
    }
}

impl Gate for WorkloadsHealthy {
    fn metadata() -> Metadata {
        Metadata {
            name: "workloads-healthy".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Named Deployments rolled out and available; no pod crash-looping or stuck; restarts within a limit.".into(),
            sources: vec!["kubernetes".into()],
            params: vec![
                ParamSpec::with_default("id", "criterion id", "workloads-healthy".into()),
                ParamSpec::with_default("title", "criterion title", "Workloads healthy".into()),
                ParamSpec::required("deployments", "Deployment names that must be rolled out"),
                ParamSpec::with_default("max_restarts", "restarts allowed per pod (null: not checked)", serde_json::Value::Null),
            ],
            snapshot_schema: gatekeeper_gate_sdk::model::SNAPSHOT_SCHEMA_VERSION,
        }
    }

    fn evaluate(input: &Input) -> Result<Evaluation, GateError> {
        let p: Params = input.params()?;
        if p.deployments.is_empty() {
            return Err(GateError::BadParams(
                "`deployments` is empty: name the Deployments that must be healthy".into(),
            ));
        }
        let parts = match input.snapshot.kubernetes.usable("kubernetes") {
            Err(why) => vec![Part::Unknown(why)],
            Ok(k) => parts(k, &p),
        };
        Ok(Evaluation::from_criteria(vec![all_of(
            id(&p.id, &p.title),
            parts,
        )]))
    }
}

fn parts(k: &KubernetesFacts, p: &Params) -> Vec<Part> {
    let mut parts = Vec::new();
    for name in &p.deployments {
        let found: Vec<_> = k.deployments.iter().filter(|d| &d.name == name).collect();
        if found.is_empty() {
            parts.push(if k.errors.is_empty() {
                Part::Fail(format!("deployment {name} not found"))
            } else {
                Part::Unknown(format!(
                    "deployment {name} not in the facts, and some reads failed: {}",
                    k.errors.join("; ")
                ))
            });
        }
        for d in found {
            let at = format!("{}/{}", d.namespace, d.name);
            parts.push(match d.rollout.as_deref() {
                Some("complete") => {
                    match (d.available_replicas, d.replicas) {
                        (Some(a), Some(want)) if a >= want => {
                            Part::Pass(format!("{at} rolled out ({a}/{want} available)"))
                        }
                        (Some(a), Some(want)) => {
                            Part::Fail(format!("{at}: {a}/{want} replicas available"))
                        }
                        // No spec.replicas: kubectl's verdict stands.
                        _ => Part::Pass(format!("{at} rolled out")),
                    }
                }
                Some(_) => Part::Fail(format!(
                    "{at}: {}",
                    d.rollout_message
                        .as_deref()
                        .unwrap_or("rollout not complete")
                )),
                None => Part::Unknown(format!("{at}: rollout status not reported")),
            });
        }
    }
    for pod in &k.pods {
        let at = format!("{}/{}", pod.namespace, pod.name);
        let stuck: Vec<&str> = pod
            .waiting_reasons
            .iter()
            .map(String::as_str)
            .filter(|r| STUCK_REASONS.contains(r))
            .collect();
        if !stuck.is_empty() {
            parts.push(Part::Fail(format!("pod {at}: {}", stuck.join(", "))));
        }
        if let Some(max) = p.max_restarts {
            match pod.restart_count {
                Some(n) if n > max => {
                    parts.push(Part::Fail(format!("pod {at}: {n} restarts, allowed {max}")))
                }
                Some(_) => {}
                None => parts.push(Part::Unknown(format!("pod {at}: restarts not reported"))),
            }
        }
    }
    if k.pods.is_empty() && p.max_restarts.is_some() && k.errors.is_empty() {
        parts.push(Part::Pass("no pods selected".into()));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatekeeper_gate_sdk::model::{DeploymentFacts, PodFacts, Snapshot, Source, Timestamp};
    use gatekeeper_gate_sdk::testing::Testcase;
    use gatekeeper_gate_sdk::{CriterionStatus, Decision};
    use serde_json::json;

    fn deployment(name: &str, rollout: &str, available: i32) -> DeploymentFacts {
        DeploymentFacts {
            namespace: "staging".into(),
            name: name.into(),
            replicas: Some(2),
            available_replicas: Some(available),
            rollout: Some(rollout.into()),
            rollout_message: Some(format!("rollout of {name}: {rollout}")),
            ..DeploymentFacts::default()
        }
    }

    fn pod(name: &str, waiting: &[&str], restarts: u32) -> PodFacts {
        PodFacts {
            namespace: "staging".into(),
            name: name.into(),
            restart_count: Some(restarts),
            waiting_reasons: waiting.iter().map(|s| s.to_string()).collect(),
            ..PodFacts::default()
        }
    }

    fn case(k: KubernetesFacts, params: serde_json::Value) -> Testcase {
        let mut s = Snapshot::empty(Timestamp::default());
        s.kubernetes = Source::ok(k);
        Testcase::new(s, params)
    }

    fn params() -> serde_json::Value {
        json!({"deployments": ["normalize-service", "ingest-service"], "max_restarts": 0})
    }

    #[test]
    fn rolled_out_and_quiet_is_go() {
        let k = KubernetesFacts {
            deployments: vec![
                deployment("normalize-service", "complete", 2),
                deployment("ingest-service", "complete", 2),
            ],
            pods: vec![pod("normalize-service-a", &[], 0)],
            ..KubernetesFacts::default()
        };
        let e = case(k, params()).run::<WorkloadsHealthy>().unwrap();
        assert_eq!(e.decision, Decision::Go, "{}", e.criteria[0].message);
        assert_eq!(
            e.criteria[0].message,
            "staging/normalize-service rolled out (2/2 available), staging/ingest-service rolled out (2/2 available)"
        );
    }

    #[test]
    fn crash_loops_restarts_and_unfinished_rollouts_fail() {
        let k = KubernetesFacts {
            deployments: vec![
                deployment("normalize-service", "progressing", 1),
                deployment("ingest-service", "complete", 1),
            ],
            pods: vec![pod("normalize-service-a", &["CrashLoopBackOff"], 12)],
            ..KubernetesFacts::default()
        };
        let e = case(k, params()).run::<WorkloadsHealthy>().unwrap();
        assert_eq!(e.decision, Decision::NoGo);
        assert_eq!(
            e.criteria[0].message,
            "staging/normalize-service: rollout of normalize-service: progressing; \
             staging/ingest-service: 1/2 replicas available; \
             pod staging/normalize-service-a: CrashLoopBackOff; \
             pod staging/normalize-service-a: 12 restarts, allowed 0"
        );
    }

    #[test]
    fn a_missing_deployment_fails_unless_reads_failed() {
        let k = KubernetesFacts {
            deployments: vec![deployment("ingest-service", "complete", 2)],
            ..KubernetesFacts::default()
        };
        let e = case(k.clone(), params()).run::<WorkloadsHealthy>().unwrap();
        assert_eq!(
            e.criteria[0].message,
            "deployment normalize-service not found"
        );
        let mut partial = k;
        partial.errors = vec!["deployments in staging: API server answered 500".into()];
        let e = case(partial, params()).run::<WorkloadsHealthy>().unwrap();
        assert_eq!(e.criteria[0].status, CriterionStatus::Unknown);
    }

    #[test]
    fn unavailable_kubernetes_defers_and_empty_params_are_refused() {
        let mut s = Snapshot::empty(Timestamp::default());
        s.kubernetes = Source::unavailable("no answer within 5s");
        let e = Testcase::new(s.clone(), params())
            .run::<WorkloadsHealthy>()
            .unwrap();
        assert_eq!(e.decision, Decision::Defer);
        assert!(matches!(
            Testcase::new(s, json!({})).run::<WorkloadsHealthy>(),
            Err(GateError::BadParams(_))
        ));
    }
}
