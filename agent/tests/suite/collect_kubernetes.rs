//! The Kubernetes collector through the real `kube::Client` against the fake
//! API server in gatekeeper-testsupport (no real API server can run here).

use gatekeeper::collect::{KubernetesCollector, run_collector};
use gatekeeper::config::{DurationValue, KebabId, KubernetesSourceConfig, LogPatternConfig};
use gatekeeper_model::{KubernetesFacts, Source, SourceStatus};
use gatekeeper_testsupport::{FakeKube, Fault};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

fn seed(kube: &FakeKube) {
    let deployment = |name: &str, generation: i64, status: serde_json::Value| {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "athlete-ally", "generation": generation,
                         "labels": {"app.kubernetes.io/part-of": "athlete-ally"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}}, "template": {}},
            "status": status
        }))
        .unwrap()
    };
    kube.add_deployment(deployment(
        "ingest-service",
        4,
        json!({"observedGeneration": 4, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3,
               "conditions": [{"type": "Available", "status": "True"}, {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}),
    ));
    kube.add_deployment(deployment(
        "normalize-service",
        7,
        json!({"observedGeneration": 7, "replicas": 4, "updatedReplicas": 1, "readyReplicas": 3, "availableReplicas": 3,
               "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]}),
    ));
    kube.add_deployment(deployment(
        "insights-engine",
        2,
        json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 2,
               "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                               "message": "ReplicaSet \"insights-engine-5d\" has timed out progressing."}]}),
    ));
    // Another team's deployment: not selected.
    kube.add_deployment(
        serde_json::from_value(json!({
            "metadata": {"name": "other", "namespace": "athlete-ally", "labels": {"team": "other"}},
            "spec": {"selector": {}, "template": {}}
        }))
        .unwrap(),
    );
    let pod = |name: &str, status: serde_json::Value| {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "athlete-ally", "labels": {"app": "normalize-service", "app.kubernetes.io/part-of": "athlete-ally"}},
            "spec": {"containers": [{"name": "normalize"}]},
            "status": status
        }))
        .unwrap()
    };
    kube.add_pod(pod(
        "normalize-service-7f9-abc",
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
               "containerStatuses": [{"name": "normalize", "image": "i", "imageID": "", "ready": false, "restartCount": 12,
                  "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
                  "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}),
    ));
    kube.add_pod(pod(
        "normalize-service-7f9-def",
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
               "containerStatuses": [{"name": "normalize", "image": "i", "imageID": "", "ready": true, "restartCount": 0,
                  "state": {"running": {}}}]}),
    ));
    kube.add_config_map(
        serde_json::from_value(json!({
            "metadata": {"name": "normalize-config", "namespace": "athlete-ally"},
            "data": {"EVENT_STREAM_MODE": "multi", "FEATURE_ATHLETE_ALLY_NORMALIZE_HRV": "true"}
        }))
        .unwrap(),
    );
    kube.set_log(
        "athlete-ally",
        "normalize-service-7f9-abc",
        "normalize",
        "starting\nTrying next candidate AA_CORE_HOT\nTrying next candidate ATHLETE_ALLY_EVENTS\nFailed to find HRV consumer on any available stream\n",
    );
    kube.set_log(
        "athlete-ally",
        "normalize-service-7f9-def",
        "normalize",
        "ok\nTrying next candidate AA_CORE_HOT\n",
    );
}

fn config(kubeconfig: &Path) -> KubernetesSourceConfig {
    KubernetesSourceConfig {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        context: None,
        namespaces: Vec::new(),
        deployments: Some("app.kubernetes.io/part-of=athlete-ally".into()),
        pods: Some("app=normalize-service".into()),
        config_maps: vec!["normalize-config".into(), "absent-config".into()],
        log_patterns: vec![
            LogPatternConfig {
                name: KebabId::parse("next-candidate").unwrap(),
                selector: "app=normalize-service".into(),
                pattern: "Trying next candidate".into(),
                window: DurationValue(Duration::from_secs(300)),
            },
            LogPatternConfig {
                name: KebabId::parse("no-consumer").unwrap(),
                selector: "app=normalize-service".into(),
                pattern: "Failed to find HRV consumer on any available stream".into(),
                window: DurationValue(Duration::from_secs(300)),
            },
        ],
        timeout: Some(DurationValue(Duration::from_secs(3))),
    }
}

async fn collect(config: KubernetesSourceConfig) -> Source<KubernetesFacts> {
    run_collector(&KubernetesCollector::new(config, Path::new("."))).await
}

