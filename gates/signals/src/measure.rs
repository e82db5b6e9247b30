//! What a signal reads: a [`Measure`], and how its value is taken from the
//! snapshot and its history.

use crate::read::{
    Labels, PerMinute, consumer, family, labels_match, metric_sum, probe, promql, quantile, stream,
};
use gatekeeper_gate_sdk::model::{Snapshot, parse_duration_ms};
use gatekeeper_gate_sdk::window::Samples;
use serde::Deserialize;

/// What to read, from which source. Label values starting with `!` match
/// every value but that one.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Measure {
    /// A stream's `state.messages`.
    StreamMessages { stream: String },
    /// Publishes per minute to the streams (`last_seq` increase) over `window`.
    StreamPublishRate {
        streams: Vec<String>,
        window: String,
    },
    /// A consumer's `num_pending` (messages not yet delivered).
    ConsumerPending { stream: String, consumer: String },
    /// A consumer's `num_ack_pending` (delivered, not yet acknowledged).
    ConsumerAckPending { stream: String, consumer: String },
    /// The sum of a family's matching samples; with `rate`, its increase per
    /// minute over that window (a counter: a drop is a reset); with `change`
    /// or `growth`, a gauge's net change or its rises per minute.
    Metric {
        target: String,
        family: String,
        #[serde(default)]
        labels: Labels,
        #[serde(default)]
        rate: Option<String>,
        #[serde(default)]
        change: Option<String>,
        #[serde(default)]
        growth: Option<String>,
    },
    /// `100 × increase(numerator) / increase(denominator)` of a counter over
    /// `window`, in percent (an error rate). No traffic is unknown.
    MetricRatio {
        target: String,
        family: String,
        numerator: Labels,
        #[serde(default)]
        denominator: Labels,
        window: String,
    },
    /// The `q` quantile of a histogram (`<family>_bucket`), interpolated as
    /// Prometheus' `histogram_quantile` does; over `window` when given, else
    /// over everything the counters hold.
    MetricQuantile {
        target: String,
        family: String,
        q: f64,
        #[serde(default)]
        labels: Labels,
        #[serde(default)]
        window: Option<String>,
    },
    /// 1 when the probe got no answer or a status above `max_ok_status`
    /// (default 399), else 0.
    ProbeFailing {
        probe: String,
        #[serde(default = "default_max_ok_status")]
        max_ok_status: u16,
    },
    /// A probe's latency in milliseconds; no answer is unknown.
    ProbeLatency { probe: String },
    /// A named PostgreSQL query's value; with `rate`, its increase per minute
    /// (a counter, e.g. rows ever inserted); with `change` or `growth`, a
    /// gauge's (e.g. rows in the last 10 minutes) net change or rises per
    /// minute.
    Query {
        name: String,
        #[serde(default)]
        rate: Option<String>,
        #[serde(default)]
        change: Option<String>,
        #[serde(default)]
        growth: Option<String>,
    },
    /// Matches of a configured Kubernetes log pattern over its window.
    LogMatches { pattern: String },
    /// Pods (optionally with these labels) with a container waiting for
    /// `reason`, e.g. `CrashLoopBackOff`.
    PodsWaiting {
        reason: String,
        #[serde(default)]
        labels: Labels,
    },
    /// Expected NATS nodes that are not up (needs `monitor_url`).
    NatsNodesDown { expected: u64 },
    /// The slowest route between cluster nodes: its round trip in ms, from
    /// every node's `/routez` (needs `monitor_url` for each node). No route
    /// reported is unknown.
    NatsRouteRtt,
    /// A named query of the `prometheus` source: a scalar, or the one series
    /// of a vector (after `labels` narrow it); a range query's series give
    /// their last point. More than one series is unknown unless `aggregate`
    /// (`sum`, `max`, `min`, `count`) says how they become one value; no
    /// series is unknown (no data), except with `count`, where it is 0 (e.g.
    /// `ALERTS{alertstate="firing"}`: no alert firing).
    Promql {
        query: String,
        #[serde(default)]
        labels: Labels,
        #[serde(default)]
        aggregate: Option<Aggregate>,
    },
}

