//! Gate `nats-cluster-healthy` (seed 003, "NATS cluster healthy"): the
//! monitoring endpoints answer healthy, JetStream is enabled, there is a meta
//! leader, every expected node is up, and storage has room to spare.

use gatekeeper_gate_sdk::check::{Part, all_of, id};
use gatekeeper_gate_sdk::{Evaluation, Gate, GateError, Input, Metadata, ParamSpec};
use serde::Deserialize;

pub struct NatsClusterHealthy;

gatekeeper_gate_sdk::export_gate!(NatsClusterHealthy);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    pub id: String,
    pub title: String,
    /// Nodes that must be up (1 for a single server: no meta group is needed).
    pub expected_nodes: u64,
    /// Free JetStream storage, as a share of the limit, must be at least this.
    pub min_storage_free_percent: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            id: "nats-cluster-healthy".into(),
            title: "NATS cluster healthy".into(),
            expected_nodes: 1,
            min_storage_free_percent: 20.0,
        }
    }
}

impl Gate for NatsClusterHealthy {
    fn metadata() -> Metadata {
        Metadata {
            name: "nats-cluster-healthy".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Health checks ok, JetStream on, a meta leader, every expected node up, storage to spare (needs sources.nats.monitor_url).".into(),
            sources: vec!["nats".into()],
            params: vec![
                ParamSpec::with_default("id", "criterion id", serde_json::json!("nats-cluster-healthy")),
                ParamSpec::with_default("title", "criterion title", serde_json::json!("NATS cluster healthy")),
                ParamSpec::with_default("expected_nodes", "nodes that must be up", serde_json::json!(1)),
                ParamSpec::with_default("min_storage_free_percent", "free JetStream storage at least this share of the limit", serde_json::json!(20)),
            ],
            snapshot_schema: gatekeeper_gate_sdk::model::SNAPSHOT_SCHEMA_VERSION,
        }
    }

    fn reads(_params: &serde_json::Value) -> Result<Vec<String>, GateError> {
        Ok(vec!["nats.cluster".into()])
    }

    fn evaluate(input: &Input) -> Result<Evaluation, GateError> {
        let p: Params = input.params()?;
        if p.expected_nodes == 0 {
            return Err(GateError::BadParams(
                "expected_nodes must be at least 1".into(),
            ));
        }
        let parts = match input.snapshot.nats.usable("nats") {
            Err(why) => vec![Part::Unknown(why)],
            Ok(nats) => match &nats.cluster {
                None => vec![Part::Unknown(
                    "no monitoring facts: set sources.nats.monitor_url (every node's endpoint)"
                        .into(),
                )],
                Some(c) => {
                    let mut parts = Vec::new();
                    if let Some(e) = &c.error {
                        parts.push(Part::Unknown(format!("monitoring endpoint: {e}")));
                    }
                    parts.push(match (c.healthy, &c.health_error) {
                        (Some(true), _) => Part::Pass("healthz ok".into()),
                        (Some(false), e) => {
                            Part::Fail(format!("healthz: {}", e.as_deref().unwrap_or("not ok")))
                        }
                        (None, _) => Part::Unknown("health not reported".into()),
                    });
                    parts.push(match c.jetstream_enabled {
                        Some(true) => Part::Pass("JetStream enabled".into()),
                        Some(false) => Part::Fail("JetStream not enabled".into()),
                        None => Part::Unknown("JetStream state not reported".into()),
                    });
                    if p.expected_nodes > 1 {
                        parts.push(match &c.meta_leader {
                            Some(l) => Part::Pass(format!("meta leader {l}")),
                            None => Part::Fail("no meta leader".into()),
                        });
                        parts.push(nodes_part(c, p.expected_nodes));
                    }
                    parts.push(match (c.storage_used_bytes, c.storage_limit_bytes) {
                        (Some(used), Some(limit)) if limit > 0 => {
                            let free = 100.0 - used as f64 * 100.0 / limit as f64;
                            let shown = format!("storage {free:.0}% free");
                            if free >= p.min_storage_free_percent {
                                Part::Pass(shown)
                            } else {
                                Part::Fail(format!(
                                    "{shown}, required >= {}%",
                                    p.min_storage_free_percent
                                ))
                            }
                        }
                        _ => Part::Unknown("storage use or limit not reported".into()),
                    });
                    parts
                }
            },
        };
        Ok(Evaluation::from_criteria(vec![all_of(
            id(&p.id, &p.title),
            parts,
        )]))
    }
}

