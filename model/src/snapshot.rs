//! The snapshot: every fact the host collected at one moment, per source.
//!
//! Fields are `Option` where a server may not report them: `None` means "not
//! reported", never zero. Every struct decodes with missing fields defaulted and
//! unknown fields ignored, so older gates read newer snapshots.

use crate::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The snapshot schema this crate reads and writes.
pub const SNAPSHOT_SCHEMA_VERSION: u32 = 1;

/// The fact sources a snapshot can hold, by the names gates declare.
pub const SOURCE_NAMES: [&str; 6] = [
    "nats",
    "postgres",
    "kubernetes",
    "http",
    "metrics",
    "ledger",
];

/// Every fact the host collected at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub schema_version: u32,
    /// When collection started; also the only clock a gate sees.
    pub taken_at: Timestamp,
    /// The interval the host sampled at, when this snapshot is one of a
    /// series it collected (`watch`, `check --sample`, `check --wait`): a
    /// longer gap between two samples is time nobody looked, so holds and
    /// rates do not reach across it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    #[serde(default)]
    pub nats: Source<NatsFacts>,
    #[serde(default)]
    pub postgres: Source<PostgresFacts>,
    #[serde(default)]
    pub kubernetes: Source<KubernetesFacts>,
    #[serde(default)]
    pub http: Source<HttpFacts>,
    #[serde(default)]
    pub metrics: Source<MetricsFacts>,
    #[serde(default)]
    pub ledger: Source<LedgerFacts>,
}

impl Snapshot {
    /// Every source's status, in snapshot order (the ledger last).
    pub fn source_states(&self) -> [SourceState<'_>; 6] {
        [
            self.nats.state("nats"),
            self.postgres.state("postgres"),
            self.kubernetes.state("kubernetes"),
            self.http.state("http"),
            self.metrics.state("metrics"),
            self.ledger.state("ledger"),
        ]
    }

    /// The first name that appears twice where names must be unique (a
    /// stream, a consumer of one stream, a query, a probe, a scrape target,
    /// a metric family of one target, a Deployment/Pod/ConfigMap in one
    /// namespace, a log pattern): a snapshot with one is ambiguous, and is
    /// refused rather than resolved either way.
    pub fn duplicate_name(&self) -> Option<String> {
        fn first_dup<'a>(
            what: &str,
            names: impl Iterator<Item = (&'a str, &'a str)>,
        ) -> Option<String> {
            let mut seen = std::collections::BTreeSet::new();
            for (scope, name) in names {
                if !seen.insert((scope, name)) {
                    return Some(if scope.is_empty() {
                        format!("{what} `{name}` appears twice")
                    } else {
                        format!("{what} `{scope}/{name}` appears twice")
                    });
                }
            }
            None
        }
        if let Some(n) = &self.nats.facts
            && let Some(d) = first_dup("stream", n.streams.iter().map(|s| ("", s.name.as_str())))
                .or_else(|| {
                    n.streams.iter().find_map(|s| {
                        first_dup(
                            "consumer",
                            s.consumers
                                .iter()
                                .map(|c| (s.name.as_str(), c.name.as_str())),
                        )
                    })
                })
                .or_else(|| {
                    first_dup(
                        "cluster node",
                        n.cluster
                            .iter()
                            .flat_map(|c| &c.nodes)
                            .map(|node| ("", node.name.as_str())),
                    )
                })
        {
            return Some(d);
        }
        if let Some(p) = &self.postgres.facts
            && let Some(d) = first_dup("query", p.queries.iter().map(|q| ("", q.name.as_str())))
        {
            return Some(d);
        }
        if let Some(k) = &self.kubernetes.facts {
            let dup = first_dup(
                "deployment",
                k.deployments
                    .iter()
                    .map(|d| (d.namespace.as_str(), d.name.as_str())),
            )
            .or_else(|| {
                first_dup(
                    "pod",
                    k.pods
                        .iter()
                        .map(|p| (p.namespace.as_str(), p.name.as_str())),
                )
            })
            .or_else(|| {
                first_dup(
                    "config map",
                    k.config_maps
                        .iter()
                        .map(|c| (c.namespace.as_str(), c.name.as_str())),
                )
            })
            .or_else(|| {
                first_dup(
                    "log pattern",
                    k.log_patterns.iter().map(|l| ("", l.name.as_str())),
                )
            });
            if dup.is_some() {
                return dup;
            }
        }
        if let Some(h) = &self.http.facts
            && let Some(d) = first_dup("probe", h.probes.iter().map(|p| ("", p.name.as_str())))
        {
            return Some(d);
        }
        if let Some(m) = &self.metrics.facts {
            return first_dup(
                "scrape target",
                m.targets.iter().map(|t| ("", t.name.as_str())),
            )
            .or_else(|| {
                m.targets.iter().find_map(|t| {
                    first_dup(
                        "metric family",
                        t.families
                            .iter()
                            .map(|f| (t.name.as_str(), f.name.as_str())),
                    )
                })
            });
        }
        None
    }

    /// An empty snapshot: every source not configured.
    pub fn empty(taken_at: Timestamp) -> Self {
        Snapshot {
            schema_version: SNAPSHOT_SCHEMA_VERSION,
            taken_at,
            interval_ms: None,
            nats: Source::default(),
            postgres: Source::default(),
            kubernetes: Source::default(),
            http: Source::default(),
            metrics: Source::default(),
            ledger: Source::default(),
        }
    }

    /// A copy holding only the named sources; the others become not configured.
    /// Unknown names are ignored (the host validates them against [`SOURCE_NAMES`]).
    pub fn project(&self, sources: &[String]) -> Snapshot {
        let keep = |name: &str| sources.iter().any(|s| s == name);
        let mut out = Snapshot::empty(self.taken_at);
        out.schema_version = self.schema_version;
        out.interval_ms = self.interval_ms;
        if keep("nats") {
            out.nats = self.nats.clone();
        }
        if keep("postgres") {
            out.postgres = self.postgres.clone();
        }
        if keep("kubernetes") {
            out.kubernetes = self.kubernetes.clone();
        }
        if keep("http") {
            out.http = self.http.clone();
        }
        if keep("metrics") {
            out.metrics = self.metrics.clone();
        }
        if keep("ledger") {
            out.ledger = self.ledger.clone();
        }
        out
    }
}