/// How a PromQL measure makes one value of several series.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aggregate {
    Sum,
    Max,
    Min,
    Count,
}

/// The NATS cluster facts, read without a gap (needs `monitor_url`).
fn cluster(snap: &Snapshot) -> Result<&gatekeeper_gate_sdk::model::NatsCluster, String> {
    let nats = snap.nats.usable("nats")?;
    let c = nats
        .cluster
        .as_ref()
        .ok_or("cluster facts not collected (set sources.nats.monitor_url)".to_owned())?;
    match &c.error {
        Some(e) => Err(format!("nats monitoring: {e}")),
        None => Ok(c),
    }
}

pub(crate) fn default_max_ok_status() -> u16 {
    399
}

impl Measure {
    pub(crate) fn reads(&self) -> Vec<String> {
        match self {
            Measure::StreamMessages { stream } => vec![format!("nats.streams.{stream}")],
            Measure::StreamPublishRate { streams, .. } => streams
                .iter()
                .map(|s| format!("nats.streams.{s}"))
                .collect(),
            Measure::ConsumerPending { stream, consumer }
            | Measure::ConsumerAckPending { stream, consumer } => {
                vec![format!("nats.consumers.{stream}.{consumer}")]
            }
            Measure::NatsNodesDown { .. } | Measure::NatsRouteRtt => {
                vec!["nats.cluster".into()]
            }
            Measure::Metric { .. }
            | Measure::MetricRatio { .. }
            | Measure::MetricQuantile { .. } => vec!["metrics".into()],
            Measure::ProbeFailing { .. } | Measure::ProbeLatency { .. } => vec!["http".into()],
            Measure::Query { .. } => vec!["postgres".into()],
            Measure::Promql { .. } => vec!["prometheus".into()],
            Measure::LogMatches { .. } | Measure::PodsWaiting { .. } => {
                vec!["kubernetes".into()]
            }
        }
    }

