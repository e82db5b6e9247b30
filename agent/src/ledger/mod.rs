//! The ledger: what Gatekeeper saw and did, as facts `check` can read back.
//!
//! - [`record`]: the record kinds, one per thing that happens.
//! - [`fold`]: records folded into the snapshot's `ledger` section (phase
//!   verdicts over time, incidents, attestations; actions and alerts are
//!   kept for audit).
//! - [`store`]: where they are kept, a JetStream stream or a local JSONL file.
//! - [`chain`]: the hash chain every record is sealed into, and how a read
//!   finds an edited, removed, moved or forged record.
//! - [`journal`]: how `watch` writes them so that none is lost (a local
//!   spool while NATS is away) and reads back only what is new.
//!
//! Reading it into a snapshot is a collector's job
//! ([`crate::collect::LedgerCollector`]); the HA lease is the watch's
//! ([`crate::watch::lease`]).

pub mod chain;
pub mod fold;
pub mod journal;
pub mod record;
pub mod store;

pub use fold::{VERDICT_RUN_GAP_MS, fold, fold_one};
pub use journal::Journal;
pub use record::{APPLY_TRIGGER, ApplyOutcome, GateRan, PlanOutcome, Record, StepOutcome};
pub use store::Ledger;

/// Why the ledger could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger {where_}: {message}")]
    Unavailable { where_: String, message: String },
    /// A record that does not parse: nothing after it is trusted.
    #[error("ledger {where_}: record {index}: {message}")]
    BadRecord {
        where_: String,
        index: usize,
        message: String,
    },
    /// The hash chain breaks at a record: nothing from it on is trusted.
    #[error("ledger {where_}: the chain breaks at record {seq}: {why}")]
    Broken {
        where_: String,
        seq: u64,
        why: chain::Break,
    },
}

impl From<LedgerError> for crate::clients::SourceError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Unavailable { .. } => Self::Unreachable(e.to_string()),
            LedgerError::BadRecord { .. } | LedgerError::Broken { .. } => {
                Self::Unreadable(e.to_string())
            }
        }
    }
}
