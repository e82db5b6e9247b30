//! Reading facts for a measure: a stream, a consumer, a probe, a metric
//! family and its samples, buckets and quantiles.

use crate::measure::Aggregate;
use gatekeeper_gate_sdk::model::{
    ConsumerFacts, MetricFamily, ScrapeTarget, Snapshot, StreamFacts, parse_duration_ms,
};
use gatekeeper_gate_sdk::window::Samples;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

/// A series' labels; a wanted value starting with `!` matches every value but that one.
pub(crate) type Labels = BTreeMap<String, String>;

pub(crate) fn stream<'a>(s: &'a Snapshot, name: &str) -> Result<&'a StreamFacts, String> {
    s.nats.usable("nats")?.stream_or_why(name)
}

pub(crate) fn consumer<'a>(
    s: &'a Snapshot,
    st: &str,
    name: &str,
) -> Result<&'a ConsumerFacts, String> {
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

pub(crate) fn probe<'a>(
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

/// A PromQL measure's value: see [`crate::measure::Measure::Promql`].
pub(crate) fn promql(
    s: &Snapshot,
    name: &str,
    labels: &Labels,
    aggregate: Option<Aggregate>,
) -> Result<f64, String> {
    let q = s.prometheus.usable("prometheus")?.query_or_why(name)?;
    let mut values = Vec::new();
    for series in q.series.iter().filter(|x| labels_match(&x.labels, labels)) {
        let last = series
            .points
            .last()
            .ok_or_else(|| format!("prometheus query `{name}`: a series with no points"))?;
        values.push(last.value.ok_or_else(|| {
            format!(
                "prometheus query `{name}`: non-finite value {}",
                last.raw.as_deref().unwrap_or("?")
            )
        })?);
    }
    let fold = |f: fn(f64, f64) -> f64| values.iter().copied().reduce(f);
    let value = match (aggregate, values.as_slice()) {
        (Some(Aggregate::Count), _) => Some(values.len() as f64),
        (None, [one]) => Some(*one),
        (None, []) | (Some(_), []) => None,
        (None, many) => {
            return Err(format!(
                "prometheus query `{name}` returned {} series; narrow it with `labels` or set `aggregate`",
                many.len()
            ));
        }
        (Some(Aggregate::Sum), _) => fold(|a, b| a + b),
        (Some(Aggregate::Max), _) => fold(f64::max),
        (Some(Aggregate::Min), _) => fold(f64::min),
    };
    value.ok_or_else(|| format!("prometheus query `{name}` returned no series (no data)"))
}

pub(crate) use gatekeeper_gate_sdk::labels::matches as labels_match;

pub(crate) fn family<'a>(
    s: &'a Snapshot,
    target: &str,
    family: &str,
) -> Result<&'a MetricFamily, String> {
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
pub(crate) enum PerMinute {
    /// A counter's increase (a drop is a reset).
    Rate,
    /// A gauge's net change (signed).
    Change,
    /// A gauge's rises only.
    Growth,
}

pub(crate) fn metric_sum(
    s: &Snapshot,
    target: &str,
    name: &str,
    labels: &Labels,
) -> Result<f64, String> {
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

/// `(le, cumulative count)`, by `le`.
type Buckets = Vec<(f64, f64)>;

/// Buckets `(le, cumulative count)` of the matching series, summed per `le`.
pub(crate) fn buckets(
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

pub(crate) fn quantile(
    samples: &Samples<'_>,
    at: usize,
    target: &str,
    name: &str,
    q: f64,
    labels: &Labels,
    window: Option<&str>,
) -> Result<f64, String> {
    let now = buckets(samples.all()[at], target, name, labels)?;
    let counts: Vec<(f64, f64)> = match window {
        None => now,
        Some(w) => {
            let ms = parse_duration_ms(w).map_err(|e| e.to_string())?;
            // Each snapshot's buckets are read once for all the bounds, not
            // once per bound: the cost grew with buckets².
            let seen: RefCell<HashMap<usize, Result<Buckets, String>>> =
                RefCell::new(HashMap::new());
            now.iter()
                .map(|(le, _)| {
                    let read = |s: &Snapshot| {
                        let mut seen = seen.borrow_mut();
                        let all = seen
                            .entry(std::ptr::from_ref(s) as usize)
                            .or_insert_with(|| buckets(s, target, name, labels));
                        match all {
                            Ok(all) => all
                                .iter()
                                .find(|(b, _)| b == le)
                                .map(|(_, c)| *c)
                                .ok_or_else(|| format!("{name}: bucket le={le} missing")),
                            Err(e) => Err(e.clone()),
                        }
                    };
                    samples.at(at).increase(ms, read).map(|(inc, _)| (*le, inc))
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
