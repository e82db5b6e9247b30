//! Cluster health from each node's monitoring endpoint (`/healthz`, `/jsz`,
//! `/varz`), merged: only the meta leader lists the other nodes.

use super::wire::{RawPeer, nanos_to_ms};
use crate::clients::{SourceError, install_crypto_provider, remaining};
use gatekeeper_model::{NatsCluster, NatsNode, NatsRoute};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

/// Reads every configured monitoring endpoint (one per node is best: only
/// the meta leader lists the other nodes) and merges what they say.
pub(super) async fn monitor(urls: &[String], deadline: Instant) -> NatsCluster {
    install_crypto_provider();
    let mut cluster = NatsCluster::default();
    let client = match remaining(deadline, "monitoring endpoint")
        .map_err(|e| e.to_string())
        .and_then(|t| {
            reqwest::Client::builder()
                .timeout(t)
                .build()
                .map_err(|e| e.to_string())
        }) {
        Ok(c) => c,
        Err(e) => {
            cluster.error = Some(format!("monitoring endpoint: {e}"));
            return cluster;
        }
    };
    let nodes = futures::future::join_all(urls.iter().map(|u| monitor_node(&client, u))).await;
    let mut errors = Vec::new();
    let mut leader_view: Option<MetaCluster> = None;
    let mut any_meta: Option<MetaCluster> = None;
    let (mut healthy, mut js_enabled) = (Some(true), Some(true));
    let mut sums = [Some(0u64); 4];
    for node in nodes {
        errors.extend(node.errors);
        cluster.routes.extend(node.routes);
        let and = |acc: &mut Option<bool>, v: Option<bool>| {
            *acc = match (*acc, v) {
                (Some(a), Some(b)) => Some(a && b),
                _ => None,
            }
        };
        and(&mut healthy, node.healthy);
        and(&mut js_enabled, node.jetstream_enabled);
        if let Some(e) = node.health_error {
            cluster.health_error = Some(e);
        }
        let jsz = node.jsz;
        let values = [
            jsz.as_ref().and_then(|j| j.storage),
            jsz.as_ref()
                .and_then(|j| j.config.as_ref()?.max_storage)
                .and_then(|v| u64::try_from(v).ok()),
            jsz.as_ref().and_then(|j| j.memory),
            jsz.as_ref()
                .and_then(|j| j.config.as_ref()?.max_memory)
                .and_then(|v| u64::try_from(v).ok()),
        ];
        for (sum, v) in sums.iter_mut().zip(values) {
            *sum = match (*sum, v) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
        }
        if let Some(meta) = jsz.and_then(|j| j.meta_cluster) {
            if meta.replicas.as_ref().is_some_and(|r| !r.is_empty()) {
                leader_view = Some(meta);
            } else if any_meta.is_none() {
                any_meta = Some(meta);
            }
        }
        if cluster.cluster_name.is_none() {
            cluster.cluster_name = node.cluster_name;
        }
    }
    cluster.healthy = healthy;
    cluster.jetstream_enabled = js_enabled;
    [
        cluster.storage_used_bytes,
        cluster.storage_limit_bytes,
        cluster.memory_used_bytes,
        cluster.memory_limit_bytes,
    ] = sums;
    if let Some(meta) = leader_view.or(any_meta) {
        apply_meta(&mut cluster, meta);
    }
    if !errors.is_empty() {
        cluster.error = Some(errors.join("; "));
    }
    cluster
}

/// What one node's monitoring endpoint said.
struct NodeMonitor {
    healthy: Option<bool>,
    jetstream_enabled: Option<bool>,
    health_error: Option<String>,
    jsz: Option<Jsz>,
    cluster_name: Option<String>,
    routes: Vec<NatsRoute>,
    errors: Vec<String>,
}

