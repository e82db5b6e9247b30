//! `normalize-service`: workers pulling from the durable
//! `normalize-hrv-durable`, each bound by the mode (seed 004's fallback:
//! multi tries `AA_CORE_HOT` and falls back to `ATHLETE_ALLY_EVENTS`;
//! single binds the legacy stream). A reading becomes an `hrv_data` row
//! (`ln_rmssd` = ln(rmssd), seed 002's check: rmssd 62 → 4.127), or, when it
//! is invalid or the fault switch says so, a message on `dlq.>`; either way
//! it is acked only after that. A database error naks it (redelivered).
//!
//! A worker whose own binding is idle drains the other stream's consumer:
//! what a mode switch leaves behind (the legacy stream's last messages
//! after the cutover, `AA_CORE_HOT`'s after a rollback) is still processed,
//! so nothing is stranded — the stand-in for old pods finishing their
//! queue before they stop.

use crate::mode::{Mode, read_fault, read_mode};
use crate::{CORE, DLQ_SUBJECT, DURABLE, LEGACY};
use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use axum::extract::State;
use axum::routing::get;
use futures::StreamExt as _;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabels {
    result: String,
    subject: String,
    stream: String,
    durable: String,
    event_stream_mode: String,
}

/// The table the rows go to (the seeds' `hrv_data`).
pub const SCHEMA: &str = r#"CREATE TABLE IF NOT EXISTS hrv_data (
    id text PRIMARY KEY,
    "userId" text NOT NULL,
    rmssd double precision NOT NULL,
    ln_rmssd double precision NOT NULL,
    "createdAt" timestamptz NOT NULL DEFAULT now()
)"#;

pub struct Options {
    pub workers: usize,
    pub mode_file: PathBuf,
    pub fault_file: PathBuf,
}

#[derive(Clone)]
struct Shared {
    js: jetstream::Context,
    db: Arc<tokio_postgres::Client>,
    messages: Family<MessageLabels, Counter>,
    latency: Histogram,
    registry: Arc<Registry>,
    fault_file: Arc<PathBuf>,
}

/// Starts the workers and returns the service's router (`/health`, `/metrics`).
pub async fn start(
    client: async_nats::Client,
    database_url: &str,
    options: Options,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(axum::Router, Vec<tokio::task::JoinHandle<()>>), String> {
    let (db, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("normalize: database: {e}"))?;
    tokio::spawn(connection);
    db.batch_execute(SCHEMA)
        .await
        .map_err(|e| format!("normalize: creating hrv_data: {e}"))?;
    let messages = Family::<MessageLabels, Counter>::default();
    let latency = Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]);
    let mut registry = Registry::default();
    registry.register(
        "normalize_hrv_messages",
        "HRV messages processed, by result",
        messages.clone(),
    );
    registry.register(
        "normalize_hrv_processing_duration_seconds",
        "Time to process one HRV message",
        latency.clone(),
    );
    let shared = Shared {
        js: jetstream::new(client),
        db: Arc::new(db),
        messages,
        latency,
        registry: Arc::new(registry),
        fault_file: Arc::new(options.fault_file.clone()),
    };
    let mode_file = Arc::new(options.mode_file);
    let workers = (0..options.workers)
        .map(|i| {
            let s = shared.clone();
            let mode_file = mode_file.clone();
            let stop = stop.clone();
            tokio::spawn(async move { worker(s, i, options.workers, mode_file, stop).await })
        })
        .collect();
    let app = axum::Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(shared);
    Ok((app, workers))
}

async fn health(State(s): State<Shared>) -> (axum::http::StatusCode, &'static str) {
    if s.db.is_closed() {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "database connection closed",
        )
    } else {
        (axum::http::StatusCode::OK, "ok")
    }
}

async fn metrics(State(s): State<Shared>) -> String {
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut out, &s.registry);
    out
}

/// FNV-1a: the same reading always gets the same fate under a fault.
fn bucket(id: &str) -> u8 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % 100) as u8
}

