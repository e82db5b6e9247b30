//! A live `gatekeeper check phase-2` against the script a team would write
//! instead: `benches/yardstick/migration_verify.py` (nats-py + psycopg), the
//! seeds' `migration-verify.js 2` plus the phase's PostgreSQL checks. Both
//! run against the same local nats-server 2.15 and PostgreSQL, holding the
//! seeds' topology after phase 2, both say go; measured side by side in one
//! run, alternating, as whole processes (start to exit), with each one's
//! peak RSS. `check` is also measured on an empty compile cache (what a fresh
//! CI runner pays) and with the cache warm.
//!
//!     cargo bench -p gatekeeper --bench check_vs_script
//!
//! The script's interpreter is `.tools/yardstick/bin/python` (scripts/setup
//! installs nats-py and psycopg there). `GATEKEEPER_BENCH_RUNS` (default 15)
//! sets the runs per figure.

use gatekeeper_testsupport::{NatsServer, NatsVersion, Postgres, js_request, workspace_root};
use nix::sys::resource::{UsageWho, getrusage};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gatekeeper");

/// The phase-2 part of the example config: the new core stream and its
/// consumer as seed 001 specifies them, no overlapping subjects, and the
/// database responsive with room in its pool.
const CONFIG: &str = r#"
[sources.nats]
url = "NATS_URL_HERE"
streams = ["ATHLETE_ALLY_EVENTS", "AA_*"]

[sources.postgres]
url = "DATABASE_URL_HERE"

[gates.core-stream]
builtin = "stream-topology"
[[gates.core-stream.params.streams]]
name = "AA_CORE_HOT"
id = "core-stream-ready"
title = "AA_CORE_HOT exists with athlete-ally.> and sleep.*, max age 48h"
subjects = ["athlete-ally.>", "sleep.*"]
max_age = "48h"
replicas = 1
storage = "file"

[gates.hrv-consumer]
builtin = "consumer-config"
[[gates.hrv-consumer.params.consumers]]
stream = "AA_CORE_HOT"
name = "normalize-hrv-durable"
id = "hrv-consumer-ready"
title = "normalize-hrv-durable on AA_CORE_HOT as seed 001 specifies"
filter_subjects = ["athlete-ally.hrv.raw-received"]
ack_policy = "explicit"
deliver_policy = "all"
max_deliver = 5
ack_wait = "60s"
max_ack_pending = 1000

[gates.overlap]
builtin = "subject-overlap"
[gates.overlap.params]
id = "subjects-no-overlap"
title = "No two streams claim the same subjects"

[gates.database]
builtin = "database-responsive"
[gates.database.params]
max_ping_ms = 50
max_connections_percent = 80

[phases.phase-2]
gates = ["core-stream", "hrv-consumer", "overlap", "database"]
"#;