#[tokio::test]
async fn deployments_pods_configmaps_and_log_patterns() {
    let kube = FakeKube::start();
    seed(&kube);
    kube.page_size(2); // deployments come in two pages
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube.kubeconfig(dir.path(), "athlete-ally");
    let src = collect(config(&kubeconfig)).await;
    assert_eq!(src.status, SourceStatus::Ok, "{:?}", src.error);
    let facts = src.facts.unwrap();
    assert_eq!(
        facts.namespaces,
        vec!["athlete-ally"],
        "the context's namespace"
    );

    let d = |name: &str| facts.deployments.iter().find(|d| d.name == name).unwrap();
    assert_eq!(
        facts.deployments.len(),
        3,
        "selector applied, both pages read"
    );
    assert_eq!(d("ingest-service").rollout.as_deref(), Some("complete"));
    assert_eq!(
        d("normalize-service").rollout.as_deref(),
        Some("progressing")
    );
    assert_eq!(
        d("normalize-service").rollout_message.as_deref(),
        Some(
            "Waiting for deployment \"normalize-service\" rollout to finish: 1 out of 3 new replicas have been updated..."
        )
    );
    assert_eq!(d("insights-engine").rollout.as_deref(), Some("failed"));
    let n = d("normalize-service");
    assert_eq!(
        (
            n.generation,
            n.observed_generation,
            n.replicas,
            n.status_replicas,
            n.updated_replicas,
            n.ready_replicas,
            n.available_replicas
        ),
        (
            Some(7),
            Some(7),
            Some(3),
            Some(4),
            Some(1),
            Some(3),
            Some(3)
        )
    );
    assert_eq!(n.conditions[0].reason.as_deref(), Some("ReplicaSetUpdated"));

    assert_eq!(facts.pods.len(), 2);
    let crashing = facts.pods.iter().find(|p| p.name.ends_with("abc")).unwrap();
    assert_eq!(crashing.waiting_reasons, vec!["CrashLoopBackOff"]);
    assert_eq!(crashing.restart_count, Some(12));
    assert_eq!(crashing.ready, Some(false));
    assert_eq!(crashing.last_termination_reasons, vec!["Error"]);

    let cm = &facts.config_maps[0];
    assert_eq!(
        (
            cm.exists,
            cm.data.get("EVENT_STREAM_MODE").map(String::as_str)
        ),
        (Some(true), Some("multi"))
    );
    assert_eq!(
        (
            facts.config_maps[1].exists,
            facts.config_maps[1].error.as_deref()
        ),
        (Some(false), None)
    );

    let p = |name: &str| facts.log_patterns.iter().find(|p| p.name == name).unwrap();
    assert_eq!(
        (p("next-candidate").matches, p("next-candidate").pods_read),
        (Some(3), Some(2))
    );
    assert_eq!(p("no-consumer").matches, Some(1));
    assert_eq!(p("no-consumer").window_ms, Some(300_000));

    // The requests were the real REST paths, with selector and window.
    let requests = kube.requests();
    assert!(
        requests.iter().any(|r| r
            .starts_with("/apis/apps/v1/namespaces/athlete-ally/deployments?")
            && r.contains("labelSelector=app.kubernetes.io%2Fpart-of%3Dathlete-ally")
            && r.contains("continue=2")),
        "{requests:#?}"
    );
    assert!(
        requests.iter().any(|r| r
            .starts_with("/api/v1/namespaces/athlete-ally/pods/normalize-service-7f9-abc/log?")
            && r.contains("sinceSeconds=300")
            && r.contains("container=normalize")),
        "{requests:#?}"
    );
}

#[tokio::test]
async fn server_errors_and_timeouts_are_marked_not_dropped() {
    let kube = FakeKube::start();
    seed(&kube);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube.kubeconfig(dir.path(), "athlete-ally");

    // 500 on deployments: the rest is read, the gap is named.
    kube.fault(Fault::Status {
        path_contains: "/deployments".into(),
        code: 500,
    });
    let src = collect(config(&kubeconfig)).await;
    assert_eq!(src.status, SourceStatus::Partial);
    let facts = src.facts.unwrap();
    assert!(facts.deployments.is_empty());
    assert_eq!(facts.pods.len(), 2);
    assert_eq!(facts.errors.len(), 1, "{:?}", facts.errors);
    assert!(facts.errors[0].starts_with("deployments in athlete-ally (app.kubernetes.io/part-of=athlete-ally): API server answered 500"), "{:?}", facts.errors);

    // A slow log endpoint: the pattern count is unknown for that pod, named.
    kube.clear_faults();
    kube.fault(Fault::Delay {
        path_contains: "abc/log".into(),
        delay: Duration::from_secs(10),
    });
    let mut c = config(&kubeconfig);
    c.timeout = Some(DurationValue(Duration::from_millis(1500)));
    let src = collect(c).await;
    assert_eq!(src.status, SourceStatus::Partial);
    let facts = src.facts.unwrap();
    assert_eq!(facts.deployments.len(), 3);
    let p = &facts.log_patterns[0];
    assert!(
        p.error
            .as_deref()
            .unwrap()
            .contains("athlete-ally/normalize-service-7f9-abc/normalize"),
        "{p:?}"
    );
    assert!(p.pods_read.unwrap() < 2);

    // Everything failing: unavailable, with the reason.
    kube.clear_faults();
    kube.fault(Fault::Status {
        path_contains: "/".into(),
        code: 500,
    });
    let src = collect(config(&kubeconfig)).await;
    assert_eq!(src.status, SourceStatus::Unavailable);
    let error = src.error.unwrap();
    assert!(error.contains("API server answered 500"), "{error}");

    // 503 is retried by kube's client until the source's timeout: then unavailable.
    kube.clear_faults();
    kube.fault(Fault::Status {
        path_contains: "/".into(),
        code: 503,
    });
    let mut c = config(&kubeconfig);
    c.timeout = Some(DurationValue(Duration::from_millis(800)));
    let src = collect(c).await;
    assert_eq!(src.status, SourceStatus::Unavailable);
    assert!(src.error.unwrap().contains("deployments in athlete-ally"));

    // No server at all.
    drop(kube);
    let src = collect(config(&kubeconfig)).await;
    assert_eq!(src.status, SourceStatus::Unavailable);
    assert!(src.facts.is_none());
}
