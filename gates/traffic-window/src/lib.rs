//! Gate `traffic-window` (seed 003 no-go conditions: "high traffic period
//! (>100 msg/min)", "holiday or weekend (prefer weekday)", "avoid business
//! hours"): the streams' publish rate over the history window is below
//! `max_per_minute`, and the snapshot's time (the only clock a gate has) is a
//! weekday, outside `avoid_hours`, and outside every blackout.
//!
//! The rate needs history (a recording, or the rounds of `check --wait`); with
//! too little, it is unknown and the phase defers.

use gatekeeper_gate_sdk::check::{Part, all_of, id};
use gatekeeper_gate_sdk::model::{Snapshot, format_timestamp, parse_duration_ms, parse_timestamp};
use gatekeeper_gate_sdk::window::rate_per_minute;
use gatekeeper_gate_sdk::{Evaluation, Gate, GateError, Input, Metadata, Needs, ParamSpec};
use serde::Deserialize;

pub struct TrafficWindow;

gatekeeper_gate_sdk::export_gate!(TrafficWindow);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub id: String,
    pub title: String,
    /// Streams whose publishes count (their `last_seq` increase).
    pub streams: Vec<String>,
    pub max_per_minute: f64,
    /// The rate's window, e.g. `5m`.
    pub window: String,
    /// Refuse Saturday and Sunday (in `utc_offset_minutes` local time).
    pub weekdays_only: bool,
    /// `[from, to)` local hours to avoid, e.g. `[9, 17]`; null: any hour.
    pub avoid_hours: Option<[u32; 2]>,
    pub utc_offset_minutes: i64,
    /// `[{from, to, reason}]` RFC 3339 times; the change may not start inside one.
    pub blackouts: Vec<Blackout>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blackout {
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub reason: String,
}

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

impl Gate for TrafficWindow {
    fn metadata() -> Metadata {
        use serde_json::json;
        Metadata {
            name: "traffic-window".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "A quiet window: message rate below a limit, a weekday, outside avoided hours and blackouts.".into(),
            sources: vec!["nats".into()],
            params: vec![
                ParamSpec::with_default("id", "criterion id", json!("traffic-low")),
                ParamSpec::with_default("title", "criterion title", json!("Traffic low, quiet window")),
                ParamSpec::required("streams", "streams whose publishes count"),
                ParamSpec::with_default("max_per_minute", "publishes per minute must be below this", json!(100)),
                ParamSpec::with_default("window", "the rate's window", json!("5m")),
                ParamSpec::with_default("weekdays_only", "refuse Saturday and Sunday", json!(true)),
                ParamSpec::with_default("avoid_hours", "[from, to) local hours to avoid, e.g. [9, 17]", serde_json::Value::Null),
                ParamSpec::with_default("utc_offset_minutes", "local time offset for days and hours", json!(0)),
                ParamSpec::with_default("blackouts", "[{from, to, reason}] RFC 3339", json!([])),
            ],
            snapshot_schema: gatekeeper_gate_sdk::model::SNAPSHOT_SCHEMA_VERSION,
        }
    }

    /// The streams; the rate's window as the history.
    fn needs(params: &serde_json::Value) -> Result<Needs, GateError> {
        let p: Params = gatekeeper_gate_sdk::decode_params(params)?;
        let history_ms = parse_duration_ms(&p.window)
            .map_err(|e| GateError::BadParams(format!("window: {e}")))?;
        Ok(Needs {
            reads: p
                .streams
                .iter()
                .map(|s| format!("nats.streams.{s}"))
                .collect(),
            history_ms,
            ..Needs::default()
        })
    }