async fn monitor_node(client: &reqwest::Client, base: &str) -> NodeMonitor {
    let base = base.trim_end_matches('/');
    let get = |path: &'static str| {
        let url = format!("{base}{path}");
        async move {
            let response = client
                .get(&url)
                .send()
                .await
                .map_err(|e| SourceError::Unreachable(format!("{url}: {}", e.without_url())))?;
            let status = response.status().as_u16();
            let body = response
                .text()
                .await
                .map_err(|e| SourceError::Unreachable(format!("{url}: {}", e.without_url())))?;
            Ok::<_, SourceError>((status, body))
        }
    };
    let (js_health, health, jsz, varz, routez) = tokio::join!(
        get("/healthz?js-enabled-only=true"),
        get("/healthz"),
        get("/jsz"),
        get("/varz"),
        get("/routez")
    );
    let mut node = NodeMonitor {
        healthy: None,
        jetstream_enabled: None,
        health_error: None,
        jsz: None,
        cluster_name: None,
        routes: Vec::new(),
        errors: Vec::new(),
    };
    // Healthy = both health checks say ok: the full one (streams and
    // consumers current) and `js-enabled-only` (JetStream up, if configured).
    for (path, answer) in [
        ("/healthz", health),
        ("/healthz?js-enabled-only=true", js_health),
    ] {
        match answer {
            Ok((status, body)) => {
                let parsed: Option<Healthz> = serde_json::from_str(&body).ok();
                let ok = status == 200
                    && parsed.as_ref().and_then(|h| h.status.as_deref()) == Some("ok");
                node.healthy = Some(node.healthy.unwrap_or(true) && ok);
                if !ok && node.health_error.is_none() {
                    node.health_error = Some(format!(
                        "{base}{path}: {}",
                        parsed
                            .and_then(|h| h.error)
                            .unwrap_or_else(|| format!("answered {status}"))
                    ));
                }
            }
            Err(e) => node.errors.push(e.to_string()),
        }
    }
    match jsz.and_then(|(status, body)| parse_monitor::<Jsz>(&format!("{base}/jsz"), status, &body))
    {
        Ok(jsz) => node.jsz = Some(jsz),
        Err(e) => node.errors.push(e.to_string()),
    }
    match varz
        .and_then(|(status, body)| parse_monitor::<Varz>(&format!("{base}/varz"), status, &body))
    {
        Ok(varz) => {
            node.cluster_name = varz.cluster.and_then(|c| c.name).filter(|n| !n.is_empty());
            // An enabled JetStream reports its config; a disabled one `{}`.
            node.jetstream_enabled = Some(varz.jetstream.is_some_and(|j| j.config.is_some()));
        }
        Err(e) => node.errors.push(e.to_string()),
    }
    match routez.and_then(|(status, body)| {
        parse_monitor::<Routez>(&format!("{base}/routez"), status, &body)
    }) {
        Ok(routez) => node.routes = routez.routes(),
        Err(e) => node.errors.push(e.to_string()),
    }
    node
}

fn parse_monitor<T: DeserializeOwned>(
    path: &str,
    status: u16,
    body: &str,
) -> Result<T, SourceError> {
    if status != 200 {
        return Err(SourceError::Refused(format!("{path} answered {status}")));
    }
    serde_json::from_str(body)
        .map_err(|e| SourceError::Unreadable(format!("{path}: unreadable answer: {e}")))
}

fn apply_meta(cluster: &mut NatsCluster, meta: MetaCluster) {
    if let Some(name) = meta.name.filter(|n| !n.is_empty()) {
        cluster.cluster_name = Some(name);
    }
    cluster.cluster_size = meta.cluster_size;
    cluster.meta_leader = meta.leader.filter(|l| !l.is_empty());
    // Only the meta leader lists its peers; without that list the nodes are
    // unknown, not "just the leader".
    let Some(replicas) = meta.replicas.filter(|r| !r.is_empty()) else {
        return;
    };
    if let Some(leader) = &cluster.meta_leader {
        cluster.nodes.push(NatsNode {
            name: leader.clone(),
            up: Some(true),
            current: Some(true),
            lag: Some(0),
            active_ms: Some(0),
        });
    }
    for peer in replicas {
        if cluster.meta_leader.as_deref() == peer.name.as_deref() {
            continue;
        }
        cluster.nodes.push(NatsNode {
            name: peer.name.unwrap_or_default(),
            up: Some(!peer.offline.unwrap_or(false)),
            current: peer.current,
            lag: Some(peer.lag.unwrap_or(0)),
            active_ms: peer.active.map(nanos_to_ms),
        });
    }
}

