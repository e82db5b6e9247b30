//! Collectors: one per fact source, run concurrently into one [`Snapshot`].
//!
//! Each collector has its own timeout and never fails the whole collection:
//! what it could not read becomes `unavailable` (nothing read) or `partial`
//! (gaps marked where they are) in its section of the snapshot.

mod http;
mod kubernetes;
mod ledger;
mod nats;
mod postgres;
mod prometheus;

pub use http::{MetricsCollector, ProbeCollector};
pub use kubernetes::KubernetesCollector;
pub use ledger::LedgerCollector;
pub use nats::NatsCollector;
pub use postgres::PostgresCollector;
pub use prometheus::PrometheusCollector;

pub use crate::clients::SourceError;
use crate::config::{Config, DEFAULT_SOURCE_TIMEOUT, DurationValue};
use gatekeeper_model::{Snapshot, Source, SourceStatus, Timestamp};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument as _;

/// Extra time past a collector's own deadline before its section is abandoned
/// (a collector checks its deadline itself and returns what it has).
const ABANDON_GRACE: Duration = Duration::from_millis(500);

/// One fact source.
pub trait Collector {
    /// The snapshot section this collector fills.
    type Facts: Send;
    /// The source's name, as in the snapshot and in `tracing` spans (`collect.<name>`).
    const NAME: &'static str;

    /// This source's budget.
    fn timeout(&self) -> Duration;

    /// Reads the source, returning by `deadline` with what it has. `Err` means
    /// nothing usable was read; gaps inside the facts are marked in the facts.
    fn collect(
        &self,
        deadline: Instant,
    ) -> impl Future<Output = Result<Self::Facts, SourceError>> + Send;

    /// True when the facts have no gaps (status `ok`, else `partial`).
    fn complete(facts: &Self::Facts) -> bool;
}

/// Runs one collector within its timeout and records status, time and duration.
pub async fn run_collector<C: Collector + Sync>(collector: &C) -> Source<C::Facts> {
    let started_at = chrono::Utc::now();
    let start = Instant::now();
    let deadline = start + collector.timeout();
    let span = tracing::info_span!("collect", source = C::NAME);
    let outcome = tokio::time::timeout_at(
        deadline + ABANDON_GRACE,
        collector.collect(deadline).instrument(span),
    )
    .await;
    let duration_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut source = match outcome {
        Ok(Ok(facts)) => {
            let status = if C::complete(&facts) {
                SourceStatus::Ok
            } else {
                SourceStatus::Partial
            };
            Source {
                status,
                facts: Some(facts),
                ..Source::default()
            }
        }
        Ok(Err(error)) => Source::unavailable(error.to_string()),
        Err(_) => Source::unavailable(format!(
            "no answer within {} (the source's timeout)",
            humanize(collector.timeout())
        )),
    };
    match &source.error {
        Some(e) => tracing::warn!(source = C::NAME, duration_ms, error = %e, "source unavailable"),
        None => {
            tracing::debug!(source = C::NAME, duration_ms, status = ?source.status, "collected")
        }
    }
    source.collected_at = Some(started_at);
    source.duration_ms = Some(duration_ms);
    source
}

/// Collects every configured source concurrently into one snapshot, and the
/// ledger when `[ledger]` is set. Sources the config does not name stay
/// `not-configured`.
pub async fn collect(config: &Config) -> Snapshot {
    let ledger = async {
        match &config.ledger {
            Some(_) => Some(run_collector(&LedgerCollector::new(config)).await),
            None => None,
        }
    };
    let (mut snapshot, ledger) = tokio::join!(collect_sources(config), ledger);
    if let Some(l) = ledger {
        snapshot.ledger = l;
    }
    snapshot
}

/// The configured sources only (`watch` reads the ledger less often).
pub async fn collect_sources(config: &Config) -> Snapshot {
    let taken_at: Timestamp = chrono::Utc::now();
    let mut snapshot = Snapshot::empty(taken_at);
    let sources = &config.sources;
    let nats = async {
        match &sources.nats {
            Some(c) => Some(run_collector(&NatsCollector::new(c.clone(), &config.base_dir)).await),
            None => None,
        }
    };
    let postgres = async {
        match &sources.postgres {
            Some(c) => Some(run_collector(&PostgresCollector::new(c.clone())).await),
            None => None,
        }
    };
    let kubernetes = async {
        match &sources.kubernetes {
            Some(c) => {
                Some(run_collector(&KubernetesCollector::new(c.clone(), &config.base_dir)).await)
            }
            None => None,
        }
    };
    let http = async {
        match sources.http.is_empty() {
            false => Some(run_collector(&ProbeCollector::new(sources.http.clone())).await),
            true => None,
        }
    };
    let metrics = async {
        match sources.metrics.is_empty() {
            false => Some(run_collector(&MetricsCollector::new(sources.metrics.clone())).await),
            true => None,
        }
    };
    let prometheus = async {
        match &sources.prometheus {
            Some(c) => {
                Some(run_collector(&PrometheusCollector::new(c.clone(), &config.base_dir)).await)
            }
            None => None,
        }
    };
    let (n, p, k, h, m, q) = tokio::join!(nats, postgres, kubernetes, http, metrics, prometheus);
    if let Some(n) = n {
        snapshot.nats = n;
    }
    if let Some(p) = p {
        snapshot.postgres = p;
    }
    if let Some(k) = k {
        snapshot.kubernetes = k;
    }
    if let Some(h) = h {
        snapshot.http = h;
    }
    if let Some(m) = m {
        snapshot.metrics = m;
    }
    if let Some(q) = q {
        snapshot.prometheus = q;
    }
    snapshot
}

/// A source's timeout from config, or the default.
fn timeout_or_default(value: Option<DurationValue>) -> Duration {
    value.map_or(DEFAULT_SOURCE_TIMEOUT, |d| d.0)
}

/// `1500ms` → `1.5s`, for messages.
fn humanize(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanize_durations() {
        assert_eq!(humanize(Duration::from_secs(5)), "5s");
        assert_eq!(humanize(Duration::from_millis(250)), "250ms");
        assert_eq!(humanize(Duration::from_millis(1500)), "1.5s");
    }
}
