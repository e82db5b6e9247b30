//! Fail-closed, proven by property rather than by example: for every
//! built-in gate of the example config and every one of its phases, taking
//! information away never improves the outcome — no criterion goes
//! fail→pass or unknown→pass, no gate and no phase goes to go from anything
//! else, and no trigger appears that was not there. And the decoders
//! (snapshots and recordings, config, gate output, the sanitizer) never
//! panic on random or mutated input.
//!
//! CI runs a bounded number of cases from a fixed seed. Run longer with
//! `PROPTEST_CASES=5000 cargo nextest run -p gatekeeper --test properties`
//! (and another `PROPTEST_RNG_SEED=<n>` for other cases).

use gatekeeper::config::{Config, ProcessEnv};
use gatekeeper::gate_set::GateSet;
use gatekeeper::verdict::PhaseReport;
use gatekeeper_model::{
    Attestation, ConfigMapFacts, ConsumerConfig, ConsumerFacts, ConsumerState, Criterion,
    CriterionStatus, Decision, DeploymentFacts, Evaluation, HttpFacts, HttpProbe, KubernetesFacts,
    LedgerFacts, LogPatternCount, MetricFamily, MetricsFacts, NamedQuery, NatsCluster, NatsFacts,
    NatsNode, NatsServer, PhaseRecord, PodFacts, PostgresFacts, Sample, ScrapeTarget, Severity,
    Snapshot, Source, SourceStatus, StreamConfig, StreamFacts, StreamState, Timestamp, Trigger,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunConfig, RngAlgorithm, TestRng, TestRunner};
use rand::SeedableRng;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

/// Cases per property in CI (`PROPTEST_CASES` overrides).
const CI_CASES: u32 = 96;
/// The fixed seed CI runs from (`PROPTEST_RNG_SEED` overrides).
const CI_SEED: u64 = 0x6761_7465_6b65_6570;

fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CI_CASES);
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CI_SEED);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(
        RunConfig {
            cases,
            failure_persistence: None,
            ..RunConfig::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

struct Example {
    config: Config,
    gates: GateSet,
}

fn example() -> &'static Example {
    static EXAMPLE: OnceLock<Example> = OnceLock::new();
    EXAMPLE.get_or_init(|| {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/athlete-ally/gatekeeper.toml");
        let mut config = Config::load(&path, None, &ProcessEnv).expect("the example loads");
        config.runtime.cache = Some(false);
        let gates = GateSet::load_checked(&config).expect("the example's gates load");
        Example { config, gates }
    })
}

// ---------------------------------------------------------------- the world

const STREAMS: [&str; 5] = [
    "ATHLETE_ALLY_EVENTS",
    "AA_CORE_HOT",
    "AA_VENDOR_HOT",
    "AA_DLQ",
    "OTHER",
];

/// Snapshots of a world around the seeds' migration, a minute apart (the
/// last is current), from `seed`: every source the example reads, with
/// values near the example's thresholds so criteria land on every side.
fn world(seed: u64, samples: usize) -> Vec<Snapshot> {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let t0: Timestamp = "2025-10-02T17:00:00Z".parse().unwrap();
    let present: Vec<bool> = STREAMS.iter().map(|_| rng.random_bool(0.85)).collect();
    let subjects: Vec<Vec<String>> = STREAMS
        .iter()
        .map(|s| {
            let v: &[&[&str]] = match *s {
                "ATHLETE_ALLY_EVENTS" => {
                    &[&["legacy.>"], &["athlete-ally.>", "vendor.>", "sleep.*"]]
                }
                "AA_CORE_HOT" => &[&["athlete-ally.>", "sleep.*"], &["athlete-ally.>"]],
                "AA_VENDOR_HOT" => &[&["vendor.>"], &["vendor.oura.>"]],
                "AA_DLQ" => &[&["dlq.>"], &["dlq.x"]],
                _ => &[&["other.>"], &["vendor.x"]],
            };
            v[rng.random_range(0..v.len())]
                .iter()
                .map(|x| (*x).to_owned())
                .collect()
        })
        .collect();
    let mut last_seq: Vec<u64> = STREAMS.iter().map(|_| rng.random_range(0..100)).collect();
    let mut counters = [rng.random_range(0.0..100.0f64); 3];
    let mut buckets = [0.0f64; 4];
    let mut out = Vec::new();
    for i in 0..samples {
        let at = t0 + chrono::Duration::minutes(i as i64);
        let mut s = Snapshot::empty(at);
        // As the host declares it for every series it collects.
        s.interval_ms = Some(60_000);
        for seq in last_seq.iter_mut() {
            *seq = if rng.random_bool(0.05) {
                rng.random_range(0..5)
            } else {
                *seq + rng.random_range(0..25)
            };
        }
        let streams = STREAMS
            .iter()
            .enumerate()
            .filter(|(k, _)| present[*k])
            .map(|(k, name)| StreamFacts {
                name: (*name).to_owned(),
                error: None,
                config: Some(StreamConfig {
                    subjects: subjects[k].clone(),
                    retention: Some("limits".into()),
                    storage: Some(
                        if rng.random_bool(0.9) {
                            "file"
                        } else {
                            "memory"
                        }
                        .into(),
                    ),
                    replicas: Some(if rng.random_bool(0.8) { 1 } else { 3 }),
                    max_age_ms: Some(
                        [48 * 3_600_000u64, 14 * 86_400_000, 86_400_000][rng.random_range(0..3)],
                    ),
                    ..StreamConfig::default()
                }),
                state: Some(StreamState {
                    messages: Some(rng.random_range(0..70)),
                    last_seq: Some(last_seq[k]),
                    first_seq: Some(1),
                    ..StreamState::default()
                }),
                cluster: None,
                consumers: consumers_of(name, &mut rng),
                consumers_complete: rng.random_bool(0.9),
                absent_consumers: vec![],
            })
            .collect();
        s.nats = Source::ok(NatsFacts {
            error: None,
            server: Some(NatsServer {
                version: Some("2.10.22".into()),
                name: Some("n1".into()),
                cluster_name: None,
                jetstream_enabled: Some(true),
            }),
            cluster: Some(NatsCluster {
                healthy: Some(rng.random_bool(0.9)),
                jetstream_enabled: Some(true),
                meta_leader: Some("n1".into()),
                nodes: vec![NatsNode {
                    name: "n1".into(),
                    up: Some(rng.random_bool(0.9)),
                    current: Some(true),
                    lag: Some(0),
                    active_ms: Some(10),
                }],
                storage_used_bytes: Some(rng.random_range(0..100)),
                storage_limit_bytes: Some(100),
                ..NatsCluster::default()
            }),
            streams,
            streams_complete: rng.random_bool(0.9),
            missing_streams: vec![],
            absent_streams: vec![],
        });
        s.postgres = Source::ok(PostgresFacts {
            server_version: Some("15".into()),
            ping_ms: Some(rng.random_range(1.0..80.0)),
            connections_used: Some(rng.random_range(1..100)),
            max_connections: Some(100),
            in_recovery: Some(false),
            replay_lag_ms: None,
            queries: vec![
                query("hrv-rows-10m", rng.random_range(0..4) as f64),
                query("hrv-test-row-1h", rng.random_range(0..2) as f64),
            ],
        });
        s.http = Source::ok(HttpFacts {
            probes: ["ingest-health", "normalize-health"]
                .iter()
                .map(|name| HttpProbe {
                    name: (*name).to_owned(),
                    url: format!("http://{name}/health"),
                    status_code: Some(if rng.random_bool(0.85) { 200 } else { 503 }),
                    latency_ms: Some(rng.random_range(1.0..50.0)),
                    error: None,
                })
                .collect(),
        });
        for c in counters.iter_mut() {
            *c += rng.random_range(0.0..30.0f64).floor();
        }
        for (b, x) in buckets.iter_mut().enumerate() {
            *x += rng.random_range(0.0..10.0f64).floor() * (b as f64 + 1.0);
        }
        let running: Vec<f64> = buckets
            .iter()
            .scan(0.0, |acc, b| {
                *acc += b;
                Some(*acc)
            })
            .collect();
        s.metrics = Source::ok(MetricsFacts {
            targets: vec![ScrapeTarget {
                name: "normalize".into(),
                url: "http://normalize/metrics".into(),
                status_code: Some(200),
                latency_ms: Some(3.0),
                error: None,
                families: vec![
                    MetricFamily {
                        name: "normalize_hrv_messages_total".into(),
                        kind: "counter".into(),
                        samples: ["success", "error", "dlq"]
                            .iter()
                            .zip(counters)
                            .map(|(result, v)| {
                                sample(
                                    "normalize_hrv_messages_total",
                                    &[("result", result), ("stream", "AA_CORE_HOT")],
                                    v,
                                )
                            })
                            .collect(),
                    },
                    MetricFamily {
                        name: "normalize_hrv_processing_duration_seconds".into(),
                        kind: "histogram".into(),
                        samples: ["0.1", "0.5", "1", "+Inf"]
                            .iter()
                            .zip(running)
                            .map(|(le, v)| {
                                sample(
                                    "normalize_hrv_processing_duration_seconds_bucket",
                                    &[("le", le)],
                                    v,
                                )
                            })
                            .collect(),
                    },
                ],
            }],
        });
        s.kubernetes = Source::ok(KubernetesFacts {
            namespaces: vec!["staging".into()],
            errors: vec![],
            deployments: ["normalize-service", "ingest-service"]
                .iter()
                .map(|d| DeploymentFacts {
                    namespace: "staging".into(),
                    name: (*d).to_owned(),
                    replicas: Some(2),
                    available_replicas: Some(rng.random_range(1..3)),
                    rollout: Some("complete".into()),
                    ..DeploymentFacts::default()
                })
                .collect(),
            pods: ["normalize-1", "ingest-1"]
                .iter()
                .map(|p| PodFacts {
                    namespace: "staging".into(),
                    name: (*p).to_owned(),
                    labels: BTreeMap::new(),
                    phase: Some("Running".into()),
                    ready: Some(true),
                    restart_count: Some(rng.random_range(0..3)),
                    waiting_reasons: if rng.random_bool(0.1) {
                        vec!["CrashLoopBackOff".into()]
                    } else {
                        vec![]
                    },
                    last_termination_reasons: vec![],
                })
                .collect(),
            config_maps: vec![ConfigMapFacts {
                namespace: "staging".into(),
                name: "event-bus-config".into(),
                exists: Some(true),
                data: BTreeMap::new(),
                error: None,
            }],
            log_patterns: ["no-hrv-consumer", "next-candidate"]
                .iter()
                .map(|n| LogPatternCount {
                    name: (*n).to_owned(),
                    pattern: "x".into(),
                    selector: "app=normalize-service".into(),
                    window_ms: Some(300_000),
                    matches: Some(if rng.random_bool(0.15) { 1 } else { 0 }),
                    pods_read: Some(1),
                    error: None,
                })
                .collect(),
        });
        s.ledger = Source::ok(LedgerFacts {
            phase_history: ["phase-0", "phase-1", "phase-2"]
                .iter()
                .map(|p| PhaseRecord {
                    phase: (*p).to_owned(),
                    verdict: if rng.random_bool(0.7) {
                        Decision::Go
                    } else {
                        Decision::NoGo
                    },
                    at: at - chrono::Duration::hours(rng.random_range(1..60)),
                    until: Some(at - chrono::Duration::minutes(rng.random_range(0..20))),
                })
                .collect(),
            incidents: vec![],
            attestations: attestations(&mut rng, at),
        });
        out.push(s);
    }
    out
}

/// A random part of the attestations the example asks for.
fn attestations(rng: &mut rand::rngs::SmallRng, at: Timestamp) -> Vec<Attestation> {
    let mut out = Vec::new();
    for (phase, criterion) in ATTESTATIONS {
        if rng.random_bool(0.6) {
            out.push(Attestation {
                phase: (*phase).to_owned(),
                criterion: (*criterion).to_owned(),
                by: "alice".into(),
                at: at - chrono::Duration::minutes(rng.random_range(0..120)),
                note: None,
            });
        }
    }
    out
}

/// Attestations the example's ledger gates ask for.
const ATTESTATIONS: &[(&str, &str)] = &[
    ("phase-0", "no-recent-deployment"),
    ("phase-0", "no-active-alerts"),
    ("phase-0", "team-notified"),
    ("phase-0", "platform-lead-approval"),
    ("phase-1", "vendor-webhook-verified"),
    ("phase-1", "staging-verified"),
    ("phase-1", "platform-lead-approval"),
    ("phase-1", "backend-lead-approval"),
    ("phase-2", "on-call-available"),
    ("phase-2", "platform-lead-approval"),
];

fn consumers_of(stream: &str, rng: &mut rand::rngs::SmallRng) -> Vec<ConsumerFacts> {
    let names: &[&str] = match stream {
        "ATHLETE_ALLY_EVENTS" => &["normalize-hrv-durable", "normalize-oura"],
        "AA_CORE_HOT" => &["normalize-hrv-durable"],
        "AA_VENDOR_HOT" => &["normalize-oura"],
        _ => &[],
    };
    let kept: Vec<&&str> = names.iter().filter(|_| rng.random_bool(0.9)).collect();
    kept.into_iter()
        .map(|name| ConsumerFacts {
            name: (*name).to_owned(),
            error: None,
            config: Some(ConsumerConfig {
                durable_name: Some((*name).to_owned()),
                filter_subjects: vec![if *name == "normalize-oura" {
                    "vendor.oura.>".into()
                } else {
                    "athlete-ally.hrv.raw-received".into()
                }],
                ack_policy: Some("explicit".into()),
                deliver_policy: Some("all".into()),
                max_deliver: Some(if rng.random_bool(0.9) { 5 } else { 3 }),
                ack_wait_ms: Some(60_000),
                max_ack_pending: Some(1000),
            }),
            state: Some(ConsumerState {
                num_pending: Some([0, 0, 5, 20, 150][rng.random_range(0..5)]),
                num_ack_pending: Some(0),
                ..ConsumerState::default()
            }),
        })
        .collect()
}

fn query(name: &str, value: f64) -> NamedQuery {
    NamedQuery {
        name: name.into(),
        value: Some(value),
        error: None,
    }
}

fn sample(name: &str, labels: &[(&str, &str)], value: f64) -> Sample {
    Sample {
        name: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        value: Some(value),
        raw: None,
    }
}

// ---------------------------------------------------------------- taking information away

/// One way to know less. `at` picks the snapshot (modulo their number; the
/// last is current), `k` the thing in it.
#[derive(Debug, Clone)]
enum Loss {
    SourceUnavailable { at: usize, k: usize },
    SourcePartial { at: usize, k: usize },
    StreamNotRead { at: usize, k: usize },
    StreamMissing { at: usize, k: usize },
    StreamErrored { at: usize, k: usize },
    ListingIncomplete { at: usize },
    ConsumerNotRead { at: usize, k: usize },
    ConsumersIncomplete { at: usize, k: usize },
    FieldNotReported { at: usize, k: usize },
    QueryNotRead { at: usize, k: usize },
    ProbeNotRead { at: usize, k: usize },
    TargetNotRead { at: usize },
    SampleNotRead { at: usize, k: usize },
    LogPatternNotRead { at: usize, k: usize },
    KubernetesPartial { at: usize },
    NodeUnknown { at: usize },
    HistorySampleDropped { k: usize },
}

fn loss() -> impl Strategy<Value = Loss> {
    let at = 0usize..8;
    let k = 0usize..16;
    prop_oneof![
        (at.clone(), k.clone()).prop_map(|(at, k)| Loss::SourceUnavailable { at, k }),
        (at.clone(), k.clone()).prop_map(|(at, k)| Loss::SourcePartial { at, k }),
        (at.clone(), k.clone()).prop_map(|(at, k)| Loss::StreamNotRead { at, k }),
        (at.clone(), k.clone()).prop_map(|(at, k)| Loss::StreamMissing { at, k }),
        (at.clone(), k.clone()).prop_map(|(at, k)| Loss::StreamErrored { at, k }),
        at.clone().prop_map(|at| Loss::ListingIncomplete { at }),
        (at.clone(), k.clone()).prop_map(|(at, k)| Loss::ConsumerNotRead { at, k }),
        (at.clone(), k.clone()).prop_map(|(at, k)| Loss::ConsumersIncomplete { at, k }),
        (at.clone(), k.clone()).prop_map(|(at, k)| Loss::FieldNotReported { at, k }),
        (at.clone(), k.clone()).prop_map(|(at, k)| Loss::QueryNotRead { at, k }),
        (at.clone(), k.clone()).prop_map(|(at, k)| Loss::ProbeNotRead { at, k }),
        at.clone().prop_map(|at| Loss::TargetNotRead { at }),
        (at.clone(), k.clone()).prop_map(|(at, k)| Loss::SampleNotRead { at, k }),
        (at.clone(), k.clone()).prop_map(|(at, k)| Loss::LogPatternNotRead { at, k }),
        at.clone().prop_map(|at| Loss::KubernetesPartial { at }),
        at.prop_map(|at| Loss::NodeUnknown { at }),
        k.prop_map(|k| Loss::HistorySampleDropped { k }),
    ]
}

fn pick<T>(v: &mut [T], k: usize) -> Option<&mut T> {
    let n = v.len();
    (n > 0).then(|| &mut v[k % n])
}

fn unavailable<T>(s: &mut Source<T>) {
    *s = Source::unavailable("taken away by the property test");
}

/// Applies one loss to `snaps` (oldest first, the last current).
fn apply(snaps: &mut Vec<Snapshot>, loss: &Loss) {
    use Loss::*;
    if let HistorySampleDropped { k } = loss {
        if snaps.len() > 1 {
            let i = k % (snaps.len() - 1);
            snaps.remove(i);
        }
        return;
    }
    let at = match loss {
        SourceUnavailable { at, .. }
        | SourcePartial { at, .. }
        | StreamNotRead { at, .. }
        | StreamMissing { at, .. }
        | StreamErrored { at, .. }
        | ListingIncomplete { at }
        | ConsumerNotRead { at, .. }
        | ConsumersIncomplete { at, .. }
        | FieldNotReported { at, .. }
        | QueryNotRead { at, .. }
        | ProbeNotRead { at, .. }
        | TargetNotRead { at }
        | SampleNotRead { at, .. }
        | LogPatternNotRead { at, .. }
        | KubernetesPartial { at }
        | NodeUnknown { at } => *at,
        HistorySampleDropped { .. } => unreachable!(),
    };
    let n = snaps.len();
    let s = &mut snaps[n - 1 - at % n];
    match loss {
        SourceUnavailable { k, .. } => match k % 6 {
            0 => unavailable(&mut s.nats),
            1 => unavailable(&mut s.postgres),
            2 => unavailable(&mut s.kubernetes),
            3 => unavailable(&mut s.http),
            4 => unavailable(&mut s.metrics),
            _ => unavailable(&mut s.ledger),
        },
        SourcePartial { k, .. } => {
            let status = SourceStatus::Partial;
            match k % 6 {
                0 => s.nats.status = status,
                1 => s.postgres.status = status,
                2 => s.kubernetes.status = status,
                3 => s.http.status = status,
                4 => s.metrics.status = status,
                _ => s.ledger.status = status,
            }
        }
        StreamNotRead { k, .. } => {
            if let Some(n) = s.nats.facts.as_mut()
                && !n.streams.is_empty()
            {
                let i = k % n.streams.len();
                n.streams.remove(i);
                n.streams_complete = false;
            }
        }
        StreamMissing { k, .. } => {
            if let Some(n) = s.nats.facts.as_mut()
                && !n.streams.is_empty()
            {
                let gone = n.streams.remove(k % n.streams.len());
                n.missing_streams.push(gone.name);
                n.streams_complete = false;
            }
        }
        StreamErrored { k, .. } => {
            if let Some(st) = s.nats.facts.as_mut().and_then(|n| pick(&mut n.streams, *k)) {
                st.error = Some("taken away".into());
                st.state = None;
                st.consumers.clear();
                st.consumers_complete = false;
            }
        }
        ListingIncomplete { .. } => {
            if let Some(n) = s.nats.facts.as_mut() {
                n.streams_complete = false;
            }
        }
        ConsumerNotRead { k, .. } => {
            if let Some(st) = s.nats.facts.as_mut().and_then(|n| pick(&mut n.streams, *k))
                && !st.consumers.is_empty()
            {
                let i = (k / 4) % st.consumers.len();
                st.consumers.remove(i);
                st.consumers_complete = false;
            }
        }
        ConsumersIncomplete { k, .. } => {
            if let Some(st) = s.nats.facts.as_mut().and_then(|n| pick(&mut n.streams, *k)) {
                st.consumers_complete = false;
            }
        }
        FieldNotReported { k, .. } => {
            let Some(n) = s.nats.facts.as_mut() else {
                return;
            };
            let Some(st) = pick(&mut n.streams, *k) else {
                return;
            };
            match (k / 5) % 5 {
                0 => {
                    if let Some(state) = st.state.as_mut() {
                        state.messages = None;
                    }
                }
                1 => {
                    if let Some(state) = st.state.as_mut() {
                        state.last_seq = None;
                    }
                }
                2 => {
                    if let Some(c) = st.config.as_mut() {
                        c.replicas = None;
                        c.max_age_ms = None;
                    }
                }
                3 => {
                    if let Some(c) = pick(&mut st.consumers, *k)
                        && let Some(state) = c.state.as_mut()
                    {
                        state.num_pending = None;
                    }
                }
                _ => {
                    if let Some(c) = pick(&mut st.consumers, *k)
                        && let Some(config) = c.config.as_mut()
                    {
                        config.max_deliver = None;
                    }
                }
            }
        }
        QueryNotRead { k, .. } => {
            if let Some(q) = s
                .postgres
                .facts
                .as_mut()
                .and_then(|p| pick(&mut p.queries, *k))
            {
                q.value = None;
                q.error = Some("taken away".into());
            }
        }
        ProbeNotRead { k, .. } => {
            if let Some(p) = s.http.facts.as_mut().and_then(|h| pick(&mut h.probes, *k)) {
                p.status_code = None;
                p.latency_ms = None;
                p.error = Some("taken away".into());
            }
        }
        TargetNotRead { .. } => {
            if let Some(t) = s
                .metrics
                .facts
                .as_mut()
                .and_then(|m| pick(&mut m.targets, 0))
            {
                t.status_code = None;
                t.error = Some("taken away".into());
                t.families.clear();
            }
        }
        SampleNotRead { k, .. } => {
            if let Some(f) = s
                .metrics
                .facts
                .as_mut()
                .and_then(|m| pick(&mut m.targets, 0))
                .and_then(|t| pick(&mut t.families, *k))
                && let Some(x) = pick(&mut f.samples, k / 2)
            {
                x.value = None;
                x.raw = Some("NaN".into());
            }
        }
        LogPatternNotRead { k, .. } => {
            if let Some(l) = s
                .kubernetes
                .facts
                .as_mut()
                .and_then(|f| pick(&mut f.log_patterns, *k))
            {
                l.matches = None;
                l.error = Some("taken away".into());
            }
        }
        KubernetesPartial { .. } => {
            s.kubernetes.status = SourceStatus::Partial;
            if let Some(f) = s.kubernetes.facts.as_mut() {
                f.errors.push("pods: taken away".into());
                f.pods.clear();
            }
        }
        NodeUnknown { .. } => {
            if let Some(node) = s
                .nats
                .facts
                .as_mut()
                .and_then(|n| n.cluster.as_mut())
                .and_then(|c| pick(&mut c.nodes, 0))
            {
                node.up = None;
            }
        }
        HistorySampleDropped { .. } => unreachable!(),
    }
}

// ---------------------------------------------------------------- the property

fn rank(s: CriterionStatus) -> u8 {
    match s {
        CriterionStatus::Fail => 0,
        CriterionStatus::Unknown => 1,
        CriterionStatus::Pass => 2,
    }
}

fn evaluate(snaps: &[Snapshot]) -> Vec<PhaseReport> {
    let ex = example();
    let (current, history) = snaps.split_last().expect("a snapshot");
    ex.config
        .phases
        .iter()
        .map(|(name, phase)| ex.gates.evaluate(name, &phase.gates, current, history))
        .collect()
}

/// What got better with less information, if anything.
fn improvements(before: &[PhaseReport], after: &[PhaseReport]) -> Vec<String> {
    let mut out = Vec::new();
    for (b, a) in before.iter().zip(after) {
        if b.verdict != Decision::Go && a.verdict == Decision::Go {
            out.push(format!("phase {}: {} → go", b.phase, b.verdict));
        }
        for (gb, ga) in b.gates.iter().zip(&a.gates) {
            if gb.verdict.as_str() != "go" && ga.verdict.as_str() == "go" {
                out.push(format!(
                    "phase {} gate {}: {} → go",
                    b.phase,
                    gb.name,
                    gb.verdict.as_str()
                ));
            }
            let was: BTreeMap<&str, CriterionStatus> = gb
                .criteria
                .iter()
                .map(|c| (c.id.as_str(), c.status))
                .collect();
            for c in &ga.criteria {
                let before = was.get(c.id.as_str()).copied();
                if c.status == CriterionStatus::Pass
                    && before.is_none_or(|s| rank(s) < rank(CriterionStatus::Pass))
                {
                    out.push(format!(
                        "phase {} gate {} criterion {}: {} → pass ({})",
                        b.phase,
                        gb.name,
                        c.id,
                        before.map_or("absent", CriterionStatus::as_str),
                        c.message
                    ));
                }
            }
            let fired: BTreeSet<&str> = gb.triggers.iter().map(|t| t.id.as_str()).collect();
            for t in &ga.triggers {
                if !fired.contains(t.id.as_str()) {
                    out.push(format!(
                        "phase {} gate {}: trigger {} appeared",
                        b.phase, gb.name, t.id
                    ));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn taking_information_away_never_improves_the_outcome() {
    let strategy = (
        any::<u64>(),
        1usize..7,
        proptest::collection::vec(loss(), 1..5),
    );
    let result = runner().run(&strategy, |(seed, samples, losses)| {
        let full = world(seed, samples);
        let mut less = full.clone();
        for l in &losses {
            apply(&mut less, l);
        }
        let got = improvements(&evaluate(&full), &evaluate(&less));
        prop_assert!(
            got.is_empty(),
            "taking away {losses:?} improved:\n  {}\n\nsnapshots with all the information:\n{}\n\nwith less:\n{}",
            got.join("\n  "),
            serde_json::to_string(&serde_json::json!({ "snapshots": full })).unwrap(),
            serde_json::to_string(&serde_json::json!({ "snapshots": less })).unwrap(),
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// The shipped recordings too, with every single loss at every position.
#[test]
fn the_shipped_recordings_never_improve_with_less() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/athlete-ally/snapshots");
    for file in [
        "staging-before-migration.json",
        "staging-after-cutover.json",
        "staging-after-cutover.recording.json",
        "nats-down.json",
    ] {
        let rec = gatekeeper::recording::read_recording(&dir.join(file), 1 << 30).unwrap();
        let full: Vec<Snapshot> = rec
            .history
            .iter()
            .cloned()
            .chain([rec.current.clone()])
            .collect();
        let before = evaluate(&full);
        let mut runner = runner();
        let result = runner.run(&proptest::collection::vec(loss(), 1..3), |losses| {
            let mut less = full.clone();
            for l in &losses {
                apply(&mut less, l);
            }
            let got = improvements(&before, &evaluate(&less));
            prop_assert!(
                got.is_empty(),
                "{file}: taking away {losses:?} improved:\n  {}",
                got.join("\n  ")
            );
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }
}

// ---------------------------------------------------------------- decoders

fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut out = base.to_vec();
    for (pos, kind, byte) in edits {
        if out.is_empty() {
            out.push(*byte);
            continue;
        }
        let i = pos % out.len();
        match kind % 4 {
            0 => out[i] = *byte,
            1 => {
                out.remove(i);
            }
            2 => out.insert(i, *byte),
            _ => out.truncate(i),
        }
    }
    out
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..8)
}

/// Snapshots and recordings: random bytes and mutated examples give a
/// recording or an error, never a panic.
#[test]
fn the_snapshot_decoder_never_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/athlete-ally/snapshots");
    let bases: Vec<Vec<u8>> = [
        "staging-after-cutover.json",
        "staging-after-cutover.recording.json",
        "nats-down.json",
    ]
    .iter()
    .map(|f| std::fs::read(dir.join(f)).unwrap())
    .collect();
    let strategy = (
        0..bases.len(),
        edits(),
        proptest::collection::vec(any::<u8>(), 0..64),
    );
    runner()
        .run(&strategy, |(b, edits, noise)| {
            let mutated = mutate(&bases[b], &edits);
            let _ = gatekeeper::recording::parse_recording(&mutated);
            let _ = gatekeeper::recording::parse_recording(&noise);
            Ok(())
        })
        .unwrap();
}

/// Configs: mutated example configs load or give an error, never a panic.
#[test]
fn the_config_loader_never_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/athlete-ally");
    let bases: Vec<Vec<u8>> = ["gatekeeper.toml", "topology.toml"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    runner()
        .run(&(0..bases.len(), edits()), |(b, edits)| {
            let mutated = mutate(&bases[b], &edits);
            let text = String::from_utf8_lossy(&mutated);
            for profile in [None, Some("production"), Some("nope")] {
                let _ = Config::parse(&text, "mutated.toml", profile);
            }
            Ok(())
        })
        .unwrap();
}

fn status() -> impl Strategy<Value = CriterionStatus> {
    prop_oneof![
        Just(CriterionStatus::Pass),
        Just(CriterionStatus::Fail),
        Just(CriterionStatus::Unknown),
    ]
}

/// Gate output: the validator never panics and never lets a decision through
/// that the criteria do not imply; the sanitizer always gives one inert line.
#[test]
fn the_output_validator_and_sanitizer_hold_on_anything() {
    let text = ".{0,40}";
    let criterion =
        (text, text, status(), text).prop_map(|(id, title, status, message)| Criterion {
            status,
            ..Criterion::pass(&id, &title, message)
        });
    let trigger = (text, any::<bool>(), text).prop_map(|(id, auto, reason)| Trigger {
        id,
        severity: if auto {
            Severity::Automatic
        } else {
            Severity::Manual
        },
        reason,
        since: None,
    });
    let decision = prop_oneof![
        Just(Decision::Go),
        Just(Decision::NoGo),
        Just(Decision::Defer)
    ];
    let strategy = (
        decision,
        proptest::collection::vec(criterion, 0..6),
        proptest::collection::vec(trigger, 0..4),
    );
    runner()
        .run(&strategy, |(decision, criteria, triggers)| {
            let e = Evaluation {
                decision,
                criteria,
                triggers,
            };
            let problems = e.problems();
            if problems.is_empty() {
                prop_assert_eq!(e.decision, Evaluation::derived_decision(&e.criteria));
            }
            for c in &e.criteria {
                let shown = gatekeeper::text::untrusted_line(&c.message);
                prop_assert!(!shown.chars().any(|ch| ch.is_control()), "{shown:?}");
            }
            Ok(())
        })
        .unwrap();
}
