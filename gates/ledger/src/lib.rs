//! Gate `ledger`: the criteria a person or the past decides — sign-offs and
//! attestations ("staging verified", "on-call engineer available"), "phase 1
//! stable for 24 h", "no incident in the last 48 h" — read from the ledger
//! facts Gatekeeper records (`snapshot.ledger`).
//!
//! Without a ledger fact every criterion is unknown (the phase defers): a
//! missing sign-off is never a pass.

use gatekeeper_gate_sdk::model::{
    Decision, LedgerFacts, Snapshot, Timestamp, format_duration_ms, format_timestamp,
    millis_between, parse_duration_ms,
};
use gatekeeper_gate_sdk::{
    AttestationSpec, Criterion, Evaluation, Gate, GateError, Input, Metadata, Needs, ParamSpec,
};
use serde::Deserialize;

pub struct Ledger;

gatekeeper_gate_sdk::export_gate!(Ledger);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub criteria: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub id: String,
    pub title: String,
    pub requires: Requirement,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Requirement {
    /// Someone attested `criterion` (default: this entry's id) for `phase`,
    /// at most `max_age` ago when given.
    Attestation {
        phase: String,
        #[serde(default)]
        criterion: Option<String>,
        #[serde(default)]
        max_age: Option<String>,
    },
    /// Every verdict recorded for `phase` over the last `for` was go, the
    /// first of them at least `for` ago, and the latest at most `max_gap` ago
    /// (default 15m: a silent recorder proves nothing).
    PhaseStable {
        phase: String,
        #[serde(rename = "for")]
        duration: String,
        #[serde(default)]
        max_gap: Option<String>,
    },
    /// No incident is open, and none was opened or closed in the last `for`,
    /// and a watch was recording all that time: recorded verdicts go back at
    /// least `for`, the latest at most 15m ago (an empty ledger proves nothing).
    NoIncident {
        #[serde(rename = "for")]
        duration: String,
    },
}

/// A watch records a verdict at least every 5m; silence longer than this
/// means nobody was looking.
const WATCH_MAX_GAP_MS: u64 = 15 * 60 * 1000;

impl Gate for Ledger {
    fn metadata() -> Metadata {
        Metadata {
            name: "ledger".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Attestations, phase stable for a duration, no recent incident: read from the ledger.".into(),
            sources: vec!["ledger".into()],
            params: vec![ParamSpec::required(
                "criteria",
                "[{id, title, requires = {kind = attestation|phase-stable|no-incident, ...}}]",
            )],
            snapshot_schema: gatekeeper_gate_sdk::model::SNAPSHOT_SCHEMA_VERSION,
        }
    }

    /// The ledger; and every attestation a criterion requires, so
    /// `gatekeeper attest` can list them and refuse a typo.
    fn needs(params: &serde_json::Value) -> Result<Needs, GateError> {
        let p: Params = gatekeeper_gate_sdk::decode_params(params)?;
        let attestations = p
            .criteria
            .iter()
            .filter_map(|e| match &e.requires {
                Requirement::Attestation {
                    phase, criterion, ..
                } => Some(AttestationSpec {
                    phase: phase.clone(),
                    criterion: criterion.clone().unwrap_or_else(|| e.id.clone()),
                    title: e.title.clone(),
                }),
                _ => None,
            })
            .collect();
        Ok(Needs {
            reads: vec!["ledger".into()],
            attestations,
            ..Needs::default()
        })
    }

    fn evaluate(input: &Input) -> Result<Evaluation, GateError> {
        let p: Params = input.params()?;
        if p.criteria.is_empty() {
            return Err(GateError::BadParams("`criteria` is empty".into()));
        }
        let mut out = Vec::new();
        for (i, e) in p.criteria.iter().enumerate() {
            let ms = |d: &str, field: &str| {
                parse_duration_ms(d).map_err(|err| {
                    GateError::BadParams(format!("criteria[{i}] ({}): {field}: {err}", e.id))
                })
            };
            let check = match &e.requires {
                Requirement::Attestation {
                    phase,
                    criterion,
                    max_age,
                } => {
                    let max_age = max_age.as_deref().map(|d| ms(d, "max_age")).transpose()?;
                    let name = criterion.as_deref().unwrap_or(&e.id);
                    Check::Attestation {
                        phase,
                        name,
                        max_age,
                    }
                }
                Requirement::PhaseStable {
                    phase,
                    duration,
                    max_gap,
                } => Check::PhaseStable {
                    phase,
                    for_ms: ms(duration, "for")?,
                    max_gap: ms(max_gap.as_deref().unwrap_or("15m"), "max_gap")?,
                },
                Requirement::NoIncident { duration } => Check::NoIncident {
                    for_ms: ms(duration, "for")?,
                },
            };
            out.push(judge(e, &check, &input.snapshot));
        }
        Ok(Evaluation::from_criteria(out))
    }
}

