//! The daemon's own metrics (`/metrics`, Prometheus text via the
//! `prometheus-client` crate) and its `/healthz` and `/readyz`.

use crate::ledger::StepOutcome;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::LazyLock;
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
    pub incident_open: Gauge,
    pub lease_held: Gauge,
    pub ledger_errors: Counter,
    pub rounds: Counter,
    pub last_round: Gauge<f64, std::sync::atomic::AtomicU64>,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
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
        incident_open: Gauge::default(),
        lease_held: Gauge::default(),
        ledger_errors: Counter::default(),
        rounds: Counter::default(),
        last_round: Gauge::default(),
        registry: Registry::default(),
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
});

/// Set once the first round is done with every gate loaded.
pub static READY: AtomicBool = AtomicBool::new(false);
/// Milliseconds since the Unix epoch at the end of the last round.
pub static LAST_ROUND_MS: AtomicI64 = AtomicI64::new(0);

pub fn action(plan: &str, action: &str, result: StepOutcome) {
    METRICS
        .actions
        .get_or_create(&ActionLabels {
            plan: plan.to_owned(),
            action: action.to_owned(),
            result: result.as_str().to_owned(),
        })
        .inc();
}

pub fn ledger_error() {
    METRICS.ledger_errors.inc();
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

/// The text exposition.
pub fn render() -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &METRICS.registry)
        .expect("writing to a String");
    out
}

/// Serves `/metrics`, `/healthz` (a round ended within `stale_ms`) and
/// `/readyz` (gates loaded and the first round done) until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    stale_ms: i64,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(|| async {
                (
                    [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                    render(),
                )
            }),
        )
        .route(
            "/healthz",
            get(move || async move {
                let age =
                    chrono::Utc::now().timestamp_millis() - LAST_ROUND_MS.load(Ordering::Relaxed);
                if LAST_ROUND_MS.load(Ordering::Relaxed) == 0 || age <= stale_ms {
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
            get(|| async {
                if READY.load(Ordering::Relaxed) {
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
