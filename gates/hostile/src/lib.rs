//! A gate that misbehaves on purpose, to prove the sandbox holds. Used only by
//! the host's tests; never embedded. Every attack must have a host test
//! (`agent/tests/sandbox.rs` checks that against [`ATTACKS`]).

use gatekeeper_gate_sdk::{
    Criterion, CriterionStatus, Decision, Evaluation, Gate, GateError, Input, LogLevel, Metadata,
    ParamSpec,
};
use serde::Deserialize;

pub struct Hostile;

gatekeeper_gate_sdk::export_gate!(Hostile);

/// Every attack this gate knows.
pub const ATTACKS: &[&str] = &[
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    attack: String,
}

impl Gate for Hostile {
    fn metadata() -> Metadata {
        Metadata {
            name: "hostile".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Attacks its sandbox (tests only).".into(),
            sources: vec![],
            params: vec![ParamSpec::with_default(
                "attack",
                &ATTACKS.join(", "),
                serde_json::json!("none"),
            )],
            snapshot_schema: gatekeeper_gate_sdk::model::SNAPSHOT_SCHEMA_VERSION,
        }
    }

    /// Two attacks target `reads`: asking for a source it did not declare, and
    /// for a path that does not exist.
    fn reads(params: &serde_json::Value) -> Result<Vec<String>, GateError> {
        Ok(match params.get("attack").and_then(|a| a.as_str()) {
            Some("reads-undeclared") => vec!["postgres".into()],
            Some("reads-garbage") => vec!["nats.streams".into()],
            _ => vec![],
        })
    }

    fn evaluate(input: &Input) -> Result<Evaluation, GateError> {
        let params: Params = input.params()?;
        let observed = match params.attack.as_str() {
            "none" => "behaved".to_owned(),
            "infinite-loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "memory-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "deep-recursion" => {
                // Through an opaque fn pointer, so LLVM cannot turn it into a loop.
                let f = std::hint::black_box(recurse as fn(u64) -> u64);
                format!("{}", f(1))
            }
            "shadow-stack-overflow" => {
                format!("{}", recurse_with_big_frames(std::hint::black_box(1)))
            }
            "panic" => panic!("hostile gate panicked on purpose"),
            "huge-output" => "x".repeat(4 << 20),
            "read-file" => match std::fs::read_to_string("/etc/passwd") {
                Ok(text) => format!("READ {} bytes", text.len()),
                Err(e) => format!("error: {e}"),
            },
            "read-env" => format!(
                "{} vars, {} args, HOME={:?}",
                std::env::vars().count(),
                std::env::args().count(),
                std::env::var("HOME").ok()
            ),
            "read-clock" => {
                let wall = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0);
                let mono = std::time::Instant::now().elapsed().as_nanos();
                format!("wall={wall} mono-elapsed={mono}")
            }
            "random" => {
                use std::hash::BuildHasher;
                let a = std::collections::hash_map::RandomState::new().hash_one(42u32);
                format!("hash={a}")
            }
            "network" => match std::net::TcpStream::connect("127.0.0.1:80") {
                Ok(_) => "CONNECTED".to_owned(),
                Err(e) => format!("error: {e}"),
            },
            "malformed-output" => {
                let c = Criterion::fail("same-id", "a", "failing");
                return Ok(Evaluation {
                    decision: Decision::Go,
                    criteria: vec![c.clone(), c],
                    triggers: vec![],
                });
            }
            "log-flood" => {
                for i in 0..10_000 {
                    gatekeeper_gate_sdk::log(LogLevel::Info, &format!("line {i} \u{1b}[31m"));
                }
                "flooded".to_owned()
            }
            "gate-error" => return Err(GateError::Internal("the gate gave up on purpose".into())),
            "reads-undeclared" | "reads-garbage" => "refused at load".to_owned(),
            other => return Err(GateError::BadParams(format!("unknown attack {other:?}"))),
        };
        let criterion =
            Criterion::pass("attack", "Attack outcome", "see observed").observed(observed);
        debug_assert_eq!(criterion.status, CriterionStatus::Pass);
        Ok(Evaluation::from_criteria(vec![criterion]))
    }
}

/// Small frames: exhausts wasm's own call stack (`max_wasm_stack`).
fn recurse(depth: u64) -> u64 {
    let next = std::hint::black_box(recurse as fn(u64) -> u64);
    next(depth + 1).wrapping_mul(depth | 1)
}

/// Big address-taken frames: exhausts Rust's shadow stack in linear memory,
/// which traps on an out-of-bounds access below address 0.
#[allow(unconditional_recursion, reason = "the point of the attack")]
fn recurse_with_big_frames(depth: u64) -> u64 {
    // 32 KiB per frame: too big for wasm locals, so it lives on the shadow stack.
    let frame = std::hint::black_box([depth; 4096]);
    std::hint::black_box(recurse_with_big_frames(depth + 1)) + frame[depth as usize % 4096]
}
