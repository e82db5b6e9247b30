//! The HA lease: one agent acts, the others evaluate and report. It lives in
//! a KV bucket (a JetStream stream `KV_<bucket>`, the same layout `nats kv`
//! reads), taken and renewed by compare-and-set on the key's revision.

use crate::actions::fence::{Fence, HeldLease};
use crate::clients::nats::{ERR_WRONG_LAST_SEQUENCE, Expected, JetStream, JsError};
use crate::config::{Config, LedgerBackend, LedgerConfig};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Whether this agent may act this round.
#[derive(Debug, Clone, Copy)]
pub struct LeaseState {
    /// It holds the lease (or there is no lease: one agent).
    pub acting: bool,
    /// The lease could be read: if not acting, someone else holds it.
    pub known: bool,
}

/// The lease across rounds: (re)opened while NATS is away, renewed every
/// round. With a file ledger there is no lease and the one agent acts.
pub struct LeaseKeeper {
    config: Arc<Config>,
    /// The key: the watched phase.
    key: String,
    agent: String,
    lease: Option<Lease>,
    /// What this agent last wrote into the lease, shared with the fence.
    held: HeldLease,
    /// Whether the last round acted (taking or losing the lease is news).
    pub was_acting: bool,
}

impl LeaseKeeper {
    pub fn new(config: &Arc<Config>, key: &str, agent: &str) -> LeaseKeeper {
        LeaseKeeper {
            config: config.clone(),
            key: key.to_owned(),
            agent: agent.to_owned(),
            lease: None,
            held: HeldLease::default(),
            was_acting: false,
        }
    }

    /// The epoch (the lease key's revision) this agent last wrote, while it holds it.
    pub fn epoch(&self) -> Option<u64> {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|(rev, _)| rev)
    }

    /// The fence the actions check before each step: `None` with a file
    /// ledger (no lease: one agent).
    pub fn fence(&self) -> Option<Fence> {
        (self.ledger_config().backend(&self.config.sources) == LedgerBackend::Nats).then(|| {
            Fence::new(
                self.config.clone(),
                &self.key,
                &self.agent,
                self.held.clone(),
            )
        })
    }

    fn ledger_config(&self) -> LedgerConfig {
        self.config.ledger.clone().unwrap_or_default()
    }

    /// Opens the lease if it is not open, and takes or renews it.
    pub async fn step(&mut self) -> LeaseState {
        let ledger = self.ledger_config();
        if ledger.backend(&self.config.sources) != LedgerBackend::Nats {
            return LeaseState {
                acting: true,
                known: true,
            };
        }
        if self.lease.is_none() {
            match JetStream::open(&self.config).await {
                Ok(js) => match Lease::open(js, &ledger, &self.key, &self.agent, self.held.clone())
                    .await
                {
                    Ok(l) => self.lease = Some(l),
                    Err(e) => tracing::warn!(error = %e, "lease bucket not reachable"),
                },
                Err(e) => tracing::warn!(error = %e, "lease: NATS not reachable"),
            }
        }
        let Some(lease) = self.lease.as_mut() else {
            return LeaseState {
                acting: false,
                known: false,
            };
        };
        match lease.tick().await {
            Ok(held) => LeaseState {
                acting: held,
                known: true,
            },
            Err(e) => {
                tracing::warn!(error = %e, "lease: cannot renew; not acting");
                self.lease = None;
                LeaseState {
                    acting: false,
                    known: false,
                }
            }
        }
    }

    /// Who holds the lease, when someone else does.
    pub fn holder(&self) -> Option<&str> {
        self.lease.as_ref().and_then(Lease::holder)
    }

    /// Gives the lease up (at shutdown); otherwise it expires after its TTL.
    pub async fn release(&mut self) {
        if let Some(l) = self.lease.as_mut()
            && let Err(e) = l.release().await
        {
            tracing::warn!(error = %e, "lease not released; it expires after its TTL");
        }
    }
}

/// What the lease's key holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseValue {
    /// The agent holding it; empty when released.
    holder: String,
    ttl_ms: u64,
}

/// The HA lease: one agent acts, the others evaluate and report.
///
/// Time is each agent's own monotonic clock: the holder counts from its last
/// successful renewal, a standby from when it first saw the current revision.
/// A standby takes over only after the revision stayed unchanged for a whole
/// TTL, by which time the holder has stopped counting itself the holder.
#[derive(Debug)]
pub struct Lease {
    js: JetStream,
    stream: String,
    subject: String,
    agent: String,
    ttl: Duration,
    /// The revision we wrote, and when.
    held: HeldLease,
    /// (revision, holder, first seen) of someone else's lease.
    observed: Option<(u64, String, std::time::Instant)>,
}

