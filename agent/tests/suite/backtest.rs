//! `gatekeeper backtest` through the binary, on the shipped recordings
//! (`scripts/make-recordings`): the DLQ spike fires `dlq-spike` after its
//! hold and the rollback plan would run once; the quiet hour raises nothing;
//! the crash loop fires under the staging profile; one gate replayed over
//! the drain; the verdicts `watch` recorded compared with the replay.

use gatekeeper::config::{Config, ProcessEnv};
use gatekeeper::ledger::{Ledger, Record};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_gatekeeper");
const TEST_GATES: &str = env!("GATEKEEPER_TEST_GATES_DIR");

fn example(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/athlete-ally")
        .join(rel)
}

/// `gatekeeper backtest ARGS` with a private compile cache.
fn backtest_raw(cache: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("backtest")
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .env_remove("NATS_URL")
        .env_remove("DATABASE_URL")
        .env_remove("KUBECONFIG")
        .output()
        .expect("run gatekeeper")
}

/// [`backtest_raw`] with `-o json`, parsed.
fn backtest(cache: &Path, args: &[&str]) -> (Output, serde_json::Value) {
    let o = backtest_raw(cache, &[args, &["-o", "json"]].concat());
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&o.stderr)));
    (o, v)
}

fn recording(name: &str) -> String {
    example(&format!("snapshots/{name}.recording.json"))
        .display()
        .to_string()
}

fn events<'a>(v: &'a serde_json::Value, kind: &str, subject: &str) -> Vec<&'a str> {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind && e["subject"] == subject)
        .map(|e| e["at"].as_str().unwrap())
        .collect()
}

