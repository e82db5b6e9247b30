//! How fast `gatekeeper backtest` replays: the example's `canary` phase (the
//! seeds' rollback triggers, holds up to 30 m) over the shipped one-hour
//! recording (`quiet-hour`, 241 snapshots 15 s apart) and the 20-minute DLQ
//! spike (241 snapshots 5 s apart), each snapshot evaluated with the ones
//! before it as history, through `watch`'s incident machine — the same
//! `backtest::replay` the command runs.
//!
//!     cargo bench -p gatekeeper --bench backtest
//!
//! `GATEKEEPER_BENCH_ROUNDS` (default 5) sets how many replays each figure
//! is the median of. The compile cache is warmed first.

use gatekeeper::backtest::replay;
use gatekeeper::config::{Config, ProcessEnv};
use gatekeeper::gate_set::GateSet;
use gatekeeper::recording::read_recording;
use std::path::Path;
use std::time::{Duration, Instant};

fn main() {
    let rounds: usize = std::env::var("GATEKEEPER_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/athlete-ally");
    let config = Config::load(&example.join("gatekeeper.toml"), None, &ProcessEnv)
        .expect("the example config loads");
    let gates = GateSet::load_checked(&config).expect("the example gates load");
    let names = config.phase_gates("canary").expect("canary").to_vec();
    println!(
        "{:<22} {:>9} {:>12} {:>14} {:>8}",
        "recording", "snapshots", "replay (ms)", "snapshots/s", "plans"
    );
    for name in ["quiet-hour", "dlq-spike"] {
        let file = example.join(format!("snapshots/{name}.recording.json"));
        let r = read_recording(&file, 1 << 30).expect("the recording reads");
        let mut snapshots = r.history;
        snapshots.push(r.current);
        let mut times = Vec::new();
        let mut plans = 0;
        for _ in 0..rounds {
            let t0 = Instant::now();
            let b = replay(&config, &gates, "canary", &names, snapshots.clone()).expect("replays");
            times.push(t0.elapsed());
            plans = b.plans.values().map(Vec::len).sum::<usize>();
        }
        times.sort();
        let median: Duration = times[times.len() / 2];
        println!(
            "{name:<22} {:>9} {:>12.0} {:>14.0} {plans:>8}",
            snapshots.len(),
            median.as_secs_f64() * 1e3,
            snapshots.len() as f64 / median.as_secs_f64()
        );
    }
}
