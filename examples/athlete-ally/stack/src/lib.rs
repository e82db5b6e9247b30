//! A live stand-in for the seeds' system (`../../../shared/seeds/`), small
//! enough to start on loopback in a second:
//!
//! - [`ingest`]: `ingest-service` — an HTTP webhook (`POST /webhook/hrv`)
//!   that publishes each reading to `athlete-ally.hrv.raw-received` on
//!   JetStream (deduplicated by `Nats-Msg-Id`, retried while no stream holds
//!   the subject), `/health`, `/metrics`.
//! - [`normalize`]: `normalize-service` — pull consumers on the durable
//!   `normalize-hrv-durable`, bound by `EVENT_STREAM_MODE` with seed 004's
//!   fallback (multi: `AA_CORE_HOT`, else `ATHLETE_ALLY_EVENTS`; single: the
//!   legacy stream), rows into `hrv_data`, failures to `dlq.>`,
//!   `normalize_hrv_messages_total{result,subject,stream,durable}` and a
//!   latency histogram, `/health`.
//! - [`load`]: a load generator posting readings at a fixed rate.
//! - The mode comes from a file (`single`, `multi`, or `multi 10` for a
//!   canary share of the workers): the stand-in for the `event-bus-config`
//!   ConfigMap, which a phase step or the rollback rewrites. A fault file
//!   (a percentage) makes normalize fail that share of messages.
//! - [`demo`]: `scripts/demo live`, the whole migration driven through
//!   `gatekeeper apply` and `watch` against this stack.

pub mod demo;
pub mod ingest;
pub mod load;
pub mod mode;
pub mod normalize;

/// The subject the ingest publishes and normalize's consumer filters.
pub const HRV_SUBJECT: &str = "athlete-ally.hrv.raw-received";
/// Where normalize sends what it cannot process.
pub const DLQ_SUBJECT: &str = "dlq.hrv.normalize-failed";
pub const LEGACY: &str = "ATHLETE_ALLY_EVENTS";
pub const CORE: &str = "AA_CORE_HOT";
pub const DLQ: &str = "AA_DLQ";
pub const DURABLE: &str = "normalize-hrv-durable";

/// Serves an axum router on `listener` until the task is dropped.
pub fn serve(listener: tokio::net::TcpListener, app: axum::Router) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}
