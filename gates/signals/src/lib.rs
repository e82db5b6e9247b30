//! Gate `signals`: numbers read from any source — stream and consumer counts,
//! publish rates, Prometheus counters, ratios and quantiles, HTTP probes,
//! named SQL queries, log-line counts, waiting pods, NATS nodes down —
//! compared with a condition (`> 10`, `== 0`, `in 10..50`) and, optionally,
//! held for a duration (`for = "5m"`).
//!
//! A signal is one of two things:
//! - a **requirement** (no `trigger`): a go/no-go criterion that passes while
//!   its condition holds (held for `for`, when given), e.g. the old consumer
//!   has `== 0` pending;
//! - a **rollback trigger** (`trigger = "automatic"` or `"manual"`): its
//!   criterion passes while the condition does *not* hold; once it has held
//!   for `for`, the criterion fails and the gate raises the trigger, e.g. the
//!   DLQ takes `> 10` msg/min for 5 minutes.
//!
//! Rates, ratios and holds come from the history window. Too little history,
//! an unreadable sample or a source that is down makes the signal unknown:
//! a requirement never passes and a trigger never fires on missing evidence.

use gatekeeper_gate_sdk::model::{
    ConsumerFacts, MetricFamily, ScrapeTarget, Severity, Snapshot, StreamFacts, format_duration_ms,
    format_timestamp, millis_between, parse_duration_ms,
};
use gatekeeper_gate_sdk::window::{
    Hold, change_at, growth_at, hold_at, increase_at, rate_at, samples,
};
use gatekeeper_gate_sdk::{
    Criterion, Evaluation, Gate, GateError, Input, Metadata, Needs, ParamSpec, Timestamp, Trigger,
    TriggerSpec,
};
use serde::Deserialize;
use std::collections::BTreeMap;

pub struct Signals;

gatekeeper_gate_sdk::export_gate!(Signals);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub signals: Vec<Signal>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    pub id: String,
    pub title: String,
    pub measure: Measure,
    /// `> X`, `>= X`, `< X`, `<= X`, `== X`, `!= X` or `in A..B` (A ≤ v < B).
    pub when: String,
    /// How long the condition must hold without a break, e.g. `5m`.
    #[serde(default, rename = "for")]
    pub hold: Option<String>,
    /// Present: a rollback trigger of this severity. Absent: a requirement.
    #[serde(default)]
    pub trigger: Option<Severity>,
}

type Labels = BTreeMap<String, String>;

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
}

fn default_max_ok_status() -> u16 {
    399
}

