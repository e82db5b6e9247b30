//! Gate `message-continuity` (seed 003, strategy 4 "Message Continuity
//! Check": "verify message counts before and after migration"; RPO 0): moving
//! subjects between streams must not lose a message.
//!
//! The seed compares the legacy stream's count before with the new stream's
//! after. Moving subjects does not move stored messages (seed 002: the legacy
//! stream kept its 55 after becoming `legacy.>`), so the gate checks what that
//! comparison means:
//! - **counts**: the messages `from` held at the baseline are still held by
//!   `from` and the `to` streams together now (`from_now + Σ to_now ≥
//!   baseline − tolerance`). The baseline is `baseline` when given (the
//!   count an operator recorded), else `from`'s count in the sample that
//!   starts the window: the one `over` ago (e.g. `5m`, the phase's sample),
//!   or without `over` the history's first;
//! - **sequences**: no stream's `last_seq` went backwards inside the window
//!   (a deleted and recreated stream loses its messages silently).
//!
//! The window must have been watched without a break (no gap over 1.5
//! sampling intervals): a sample missing inside it is unknown, never a
//! pass. With `over`, a missing first sample is unknown too; without it a
//! shorter history is simply a later baseline, so set `over`. No baseline
//! (no history, no param) is unknown, never a pass.

use gatekeeper_gate_sdk::check::{Part, all_of, id};
use gatekeeper_gate_sdk::model::{Snapshot, StreamState, format_timestamp, parse_duration_ms};
use gatekeeper_gate_sdk::window::{samples, watched_since};
use gatekeeper_gate_sdk::{Evaluation, Gate, GateError, Input, Metadata, Needs, ParamSpec};
use serde::Deserialize;

pub struct MessageContinuity;

gatekeeper_gate_sdk::export_gate!(MessageContinuity);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub id: String,
    pub title: String,
    /// The stream subjects move away from.
    pub from: String,
    /// The streams they move to.
    pub to: Vec<String>,
    /// `from`'s message count before the move; null: the oldest snapshot's.
    pub baseline: Option<u64>,
    /// Messages that may go missing (e.g. expired by max age).
    pub tolerance: u64,
    /// How far back the window starts (a duration); null: the history's first sample.
    pub over: Option<String>,
}

impl Gate for MessageContinuity {
    fn metadata() -> Metadata {
        use serde_json::json;
        Metadata {
            name: "message-continuity".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "No message lost moving subjects: the count before is still held by the old and new streams; no stream went backwards.".into(),
            sources: vec!["nats".into()],
            params: vec![
                ParamSpec::with_default("id", "criterion id", json!("message-continuity")),
                ParamSpec::with_default("title", "criterion title", json!("No message lost across the move")),
                ParamSpec::required("from", "the stream subjects move away from"),
                ParamSpec::required("to", "the streams they move to"),
                ParamSpec::with_default("baseline", "from's message count before the move (default: oldest snapshot)", serde_json::Value::Null),
                ParamSpec::with_default("tolerance", "messages that may go missing", json!(0)),
                ParamSpec::with_default("over", "how far back the window starts, e.g. 5m (default: the history's first sample)", serde_json::Value::Null),
            ],
            snapshot_schema: gatekeeper_gate_sdk::model::SNAPSHOT_SCHEMA_VERSION,
        }
    }

    /// The streams; `over` as the history.
    fn needs(params: &serde_json::Value) -> Result<Needs, GateError> {
        let p: Params = gatekeeper_gate_sdk::decode_params(params)?;
        let history_ms = p
            .over
            .as_deref()
            .map(parse_duration_ms)
            .transpose()
            .map_err(|e| GateError::BadParams(format!("over: {e}")))?
            .unwrap_or(0);
        Ok(Needs {
            reads: std::iter::once(&p.from)
                .chain(&p.to)
                .map(|s| format!("nats.streams.{s}"))
                .collect(),
            history_ms,
            ..Needs::default()
        })
    }

    fn evaluate(input: &Input) -> Result<Evaluation, GateError> {
        let p: Params = input.params()?;
        if p.to.is_empty() {
            return Err(GateError::BadParams("`to` is empty".into()));
        }
        let over = p
            .over
            .as_deref()
            .map(parse_duration_ms)
            .transpose()
            .map_err(|e| GateError::BadParams(format!("over: {e}")))?;
        let streams: Vec<&String> = std::iter::once(&p.from).chain(&p.to).collect();
        let all: Vec<&Snapshot> = samples(input).collect();
        let parts = match watched_since(&all, over) {
            Ok(start) => vec![
                counts(&all[start..], &p),
                sequences(&all[start..], &streams),
            ],
            Err(why) => vec![Part::Unknown(format!("window: {why}"))],
        };
        Ok(Evaluation::from_criteria(vec![all_of(
            id(&p.id, &p.title),
            parts,
        )]))
    }
}

