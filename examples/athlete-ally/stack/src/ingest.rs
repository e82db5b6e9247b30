//! `ingest-service`: `POST /webhook/hrv` with `{"id", "userId", "rmssd"}`
//! publishes the reading to JetStream and answers with the stream that
//! stored it. The subject is the same in both modes; which stream holds it
//! is the topology's business (the migration moves it). A publish that
//! finds no stream (between a phase's subject steps, for milliseconds) is
//! retried for up to 15 s, deduplicated by `Nats-Msg-Id`, so a reading is
//! stored once or the webhook answers 503.

use crate::HRV_SUBJECT;
use async_nats::jetstream;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabel {
    stream: String,
}

/// What the ingest has stored, for the demo's count.
#[derive(Default)]
pub struct Published {
    /// Reading id → the stream that stored it (the last one, on a retry).
    pub ids: BTreeMap<String, String>,
    /// Publishes per stream, in order: (when, stream).
    pub log: Vec<(chrono::DateTime<chrono::Utc>, String)>,
}

#[derive(Clone)]
struct Ingest {
    js: jetstream::Context,
    published: Arc<Mutex<Published>>,
    counter: Family<StreamLabel, Counter>,
    registry: Arc<Registry>,
}

/// The router; `published` collects what was stored.
pub fn router(client: async_nats::Client, published: Arc<Mutex<Published>>) -> axum::Router {
    let counter = Family::<StreamLabel, Counter>::default();
    let mut registry = Registry::default();
    registry.register(
        "ingest_hrv_published",
        "Readings stored, by the stream that stored them",
        counter.clone(),
    );
    let state = Ingest {
        js: jetstream::new(client),
        published,
        counter,
        registry: Arc::new(registry),
    };
    axum::Router::new()
        .route("/webhook/hrv", post(webhook))
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn metrics(State(s): State<Ingest>) -> String {
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut out, &s.registry);
    out
}

async fn webhook(State(s): State<Ingest>, body: axum::body::Bytes) -> (StatusCode, String) {
    let Ok(reading) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON".into());
    };
    let Some(id) = reading["id"].as_str().map(str::to_owned) else {
        return (StatusCode::BAD_REQUEST, "no id".into());
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.as_str());
        let sent = match s
            .js
            .publish_with_headers(HRV_SUBJECT, headers, body.clone())
            .await
        {
            Ok(ack) => ack.await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match sent {
            Ok(ack) => {
                s.counter
                    .get_or_create(&StreamLabel {
                        stream: ack.stream.clone(),
                    })
                    .inc();
                let mut p = s.published.lock().unwrap_or_else(|e| e.into_inner());
                p.ids.insert(id, ack.stream.clone());
                p.log.push((chrono::Utc::now(), ack.stream.clone()));
                return (StatusCode::ACCEPTED, ack.stream);
            }
            Err(e) if Instant::now() >= deadline => {
                return (StatusCode::SERVICE_UNAVAILABLE, format!("not stored: {e}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
