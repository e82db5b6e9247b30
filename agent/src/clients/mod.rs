//! Connections to the world outside, built one way and used by everything
//! that talks to it: the collectors, the ledger, the HA lease and the
//! rollback actions.
//!
//! - [`nats`]: a NATS connection from `[sources.nats]` and the JetStream API
//!   on it (one request helper, one error type).
//! - [`kubernetes`]: a `kube::Client` from `[sources.kubernetes]` and a
//!   Deployment's rollout status as `kubectl` computes it.

pub mod kubernetes;
pub mod nats;

use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;

/// Why a source, or a part of one, could not be read or reached. Its text
/// is what the snapshot records as the source's (or the part's) error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The source's own timeout ran out before `what` was read.
    #[error("{what}: not read, the source's timeout was reached")]
    Deadline { what: String },
    /// No connection, or the request got no answer.
    #[error("{0}")]
    Unreachable(String),
    /// The server answered, refusing or failing the request.
    #[error("{0}")]
    Refused(String),
    /// The answer could not be decoded, or says something impossible.
    #[error("{0}")]
    Unreadable(String),
    /// What the connection needs locally is missing or unusable: the
    /// config's section, a credentials file, a kubeconfig.
    #[error("{0}")]
    Setup(String),
    /// Every part of the source failed; nothing at all was read.
    #[error("{}", .0.join("; "))]
    NothingRead(Vec<String>),
}

impl SourceError {
    /// The same error with `context` before its text (`configmap ns/x: …`).
    pub fn context(self, context: impl std::fmt::Display) -> SourceError {
        let text = format!("{context}: {self}");
        match self {
            SourceError::Refused(_) => SourceError::Refused(text),
            SourceError::Setup(_) => SourceError::Setup(text),
            _ => SourceError::Unreachable(text),
        }
    }
}

/// Time left until `deadline`, or an error naming what was cut off.
pub fn remaining(deadline: Instant, what: &str) -> Result<Duration, SourceError> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| SourceError::Deadline {
            what: what.to_owned(),
        })
}

/// `path` as given when absolute, else under `base_dir` (the config file's
/// directory: credential, TLS and kubeconfig paths are relative to it).
pub fn resolve(base_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

/// Installs rustls' ring provider once; every TLS client here uses it.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another provider is already installed, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn remaining_errs_after_the_deadline() {
        let past = Instant::now() - Duration::from_millis(1);
        assert_eq!(
            remaining(past, "stream S").unwrap_err().to_string(),
            "stream S: not read, the source's timeout was reached"
        );
        assert!(remaining(Instant::now() + Duration::from_secs(5), "x").is_ok());
    }

    #[test]
    fn context_keeps_the_kind_and_prefixes_the_text() {
        let e = SourceError::Refused("answered 403".into()).context("pods in ns");
        assert_eq!(e, SourceError::Refused("pods in ns: answered 403".into()));
    }
}
