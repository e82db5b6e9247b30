//! Folding records into the snapshot's `ledger` section, the facts gates
//! read.

use super::Record;
use gatekeeper_model::{Attestation, Incident, LedgerFacts, PhaseRecord};

/// Verdicts are recorded on change and every few minutes in between. A run
/// of the same verdict for a phase with no gap longer than this between
/// records folds into one `PhaseRecord` (`at` … `until`): a phase that was
/// go for 90 days is one record, and a gap shows as two.
pub const VERDICT_RUN_GAP_MS: i64 = 15 * 60 * 1000;

/// The facts gates read: verdicts (runs compacted), incidents (opened and
/// closed merged by id), attestations.
pub fn fold(records: &[Record]) -> LedgerFacts {
    let mut facts = LedgerFacts::default();
    for r in records {
        fold_one(&mut facts, r);
    }
    facts
}

/// Adds one record to folded facts.
pub fn fold_one(facts: &mut LedgerFacts, r: &Record) {
    match r {
        Record::Verdict {
            phase, verdict, at, ..
        } => push_verdict(
            &mut facts.phase_history,
            PhaseRecord {
                phase: phase.clone(),
                verdict: *verdict,
                at: *at,
                until: None,
            },
        ),
        Record::IncidentOpened {
            incident,
            at,
            summary,
            ..
        } => {
            if !facts.incidents.iter().any(|i| &i.id == incident) {
                facts.incidents.push(Incident {
                    id: incident.clone(),
                    opened_at: *at,
                    closed_at: None,
                    summary: summary.clone(),
                });
            }
        }
        Record::IncidentClosed { incident, at, .. } => {
            if let Some(i) = facts.incidents.iter_mut().find(|i| &i.id == incident) {
                i.closed_at = Some(*at);
            }
        }
        Record::Attestation {
            phase,
            criterion,
            by,
            at,
            note,
        } => facts.attestations.push(Attestation {
            phase: phase.clone(),
            criterion: criterion.clone(),
            by: by.clone(),
            at: *at,
            note: note.clone(),
        }),
        Record::Step { .. }
        | Record::Plan { .. }
        | Record::Apply { .. }
        | Record::Alert { .. }
        | Record::AlertDelivery { .. } => {}
    }
}

/// Appends a verdict, or extends the phase's latest run when the verdict is
/// the same and follows within [`VERDICT_RUN_GAP_MS`].
fn push_verdict(history: &mut Vec<PhaseRecord>, r: PhaseRecord) {
    if let Some(last) = history.iter_mut().rev().find(|x| x.phase == r.phase)
        && last.verdict == r.verdict
        && (0..=VERDICT_RUN_GAP_MS)
            .contains(&gatekeeper_model::millis_between(last.last_seen(), r.at))
    {
        last.until = Some(r.at);
        return;
    }
    history.push(r);
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatekeeper_model::{Decision, Timestamp};

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn records_fold_into_facts() {
        let records = vec![
            Record::Verdict {
                phase: "phase-1".into(),
                verdict: Decision::Go,
                at: at("2025-10-02T10:00:00Z"),
                agent: "a".into(),
                gates: vec![],
            },
            Record::IncidentOpened {
                incident: "dlq-spike-1".into(),
                at: at("2025-10-02T10:01:00Z"),
                agent: "a".into(),
                summary: "dlq-spike".into(),
                triggers: vec![],
            },
            Record::Alert {
                at: at("2025-10-02T10:01:00Z"),
                agent: "a".into(),
                incident: None,
                trigger: None,
                message: "m".into(),
            },
            Record::IncidentClosed {
                incident: "dlq-spike-1".into(),
                at: at("2025-10-02T10:09:00Z"),
                agent: "a".into(),
            },
            Record::Attestation {
                phase: "phase-2".into(),
                criterion: "staging-verified".into(),
                by: "alice".into(),
                at: at("2025-10-02T10:10:00Z"),
                note: Some("ok".into()),
            },
        ];
        let facts = fold(&records);
        assert_eq!(facts.phase_history.len(), 1);
        assert_eq!(facts.phase_history[0].verdict, Decision::Go);
        assert_eq!(facts.incidents.len(), 1);
        assert_eq!(
            facts.incidents[0].closed_at,
            Some(at("2025-10-02T10:09:00Z"))
        );
        assert_eq!(facts.attestations[0].by, "alice");
        assert_eq!(facts.attestations[0].note.as_deref(), Some("ok"));
    }

    #[test]
    fn a_run_of_verdicts_is_one_record_and_a_gap_starts_another() {
        let v = |phase: &str, verdict: Decision, t: &str| Record::Verdict {
            phase: phase.into(),
            verdict,
            at: at(t),
            agent: "a".into(),
            gates: vec![],
        };
        let records = vec![
            v("phase-1", Decision::Go, "2025-10-02T10:00:00Z"),
            v("phase-2", Decision::Defer, "2025-10-02T10:00:00Z"),
            v("phase-1", Decision::Go, "2025-10-02T10:05:00Z"),
            v("phase-1", Decision::Go, "2025-10-02T10:10:00Z"),
            v("phase-1", Decision::Go, "2025-10-02T10:15:00Z"),
            // The watch was down for an hour: a new run.
            v("phase-1", Decision::Go, "2025-10-02T11:15:00Z"),
            v("phase-1", Decision::NoGo, "2025-10-02T11:20:00Z"),
        ];
        let kept: Vec<String> = fold(&records)
            .phase_history
            .iter()
            .map(|r| {
                format!(
                    "{} {} {}..{}",
                    r.phase,
                    r.verdict,
                    gatekeeper_model::format_timestamp(r.at),
                    r.until
                        .map(gatekeeper_model::format_timestamp)
                        .unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(
            kept,
            [
                "phase-1 go 2025-10-02T10:00:00Z..2025-10-02T10:15:00Z",
                "phase-2 defer 2025-10-02T10:00:00Z..",
                "phase-1 go 2025-10-02T11:15:00Z..",
                "phase-1 no-go 2025-10-02T11:20:00Z..",
            ]
        );
    }
}
