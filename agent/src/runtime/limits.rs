//! Sandbox limits: named defaults, overridable per gate in config.

use std::time::Duration;

/// Fuel is wasmtime's instruction budget (about one unit per wasm
/// instruction, plus [`HOST_CALL_FUEL`] per call out). The stream-topology
/// gate uses ~2 M on a 50-stream/200-consumer snapshot; 200 M leaves two
/// orders of magnitude of headroom and stops a spinning gate in 15–22 ms
/// (release build, this project's 2-core machine), far inside the deadline:
/// fuel, not the clock, is what normally ends a runaway gate.
pub const DEFAULT_FUEL: u64 = 200_000_000;

/// Fuel charged for each call out of the gate's code into the host (the WASI
/// a gate is given, `log`): about what such a call costs in time, measured in
/// fuel. Without it a gate spinning on the clock burned its whole deadline
/// (500 ms) before its fuel; with it fuel stops that loop in 8–9 ms (release;
/// 50 ms in a debug build), and deterministically. The built-in gates make
/// no host calls while evaluating.
pub const HOST_CALL_FUEL: u64 = 2000;

/// Wall-clock budget for one call into a gate (epoch interruption). The
/// backstop for what fuel does not count (time inside a bulk memory
/// operation, a slow machine); fuel is the deterministic limit that stops a
/// runaway gate first (a busy loop burns the default fuel in about 20 ms).
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(500);

/// Linear-memory cap; growing past it traps instead of returning failure.
pub const DEFAULT_MEMORY_BYTES: usize = 64 << 20;

/// Maximum wasm stack. wasmtime's own default is 512 KiB.
pub const DEFAULT_STACK_BYTES: usize = 512 << 10;

/// The largest stack limit config may set. Wasm runs on the native stack of
/// the gate thread ([`GATE_THREAD_STACK_BYTES`]), so a limit above it would
/// crash the host instead of trapping.
pub const MAX_STACK_BYTES: usize = 1 << 20;

/// Maximum size of an evaluation (sum of its strings); larger is an error.
pub const DEFAULT_OUTPUT_BYTES: usize = 256 << 10;

/// Log lines a gate may send per evaluation; the rest are counted and dropped.
pub const MAX_LOG_LINES: usize = 100;

/// Bytes of log text a gate may send per evaluation.
pub const MAX_LOG_BYTES: usize = 16 << 10;

/// Core instances one gate instance may create. A Rust gate has three or
/// four (its module, wit-component's shim and fixups).
pub const MAX_CORE_INSTANCES: usize = 16;

/// Linear memories one gate instance may have (a Rust gate has one).
pub const MAX_MEMORIES: usize = 4;

/// Tables one gate instance may have (a Rust gate has two).
pub const MAX_TABLES: usize = 8;

/// Elements one table may hold; far above what Rust gates use.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;

/// What one table element counts against the memory limit.
pub const TABLE_ELEMENT_BYTES: usize = 8;

/// Native stack of the threads that run gates: room for the largest wasm
/// stack ([`MAX_STACK_BYTES`]) plus the host frames under it.
pub const GATE_THREAD_STACK_BYTES: usize = 8 << 20;

/// The most history a gate may declare it needs (`needs.history-ms`).
pub const MAX_DECLARED_HISTORY: Duration = Duration::from_secs(31 * 24 * 3600);

/// Wall-clock budget for all the gates of one phase evaluation together;
/// gates that would start (or run) past it are errors.
pub const DEFAULT_PHASE_BUDGET: Duration = Duration::from_secs(2);

/// How often the epoch advances while an evaluation runs; deadlines are
/// rounded up to whole ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The limits one gate's evaluation runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvaluationLimits {
    pub fuel: u64,
    pub deadline: Duration,
    pub memory_bytes: usize,
    pub stack_bytes: usize,
    pub output_bytes: usize,
}

impl Default for EvaluationLimits {
    fn default() -> Self {
        EvaluationLimits {
            fuel: DEFAULT_FUEL,
            deadline: DEFAULT_DEADLINE,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            stack_bytes: DEFAULT_STACK_BYTES,
            output_bytes: DEFAULT_OUTPUT_BYTES,
        }
    }
}

/// Optional overrides, as config gives them (runtime-wide, then per gate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    pub fuel: Option<u64>,
    pub deadline: Option<Duration>,
    pub memory_bytes: Option<usize>,
    pub stack_bytes: Option<usize>,
    pub output_bytes: Option<usize>,
}

impl EvaluationLimits {
    pub fn with(self, o: &LimitOverrides) -> Self {
        EvaluationLimits {
            fuel: o.fuel.unwrap_or(self.fuel),
            deadline: o.deadline.unwrap_or(self.deadline),
            memory_bytes: o.memory_bytes.unwrap_or(self.memory_bytes),
            stack_bytes: o.stack_bytes.unwrap_or(self.stack_bytes),
            output_bytes: o.output_bytes.unwrap_or(self.output_bytes),
        }
    }

    /// Epoch ticks until the deadline (see [`ticks_for`]).
    pub fn deadline_ticks(&self) -> u64 {
        ticks_for(self.deadline)
    }
}

/// Epoch ticks until `deadline`, rounded up, plus one for the tick in progress.
pub fn ticks_for(deadline: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos();
    (deadline.as_nanos().div_ceil(tick) as u64).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_field_by_field() {
        let l = EvaluationLimits::default().with(&LimitOverrides {
            fuel: Some(7),
            ..Default::default()
        });
        assert_eq!(l.fuel, 7);
        assert_eq!(l.memory_bytes, DEFAULT_MEMORY_BYTES);
    }

    #[test]
    fn deadline_rounds_up_to_ticks() {
        let l = EvaluationLimits {
            deadline: Duration::from_millis(12),
            ..Default::default()
        };
        assert_eq!(l.deadline_ticks(), 4);
    }
}