    fn evaluate(input: &Input) -> Result<Evaluation, GateError> {
        let p: Params = input.params()?;
        let bad = |m: String| GateError::BadParams(m);
        if p.streams.is_empty() {
            return Err(bad(
                "`streams` is empty: name the streams whose traffic counts".into(),
            ));
        }
        let window_ms = parse_duration_ms(&p.window).map_err(|e| bad(format!("window: {e}")))?;
        if let Some([from, to]) = p.avoid_hours
            && (from > 23 || to > 24 || from >= to)
        {
            return Err(bad(
                "avoid_hours: want [from, to) with 0 <= from < to <= 24".into(),
            ));
        }
        let blackouts = p
            .blackouts
            .iter()
            .map(|b| {
                Ok((
                    parse_timestamp(&b.from)?,
                    parse_timestamp(&b.to)?,
                    b.reason.as_str(),
                ))
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| bad(format!("blackouts: {e}")))?;

        let mut parts = vec![rate_part(input, &p, window_ms)];
        let now = input.now();
        let local_secs = now.timestamp() + p.utc_offset_minutes * 60;
        let day = local_secs.div_euclid(86_400);
        let weekday = (day + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
        let hour = (local_secs.rem_euclid(86_400) / 3_600) as u32;
        if p.weekdays_only {
            parts.push(if weekday == 0 || weekday == 6 {
                Part::Fail(format!("{} (weekdays only)", DAYS[weekday]))
            } else {
                Part::Pass(DAYS[weekday].to_owned())
            });
        }
        if let Some([from, to]) = p.avoid_hours {
            parts.push(if (from..to).contains(&hour) {
                Part::Fail(format!(
                    "{hour:02}h local is inside the avoided hours {from:02}-{to:02}h"
                ))
            } else {
                Part::Pass(format!("{hour:02}h local, outside {from:02}-{to:02}h"))
            });
        }
        for (from, to, reason) in &blackouts {
            if *from <= now && now < *to {
                parts.push(Part::Fail(format!(
                    "inside the blackout {} – {}{}",
                    format_timestamp(*from),
                    format_timestamp(*to),
                    if reason.is_empty() {
                        String::new()
                    } else {
                        format!(" ({reason})")
                    }
                )));
            }
        }
        Ok(Evaluation::from_criteria(vec![all_of(
            id(&p.id, &p.title),
            parts,
        )]))
    }
}

fn rate_part(input: &Input, p: &Params, window_ms: u64) -> Part {
    let published = |s: &Snapshot| -> Result<f64, String> {
        let nats = s.nats.usable("nats")?;
        p.streams.iter().try_fold(0.0, |sum, name| {
            // A stream that does not exist (yet) takes no traffic.
            if nats.stream_absent(name) {
                return Ok(sum);
            }
            let stream = nats.stream_or_why(name)?;
            let seq = stream
                .state
                .as_ref()
                .and_then(|st| st.last_seq)
                .ok_or_else(|| format!("stream {name}: last_seq not reported"))?;
            Ok(sum + seq as f64)
        })
    };
    match rate_per_minute(input, window_ms, published) {
        Err(why) => Part::Unknown(format!("message rate: {why}")),
        Ok(rate) if rate < p.max_per_minute => {
            Part::Pass(format!("{rate:.1} msg/min over {}", p.window))
        }
        Ok(rate) => Part::Fail(format!(
            "{rate:.1} msg/min over {}, required < {}",
            p.window, p.max_per_minute
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatekeeper_gate_sdk::model::{NatsFacts, Source, StreamFacts, StreamState, Timestamp};
    use gatekeeper_gate_sdk::testing::Testcase;
    use gatekeeper_gate_sdk::{CriterionStatus, Decision};
    use serde_json::json;

    fn at(text: &str) -> Timestamp {
        parse_timestamp(text).unwrap()
    }

    fn snap(time: &str, last_seq: u64) -> Snapshot {
        let mut s = Snapshot::empty(at(time));
        s.nats = Source::ok(NatsFacts {
            streams: vec![StreamFacts {
                name: "AA_CORE_HOT".into(),
                state: Some(StreamState {
                    last_seq: Some(last_seq),
                    ..StreamState::default()
                }),
                ..StreamFacts::default()
            }],
            streams_complete: true,
            ..NatsFacts::default()
        });
        s
    }

    /// Samples every minute for 5 minutes ending at `end`, `per_minute` apart.
    fn case(end_minute: &str, per_minute: u64, params: serde_json::Value) -> Testcase {
        let times: Vec<String> = (0..=5).map(|m| format!("{end_minute}:0{m}:00Z")).collect();
        let mut snaps: Vec<Snapshot> = times
            .iter()
            .enumerate()
            .map(|(i, t)| snap(t, 1000 + i as u64 * per_minute))
            .collect();
        let current = snaps.pop().unwrap();
        Testcase::new(current, params).with_history(snaps)
    }

    #[test]
    fn quiet_weekday_evening_is_go() {
        // 2025-10-02 was a Thursday.
        let e = case(
            "2025-10-02T19",
            12,
            json!({"streams": ["AA_CORE_HOT"], "avoid_hours": [9, 17]}),
        )
        .run::<TrafficWindow>()
        .unwrap();
        assert_eq!(e.decision, Decision::Go, "{}", e.criteria[0].message);
        assert_eq!(e.criteria[0].id, "traffic-low");
        assert_eq!(
            e.criteria[0].message,
            "12.0 msg/min over 5m, Thursday, 19h local, outside 09-17h"
        );
    }

    #[test]
    fn busy_weekend_business_hours_and_blackouts_fail() {
        // 2025-10-04 was a Saturday.
        let params = json!({"streams": ["AA_CORE_HOT"], "avoid_hours": [9, 17],
            "blackouts": [{"from": "2025-10-04T00:00:00Z", "to": "2025-10-05T00:00:00Z", "reason": "release freeze"}]});
        let e = case("2025-10-04T10", 150, params)
            .run::<TrafficWindow>()
            .unwrap();
        assert_eq!(e.decision, Decision::NoGo);
        assert_eq!(
            e.criteria[0].message,
            "150.0 msg/min over 5m, required < 100; Saturday (weekdays only); \
             10h local is inside the avoided hours 09-17h; \
             inside the blackout 2025-10-04T00:00:00Z – 2025-10-05T00:00:00Z (release freeze)"
        );
    }

    #[test]
    fn without_history_the_rate_is_unknown() {
        let t = Testcase::new(
            snap("2025-10-02T19:00:00Z", 5),
            json!({"streams": ["AA_CORE_HOT"]}),
        );
        let e = t.run::<TrafficWindow>().unwrap();
        assert_eq!(e.criteria[0].status, CriterionStatus::Unknown);
        assert!(
            e.criteria[0]
                .message
                .starts_with("message rate: need 5m of history"),
            "{}",
            e.criteria[0].message
        );
    }

    #[test]
    fn local_offset_moves_the_day() {
        // Friday 23:30 UTC is Saturday 01:30 at UTC+2.
        let mut t = case(
            "2025-10-03T23",
            1,
            json!({"streams": ["AA_CORE_HOT"], "utc_offset_minutes": 120}),
        );
        let e = t.run::<TrafficWindow>().unwrap();
        assert_eq!(e.decision, Decision::NoGo);
        t.params = json!({"streams": ["AA_CORE_HOT"]});
        assert_eq!(t.run::<TrafficWindow>().unwrap().decision, Decision::Go);
    }

    #[test]
    fn a_stream_that_does_not_exist_yet_takes_no_traffic() {
        let params = json!({"streams": ["AA_CORE_HOT", "AA_VENDOR_HOT"]});
        let e = case("2025-10-02T19", 12, params)
            .run::<TrafficWindow>()
            .unwrap();
        assert_eq!(e.decision, Decision::Go, "{}", e.criteria[0].message);
        assert!(e.criteria[0].message.starts_with("12.0 msg/min over 5m"));
    }

    #[test]
    fn bad_params_are_errors() {
        let t =
            |params| Testcase::new(snap("2025-10-02T19:00:00Z", 5), params).run::<TrafficWindow>();
        assert!(matches!(
            t(json!({"streams": []})),
            Err(GateError::BadParams(_))
        ));
        assert!(matches!(
            t(json!({"streams": ["S"], "avoid_hours": [17, 9]})),
            Err(GateError::BadParams(_))
        ));
        assert!(
            matches!(t(json!({"streams": ["S"], "window": "five"})), Err(GateError::BadParams(m)) if m.starts_with("window:"))
        );
    }
}
