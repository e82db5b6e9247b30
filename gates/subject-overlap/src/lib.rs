//! Gate `subject-overlap`: NATS refuses a stream whose subjects overlap
//! another stream's (or its own). Seed 002: the legacy stream had to move to
//! `legacy.>` before `AA_CORE_HOT` could take `athlete-ally.>`, and a rollback
//! that gives `athlete-ally.>` back to the legacy stream collides the same way.
//!
//! It checks the streams as they are, or as they would be after `plan`: each
//! entry sets one stream's subjects (creating it if absent). An incomplete
//! stream listing makes the answer unknown: an unlisted stream could collide.

use gatekeeper_gate_sdk::model::NatsFacts;
use gatekeeper_gate_sdk::{Criterion, Evaluation, Gate, GateError, Input, Metadata, ParamSpec};
use serde::Deserialize;

pub struct SubjectOverlap;

gatekeeper_gate_sdk::export_gate!(SubjectOverlap);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    pub id: String,
    pub title: String,
    /// Stream subjects after the planned change.
    pub plan: Vec<PlannedStream>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedStream {
    pub stream: String,
    pub subjects: Vec<String>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            id: "subjects-no-overlap".into(),
            title: "No overlapping stream subjects".into(),
            plan: Vec::new(),
        }
    }
}

pub use gatekeeper_gate_sdk::model::subjects_overlap as overlaps;

impl Gate for SubjectOverlap {
    fn metadata() -> Metadata {
        Metadata {
            name: "subject-overlap".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "No two stream subjects overlap, now or after a planned change.".into(),
            sources: vec!["nats".into()],
            params: vec![
                ParamSpec::with_default(
                    "id",
                    "criterion id",
                    serde_json::json!("subjects-no-overlap"),
                ),
                ParamSpec::with_default(
                    "title",
                    "criterion title",
                    serde_json::json!("No overlapping stream subjects"),
                ),
                ParamSpec::with_default(
                    "plan",
                    "[{stream, subjects}]: each sets a stream's subjects before checking",
                    serde_json::json!([]),
                ),
            ],
            snapshot_schema: gatekeeper_gate_sdk::model::SNAPSHOT_SCHEMA_VERSION,
        }
    }

    /// Every stream (without consumers).
    fn reads(_params: &serde_json::Value) -> Result<Vec<String>, GateError> {
        Ok(vec!["nats.streams.*".into()])
    }

    fn evaluate(input: &Input) -> Result<Evaluation, GateError> {
        let p: Params = input.params()?;
        for planned in &p.plan {
            if planned
                .subjects
                .iter()
                .any(|s| s.is_empty() || s.contains(' '))
            {
                return Err(GateError::BadParams(format!(
                    "plan: stream {}: a subject is empty or has spaces",
                    planned.stream
                )));
            }
        }
        let criterion = match input.snapshot.nats.usable("nats") {
            Err(why) => Criterion::unknown(&p.id, &p.title, why),
            Ok(nats) => check(&p, nats),
        };
        Ok(Evaluation::from_criteria(vec![criterion]))
    }
}

