//! The same snapshot gives byte-identical JSON, run after run.

use gatekeeper::config::Config;
use gatekeeper::gate_set::GateSet;
use gatekeeper::report;
use std::path::Path;

#[test]
fn same_snapshot_same_bytes_over_1000_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("examples/athlete-ally");
    let text = std::fs::read_to_string(root.join("gatekeeper.toml")).unwrap();
    let mut config = Config::parse(&text, "gatekeeper.toml", Some("production")).unwrap();
    config.runtime.cache = Some(false);
    let recording = gatekeeper::recording::read_recording(
        &root.join("snapshots/staging-after-cutover.json"),
        gatekeeper::files::DEFAULT_MAX_SNAPSHOT_BYTES,
    )
    .unwrap();
    let gates = &config.phases["phase-2"].gates;
    let set = GateSet::load(&config, Some(gates));
    let first = report::json(&set.evaluate_phase("phase-2", gates, &recording));
    assert!(first.contains("\"verdict\": \"no-go\""), "{first}");
    for run in 1..1000 {
        let again = report::json(&set.evaluate_phase("phase-2", gates, &recording));
        assert_eq!(again, first, "run {run} differs");
    }
    // A separately loaded runtime gives the same bytes too.
    let fresh = GateSet::load(&config, Some(gates));
    assert_eq!(
        report::json(&fresh.evaluate_phase("phase-2", gates, &recording)),
        first
    );
}