impl Lease {
    /// Opens the lease bucket (created if missing) for `key` (e.g. the watched phase).
    pub async fn open(
        js: JetStream,
        config: &LedgerConfig,
        key: &str,
        agent: &str,
        held: HeldLease,
    ) -> Result<Lease, JsError> {
        let bucket = config.lease_bucket();
        let stream = format!("KV_{bucket}");
        js.ensure_stream(serde_json::json!({
            "name": stream,
            "subjects": [format!("$KV.{bucket}.>")],
            "retention": "limits",
            "storage": "file",
            "discard": "new",
            "max_msgs_per_subject": 1,
            "allow_rollup_hdrs": true,
            "deny_delete": true,
            "num_replicas": config.replicas.unwrap_or(1),
        }))
        .await?;
        Ok(Lease {
            js,
            stream,
            subject: format!("$KV.{bucket}.{key}"),
            agent: agent.to_owned(),
            ttl: config.lease_ttl(),
            held,
            observed: None,
        })
    }

    fn held_now(&self) -> Option<(u64, std::time::Instant)> {
        *self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_held(&self, held: Option<(u64, std::time::Instant)>) {
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = held;
    }

    /// True while we hold it: renewed less than a TTL ago.
    pub fn held(&self) -> bool {
        self.held_now()
            .is_some_and(|(_, at)| at.elapsed() < self.ttl)
    }

    /// The other holder we last saw, if any.
    pub fn holder(&self) -> Option<&str> {
        self.observed.as_ref().map(|(_, h, _)| h.as_str())
    }

    /// Renews, takes or observes the lease; returns whether we hold it now.
    pub async fn tick(&mut self) -> Result<bool, JsError> {
        let current = self.js.last_by_subject(&self.stream, &self.subject).await?;
        let (rev, value) = match current {
            None => (0, None),
            Some((rev, bytes)) => (rev, serde_json::from_slice::<LeaseValue>(&bytes).ok()),
        };
        let mine = value.as_ref().is_some_and(|v| v.holder == self.agent);
        let free = value.as_ref().is_none_or(|v| v.holder.is_empty());
        if mine || free {
            self.observed = None;
            let fresh = self
                .held_now()
                .is_some_and(|(r, at)| r == rev && at.elapsed() < self.ttl / 3);
            if fresh {
                return Ok(true);
            }
            return self.write(rev).await;
        }
        self.set_held(None);
        let holder = value.map(|v| v.holder).unwrap_or_default();
        match &self.observed {
            Some((r, _, since)) if *r == rev => {
                if since.elapsed() >= self.ttl {
                    tracing::warn!(holder = %holder, "lease not renewed for a whole TTL; taking it over");
                    return self.write(rev).await;
                }
            }
            _ => self.observed = Some((rev, holder, std::time::Instant::now())),
        }
        Ok(false)
    }

    /// Compare-and-set on `rev`: we hold it if nobody wrote in between.
    async fn write(&mut self, rev: u64) -> Result<bool, JsError> {
        let at = std::time::Instant::now();
        match self.put(self.agent.clone(), rev).await {
            Ok(new_rev) => {
                self.set_held(Some((new_rev, at)));
                self.observed = None;
                Ok(true)
            }
            Err(e) if e.code == ERR_WRONG_LAST_SEQUENCE => {
                self.set_held(None);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Writes `holder` into the key if its revision is still `rev`.
    async fn put(&self, holder: String, rev: u64) -> Result<u64, JsError> {
        let value = LeaseValue {
            holder,
            ttl_ms: self.ttl.as_millis() as u64,
        };
        self.js
            .publish(
                &self.subject,
                serde_json::to_vec(&value).expect("encodes"),
                Some(Expected::SubjectSequence(rev)),
            )
            .await
    }

    /// Gives the lease up (on shutdown) so a standby need not wait a TTL.
    pub async fn release(&mut self) -> Result<(), JsError> {
        let held = self.held_now();
        self.set_held(None);
        if let Some((rev, _)) = held {
            self.put(String::new(), rev).await?;
        }
        Ok(())
    }
}
