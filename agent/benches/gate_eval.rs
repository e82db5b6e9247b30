//! One gate evaluation in the sandbox vs the same gate logic natively, on a
//! snapshot of 50 streams and 200 consumers; plus compile and cached load.
//!
//! cargo bench -p gatekeeper --bench gate_eval

use criterion::{Criterion, criterion_group, criterion_main};
use gate_stream_topology::StreamTopology;
use gatekeeper::builtin::builtin_gate;
use gatekeeper::runtime::{
    EvaluationInput, EvaluationLimits, GateRuntime, LoadedGate, RuntimeOptions,
};
use gatekeeper_gate_sdk::Gate;
use gatekeeper_model::*;
use std::hint::black_box;

/// 50 streams (the seed's four among them), 4 consumers each.
fn big_snapshot() -> Snapshot {
    let taken_at = parse_timestamp("2025-10-02T17:10:00Z").unwrap();
    let mut streams = Vec::new();
    let named = [
        ("AA_CORE_HOT", vec!["athlete-ally.>", "sleep.*"], 48),
        ("AA_VENDOR_HOT", vec!["vendor.>"], 48),
        ("AA_DLQ", vec!["dlq.>"], 336),
        ("ATHLETE_ALLY_EVENTS", vec!["legacy.>"], 24),
    ];
    for i in 0..50 {
        let (name, subjects, hours) = match named.get(i) {
            Some((n, s, h)) => (n.to_string(), s.iter().map(|s| s.to_string()).collect(), *h),
            None => (
                format!("TENANT_{i:02}_EVENTS"),
                vec![format!("tenant{i}.>"), format!("audit{i}.*")],
                72,
            ),
        };
        let consumers = (0..4)
            .map(|c| ConsumerFacts {
                name: format!("worker-{c}"),
                error: None,
                config: Some(ConsumerConfig {
                    durable_name: Some(format!("worker-{c}")),
                    filter_subjects: vec![format!("{}.{c}", subjects[0].trim_end_matches(".>"))],
                    ack_policy: Some("explicit".into()),
                    deliver_policy: Some("all".into()),
                    max_deliver: Some(5),
                    ack_wait_ms: Some(60_000),
                    max_ack_pending: Some(1000),
                }),
                state: Some(ConsumerState {
                    num_pending: Some(c),
                    num_ack_pending: Some(0),
                    num_redelivered: Some(0),
                    num_waiting: Some(1),
                    delivered: Some(SequencePair {
                        consumer_seq: Some(1000),
                        stream_seq: Some(1000),
                        last_active: Some(taken_at),
                    }),
                    ack_floor: Some(SequencePair {
                        consumer_seq: Some(1000),
                        stream_seq: Some(1000),
                        last_active: Some(taken_at),
                    }),
                }),
            })
            .collect();
        streams.push(StreamFacts {
            name,
            error: None,
            config: Some(StreamConfig {
                subjects,
                retention: Some("limits".into()),
                storage: Some("file".into()),
                replicas: Some(3),
                max_age_ms: Some(hours * 3_600_000),
                max_msgs: Some(-1),
                max_bytes: Some(-1),
                max_msgs_per_subject: Some(-1),
                max_msg_size: Some(-1),
                discard: Some("old".into()),
                duplicate_window_ms: Some(120_000),
            }),
            state: Some(StreamState {
                messages: Some(10_000 + i as u64),
                bytes: Some(2_000_000),
                first_seq: Some(1),
                last_seq: Some(10_000),
                first_ts: Some(taken_at),
                last_ts: Some(taken_at),
                consumer_count: Some(4),
                num_subjects: Some(12),
            }),
            cluster: Some(StreamCluster {
                name: Some("c1".into()),
                leader: Some("n1".into()),
                replicas: vec![
                    PeerInfo {
                        name: "n2".into(),
                        current: Some(true),
                        offline: Some(false),
                        active_ms: Some(12),
                        lag: Some(0),
                    },
                    PeerInfo {
                        name: "n3".into(),
                        current: Some(true),
                        offline: Some(false),
                        active_ms: Some(9),
                        lag: Some(0),
                    },
                ],
            }),
            consumers,
            consumers_complete: true,
            absent_consumers: Vec::new(),
        });
    }
    let mut snap = Snapshot::empty(taken_at);
    snap.nats = Source::ok(NatsFacts {
        streams,
        streams_complete: true,
        ..Default::default()
    });
    snap
}

fn params() -> String {
    serde_json::json!({"streams": [
        {"name": "AA_CORE_HOT", "id": "core-stream-ready", "subjects": ["athlete-ally.>", "sleep.*"], "max_age": "48h", "replicas": 3, "storage": "file"},
        {"name": "AA_VENDOR_HOT", "id": "vendor-stream-ready", "subjects": ["vendor.>"], "max_age": "48h", "replicas": 3, "storage": "file"},
        {"name": "AA_DLQ", "id": "dlq-stream-ready", "subjects": ["dlq.>"], "max_age": "14d", "replicas": 3, "storage": "file"}
    ]})
    .to_string()
}