/// How far a source could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceStatus {
    /// Everything asked for was read.
    Ok,
    /// Some facts were read; the gaps are marked where they are.
    Partial,
    /// Nothing could be read; `error` says why.
    Unavailable,
    /// The config names no such source.
    #[default]
    NotConfigured,
}

impl SourceStatus {
    /// As in the snapshot JSON: `ok`, `partial`, `unavailable`, `not-configured`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceStatus::Ok => "ok",
            SourceStatus::Partial => "partial",
            SourceStatus::Unavailable => "unavailable",
            SourceStatus::NotConfigured => "not-configured",
        }
    }
}

/// How one source of a snapshot went, whatever its facts' type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceState<'s> {
    /// The snapshot's field name: `nats`, `postgres`, `kubernetes`, `http`, `metrics`, `ledger`.
    pub name: &'static str,
    pub status: SourceStatus,
    pub duration_ms: Option<u64>,
    pub error: Option<&'s str>,
}

impl<T> Source<T> {
    fn state(&self, name: &'static str) -> SourceState<'_> {
        SourceState {
            name,
            status: self.status,
            duration_ms: self.duration_ms,
            error: self.error.as_deref(),
        }
    }
}

/// One fact source in a snapshot, with its own status and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Source<T> {
    pub status: SourceStatus,
    pub error: Option<String>,
    pub collected_at: Option<Timestamp>,
    pub duration_ms: Option<u64>,
    /// Present when status is ok or partial.
    pub facts: Option<T>,
}

impl<T> Default for Source<T> {
    fn default() -> Self {
        Source {
            status: SourceStatus::NotConfigured,
            error: None,
            collected_at: None,
            duration_ms: None,
            facts: None,
        }
    }
}

impl<T> Source<T> {
    pub fn ok(facts: T) -> Self {
        Source {
            status: SourceStatus::Ok,
            facts: Some(facts),
            ..Source::default()
        }
    }

    pub fn unavailable(error: impl Into<String>) -> Self {
        Source {
            status: SourceStatus::Unavailable,
            error: Some(error.into()),
            ..Source::default()
        }
    }

