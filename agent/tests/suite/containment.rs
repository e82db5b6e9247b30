//! Containment through the built binary: no gate, input or file can hang,
//! crash, exhaust or steer `gatekeeper`. (`tests/watch.rs` runs the same
//! hostile gates inside `watch`; `tests/sandbox.rs` checks each limit in the
//! runtime.)

use gatekeeper_testsupport::WatGate;
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gatekeeper");
const TEST_GATES: &str = env!("GATEKEEPER_TEST_GATES_DIR");

fn example(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/athlete-ally")
        .join(rel)
        .display()
        .to_string()
}

fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env_remove("NATS_URL")
        .env_remove("DATABASE_URL")
        .env_remove("KUBECONFIG")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run gatekeeper")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Writes `config` as `dir/g.toml` and checks phase `p` on the staging snapshot.
fn check(dir: &Path, config: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let file = dir.join("g.toml");
    std::fs::write(&file, config).unwrap();
    let snapshot = example("snapshots/staging-after-cutover.json");
    let mut args = vec![
        "check",
        "p",
        "-c",
        file.to_str().unwrap(),
        "--snapshot",
        &snapshot,
    ];
    args.extend_from_slice(extra);
    run(dir, &args, env)
}

fn hostile_gate(name: &str, attack: &str, limits: &str) -> String {
    format!(
        "[gates.{name}]\nwasm = \"{TEST_GATES}/hostile.wasm\"\nparams = {{ attack = \"{attack}\" }}\n{limits}\n"
    )
}

fn phase(gates: &[String]) -> String {
    let list: Vec<String> = gates.iter().map(|g| format!("\"{g}\"")).collect();
    format!("[phases.p]\ngates = [{}]\n", list.join(", "))
}

/// (attack, the gate's verdict in the report)
const ATTACKS: &[(&str, &str)] = &[
    ("none", "go"),
    ("sleep", "go"),
    ("poll-sleep", "go"),
    ("wait-for-time", "error"),
    ("read-stdin", "go"),
    ("print", "go"),
    ("print-then-panic", "error"),
    ("panic", "error"),
    ("infinite-loop", "error"),
    ("memory-bomb", "error"),
    ("deep-recursion", "error"),
    ("shadow-stack-overflow", "error"),
    ("huge-output", "error"),
    ("read-file", "error"),
    ("network", "error"),
    ("malformed-output", "error"),
    ("log-flood", "go"),
    ("gate-error", "error"),
    ("forge-text", "go"),
    ("defer-while-failing", "error"),
    ("trigger-from-defer", "error"),
    ("trigger-without-failure", "error"),
    ("trigger-storm", "no-go"),
    ("dlq-spike", "no-go"),
    ("reads-sleep", "go"),
    ("careless-unread-stream", "defer"),
    ("undeclared-trigger", "error"),
];