enum Check<'a> {
    Attestation {
        phase: &'a str,
        name: &'a str,
        max_age: Option<u64>,
    },
    PhaseStable {
        phase: &'a str,
        for_ms: u64,
        max_gap: u64,
    },
    NoIncident {
        for_ms: u64,
    },
}

fn judge(e: &Entry, check: &Check<'_>, snap: &Snapshot) -> Criterion {
    let ledger = match snap.ledger.usable("ledger") {
        Ok(l) => l,
        Err(why) => {
            return Criterion::unknown(
                &e.id,
                &e.title,
                format!(
                    "{why}: needs {}",
                    match check {
                        Check::Attestation { .. } => "an attestation in the ledger",
                        Check::PhaseStable { .. } => "the phase's recorded verdicts (ledger)",
                        Check::NoIncident { .. } => "the incident record (ledger)",
                    }
                ),
            );
        }
    };
    let now = snap.taken_at;
    let (status, message) = decide(ledger, check, now);
    let c = match status {
        Some(true) => Criterion::pass(&e.id, &e.title, message),
        Some(false) => Criterion::fail(&e.id, &e.title, message),
        None => Criterion::unknown(&e.id, &e.title, message),
    };
    c.expected(match check {
        Check::Attestation {
            phase,
            name,
            max_age,
        } => format!(
            "attested {name} for {phase}{}",
            max_age
                .map(|a| format!(" within {}", format_duration_ms(a)))
                .unwrap_or_default()
        ),
        Check::PhaseStable { phase, for_ms, .. } => {
            format!("{phase} go for {}", format_duration_ms(*for_ms))
        }
        Check::NoIncident { for_ms } => {
            format!("no incident for {}", format_duration_ms(*for_ms))
        }
    })
}

