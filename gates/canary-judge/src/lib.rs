//! Gate `canary-judge`: is the canary worse than the baseline?
//!
//! Each metric compares a canary group with a baseline group, both read from
//! named queries of the `prometheus` source (two queries, or one query split
//! by label matchers), and becomes one criterion:
//!
//! - `continuous` (latency, processing time, queue depth): every finite point
//!   of the group's series over the query's range is one observation. The
//!   shift is the Hodges–Lehmann estimate relative to the baseline median; it
//!   fails when a one-sided Mann–Whitney U test says the canary is worse at
//!   the configured confidence **and** the shift is beyond `tolerance`. It
//!   also fails when the spread grew (Brown–Forsythe test significant and the
//!   canary's median absolute deviation beyond `1 + spread_tolerance` times
//!   the baseline's) — Kayenta passes canaries whose variance grew.
//! - `proportion` (errors of requests, DLQ of messages): events and totals
//!   per group. It fails when a pooled two-proportion z-test says the canary
//!   is worse **and** the difference is beyond `tolerance`; it passes only
//!   when Newcombe's score interval bounds the difference within
//!   `tolerance` (non-inferiority). Between the two — too little traffic to
//!   tell, e.g. zero errors in 40 requests — it is unknown: sparse or
//!   all-zero counts never pass by default, as they do in Kayenta.
//!
//! Too few observations (`min_samples`), too little traffic (`min_total`),
//! every value identical in both groups, or a query that failed: unknown.
//! An optional Kayenta-style score (share of metrics that passed) adds one
//! criterion; it never outvotes a failing metric.

mod judge;
mod stats;

use gatekeeper_gate_sdk::model::{Severity, Snapshot, TriggerSpec};
use gatekeeper_gate_sdk::{
    Criterion, CriterionStatus, Evaluation, Gate, GateError, Input, Metadata, Needs, ParamSpec,
    Trigger,
};
use serde::Deserialize;
use std::collections::BTreeMap;

pub struct CanaryJudge;

gatekeeper_gate_sdk::export_gate!(CanaryJudge);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub metrics: Vec<Metric>,
    /// Confidence of every test (default 0.95: α = 0.05, one-sided).
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    /// Fewest observations per group for a continuous metric (default 20).
    #[serde(default = "default_min_samples")]
    pub min_samples: usize,
    /// Fewest events counted per group for a proportion (default 100).
    #[serde(default = "default_min_total")]
    pub min_total: f64,
    /// A Kayenta-style overall score criterion.
    #[serde(default)]
    pub score: Option<Score>,
}

fn default_confidence() -> f64 {
    0.95
}
fn default_min_samples() -> usize {
    20
}
fn default_min_total() -> f64 {
    100.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Score {
    /// Percent of metrics passing at or above which the score passes (default 95).
    #[serde(default = "default_pass")]
    pub pass: f64,
    /// At or above this (and below `pass`) the score is marginal: unknown,
    /// a person decides (default 75). Below: fail.
    #[serde(default = "default_marginal")]
    pub marginal: f64,
}

fn default_pass() -> f64 {
    95.0
}
fn default_marginal() -> f64 {
    75.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    #[default]
    HigherIsWorse,
    LowerIsWorse,
    Either,
}

/// A group of series: a query's name, or `{ query, labels }` to take only
/// the series whose labels match (a value starting with `!` matches every
/// value but that one).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Group {
    Query(String),
    Matching {
        query: String,
        #[serde(default)]
        labels: BTreeMap<String, String>,
    },
}

impl Group {
    fn query(&self) -> &str {
        match self {
            Group::Query(q) | Group::Matching { query: q, .. } => q,
        }
    }
    fn labels(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            Group::Query(_) => None,
            Group::Matching { labels, .. } => Some(labels),
        }
    }
}

/// What a metric compares, as checked from its fields.
#[derive(Debug)]
pub enum Compare {
    Continuous {
        canary: Group,
        baseline: Group,
        tolerance: f64,
        spread_tolerance: f64,
    },
    Proportion {
        canary_events: Group,
        canary_total: Group,
        baseline_events: Group,
        baseline_total: Group,
        tolerance: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Every point of the groups' series over the range is one observation.
    Continuous,
    /// Events out of a total per group, each the sum of the last points of
    /// the matching series (e.g. `sum(increase(…[10m]))`).
    Proportion,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    pub id: String,
    pub title: String,
    pub kind: Kind,
    #[serde(default)]
    pub direction: Direction,
    /// `continuous`: the two groups.
    pub canary: Option<Group>,
    pub baseline: Option<Group>,
    /// `proportion`: events and totals per group.
    pub canary_events: Option<Group>,
    pub canary_total: Option<Group>,
    pub baseline_events: Option<Group>,
    pub baseline_total: Option<Group>,
    /// `continuous`: the relative shift (Hodges–Lehmann / baseline median)
    /// tolerated in the bad direction (default 0.1: 10 %). `proportion`: the
    /// absolute difference tolerated (default 0.001: 0.1 percentage points).
    pub tolerance: Option<f64>,
    /// `continuous`: how much wider the canary's spread may be before a
    /// significant Brown–Forsythe test fails the metric (default 0.5: 1.5×).
    pub spread_tolerance: Option<f64>,
    /// Present: a failing metric is a rollback trigger of this severity.
    #[serde(default)]
    pub trigger: Option<Severity>,
}

/// A metric with its comparison checked.
#[derive(Debug)]
pub struct Checked<'a> {
    pub metric: &'a Metric,
    pub compare: Compare,
}

