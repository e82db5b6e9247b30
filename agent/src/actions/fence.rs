//! Fencing: before each step, the agent proves it still holds the HA lease
//! it acts under. The lease key's revision is the **epoch**; a step runs
//! only while the key still names this agent at the epoch it last wrote (or
//! later) and that write is less than a TTL old on this agent's clock. A
//! holder paused past its TTL (a stopped VM, a long GC) that wakes up after
//! a standby took over finds the key moved on and refuses every step, and
//! says so (a `fenced` step and plan in the ledger). The epoch goes with
//! the actions whose receivers can check it: the `GATEKEEPER_LEASE_EPOCH`
//! variable of an exec step and the `Gatekeeper-Lease-Epoch` header of a
//! webhook, so a receiver can refuse an epoch older than one it has seen.
//!
//! What remains: the check and the action are two requests, so a holder
//! paused exactly between them (milliseconds) can still act once. NATS and
//! Kubernetes do not see the epoch (no precondition ties a stream update or
//! a patch to the lease key); a receiver that ignores it cannot tell.

use crate::clients::nats::JetStream;
use crate::config::Config;
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The lease this agent last wrote: (revision, when). Shared between the
/// lease keeper, which writes it, and the fence, which reads it.
pub type HeldLease = Arc<Mutex<Option<(u64, Instant)>>>;

/// Why a step may not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fenced {
    #[error("this agent does not hold the lease")]
    NotHeld,
    #[error(
        "this agent's lease (epoch {epoch}) was last renewed {age_ms} ms ago, more than its TTL of {ttl_ms} ms"
    )]
    Expired {
        epoch: u64,
        age_ms: u64,
        ttl_ms: u64,
    },
    #[error(
        "the lease moved on to epoch {current} (holder `{holder}`); this agent's epoch {epoch} is stale"
    )]
    Moved {
        epoch: u64,
        current: u64,
        holder: String,
    },
    #[error("the lease cannot be read, so this agent cannot prove it holds it: {0}")]
    Unreadable(String),
}

/// Checks the lease before a step (`None` in [`super::Executor`]: a file
/// ledger, one agent, nothing to fence).
#[derive(Clone)]
pub struct Fence {
    config: Arc<Config>,
    stream: String,
    subject: String,
    agent: String,
    ttl: Duration,
    held: HeldLease,
}

impl std::fmt::Debug for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fence")
            .field("subject", &self.subject)
            .finish()
    }
}

impl Fence {
    /// The fence for the lease on `key` (the watched phase) held as `agent`.
    pub fn new(config: Arc<Config>, key: &str, agent: &str, held: HeldLease) -> Fence {
        let lc = config.ledger.clone().unwrap_or_default();
        let bucket = lc.lease_bucket().to_owned();
        Fence {
            stream: format!("KV_{bucket}"),
            subject: format!("$KV.{bucket}.{key}"),
            agent: agent.to_owned(),
            ttl: lc.lease_ttl(),
            held,
            config,
        }
    }

    /// The epoch this agent may act under now, or why it may not.
    pub async fn check(&self) -> Result<u64, Fenced> {
        let (epoch, at) = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ok_or(Fenced::NotHeld)?;
        let age = at.elapsed();
        if age >= self.ttl {
            return Err(Fenced::Expired {
                epoch,
                age_ms: age.as_millis() as u64,
                ttl_ms: self.ttl.as_millis() as u64,
            });
        }
        #[derive(Deserialize)]
        struct Value {
            holder: String,
        }
        let js = JetStream::open(&self.config)
            .await
            .map_err(|e| Fenced::Unreadable(e.to_string()))?;
        let (current, holder) = match js.last_by_subject(&self.stream, &self.subject).await {
            Ok(Some((rev, bytes))) => (
                rev,
                serde_json::from_slice::<Value>(&bytes)
                    .map(|v| v.holder)
                    .unwrap_or_default(),
            ),
            Ok(None) => (0, String::new()),
            Err(e) => return Err(Fenced::Unreadable(e.message)),
        };
        // Our own renewals move the revision on too: still ours.
        if holder == self.agent && current >= epoch {
            return Ok(current);
        }
        Err(Fenced::Moved {
            epoch,
            current,
            holder,
        })
    }
}
