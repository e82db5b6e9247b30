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
    include_str!("../../examples/athlete-ally/snapshots/staging-after-cutover.json");

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
    assert_eq!(
        attack(&gate, "infinite-loop").unwrap_err(),
        EvaluationError::DeadlineExceeded { deadline_ms: 100 }
    );
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

#[test]
fn files_env_args_network_are_not_there() {
    let rt = runtime();
    let gate = hostile(&rt, EvaluationLimits::default());
    let file = observed(attack(&gate, "read-file"));
    assert!(file.starts_with("error:"), "{file}");
    assert_eq!(
        observed(attack(&gate, "read-env")),
        "0 vars, 0 args, HOME=None"
    );
    let net = observed(attack(&gate, "network"));
    assert!(net.starts_with("error:"), "{net}");
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
            "id \"same-id\" appears twice; decision is go but \"same-id\" is not a pass; decision is go but \"same-id\" is not a pass".into()
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
        gate.reads(r#"{"attack":"reads-undeclared"}"#)
            .unwrap_err()
            .to_string(),
        "malformed output: reads `postgres` but declares only the sources []"
    );
    let err = gate
        .reads(r#"{"attack":"reads-garbage"}"#)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("malformed output: fact path `nats.streams`: expected a source"),
        "{err}"
    );
    assert_eq!(gate.reads(r#"{"attack":"none"}"#).unwrap(), vec![]);
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
        .reads(r#"{"streams":[{"name":"AA_DLQ"},{"name":"AA_CORE_HOT"}]}"#)
        .unwrap();
    let text: Vec<String> = reads.iter().map(ToString::to_string).collect();
    assert_eq!(text, ["nats.streams.AA_CORE_HOT", "nats.streams.AA_DLQ"]);
}

/// Each attack the hostile gate knows has a test above (by outcome).
#[test]
fn every_attack_has_a_test() {
    let tested = [
        "none",
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
    assert!(matches!(err, LoadError::Interface(_)), "{err}");
    assert!(
        err.to_string()
            .starts_with("does not implement gatekeeper:gate@0.1.0"),
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