impl Measure {
    fn reads(&self) -> Vec<String> {
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
            Measure::NatsNodesDown { .. } => vec!["nats.cluster".into()],
            Measure::Metric { .. }
            | Measure::MetricRatio { .. }
            | Measure::MetricQuantile { .. } => vec!["metrics".into()],
            Measure::ProbeFailing { .. } | Measure::ProbeLatency { .. } => vec!["http".into()],
            Measure::Query { .. } => vec!["postgres".into()],
            Measure::LogMatches { .. } | Measure::PodsWaiting { .. } => {
                vec!["kubernetes".into()]
            }
        }
    }

    /// The unit shown after values.
    fn unit(&self) -> &'static str {
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
        }
    }

    /// The window of a rate, ratio or windowed quantile.
    fn window(&self) -> Option<&str> {
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
    fn per_minute(&self) -> Option<(PerMinute, &str)> {
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
    fn validate(&self) -> Result<(), String> {
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
    fn value(&self, samples: &[&Snapshot], at: usize) -> Result<f64, String> {
        let snap = samples[at];
        let rate = |window: &str, counter: &dyn Fn(&Snapshot) -> Result<f64, String>| {
            let ms = parse_duration_ms(window).map_err(|e| e.to_string())?;
            rate_at(samples, at, ms, counter)
        };
        // The value now, or its rate, change or growth per minute.
        let per_minute =
            |over: Option<(PerMinute, &str)>, read: &dyn Fn(&Snapshot) -> Result<f64, String>| {
                let Some((kind, window)) = over else {
                    return read(snap);
                };
                let ms = parse_duration_ms(window).map_err(|e| e.to_string())?;
                let (amount, covered) = match kind {
                    PerMinute::Rate => return rate_at(samples, at, ms, read),
                    PerMinute::Change => change_at(samples, at, ms, read)?,
                    PerMinute::Growth => growth_at(samples, at, ms, read)?,
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
                let (num, _) = increase_at(samples, at, ms, |s| {
                    metric_sum(s, target, family_name, numerator)
                })?;
                let (den, _) = increase_at(samples, at, ms, |s| {
                    metric_sum(s, target, family_name, denominator)
                })?;
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
            Measure::NatsNodesDown { expected } => {
                let nats = snap.nats.usable("nats")?;
                let c = nats.cluster.as_ref().ok_or(
                    "cluster facts not collected (set sources.nats.monitor_url)".to_owned(),
                )?;
                if let Some(e) = &c.error {
                    return Err(format!("nats monitoring: {e}"));
                }
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

fn stream<'a>(s: &'a Snapshot, name: &str) -> Result<&'a StreamFacts, String> {
    s.nats.usable("nats")?.stream_or_why(name)
}

fn consumer<'a>(s: &'a Snapshot, st: &str, name: &str) -> Result<&'a ConsumerFacts, String> {
    let facts = stream(s, st)?;
    match facts.consumer(name) {
        Some(c) => match &c.error {
            Some(e) => Err(format!("consumer {name} on {st}: {e}")),
            None => Ok(c),
        },
        None if facts.consumer_absent(name) => {
            Err(format!("consumer {name} does not exist on {st}"))
        }
        None => Err(format!("consumer {name} on {st} not read")),
    }
}

fn probe<'a>(
    s: &'a Snapshot,
    name: &str,
) -> Result<&'a gatekeeper_gate_sdk::model::HttpProbe, String> {
    s.http
        .usable("http")?
        .probes
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| format!("probe {name} is not configured"))
}

fn labels_match(have: &Labels, want: &Labels) -> bool {
    want.iter().all(|(k, v)| {
        let value = have.get(k).map(String::as_str).unwrap_or("");
        match v.strip_prefix('!') {
            Some(not) => value != not,
            None => value == v,
        }
    })
}

fn family<'a>(s: &'a Snapshot, target: &str, family: &str) -> Result<&'a MetricFamily, String> {
    let m = s.metrics.usable("metrics")?;
    let t: &ScrapeTarget = m
        .targets
        .iter()
        .find(|t| t.name == target)
        .ok_or_else(|| format!("metrics target {target} is not configured"))?;
    if let Some(e) = &t.error {
        return Err(format!("metrics target {target}: {e}"));
    }
    let f = t
        .families
        .iter()
        .find(|f| f.name == family)
        .ok_or_else(|| format!("{target}: family {family} is not scraped (add it to families)"))?;
    if f.kind == "absent" {
        return Err(format!("{target} does not export {family}"));
    }
    Ok(f)
}

/// The sum of the family's own samples (not `_bucket`/`_sum`/`_count`) whose
/// labels match; no matching series is 0, as for a counter never incremented.
/// How a metric or query becomes a per-minute figure.
#[derive(Debug, Clone, Copy)]
enum PerMinute {
    /// A counter's increase (a drop is a reset).
    Rate,
    /// A gauge's net change (signed).
    Change,
    /// A gauge's rises only.
    Growth,
}

fn metric_sum(s: &Snapshot, target: &str, name: &str, labels: &Labels) -> Result<f64, String> {
    let f = family(s, target, name)?;
    f.samples
        .iter()
        .filter(|x| x.name == name && labels_match(&x.labels, labels))
        .try_fold(0.0, |sum, x| {
            x.value.map(|v| sum + v).ok_or_else(|| {
                format!(
                    "{name}: non-finite sample {}",
                    x.raw.as_deref().unwrap_or("?")
                )
            })
        })
}

