//! examples/k8s stays true to the code: the ConfigMap holds the example
//! config as it is, RBAC allows exactly the patches the production rollback
//! plan makes, and the dashboard and alert rules name metrics the agent serves.

use gatekeeper::config::{Config, StepConfig};
use std::collections::BTreeSet;
use std::path::Path;

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_configmap_is_the_example_config() {
    let manifest = read("examples/k8s/configmap.yaml");
    let (_, body) = manifest
        .split_once("  gatekeeper.toml: |\n")
        .expect("a gatekeeper.toml key");
    let embedded: String = body
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        embedded == read("examples/athlete-ally/gatekeeper.toml"),
        "examples/k8s/configmap.yaml is stale: run scripts/k8s-configmap"
    );
    let config = Config::parse(&embedded, "configmap.yaml", Some("production")).unwrap();
    assert_eq!(
        config.ledger.unwrap().file.unwrap().display().to_string(),
        "/var/lib/gatekeeper/ledger.jsonl",
        "the spool is on the writable volume the Deployment mounts"
    );
    assert_eq!(
        config.watch.unwrap().listen.as_deref(),
        Some("0.0.0.0:9464")
    );
}

#[test]
fn rbac_patches_exactly_what_the_plan_patches() {
    let config = Config::parse(
        &read("examples/athlete-ally/gatekeeper.toml"),
        "gatekeeper.toml",
        Some("production"),
    )
    .unwrap();
    let (mut config_maps, mut deployments) = (Vec::new(), Vec::new());
    for plan in config.watch.unwrap().plans.values() {
        for step in &plan.steps {
            match step {
                StepConfig::PatchConfigMap { name, .. } => config_maps.push(name.clone()),
                StepConfig::RestartDeployments { names, .. } => deployments.extend(names.clone()),
                _ => {}
            }
        }
    }
    let rbac = read("examples/k8s/rbac.yaml");
    let names = |list: &[String]| {
        format!(
            "resourceNames: [{}]",
            list.iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    assert!(rbac.contains(&names(&config_maps)), "{config_maps:?}");
    assert!(rbac.contains(&names(&deployments)), "{deployments:?}");
    assert_eq!(
        rbac.matches("\"patch\"").count(),
        2,
        "patch is granted only by name"
    );
    for verbs in rbac
        .lines()
        .filter(|l| l.trim_start().starts_with("verbs:"))
    {
        assert!(
            verbs.contains("[\"get\", \"list\", \"watch\"]") || verbs.contains("[\"patch\"]"),
            "{verbs}"
        );
    }
}

#[test]
fn dashboard_and_alerts_name_metrics_the_agent_serves() {
    // Labelled families appear once they have a sample: give each one.
    use gatekeeper::metrics::{self, Metrics};
    let m = Metrics::new();
    let label = |s: &str| s.to_owned();
    metrics::one_hot(&m.phase_verdict, &["go"], "go", |v| metrics::PhaseLabels {
        phase: label("p"),
        verdict: label(v),
    });
    metrics::one_hot(&m.gate_verdict, &["go"], "go", |v| metrics::GateLabels {
        phase: label("p"),
        gate: label("g"),
        verdict: label(v),
    });
    metrics::one_hot(&m.trigger_state, &["clear"], "clear", |v| {
        metrics::TriggerLabels {
            trigger: label("t"),
            state: label(v),
        }
    });
    let source = metrics::SourceLabels {
        source: label("nats"),
    };
    m.collection_seconds.get_or_create(&source).observe(0.01);
    m.collector_errors.get_or_create(&source).inc();
    m.action("plan", "exec", "done");
    let served: BTreeSet<String> = m
        .render()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect();
    assert!(served.contains("gatekeeper_trigger_state"), "{served:?}");
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("examples/k8s/grafana-dashboard.json")).unwrap();
    let text = format!("{dashboard}{}", read("examples/k8s/alerts.yaml"));
    let re = regex::Regex::new(r"gatekeeper_[a-z_]+").unwrap();
    let mut named = BTreeSet::new();
    for m in re.find_iter(&text) {
        let name = m.as_str();
        let family = ["_bucket", "_total"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        assert!(
            served.contains(family) || served.contains(&format!("{family}_total")),
            "{name} is not served (served: {served:?})"
        );
        named.insert(family.to_owned());
    }
    assert!(named.len() >= 10, "{named:?}");
}

/// The alert rules are a rules file Prometheus accepts: checked by the real
/// `promtool` (Debian's `prometheus` package, which `scripts/setup` installs).
#[test]
fn the_alert_rules_pass_promtool() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/k8s");
    let text = crate::prometheus::promtool(&["check", "rules", "alerts.yaml"], &dir);
    assert!(text.contains("SUCCESS: 9 rules found"), "{text}");
}