async fn worker(
    s: Shared,
    i: usize,
    n: usize,
    mode_file: Arc<PathBuf>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut consumers: BTreeMap<&'static str, PullConsumer> = BTreeMap::new();
    let mut mode = Mode { multi_percent: 0 };
    while !*stop.borrow() {
        mode = read_mode(&mode_file, mode);
        let multi = mode.worker_is_multi(i, n);
        let label = if multi { "multi" } else { "single" };
        let candidates: &[&'static str] = if multi { &[CORE, LEGACY] } else { &[LEGACY] };
        let mut bound = None;
        for stream in candidates {
            if bind(&s.js, &mut consumers, stream).await {
                bound = Some(*stream);
                break;
            }
        }
        let Some(primary) = bound else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        if process_batch(&s, &mut consumers, primary, label).await == 0 {
            for other in [CORE, LEGACY] {
                if other != primary && bind(&s.js, &mut consumers, other).await {
                    process_batch(&s, &mut consumers, other, label).await;
                }
            }
        }
    }
}

/// Whether `stream` has the durable (kept once found).
async fn bind(
    js: &jetstream::Context,
    consumers: &mut BTreeMap<&'static str, PullConsumer>,
    stream: &'static str,
) -> bool {
    if consumers.contains_key(stream) {
        return true;
    }
    let Ok(st) = js.get_stream(stream).await else {
        return false;
    };
    match st
        .get_consumer::<jetstream::consumer::pull::Config>(DURABLE)
        .await
    {
        Ok(c) => {
            consumers.insert(stream, c);
            true
        }
        Err(_) => false,
    }
}

/// One fetch from `stream`'s durable; returns how many it processed.
async fn process_batch(
    s: &Shared,
    consumers: &mut BTreeMap<&'static str, PullConsumer>,
    stream: &'static str,
    mode: &str,
) -> usize {
    let Some(consumer) = consumers.get(stream) else {
        return 0;
    };
    let batch = consumer
        .fetch()
        .max_messages(10)
        .expires(Duration::from_millis(300))
        .messages()
        .await;
    let Ok(mut batch) = batch else {
        // The stream or consumer went away: look it up again next time.
        consumers.remove(stream);
        return 0;
    };
    let mut processed = 0;
    while let Some(Ok(message)) = batch.next().await {
        processed += 1;
        let started = Instant::now();
        let result = handle(s, &message).await;
        match result {
            "retry" => {
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_millis(500))))
                    .await;
            }
            _ => {
                let _ = message.double_ack().await;
            }
        }
        s.latency.observe(started.elapsed().as_secs_f64());
        s.messages
            .get_or_create(&MessageLabels {
                result: result.into(),
                subject: message.subject.to_string(),
                stream: stream.into(),
                durable: DURABLE.into(),
                event_stream_mode: mode.into(),
            })
            .inc();
    }
    processed
}

/// `success`, `dlq` or `retry` (not acked).
async fn handle(s: &Shared, message: &jetstream::Message) -> &'static str {
    let reading: serde_json::Value = serde_json::from_slice(&message.payload).unwrap_or_default();
    let id = reading["id"].as_str().unwrap_or("").to_owned();
    let user = reading["userId"].as_str().unwrap_or("");
    let rmssd = reading["rmssd"].as_f64().unwrap_or(0.0);
    let faulty = bucket(&id) < read_fault(&s.fault_file);
    if id.is_empty() || user.is_empty() || rmssd <= 0.0 || faulty {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("dlq-{id}").as_str());
        let sent = match s
            .js
            .publish_with_headers(DLQ_SUBJECT, headers, message.payload.clone())
            .await
        {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        return if sent { "dlq" } else { "retry" };
    }
    let inserted = s
        .db
        .execute(
            r#"INSERT INTO hrv_data (id, "userId", rmssd, ln_rmssd) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING"#,
            &[&id, &user, &rmssd, &rmssd.ln()],
        )
        .await;
    if inserted.is_ok() { "success" } else { "retry" }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_reading_always_lands_in_the_same_bucket() {
        assert_eq!(super::bucket("hrv-1"), super::bucket("hrv-1"));
        let under_half = (0..1000)
            .filter(|n| super::bucket(&format!("hrv-{n}")) < 50)
            .count();
        assert!((400..600).contains(&under_half), "{under_half}");
    }
}
