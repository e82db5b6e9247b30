//! `gatekeeper watch`, measured on the real binary against a local
//! nats-server (2.15) and the fake Kubernetes API server:
//!
//! 1. detect-to-action latency: a DLQ spike at a 1 s interval, measured two
//!    ways to the start of the plan's first step (the ledger's step record):
//!    from the end of the trigger's 3 s hold as the gate reports it (`since`,
//!    the first sample of the unbroken run, + `for`; goal: at most the
//!    interval + 1 s), and from outside the daemon: from the publisher's
//!    first DLQ message, on its own clock (the hold, the rate window and
//!    the interval included).
//! 2. idle footprint: 20 gates watched every 5 s with nothing firing, history
//!    full (signals hold up to 2 m): peak RSS from /proc and CPU from the
//!    process's own utime + stime. Goal: at most 40 MiB and 1 % of a core.
//!
//!     cargo bench -p gatekeeper --bench watch
//!
//! `GATEKEEPER_BENCH_RUNS` (latency runs, default 5) and
//! `GATEKEEPER_BENCH_IDLE_SECS` (default 240: 3 m to fill the history, then
//! the last minute is the steady state reported) shorten or lengthen it.

use gatekeeper_testsupport::{FakeKube, NatsServer, NatsVersion, free_port, js_request};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gatekeeper");

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_watch(dir: &std::path::Path, config: &std::path::Path, port: u16) -> Watch {
    Watch(
        Command::new(BIN)
            .args(["--log-format", "json", "watch", "-c"])
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--agent", "bench"])
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("watch.log")).expect("log"))
            .spawn()
            .expect("start gatekeeper watch"),
    )
}

async fn rounds(port: u16) -> Option<f64> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("gatekeeper_rounds_total "))
        .and_then(|v| v.parse().ok())
}

