//! The gate runtime: the one place that runs `bindgen!` and owns the wasmtime
//! engines. Every call into a gate (metadata, needs, evaluate) runs on a gate
//! thread ([`pool`]), never on the async runtime, in a fresh `Store` from a
//! pre-instantiated component, with fuel, an epoch deadline, one memory
//! budget for the whole instance, a stack cap and an output cap. Gates see no
//! files, network, environment, arguments or real clock, and nothing they
//! can call waits ([`wasi`]): the clock is the snapshot's time and randomness
//! is seeded, so the same input gives the same output.
//!
//! - [`engine`]: [`GateRuntime`], engines by stack size, loading and the
//!   checks a component passes before it is a [`LoadedGate`];
//! - [`gate`]: a [`LoadedGate`]'s API (metadata, needs, evaluate);
//! - `call`: one call in a fresh sandbox and how its failure is classified;
//! - [`error`]: [`LoadError`] and [`EvaluationError`];
//! - `contract`: the WIT bindings of each contract version; `sandbox`,
//!   `wasi`, `limits`, `ticker`, `pool`: what contains a gate.

mod call;
mod contract;
mod engine;
mod error;
mod gate;
pub mod limits;
mod pool;
mod sandbox;
mod sniff;
mod ticker;
mod wasi;

pub use contract::{Contract, SUPPORTED as SUPPORTED_CONTRACTS};
pub use engine::GateRuntime;
pub use error::{EvaluationError, LoadError};
pub use gate::{EvaluationInput, GateNeeds, LoadedGate, PendingEvaluation};
pub use limits::{EvaluationLimits, LimitOverrides};
pub use pool::may_run_gates_here;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `gatekeeper:gate@0.1.0 and gatekeeper:gate@0.2.0`
fn supported(joiner: &str) -> String {
    SUPPORTED_CONTRACTS
        .iter()
        .map(|v| format!("gatekeeper:gate@{v}"))
        .collect::<Vec<_>>()
        .join(joiner)
}

/// How the runtime builds its engines.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Where compiled gates are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Use the pooling instance allocator (faster fresh instances, more
    /// memory to start; `gate_set::Workload` chooses it for the daemon).
    pub pooling: bool,
    /// The largest memory cap any gate will use (sizes the pool's slots).
    pub max_memory_bytes: usize,
    /// Gate threads: how many gates of a phase run at once.
    pub threads: usize,
}

/// One gate thread per core, at most 8.
pub fn default_gate_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8))
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            cache_dir: default_cache_dir(),
            pooling: true,
            max_memory_bytes: limits::DEFAULT_MEMORY_BYTES,
            threads: default_gate_threads(),
        }
    }
}

/// `$XDG_CACHE_HOME/gatekeeper` or `~/.cache/gatekeeper`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("gatekeeper").join("wasmtime"))
}

/// When a whole phase's evaluation must end (see [`limits::DEFAULT_PHASE_BUDGET`]).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub end: Instant,
    pub total: Duration,
}

impl Budget {
    pub fn starting_now(total: Duration) -> Self {
        Budget {
            end: Instant::now() + total,
            total,
        }
    }
}
