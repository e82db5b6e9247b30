use super::*;
use gatekeeper_gate_sdk::model::{Source, SourceStatus};
use gatekeeper_gate_sdk::testing::Testcase;
use gatekeeper_gate_sdk::{CriterionStatus, Decision};
use serde_json::json;

const AFTER: &str =
    include_str!("../../../examples/athlete-ally/snapshots/staging-after-cutover.json");
const BEFORE: &str =
    include_str!("../../../examples/athlete-ally/snapshots/staging-before-migration.json");
const DOWN: &str = include_str!("../../../examples/athlete-ally/snapshots/nats-down.json");

fn core_spec(replicas: u32) -> serde_json::Value {
    json!({"streams": [{
        "name": "AA_CORE_HOT", "id": "core-stream-ready",
        "subjects": ["sleep.*", "athlete-ally.>"], "max_age": "48h", "replicas": replicas, "storage": "file"
    }]})
}

#[test]
fn staging_core_stream_matches_the_seed_spec() {
    let e = Testcase::from_json(AFTER, core_spec(1))
        .run::<StreamTopology>()
        .unwrap();
    assert_eq!(e.decision, Decision::Go);
    let c = &e.criteria[0];
    assert_eq!(c.id, "core-stream-ready");
    assert_eq!(c.status, CriterionStatus::Pass);
    assert_eq!(
        c.observed.as_deref(),
        Some("subjects [athlete-ally.>, sleep.*], max_age 48h, replicas 1, storage file")
    );
}

#[test]
fn production_replicas_drift_is_listed_field_by_field() {
    let params = json!({"streams": [{"name": "ATHLETE_ALLY_EVENTS", "subjects": ["athlete-ally.>"], "max_age": "48h", "replicas": 3}]});
    let e = Testcase::from_json(AFTER, params)
        .run::<StreamTopology>()
        .unwrap();
    assert_eq!(e.decision, Decision::NoGo);
    let c = &e.criteria[0];
    assert_eq!(c.id, "stream-athlete-ally-events");
    assert_eq!(c.status, CriterionStatus::Fail);
    assert_eq!(
        c.message,
        "stream ATHLETE_ALLY_EVENTS drifted: subjects: expected [athlete-ally.>], observed [legacy.>]; \
         max_age: expected 48h, observed 24h; replicas: expected 3, observed 1"
    );
}

#[test]
fn missing_stream_fails_when_the_listing_is_complete() {
    let e = Testcase::from_json(BEFORE, core_spec(1))
        .run::<StreamTopology>()
        .unwrap();
    assert_eq!(e.decision, Decision::NoGo);
    assert_eq!(e.criteria[0].message, "stream AA_CORE_HOT does not exist");
    assert_eq!(e.criteria[0].observed.as_deref(), Some("absent"));
}

#[test]
fn missing_stream_is_unknown_when_the_listing_is_incomplete() {
    let mut t = Testcase::from_json(BEFORE, core_spec(1));
    let facts = t.snapshot.nats.facts.as_mut().unwrap();
    facts.streams_complete = false;
    facts.missing_streams.push("AA_CORE_HOT".into());
    t.snapshot.nats.status = SourceStatus::Partial;
    let e = t.run::<StreamTopology>().unwrap();
    assert_eq!(e.decision, Decision::Defer);
    assert_eq!(
        e.criteria[0].message,
        "stream AA_CORE_HOT not in the listing, and the listing is incomplete (server reported it missing)"
    );
}

#[test]
fn nats_down_is_unknown_never_pass() {
    let e = Testcase::from_json(DOWN, core_spec(1))
        .run::<StreamTopology>()
        .unwrap();
    assert_eq!(e.decision, Decision::Defer);
    assert_eq!(e.criteria[0].status, CriterionStatus::Unknown);
    assert!(
        e.criteria[0]
            .message
            .starts_with("nats source unavailable: connect to nats://staging-nats:4222")
    );
}

#[test]
fn field_not_reported_is_unknown_but_definite_drift_still_fails() {
    let mut t = Testcase::from_json(AFTER, core_spec(1));
    let core = t.stream_mut("AA_CORE_HOT");
    core.config.as_mut().unwrap().replicas = None;
    let e = t.run::<StreamTopology>().unwrap();
    assert_eq!(e.criteria[0].status, CriterionStatus::Unknown);
    assert_eq!(
        e.criteria[0].message,
        "stream AA_CORE_HOT: replicas not reported"
    );

    t.stream_mut("AA_CORE_HOT")
        .config
        .as_mut()
        .unwrap()
        .max_age_ms = Some(3_600_000);
    let e = t.run::<StreamTopology>().unwrap();
    assert_eq!(e.criteria[0].status, CriterionStatus::Fail);
    assert_eq!(
        e.criteria[0].message,
        "stream AA_CORE_HOT drifted: max_age: expected 48h, observed 1h; also replicas not reported"
    );
}

#[test]
fn bad_params_are_errors_not_verdicts() {
    let run = |p| {
        Testcase::from_json(AFTER, p)
            .run::<StreamTopology>()
            .unwrap_err()
    };
    assert!(
        matches!(run(json!({"streams": []})), GateError::BadParams(m) if m.contains("is empty"))
    );
    // Refused before the gate runs, as the host does.
    assert!(
        matches!(run(json!({"stream": []})), GateError::BadParams(m) if m == "unknown param `stream`; did you mean `streams`? (accepts: streams)")
    );
    assert!(
        matches!(run(json!({"streams": [{"name": "X", "max_age": "2 days"}]})), GateError::BadParams(m) if m.contains("stream X: max_age: invalid duration"))
    );
    // A type error names the field.
    let e = run(json!({"streams": [{"name": "X", "replicas": "3"}]}));
    assert!(
        matches!(&e, GateError::BadParams(m) if m.starts_with("field `streams[0].replicas`: invalid type: string \"3\"")),
        "{e:?}"
    );
}

#[test]
fn a_snapshot_with_facts_from_the_future_still_decodes() {
    let mut doc: serde_json::Value = serde_json::from_str(AFTER).unwrap();
    doc["nats"]["facts"]["streams"][1]["config"]["compression"] = json!("s2");
    doc["nats"]["facts"]["new_section"] = json!({"anything": [1, 2]});
    doc["kafka"] = json!({"status": "ok"});
    let e = Testcase::from_json(&doc.to_string(), core_spec(1))
        .run::<StreamTopology>()
        .unwrap();
    assert_eq!(e.decision, Decision::Go);
}

#[test]
fn unconfigured_source_is_unknown() {
    let mut t = Testcase::from_json(AFTER, core_spec(1));
    t.snapshot.nats = Source::default();
    let e = t.run::<StreamTopology>().unwrap();
    assert_eq!(e.criteria[0].message, "nats source is not configured");
}