    /// The facts when the source was read (fully or partly), else why not.
    pub fn usable(&self, name: &str) -> Result<&T, String> {
        match (&self.status, &self.facts) {
            (SourceStatus::Ok | SourceStatus::Partial, Some(facts)) => Ok(facts),
            (SourceStatus::NotConfigured, _) => Err(format!("{name} source is not configured")),
            (SourceStatus::Unavailable, _) => Err(format!(
                "{name} source unavailable: {}",
                self.error.as_deref().unwrap_or("no reason given")
            )),
            (_, None) => Err(format!("{name} source reported no facts")),
        }
    }
}

// ---------------------------------------------------------------- NATS

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsFacts {
    /// Set when the JetStream API could not be read while the monitoring
    /// endpoint could: the cluster facts stand, the streams are unknown.
    pub error: Option<String>,
    pub server: Option<NatsServer>,
    /// From the monitoring endpoint, when one is configured.
    pub cluster: Option<NatsCluster>,
    pub streams: Vec<StreamFacts>,
    /// True only when the stream listing covered every stream (all pages, none
    /// reported missing). When false, an absent stream is unknown, not missing.
    pub streams_complete: bool,
    /// Streams the server listed as missing (e.g. no quorum) or that failed.
    pub missing_streams: Vec<String>,
    /// Streams a gate selected by name that the complete listing did not
    /// contain: known not to exist (filled by fact selection, whose output
    /// is never `streams_complete` unless it selected every stream).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub absent_streams: Vec<String>,
}

impl NatsFacts {
    pub fn stream(&self, name: &str) -> Option<&StreamFacts> {
        self.streams.iter().find(|s| s.name == name)
    }

    /// True when the stream is known not to exist: a complete listing
    /// without it that did not report it missing (or a selection that found
    /// it so). False when it exists or its existence is unknown — a stream a
    /// narrowed snapshot does not hold was not read, not absent.
    pub fn stream_absent(&self, name: &str) -> bool {
        self.stream(name).is_none()
            && !self.missing_streams.iter().any(|m| m == name)
            && (self.streams_complete || self.absent_streams.iter().any(|a| a == name))
    }

