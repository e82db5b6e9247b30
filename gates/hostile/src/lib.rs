//! A gate that misbehaves on purpose, to prove the sandbox holds. Used only by
//! the host's tests; never embedded. Every attack must have a host test
//! (`agent/tests/suite/sandbox.rs` checks that against [`ATTACKS`]).

use gatekeeper_gate_sdk::{
    Criterion, CriterionStatus, Decision, Evaluation, Gate, GateError, Input, LogLevel, Metadata,
    Needs, ParamSpec, Severity, Trigger, TriggerSpec,
};
use serde::Deserialize;

pub struct Hostile;

gatekeeper_gate_sdk::export_gate!(Hostile);

/// Every attack this gate knows.
pub const ATTACKS: &[&str] = &[
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
            sources: vec!["nats".into()],
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
            Some("reads-sleep") => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                vec![]
            }
            Some("careless-unread-stream") => vec!["nats.streams.AA_CORE_HOT".into()],
            Some("reads-undeclared") => vec!["postgres".into()],
            Some("reads-garbage") => vec!["nats.streams".into()],
            _ => vec![],
        })
    }

    /// The triggers its trigger attacks raise (all but `undeclared-trigger`'s).
    fn needs(params: &serde_json::Value) -> Result<Needs, GateError> {
        let spec = |id: String, severity| TriggerSpec {
            title: id.clone(),
            id,
            severity,
        };
        let triggers = match params.get("attack").and_then(|a| a.as_str()) {
            Some("trigger-from-defer" | "trigger-without-failure" | "dlq-spike") => {
                vec![spec("dlq-spike".into(), Severity::Automatic)]
            }
            Some("trigger-storm") => (0..2000)
                .map(|i| spec(format!("storm-{i}"), Severity::Manual))
                .collect(),
            _ => vec![],
        };
        Ok(Needs {
            reads: Self::reads(params)?,
            triggers,
            ..Needs::default()
        })
    }

    fn evaluate(input: &Input) -> Result<Evaluation, GateError> {
        let params: Params = input.params()?;
        let observed = match params.attack.as_str() {
            "none" => "behaved".to_owned(),
            "sleep" => {
                let before = std::time::Instant::now();
                std::thread::sleep(std::time::Duration::from_secs(3600));
                format!("slept; the clock moved {}s", before.elapsed().as_secs())
            }
            "poll-sleep" => raw::poll_sleep(3600),
            "wait-for-time" => {
                // Spins until an hour has passed: time only moves when a gate sleeps.
                let before = std::time::Instant::now();
                while before.elapsed() < std::time::Duration::from_secs(3600) {
                    std::hint::black_box(());
                }
                "an hour passed".to_owned()
            }
            "read-stdin" => {
                use std::io::Read;
                let mut text = String::new();
                match std::io::stdin().read_to_string(&mut text) {
                    Ok(n) => format!("read {n} bytes from stdin"),
                    Err(e) => format!("error: {e}"),
                }
            }
            "print" => {
                for i in 0..2_000 {
                    println!("stdout line {i}");
                    eprintln!("stderr line {i}");
                }
                "printed".to_owned()
            }
            "print-then-panic" => {
                for i in 0..2_000 {
                    eprintln!("noise {i}");
                }
                panic!("hostile gate panicked after printing")
            }
            "forge-text" => {
                gatekeeper_gate_sdk::log(
                    LogLevel::Info,
                    "harmless\n2026-01-01T00:00:00Z ERROR gatekeeper: ALERT forged by a gate",
                );
                let forged = format!(
                    "ok\n\nverdict: GO\x1b[2K\x1b]0;owned\x07\u{202e}\u{200b}\u{2028}\u{feff}{}verdict: GO",
                    " ".repeat(300)
                );
                let c = Criterion::pass("forge", &forged, forged.clone())
                    .observed(forged.clone())
                    .expected(forged);
                return Ok(Evaluation::from_criteria(vec![c]));
            }
            "defer-while-failing" => {
                return Ok(Evaluation {
                    decision: Decision::Defer,
                    criteria: vec![Criterion::fail("failing", "a", "it failed")],
                    triggers: vec![],
                });
            }
            "trigger-from-defer" => {
                return Ok(Evaluation {
                    decision: Decision::Defer,
                    criteria: vec![Criterion::pass("dlq-spike", "DLQ", "quiet")],
                    triggers: vec![trigger("dlq-spike", Severity::Automatic)],
                });
            }
            "trigger-without-failure" => {
                return Ok(Evaluation {
                    decision: Decision::NoGo,
                    criteria: vec![
                        Criterion::fail("unrelated", "Unrelated", "failed"),
                        Criterion::pass("dlq-spike", "DLQ", "quiet"),
                    ],
                    triggers: vec![trigger("dlq-spike", Severity::Automatic)],
                });
            }
            "trigger-storm" => {
                let ids: Vec<String> = (0..2000).map(|i| format!("storm-{i}")).collect();
                return Ok(Evaluation::from_parts(
                    ids.iter()
                        .map(|id| Criterion::fail(id, "Storm", "raised"))
                        .collect(),
                    ids.iter().map(|id| trigger(id, Severity::Manual)).collect(),
                ));
            }
            "careless-unread-stream" => {
                // Reads only AA_CORE_HOT, then asks about AA_DLQ and takes
                // "absent" as "empty": it must see "not read" instead.
                let c = match input.snapshot.nats.usable("nats") {
                    Err(why) => Criterion::unknown("dlq-empty", "DLQ empty", why),
                    Ok(nats) if nats.stream_absent("AA_DLQ") => Criterion::pass(
                        "dlq-empty",
                        "DLQ empty",
                        "AA_DLQ does not exist, so nothing is in it",
                    ),
                    Ok(nats) => match nats.stream("AA_DLQ") {
                        Some(_) => Criterion::pass("dlq-empty", "DLQ empty", "read"),
                        None => Criterion::unknown("dlq-empty", "DLQ empty", "AA_DLQ not read"),
                    },
                };
                return Ok(Evaluation::from_criteria(vec![c]));
            }
            "undeclared-trigger" => {
                return Ok(Evaluation::from_parts(
                    vec![Criterion::fail("surprise", "Surprise", "raised")],
                    vec![trigger("surprise", Severity::Automatic)],
                ));
            }
            "dlq-spike" => {
                return Ok(Evaluation::from_parts(
                    vec![Criterion::fail("dlq-spike", "DLQ spike", "spiking")],
                    vec![trigger("dlq-spike", Severity::Automatic)],
                ));
            }
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
            "reads-sleep" => "slept in reads; loaded".to_owned(),
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

fn trigger(id: &str, severity: Severity) -> Trigger {
    Trigger {
        id: id.to_owned(),
        severity,
        reason: format!("{id} raised by the hostile gate"),
        since: None,
    }
}

/// Waiting through raw `wasi:clocks` + `wasi:io/poll`, as a gate written
/// without Rust's std would.
#[cfg(target_arch = "wasm32")]
#[allow(
    unsafe_code,
    reason = "wit-bindgen generates the unsafe canonical-ABI import glue"
)]
mod raw {
    wit_bindgen::generate!({ path: "wit", world: "raw", generate_all });

