//! `scripts/demo live` as a test: the seeds' migration run for real on
//! loopback (nats-server, PostgreSQL, the demo stack of
//! `examples/athlete-ally/stack`) through this build's `gatekeeper`:
//! phases 0, 1, 2 applied and verified in order, `watch` on the canary,
//! the fault, the DLQ trigger after its hold, the rollback's steps, readings
//! on the legacy stream again, phase 3 refused, and no message lost.

use athlete_ally_stack::demo::{self, DemoOptions};
use gatekeeper_testsupport::NatsVersion;
use serde_json::Value;

fn live_demo(nats: NatsVersion) {
    let options = DemoOptions {
        gatekeeper: env!("CARGO_BIN_EXE_gatekeeper").into(),
        example: demo::default_example(),
        nats,
        rate: 1.0,
    };
    let (report, result) = demo::run(&options);
    let timeline = demo::render_timeline(&report);
    if let Err(e) = result {
        panic!("the live demo failed: {e}\n{timeline}\n{}", report.ledger);
    }
    let phases: Vec<(&str, i32)> = report
        .applies
        .iter()
        .map(|(p, c)| (p.as_str(), *c))
        .collect();
    assert_eq!(
        phases,
        [
            ("phase-0", 0),
            ("phase-1", 0),
            ("phase-2", 0),
            ("phase-3", 1)
        ],
        "{timeline}"
    );
    let records: Vec<Value> = report
        .ledger
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |kind: &'static str| records.iter().filter(move |r| r["kind"] == kind);
    // Every phase applied in order (each run's `started` record first),
    // each verified.
    let applied: Vec<(String, String)> = of("apply")
        .map(|r| {
            (
                r["phase"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        applied,
        [
            ("phase-0", "started"),
            ("phase-0", "done"),
            ("phase-1", "started"),
            ("phase-1", "done"),
            ("phase-2", "started"),
            ("phase-2", "done"),
            ("phase-3", "started"),
            ("phase-3", "blocked"),
        ]
        .map(|(p, o)| (p.to_owned(), o.to_owned())),
        "{timeline}"
    );
    // The canary shares, in order.
    let modes: Vec<String> = of("step")
        .filter(|r| r["plan"] == "phase-2" && r["action"] == "exec")
        .map(|r| r["detail"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(modes.len(), 3, "{modes:?}");
    for (detail, share) in modes.iter().zip(["multi 10", "multi 50", "multi"]) {
        assert!(
            detail.contains(&format!("EVENT_STREAM_MODE={share}")),
            "{detail}"
        );
    }
    // The trigger fired after its hold; the rollback ran once, both steps done.
    let incident = of("incident-opened").next().expect("an incident");
    let summary = incident["summary"].as_str().unwrap();
    assert!(
        summary.contains("triggers/dlq-spike") || summary.contains("triggers/error-rate-critical"),
        "{summary}"
    );
    let plans: Vec<&Value> = of("plan").filter(|p| p["trigger"] != "apply").collect();
    assert_eq!(plans.len(), 1, "{plans:?}");
    assert_eq!(plans[0]["plan"], "rollback-to-single");
    assert_eq!(plans[0]["outcome"], "done");
    let rollback: Vec<(String, String)> = of("step")
        .filter(|r| r["plan"] == "rollback-to-single")
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rollback,
        [
            ("move-subjects".to_owned(), "done".to_owned()),
            ("exec".to_owned(), "done".to_owned())
        ]
    );
    // Traffic on the legacy stream again, and nothing lost.
    assert!(report.legacy_after_rollback > 0, "{timeline}");
    assert!(report.dead_lettered > 0 && report.rows > 0, "{timeline}");
    assert!(report.published >= 40, "{timeline}");
    assert_eq!(
        report.rows + report.dead_lettered,
        report.published,
        "{timeline}"
    );
}

#[test]
fn the_live_demo_migrates_rolls_back_and_loses_nothing_on_nats_2_9() {
    live_demo(NatsVersion::V2_9);
}

#[test]
fn the_live_demo_migrates_rolls_back_and_loses_nothing_on_nats_2_15() {
    live_demo(NatsVersion::V2_15);
}