fn nodes_part(c: &gatekeeper_gate_sdk::model::NatsCluster, expected: u64) -> Part {
    if c.nodes.is_empty() {
        return Part::Unknown(
            "cluster nodes not listed (only the meta leader lists them: give every node's monitor_url)"
                .into(),
        );
    }
    let down: Vec<&str> = c
        .nodes
        .iter()
        .filter(|n| n.up != Some(true))
        .map(|n| n.name.as_str())
        .collect();
    let up = c.nodes.len() as u64 - down.len() as u64;
    let shown = format!("{up}/{expected} nodes up");
    if down.is_empty() && up >= expected {
        Part::Pass(shown)
    } else if down.is_empty() {
        Part::Fail(format!("{shown}: the cluster lists only {up}"))
    } else {
        Part::Fail(format!("{shown}: down {}", down.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatekeeper_gate_sdk::model::{
        NatsCluster, NatsFacts, NatsNode, Snapshot, Source, Timestamp,
    };
    use gatekeeper_gate_sdk::testing::Testcase;
    use gatekeeper_gate_sdk::{CriterionStatus, Decision};
    use serde_json::json;

    fn node(name: &str, up: bool) -> NatsNode {
        NatsNode {
            name: name.into(),
            up: Some(up),
            ..NatsNode::default()
        }
    }

    fn cluster(nodes: Vec<NatsNode>) -> NatsCluster {
        NatsCluster {
            healthy: Some(true),
            jetstream_enabled: Some(true),
            meta_leader: Some("n1".into()),
            nodes,
            storage_used_bytes: Some(300),
            storage_limit_bytes: Some(1000),
            ..NatsCluster::default()
        }
    }

    fn case(c: Option<NatsCluster>, params: serde_json::Value) -> Testcase {
        let mut s = Snapshot::empty(Timestamp::default());
        s.nats = Source::ok(NatsFacts {
            cluster: c,
            streams_complete: true,
            ..NatsFacts::default()
        });
        Testcase::new(s, params)
    }

    #[test]
    fn three_nodes_up_is_go() {
        let nodes = vec![node("n1", true), node("n2", true), node("n3", true)];
        let e = case(Some(cluster(nodes)), json!({"expected_nodes": 3}))
            .run::<NatsClusterHealthy>()
            .unwrap();
        assert_eq!(e.decision, Decision::Go);
        assert_eq!(
            e.criteria[0].message,
            "healthz ok, JetStream enabled, meta leader n1, 3/3 nodes up, storage 70% free"
        );
    }

    #[test]
    fn a_node_down_fails_naming_it() {
        let nodes = vec![node("n1", true), node("n2", false), node("n3", true)];
        let e = case(Some(cluster(nodes)), json!({"expected_nodes": 3}))
            .run::<NatsClusterHealthy>()
            .unwrap();
        assert_eq!(e.decision, Decision::NoGo);
        assert_eq!(e.criteria[0].message, "2/3 nodes up: down n2");
    }

    #[test]
    fn no_leader_low_storage_and_unlisted_nodes() {
        let mut c = cluster(Vec::new());
        c.meta_leader = None;
        c.storage_used_bytes = Some(950);
        let e = case(Some(c), json!({"expected_nodes": 3}))
            .run::<NatsClusterHealthy>()
            .unwrap();
        assert_eq!(e.criteria[0].status, CriterionStatus::Fail);
        assert_eq!(
            e.criteria[0].message,
            "no meta leader; storage 5% free, required >= 20%"
        );
        // A single server needs no meta group.
        let e = case(Some(cluster(Vec::new())), json!({}))
            .run::<NatsClusterHealthy>()
            .unwrap();
        assert_eq!(e.decision, Decision::Go);
    }

    #[test]
    fn no_monitoring_facts_is_unknown() {
        let e = case(None, json!({"expected_nodes": 3}))
            .run::<NatsClusterHealthy>()
            .unwrap();
        assert_eq!(e.decision, Decision::Defer);
        assert!(
            e.criteria[0]
                .message
                .contains("set sources.nats.monitor_url")
        );
        let mut c = cluster(vec![node("n1", true), node("n2", true), node("n3", true)]);
        c.error = Some("http://n2:8222/jsz: connection refused".into());
        let e = case(Some(c), json!({"expected_nodes": 3}))
            .run::<NatsClusterHealthy>()
            .unwrap();
        assert_eq!(e.decision, Decision::Defer);
    }
}