/// Every attack in one phase: the check answers at once, each gate gets the
/// verdict its attack earns, the phase is never go, and — since fuel, not
/// the clock, stops the runaway ones — the report is the same every time.
#[test]
fn every_attack_through_check_is_contained_and_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = String::new();
    let mut names = Vec::new();
    for (attack, _) in ATTACKS {
        let name = format!("h-{attack}");
        config.push_str(&hostile_gate(&name, attack, ""));
        names.push(name);
    }
    config.push_str(&phase(&names));
    let mut reports = Vec::new();
    for _ in 0..2 {
        let started = Instant::now();
        let o = check(dir.path(), &config, &["-o", "json"], &[]);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
        reports.push(text(&o.stdout));
    }
    assert_eq!(reports[0], reports[1], "the same snapshot, the same report");
    let report: Value = serde_json::from_str(&reports[0]).unwrap();
    assert_eq!(report["verdict"], "no-go");
    for (gate, (attack, verdict)) in report["gates"].as_array().unwrap().iter().zip(ATTACKS) {
        assert_eq!(gate["name"], format!("h-{attack}"));
        assert_eq!(gate["verdict"], *verdict, "{attack}: {gate}");
    }
    let error = |attack: &str| {
        report["gates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == format!("h-{attack}"))
            .unwrap()["error"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        error("infinite-loop"),
        "ran out of fuel (limit 200000000 units)"
    );
    assert_eq!(
        error("wait-for-time"),
        "ran out of fuel (limit 200000000 units)"
    );
    assert_eq!(
        error("defer-while-failing"),
        "malformed output: decision is defer but the criteria say no-go"
    );
    assert_eq!(
        error("undeclared-trigger"),
        "malformed output: trigger `surprise` is not one the gate declared in `needs`"
    );
}

/// Narrowing never makes a stream the gate did not read look absent: a
/// gate that reads only AA_CORE_HOT and takes an absent AA_DLQ as empty
/// defers instead of passing (it passed before).
#[test]
fn a_stream_a_gate_did_not_read_is_not_read_not_absent() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        hostile_gate("careless", "careless-unread-stream", "") + &phase(&["careless".into()]);
    let o = check(dir.path(), &config, &["-o", "json"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    let report: Value = serde_json::from_str(&text(&o.stdout)).unwrap();
    assert_eq!(report["gates"][0]["criteria"][0]["status"], "unknown");
    assert_eq!(
        report["gates"][0]["criteria"][0]["message"],
        "AA_DLQ not read"
    );
}

/// A softer decision than the criteria is an error, so the phase is no-go
/// (exit 1), not defer (exit 2).
#[test]
fn a_gate_cannot_turn_a_failure_into_defer() {
    let dir = tempfile::tempdir().unwrap();
    let config = hostile_gate("soft", "defer-while-failing", "") + &phase(&["soft".into()]);
    let o = check(dir.path(), &config, &[], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
}

/// Gates run in parallel inside the phase's budget: forty gates that would
/// each run for 10 s end with the budget, as errors.
#[test]
fn a_phase_has_a_time_budget() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = String::from(
        "[runtime]\nphase_budget = \"1s\"\n[runtime.limits]\nfuel = 1000000000000000\ndeadline = \"10s\"\n",
    );
    let names: Vec<String> = (0..40).map(|i| format!("slow-{i}")).collect();
    for n in &names {
        config.push_str(&hostile_gate(n, "infinite-loop", ""));
    }
    config.push_str(&phase(&names));
    let started = Instant::now();
    let o = check(dir.path(), &config, &["-o", "json"], &[]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert_eq!(o.status.code(), Some(1));
    let report: Value = serde_json::from_str(&text(&o.stdout)).unwrap();
    for g in report["gates"].as_array().unwrap() {
        let e = g["error"].as_str().unwrap();
        assert!(
            e.starts_with("the phase's evaluation budget of 1000 ms ran out"),
            "{e}"
        );
    }
}

/// `check --wait` gives up at `--timeout` even when every round's gates run
/// until the budget.
#[test]
fn check_wait_respects_its_timeout_with_slow_gates() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = String::from(
        "[runtime]\nphase_budget = \"1s\"\n[runtime.limits]\nfuel = 1000000000000000\ndeadline = \"10s\"\n[sources.nats]\nurl = \"nats://127.0.0.1:1\"\ntimeout = \"200ms\"\n",
    );
    config.push_str(&hostile_gate("slow", "infinite-loop", ""));
    config.push_str(&phase(&["slow".into()]));
    let file = dir.path().join("g.toml");
    std::fs::write(&file, &config).unwrap();
    let started = Instant::now();
    let o = run(
        dir.path(),
        &[
            "check",
            "p",
            "-c",
            file.to_str().unwrap(),
            "--wait",
            "--timeout",
            "3s",
            "--interval",
            "500ms",
        ],
        &[],
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("gave up at --timeout 3s"),
        "{}",
        text(&o.stderr)
    );
}

/// `gates list` and `gates inspect` call `metadata`; a gate that sleeps in
/// it answers at once, and what it says is shown as inert text.
#[test]
fn metadata_cannot_stall_listing_or_forge_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[gates.sleepy]\nwasm = \"{TEST_GATES}/hostile-metadata.wasm\"\n[phases.p]\ngates = [\"sleepy\"]\n"
    );
    let file = dir.path().join("g.toml");
    std::fs::write(&file, &config).unwrap();
    let f = file.to_str().unwrap();
    // The first listing compiles every built-in into the cache (seconds of
    // CPU that say nothing about the sleepy gate); the timed one loads them.
    let warm = run(dir.path(), &["gates", "list", "-c", f], &[]);
    assert!(warm.status.success(), "{}", text(&warm.stderr));
    let started = Instant::now();
    let list = run(dir.path(), &["gates", "list", "-c", f], &[]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    assert!(text(&list.stdout).contains("sleepy"));
    let inspect = run(dir.path(), &["gates", "inspect", "sleepy", "-c", f], &[]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(inspect.status.success(), "{}", text(&inspect.stderr));
    let out = text(&inspect.stdout);
    assert_inert(&out);
    assert!(out.contains("version:         1.0\\u{1b}[2J\\u{1b}]0;owned\\u{7}\\u{202e}3.2\\u{200b}\\nverdict: GO\\r\\u{2028}\\u{feff}"), "{out}");
}

/// No escape, bidi override, zero-width or separator character reaches the
/// output raw, and no line of it is a forged verdict.
fn assert_inert(out: &str) {
    for c in [
        '\u{1b}', '\u{7}', '\u{202e}', '\u{200b}', '\u{2028}', '\u{feff}', '\r',
    ] {
        assert!(!out.contains(c), "raw {c:?} in:\n{out}");
    }
    assert!(
        !out.lines()
            .any(|l| l.trim_start().starts_with("verdict: GO")),
        "a forged verdict line in:\n{out}"
    );
}

/// The table, JUnit, the progress line and the human log show what a gate
/// says as one inert line each.
#[test]
fn gate_text_cannot_forge_output_or_logs() {
    let dir = tempfile::tempdir().unwrap();
    let config = hostile_gate("forge", "forge-text", "")
        + &hostile_gate("err", "gate-error", "")
        + &phase(&["forge".into(), "err".into()]);
    let table = check(dir.path(), &config, &[], &[("RUST_LOG", "info")]);
    assert_eq!(table.status.code(), Some(1));
    let out = text(&table.stdout);
    assert_inert(&out);
    assert_eq!(out.lines().last(), Some("verdict: NO-GO"));
    let log = text(&table.stderr);
    assert!(
        log.contains("ALERT forged by a gate"),
        "the gate's log line is shown: {log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("2026-01-01T00:00:00Z")),
        "a forged log line:\n{log}"
    );
    for c in ['\u{1b}', '\u{202e}'] {
        assert!(!log.contains(c), "raw {c:?} in the log");
    }
    let junit = check(dir.path(), &config, &["-o", "junit"], &[]);
    let xml = text(&junit.stdout);
    for c in ['\u{1b}', '\u{202e}', '\u{200b}'] {
        assert!(!xml.contains(c), "raw {c:?} in JUnit");
    }
}

/// The memory cap bounds the whole gate: a hand-built gate with three 15 MiB
/// memories under a 16 MiB cap is refused, and the process's peak RSS stays
/// near a harmless gate's.
#[test]
fn a_gate_cannot_hold_more_memory_than_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let harmless = dir.path().join("harmless.wasm");
    std::fs::write(&harmless, WatGate::default().wasm()).unwrap();
    let hog = dir.path().join("hog.wasm");
    std::fs::write(
        &hog,
        WatGate {
            memory_hogs: 3,
            hog_pages: 240,
            ..WatGate::default()
        }
        .wasm(),
    )
    .unwrap();
    let config = |wasm: &Path| {
        format!(
            "[gates.g]\nwasm = \"{}\"\nlimits = {{ memory = \"16MiB\" }}\n[phases.p]\ngates = [\"g\"]\n",
            wasm.display()
        )
    };
    let base = check(dir.path(), &config(&harmless), &["-o", "json"], &[]);
    assert_eq!(base.status.code(), Some(0), "{}", text(&base.stdout));
    let base_rss = children_max_rss();
    let o = check(dir.path(), &config(&hog), &["-o", "json"], &[]);
    assert_eq!(o.status.code(), Some(1));
    let report: Value = serde_json::from_str(&text(&o.stdout)).unwrap();
    assert_eq!(
        report["gates"][0]["error"],
        "failed to load: metadata call failed: exceeded its memory limit of 16777216 bytes"
    );
    let rss = children_max_rss();
    assert!(
        rss < base_rss + (16 << 20),
        "peak RSS {} MiB with the hog, {} MiB without",
        rss >> 20,
        base_rss >> 20
    );
}

/// The largest peak RSS of the children waited for so far, in bytes.
fn children_max_rss() -> u64 {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    usage.max_rss() as u64 * 1024
}

#[test]
fn gates_built_for_another_contract_or_with_other_imports_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let future = dir.path().join("future.wasm");
    std::fs::write(
        &future,
        WatGate {
            contract: Some("0.3.0".into()),
            ..WatGate::default()
        }
        .wasm(),
    )
    .unwrap();
    let config = format!(
        "[gates.g]\nwasm = \"{}\"\n[phases.p]\ngates = [\"g\"]\n",
        future.display()
    );
    let o = check(dir.path(), &config, &["-o", "json"], &[]);
    assert_eq!(o.status.code(), Some(1));
    let report: Value = serde_json::from_str(&text(&o.stdout)).unwrap();
    assert_eq!(
        report["gates"][0]["error"],
        "failed to load: built for gatekeeper:gate@0.3.0; this host loads gatekeeper:gate@0.1.0 and gatekeeper:gate@0.2.0"
    );
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

/// A FIFO, a device or a directory is refused at once wherever a file is
/// read: config, gate (even pinned), snapshot.
#[test]
fn special_files_are_refused_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let f = fifo.to_str().unwrap();
    let started = Instant::now();

    let o = run(dir.path(), &["check", "p", "-c", f], &[]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        text(&o.stderr),
        format!(
            "gatekeeper: error: {f}: not a regular file (a FIFO); only regular files are read\n"
        )
    );

    let config = format!(
        "[gates.g]\nwasm = \"{f}\"\nsha256 = \"{}\"\n[phases.p]\ngates = [\"g\"]\n",
        "0".repeat(64)
    );
    let o = check(dir.path(), &config, &["-o", "json"], &[]);
    assert_eq!(o.status.code(), Some(1));
    let report: Value = serde_json::from_str(&text(&o.stdout)).unwrap();
    assert_eq!(
        report["gates"][0]["error"],
        format!("failed to load: {f}: not a regular file (a FIFO); only regular files are read")
    );

    let topology = example("topology.toml");
    for snapshot in [f, "/dev/zero", dir.path().to_str().unwrap()] {
        let o = run(
            dir.path(),
            &["check", "phase-2", "-c", &topology, "--snapshot", snapshot],
            &[],
        );
        assert_eq!(o.status.code(), Some(3), "{snapshot}");
        assert!(
            text(&o.stderr).contains("not a regular file"),
            "{snapshot}: {}",
            text(&o.stderr)
        );
    }
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn snapshots_are_capped_and_duplicates_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("g.toml");
    std::fs::write(
        &config,
        std::fs::read_to_string(example("topology.toml")).unwrap()
            + "\n[runtime]\nmax_snapshot_size = \"1KiB\"\n",
    )
    .unwrap();
    let snapshot = example("snapshots/staging-after-cutover.json");
    let o = run(
        dir.path(),
        &[
            "check",
            "phase-2",
            "-c",
            config.to_str().unwrap(),
            "--snapshot",
            &snapshot,
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(
        text(&o.stderr)
            .contains("bytes, over the 1024-byte limit for a snapshot (runtime.max_snapshot_size)"),
        "{}",
        text(&o.stderr)
    );
    let dup = dir.path().join("dup.json");
    std::fs::write(
        &dup,
        r#"{"schema_version":1,"taken_at":"2025-10-02T17:10:00Z","nats":{"status":"ok","facts":{"streams_complete":true,"streams":[{"name":"AA_CORE_HOT"},{"name":"AA_CORE_HOT","config":{"replicas":3}}]}}}"#,
    )
    .unwrap();
    let o = run(
        dir.path(),
        &[
            "check",
            "phase-2",
            "-c",
            &example("topology.toml"),
            "--snapshot",
            dup.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(
        text(&o.stderr).ends_with(
            "snapshot 0: stream `AA_CORE_HOT` appears twice; a snapshot must name each once\n"
        ),
        "{}",
        text(&o.stderr)
    );
}

/// A 60 MB snapshot in compact JSON (the worst case: the pretty JSON
/// gatekeeper writes holds the same facts in about 4× the bytes) is streamed
/// into the model without a JSON tree: the whole check peaks under 8× the
/// file (it was 11×).
#[test]
fn a_large_snapshot_does_not_blow_up_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.json");
    let mut streams = Vec::new();
    let mut i = 0;
    let mut size = 0;
    while size < 60 << 20 {
        let s = format!(
            r#"{{"name":"S{i}","config":{{"subjects":["s{i}.>","t{i}.*"],"retention":"limits","storage":"file","replicas":3,"max_age_ms":172800000}},"state":{{"messages":{i},"bytes":{i},"first_seq":1,"last_seq":{i}}},"consumers":[{{"name":"c{i}","config":{{"durable_name":"c{i}","filter_subjects":["s{i}.>"],"ack_policy":"explicit"}},"state":{{"num_pending":0}}}}],"consumers_complete":true}}"#
        );
        size += s.len() + 1;
        streams.push(s);
        i += 1;
    }
    std::fs::write(
        &path,
        format!(
            r#"{{"schema_version":1,"taken_at":"2025-10-02T17:10:00Z","nats":{{"status":"ok","facts":{{"streams_complete":true,"streams":[{}]}}}}}}"#,
            streams.join(",")
        ),
    )
    .unwrap();
    let file_size = std::fs::metadata(&path).unwrap().len();
    let o = run(
        dir.path(),
        &[
            "check",
            "phase-2",
            "-c",
            &example("topology.toml"),
            "--snapshot",
            path.to_str().unwrap(),
            "-o",
            "json",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let rss = children_max_rss();
    assert!(
        rss < file_size * 8,
        "peak RSS {} MiB for a {} MiB snapshot",
        rss >> 20,
        file_size >> 20
    );
}

/// `check … | head -c 10`: the reader goes away; gatekeeper exits with its
/// verdict, quietly, instead of panicking. (The report is larger than a pipe
/// holds, so the write really meets the closed pipe.)
#[test]
fn a_closed_stdout_is_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("g.toml");
    std::fs::write(
        &file,
        hostile_gate("storm", "trigger-storm", "") + &phase(&["storm".into()]),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args([
            "check",
            "p",
            "-c",
            file.to_str().unwrap(),
            "--snapshot",
            &example("snapshots/staging-after-cutover.json"),
        ])
        .env("XDG_CACHE_HOME", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut first).ok();
    // The read end is closed now (dropped above).
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
}