/// Buckets `(le, cumulative count)` of the matching series, summed per `le`.
fn buckets(
    s: &Snapshot,
    target: &str,
    name: &str,
    labels: &Labels,
) -> Result<Vec<(f64, f64)>, String> {
    let f = family(s, target, name)?;
    let bucket = format!("{name}_bucket");
    let mut by_le: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for x in f.samples.iter().filter(|x| x.name == bucket) {
        let mut rest = x.labels.clone();
        let Some(le) = rest.remove("le") else {
            continue;
        };
        if !labels_match(&rest, labels) {
            continue;
        }
        let bound: f64 = le
            .parse()
            .map_err(|_| format!("{name}: bucket le={le:?} is not a number"))?;
        let v = x
            .value
            .ok_or_else(|| format!("{name}: non-finite bucket count"))?;
        by_le.entry(le).or_insert((bound, 0.0)).1 += v;
    }
    let mut out: Vec<(f64, f64)> = by_le.into_values().collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(out)
}

fn quantile(
    samples: &[&Snapshot],
    at: usize,
    target: &str,
    name: &str,
    q: f64,
    labels: &Labels,
    window: Option<&str>,
) -> Result<f64, String> {
    let now = buckets(samples[at], target, name, labels)?;
    let counts: Vec<(f64, f64)> = match window {
        None => now,
        Some(w) => {
            let ms = parse_duration_ms(w).map_err(|e| e.to_string())?;
            now.iter()
                .map(|(le, _)| {
                    let read = |s: &Snapshot| {
                        buckets(s, target, name, labels)?
                            .iter()
                            .find(|(b, _)| b == le)
                            .map(|(_, c)| *c)
                            .ok_or_else(|| format!("{name}: bucket le={le} missing"))
                    };
                    increase_at(samples, at, ms, read).map(|(inc, _)| (*le, inc))
                })
                .collect::<Result<_, _>>()?
        }
    };
    let Some(&(last_le, total)) = counts.last() else {
        return Err(format!("{name}: no buckets match"));
    };
    if last_le != f64::INFINITY {
        return Err(format!("{name}: no +Inf bucket"));
    }
    if total <= 0.0 {
        return Err(format!("{name}: no observations"));
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for (i, &(le, count)) in counts.iter().enumerate() {
        if count >= rank {
            if le == f64::INFINITY {
                // As Prometheus: the highest finite bound.
                return Ok(if i == 0 { 0.0 } else { counts[i - 1].0 });
            }
            let (lo_le, lo_count) = lower;
            if count == lo_count {
                return Ok(le);
            }
            return Ok(lo_le + (le - lo_le) * (rank - lo_count) / (count - lo_count));
        }
        lower = (le, count);
    }
    Err(format!("{name}: buckets are not cumulative"))
}

/// A parsed `when`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Condition {
    Gt(f64),
    Ge(f64),
    Lt(f64),
    Le(f64),
    Eq(f64),
    Ne(f64),
    /// `a <= v < b`
    In(f64, f64),
}

impl Condition {
    fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let num = |s: &str| {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("when = {text:?}: {:?} is not a number", s.trim()))
        };
        if let Some(range) = t.strip_prefix("in ") {
            let (a, b) = range
                .split_once("..")
                .ok_or_else(|| format!("when = {text:?}: want `in A..B`"))?;
            let (a, b) = (num(a)?, num(b)?);
            if a >= b {
                return Err(format!("when = {text:?}: want A < B"));
            }
            return Ok(Condition::In(a, b));
        }
        for (op, make) in [
            (">=", Condition::Ge as fn(f64) -> Condition),
            ("<=", Condition::Le),
            ("==", Condition::Eq),
            ("!=", Condition::Ne),
            (">", Condition::Gt),
            ("<", Condition::Lt),
        ] {
            if let Some(rest) = t.strip_prefix(op) {
                return Ok(make(num(rest)?));
            }
        }
        Err(format!(
            "when = {text:?}: want `> X`, `>= X`, `< X`, `<= X`, `== X`, `!= X` or `in A..B`"
        ))
    }

    fn holds(self, v: f64) -> bool {
        match self {
            Condition::Gt(x) => v > x,
            Condition::Ge(x) => v >= x,
            Condition::Lt(x) => v < x,
            Condition::Le(x) => v <= x,
            Condition::Eq(x) => v == x,
            Condition::Ne(x) => v != x,
            Condition::In(a, b) => a <= v && v < b,
        }
    }

    fn show(self, unit: &str) -> String {
        let u = |x: f64| show_value(x, unit);
        match self {
            Condition::Gt(x) => format!("> {}", u(x)),
            Condition::Ge(x) => format!(">= {}", u(x)),
            Condition::Lt(x) => format!("< {}", u(x)),
            Condition::Le(x) => format!("<= {}", u(x)),
            Condition::Eq(x) => format!("= {}", u(x)),
            Condition::Ne(x) => format!("!= {}", u(x)),
            Condition::In(a, b) => format!("in [{}, {})", show_number(a), u(b)),
        }
    }
}

