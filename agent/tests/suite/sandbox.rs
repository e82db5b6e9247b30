//! The sandbox holds: every hostile attack is stopped within its limit with a
//! clear reason, the host survives, and the next evaluation is fine.

use gatekeeper::builtin::builtin_gate;
use gatekeeper::runtime::{
    EvaluationError, EvaluationInput, EvaluationLimits, GateRuntime, LoadError, LoadedGate,
    RuntimeOptions,
};
use gatekeeper_model::{CriterionStatus, Decision, Evaluation, parse_timestamp};
use std::time::{Duration, Instant};

const TEST_GATES: &str = env!("GATEKEEPER_TEST_GATES_DIR");
const AFTER: &str =
    include_str!("../../../examples/athlete-ally/snapshots/staging-after-cutover.json");

fn runtime() -> GateRuntime {
    GateRuntime::new(RuntimeOptions {
        cache_dir: None,
        ..RuntimeOptions::default()
    })
}

fn test_gate(name: &str) -> Vec<u8> {
    std::fs::read(format!("{TEST_GATES}/{name}.wasm")).expect("test gate built by agent/build.rs")
}

fn hostile(rt: &GateRuntime, limits: EvaluationLimits) -> LoadedGate {
    rt.load(&test_gate("hostile"), None, limits)
        .expect("hostile gate loads")
}

const TAKEN_AT: &str = "2025-10-02T17:10:00Z";