fn state<'a>(s: &'a Snapshot, name: &str) -> Result<&'a StreamState, String> {
    s.nats
        .usable("nats")?
        .stream_or_why(name)?
        .state
        .as_ref()
        .ok_or_else(|| format!("stream {name}: state not reported"))
}

fn messages(s: &Snapshot, name: &str) -> Result<u64, String> {
    state(s, name)?
        .messages
        .ok_or_else(|| format!("stream {name}: messages not reported"))
}

/// `window`: the samples from the window's start to now (the last).
fn counts(window: &[&Snapshot], p: &Params) -> Part {
    let now = window[window.len() - 1];
    let baseline = match p.baseline {
        Some(b) => Ok((b, "baseline".to_owned())),
        None if window.len() < 2 => Err("no baseline: give `baseline` or a history window (a recording, check --wait or --sample)".to_owned()),
        None => messages(window[0], &p.from)
            .map(|m| (m, format!("at {}", format_timestamp(window[0].taken_at)))),
    };
    let (before, when) = match baseline {
        Ok(b) => b,
        Err(why) => return Part::Unknown(format!("counts: {why}")),
    };
    let now = std::iter::once(&p.from)
        .chain(&p.to)
        .map(|s| messages(now, s).map(|m| (s, m)))
        .collect::<Result<Vec<_>, String>>();
    let now = match now {
        Ok(n) => n,
        Err(why) => return Part::Unknown(format!("counts: {why}")),
    };
    let held: u64 = now.iter().map(|(_, m)| m).sum();
    let detail = now
        .iter()
        .map(|(s, m)| format!("{s} {m}"))
        .collect::<Vec<_>>()
        .join(" + ");
    let text = format!("{} held {before} {when}; now {detail} = {held}", p.from);
    if held + p.tolerance >= before {
        Part::Pass(text)
    } else {
        Part::Fail(format!(
            "{text}: {} missing (tolerance {})",
            before - held,
            p.tolerance
        ))
    }
}