    /// The unit shown after values.
    pub(crate) fn unit(&self) -> &'static str {
        match self {
            Measure::StreamMessages { .. } => "messages",
            Measure::StreamPublishRate { .. } => "msg/min",
            Measure::ConsumerPending { .. } | Measure::ConsumerAckPending { .. } => "pending",
            Measure::Metric { .. } | Measure::Query { .. } if self.per_minute().is_some() => "/min",
            Measure::Metric { .. } | Measure::Query { .. } => "",
            Measure::MetricRatio { .. } => "%",
            Measure::MetricQuantile { .. } => "",
            Measure::ProbeFailing { .. } => "failing",
            Measure::ProbeLatency { .. } => "ms",
            Measure::LogMatches { .. } => "matching lines",
            Measure::PodsWaiting { .. } => "pods",
            Measure::NatsNodesDown { .. } => "nodes down",
            Measure::NatsRouteRtt => "ms",
            Measure::Promql {
                aggregate: Some(Aggregate::Count),
                ..
            } => "series",
            Measure::Promql { .. } => "",
        }
    }

    /// The window of a rate, ratio or windowed quantile.
    pub(crate) fn window(&self) -> Option<&str> {
        match self {
            Measure::StreamPublishRate { window, .. } | Measure::MetricRatio { window, .. } => {
                Some(window)
            }
            Measure::Metric { .. } | Measure::Query { .. } => {
                self.per_minute().map(|(_, window)| window)
            }
            Measure::MetricQuantile { window, .. } => window.as_deref(),
            _ => None,
        }
    }

    /// `rate`, `change` or `growth` of a metric or query, with its window.
    pub(crate) fn per_minute(&self) -> Option<(PerMinute, &str)> {
        let (Measure::Metric {
            rate,
            change,
            growth,
            ..
        }
        | Measure::Query {
            rate,
            change,
            growth,
            ..
        }) = self
        else {
            return None;
        };
        [
            (PerMinute::Rate, rate),
            (PerMinute::Change, change),
            (PerMinute::Growth, growth),
        ]
        .into_iter()
        .find_map(|(k, w)| w.as_deref().map(|w| (k, w)))
    }

    /// Checks what can be checked before reading facts.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if let Measure::Metric {
            rate,
            change,
            growth,
            ..
        }
        | Measure::Query {
            rate,
            change,
            growth,
            ..
        } = self
            && [rate, change, growth]
                .iter()
                .filter(|w| w.is_some())
                .count()
                > 1
        {
            return Err("set one of rate (a counter), change or growth (a gauge)".into());
        }
        match self {
            Measure::StreamPublishRate { streams, .. } if streams.is_empty() => {
                return Err("streams is empty".into());
            }
            Measure::MetricQuantile { q, .. } if !(0.0..=1.0).contains(q) => {
                return Err(format!("q = {q}: want 0 <= q <= 1"));
            }
            Measure::NatsNodesDown { expected: 0 } => {
                return Err("expected must be at least 1".into());
            }
            _ => {}
        }
        match self.window() {
            Some(w) => parse_duration_ms(w).map(|_| ()).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// The value as seen at `samples[at]` (rates look back from there).
    pub(crate) fn value(&self, samples: &Samples<'_>, at: usize) -> Result<f64, String> {
        let snap = samples.all()[at];
        let back = samples.at(at);
        let rate = |window: &str, counter: &dyn Fn(&Snapshot) -> Result<f64, String>| {
            let ms = parse_duration_ms(window).map_err(|e| e.to_string())?;
            back.rate(ms, counter)
        };
        // The value now, or its rate, change or growth per minute.
        let per_minute =
            |over: Option<(PerMinute, &str)>, read: &dyn Fn(&Snapshot) -> Result<f64, String>| {
                let Some((kind, window)) = over else {
                    return read(snap);
                };
                let ms = parse_duration_ms(window).map_err(|e| e.to_string())?;
                let (amount, covered) = match kind {
                    PerMinute::Rate => return back.rate(ms, read),
                    PerMinute::Change => back.change(ms, read)?,
                    PerMinute::Growth => back.growth(ms, read)?,
                };
                Ok(amount * 60_000.0 / covered as f64)
            };
        match self {
            Measure::StreamMessages { stream: name } => stream(snap, name)?
                .state
                .as_ref()
                .and_then(|s| s.messages)
                .map(|m| m as f64)
                .ok_or_else(|| format!("stream {name}: messages not reported")),
            Measure::StreamPublishRate { streams, window } => rate(window, &|s| {
                streams.iter().try_fold(0.0, |sum, name| {
                    let seq = stream(s, name)?
                        .state
                        .as_ref()
                        .and_then(|st| st.last_seq)
                        .ok_or_else(|| format!("stream {name}: last_seq not reported"))?;
                    Ok(sum + seq as f64)
                })
            }),
            Measure::ConsumerPending {
                stream: s,
                consumer: c,
            }
            | Measure::ConsumerAckPending {
                stream: s,
                consumer: c,
            } => {
                let state = consumer(snap, s, c)?.state.as_ref();
                let (field, value) = match self {
                    Measure::ConsumerPending { .. } => {
                        ("num_pending", state.and_then(|st| st.num_pending))
                    }
                    _ => ("num_ack_pending", state.and_then(|st| st.num_ack_pending)),
                };
                value
                    .map(|n| n as f64)
                    .ok_or_else(|| format!("consumer {c} on {s}: {field} not reported"))
            }
            Measure::Metric {
                target,
                family: name,
                labels,
                ..
            } => {
                let read = |s: &Snapshot| metric_sum(s, target, name, labels);
                if let Some((PerMinute::Rate, _)) = self.per_minute() {
                    // A gauge read as a counter takes every drop for a reset.
                    let kind = family(snap, target, name)?.kind.as_str();
                    if kind == "gauge" {
                        return Err(format!(
                            "{name} is a gauge; `rate` is for counters: use `change` or `growth`"
                        ));
                    }
                }
                per_minute(self.per_minute(), &read)
            }
            Measure::MetricRatio {
                target,
                family: family_name,
                numerator,
                denominator,
                window,
            } => {
                if family(snap, target, family_name)?.kind == "gauge" {
                    return Err(format!(
                        "{family_name} is a gauge; a ratio of increases needs counters"
                    ));
                }
                let ms = parse_duration_ms(window).map_err(|e| e.to_string())?;
                let (num, _) =
                    back.increase(ms, |s| metric_sum(s, target, family_name, numerator))?;
                let (den, _) =
                    back.increase(ms, |s| metric_sum(s, target, family_name, denominator))?;
                if den <= 0.0 {
                    return Err(format!("no {family_name} traffic in the last {window}"));
                }
                Ok(100.0 * num / den)
            }
            Measure::MetricQuantile {
                target,
                family,
                q,
                labels,
                window,
            } => quantile(samples, at, target, family, *q, labels, window.as_deref()),
            Measure::ProbeFailing {
                probe: name,
                max_ok_status,
            } => {
                let p = probe(snap, name)?;
                Ok(match (p.status_code, &p.error) {
                    (Some(code), None) if code <= *max_ok_status => 0.0,
                    _ => 1.0,
                })
            }
            Measure::ProbeLatency { probe: name } => {
                let p = probe(snap, name)?;
                if let Some(e) = &p.error {
                    return Err(format!("probe {name}: {e}"));
                }
                p.latency_ms
                    .ok_or_else(|| format!("probe {name}: latency not reported"))
            }
            Measure::Query { name, .. } => {
                let read = |s: &Snapshot| {
                    let pg = s.postgres.usable("postgres")?;
                    let q = pg
                        .queries
                        .iter()
                        .find(|q| &q.name == name)
                        .ok_or_else(|| format!("query {name} is not configured"))?;
                    if let Some(e) = &q.error {
                        return Err(format!("query {name}: {e}"));
                    }
                    q.value.ok_or_else(|| format!("query {name}: no value"))
                };
                per_minute(self.per_minute(), &read)
            }
            Measure::LogMatches { pattern } => {
                let k = snap.kubernetes.usable("kubernetes")?;
                let p = k
                    .log_patterns
                    .iter()
                    .find(|p| &p.name == pattern)
                    .ok_or_else(|| format!("log pattern {pattern} is not configured"))?;
                if let Some(e) = &p.error {
                    return Err(format!("log pattern {pattern}: {e}"));
                }
                p.matches
                    .map(|m| m as f64)
                    .ok_or_else(|| format!("log pattern {pattern}: not counted"))
            }
            Measure::PodsWaiting { reason, labels } => {
                let k = snap.kubernetes.usable("kubernetes")?;
                if let Some(e) = k.errors.first() {
                    return Err(format!("kubernetes listing incomplete: {e}"));
                }
                Ok(k.pods
                    .iter()
                    .filter(|p| labels_match(&p.labels, labels))
                    .filter(|p| p.waiting_reasons.iter().any(|r| r == reason))
                    .count() as f64)
            }
            Measure::Promql {
                query,
                labels,
                aggregate,
            } => promql(snap, query, labels, *aggregate),
            Measure::NatsRouteRtt => {
                let c = cluster(snap)?;
                if c.routes.is_empty() {
                    return Err("no route between nodes reported (one node, or no /routez)".into());
                }
                c.routes.iter().try_fold(0.0_f64, |worst, r| {
                    r.rtt_ms.map(|ms| worst.max(ms)).ok_or_else(|| {
                        format!("route {} → {}: round trip not reported", r.from, r.to)
                    })
                })
            }
            Measure::NatsNodesDown { expected } => {
                let c = cluster(snap)?;
                if c.nodes.is_empty() {
                    return match (*expected, c.healthy) {
                        (1, Some(true)) => Ok(0.0),
                        (1, Some(false)) => Ok(1.0),
                        (1, None) => Err("server health not reported".into()),
                        _ => Err("cluster nodes not listed (only the meta leader lists them: give every node's monitor_url)".into()),
                    };
                }
                // A node whose state was not reported is neither up nor down.
                if let Some(n) = c.nodes.iter().find(|n| n.up.is_none()) {
                    return Err(format!("node {}: up not reported", n.name));
                }
                let up = c.nodes.iter().filter(|n| n.up == Some(true)).count() as u64;
                let listed_down = c.nodes.len() as u64 - up;
                Ok(expected.saturating_sub(up).max(listed_down) as f64)
            }
        }
    }
}