fn check(p: &Params, nats: &NatsFacts) -> Criterion {
    let mut streams: Vec<(String, Vec<String>)> = Vec::new();
    let mut unread = Vec::new();
    for s in &nats.streams {
        match &s.config {
            Some(c) => streams.push((s.name.clone(), c.subjects.clone())),
            None => unread.push(s.name.clone()),
        }
    }
    for planned in &p.plan {
        match streams.iter_mut().find(|(name, _)| *name == planned.stream) {
            Some(entry) => entry.1 = planned.subjects.clone(),
            None => streams.push((planned.stream.clone(), planned.subjects.clone())),
        }
    }
    let mut collisions = Vec::new();
    let subjects: Vec<(&str, &str)> = streams
        .iter()
        .flat_map(|(name, subjects)| subjects.iter().map(move |s| (name.as_str(), s.as_str())))
        .collect();
    for (i, (sa, a)) in subjects.iter().enumerate() {
        for (sb, b) in &subjects[i + 1..] {
            if overlaps(a, b) {
                collisions.push(format!("{sa} `{a}` overlaps {sb} `{b}`"));
            }
        }
    }
    let scope = if p.plan.is_empty() {
        ""
    } else {
        " after the plan"
    };
    let observed = format!(
        "{} streams, {} subjects{scope}",
        streams.len(),
        subjects.len()
    );
    if !collisions.is_empty() {
        return Criterion::fail(&p.id, &p.title, collisions.join("; "))
            .observed(observed)
            .expected("no overlap");
    }
    if !nats.streams_complete || !unread.is_empty() {
        return Criterion::unknown(
            &p.id,
            &p.title,
            format!(
                "no overlap among the streams read, but {}",
                if unread.is_empty() {
                    "the stream listing is incomplete".to_owned()
                } else {
                    format!("the config of {} could not be read", unread.join(", "))
                }
            ),
        )
        .observed(observed)
        .expected("no overlap");
    }
    Criterion::pass(&p.id, &p.title, format!("no overlap{scope}"))
        .observed(observed)
        .expected("no overlap")
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatekeeper_gate_sdk::testing::Testcase;
    use gatekeeper_gate_sdk::{CriterionStatus, Decision};
    use serde_json::json;

    const AFTER: &str =
        include_str!("../../../examples/athlete-ally/snapshots/staging-after-cutover.json");
    const BEFORE: &str =
        include_str!("../../../examples/athlete-ally/snapshots/staging-before-migration.json");

    #[test]
    fn wildcard_overlap() {
        assert!(overlaps("athlete-ally.>", "athlete-ally.hrv.raw"));
        assert!(overlaps("sleep.*", "sleep.raw-received"));
        assert!(overlaps("a.*.c", "a.b.*"));
        assert!(overlaps(">", "anything.at.all"));
        assert!(!overlaps("sleep.*", "sleep.a.b"));
        assert!(!overlaps("a.>", "a"));
        assert!(!overlaps("legacy.>", "athlete-ally.>"));
        assert!(!overlaps("a.b", "a.c"));
        assert!(overlaps("a.b", "a.b"));
    }

    #[test]
    fn the_cutover_topology_has_no_overlap() {
        let e = Testcase::from_json(AFTER, json!({}))
            .run::<SubjectOverlap>()
            .unwrap();
        assert_eq!(e.decision, Decision::Go);
        assert_eq!(
            e.criteria[0].observed.as_deref(),
            Some("4 streams, 5 subjects")
        );
    }

    #[test]
    fn creating_core_hot_before_moving_legacy_collides() {
        // Seed 002: AA_CORE_HOT could not be created while the legacy stream held athlete-ally.>.
        let plan =
            json!({"plan": [{"stream": "AA_CORE_HOT", "subjects": ["athlete-ally.>", "sleep.*"]}]});
        let e = Testcase::from_json(BEFORE, plan)
            .run::<SubjectOverlap>()
            .unwrap();
        assert_eq!(e.decision, Decision::NoGo);
        assert_eq!(
            e.criteria[0].message,
            "ATHLETE_ALLY_EVENTS `athlete-ally.>` overlaps AA_CORE_HOT `athlete-ally.>`; \
             ATHLETE_ALLY_EVENTS `sleep.*` overlaps AA_CORE_HOT `sleep.*`"
        );
        // Moving legacy first makes the same plan fine.
        let plan = json!({"plan": [
            {"stream": "ATHLETE_ALLY_EVENTS", "subjects": ["legacy.>"]},
            {"stream": "AA_CORE_HOT", "subjects": ["athlete-ally.>", "sleep.*"]}]});
        let e = Testcase::from_json(BEFORE, plan)
            .run::<SubjectOverlap>()
            .unwrap();
        assert_eq!(e.decision, Decision::Go, "{}", e.criteria[0].message);
    }

    #[test]
    fn a_rollback_that_gives_subjects_back_collides() {
        let plan = json!({"plan": [{"stream": "ATHLETE_ALLY_EVENTS", "subjects": ["legacy.>", "athlete-ally.>"]}]});
        let e = Testcase::from_json(AFTER, plan)
            .run::<SubjectOverlap>()
            .unwrap();
        assert_eq!(e.decision, Decision::NoGo);
        assert_eq!(
            e.criteria[0].message,
            "ATHLETE_ALLY_EVENTS `athlete-ally.>` overlaps AA_CORE_HOT `athlete-ally.>`"
        );
    }

    #[test]
    fn an_incomplete_listing_is_unknown_unless_a_collision_is_certain() {
        let mut t = Testcase::from_json(AFTER, json!({}));
        if let Some(n) = t.snapshot.nats.facts.as_mut() {
            n.streams_complete = false;
        }
        let e = t.run::<SubjectOverlap>().unwrap();
        assert_eq!(e.criteria[0].status, CriterionStatus::Unknown);
        t.params = json!({"plan": [{"stream": "X", "subjects": ["dlq.*"]}]});
        let e = t.run::<SubjectOverlap>().unwrap();
        assert_eq!(e.criteria[0].status, CriterionStatus::Fail);
    }
}