// ------------------------------------------------------------ wire types

#[derive(Deserialize)]
struct Healthz {
    status: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Jsz {
    memory: Option<u64>,
    storage: Option<u64>,
    config: Option<JszConfig>,
    meta_cluster: Option<MetaCluster>,
}

#[derive(Deserialize)]
struct JszConfig {
    max_memory: Option<i64>,
    max_storage: Option<i64>,
}

#[derive(Deserialize)]
struct MetaCluster {
    name: Option<String>,
    leader: Option<String>,
    cluster_size: Option<u64>,
    replicas: Option<Vec<RawPeer>>,
}

#[derive(Deserialize)]
struct Routez {
    server_id: Option<String>,
    server_name: Option<String>,
    #[serde(default)]
    routes: Vec<RawRoute>,
}

#[derive(Deserialize)]
struct RawRoute {
    remote_id: Option<String>,
    remote_name: Option<String>,
    rtt: Option<String>,
}

impl Routez {
    fn routes(self) -> Vec<NatsRoute> {
        let from = self
            .server_name
            .filter(|n| !n.is_empty())
            .or(self.server_id)
            .unwrap_or_default();
        self.routes
            .into_iter()
            .map(|r| NatsRoute {
                from: from.clone(),
                to: r
                    .remote_name
                    .filter(|n| !n.is_empty())
                    .or(r.remote_id)
                    .unwrap_or_default(),
                rtt_ms: r.rtt.as_deref().and_then(go_duration_ms),
            })
            .collect()
    }
}

/// A Go `time.Duration` string (`183µs`, `1.5ms`, `2s`, `1m2.5s`) in ms.
pub(super) fn go_duration_ms(text: &str) -> Option<f64> {
    if text == "0" || text == "0s" {
        return Some(0.0);
    }
    let mut total = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-6,
            "us" | "µs" | "μs" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            "m" => 60e3,
            "h" => 3600e3,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[derive(Deserialize)]
struct Varz {
    cluster: Option<VarzCluster>,
    jetstream: Option<VarzJetStream>,
}

#[derive(Deserialize)]
struct VarzJetStream {
    config: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct VarzCluster {
    name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_as_nats_prints_them() {
        assert_eq!(go_duration_ms("183µs"), Some(0.183));
        assert_eq!(go_duration_ms("1.5ms"), Some(1.5));
        assert_eq!(go_duration_ms("2s"), Some(2000.0));
        assert_eq!(go_duration_ms("1m2.5s"), Some(62_500.0));
        assert_eq!(go_duration_ms("0s"), Some(0.0));
        assert_eq!(go_duration_ms("fast"), None);
        assert_eq!(go_duration_ms("12"), None);
    }

    #[test]
    fn routes_name_their_nodes_on_2_9_and_2_10() {
        let v29: Routez = serde_json::from_str(
            r#"{"server_id":"NB1","routes":[{"remote_id":"NC2","rtt":"329µs"}]}"#,
        )
        .unwrap();
        let r = v29.routes();
        assert_eq!(
            (r[0].from.as_str(), r[0].to.as_str(), r[0].rtt_ms),
            ("NB1", "NC2", Some(0.329))
        );
        let v215: Routez = serde_json::from_str(
            r#"{"server_id":"NB1","server_name":"n1","routes":[{"remote_id":"NC2","remote_name":"n2","rtt":"1.2ms"}]}"#,
        )
        .unwrap();
        let r = v215.routes();
        assert_eq!(
            (r[0].from.as_str(), r[0].to.as_str(), r[0].rtt_ms),
            ("n1", "n2", Some(1.2))
        );
    }
}