fn sequences(window: &[&Snapshot], streams: &[&String]) -> Part {
    let mut previous: Vec<Option<u64>> = vec![None; streams.len()];
    for snap in window {
        for (i, name) in streams.iter().enumerate() {
            // A stream that does not exist yet (or any more) in a sample: the
            // next sample that has it compares with nothing.
            let absent = snap
                .nats
                .usable("nats")
                .is_ok_and(|n| n.stream_absent(name));
            let seq = match state(snap, name) {
                Ok(st) => st.last_seq,
                Err(_) if absent => None,
                Err(why) => {
                    return Part::Unknown(format!(
                        "sequences at {}: {why}",
                        format_timestamp(snap.taken_at)
                    ));
                }
            };
            if let (Some(before), Some(now)) = (previous[i], seq)
                && now < before
            {
                return Part::Fail(format!(
                    "{name} last_seq went back from {before} to {now} at {} (deleted and recreated?)",
                    format_timestamp(snap.taken_at)
                ));
            }
            if seq.is_some() {
                previous[i] = seq;
            }
        }
    }
    Part::Pass("no sequence went backwards".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatekeeper_gate_sdk::CriterionStatus::{Fail, Pass, Unknown};
    use gatekeeper_gate_sdk::testing::Testcase;
    use serde_json::{Value, json};

    /// `[(stream, messages, last_seq)]` at 10:MM.
    fn snap(minute: u32, streams: &[(&str, u64, u64)]) -> Snapshot {
        let streams: Vec<Value> = streams
            .iter()
            .map(|(n, m, s)| json!({"name": n, "state": {"messages": m, "last_seq": s}}))
            .collect();
        serde_json::from_value(json!({
            "schema_version": gatekeeper_gate_sdk::model::SNAPSHOT_SCHEMA_VERSION,
            "taken_at": format!("2025-10-02T10:{minute:02}:00Z"),
            "nats": {"status": "ok", "facts": {"streams": streams, "streams_complete": true}}
        }))
        .unwrap()
    }

    fn params() -> Value {
        json!({"from": "ATHLETE_ALLY_EVENTS", "to": ["AA_CORE_HOT", "AA_VENDOR_HOT"]})
    }

    #[test]
    fn seed_002_move_keeps_every_message() {
        // Before: the legacy stream holds 55. After the move it still holds
        // them (as legacy.>), and new traffic lands on AA_CORE_HOT.
        let before = snap(0, &[("ATHLETE_ALLY_EVENTS", 55, 55)]);
        let after = snap(
            5,
            &[
                ("ATHLETE_ALLY_EVENTS", 55, 55),
                ("AA_CORE_HOT", 3, 3),
                ("AA_VENDOR_HOT", 0, 0),
            ],
        );
        let e = Testcase::new(after, params())
            .with_history(vec![before])
            .run::<MessageContinuity>()
            .unwrap();
        assert_eq!(e.criteria[0].status, Pass);
        assert_eq!(
            e.criteria[0].message,
            "ATHLETE_ALLY_EVENTS held 55 at 2025-10-02T10:00:00Z; now ATHLETE_ALLY_EVENTS 55 + AA_CORE_HOT 3 + AA_VENDOR_HOT 0 = 58, no sequence went backwards"
        );
    }

    #[test]
    fn a_purge_or_a_recreated_stream_is_a_loss() {
        let before = snap(0, &[("ATHLETE_ALLY_EVENTS", 55, 55), ("AA_CORE_HOT", 9, 9)]);
        let purged = snap(
            5,
            &[
                ("ATHLETE_ALLY_EVENTS", 0, 55),
                ("AA_CORE_HOT", 2, 2),
                ("AA_VENDOR_HOT", 0, 0),
            ],
        );
        let e = Testcase::new(purged, params())
            .with_history(vec![before])
            .run::<MessageContinuity>()
            .unwrap();
        assert_eq!(e.criteria[0].status, Fail);
        assert_eq!(
            e.criteria[0].message,
            "ATHLETE_ALLY_EVENTS held 55 at 2025-10-02T10:00:00Z; now ATHLETE_ALLY_EVENTS 0 + AA_CORE_HOT 2 + AA_VENDOR_HOT 0 = 2: 53 missing (tolerance 0); \
             AA_CORE_HOT last_seq went back from 9 to 2 at 2025-10-02T10:05:00Z (deleted and recreated?)"
        );
    }

    #[test]
    fn no_baseline_is_unknown_and_a_given_baseline_decides() {
        let now = snap(
            5,
            &[
                ("ATHLETE_ALLY_EVENTS", 50, 55),
                ("AA_CORE_HOT", 0, 0),
                ("AA_VENDOR_HOT", 0, 0),
            ],
        );
        let e = Testcase::new(now.clone(), params())
            .run::<MessageContinuity>()
            .unwrap();
        assert_eq!(e.criteria[0].status, Unknown);
        let mut p = params();
        p["baseline"] = json!(55);
        p["tolerance"] = json!(5);
        let e = Testcase::new(now, p).run::<MessageContinuity>().unwrap();
        assert_eq!(e.criteria[0].status, Pass, "{}", e.criteria[0].message);
    }

    /// With `over`, the window starts `over` ago and must be watched
    /// without a break: a missing sample is unknown, never a later baseline
    /// that hides a loss.
    #[test]
    fn a_missing_sample_is_unknown_never_a_later_baseline() {
        let all = |m: u32, legacy: u64| {
            snap(
                m,
                &[
                    ("ATHLETE_ALLY_EVENTS", legacy, 60),
                    ("AA_CORE_HOT", 0, 0),
                    ("AA_VENDOR_HOT", 0, 0),
                ],
            )
        };
        // 60 at 10:00, 50 from 10:01: ten messages lost.
        let history: Vec<Snapshot> = (0..5)
            .map(|m| all(m, if m == 0 { 60 } else { 50 }))
            .collect();
        let mut p = params();
        p["over"] = json!("5m");
        let run = |history: Vec<Snapshot>| {
            Testcase::new(all(5, 50), p.clone())
                .with_history(history)
                .run::<MessageContinuity>()
                .unwrap()
                .criteria
                .remove(0)
        };
        assert_eq!(run(history.clone()).status, Fail);
        // Without 10:00 the window is not reached: unknown, not a pass.
        let c = run(history[1..].to_vec());
        assert_eq!(c.status, Unknown);
        assert_eq!(c.message, "window: the history covers only 4m");
        // Without 10:02: a gap.
        let mut gap = history.clone();
        gap.remove(2);
        let c = run(gap);
        assert_eq!(c.status, Unknown);
        assert!(
            c.message.starts_with(
                "window: no sample between 2025-10-02T10:01:00Z and 2025-10-02T10:03:00Z"
            ),
            "{}",
            c.message
        );
    }

    #[test]
    fn a_missing_target_stream_is_unknown() {
        let now = snap(5, &[("ATHLETE_ALLY_EVENTS", 55, 55)]);
        let mut p = params();
        p["baseline"] = json!(55);
        let e = Testcase::new(now, p).run::<MessageContinuity>().unwrap();
        assert_eq!(e.criteria[0].status, Unknown);
        assert_eq!(
            e.criteria[0].message,
            "counts: stream AA_CORE_HOT does not exist"
        );
    }
}