fn show_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

fn show_value(v: f64, unit: &str) -> String {
    match unit {
        "" => show_number(v),
        "%" => format!("{}%", show_number(v)),
        u => format!("{} {u}", show_number(v)),
    }
}

impl Gate for Signals {
    fn metadata() -> Metadata {
        Metadata {
            name: "signals".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Numbers from any source against a condition and a hold: go/no-go requirements or rollback triggers.".into(),
            sources: ["nats", "postgres", "kubernetes", "http", "metrics"]
                .map(String::from)
                .to_vec(),
            params: vec![ParamSpec::required(
                "signals",
                "[{id, title, measure = {kind, ...}, when, for, trigger}]",
            )],
            snapshot_schema: gatekeeper_gate_sdk::model::SNAPSHOT_SCHEMA_VERSION,
        }
    }

    /// The facts every measure reads; the longest hold plus its measure's
    /// window as the history; every signal with a `trigger` as a trigger.
    fn needs(params: &serde_json::Value) -> Result<Needs, GateError> {
        let p: Params = gatekeeper_gate_sdk::decode_params(params)?;
        let checked = checked(&p)?;
        let mut reads: Vec<String> = p.signals.iter().flat_map(|s| s.measure.reads()).collect();
        reads.sort();
        reads.dedup();
        let history_ms = checked
            .iter()
            .map(|(s, _, for_ms)| {
                let window = s
                    .measure
                    .window()
                    .and_then(|w| parse_duration_ms(w).ok())
                    .unwrap_or(0);
                for_ms + window
            })
            .max()
            .unwrap_or(0);
        let triggers = p
            .signals
            .iter()
            .filter_map(|s| {
                s.trigger.map(|severity| TriggerSpec {
                    id: s.id.clone(),
                    title: s.title.clone(),
                    severity,
                })
            })
            .collect();
        Ok(Needs {
            reads,
            history_ms,
            triggers,
            attestations: vec![],
        })
    }

    fn evaluate(input: &Input) -> Result<Evaluation, GateError> {
        let p: Params = input.params()?;
        let all: Vec<&Snapshot> = samples(input).collect();
        let mut criteria = Vec::new();
        let mut triggers = Vec::new();
        for (s, cond, for_ms) in checked(&p)? {
            let (criterion, trigger) = judge(s, cond, for_ms, &all);
            criteria.push(criterion);
            triggers.extend(trigger);
        }
        Ok(Evaluation::from_parts(criteria, triggers))
    }
}

/// Every signal with its condition and hold, checked: what `needs` and
/// `evaluate` both start from, so a bad param fails at load.
fn checked(p: &Params) -> Result<Vec<(&Signal, Condition, u64)>, GateError> {
    if p.signals.is_empty() {
        return Err(GateError::BadParams("`signals` is empty".into()));
    }
    p.signals
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let bad = |m: String| GateError::BadParams(format!("signals[{i}] ({}): {m}", s.id));
            s.measure.validate().map_err(bad)?;
            let cond = Condition::parse(&s.when).map_err(bad)?;
            let for_ms = s
                .hold
                .as_deref()
                .map(parse_duration_ms)
                .transpose()
                .map_err(|e| bad(format!("for: {e}")))?
                .unwrap_or(0);
            Ok((s, cond, for_ms))
        })
        .collect()
}