async fn wait_rounds(port: u16, n: f64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if rounds(port).await.is_some_and(|r| r >= n) {
            return;
        }
        assert!(Instant::now() < deadline, "watch never reached {n} rounds");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ledger(dir: &std::path::Path, config: &std::path::Path, kind: &str) -> Vec<Value> {
    let out = Command::new(BIN)
        .args(["ledger", "--kind", kind, "-c"])
        .arg(config)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .output()
        .expect("gatekeeper ledger");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record"))
        .collect()
}

fn millis(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a timestamp"))
        .expect("RFC 3339")
        .timestamp_millis()
}

async fn create_streams(client: &async_nats::Client, streams: &[(&str, &[&str])]) {
    for (name, subjects) in streams {
        js_request(
            client,
            &format!("$JS.API.STREAM.CREATE.{name}"),
            json!({"name": name, "subjects": subjects, "storage": "file"}),
        )
        .await;
    }
}

const LATENCY_CONFIG: &str = r#"
[sources.nats]
url = "NATS_URL"
[sources.kubernetes]
kubeconfig = "KUBECONFIG"

[gates.triggers]
builtin = "signals"
[[gates.triggers.params.signals]]
id = "dlq-spike"
title = "DLQ spike"
measure = { kind = "stream-publish-rate", streams = ["AA_DLQ"], window = "2s" }
when = "> 10"
for = "3s"
trigger = "automatic"

[phases.canary]
gates = ["triggers"]

[ledger]
lease_ttl = "3s"

[watch]
interval = "1s"

[watch.plans.rollback-to-single]
on = ["triggers/dlq-spike"]
steps = [
    { action = "patch-config-map", name = "event-bus-config", data = { EVENT_STREAM_MODE = "single" } },
    { action = "move-subjects", subjects = ["athlete-ally.>"], from = ["AA_CORE_HOT"], to = "ATHLETE_ALLY_EVENTS" },
]
"#;

/// (ms after the hold's end, ms after the first spike message)
async fn one_latency_run() -> (i64, i64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let nats = NatsServer::start(NatsVersion::V2_15);
    let kube = FakeKube::start();
    kube.add_config_map(
        serde_json::from_value(
            json!({"metadata": {"name": "event-bus-config", "namespace": "bench"},
            "data": {"EVENT_STREAM_MODE": "multi"}}),
        )
        .expect("configmap"),
    );
    let client = async_nats::connect(nats.url()).await.expect("connect");
    create_streams(
        &client,
        &[
            ("ATHLETE_ALLY_EVENTS", &["legacy.>"]),
            ("AA_CORE_HOT", &["athlete-ally.>"]),
            ("AA_DLQ", &["dlq.>"]),
        ],
    )
    .await;
    let config = dir.path().join("gatekeeper.toml");
    let kubeconfig = kube.kubeconfig(dir.path(), "bench");
    std::fs::write(
        &config,
        LATENCY_CONFIG
            .replace("NATS_URL", &nats.url())
            .replace("KUBECONFIG", &kubeconfig.display().to_string()),
    )
    .expect("config");
    let port = free_port();
    let _watch = start_watch(dir.path(), &config, port);
    wait_rounds(port, 2.0).await;
    let first_message_ms = chrono::Utc::now().timestamp_millis();
    let spike = tokio::spawn(async move {
        loop {
            let _ = client.publish("dlq.x", "failed".into()).await;
            let _ = client.flush().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let plan = loop {
        if let Some(p) = ledger(dir.path(), &config, "plan").into_iter().next() {
            break p;
        }
        assert!(Instant::now() < deadline, "no plan ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    spike.abort();
    assert_eq!(plan["outcome"], "done", "{plan}");
    let opened = ledger(dir.path(), &config, "incident-opened");
    let since = millis(&opened[0]["triggers"][0]["since"]);
    let first_step = millis(&ledger(dir.path(), &config, "step")[0]["at"]);
    (first_step - (since + 3000), first_step - first_message_ms)
}

/// 20 gates over NATS (4 streams, 2 consumers), its monitoring endpoint:
/// 12 signals gates (holds of 1–2 m), 4 stream-topology, 2 consumer-config,
/// 2 nats-cluster-healthy.
fn idle_config(nats: &NatsServer) -> String {
    let mut text = format!(
        "[sources.nats]\nurl = \"{}\"\nmonitor_url = \"{}\"\n\n[ledger]\nbackend = \"file\"\n\n[watch]\ninterval = \"5s\"\n\n",
        nats.url(),
        nats.monitor_url()
    );
    let mut names = Vec::new();
    let streams = [
        "ATHLETE_ALLY_EVENTS",
        "AA_CORE_HOT",
        "AA_VENDOR_HOT",
        "AA_DLQ",
    ];
    for i in 0..12 {
        let stream = streams[i % 4];
        let name = format!("signals-{i}");
        text += &format!(
            "[gates.{name}]\nbuiltin = \"signals\"\n[[gates.{name}.params.signals]]\nid = \"rate-{i}\"\ntitle = \"publish rate {stream}\"\n\
             measure = {{ kind = \"stream-publish-rate\", streams = [\"{stream}\"], window = \"1m\" }}\nwhen = \"> 1000\"\nfor = \"{}m\"\ntrigger = \"automatic\"\n\
             [[gates.{name}.params.signals]]\nid = \"messages-{i}\"\ntitle = \"messages {stream}\"\nmeasure = {{ kind = \"stream-messages\", stream = \"{stream}\" }}\nwhen = \"> 100000\"\nfor = \"1m\"\ntrigger = \"manual\"\n\n",
            1 + i % 2
        );
        names.push(name);
    }
    for (i, stream) in streams.iter().enumerate() {
        let name = format!("topology-{i}");
        text += &format!(
            "[gates.{name}]\nbuiltin = \"stream-topology\"\n[[gates.{name}.params.streams]]\nname = \"{stream}\"\n\n"
        );
        names.push(name);
    }
    for (i, (stream, consumer)) in [
        ("AA_CORE_HOT", "normalize-hrv-durable"),
        ("AA_VENDOR_HOT", "normalize-oura"),
    ]
    .iter()
    .enumerate()
    {
        let name = format!("consumer-{i}");
        text += &format!(
            "[gates.{name}]\nbuiltin = \"consumer-config\"\n[[gates.{name}.params.consumers]]\nstream = \"{stream}\"\nname = \"{consumer}\"\n\n"
        );
        names.push(name);
    }
    for i in 0..2 {
        let name = format!("cluster-{i}");
        text += &format!("[gates.{name}]\nbuiltin = \"nats-cluster-healthy\"\n\n");
        names.push(name);
    }
    text += &format!(
        "[phases.canary]\ngates = [{}]\n",
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    text
}

/// (RSS KiB, utime + stime in clock ticks) of a process.
fn usage(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name (which may hold spaces) start at ") ".
    let fields: Vec<&str> = stat[stat.rfind(") ").expect("stat") + 2..]
        .split(' ')
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    (rss, ticks)
}

async fn idle_footprint(seconds: u64, warm: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let nats = NatsServer::start(NatsVersion::V2_15);
    let client = async_nats::connect(nats.url()).await.expect("connect");
    create_streams(
        &client,
        &[
            ("ATHLETE_ALLY_EVENTS", &["legacy.>"]),
            ("AA_CORE_HOT", &["athlete-ally.>", "sleep.*"]),
            ("AA_VENDOR_HOT", &["vendor.>"]),
            ("AA_DLQ", &["dlq.>"]),
        ],
    )
    .await;
    gatekeeper_testsupport::create_consumer(
        &client,
        "AA_CORE_HOT",
        "normalize-hrv-durable",
        "athlete-ally.>",
        Duration::from_secs(60),
        1000,
    )
    .await;
    gatekeeper_testsupport::create_consumer(
        &client,
        "AA_VENDOR_HOT",
        "normalize-oura",
        "vendor.>",
        Duration::from_secs(60),
        1000,
    )
    .await;
    let config = dir.path().join("gatekeeper.toml");
    std::fs::write(&config, idle_config(&nats)).expect("config");
    if warm {
        // Another process compiles the gates into the on-disk cache first (a
        // restarted container with its cache volume); the watch only loads them.
        let listed = Command::new(BIN)
            .args(["gates", "list", "-c"])
            .arg(&config)
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .output()
            .expect("gatekeeper gates list");
        assert!(
            listed.status.success(),
            "{}",
            String::from_utf8_lossy(&listed.stderr)
        );
    }
    let port = free_port();
    let watch = start_watch(dir.path(), &config, port);
    wait_rounds(port, 1.0).await;
    let pid = watch.0.id();
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let start = Instant::now();
    let (_, ticks0) = usage(pid);
    let steady_from = Duration::from_secs(seconds.saturating_sub(60));
    let mut steady: Option<(Instant, u64)> = None;
    let mut peak_rss = 0;
    let mut steady_peak = 0;
    while start.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (rss, ticks) = usage(pid);
        peak_rss = peak_rss.max(rss);
        if start.elapsed() >= steady_from {
            steady.get_or_insert((Instant::now(), ticks));
            steady_peak = steady_peak.max(rss);
        }
    }
    let (_, ticks1) = usage(pid);
    let total_cpu =
        (ticks1 - ticks0) as f64 / ticks_per_second / start.elapsed().as_secs_f64() * 100.0;
    let (steady_at, steady_ticks) = steady.expect("a steady window");
    let steady_cpu =
        (ticks1 - steady_ticks) as f64 / ticks_per_second / steady_at.elapsed().as_secs_f64()
            * 100.0;
    let rounds = rounds(port).await.unwrap_or(0.0);
    let cache = if warm {
        "compile cache warm"
    } else {
        "gates compiled at start"
    };
    println!(
        "idle, 20 gates @5s, {cache}, {seconds} s ({rounds} rounds): peak RSS {:.1} MiB (last 60 s: {:.1} MiB); CPU {total_cpu:.2} % of a core overall, {steady_cpu:.2} % over the last 60 s",
        peak_rss as f64 / 1024.0,
        steady_peak as f64 / 1024.0,
    );
}

fn main() {
    // cargo bench passes --bench; nothing else is accepted.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _ = rustls::crypto::ring::default_provider().install_default();
    runtime.block_on(async {
        let runs = env_number("GATEKEEPER_BENCH_RUNS", 5);
        let mut after_hold = Vec::new();
        let mut after_first_message = Vec::new();
        for _ in 0..runs {
            let (hold, outside) = one_latency_run().await;
            after_hold.push(hold);
            after_first_message.push(outside);
        }
        for (what, mut latencies) in [
            ("after the hold's end (goal ≤ 2000 ms)", after_hold),
            ("after the first spike message, publisher's clock (3 s hold, 2 s rate window, 1 s interval)", after_first_message),
        ] {
            latencies.sort();
            if let (Some(min), Some(max)) = (latencies.first(), latencies.last()) {
                println!(
                    "detect-to-action {what}, {runs} runs: min {min} ms, median {} ms, max {max} ms",
                    latencies[latencies.len() / 2],
                );
            }
        }
        let seconds = env_number("GATEKEEPER_BENCH_IDLE_SECS", 240);
        if seconds > 0 {
            idle_footprint(seconds, false).await;
            idle_footprint(seconds, true).await;
        }
    });
}