/// The built-in gate, loaded uncached, with the pooling or on-demand allocator.
fn load_gate(pooling: bool) -> LoadedGate {
    let runtime = GateRuntime::new(RuntimeOptions {
        cache_dir: None,
        pooling,
        ..RuntimeOptions::default()
    });
    runtime
        .load(
            builtin_gate("stream-topology").unwrap(),
            None,
            EvaluationLimits::default(),
        )
        .unwrap()
}

fn evaluation(c: &mut Criterion) {
    let snap = big_snapshot();
    let params = params();
    let pooled = load_gate(true);
    // What the host sends: the facts the gate's `reads` names for these params.
    let reads = pooled.needs(&params).unwrap().reads;
    let json = serde_json::to_string(&snap.select(&reads)).unwrap();
    let whole = serde_json::to_string(&snap.project(&["nats".to_owned()])).unwrap();
    eprintln!(
        "snapshot: 50 streams, 200 consumers; whole nats source {} bytes, selected by reads {} bytes",
        whole.len(),
        json.len()
    );
    for (gate, name) in [
        (&pooled, "sandbox/evaluate (pooling)"),
        (&load_gate(false), "sandbox/evaluate (on-demand)"),
    ] {
        let input = EvaluationInput {
            taken_at: snap.taken_at,
            snapshot_json: &json,
            history_json: &[],
            params_json: &params,
        };
        assert_eq!(gate.evaluate(&input).unwrap().decision, Decision::Go);
        c.bench_function(name, |b| {
            b.iter(|| black_box(gate.evaluate(black_box(&input)).unwrap()))
        });
    }
    // The fixed cost of a fresh sandbox: a tiny snapshot the gate finds nothing in.
    let gate = &pooled;
    let tiny = r#"{"schema_version":1,"taken_at":"2025-10-02T17:10:00Z"}"#;
    let tiny_input = EvaluationInput {
        taken_at: snap.taken_at,
        snapshot_json: tiny,
        history_json: &[],
        params_json: &params,
    };
    c.bench_function("sandbox/evaluate tiny snapshot (fixed overhead)", |b| {
        b.iter(|| black_box(gate.evaluate(black_box(&tiny_input)).unwrap()))
    });
    c.bench_function("native/evaluate_json (same input, decode + logic)", |b| {
        b.iter(|| {
            black_box(
                gatekeeper_gate_sdk::evaluate_json::<StreamTopology>(
                    black_box(&json),
                    &[],
                    black_box(&params),
                )
                .unwrap(),
            )
        })
    });
    // The same gate handed the whole nats source (no selection), for comparison.
    {
        let input = EvaluationInput {
            taken_at: snap.taken_at,
            snapshot_json: &whole,
            history_json: &[],
            params_json: &params,
        };
        c.bench_function("sandbox/evaluate whole nats source (no selection)", |b| {
            b.iter(|| black_box(gate.evaluate(black_box(&input)).unwrap()))
        });
        c.bench_function("native/evaluate_json whole nats source", |b| {
            b.iter(|| {
                black_box(
                    gatekeeper_gate_sdk::evaluate_json::<StreamTopology>(
                        black_box(&whole),
                        &[],
                        black_box(&params),
                    )
                    .unwrap(),
                )
            })
        });
    }
    let input = gatekeeper_gate_sdk::decode_input(&json, &[], &params).unwrap();
    c.bench_function("native/logic only (pre-decoded)", |b| {
        b.iter(|| black_box(StreamTopology::evaluate(black_box(&input)).unwrap()))
    });
}

fn loading(c: &mut Criterion) {
    let wasm = builtin_gate("stream-topology").unwrap();
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    let uncached = GateRuntime::new(RuntimeOptions {
        cache_dir: None,
        ..RuntimeOptions::default()
    });
    group.bench_function("compile (no cache)", |b| {
        b.iter(|| {
            uncached.forget_compiled();
            black_box(
                uncached
                    .load(wasm, None, EvaluationLimits::default())
                    .unwrap(),
            )
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let options = RuntimeOptions {
        cache_dir: Some(dir.path().to_path_buf()),
        ..RuntimeOptions::default()
    };
    let cached = GateRuntime::new(options.clone());
    cached
        .load(wasm, None, EvaluationLimits::default())
        .unwrap();
    group.sample_size(50);
    // A gate load in a running runtime: the component from wasmtime's on-disk
    // cache, then the metadata call.
    group.bench_function("cached (disk cache)", |b| {
        b.iter(|| {
            cached.forget_compiled();
            black_box(
                cached
                    .load(wasm, None, EvaluationLimits::default())
                    .unwrap(),
            )
        })
    });
    // What a new process pays once on top: engine, instance pool, WASI linker.
    group.bench_function("cached, in a new runtime (process start)", |b| {
        b.iter(|| {
            let runtime = GateRuntime::new(options.clone());
            black_box(
                runtime
                    .load(wasm, None, EvaluationLimits::default())
                    .unwrap(),
            );
        })
    });
    // A second gate sharing an already compiled component (config with the
    // same built-in several times).
    group.bench_function("shared component (memoized)", |b| {
        b.iter(|| {
            black_box(
                cached
                    .load(wasm, None, EvaluationLimits::default())
                    .unwrap(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, evaluation, loading);
criterion_main!(benches);