impl Metric {
    /// The comparison its kind asks for, or which field is wrong.
    fn compare(&self, i: usize) -> Result<Compare, String> {
        let field = |name: &str| format!("field `metrics[{i}].{name}`");
        let need = |g: &Option<Group>, name: &str| -> Result<Group, String> {
            match g {
                Some(g) if !g.query().is_empty() => Ok(g.clone()),
                Some(_) => Err(format!("{}: names no query", field(name))),
                None => Err(format!(
                    "{}: a `{}` metric needs it",
                    field(name),
                    kind_name(self.kind)
                )),
            }
        };
        let refuse = |g: &Option<Group>, name: &str| match g {
            Some(_) => Err(format!(
                "{}: not used by a `{}` metric",
                field(name),
                kind_name(self.kind)
            )),
            None => Ok(()),
        };
        let tolerance = |default: f64| -> Result<f64, String> {
            let t = self.tolerance.unwrap_or(default);
            if t >= 0.0 && t.is_finite() {
                Ok(t)
            } else {
                Err(format!("{}: must be a number >= 0", field("tolerance")))
            }
        };
        match self.kind {
            Kind::Continuous => {
                refuse(&self.canary_events, "canary_events")?;
                refuse(&self.canary_total, "canary_total")?;
                refuse(&self.baseline_events, "baseline_events")?;
                refuse(&self.baseline_total, "baseline_total")?;
                let spread = self.spread_tolerance.unwrap_or(0.5);
                if !(spread >= 0.0 && spread.is_finite()) {
                    return Err(format!(
                        "{}: must be a number >= 0",
                        field("spread_tolerance")
                    ));
                }
                Ok(Compare::Continuous {
                    canary: need(&self.canary, "canary")?,
                    baseline: need(&self.baseline, "baseline")?,
                    tolerance: tolerance(0.1)?,
                    spread_tolerance: spread,
                })
            }
            Kind::Proportion => {
                refuse(&self.canary, "canary")?;
                refuse(&self.baseline, "baseline")?;
                if self.spread_tolerance.is_some() {
                    return Err(format!(
                        "{}: not used by a `proportion` metric",
                        field("spread_tolerance")
                    ));
                }
                let t = tolerance(0.001)?;
                if t >= 1.0 {
                    return Err(format!(
                        "{}: a proportion's tolerance is a fraction below 1",
                        field("tolerance")
                    ));
                }
                Ok(Compare::Proportion {
                    canary_events: need(&self.canary_events, "canary_events")?,
                    canary_total: need(&self.canary_total, "canary_total")?,
                    baseline_events: need(&self.baseline_events, "baseline_events")?,
                    baseline_total: need(&self.baseline_total, "baseline_total")?,
                    tolerance: t,
                })
            }
        }
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Continuous => "continuous",
        Kind::Proportion => "proportion",
    }
}

/// Decodes and checks the params: what `needs` and `evaluate` share.
fn checked(params: &serde_json::Value) -> Result<Params, GateError> {
    let p: Params = gatekeeper_gate_sdk::decode_params(params)?;
    let bad = |m: String| Err(GateError::BadParams(m));
    if p.metrics.is_empty() {
        return bad("`metrics` is empty".into());
    }
    if !(p.confidence > 0.5 && p.confidence < 1.0) {
        return bad(format!(
            "confidence = {}: want 0.5 < confidence < 1",
            p.confidence
        ));
    }
    if p.min_samples < 3 {
        return bad("min_samples must be at least 3".into());
    }
    if !(p.min_total >= 1.0 && p.min_total.is_finite()) {
        return bad("min_total must be at least 1".into());
    }
    if let Some(s) = &p.score
        && !(0.0 <= s.marginal && s.marginal <= s.pass && s.pass <= 100.0)
    {
        return bad("score: want 0 <= marginal <= pass <= 100".into());
    }
    let mut ids = std::collections::BTreeSet::new();
    for (i, m) in p.metrics.iter().enumerate() {
        if !gatekeeper_gate_sdk::model::is_kebab_id(&m.id) {
            return bad(format!(
                "field `metrics[{i}].id`: `{}` is not kebab-case",
                m.id
            ));
        }
        if !ids.insert(m.id.as_str()) || m.id == SCORE_ID {
            return bad(format!("field `metrics[{i}].id`: `{}` is used twice", m.id));
        }
        m.compare(i).map_err(GateError::BadParams)?;
    }
    Ok(p)
}

