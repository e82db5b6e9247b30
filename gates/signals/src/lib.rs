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
    Severity, format_duration_ms, format_timestamp, millis_between, parse_duration_ms,
};
use gatekeeper_gate_sdk::window::{Hold, Samples, hold_at};
use gatekeeper_gate_sdk::{
    Criterion, Evaluation, Gate, GateError, Input, Metadata, Needs, ParamSpec, Timestamp, Trigger,
    TriggerSpec,
};
mod condition;
mod measure;
mod read;

use condition::{Condition, show_value};
pub use measure::Measure;
use serde::Deserialize;

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

impl Gate for Signals {
    fn metadata() -> Metadata {
        Metadata {
            name: "signals".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Numbers from any source against a condition and a hold: go/no-go requirements or rollback triggers.".into(),
            sources: ["nats", "postgres", "kubernetes", "http", "metrics", "prometheus"]
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
        let all = Samples::of(input);
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
    samples: &Samples<'_>,
) -> (Criterion, Option<Trigger>) {
    let all = samples.all();
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
    let current = match s.measure.value(samples, now_at) {
        Ok(v) => v,
        Err(why) => return unknown(why),
    };
    let shown = show_value(current, unit);
    // Evidence starts at the first readable sample: the oldest samples of a
    // rate have no window behind them yet. The run is walked back to its
    // start, so `since` is when the condition began to hold (as far as the
    // window tells), not `now - for`.
    let first = (0..=now_at)
        .find(|&i| s.measure.value(samples, i).is_ok())
        .unwrap_or(now_at);
    let condition = |i: usize| match i < first {
        true => Ok(false),
        false => s.measure.value(samples, i).map(|v| cond.holds(v)),
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