fn attack(gate: &LoadedGate, attack: &str) -> Result<Evaluation, EvaluationError> {
    let params = serde_json::json!({ "attack": attack }).to_string();
    let snapshot = format!(r#"{{"schema_version":1,"taken_at":"{TAKEN_AT}"}}"#);
    gate.evaluate(&EvaluationInput {
        taken_at: parse_timestamp(TAKEN_AT).unwrap(),
        snapshot_json: &snapshot,
        history_json: &[],
        params_json: &params,
    })
}

fn observed(e: Result<Evaluation, EvaluationError>) -> String {
    let e = e.expect("attack evaluates");
    e.criteria[0].observed.clone().unwrap()
}

fn assert_recovers(gate: &LoadedGate) {
    let e = attack(gate, "none").expect("the next evaluation after an attack is fine");
    assert_eq!(e.decision, Decision::Go);
    assert_eq!(e.criteria[0].observed.as_deref(), Some("behaved"));
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let rt = runtime();
    let gate = hostile(
        &rt,
        EvaluationLimits {
            fuel: 50_000_000,
            deadline: Duration::from_secs(30),
            ..Default::default()
        },
    );
    assert_eq!(
        attack(&gate, "infinite-loop").unwrap_err(),
        EvaluationError::FuelExhausted { limit: 50_000_000 }
    );
    assert_recovers(&gate);
}

#[test]
fn infinite_loop_hits_the_deadline_when_fuel_is_ample() {
    let rt = runtime();
    let gate = hostile(
        &rt,
        EvaluationLimits {
            fuel: u64::MAX,
            deadline: Duration::from_millis(100),
            ..Default::default()
        },
    );
    let started = Instant::now();
    let err = attack(&gate, "infinite-loop").unwrap_err();
    let EvaluationError::DeadlineExceeded {
        deadline_ms: 100,
        elapsed_ms,
    } = err
    else {
        panic!("expected the deadline, got {err:?}")
    };
    // The real elapsed time is reported: at least the deadline, not much more.
    assert!((100..2000).contains(&elapsed_ms), "{elapsed_ms} ms");
    let elapsed = started.elapsed();
    // Stopped within the deadline plus scheduling slack, not run away.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert_recovers(&gate);
}

#[test]
fn memory_bomb_hits_the_memory_cap() {
    let rt = runtime();
    let gate = hostile(
        &rt,
        EvaluationLimits {
            memory_bytes: 16 << 20,
            ..Default::default()
        },
    );
    assert_eq!(
        attack(&gate, "memory-bomb").unwrap_err(),
        EvaluationError::MemoryLimit {
            limit_bytes: 16 << 20
        }
    );
    assert_recovers(&gate);
}

#[test]
fn deep_recursion_overflows_the_stack() {
    let rt = runtime();
    let gate = hostile(
        &rt,
        EvaluationLimits {
            stack_bytes: 256 << 10,
            ..Default::default()
        },
    );
    assert_eq!(
        attack(&gate, "deep-recursion").unwrap_err(),
        EvaluationError::StackOverflow {
            limit_bytes: 256 << 10
        }
    );
    assert_recovers(&gate);
}

#[test]
fn shadow_stack_overflow_is_an_out_of_bounds_trap() {
    let rt = runtime();
    let gate = hostile(&rt, EvaluationLimits::default());
    assert_eq!(
        attack(&gate, "shadow-stack-overflow").unwrap_err(),
        EvaluationError::Trap("wasm trap: out of bounds memory access".into())
    );
    assert_recovers(&gate);
}

#[test]
fn a_stack_limit_beyond_the_host_thread_is_refused() {
    let rt = runtime();
    let err = rt.load(
        &test_gate("hostile"),
        None,
        EvaluationLimits {
            stack_bytes: 8 << 20,
            ..Default::default()
        },
    );
    assert_eq!(
        err.err().unwrap().to_string(),
        "engine: stack limit 8388608 exceeds the maximum of 1048576 bytes"
    );
}

#[test]
fn panic_is_a_trap_with_the_panic_message() {
    let rt = runtime();
    let gate = hostile(&rt, EvaluationLimits::default());
    let err = attack(&gate, "panic").unwrap_err();
    let EvaluationError::Trap(message) = &err else {
        panic!("expected a trap, got {err:?}")
    };
    assert!(
        message.contains("hostile gate panicked on purpose"),
        "{message}"
    );
    assert_recovers(&gate);
}

#[test]
fn huge_output_is_refused() {
    let rt = runtime();
    let gate = hostile(&rt, EvaluationLimits::default());
    let err = attack(&gate, "huge-output").unwrap_err();
    assert!(
        matches!(err, EvaluationError::OutputTooLarge { limit: 262_144, bytes } if bytes > 4_000_000),
        "{err:?}"
    );
    assert_recovers(&gate);
}

/// Files and the network are denied: a gate that touches them loads (Rust's
/// std imports them), and traps the moment it calls one.
#[test]
fn files_env_args_network_are_not_there() {
    let rt = runtime();
    let gate = hostile(&rt, EvaluationLimits::default());
    let trap = |attack_name: &str| match attack(&gate, attack_name) {
        Err(EvaluationError::Trap(message)) => message,
        other => panic!("{attack_name}: expected a trap, got {other:?}"),
    };
    assert_eq!(
        trap("read-file"),
        "called `wasi:filesystem/preopens@0.2.6#get-directories`: a gate may not use files or the network (it can only compute)"
    );
    let net = trap("network");
    assert!(
        net.starts_with("called `wasi:sockets/")
            && net.ends_with("a gate may not use files or the network (it can only compute)"),
        "{net}"
    );
    assert_eq!(
        observed(attack(&gate, "read-env")),
        "0 vars, 0 args, HOME=None"
    );
    assert_recovers(&gate);
}

#[test]
fn the_clock_is_the_snapshot_time_and_randomness_is_seeded() {
    let rt = runtime();
    let gate = hostile(&rt, EvaluationLimits::default());
    let millis = parse_timestamp(TAKEN_AT).unwrap().timestamp_millis();
    assert_eq!(
        observed(attack(&gate, "read-clock")),
        format!("wall={millis} mono-elapsed=0")
    );
    let first = observed(attack(&gate, "random"));
    assert_eq!(observed(attack(&gate, "random")), first);
}

#[test]
fn malformed_output_is_refused() {
    let rt = runtime();
    let gate = hostile(&rt, EvaluationLimits::default());
    let err = attack(&gate, "malformed-output").unwrap_err();
    assert_eq!(
        err,
        EvaluationError::MalformedOutput(
            "id \"same-id\" appears twice; decision is go but the criteria say no-go".into()
        )
    );
}

#[test]
fn log_flood_is_capped_and_the_evaluation_still_answers() {
    let rt = runtime();
    let gate = hostile(&rt, EvaluationLimits::default());
    assert_eq!(observed(attack(&gate, "log-flood")), "flooded");
}

#[test]
fn gate_error_is_reported_as_the_gates_own() {
    let rt = runtime();
    let gate = hostile(&rt, EvaluationLimits::default());
    assert_eq!(
        attack(&gate, "gate-error").unwrap_err().to_string(),
        "gate error: internal error: the gate gave up on purpose"
    );
    assert_eq!(
        attack(&gate, "no-such-attack").unwrap_err().to_string(),
        "gate error: bad params: unknown attack \"no-such-attack\""
    );
}

#[test]
fn reads_are_confined_to_declared_sources_and_valid_paths() {
    let rt = runtime();
    let gate = hostile(&rt, EvaluationLimits::default());
    assert_eq!(
        gate.needs(r#"{"attack":"reads-undeclared"}"#)
            .unwrap_err()
            .to_string(),
        "malformed output: reads `postgres` but declares only the sources [nats]"
    );
    let err = gate
        .needs(r#"{"attack":"reads-garbage"}"#)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("malformed output: fact path `nats.streams`: expected a source"),
        "{err}"
    );
    assert_eq!(gate.needs(r#"{"attack":"none"}"#).unwrap().reads, vec![]);
}

#[test]
fn the_builtin_gate_reads_only_the_streams_it_names() {
    let rt = runtime();
    let gate = rt
        .load(
            builtin_gate("stream-topology").unwrap(),
            None,
            EvaluationLimits::default(),
        )
        .unwrap();
    let reads = gate
        .needs(r#"{"streams":[{"name":"AA_DLQ"},{"name":"AA_CORE_HOT"}]}"#)
        .unwrap()
        .reads;
    let text: Vec<String> = reads.iter().map(ToString::to_string).collect();
    assert_eq!(text, ["nats.streams.AA_CORE_HOT", "nats.streams.AA_DLQ"]);
}

/// Each attack the hostile gate knows has a test (by outcome); the coverage
/// ledger in tests/README.md names where.
#[test]
fn every_attack_has_a_test() {
    let tested = [
        "none",
        "sleep",
        "poll-sleep",
        "wait-for-time",
        "read-stdin",
        "print",
        "print-then-panic",
        "reads-sleep",
        "forge-text",
        "defer-while-failing",
        "trigger-from-defer",
        "trigger-without-failure",
        "trigger-storm",
        "dlq-spike",
        "careless-unread-stream",
        "undeclared-trigger",
        "infinite-loop",
        "memory-bomb",
        "deep-recursion",
        "shadow-stack-overflow",
        "panic",
        "huge-output",
        "read-file",
        "read-env",
        "read-clock",
        "random",
        "network",
        "malformed-output",
        "log-flood",
        "gate-error",
        "reads-undeclared",
        "reads-garbage",
    ];
    for attack in gate_hostile::ATTACKS {
        assert!(tested.contains(attack), "attack {attack} has no host test");
    }
}

#[test]
fn garbage_bytes_fail_to_load() {
    let rt = runtime();
    let err = rt
        .load(b"\0asm garbage", None, EvaluationLimits::default())
        .err()
        .expect("refused");
    assert!(matches!(err, LoadError::Compile(_)), "{err}");
}

#[test]
fn a_component_with_another_interface_is_refused() {
    let rt = runtime();
    let err = rt
        .load(
            &test_gate("wrong-interface"),
            None,
            EvaluationLimits::default(),
        )
        .err()
        .expect("refused");
    assert!(matches!(err, LoadError::Interface { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("does not implement gatekeeper:gate@0.1.0 or gatekeeper:gate@0.2.0"),
        "{err}"
    );
}

#[test]
fn sha256_pin_mismatch_refuses_to_load() {
    let rt = runtime();
    let wasm = builtin_gate("stream-topology").unwrap();
    let err = rt
        .load(wasm, Some(&"0".repeat(64)), EvaluationLimits::default())
        .err()
        .expect("refused");
    assert!(matches!(err, LoadError::DigestMismatch { .. }), "{err}");
    let ok = rt
        .load(wasm, Some(&hex_sha256(wasm)), EvaluationLimits::default())
        .expect("pinned digest loads");
    assert_eq!(ok.digest(), hex_sha256(wasm));
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn builtin_gate_evaluates_the_seed_snapshot_in_the_sandbox() {
    let rt = runtime();
    let gate = rt
        .load(
            builtin_gate("stream-topology").unwrap(),
            None,
            EvaluationLimits::default(),
        )
        .unwrap();
    assert_eq!(gate.metadata().name, "stream-topology");
    assert_eq!(gate.metadata().sources, vec!["nats".to_owned()]);
    let params = serde_json::json!({"streams": [{"name": "AA_CORE_HOT", "id": "core-stream-ready",
        "subjects": ["athlete-ally.>", "sleep.*"], "max_age": "48h", "replicas": 3}]})
    .to_string();
    let e = gate
        .evaluate(&EvaluationInput {
            taken_at: parse_timestamp(TAKEN_AT).unwrap(),
            snapshot_json: AFTER,
            history_json: &[],
            params_json: &params,
        })
        .unwrap();
    assert_eq!(e.decision, Decision::NoGo);
    assert_eq!(e.criteria[0].status, CriterionStatus::Fail);
    assert_eq!(
        e.criteria[0].message,
        "stream AA_CORE_HOT drifted: replicas: expected 3, observed 1"
    );
}

/// A gate can only compute: whatever it waits on returns at once, in virtual
/// time that only its own sleeping moves.
#[test]
fn sleeping_returns_at_once_in_virtual_time() {
    let rt = runtime();
    let gate = hostile(&rt, EvaluationLimits::default());
    for (attack_name, expected) in [
        ("sleep", "slept; the clock moved 3600s"),
        ("poll-sleep", "polled [0]; the clock moved 3600s"),
    ] {
        let started = Instant::now();
        assert_eq!(observed(attack(&gate, attack_name)), expected);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{attack_name} took {:?}",
            started.elapsed()
        );
    }
    // Waiting for time to pass without sleeping spins: fuel stops it.
    assert_eq!(
        attack(&gate, "wait-for-time").unwrap_err(),
        EvaluationError::FuelExhausted {
            limit: gatekeeper::runtime::limits::DEFAULT_FUEL
        }
    );
    // reads (called at load) cannot wait either.
    let started = Instant::now();
    assert_eq!(
        gate.needs(r#"{"attack":"reads-sleep"}"#).unwrap().reads,
        vec![]
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_recovers(&gate);
}

#[test]
fn metadata_that_sleeps_loads_at_once() {
    let rt = runtime();
    let started = Instant::now();
    let gate = rt
        .load(
            &test_gate("hostile-metadata"),
            None,
            EvaluationLimits::default(),
        )
        .expect("loads");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Kept as the gate said it; every renderer sanitizes it (tests/cli.rs).
    assert_eq!(gate.metadata().version, gate_hostile_metadata::FORGED);
}

#[test]
fn stdin_is_closed_and_printing_is_captured_not_fatal() {
    let rt = runtime();
    let gate = hostile(&rt, EvaluationLimits::default());
    assert_eq!(
        observed(attack(&gate, "read-stdin")),
        "read 0 bytes from stdin"
    );
    assert_eq!(observed(attack(&gate, "print")), "printed");
    let err = attack(&gate, "print-then-panic").unwrap_err();
    let EvaluationError::Trap(message) = &err else {
        panic!("expected a trap, got {err:?}")
    };
    // The end of the output is kept (the panic message is last), on one line.
    assert!(
        message.contains("hostile gate panicked after printing"),
        "{message}"
    );
    assert!(message.ends_with(" bytes)"), "{message}");
    assert!(message.contains("(the last "), "{message}");
    assert!(!message.contains('\n'), "{message}");
    assert_recovers(&gate);
}

#[test]
fn a_decision_softer_than_the_criteria_is_malformed() {
    let rt = runtime();
    let gate = hostile(&rt, EvaluationLimits::default());
    assert_eq!(
        attack(&gate, "defer-while-failing").unwrap_err(),
        EvaluationError::MalformedOutput("decision is defer but the criteria say no-go".into())
    );
}

#[test]
fn a_trigger_needs_its_failed_criterion() {
    let rt = runtime();
    let gate = hostile(&rt, EvaluationLimits::default());
    let why = "trigger \"dlq-spike\" has no failed criterion of the same id (a trigger must come with the criterion that failed)";
    assert_eq!(
        attack(&gate, "trigger-from-defer").unwrap_err(),
        EvaluationError::MalformedOutput(format!(
            "decision is defer but the criteria say go; {why}"
        ))
    );
    assert_eq!(
        attack(&gate, "trigger-without-failure").unwrap_err(),
        EvaluationError::MalformedOutput(why.into())
    );
    let spike = attack(&gate, "dlq-spike").unwrap();
    assert_eq!(spike.decision, Decision::NoGo);
    assert_eq!(spike.triggers[0].id, "dlq-spike");
    let storm = attack(&gate, "trigger-storm").unwrap();
    assert_eq!(storm.triggers.len(), 2000);
}

#[test]
fn forged_text_comes_back_as_data() {
    let rt = runtime();
    let gate = hostile(&rt, EvaluationLimits::default());
    let e = attack(&gate, "forge-text").unwrap();
    // The model keeps the gate's words; renderers make them safe (tests/cli.rs).
    assert!(e.criteria[0].title.contains("\nverdict: GO"));
}

use gatekeeper_testsupport::WatGate;

fn load_hand_built(
    rt: &GateRuntime,
    gate: &WatGate,
    memory_bytes: usize,
) -> Result<LoadedGate, LoadError> {
    rt.load(
        &gate.wasm(),
        None,
        EvaluationLimits {
            memory_bytes,
            deadline: Duration::from_secs(5),
            ..Default::default()
        },
    )
}

#[test]
fn a_hand_built_gate_loads_and_says_go() {
    let rt = runtime();
    let gate = load_hand_built(&rt, &WatGate::default(), 16 << 20).expect("loads");
    assert_eq!(gate.metadata().name, "hand-built");
    let e = attack(&gate, "none").unwrap();
    assert_eq!(e.decision, Decision::Go);
}

/// The memory cap is for the whole gate: three core instances with a
/// 15 MiB memory each do not fit 16 MiB, though each memory would.
#[test]
fn the_memory_cap_bounds_all_memories_of_the_instance_together() {
    let hog = WatGate {
        memory_hogs: 3,
        hog_pages: 240,
        ..WatGate::default()
    };
    let small = GateRuntime::new(RuntimeOptions {
        cache_dir: None,
        max_memory_bytes: 64 << 20,
        ..RuntimeOptions::default()
    });
    let err = load_hand_built(&small, &hog, 16 << 20)
        .err()
        .expect("refused");
    assert_eq!(
        err.to_string(),
        "metadata call failed: exceeded its memory limit of 16777216 bytes"
    );
    // With room for all three, the same gate loads and says go: the cap is
    // what refused it.
    let big = GateRuntime::new(RuntimeOptions {
        cache_dir: None,
        max_memory_bytes: 64 << 20,
        ..RuntimeOptions::default()
    });
    let gate = load_hand_built(&big, &hog, 64 << 20).expect("fits in 64 MiB");
    assert_eq!(attack(&gate, "none").unwrap().decision, Decision::Go);
}

#[test]
fn core_instances_memories_and_tables_are_counted() {
    let rt = runtime();
    let many = WatGate {
        memory_hogs: 40,
        hog_pages: 1,
        ..WatGate::default()
    };
    // The pooling allocator's slots are sized by the same limits: refused
    // when compiled.
    assert_eq!(
        load_hand_built(&rt, &many, 64 << 20)
            .err()
            .expect("refused")
            .to_string(),
        "exceeds a sandbox limit: The component transitively contains 41 core module instances, which exceeds the configured maximum of 16 in the pooling allocator"
    );
    // Without the pool, the store's limiter counts them at instantiation.
    let on_demand = GateRuntime::new(RuntimeOptions {
        cache_dir: None,
        pooling: false,
        ..RuntimeOptions::default()
    });
    let text = load_hand_built(&on_demand, &many, 64 << 20)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        text.starts_with("metadata call failed: exceeded a sandbox limit:")
            && text
                .ends_with("(a gate may have at most 16 core instances, 4 memories and 8 tables)"),
        "{text}"
    );
}

#[test]
fn the_contract_version_is_checked() {
    let rt = runtime();
    let future = WatGate {
        contract: Some("0.3.0".into()),
        ..WatGate::default()
    };
    assert_eq!(
        load_hand_built(&rt, &future, 16 << 20)
            .err()
            .expect("refused")
            .to_string(),
        "built for gatekeeper:gate@0.3.0; this host loads gatekeeper:gate@0.1.0 and gatekeeper:gate@0.2.0"
    );
    // Claiming 0.2.0 but exporting 0.1's `reads` instead of `needs`.
    let mislabelled = WatGate {
        contract: Some("0.2.0".into()),
        ..WatGate::default()
    };
    let err = load_hand_built(&rt, &mislabelled, 16 << 20)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.starts_with("does not implement gatekeeper:gate@0.1.0 or gatekeeper:gate@0.2.0:"),
        "{err}"
    );
    let unversioned = WatGate {
        contract: None,
        ..WatGate::default()
    };
    assert_eq!(
        load_hand_built(&rt, &unversioned, 16 << 20)
            .err()
            .expect("refused")
            .to_string(),
        "does not implement gatekeeper:gate@0.1.0 or gatekeeper:gate@0.2.0: it does not import `gatekeeper:gate/types@<version>`, so the contract version it was built for is unknown \
         (a gate written with the SDK exports it with `gatekeeper_gate_sdk::export_gate!(YourGate);` in its lib.rs: is that line missing?)"
    );
}

#[test]
fn imports_the_host_does_not_give_are_refused_at_load() {
    let rt = runtime();
    let http = WatGate {
        extra_imports: vec!["wasi:http/outgoing-handler@0.2.0".into()],
        ..WatGate::default()
    };
    assert_eq!(
        load_hand_built(&rt, &http, 16 << 20)
            .err()
            .expect("refused")
            .to_string(),
        "imports the host does not provide: imports `wasi:http/outgoing-handler@0.2.0`, which gates are not given (a gate can only compute)"
    );
}

#[test]
fn metadata_names_are_validated() {
    let rt = runtime();
    let bad = WatGate {
        params: vec![("Bad Name\u{1b}[31m".into(), "d".into(), Some("1".into()))],
        ..WatGate::default()
    };
    assert_eq!(
        load_hand_built(&rt, &bad, 16 << 20)
            .err()
            .expect("refused")
            .to_string(),
        "bad metadata: param name \"Bad Name\\\\u{1b}[31m\" is not a name ([a-z][a-z0-9_-]*, at most 64 characters)"
    );
}

/// Contract 0.1 gates keep loading: a binary the 0.1 SDK built (committed,
/// never rebuilt) loads, says what it reads, and evaluates — declaring no
/// history and no triggers, as 0.1 cannot.
#[test]
fn a_gate_built_for_contract_0_1_still_loads_and_evaluates() {
    let rt = runtime();
    let wasm = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/consumer-drained-contract-0.1.0.wasm"
    ))
    .unwrap();
    let gate = rt
        .load(&wasm, None, EvaluationLimits::default())
        .expect("a 0.1 gate loads");
    assert_eq!(gate.contract(), gatekeeper::runtime::Contract::V0_1);
    assert_eq!(gate.metadata().name, "consumer-drained");
    let params = r#"{"stream":"AA_CORE_HOT","consumer":"normalize-hrv-durable","max_pending":0,"id":"consumer-drained"}"#;
    let needs = gate.needs(params).unwrap();
    let reads: Vec<String> = needs.reads.iter().map(ToString::to_string).collect();
    assert_eq!(reads, ["nats.consumers.AA_CORE_HOT.normalize-hrv-durable"]);
    assert_eq!(needs.history_ms, None);
    assert_eq!(needs.triggers, None);
    let e = gate
        .evaluate(&EvaluationInput {
            taken_at: parse_timestamp(TAKEN_AT).unwrap(),
            snapshot_json: AFTER,
            history_json: &[],
            params_json: params,
        })
        .unwrap();
    assert_eq!(e.criteria[0].id, "consumer-drained");
    assert_eq!(e.decision, Decision::Go, "{:?}", e.criteria[0]);
    // The built-ins are 0.2 and declare what they need.
    let signals = rt
        .load(
            builtin_gate("signals").unwrap(),
            None,
            EvaluationLimits::default(),
        )
        .unwrap();
    assert_eq!(signals.contract(), gatekeeper::runtime::Contract::V0_2);
    let n = signals
        .needs(r#"{"signals":[{"id":"dlq-spike","title":"DLQ","measure":{"kind":"stream-publish-rate","streams":["AA_DLQ"],"window":"1m"},"when":"> 10","for":"5m","trigger":"automatic"}]}"#)
        .unwrap();
    assert_eq!(n.history_ms, Some(6 * 60_000));
    assert_eq!(n.triggers.unwrap()[0].id, "dlq-spike");
}
