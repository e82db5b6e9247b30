//! The snapshot: every fact the host collected at one moment, per source.
//!
//! Fields are `Option` where a server may not report them: `None` means "not
//! reported", never zero. Every struct decodes with missing fields defaulted and
//! unknown fields ignored, so older gates read newer snapshots.

use crate::Timestamp;
use serde::{Deserialize, Serialize};

mod http;
mod kubernetes;
mod ledger;
mod nats;
mod postgres;
mod prometheus;

pub use http::*;
pub use kubernetes::*;
pub use ledger::*;
pub use nats::*;
pub use postgres::*;
pub use prometheus::*;

/// The snapshot schema this crate reads and writes.
pub const SNAPSHOT_SCHEMA_VERSION: u32 = 1;

/// The fact sources a snapshot can hold, by the names gates declare.
pub const SOURCE_NAMES: [&str; 7] = [
    "nats",
    "postgres",
    "kubernetes",
    "http",
    "metrics",
    "prometheus",
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
    pub prometheus: Source<PrometheusFacts>,
    #[serde(default)]
    pub ledger: Source<LedgerFacts>,
}

impl Snapshot {
    /// Every source's status, in snapshot order (the ledger last).
    pub fn source_states(&self) -> [SourceState<'_>; 7] {
        [
            self.nats.state("nats"),
            self.postgres.state("postgres"),
            self.kubernetes.state("kubernetes"),
            self.http.state("http"),
            self.metrics.state("metrics"),
            self.prometheus.state("prometheus"),
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
        if let Some(p) = &self.prometheus.facts
            && let Some(d) = first_dup(
                "prometheus query",
                p.queries.iter().map(|q| ("", q.name.as_str())),
            )
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
            prometheus: Source::default(),
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
        if keep("prometheus") {
            out.prometheus = self.prometheus.clone();
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
    /// The snapshot's field name: `nats`, `postgres`, `kubernetes`, `http`, `metrics`, `prometheus`, `ledger`.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A recording is replayed from its JSON: every measured float must
    /// come back bit for bit, or the replayed snapshot's digest (and a
    /// gate's reading) differs from the live one. serde_json's default
    /// parser is off by one ulp for about one float in eight; the
    /// workspace enables `float_roundtrip`.
    #[test]
    fn measured_floats_survive_a_recording_bit_for_bit() {
        let mut snap = Snapshot::empty(Timestamp::default());
        snap.postgres = Source::ok(PostgresFacts {
            ping_ms: Some(385.668_291_941_494_43),
            ..PostgresFacts::default()
        });
        let json = serde_json::to_string(&snap).unwrap();
        let back: Snapshot = serde_json::from_str(&json).unwrap();
        let ping = back.postgres.facts.unwrap().ping_ms.unwrap();
        assert_eq!(ping.to_bits(), 385.668_291_941_494_43f64.to_bits());
    }

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
                "prometheus",
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