#[test]
fn the_dlq_spike_fires_after_its_hold_and_the_plan_would_run_once() {
    let cache = tempfile::tempdir().unwrap();
    let config = example("gatekeeper.toml").display().to_string();
    let (o, v) = backtest(
        cache.path(),
        &[
            "canary",
            "-c",
            &config,
            "--recording",
            &recording("dlq-spike"),
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(v["snapshots"], 241);
    assert_eq!(v["interval_ms"], 5000);
    let spike = &v["triggers"]["triggers/dlq-spike"];
    // The spike starts at 09:46:30; its rate is over 10/min from 09:46:50
    // and must hold 5 minutes.
    assert_eq!(spike["first_raised"], "2025-10-14T09:51:50Z", "{v:#}");
    assert_eq!(spike["raised"], 1);
    assert_eq!(
        events(&v, "trigger-cleared", "triggers/dlq-spike"),
        ["2025-10-14T09:55:10Z"]
    );
    assert_eq!(
        v["plans"]["rollback-to-single"],
        serde_json::json!(["2025-10-14T09:51:50Z"])
    );
    assert_eq!(v["incidents"], 1);
    // Replays are deterministic: the same recording, the same timeline.
    let (_, again) = backtest(
        cache.path(),
        &[
            "canary",
            "-c",
            &config,
            "--recording",
            &recording("dlq-spike"),
        ],
    );
    assert_eq!(again["events"], v["events"]);
}

#[test]
fn the_quiet_hour_raises_nothing_and_the_crash_loop_fires_in_staging() {
    let cache = tempfile::tempdir().unwrap();
    let config = example("gatekeeper.toml").display().to_string();
    let (_, quiet) = backtest(
        cache.path(),
        &[
            "canary",
            "-c",
            &config,
            "--recording",
            &recording("quiet-hour"),
        ],
    );
    assert_eq!(quiet["snapshots"], 241);
    assert_eq!(
        quiet["triggers"],
        serde_json::json!({}),
        "{:#}",
        quiet["events"]
    );
    assert_eq!(quiet["plans"], serde_json::json!({}));
    assert!(
        quiet["verdicts"]["go"].as_u64().unwrap() >= 200,
        "{}",
        quiet["verdicts"]
    );
    assert!(quiet["snapshots_per_second"].as_f64().unwrap() > 0.0);

    let (_, crash) = backtest(
        cache.path(),
        &[
            "canary",
            "-c",
            &config,
            "--profile",
            "staging",
            "--recording",
            &recording("crash-loop"),
        ],
    );
    let fired = &crash["triggers"]["k8s-triggers/crash-loop"];
    assert_eq!(
        fired["first_raised"], "2025-10-16T14:36:15Z",
        "{:#}",
        crash["triggers"]
    );
    let runs: usize = crash["plans"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_array().unwrap().len())
        .sum();
    assert_eq!(runs, 1, "one incident, one plan: {:#}", crash["plans"]);
}

#[test]
fn one_gate_over_the_drain_and_the_recorded_verdicts_compared() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gate = format!("{TEST_GATES}/consumer-drained.wasm");
    let params = r#"{"stream":"ATHLETE_ALLY_EVENTS","consumer":"normalize-hrv-durable"}"#;
    let (o, v) = backtest(
        d,
        &[
            "--gate",
            &gate,
            "--params",
            params,
            "--recording",
            &recording("drain"),
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(v["phase"], "run");
    let changes = events(&v, "criterion", "consumer-drained/consumer-drained");
    assert_eq!(
        changes.len(),
        2,
        "fail at the start, then pass: {:#}",
        v["events"]
    );
    assert_eq!(changes[1], "2025-10-09T21:11:40Z");

    // A config with a file ledger holding two verdicts `watch` recorded:
    // one the replay agrees with, one it does not.
    let config_path = d.join("gk.toml");
    std::fs::write(
        &config_path,
        format!(
            "[ledger]\nbackend = \"file\"\nfile = \"ledger.jsonl\"\n\n[gates.drained]\nwasm = \"{gate}\"\n\
             params = {{ stream = \"ATHLETE_ALLY_EVENTS\", consumer = \"normalize-hrv-durable\" }}\n\n\
             [phases.drained]\ngates = [\"drained\"]\n"
        ),
    )
    .unwrap();
    let config = Config::load(&config_path, None, &ProcessEnv).unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let ledger = Ledger::open(&config).await.unwrap();
        for (at, verdict) in [("2025-10-09T21:12:00Z", "go"), ("2025-10-09T21:06:00Z", "go")] {
            let record = serde_json::json!({
                "kind": "verdict", "phase": "drained", "verdict": verdict, "at": at, "agent": "watch-1"
            });
            let record: Record = serde_json::from_value(record).unwrap();
            ledger.append(&record).await.unwrap();
        }
    });
    let (_, v) = backtest(
        d,
        &[
            "drained",
            "-c",
            config_path.to_str().unwrap(),
            "--recording",
            &recording("drain"),
            "--ledger",
        ],
    );
    assert_eq!(v["ledger"]["recorded"], 2, "{:#}", v["ledger"]);
    let disagreements = v["ledger"]["disagreements"].as_array().unwrap();
    assert_eq!(disagreements.len(), 1, "{:#}", v["ledger"]);
    assert_eq!(disagreements[0]["at"], "2025-10-09T21:06:00Z");
    assert_eq!(
        disagreements[0]["detail"],
        "watch recorded go; the replay says no-go"
    );
}

#[test]
fn a_directory_of_recorded_snapshots_is_merged_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // What `check --record DIR` leaves: snapshots, recordings, statements.
    std::fs::copy(
        example("snapshots/staging-after-cutover.recording.json"),
        d.join("b.json"),
    )
    .unwrap();
    std::fs::copy(
        example("snapshots/staging-after-cutover.json"),
        d.join("a.json"),
    )
    .unwrap();
    std::fs::write(d.join("x.intoto.json"), "not a snapshot").unwrap();
    let config = example("topology.toml").display().to_string();
    let (o, v) = backtest(
        d,
        &["phase-2", "-c", &config, "--recording", d.to_str().unwrap()],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // 17:09 and 17:10, the duplicate 17:10 once.
    assert_eq!(v["snapshots"], 2, "{v:#}");
    assert_eq!(v["from"], "2025-10-02T17:09:00Z");
    // Another snapshot at 17:10 that says something else: refused, named.
    let mut other: serde_json::Value = serde_json::from_slice(
        &std::fs::read(example("snapshots/staging-after-cutover.json")).unwrap(),
    )
    .unwrap();
    other["nats"]["duration_ms"] = 999.into();
    std::fs::write(d.join("c.json"), other.to_string()).unwrap();
    let o = backtest_raw(
        d,
        &["phase-2", "-c", &config, "--recording", d.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(3));
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains("c.json: its snapshot at 2025-10-02T17:10:00Z differs from the one"),
        "{said}"
    );
    let empty = tempfile::tempdir().unwrap();
    let o = backtest_raw(
        d,
        &[
            "phase-2",
            "-c",
            &config,
            "--recording",
            empty.path().to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("no snapshot or recording (*.json) in this directory")
    );
}

#[test]
fn the_shipped_recordings_are_what_the_generator_writes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let o = Command::new("python3")
        .arg(root.join("scripts/make-recordings"))
        .arg("--check")
        .current_dir(&root)
        .output()
        .expect("python3 runs scripts/make-recordings");
    assert!(
        o.status.success(),
        "scripts/make-recordings --check: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
