//! How a phase evaluation's cost grows with the history window: the
//! example's `canary` phase (the seeds' rollback triggers: holds up to 30 m)
//! on the shipped staging snapshot repeated 1 s apart, its stream counters
//! moving, with 2, 360 and 1,800 snapshots (1,800: a 30-minute hold at a
//! 1 s interval). Two ways, side by side in one run:
//!
//! - `check`: what `check --snapshot` does with a recording, every snapshot
//!   narrowed to each gate's facts and encoded for this one evaluation;
//! - `watch round`: what a `watch` round does, the window kept from round to
//!   round: one new snapshot in, the oldest out, then the evaluation.
//!
//!     cargo bench -p gatekeeper --bench history
//!
//! The timings run with the fuel limit raised (20G units), so they show the
//! whole cost; the last column says whether the default limits (200M units
//! of fuel, 500 ms) are enough for the same evaluation.
//!
//! `GATEKEEPER_BENCH_ROUNDS` (default 30) sets how many evaluations each
//! figure is the median of.

use gatekeeper::config::Config;
use gatekeeper::gate_set::GateSet;
use gatekeeper::history::History;
use gatekeeper::recording::read_recording;
use gatekeeper_model::Snapshot;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

fn rounds() -> usize {
    std::env::var("GATEKEEPER_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

/// The shipped staging snapshot at `second` past its own time; `busy`: its
/// streams' counters moved on by `second` messages (a message a second on
/// every stream: the DLQ spike and the legacy-stream fallback fire, and
/// their holds are walked back over the whole window), else unchanged
/// (nothing fires: a quiet canary).
fn snapshot_at(base: &Snapshot, second: i64, busy: bool) -> Snapshot {
    let mut s = base.clone();
    let shift = chrono::Duration::seconds(second);
    s.taken_at += shift;
    if let Some(at) = s.nats.collected_at.as_mut() {
        *at += shift;
    }
    if let Some(facts) = s.nats.facts.as_mut().filter(|_| busy) {
        for stream in &mut facts.streams {
            if let Some(state) = stream.state.as_mut() {
                state.messages = state.messages.map(|m| m + second as u64);
                state.last_seq = state.last_seq.map(|m| m + second as u64);
            }
        }
    }
    s
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let config_path = root.join("examples/athlete-ally/gatekeeper.toml");
    let env: BTreeMap<&str, &str> = BTreeMap::new();
    let mut config = Config::load(&config_path, None, &env).expect("the example config loads");
    let phase = "canary";
    let gate_names = config.phase_gates(phase).expect("canary").to_vec();
    let defaults = GateSet::load(&config, Some(&gate_names));
    config.runtime.limits.fuel = Some(20_000_000_000);
    config.runtime.limits.deadline = None;
    config.runtime.phase_budget = None;
    let gates = GateSet::load(&config, Some(&gate_names));
    let recording = read_recording(
        &root.join("examples/athlete-ally/snapshots/staging-after-cutover.recording.json"),
        u64::MAX,
    )
    .expect("the shipped recording reads");
    let base = recording.current;
    let rounds = rounds();

    println!(
        "canary      | history window (snapshots) | check (ms, median) | watch round (ms, median) | verdict"
    );
    for (busy, n) in [
        (false, 2usize),
        (false, 360),
        (false, 1800),
        (true, 2),
        (true, 360),
        (true, 1800),
    ] {
        let start = -((n + rounds + 2) as i64);
        let all: Vec<Snapshot> = (start..0).map(|i| snapshot_at(&base, i, busy)).collect();
        let first = &all[..n];

        // check: the recording evaluated as one.
        let mut check = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            let report = gates.evaluate(phase, &gate_names, &first[n - 1], &first[..n - 1]);
            check.push(t.elapsed());
            if let Some(e) = report.gates.iter().find_map(|g| g.error.clone()) {
                panic!("{n} snapshots: a gate failed with the fuel raised: {e}");
            }
        }

        // watch: the window slides one snapshot per round.
        let mut window = History::new(n - 1);
        for s in &first[..n - 1] {
            window.push(s.clone());
        }
        let mut watch = Vec::new();
        let mut last = None;
        for (i, current) in all[n - 1..].iter().take(rounds + 1).enumerate() {
            let t = Instant::now();
            let report = gates.evaluate_kept(phase, &gate_names, current, &window);
            let took = t.elapsed();
            // The first round fills the projections: what every later round
            // costs is the steady state.
            if i > 0 {
                watch.push(took);
            }
            let plain = gates.evaluate(phase, &gate_names, current, window.snapshots());
            assert_eq!(
                serde_json::to_string(&report).unwrap(),
                serde_json::to_string(&plain).unwrap(),
                "a watch round must report what check reports on the same window"
            );
            window.push(current.clone());
            last = Some(report);
        }
        let report = last.expect("rounds ran");
        let limited = defaults.evaluate(phase, &gate_names, &first[n - 1], &first[..n - 1]);
        let fits = match limited.gates.iter().find_map(|g| g.error.clone()) {
            None => "enough".to_owned(),
            Some(e) => format!("not enough: {e}"),
        };
        println!(
            "| {} | {n} | {} | {} | {} | {fits} |",
            if busy { "busy" } else { "quiet" },
            ms(median(check)),
            ms(median(watch)),
            report.verdict.as_str(),
        );
    }
}