    /// The named stream, or why it cannot be used: reading it failed, it
    /// does not exist, or it was not read.
    pub fn stream_or_why(&self, name: &str) -> Result<&StreamFacts, String> {
        match self.stream(name) {
            Some(s) => match &s.error {
                Some(e) => Err(format!("stream {name}: {e}")),
                None => Ok(s),
            },
            None if self.stream_absent(name) => Err(format!("stream {name} does not exist")),
            None => Err(format!(
                "stream {name} not read: {}",
                self.error
                    .as_deref()
                    .unwrap_or("the stream listing is incomplete")
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsServer {
    pub version: Option<String>,
    pub name: Option<String>,
    pub cluster_name: Option<String>,
    pub jetstream_enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsCluster {
    /// `/healthz` and `/healthz?js-enabled-only=true` both answered 200 `ok`
    /// on every endpoint read.
    pub healthy: Option<bool>,
    /// `/varz` reports a JetStream config on every endpoint read.
    pub jetstream_enabled: Option<bool>,
    /// Why a health check failed, as the server said it.
    pub health_error: Option<String>,
    /// Set when part of the monitoring endpoint could not be read.
    pub error: Option<String>,
    pub cluster_name: Option<String>,
    pub cluster_size: Option<u64>,
    /// `None` when no meta leader is known.
    pub meta_leader: Option<String>,
    pub nodes: Vec<NatsNode>,
    pub storage_used_bytes: Option<u64>,
    pub storage_limit_bytes: Option<u64>,
    pub memory_used_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsNode {
    pub name: String,
    pub up: Option<bool>,
    pub current: Option<bool>,
    pub lag: Option<u64>,
    pub active_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamFacts {
    pub name: String,
    /// Set when this stream's info could not be read completely.
    pub error: Option<String>,
    pub config: Option<StreamConfig>,
    pub state: Option<StreamState>,
    pub cluster: Option<StreamCluster>,
    pub consumers: Vec<ConsumerFacts>,
    /// True only when every consumer of the stream was listed.
    pub consumers_complete: bool,
    /// Consumers a gate selected by name that a complete listing did not
    /// contain: known not to exist (filled by fact selection).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub absent_consumers: Vec<String>,
}

impl StreamFacts {
    pub fn consumer(&self, name: &str) -> Option<&ConsumerFacts> {
        self.consumers.iter().find(|c| c.name == name)
    }

    /// True when the consumer is known not to exist (a complete listing
    /// without it, or a selection that found it absent); false when it exists
    /// or its existence is unknown.
    pub fn consumer_absent(&self, name: &str) -> bool {
        self.consumer(name).is_none()
            && (self.consumers_complete || self.absent_consumers.iter().any(|c| c == name))
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamConfig {
    pub subjects: Vec<String>,
    /// `limits`, `interest` or `workqueue`.
    pub retention: Option<String>,
    /// `file` or `memory`.
    pub storage: Option<String>,
    pub replicas: Option<u32>,
    /// 0 means unlimited, as NATS reports it.
    pub max_age_ms: Option<u64>,
    pub max_msgs: Option<i64>,
    pub max_bytes: Option<i64>,
    pub max_msgs_per_subject: Option<i64>,
    pub max_msg_size: Option<i64>,
    /// `old` or `new`.
    pub discard: Option<String>,
    pub duplicate_window_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamState {
    pub messages: Option<u64>,
    pub bytes: Option<u64>,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    pub consumer_count: Option<u64>,
    pub num_subjects: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamCluster {
    pub name: Option<String>,
    /// `None` when the stream has no leader (no quorum).
    pub leader: Option<String>,
    pub replicas: Vec<PeerInfo>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerInfo {
    pub name: String,
    pub current: Option<bool>,
    pub offline: Option<bool>,
    pub active_ms: Option<u64>,
    pub lag: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerFacts {
    pub name: String,
    pub error: Option<String>,
    pub config: Option<ConsumerConfig>,
    pub state: Option<ConsumerState>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerConfig {
    pub durable_name: Option<String>,
    /// The one filter subject, or the several (2.10+ `filter_subjects`).
    pub filter_subjects: Vec<String>,
    /// `explicit`, `all` or `none`.
    pub ack_policy: Option<String>,
    /// `all`, `last`, `new`, `by_start_sequence`, ...
    pub deliver_policy: Option<String>,
    pub max_deliver: Option<i64>,
    pub ack_wait_ms: Option<u64>,
    pub max_ack_pending: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerState {
    pub num_pending: Option<u64>,
    pub num_ack_pending: Option<u64>,
    pub num_redelivered: Option<u64>,
    pub num_waiting: Option<u64>,
    pub delivered: Option<SequencePair>,
    pub ack_floor: Option<SequencePair>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SequencePair {
    pub consumer_seq: Option<u64>,
    pub stream_seq: Option<u64>,
    pub last_active: Option<Timestamp>,
}

// ---------------------------------------------------------------- PostgreSQL

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PostgresFacts {
    pub server_version: Option<String>,
    pub ping_ms: Option<f64>,
    pub connections_used: Option<u64>,
    pub max_connections: Option<u64>,
    pub in_recovery: Option<bool>,
    pub replay_lag_ms: Option<u64>,
    /// Named queries from config; each carries its own result or error.
    pub queries: Vec<NamedQuery>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NamedQuery {
    pub name: String,
    pub value: Option<f64>,
    pub error: Option<String>,
}

// ---------------------------------------------------------------- Kubernetes

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

// ---------------------------------------------------------------- HTTP and metrics

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpFacts {
    pub probes: Vec<HttpProbe>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpProbe {
    pub name: String,
    pub url: String,
    pub status_code: Option<u16>,
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsFacts {
    pub targets: Vec<ScrapeTarget>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ScrapeTarget {
    pub name: String,
    pub url: String,
    pub status_code: Option<u16>,
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
    pub families: Vec<MetricFamily>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricFamily {
    pub name: String,
    /// `counter`, `gauge`, `histogram`, `summary`, `untyped`.
    pub kind: String,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Sample {
    /// The sample's full name (e.g. `x_bucket` for a histogram bucket).
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Non-finite values (NaN, ±Inf) are kept as `None` with `raw` set.
    pub value: Option<f64>,
    pub raw: Option<String>,
}

// ---------------------------------------------------------------- Ledger

/// Facts Gatekeeper itself recorded: phase history, incidents, attestations.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LedgerFacts {
    pub phase_history: Vec<PhaseRecord>,
    pub incidents: Vec<Incident>,
    pub attestations: Vec<Attestation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseRecord {
    pub phase: String,
    pub verdict: crate::Decision,
    pub at: Timestamp,
    /// The same verdict was recorded until then with no gap longer than the
    /// recorder's (15 m): one record stands for the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

impl PhaseRecord {
    /// The last time this verdict is known to have held.
    pub fn last_seen(&self) -> Timestamp {
        self.until.unwrap_or(self.at).max(self.at)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub opened_at: Timestamp,
    #[serde(default)]
    pub closed_at: Option<Timestamp>,
    #[serde(default)]
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attestation {
    pub phase: String,
    pub criterion: String,
    pub by: String,
    pub at: Timestamp,
    #[serde(default)]
    pub note: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_states_name_every_source_as_the_json_does() {
        let mut snap = Snapshot::empty(Timestamp::default());
        snap.postgres = Source::unavailable("refused");
        let states = snap.source_states();
        let names: Vec<&str> = states.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "nats",
                "postgres",
                "kubernetes",
                "http",
                "metrics",
                "ledger"
            ]
        );
        assert_eq!(states[1].error, Some("refused"));
        for status in [
            SourceStatus::Ok,
            SourceStatus::Partial,
            SourceStatus::Unavailable,
            SourceStatus::NotConfigured,
        ] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }

    #[test]
    fn missing_sources_are_not_configured_and_unknown_fields_are_ignored() {
        let json = r#"{
            "schema_version": 1,
            "taken_at": "2025-10-02T17:08:59Z",
            "nats": {"status": "ok", "facts": {"streams": [{"name": "S", "future_field": 1,
                "config": {"subjects": ["a.>"], "replicas": 3, "brand_new": {"x": 1}}}],
                "streams_complete": true}},
            "tomorrow_source": {"status": "ok"}
        }"#;
        let snap: Snapshot = serde_json::from_str(json).unwrap();
        assert_eq!(snap.postgres.status, SourceStatus::NotConfigured);
        let nats = snap.nats.usable("nats").unwrap();
        let cfg = nats.stream("S").unwrap().config.as_ref().unwrap();
        assert_eq!(cfg.replicas, Some(3));
        // Not reported is None, never zero.
        assert_eq!(cfg.max_age_ms, None);
        assert_eq!(
            snap.postgres.usable("postgres").unwrap_err(),
            "postgres source is not configured"
        );
    }

    #[test]
    fn a_stream_is_absent_only_from_a_complete_listing_that_did_not_report_it_missing() {
        let mut nats = NatsFacts {
            streams: vec![StreamFacts {
                name: "S".into(),
                error: Some("no quorum".into()),
                ..Default::default()
            }],
            streams_complete: true,
            ..Default::default()
        };
        assert!(nats.stream_absent("T") && !nats.stream_absent("S"));
        assert_eq!(nats.stream_or_why("S").unwrap_err(), "stream S: no quorum");
        assert_eq!(
            nats.stream_or_why("T").unwrap_err(),
            "stream T does not exist"
        );
        nats.missing_streams = vec!["T".into()];
        assert!(!nats.stream_absent("T"));
        nats.streams_complete = false;
        nats.missing_streams.clear();
        assert!(!nats.stream_absent("T"));
        assert_eq!(
            nats.stream_or_why("T").unwrap_err(),
            "stream T not read: the stream listing is incomplete"
        );
    }

    #[test]
    fn unavailable_source_says_why() {
        let src: Source<NatsFacts> = Source::unavailable("connection refused");
        assert_eq!(
            src.usable("nats").unwrap_err(),
            "nats source unavailable: connection refused"
        );
    }

    #[test]
    fn projection_keeps_only_named_sources() {
        let mut snap = Snapshot::empty(Timestamp::default());
        snap.nats = Source::ok(NatsFacts::default());
        snap.postgres = Source::ok(PostgresFacts::default());
        let p = snap.project(&["postgres".to_owned()]);
        assert_eq!(p.nats.status, SourceStatus::NotConfigured);
        assert_eq!(p.postgres.status, SourceStatus::Ok);
    }
}