fn runs() -> usize {
    std::env::var("GATEKEEPER_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15)
}

/// The seeds' topology after phase 2 (seed 002's order: the legacy stream
/// moved to `legacy.>` first).
async fn topology(url: &str) {
    let client = async_nats::connect(url)
        .await
        .expect("connect to nats-server");
    let day = 86_400_000_000_000u64;
    for (name, subjects, age) in [
        ("ATHLETE_ALLY_EVENTS", json!(["legacy.>"]), day),
        ("AA_CORE_HOT", json!(["athlete-ally.>", "sleep.*"]), 2 * day),
        ("AA_VENDOR_HOT", json!(["vendor.>"]), 2 * day),
        ("AA_DLQ", json!(["dlq.>"]), 14 * day),
    ] {
        let reply = js_request(
            &client,
            &format!("$JS.API.STREAM.CREATE.{name}"),
            json!({"name": name, "subjects": subjects, "max_age": age, "storage": "file",
                   "num_replicas": 1}),
        )
        .await;
        assert!(reply.get("error").is_none(), "{name}: {reply}");
    }
    let reply = js_request(
        &client,
        "$JS.API.CONSUMER.CREATE.AA_CORE_HOT.normalize-hrv-durable",
        json!({"stream_name": "AA_CORE_HOT", "config": {
            "durable_name": "normalize-hrv-durable", "ack_policy": "explicit",
            "deliver_policy": "all", "max_deliver": 5, "ack_wait": 60_000_000_000u64,
            "max_ack_pending": 1000, "filter_subject": "athlete-ally.hrv.raw-received"}}),
    )
    .await;
    assert!(reply.get("error").is_none(), "consumer: {reply}");
}

/// Runs `command` to its end: wall time, exit code, peak RSS (KiB). The
/// RSS comes from a child of our own (`--rss-of`), so each figure is that
/// one process's.
fn measure(command: &[String]) -> (Duration, i32, i64) {
    let t = Instant::now();
    let out = Command::new(std::env::current_exe().expect("this bench"))
        .arg("--rss-of")
        .args(command)
        .stderr(Stdio::inherit())
        .output()
        .expect("run the measured command");
    let took = t.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace();
    let code = fields.next().and_then(|c| c.parse().ok()).unwrap_or(-1);
    let rss = fields.next().and_then(|c| c.parse().ok()).unwrap_or(-1);
    (took, code, rss)
}

/// `--rss-of CMD…`: runs CMD (its output dropped) and prints its exit code
/// and peak RSS in KiB.
fn rss_of(command: &[String]) -> ! {
    let status = Command::new(&command[0])
        .args(&command[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("run {}: {e}", command[0]));
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    println!("{} {}", status.code().unwrap_or(-1), usage.max_rss());
    std::process::exit(0)
}

/// What `command` prints, for a run that did not say go.
fn explain(command: &[String]) -> String {
    let out = Command::new(&command[0])
        .args(&command[1..])
        .output()
        .expect("run the command again");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--rss-of") {
        rss_of(&args[i + 1..]);
    }
    let python = workspace_root().join(".tools/yardstick/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup (it installs nats-py and psycopg there)",
        python.display()
    );
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/yardstick/migration_verify.py");
    let nats = NatsServer::start(NatsVersion::V2_15);
    let pg = Postgres::start();
    tokio::runtime::Runtime::new()
        .expect("tokio")
        .block_on(topology(&nats.url()));
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("gatekeeper.toml");
    std::fs::write(
        &config,
        CONFIG
            .replace("NATS_URL_HERE", &nats.url())
            .replace("DATABASE_URL_HERE", &pg.url()),
    )
    .expect("write config");
    let check = |cache: &Path| -> Vec<String> {
        vec![
            "env".into(),
            format!("XDG_CACHE_HOME={}", cache.display()),
            BIN.into(),
            "check".into(),
            "phase-2".into(),
            "-c".into(),
            config.display().to_string(),
        ]
    };
    let yardstick = vec![
        python.display().to_string(),
        script.display().to_string(),
        nats.url(),
        pg.url(),
    ];
    let runs = runs();

    // Cold: a new, empty compile cache every run.
    let mut cold = Vec::new();
    let mut cold_rss = 0;
    for _ in 0..runs.min(5) {
        let cache = tempfile::tempdir().expect("cache dir");
        let (took, code, rss) = measure(&check(cache.path()));
        let command = check(cache.path());
        assert_eq!(
            code,
            0,
            "check phase-2 must be go (exit 0), got {code}:\n{}",
            explain(&command)
        );
        cold.push(took);
        cold_rss = cold_rss.max(rss);
    }
    // Warm, alternating with the script.
    let warm_cache = tempfile::tempdir().expect("cache dir");
    measure(&check(warm_cache.path()));
    let (mut warm, mut script_runs) = (Vec::new(), Vec::new());
    let (mut warm_rss, mut script_rss) = (0, 0);
    for _ in 0..runs {
        let command = check(warm_cache.path());
        let (took, code, rss) = measure(&command);
        assert_eq!(
            code,
            0,
            "check phase-2 must be go (exit 0), got {code}:\n{}",
            explain(&command)
        );
        warm.push(took);
        warm_rss = warm_rss.max(rss);
        let (took, code, rss) = measure(&yardstick);
        assert_eq!(
            code,
            0,
            "the yardstick script must say go (exit 0), got {code}:\n{}",
            explain(&yardstick)
        );
        script_runs.push(took);
        script_rss = script_rss.max(rss);
    }
    let (warm, script) = (median(warm), median(script_runs));
    println!("live phase-2 check, nats-server 2.15 + PostgreSQL, {runs} runs, medians:");
    println!("| | wall (median) | peak RSS |");
    println!("|---|---:|---:|");
    println!(
        "| gatekeeper check phase-2, empty compile cache | {:.0} ms | {:.1} MiB |",
        ms(median(cold)),
        cold_rss as f64 / 1024.0
    );
    println!(
        "| gatekeeper check phase-2, warm cache | {:.0} ms | {:.1} MiB |",
        ms(warm),
        warm_rss as f64 / 1024.0
    );
    println!(
        "| migration_verify.py (nats-py + psycopg) | {:.0} ms | {:.1} MiB |",
        ms(script),
        script_rss as f64 / 1024.0
    );
    println!("ratio check / script: {:.2}x", ms(warm) / ms(script));
}
