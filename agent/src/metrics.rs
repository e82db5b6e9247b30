//! The daemon's own metrics (`/metrics`, Prometheus text via the
//! `prometheus-client` crate) and its `/healthz` and `/readyz`: one
//! [`Metrics`] handle, owned by the watch and shared with what it runs.

use crate::verdict::PhaseReport;
use gatekeeper_model::{CriterionStatus, Snapshot, SourceStatus};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
    pub verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GateLabels {
    pub phase: String,
    pub gate: String,
    pub verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TriggerLabels {
    pub trigger: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub plan: String,
    pub action: String,
    pub result: String,
}

fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    pub phase_verdict: Family<PhaseLabels, Gauge>,
    pub gate_verdict: Family<GateLabels, Gauge>,
    pub trigger_state: Family<TriggerLabels, Gauge>,
    pub evaluation_seconds: Histogram,
    pub collection_seconds: Family<SourceLabels, Histogram, fn() -> Histogram>,
    pub collector_errors: Family<SourceLabels, Counter>,
    pub actions: Family<ActionLabels, Counter>,
    pub alerts: Counter,
    pub alertmanager_posts: Counter,
    pub alertmanager_errors: Counter,
    pub incident_open: Gauge,
    pub lease_held: Gauge,
    pub ledger_errors: Counter,
    pub rounds: Counter,
    pub last_round: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Set once the first round is done with every gate loaded.
    ready: AtomicBool,
    /// Milliseconds since the Unix epoch at the end of the last round.
    last_round_ms: AtomicI64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// A fresh set, every series registered (`gatekeeper_…`).
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::registered())
    }

    fn registered() -> Metrics {
        let mut registry = Registry::with_prefix("gatekeeper");
        let m = Metrics {
            phase_verdict: Family::default(),
            gate_verdict: Family::default(),
            trigger_state: Family::default(),
            evaluation_seconds: seconds(),
            collection_seconds: Family::new_with_constructor(seconds),
            collector_errors: Family::default(),
            actions: Family::default(),
            alerts: Counter::default(),
            alertmanager_posts: Counter::default(),
            alertmanager_errors: Counter::default(),
            incident_open: Gauge::default(),
            lease_held: Gauge::default(),
            ledger_errors: Counter::default(),
            rounds: Counter::default(),
            last_round: Gauge::default(),
            registry: Registry::default(),
            ready: AtomicBool::new(false),
            last_round_ms: AtomicI64::new(0),
        };
        registry.register(
            "phase_verdict",
            "1 for the phase's current verdict (go, no-go, defer)",
            m.phase_verdict.clone(),
        );
        registry.register(
            "gate_verdict",
            "1 for each gate's current verdict in the watched phase",
            m.gate_verdict.clone(),
        );
        registry.register(
            "trigger_state",
            "1 for each trigger's current state (clear, unknown, firing)",
            m.trigger_state.clone(),
        );
        registry.register(
            "evaluation_duration_seconds",
            "Time to evaluate the watched phase's gates",
            m.evaluation_seconds.clone(),
        );
        registry.register(
            "collection_duration_seconds",
            "Time each source took to collect",
            m.collection_seconds.clone(),
        );
        registry.register(
            "collector_errors",
            "Collections where a source was unavailable or partial",
            m.collector_errors.clone(),
        );
        registry.register(
            "actions",
            "Plan steps by result (done, unchanged, failed, would-run, interrupted)",
            m.actions.clone(),
        );
        registry.register("alerts", "Alerts raised", m.alerts.clone());
        registry.register(
            "alertmanager_posts",
            "Successful deliveries to Alertmanager",
            m.alertmanager_posts.clone(),
        );
        registry.register(
            "alertmanager_errors",
            "Deliveries to Alertmanager that failed (retried) or were dropped",
            m.alertmanager_errors.clone(),
        );
        registry.register(
            "incident_open",
            "1 while an incident is open",
            m.incident_open.clone(),
        );
        registry.register(
            "lease_held",
            "1 while this agent holds the HA lease and may act",
            m.lease_held.clone(),
        );
        registry.register(
            "ledger_errors",
            "Ledger writes that failed (spooled locally)",
            m.ledger_errors.clone(),
        );
        registry.register("rounds", "Watch rounds completed", m.rounds.clone());
        registry.register(
            "last_round_timestamp_seconds",
            "When the last round ended (Unix time)",
            m.last_round.clone(),
        );
        Metrics { registry, ..m }
    }

    /// One plan step ran, with `result` (`done`, `failed`, …).
    pub fn action(&self, plan: &str, action: &str, result: &str) {
        self.actions
            .get_or_create(&ActionLabels {
                plan: plan.to_owned(),
                action: action.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Each configured source's collection time, and whether it had gaps.
    pub fn observe_sources(&self, snapshot: &Snapshot) {
        for s in snapshot.source_states() {
            if s.status == SourceStatus::NotConfigured {
                continue;
            }
            let labels = SourceLabels {
                source: s.name.to_owned(),
            };
            if let Some(ms) = s.duration_ms {
                self.collection_seconds
                    .get_or_create(&labels)
                    .observe(ms as f64 / 1000.0);
            }
            if matches!(s.status, SourceStatus::Unavailable | SourceStatus::Partial) {
                self.collector_errors.get_or_create(&labels).inc();
            }
        }
    }

    /// The watched phase's gates and triggers, one-hot.
    pub fn observe_gates(&self, report: &PhaseReport) {
        for g in &report.gates {
            one_hot(
                &self.gate_verdict,
                &["go", "no-go", "defer", "error"],
                g.verdict.as_str(),
                |v| GateLabels {
                    phase: report.phase.clone(),
                    gate: g.name.clone(),
                    verdict: v.to_owned(),
                },
            );
            for c in &g.criteria {
                let state = if g.triggers.iter().any(|t| t.id == c.id) {
                    "firing"
                } else if c.status == CriterionStatus::Unknown {
                    "unknown"
                } else {
                    "clear"
                };
                one_hot(
                    &self.trigger_state,
                    &["clear", "unknown", "firing"],
                    state,
                    |s| TriggerLabels {
                        trigger: c.id.clone(),
                        state: s.to_owned(),
                    },
                );
            }
        }
    }

    /// A phase's verdict, one-hot.
    pub fn observe_phase(&self, report: &PhaseReport) {
        one_hot(
            &self.phase_verdict,
            &["go", "no-go", "defer"],
            report.verdict.as_str(),
            |v| PhaseLabels {
                phase: report.phase.clone(),
                verdict: v.to_owned(),
            },
        );
    }

    /// A round ended: `/healthz` counts from now, `/readyz` says ready.
    pub fn round_done(&self) {
        self.rounds.inc();
        let now_ms = chrono::Utc::now().timestamp_millis();
        self.last_round.set(now_ms as f64 / 1000.0);
        self.last_round_ms.store(now_ms, Ordering::Relaxed);
        self.ready.store(true, Ordering::Relaxed);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}

/// One-hot gauges: `value` gets 1, the other states of the same key 0.
pub fn one_hot<L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug>(
    family: &Family<L, Gauge>,
    states: &[&str],
    current: &str,
    label: impl Fn(&str) -> L,
) {
    for s in states {
        family
            .get_or_create(&label(s))
            .set(i64::from(*s == current));
    }
}

/// Serves `/metrics`, `/healthz` (a round ended within `stale_ms`) and
/// `/readyz` (gates loaded and the first round done) until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    stale_ms: i64,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let (m1, m2, m3) = (metrics.clone(), metrics.clone(), metrics);
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || async move {
                (
                    [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                    m1.render(),
                )
            }),
        )
        .route(
            "/healthz",
            get(move || async move {
                let last = m2.last_round_ms.load(Ordering::Relaxed);
                let age = chrono::Utc::now().timestamp_millis() - last;
                if last == 0 || age <= stale_ms {
                    (StatusCode::OK, "ok\n".to_owned())
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("no round for {age} ms\n"),
                    )
                }
            }),
        )
        .route(
            "/readyz",
            get(move || async move {
                if m3.ready.load(Ordering::Relaxed) {
                    (StatusCode::OK, "ready\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "first round not done\n")
                }
            }),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
