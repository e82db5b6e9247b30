//! The same snapshot gives byte-identical JSON, run after run.

use gatekeeper::config::Config;
use gatekeeper::gate_set::GateSet;
use gatekeeper::recording::Recording;
use gatekeeper::report;
use std::path::Path;

/// The example's config under `profile`, compiled without the cache, and
/// one of its shipped recordings.
fn example(profile: Option<&str>, recording: &str) -> (Config, Recording) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("examples/athlete-ally");
    let text = std::fs::read_to_string(root.join("gatekeeper.toml")).unwrap();
    let mut config = Config::parse(&text, "gatekeeper.toml", profile).unwrap();
    config.runtime.cache = Some(false);
    let recording = gatekeeper::recording::read_recording(
        &root.join("snapshots").join(recording),
        gatekeeper::files::DEFAULT_MAX_SNAPSHOT_BYTES,
    )
    .unwrap();
    (config, recording)
}

#[test]
fn same_snapshot_same_bytes_over_1000_runs() {
    let (config, recording) = example(Some("production"), "staging-after-cutover.json");
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

/// A kept window (what `watch` and `check --wait` evaluate on, its
/// snapshots encoded once) reports exactly what the same snapshots give
/// when encoded afresh (what `check` on a recording does), round after
/// round as the window slides — with the canary's rates and holds moving:
/// a message a second on every stream, then a quiet stretch, so the DLQ
/// spike and legacy fallback fire and clear inside the window.
#[test]
fn a_kept_window_reports_what_a_fresh_one_does() {
    use gatekeeper::history::History;
    let (config, recording) = example(None, "staging-after-cutover.recording.json");
    let base = recording.current;
    let gates = &config.phases["canary"].gates;
    let set = GateSet::load(&config, Some(gates));
    // 5 s apart: the 1-minute rates need 12 samples, the 5-minute holds 60.
    let mut seq = 0u64;
    let mut window = History::with_window(200, std::time::Duration::from_secs(6 * 60));
    let mut verdicts = std::collections::BTreeSet::new();
    let mut fired = std::collections::BTreeSet::new();
    for round in 0..150i64 {
        let mut s = base.clone();
        s.taken_at += chrono::Duration::seconds(round * 5);
        s.interval_ms = Some(5_000);
        // Busy for 100 rounds (~8 minutes), then quiet.
        if round < 100 {
            seq += 5;
        }
        for stream in &mut s.nats.facts.as_mut().unwrap().streams {
            if let Some(state) = stream.state.as_mut() {
                state.last_seq = state.last_seq.map(|l| l + seq);
            }
        }
        let kept = set.evaluate_kept("canary", gates, &s, &window);
        let fresh = set.evaluate("canary", gates, &s, window.snapshots());
        assert_eq!(
            report::json(&kept),
            report::json(&fresh),
            "round {round}: the kept window differs"
        );
        assert!(kept.gates.iter().all(|g| g.error.is_none()), "{kept:?}");
        verdicts.insert(kept.verdict.as_str());
        for g in &kept.gates {
            fired.extend(g.triggers.iter().map(|t| t.id.clone()));
        }
        window.push(s);
    }
    // Not vacuous: the holds fired, and the verdict changed along the way.
    assert!(fired.contains("dlq-spike"), "{fired:?}");
    assert!(fired.contains("legacy-stream-fallback"), "{fired:?}");
    assert!(verdicts.len() >= 2, "{verdicts:?}");
}
