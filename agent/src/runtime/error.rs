//! Why a gate could not be loaded, or an evaluation gave no usable answer.

use super::supported;
use gatekeeper_model as model;

/// Why a gate could not be loaded. The phase treats it as that gate's error.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are plainly something else (a core module, a native
    /// library, text): what they are and how to get a gate.
    #[error("{what}; {fix}")]
    NotAComponent { what: String, fix: String },
    /// The bytes are not a valid WebAssembly component.
    #[error("not a valid wasm component: {0}")]
    Compile(String),
    /// The component imports something the host does not provide.
    #[error("imports the host does not provide: {0}")]
    Link(String),
    /// The component does not export the gate world.
    #[error(
        "does not implement {}: {reason} (a gate written with the SDK exports it with \
         `gatekeeper_gate_sdk::export_gate!(YourGate);` in its lib.rs: is that line missing?)",
        supported(" or ")
    )]
    Interface { reason: String },
    /// The component was built for a contract version this host does not load.
    #[error(
        "built for gatekeeper:gate@{found}; this host loads {}",
        supported(" and ")
    )]
    Contract { found: String },
    /// The component needs more core instances, memories or tables than a gate may have.
    #[error("exceeds a sandbox limit: {0}")]
    SandboxLimit(String),
    /// The `sha256` pin in config does not match the bytes.
    #[error("sha256 mismatch: config pins {expected}, the gate is {actual}")]
    DigestMismatch { expected: String, actual: String },
    /// Calling `metadata` failed.
    #[error("metadata call failed: {0}")]
    Metadata(EvaluationError),
    /// The metadata is unusable (bad name, unknown source, newer schema).
    #[error("bad metadata: {0}")]
    BadMetadata(String),
    /// The engine could not be set up.
    #[error("engine: {0}")]
    Engine(String),
}

/// Why an evaluation gave no usable answer. Each becomes the gate's verdict
/// `error` with this text as the reason; the host keeps running.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvaluationError {
    #[error("ran out of fuel (limit {limit} units)")]
    FuelExhausted { limit: u64 },
    #[error("exceeded its deadline of {deadline_ms} ms (stopped after {elapsed_ms} ms)")]
    DeadlineExceeded { deadline_ms: u64, elapsed_ms: u64 },
    /// The phase's evaluation budget ran out before or while this gate ran.
    #[error("the phase's evaluation budget of {budget_ms} ms ran out ({})", if *.elapsed_ms == 0 { "before this gate started".to_owned() } else { format!("stopped after {elapsed_ms} ms") })]
    BudgetExhausted { budget_ms: u64, elapsed_ms: u64 },
    #[error("exceeded its memory limit of {limit_bytes} bytes")]
    MemoryLimit { limit_bytes: usize },
    /// It created more core instances, memories or tables than a gate may.
    #[error("exceeded a sandbox limit: {0}")]
    ResourceLimit(String),
    #[error("overflowed its stack (limit {limit_bytes} bytes)")]
    StackOverflow { limit_bytes: usize },
    /// Any other trap, e.g. a panic (its message is included when the gate wrote one).
    #[error("trapped: {0}")]
    Trap(String),
    #[error("output of {bytes} bytes exceeds the limit of {limit} bytes")]
    OutputTooLarge { bytes: usize, limit: usize },
    #[error("malformed output: {0}")]
    MalformedOutput(String),
    /// The gate itself reported it could not decide.
    #[error("gate error: {0}")]
    Gate(model::GateError),
    #[error("could not start the sandbox: {0}")]
    Instantiate(String),
}