/// One signal's criterion, and its trigger when it fires.
fn judge(
    s: &Signal,
    cond: Condition,
    for_ms: u64,
    all: &[&Snapshot],
) -> (Criterion, Option<Trigger>) {
    let unit = s.measure.unit();
    let now_at = all.len() - 1;
    let when = cond.show(unit);
    let during = if for_ms > 0 {
        format!(" for {}", format_duration_ms(for_ms))
    } else {
        String::new()
    };
    let expected = match s.trigger {
        None => format!("{when}{during}"),
        Some(_) => format!("not {when}{during}"),
    };
    let unknown = |why: String| {
        (
            Criterion::unknown(&s.id, &s.title, why).expected(expected.clone()),
            None,
        )
    };
    let current = match s.measure.value(all, now_at) {
        Ok(v) => v,
        Err(why) => return unknown(why),
    };
    let shown = show_value(current, unit);
    // Evidence starts at the first readable sample: the oldest samples of a
    // rate have no window behind them yet. The run is walked back to its
    // start, so `since` is when the condition began to hold (as far as the
    // window tells), not `now - for`.
    let first = (0..=now_at)
        .find(|&i| s.measure.value(all, i).is_ok())
        .unwrap_or(now_at);
    let condition = |i: usize| match i < first {
        true => Ok(false),
        false => s.measure.value(all, i).map(|v| cond.holds(v)),
    };
    let hold = match hold_at(all, for_ms, condition) {
        // A run back to the first readable sample may have begun earlier too.
        Ok(Hold::Held { since, .. }) => Hold::Held {
            since,
            since_window_start: since == all[first].taken_at,
        },
        Ok(h) => h,
        Err(why) => return unknown(format!("{shown} now, but the hold cannot be read: {why}")),
    };
    let now = all[now_at].taken_at;
    let observed = |c: Criterion| c.observed(shown.clone()).expected(expected.clone());
    match (hold, s.trigger) {
        (Hold::Pending { since, held_ms }, _) => (
            observed(Criterion::unknown(
                &s.id,
                &s.title,
                format!(
                    "{shown} ({when}) since {}, {} of {} so far",
                    format_timestamp(since),
                    format_duration_ms(held_ms),
                    format_duration_ms(for_ms)
                ),
            )),
            None,
        ),
        (Hold::NotHeld, None) => (
            observed(Criterion::fail(
                &s.id,
                &s.title,
                format!("{shown}, required {when}{during}"),
            )),
            None,
        ),
        (Hold::NotHeld, Some(_)) => (
            observed(Criterion::pass(
                &s.id,
                &s.title,
                format!("{shown} (fires when {when}{during})"),
            )),
            None,
        ),
        (
            Hold::Held {
                since,
                since_window_start,
            },
            None,
        ) => {
            let message = if for_ms > 0 {
                format!(
                    "{shown} ({when}) since {}",
                    held_since(since, since_window_start, now)
                )
            } else {
                format!("{shown} (required {when})")
            };
            (observed(Criterion::pass(&s.id, &s.title, message)), None)
        }
        (
            Hold::Held {
                since,
                since_window_start,
            },
            Some(severity),
        ) => {
            let reason = if for_ms > 0 {
                format!(
                    "{shown} ({when}) since {}",
                    held_since(since, since_window_start, now)
                )
            } else {
                format!("{shown} ({when})")
            };
            (
                observed(Criterion::fail(&s.id, &s.title, format!("fired: {reason}"))),
                Some(Trigger {
                    id: s.id.clone(),
                    severity,
                    reason: format!("{}: {reason}", s.title),
                    since: Some(since),
                }),
            )
        }
    }
}

/// `10:01:00Z (5m)`, or `at least 10:01:00Z (5m; the start of the history
/// window)` when the run reaches the window's oldest sample.
fn held_since(since: Timestamp, window_start: bool, now: Timestamp) -> String {
    let held = format_duration_ms(millis_between(since, now).max(0) as u64);
    if window_start {
        format!(
            "at least {} ({held}; the start of the history window)",
            format_timestamp(since)
        )
    } else {
        format!("{} ({held})", format_timestamp(since))
    }
}

#[cfg(test)]
mod tests;
