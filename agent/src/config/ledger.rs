//! `[ledger]`: where the ledger lives, and its checks.

use super::{DurationValue, Invalid, SourcesConfig, at};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Where the ledger lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LedgerBackend {
    /// A JetStream stream (records) and KV bucket (lease) on `[sources.nats]`.
    Nats,
    /// A local JSONL file; no lease (one agent).
    File,
}

pub const DEFAULT_LEDGER_STREAM: &str = "GATEKEEPER_LEDGER";
pub const DEFAULT_LEDGER_SUBJECT: &str = "gatekeeper.ledger";
pub const DEFAULT_LEASE_BUCKET: &str = "gatekeeper-lease";
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(15);
pub const DEFAULT_LEDGER_FILE: &str = "gatekeeper-ledger.jsonl";
pub const DEFAULT_LEDGER_MAX_AGE: Duration = Duration::from_secs(90 * 24 * 3600);

/// `[ledger]`: phase verdicts over time, incidents, actions, attestations.
/// With it, `check` reads the ledger into the snapshot.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// Default: `nats` when `[sources.nats]` is set, else `file`.
    pub backend: Option<LedgerBackend>,
    /// JetStream stream of records (default `GATEKEEPER_LEDGER`).
    pub stream: Option<String>,
    /// Subject prefix; records go to `<subject>.<kind>` (default `gatekeeper.ledger`).
    pub subject: Option<String>,
    /// Replicas of the stream and the lease bucket, when they are created (default 1).
    pub replicas: Option<u32>,
    /// Records older than this are dropped by JetStream (default 90d).
    pub max_age: Option<DurationValue>,
    /// KV bucket holding the HA lease (default `gatekeeper-lease`).
    pub lease_bucket: Option<String>,
    /// A lease not renewed for this long may be taken over (default 15s).
    pub lease_ttl: Option<DurationValue>,
    /// The JSONL file of the `file` backend, relative to the config (default
    /// `gatekeeper-ledger.jsonl`).
    pub file: Option<PathBuf>,
}

impl LedgerConfig {
    pub fn backend(&self, sources: &SourcesConfig) -> LedgerBackend {
        self.backend.unwrap_or(if sources.nats.is_some() {
            LedgerBackend::Nats
        } else {
            LedgerBackend::File
        })
    }
    pub fn stream(&self) -> &str {
        self.stream.as_deref().unwrap_or(DEFAULT_LEDGER_STREAM)
    }
    pub fn subject(&self) -> &str {
        self.subject.as_deref().unwrap_or(DEFAULT_LEDGER_SUBJECT)
    }
    pub fn lease_bucket(&self) -> &str {
        self.lease_bucket.as_deref().unwrap_or(DEFAULT_LEASE_BUCKET)
    }
    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl.map_or(DEFAULT_LEASE_TTL, |d| d.0)
    }
    pub fn max_age(&self) -> Duration {
        self.max_age.map_or(DEFAULT_LEDGER_MAX_AGE, |d| d.0)
    }
}

/// A JetStream stream or bucket name: no spaces, dots or wildcards.
pub(super) fn js_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
}

/// A subject prefix: dot-separated tokens, no wildcards.
fn subject_prefix(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|t| {
            !t.is_empty()
                && !t
                    .chars()
                    .any(|c| c.is_whitespace() || matches!(c, '*' | '>'))
        })
}

pub(super) fn validate_ledger(l: &LedgerConfig, sources: &SourcesConfig) -> Result<(), Invalid> {
    if l.backend(sources) == LedgerBackend::Nats && sources.nats.is_none() {
        return Err((
            at(&["ledger", "backend"]),
            "the `nats` ledger needs [sources.nats]".into(),
        ));
    }
    for (field, value) in [("stream", l.stream()), ("lease_bucket", l.lease_bucket())] {
        if !js_name(value) {
            return Err((
                at(&["ledger", field]),
                format!("`{value}` is not a JetStream name (no spaces, `.`, `*`, `>`)"),
            ));
        }
    }
    if !subject_prefix(l.subject()) {
        return Err((
            at(&["ledger", "subject"]),
            "must be a subject prefix like `gatekeeper.ledger` (no wildcards)".into(),
        ));
    }
    if l.replicas.is_some_and(|r| !(1..=5).contains(&r)) {
        return Err((at(&["ledger", "replicas"]), "must be 1 to 5".into()));
    }
    if l.lease_ttl().as_millis() < 1000 {
        return Err((at(&["ledger", "lease_ttl"]), "must be at least 1s".into()));
    }
    Ok(())
}