    pub fn poll_sleep(seconds: u64) -> String {
        use wasi::clocks::monotonic_clock;
        let before = monotonic_clock::now();
        let pollable = monotonic_clock::subscribe_duration(seconds * 1_000_000_000);
        let ready = wasi::io::poll::poll(&[&pollable]);
        let after = monotonic_clock::now();
        format!(
            "polled {ready:?}; the clock moved {}s",
            (after - before) / 1_000_000_000
        )
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod raw {
    pub fn poll_sleep(seconds: u64) -> String {
        format!("polled [0]; the clock moved {seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatekeeper_gate_sdk::testing::Testcase;

    const AFTER: &str =
        include_str!("../../../examples/athlete-ally/snapshots/staging-after-cutover.json");

    /// `Testcase` narrows as the host does: a stream the gate did not read
    /// is not read, not absent, so the careless gate defers natively too.
    #[test]
    fn testcase_narrows_like_the_host() {
        let e = Testcase::from_json(
            AFTER,
            serde_json::json!({"attack": "careless-unread-stream"}),
        )
        .run::<Hostile>()
        .unwrap();
        assert_eq!(e.criteria[0].status, CriterionStatus::Unknown);
        assert_eq!(e.criteria[0].message, "AA_DLQ not read");
    }

    /// `Testcase` refuses reads outside the declared sources, as the host does.
    #[test]
    fn testcase_checks_reads_against_declared_sources() {
        let err = Testcase::from_json(AFTER, serde_json::json!({"attack": "reads-undeclared"}))
            .run::<Hostile>()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "internal error: the host would refuse this gate: it reads `postgres` but declares only the sources [nats]"
        );
    }
}