/// `Some(true)` pass, `Some(false)` fail, `None` not known yet.
fn decide(ledger: &LedgerFacts, check: &Check<'_>, now: Timestamp) -> (Option<bool>, String) {
    let age = |t: Timestamp| millis_between(t, now).max(0) as u64;
    match *check {
        Check::Attestation {
            phase,
            name,
            max_age,
        } => {
            let latest = ledger
                .attestations
                .iter()
                .filter(|a| a.phase == phase && a.criterion == name && a.at <= now)
                .max_by_key(|a| a.at);
            match latest {
                None => (
                    None,
                    format!("not attested yet: gatekeeper attest {phase} {name} --by NAME"),
                ),
                Some(a) if max_age.is_some_and(|m| age(a.at) > m) => (
                    None,
                    format!(
                        "attested by {} at {}, {} ago: older than {}; attest again",
                        a.by,
                        format_timestamp(a.at),
                        format_duration_ms(age(a.at)),
                        format_duration_ms(max_age.unwrap_or_default())
                    ),
                ),
                Some(a) => (
                    Some(true),
                    format!(
                        "attested by {} at {}{}",
                        a.by,
                        format_timestamp(a.at),
                        a.note
                            .as_deref()
                            .map(|n| format!(": {n}"))
                            .unwrap_or_default()
                    ),
                ),
            }
        }
        Check::PhaseStable {
            phase,
            for_ms,
            max_gap,
        } => {
            let mut records: Vec<_> = ledger
                .phase_history
                .iter()
                .filter(|r| r.phase == phase && r.at <= now)
                .collect();
            records.sort_by_key(|r| r.at);
            let Some(latest) = records.last() else {
                return (None, format!("no verdict recorded for {phase} yet"));
            };
            if let Some(bad) = records
                .iter()
                .rev()
                .take_while(|r| age(r.last_seen().min(now)) <= for_ms)
                .find(|r| r.verdict != Decision::Go)
            {
                return (
                    Some(false),
                    format!(
                        "{phase} was {} at {}, within the last {}",
                        bad.verdict,
                        format_timestamp(bad.at),
                        format_duration_ms(for_ms)
                    ),
                );
            }
            let latest_seen = latest.last_seen().min(now);
            if age(latest_seen) > max_gap {
                return (
                    None,
                    format!(
                        "the latest verdict for {phase} is {} old (more than {}): nothing proves it since",
                        format_duration_ms(age(latest_seen)),
                        format_duration_ms(max_gap)
                    ),
                );
            }
            // Go since the start of the unbroken run of go verdicts: a gap
            // longer than max_gap between two records breaks it (nobody was
            // recording then).
            let mut since = latest.at;
            for pair in records.windows(2).rev() {
                let (earlier, later) = (pair[0], pair[1]);
                if earlier.verdict != Decision::Go
                    || millis_between(earlier.last_seen(), later.at) > max_gap as i64
                {
                    break;
                }
                since = earlier.at;
            }
            if age(since) >= for_ms {
                (
                    Some(true),
                    format!(
                        "{phase} go since {} ({})",
                        format_timestamp(since),
                        format_duration_ms(age(since))
                    ),
                )
            } else {
                (
                    None,
                    format!(
                        "{phase} go since {}: {} of {} so far",
                        format_timestamp(since),
                        format_duration_ms(age(since)),
                        format_duration_ms(for_ms)
                    ),
                )
            }
        }
        Check::NoIncident { for_ms } => {
            let open: Vec<&str> = ledger
                .incidents
                .iter()
                .filter(|i| i.opened_at <= now && i.closed_at.is_none_or(|c| c > now))
                .map(|i| i.id.as_str())
                .collect();
            if !open.is_empty() {
                return (Some(false), format!("open incident: {}", open.join(", ")));
            }
            let recent = ledger
                .incidents
                .iter()
                .filter_map(|i| i.closed_at.map(|c| (i, c)))
                .filter(|(_, closed)| *closed <= now && age(*closed) < for_ms)
                .max_by_key(|(_, closed)| *closed);
            if recent.is_none() {
                // The recorded verdicts (any phase) as spans, merged where
                // the gaps are short: the last span is how long a watch has
                // been looking without interruption.
                let mut spans: Vec<(Timestamp, Timestamp)> = ledger
                    .phase_history
                    .iter()
                    .filter(|r| r.at <= now)
                    .map(|r| (r.at, r.last_seen().min(now)))
                    .collect();
                spans.sort();
                let mut merged: Vec<(Timestamp, Timestamp)> = Vec::new();
                for (start, end) in spans {
                    match merged.last_mut() {
                        Some(last) if millis_between(last.1, start) <= WATCH_MAX_GAP_MS as i64 => {
                            last.1 = last.1.max(end);
                        }
                        _ => merged.push((start, end)),
                    }
                }
                let Some(&(earliest, latest)) = merged.last() else {
                    return (
                        None,
                        "no verdict recorded: nothing proves a watch was looking (gatekeeper watch records them)".into(),
                    );
                };
                if age(latest) > WATCH_MAX_GAP_MS {
                    return (
                        None,
                        format!(
                            "the latest recorded verdict is {} old (more than {}): no watch is recording",
                            format_duration_ms(age(latest)),
                            format_duration_ms(WATCH_MAX_GAP_MS)
                        ),
                    );
                }
                if age(earliest) < for_ms {
                    return (
                        None,
                        format!(
                            "no incident, but verdicts are recorded without a gap only since {} ({} of {})",
                            format_timestamp(earliest),
                            format_duration_ms(age(earliest)),
                            format_duration_ms(for_ms)
                        ),
                    );
                }
            }
            match recent {
                Some((i, closed)) => (
                    Some(false),
                    format!(
                        "incident {} closed {} ago ({}), less than {}",
                        i.id,
                        format_duration_ms(age(closed)),
                        format_timestamp(closed),
                        format_duration_ms(for_ms)
                    ),
                ),
                None => (
                    Some(true),
                    format!(
                        "no incident in the last {} ({} recorded)",
                        format_duration_ms(for_ms),
                        ledger.incidents.len()
                    ),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatekeeper_gate_sdk::CriterionStatus::{Fail, Unknown};
    use gatekeeper_gate_sdk::testing::Testcase;
    use serde_json::{Value, json};

    fn run(ledger: Option<Value>, criteria: Value) -> Evaluation {
        let mut doc = json!({"schema_version": gatekeeper_gate_sdk::model::SNAPSHOT_SCHEMA_VERSION,
            "taken_at": "2025-10-03T12:00:00Z"});
        if let Some(l) = ledger {
            doc["ledger"] = json!({"status": "ok", "facts": l});
        }
        let snap: Snapshot = serde_json::from_value(doc).unwrap();
        Testcase::new(snap, json!({ "criteria": criteria }))
            .run::<Ledger>()
            .unwrap()
    }

    fn criteria() -> Value {
        json!([
            {"id": "phase-1-stable", "title": "Phase 1 stable for 24h",
             "requires": {"kind": "phase-stable", "phase": "phase-1", "for": "24h"}},
            {"id": "no-recent-incident", "title": "No incident in 48h",
             "requires": {"kind": "no-incident", "for": "48h"}},
            {"id": "on-call-available", "title": "On-call engineer available",
             "requires": {"kind": "attestation", "phase": "phase-2", "max_age": "4h"}}
        ])
    }

    #[test]
    fn without_a_ledger_everything_is_unknown() {
        let e = run(None, criteria());
        assert_eq!(e.decision, Decision::Defer);
        assert!(e.criteria.iter().all(|c| c.status == Unknown));
        assert_eq!(
            e.criteria[0].message,
            "ledger source is not configured: needs the phase's recorded verdicts (ledger)"
        );
    }

    #[test]
    fn a_ledger_that_proves_everything_is_go() {
        let ledger = json!({
            "phase_history": [
                {"phase": "phase-0", "verdict": "go", "at": "2025-09-30T08:00:00Z", "until": "2025-10-03T11:55:00Z"},
                {"phase": "phase-1", "verdict": "no-go", "at": "2025-10-02T08:00:00Z"},
                {"phase": "phase-1", "verdict": "go", "at": "2025-10-02T09:00:00Z", "until": "2025-10-03T11:55:00Z"}],
            "incidents": [{"id": "INC-7", "opened_at": "2025-09-28T10:00:00Z", "closed_at": "2025-09-28T12:00:00Z"}],
            "attestations": [{"phase": "phase-2", "criterion": "on-call-available", "by": "alice",
                "at": "2025-10-03T11:00:00Z", "note": "until 16:00"}]
        });
        let e = run(Some(ledger), criteria());
        let messages: Vec<&str> = e.criteria.iter().map(|c| c.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "phase-1 go since 2025-10-02T09:00:00Z (27h)",
                "no incident in the last 48h (1 recorded)",
                "attested by alice at 2025-10-03T11:00:00Z: until 16:00"
            ]
        );
        assert_eq!(e.decision, Decision::Go);
    }

    #[test]
    fn instability_incidents_and_stale_attestations() {
        let ledger = json!({
            "phase_history": [
                {"phase": "phase-1", "verdict": "go", "at": "2025-10-02T09:00:00Z"},
                {"phase": "phase-1", "verdict": "no-go", "at": "2025-10-03T02:00:00Z"},
                {"phase": "phase-1", "verdict": "go", "at": "2025-10-03T11:59:00Z"}],
            "incidents": [{"id": "INC-9", "opened_at": "2025-10-02T10:00:00Z", "closed_at": "2025-10-02T11:00:00Z"}],
            "attestations": [{"phase": "phase-2", "criterion": "on-call-available", "by": "bob",
                "at": "2025-10-03T06:00:00Z"}]
        });
        let e = run(Some(ledger), criteria());
        let got: Vec<_> = e
            .criteria
            .iter()
            .map(|c| (c.status, c.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Fail,
                    "phase-1 was no-go at 2025-10-03T02:00:00Z, within the last 24h"
                ),
                (
                    Fail,
                    "incident INC-9 closed 25h ago (2025-10-02T11:00:00Z), less than 48h"
                ),
                (
                    Unknown,
                    "attested by bob at 2025-10-03T06:00:00Z, 6h ago: older than 4h; attest again"
                ),
            ]
        );
        assert_eq!(e.decision, Decision::NoGo);
    }

    #[test]
    fn a_silent_recorder_and_an_open_incident() {
        let ledger = json!({
            "phase_history": [{"phase": "phase-1", "verdict": "go", "at": "2025-10-01T09:00:00Z"}],
            "incidents": [{"id": "INC-10", "opened_at": "2025-10-03T11:00:00Z"}]
        });
        let e = run(Some(ledger), criteria());
        assert_eq!(e.criteria[0].status, Unknown);
        assert_eq!(
            e.criteria[0].message,
            "the latest verdict for phase-1 is 51h old (more than 15m): nothing proves it since"
        );
        assert_eq!(e.criteria[1].status, Fail);
        assert_eq!(e.criteria[1].message, "open incident: INC-10");
        assert_eq!(
            e.criteria[2].message,
            "not attested yet: gatekeeper attest phase-2 on-call-available --by NAME"
        );
    }

    #[test]
    fn a_gap_in_the_record_restarts_the_stable_run() {
        let ledger = json!({
            "phase_history": [
                {"phase": "phase-1", "verdict": "go", "at": "2025-10-01T09:00:00Z"},
                {"phase": "phase-1", "verdict": "go", "at": "2025-10-02T09:00:00Z"},
                {"phase": "phase-1", "verdict": "go", "at": "2025-10-03T10:00:00Z"},
                {"phase": "phase-1", "verdict": "go", "at": "2025-10-03T11:55:00Z"}]
        });
        let stable = json!([{"id": "phase-1-stable", "title": "Phase 1 stable for 24h",
            "requires": {"kind": "phase-stable", "phase": "phase-1", "for": "24h", "max_gap": "1d"}}]);
        let e = run(Some(ledger), stable);
        assert_eq!(e.criteria[0].status, Unknown);
        assert_eq!(
            e.criteria[0].message,
            "phase-1 go since 2025-10-03T10:00:00Z: 2h of 24h so far"
        );
    }

    #[test]
    fn no_incident_needs_a_watch_that_was_recording() {
        let only = json!([{"id": "quiet", "title": "No incident in 48h",
            "requires": {"kind": "no-incident", "for": "48h"}}]);
        let msg = |ledger: Value| {
            let e = run(Some(ledger), only.clone());
            (e.criteria[0].status, e.criteria[0].message.clone())
        };
        assert_eq!(
            msg(json!({})),
            (Unknown, "no verdict recorded: nothing proves a watch was looking (gatekeeper watch records them)".into())
        );
        assert_eq!(
            msg(
                json!({"phase_history": [{"phase": "canary", "verdict": "go", "at": "2025-10-03T09:00:00Z"}]})
            ),
            (
                Unknown,
                "the latest recorded verdict is 3h old (more than 15m): no watch is recording"
                    .into()
            )
        );
        assert_eq!(
            msg(json!({"phase_history": [{"phase": "canary", "verdict": "go", "at": "2025-10-03T11:00:00Z", "until": "2025-10-03T11:58:00Z"}]})),
            (Unknown, "no incident, but verdicts are recorded without a gap only since 2025-10-03T11:00:00Z (1h of 48h)".into())
        );
    }

    #[test]
    fn bad_params() {
        let snap = Snapshot::empty(Timestamp::default());
        let t = |c: Value| Testcase::new(snap.clone(), json!({ "criteria": c })).run::<Ledger>();
        assert!(matches!(t(json!([])), Err(GateError::BadParams(_))));
        let bad = json!([{"id": "x", "title": "x", "requires": {"kind": "no-incident", "for": "two days"}}]);
        assert!(
            matches!(t(bad), Err(GateError::BadParams(m)) if m.starts_with("criteria[0] (x): for:"))
        );
        let bad = json!([{"id": "x", "title": "x", "requires": {"kind": "vibes"}}]);
        assert!(
            matches!(t(bad), Err(GateError::BadParams(m)) if m.contains("unknown variant `vibes`"))
        );
    }
}