impl Params {
    fn checked_metrics(&self) -> Vec<Checked<'_>> {
        self.metrics
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                m.compare(i)
                    .ok()
                    .map(|compare| Checked { metric: m, compare })
            })
            .collect()
    }
}

/// The id of the optional score criterion.
const SCORE_ID: &str = "canary-score";

impl Gate for CanaryJudge {
    fn metadata() -> Metadata {
        Metadata {
            name: "canary-judge".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Canary vs baseline per metric: Mann-Whitney U with a Hodges-Lehmann shift, a Brown-Forsythe spread test, and a two-proportion test with a Newcombe non-inferiority bound; too little data is unknown, never pass.".into(),
            sources: vec!["prometheus".into()],
            params: vec![
                ParamSpec::required(
                    "metrics",
                    "[{id, title, kind = continuous|proportion, direction, canary, baseline | canary_events, canary_total, baseline_events, baseline_total, tolerance, trigger}]",
                ),
                ParamSpec::with_default("confidence", "confidence of every test", serde_json::json!(0.95)),
                ParamSpec::with_default("min_samples", "fewest observations per group (continuous)", serde_json::json!(20)),
                ParamSpec::with_default("min_total", "fewest events counted per group (proportion)", serde_json::json!(100)),
                ParamSpec::with_default("score", "{pass, marginal}: a Kayenta-style score criterion", serde_json::Value::Null),
            ],
            snapshot_schema: gatekeeper_gate_sdk::model::SNAPSHOT_SCHEMA_VERSION,
        }
    }

    fn needs(params: &serde_json::Value) -> Result<Needs, GateError> {
        let p = checked(params)?;
        Ok(Needs {
            reads: vec!["prometheus".into()],
            history_ms: 0,
            triggers: p
                .metrics
                .iter()
                .filter_map(|m| {
                    m.trigger.map(|severity| TriggerSpec {
                        id: m.id.clone(),
                        title: m.title.clone(),
                        severity,
                    })
                })
                .collect(),
            attestations: vec![],
        })
    }

    fn evaluate(input: &Input) -> Result<Evaluation, GateError> {
        let p = checked(&input.params)?;
        let snap: &Snapshot = &input.snapshot;
        let mut criteria: Vec<Criterion> = p
            .checked_metrics()
            .iter()
            .map(|m| judge::judge(snap, m, &p))
            .collect();
        let triggers = p
            .metrics
            .iter()
            .zip(&criteria)
            .filter(|(_, c)| c.status == CriterionStatus::Fail)
            .filter_map(|(m, c)| {
                m.trigger.map(|severity| Trigger {
                    id: m.id.clone(),
                    severity,
                    reason: c.message.clone(),
                    since: None,
                })
            })
            .collect();
        if let Some(s) = &p.score {
            criteria.push(score(&criteria, s));
        }
        Ok(Evaluation::from_parts(criteria, triggers))
    }
}

/// Kayenta's score: the share of metrics that passed. Any unknown metric
/// makes the score unknown (Kayenta leaves "no data" out of the score).
fn score(metrics: &[Criterion], s: &Score) -> Criterion {
    let title = "Canary score";
    let passed = metrics
        .iter()
        .filter(|c| c.status == CriterionStatus::Pass)
        .count();
    let value = 100.0 * passed as f64 / metrics.len() as f64;
    let observed = format!("{value:.0} ({passed} of {} metrics passed)", metrics.len());
    let expected = format!(">= {} (marginal >= {})", s.pass, s.marginal);
    let unknown = metrics
        .iter()
        .filter(|c| c.status == CriterionStatus::Unknown)
        .map(|c| c.id.as_str())
        .collect::<Vec<_>>();
    let c = if !unknown.is_empty() {
        Criterion::unknown(
            SCORE_ID,
            title,
            format!("no score while {} cannot be judged", unknown.join(", ")),
        )
    } else if value >= s.pass {
        Criterion::pass(SCORE_ID, title, format!("score {observed}"))
    } else if value >= s.marginal {
        Criterion::unknown(
            SCORE_ID,
            title,
            format!("score {observed} is marginal: a person decides"),
        )
    } else {
        Criterion::fail(SCORE_ID, title, format!("score {observed}"))
    };
    c.observed(observed).expected(expected)
}

#[cfg(test)]
mod tests;
