//! The `prometheus` source, the seeds' alert rules, Alertmanager delivery and
//! the canary judge, through the built binary against a real Prometheus 2.42
//! and Alertmanager 0.25 (Debian's, installed by scripts/setup), each started
//! on a free loopback port in a temp dir.
//!
//! Data reaches Prometheus two ways, both real: scraped live from a canned
//! exporter every second (the alert rule test), or written into its TSDB by
//! `promtool tsdb create-blocks-from openmetrics` before it starts (the judge:
//! 20 minutes of known history without waiting 20 minutes).

use gatekeeper_testsupport::{
    Alertmanager, CannedHttp, Prometheus, PrometheusSetup, free_port, wait_for, workspace_root,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_gatekeeper");

fn gatekeeper(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("-c")
        .arg(dir.join("gatekeeper.toml"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run gatekeeper")
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}): stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The criterion `id` of the report's first gate that has it.
fn criterion<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["gates"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["criteria"].as_array().unwrap())
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no criterion {id} in {report:#}"))
}

/// Runs the real `promtool` in `dir`; panics with its output when it refuses.
pub(crate) fn promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "promtool: {e}: install it with `apt-get install prometheus` (scripts/setup does)"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}: {text}");
    text
}

fn seed_rules_dir() -> PathBuf {
    workspace_root().join("examples/athlete-ally/prometheus")
}

/// The seeds' five alert rules are a rule file Prometheus accepts, and each
/// fires on the series that should fire it, after its `for` and not before
/// (`promtool test rules`).
#[test]
fn the_seed_alert_rules_pass_promtool_and_their_unit_tests() {
    let dir = seed_rules_dir();
    let checked = promtool(&["check", "rules", "alerts.yaml"], &dir);
    assert!(checked.contains("SUCCESS: 5 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "alerts.test.yaml"], &dir);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// The seeds' metric as the normalize service exports it.
fn exposition(success: u64, dlq: u64) -> String {
    let labels = |result: &str| {
        format!(
            "result=\"{result}\",subject=\"athlete-ally.hrv.raw-received\",stream=\"AA_CORE_HOT\",durable=\"normalize-hrv-durable\""
        )
    };
    format!(
        "# TYPE normalize_hrv_messages_total counter\nnormalize_hrv_messages_total{{{}}} {success}\nnormalize_hrv_messages_total{{{}}} {dlq}\n",
        labels("success"),
        labels("dlq")
    )
}

const PROMQL_CONFIG: &str = r#"
[sources.prometheus]
url = "PROM"
timeout = "5s"
user = "reader"
password = "s3cret-pw"
[[sources.prometheus.queries]]
name = "core-hot-success"
query = 'sum(normalize_hrv_messages_total{result="success",stream="AA_CORE_HOT"})'
[[sources.prometheus.queries]]
name = "by-result"
query = 'sum by (result) (normalize_hrv_messages_total)'
range = "1m"
step = "1s"
[[sources.prometheus.queries]]
name = "typo"
query = 'sum(normalize_hrv_messages_total{result="success"'

[gates.metrics]
builtin = "signals"
[[gates.metrics.params.signals]]
id = "core-hot-processing"
title = "normalize_hrv_messages_total{stream=AA_CORE_HOT} present"
measure = { kind = "promql", query = "core-hot-success" }
when = ">= 120"
[[gates.metrics.params.signals]]
id = "no-dlq"
title = "No DLQ messages"
measure = { kind = "promql", query = "by-result", labels = { result = "dlq" } }
when = "== 0"

[gates.typo]
builtin = "signals"
[[gates.typo.params.signals]]
id = "typo"
title = "A query with a syntax error"
measure = { kind = "promql", query = "typo" }
when = "> 0"

[phases.metrics]
gates = ["metrics"]
[phases.typo]
gates = ["typo"]
"#;

/// A PromQL signal decides a criterion on what a real Prometheus scraped;
/// the snapshot replays to the identical report; a query Prometheus refuses
/// is that criterion's unknown with the server's reason; a Prometheus that
/// is down is a defer, never a go.
#[test]
fn a_promql_signal_decides_a_criterion_and_replays_byte_for_byte() {
    let target = CannedHttp::start();
    target.route("/metrics", 200, &exposition(120, 0), Duration::ZERO);
    let address = target.url("").trim_start_matches("http://").to_owned();
    let prom = Prometheus::start(&PrometheusSetup {
        scrape: vec![("normalize".into(), address)],
        ..PrometheusSetup::default()
    });
    wait_for(
        &format!(
            "prometheus to scrape the target twice (log: {})",
            prom.log()
        ),
        Duration::from_secs(30),
        || {
            let r =
                prom.query("count_over_time(normalize_hrv_messages_total{result=\"success\"}[1m])");
            (r[0]["value"][1].as_str()? >= "2").then_some(())
        },
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gatekeeper.toml"),
        PROMQL_CONFIG.replace("PROM", &prom.url()),
    )
    .unwrap();

    let out = gatekeeper(dir.path(), &["check", "metrics", "-o", "json"]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    assert_eq!(r["verdict"], "go");
    let c = criterion(&r, "core-hot-processing");
    assert_eq!(
        (c["status"].as_str(), c["observed"].as_str()),
        (Some("pass"), Some("120")),
        "{c:#}"
    );
    assert_eq!(criterion(&r, "no-dlq")["status"], "pass");

    // The snapshot keeps what Prometheus answered, and replays to the same report.
    let snap_file = dir.path().join("snap.json");
    let out = gatekeeper(dir.path(), &["snapshot", "-o", snap_file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snap_text = std::fs::read_to_string(&snap_file).unwrap();
    assert!(
        !snap_text.contains("s3cret-pw"),
        "the password leaked into the snapshot"
    );
    let snap: Value = serde_json::from_str(&snap_text).unwrap();
    let p = &snap["prometheus"];
    assert_eq!(p["status"], "partial", "the typo query fails: {p:#}");
    let queries = p["facts"]["queries"].as_array().unwrap();
    let by_result = queries.iter().find(|q| q["name"] == "by-result").unwrap();
    assert_eq!(by_result["result_type"], "matrix");
    assert_eq!(
        (
            by_result["range_ms"].as_u64(),
            by_result["step_ms"].as_u64()
        ),
        (Some(60_000), Some(1_000))
    );
    let series = by_result["series"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{series:#?}");
    assert!(
        series
            .iter()
            .all(|s| s["points"].as_array().unwrap().len() >= 2),
        "{series:#?}"
    );
    let typo = queries.iter().find(|q| q["name"] == "typo").unwrap();
    let why = typo["error"].as_str().unwrap();
    assert!(
        why.starts_with("the server refused the query (bad_data): "),
        "{why}"
    );
    let live = report(&gatekeeper(
        dir.path(),
        &[
            "check",
            "metrics",
            "--snapshot",
            snap_file.to_str().unwrap(),
            "-o",
            "json",
        ],
    ));
    let again = report(&gatekeeper(
        dir.path(),
        &[
            "check",
            "metrics",
            "--snapshot",
            snap_file.to_str().unwrap(),
            "-o",
            "json",
        ],
    ));
    assert_eq!(live, again);
    assert_eq!(live["verdict"], "go");

    // A refused query: unknown, with Prometheus' own reason.
    let out = gatekeeper(dir.path(), &["check", "typo", "-o", "json"]);
    let r = report(&out);
    assert_eq!(
        (out.status.code(), r["verdict"].as_str()),
        (Some(2), Some("defer")),
        "{r:#}"
    );
    let c = criterion(&r, "typo");
    assert_eq!(c["status"], "unknown");
    assert!(c["message"].as_str().unwrap().contains("bad_data"), "{c:#}");

    // Prometheus down: defer, naming the source; the password shown nowhere.
    drop(prom);
    let out = gatekeeper(dir.path(), &["check", "metrics", "-o", "json"]);
    for stream in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains("s3cret-pw"));
    }
    let r = report(&out);
    assert_eq!(
        (out.status.code(), r["verdict"].as_str()),
        (Some(2), Some("defer")),
        "{r:#}"
    );
    let msg = criterion(&r, "core-hot-processing")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("prometheus source unavailable"), "{msg}");
}

/// A deterministic normal sample (xorshift + Box-Muller).
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        mean + sd * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// 20 minutes of history, a point every 15 s, ending 30 s ago: per-pod p95
/// latencies for a baseline and four canaries, and request counters.
fn judge_history() -> String {
    let now = chrono::Utc::now().timestamp();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut text = String::from("# TYPE lat_seconds gauge\n");
    // (group, pods, median, sd)
    let groups = [
        ("baseline", 4, 0.200, 0.020),
        ("same", 2, 0.200, 0.020),
        ("slow", 2, 0.260, 0.020),
        ("noisy", 2, 0.200, 0.070),
        ("idle", 2, 0.0, 0.0),
    ];
    let times: Vec<i64> = (0..80).map(|i| now - 30 - 15 * (79 - i)).collect();
    for (group, pods, median, sd) in groups {
        for pod in 0..pods {
            for t in &times {
                let v = if sd == 0.0 {
                    0.0
                } else {
                    rng.normal(median, sd).max(0.001)
                };
                text.push_str(&format!(
                    "lat_seconds{{group=\"{group}\",pod=\"{group}-{pod}\"}} {v} {t}\n"
                ));
            }
        }
        if group == "baseline" {
            // The baseline is also an idle group's baseline: all zero.
            for t in &times {
                text.push_str(&format!(
                    "lat_seconds{{group=\"idle-baseline\",pod=\"ib\"}} 0 {t}\n"
                ));
            }
        }
    }
    // Requests over the 20 minutes: (group, result, total at the end).
    text.push_str("# TYPE req counter\n");
    let counters = [
        ("baseline", "ok", 99_900.0),
        ("baseline", "error", 100.0),
        ("same", "ok", 9_990.0),
        ("same", "error", 10.0),
        ("bad", "ok", 9_500.0),
        ("bad", "error", 500.0),
        ("sparse", "ok", 40.0),
        ("sparse", "error", 0.0),
    ];
    for (group, result, end) in counters {
        for (i, t) in times.iter().enumerate() {
            let v = (end * i as f64 / (times.len() - 1) as f64).round();
            text.push_str(&format!(
                "req_total{{group=\"{group}\",result=\"{result}\"}} {v} {t}\n"
            ));
        }
    }
    text.push_str("# EOF\n");
    text
}

const JUDGE_CONFIG: &str = r#"
[sources.prometheus]
url = "PROM"
timeout = "10s"
QUERIES

[gates.judge]
builtin = "canary-judge"
[gates.judge.params]
confidence = 0.95
METRICS

PHASES
"#;

/// The judge on data a real Prometheus serves: go for a canary like its
/// baseline; no-go for a canary whose latency shifted, whose variance grew,
/// or whose error proportion is worse; defer for too little traffic and for
/// all-zero data.
#[test]
fn the_canary_judge_decides_on_data_prometheus_serves() {
    let prom = Prometheus::start(&PrometheusSetup {
        backfill: Some(judge_history()),
        ..PrometheusSetup::default()
    });
    let mut queries = String::new();
    for g in ["baseline", "same", "slow", "noisy", "idle", "idle-baseline"] {
        queries.push_str(&format!(
            "[[sources.prometheus.queries]]\nname = \"lat-{g}\"\nquery = 'lat_seconds{{group=\"{g}\"}}'\nrange = \"15m\"\nstep = \"15s\"\n"
        ));
    }
    for g in ["baseline", "same", "bad", "sparse"] {
        queries.push_str(&format!(
            "[[sources.prometheus.queries]]\nname = \"req-{g}\"\nquery = 'sum by (result) (increase(req_total{{group=\"{g}\"}}[30m]))'\n"
        ));
    }
    let mut metrics = String::new();
    let mut phases = String::new();
    for (canary, baseline) in [
        ("same", "baseline"),
        ("slow", "baseline"),
        ("noisy", "baseline"),
        ("idle", "idle-baseline"),
    ] {
        metrics.push_str(&format!(
            "[[gates.judge-{canary}.params.metrics]]\nid = \"latency\"\ntitle = \"p95 latency\"\nkind = \"continuous\"\ncanary = \"lat-{canary}\"\nbaseline = \"lat-{baseline}\"\ntolerance = 0.1\n"
        ));
        phases.push_str(&format!("[gates.judge-{canary}]\nbuiltin = \"canary-judge\"\n[phases.latency-{canary}]\ngates = [\"judge-{canary}\"]\n"));
    }
    for canary in ["same", "bad", "sparse"] {
        metrics.push_str(&format!(
            "[[gates.errors-{canary}.params.metrics]]\nid = \"errors\"\ntitle = \"error proportion\"\nkind = \"proportion\"\ncanary_events = {{ query = \"req-{canary}\", labels = {{ result = \"error\" }} }}\ncanary_total = \"req-{canary}\"\nbaseline_events = {{ query = \"req-baseline\", labels = {{ result = \"error\" }} }}\nbaseline_total = \"req-baseline\"\ntolerance = 0.005\n"
        ));
        phases.push_str(&format!("[gates.errors-{canary}]\nbuiltin = \"canary-judge\"\n[phases.errors-{canary}]\ngates = [\"errors-{canary}\"]\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let config = JUDGE_CONFIG
        .replace("PROM", &prom.url())
        .replace("QUERIES", &queries)
        .replace("[gates.judge]\nbuiltin = \"canary-judge\"\n[gates.judge.params]\nconfidence = 0.95\nMETRICS", &metrics)
        .replace("PHASES", &phases);
    std::fs::write(dir.path().join("gatekeeper.toml"), config).unwrap();

    // (phase, criterion, exit code, status, field, what it holds)
    let cases = [
        (
            "latency-same",
            "latency",
            0,
            "pass",
            "observed",
            "122 canary vs 244 baseline observations",
        ),
        (
            "latency-slow",
            "latency",
            1,
            "fail",
            "message",
            "the canary is worse: shifted +",
        ),
        (
            "latency-noisy",
            "latency",
            1,
            "fail",
            "message",
            "the canary varies more: spread ×",
        ),
        (
            "latency-idle",
            "latency",
            2,
            "unknown",
            "message",
            "every observation is 0 in both groups",
        ),
        (
            "errors-same",
            "errors",
            0,
            "pass",
            "message",
            "no worse than the baseline: the difference is between",
        ),
        // Prometheus' increase() extrapolates half an interval past the last
        // sample (and not below zero at the first): 500 × 1192.5 / 1185.
        (
            "errors-bad",
            "errors",
            1,
            "fail",
            "observed",
            "canary 503.2 of 10063 (5 %)",
        ),
        (
            "errors-sparse",
            "errors",
            2,
            "unknown",
            "message",
            "too little traffic to judge: 40.25 and 100633 counted (need 100 each)",
        ),
    ];
    for (phase, id, code, status, field, holds) in cases {
        let out = gatekeeper(dir.path(), &["check", phase, "-o", "json"]);
        let r = report(&out);
        let c = criterion(&r, id);
        assert_eq!(
            (out.status.code(), c["status"].as_str()),
            (Some(code), Some(status)),
            "{phase}: {c:#}"
        );
        assert!(
            c[field].as_str().unwrap().contains(holds),
            "{phase}: {field} should hold {holds:?}: {c:#}"
        );
    }
}

const WATCH_CONFIG: &str = r#"
[sources.prometheus]
url = "PROM"
[[sources.prometheus.queries]]
name = "firing"
query = 'ALERTS{alertstate="firing"}'

[gates.alerts]
builtin = "signals"
[[gates.alerts.params.signals]]
id = "hrv-dlq-alert"
title = "HRVDLQMessagesDetected firing"
measure = { kind = "promql", query = "firing", labels = { alertname = "HRVDLQMessagesDetected" }, aggregate = "count" }
when = "> 0"
trigger = "automatic"

[phases.canary-10]
gates = ["alerts"]

[ledger]
backend = "file"
file = "DIR/ledger.jsonl"

[watch]
interval = "1s"
resolve_after = "3s"

[watch.alertmanager]
url = "AM"
runbook = "https://runbooks.example/hrv-dlq"
repeat = "1s"

# Active only while canary-10 is watched (`watch --phase canary-10`).
[watch.plans.rollback-to-single]
phase = "canary-10"
on = ["alerts/hrv-dlq-alert"]
steps = [{ action = "exec", command = ["/bin/sh", "-c", "touch 'DIR/rolled-back'"] }]
"#;

/// `gatekeeper watch` on the dir's config (JSON logs into `watch.log`);
/// killed on drop.
struct Watch {
    child: std::process::Child,
    log: PathBuf,
}

impl Watch {
    fn start(dir: &Path, extra: &[&str]) -> Watch {
        let log = dir.join("watch.log");
        let child = Command::new(BIN)
            .args(["--log-format", "json", "watch", "--agent", "agent-a"])
            .args(extra)
            .arg("-c")
            .arg(dir.join("gatekeeper.toml"))
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start gatekeeper watch");
        Watch { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn incident_alerts(am: &Alertmanager) -> Vec<Value> {
    am.alerts()
        .into_iter()
        .filter(|a| a["labels"]["alertname"] == "GatekeeperIncident")
        .collect()
}

/// The seeds' DLQ alert rule (windows shortened for the test: `[5m]` → `[4s]`,
/// `for: 5m` → `for: 2s`) fires in a real Prometheus; `watch` reads it as
/// `ALERTS{alertstate="firing"}`, the trigger starts the rollback plan, the
/// incident arrives at a real Alertmanager with its labels, stays while the
/// incident is open (re-sent), and resolves when the incident closes.
#[test]
fn an_alert_rule_firing_rolls_back_and_its_incident_reaches_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let rules = std::fs::read_to_string(seed_rules_dir().join("alerts.yaml"))
        .unwrap()
        .replace("[5m]", "[4s]")
        .replace("for: 5m", "for: 2s");
    let rules_file = dir.path().join("alerts.yaml");
    std::fs::write(&rules_file, rules).unwrap();
    let target = CannedHttp::start();
    target.route("/metrics", 200, &exposition(100, 0), Duration::ZERO);
    let am = Alertmanager::start();
    let prom = Prometheus::start(&PrometheusSetup {
        scrape: vec![(
            "normalize".into(),
            target.url("").trim_start_matches("http://").to_owned(),
        )],
        rules: vec![rules_file],
        ..PrometheusSetup::default()
    });
    std::fs::write(
        dir.path().join("gatekeeper.toml"),
        WATCH_CONFIG
            .replace("PROM", &prom.url())
            .replace("AM", &am.url())
            .replace("DIR", &dir.path().display().to_string()),
    )
    .unwrap();
    let watch = Watch::start(dir.path(), &["--phase", "canary-10"]);
    let watch_log = || watch.log();

    // DLQ messages start arriving: 5 a second.
    let mut dlq = 0;
    let feed = |dlq: &mut u64| {
        *dlq += 5;
        target.route("/metrics", 200, &exposition(100, *dlq), Duration::ZERO);
    };
    let rolled_back = dir.path().join("rolled-back");
    wait_for(
        &format!("the rollback plan to run (watch log: {})", watch_log()),
        Duration::from_secs(60),
        || {
            feed(&mut dlq);
            std::thread::sleep(Duration::from_millis(200));
            rolled_back.exists().then_some(())
        },
    );
    let first = wait_for(
        &format!("the incident at Alertmanager (log: {})", am.log()),
        Duration::from_secs(20),
        || {
            feed(&mut dlq);
            incident_alerts(&am).into_iter().next()
        },
    );
    let labels = &first["labels"];
    assert_eq!(labels["trigger"], "alerts/hrv-dlq-alert", "{first:#}");
    assert_eq!(labels["severity"], "critical");
    assert_eq!(labels["phase"], "canary-10");
    assert_eq!(labels["agent"], "agent-a");
    assert!(
        labels["incident"].as_str().is_some_and(|i| !i.is_empty()),
        "{first:#}"
    );
    assert_eq!(
        first["annotations"]["runbook_url"],
        "https://runbooks.example/hrv-dlq"
    );
    assert!(
        first["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("alerts/hrv-dlq-alert"),
        "{first:#}"
    );

    // Still there 6 s later (4 repeats is its horizon, so it was re-sent).
    let seen = std::time::Instant::now();
    wait_for(
        "six seconds of an open incident",
        Duration::from_secs(30),
        || {
            feed(&mut dlq);
            std::thread::sleep(Duration::from_millis(200));
            (seen.elapsed() > Duration::from_secs(6)).then_some(())
        },
    );
    assert_eq!(incident_alerts(&am).len(), 1, "{:#?}", am.alerts());

    // The DLQ stops: the rule resolves, the trigger clears, the incident
    // closes after resolve_after, and Alertmanager resolves the alert.
    wait_for(
        &format!(
            "the incident to resolve at Alertmanager (watch log: {})",
            watch_log()
        ),
        Duration::from_secs(60),
        || incident_alerts(&am).is_empty().then_some(()),
    );
    let ledger = std::fs::read_to_string(dir.path().join("ledger.jsonl")).unwrap();
    assert!(ledger.contains("\"incident-closed\""), "{ledger}");
}

const AM_DOWN_CONFIG: &str = r#"
[[sources.metrics]]
name = "normalize"
url = "TARGET"
families = ["normalize_hrv_messages_total"]

[gates.triggers]
builtin = "signals"
[[gates.triggers.params.signals]]
id = "dlq-seen"
title = "DLQ messages"
measure = { kind = "metric", target = "normalize", family = "normalize_hrv_messages_total", labels = { result = "dlq" } }
when = "> 0"
trigger = "automatic"

[phases.canary]
gates = ["triggers"]

[ledger]
backend = "file"
file = "DIR/ledger.jsonl"

[watch]
interval = "1s"

[watch.alertmanager]
url = "AM"
repeat = "1s"

[watch.plans.rollback]
on = ["triggers/dlq-seen"]
steps = [{ action = "exec", command = ["/bin/sh", "-c", "touch 'DIR/rolled-back'"] }]
"#;

/// Reads one sample of the agent's /metrics (a plain HTTP/1.0 GET).
fn agent_metric(port: u16, name: &str) -> Option<f64> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Alertmanager down never holds a rollback back: the plan runs, the failed
/// deliveries are counted and retried, and the incident arrives once
/// Alertmanager is up.
#[test]
fn alertmanager_down_never_blocks_the_rollback_and_delivery_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let target = CannedHttp::start();
    target.route("/metrics", 200, &exposition(100, 3), Duration::ZERO);
    let am_port = free_port();
    std::fs::write(
        dir.path().join("gatekeeper.toml"),
        AM_DOWN_CONFIG
            .replace("TARGET", &target.url("/metrics"))
            .replace("AM", &format!("http://127.0.0.1:{am_port}"))
            .replace("DIR", &dir.path().display().to_string()),
    )
    .unwrap();
    let listen = free_port();
    let watch = Watch::start(dir.path(), &["--listen", &format!("127.0.0.1:{listen}")]);
    let watch_log = || watch.log();
    wait_for(
        &format!("the rollback with Alertmanager down (log: {})", watch_log()),
        Duration::from_secs(60),
        || dir.path().join("rolled-back").exists().then_some(()),
    );
    let errors = wait_for("failed deliveries counted", Duration::from_secs(20), || {
        agent_metric(listen, "gatekeeper_alertmanager_errors_total").filter(|v| *v >= 2.0)
    });
    assert!(errors >= 2.0);
    assert_eq!(
        agent_metric(listen, "gatekeeper_alertmanager_posts_total"),
        Some(0.0)
    );
    assert!(
        watch_log().contains("alertmanager: delivery failed"),
        "{}",
        watch_log()
    );

    // Alertmanager comes up where the agent was told it is: the retries deliver.
    let am = Alertmanager::start_on(am_port);
    let incident = wait_for(
        &format!(
            "the incident delivered after the outage (log: {})",
            watch_log()
        ),
        Duration::from_secs(60),
        || incident_alerts(&am).into_iter().next(),
    );
    assert_eq!(incident["labels"]["trigger"], "triggers/dlq-seen");
    assert!(agent_metric(listen, "gatekeeper_alertmanager_posts_total").is_some_and(|v| v >= 1.0));
}

/// A judge missing a group is refused when the config loads, naming the
/// field, never evaluated into a verdict.
#[test]
fn a_judge_missing_a_group_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gatekeeper.toml"),
        "[sources.prometheus]\nurl = \"http://127.0.0.1:9\"\n\n[gates.judge]\nbuiltin = \"canary-judge\"\n[[gates.judge.params.metrics]]\nid = \"latency\"\ntitle = \"p95\"\nkind = \"continuous\"\ncanary = \"p95-canary\"\n\n[phases.canary-10]\ngates = [\"judge\"]\n",
    )
    .unwrap();
    for args in [&["validate"][..], &["check", "canary-10"][..]] {
        let out = gatekeeper(dir.path(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(
            stderr.contains(
                "gatekeeper.toml:6: gates.judge.params.metrics[0].baseline: bad params: a `continuous` metric needs it"
            ),
            "{args:?}: {stderr}"
        );
    }
}

/// Every PromQL the project ships is accepted by a real Prometheus: both
/// rule files load and every rule evaluates healthy, every dashboard panel's
/// query and every query of the example config parses and runs.
#[test]
fn every_shipped_rule_dashboard_and_query_runs_on_a_real_prometheus() {
    let root = workspace_root();
    let rule_files = [
        root.join("examples/k8s/alerts.yaml"),
        seed_rules_dir().join("alerts.yaml"),
    ];
    let prom = Prometheus::start(&PrometheusSetup {
        rules: rule_files.to_vec(),
        ..PrometheusSetup::default()
    });
    let rules = wait_for(
        &format!("every rule evaluated healthy (log: {})", prom.log()),
        Duration::from_secs(30),
        || {
            let groups = prom.api("/api/v1/rules")["groups"].clone();
            let rules: Vec<Value> = groups
                .as_array()?
                .iter()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .collect();
            rules.iter().all(|r| r["health"] == "ok").then_some(rules)
        },
    );
    assert_eq!(rules.len(), 9 + 5, "{rules:#?}");

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("examples/k8s/grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    let example: toml::Table =
        std::fs::read_to_string(root.join("examples/athlete-ally/gatekeeper.toml"))
            .unwrap()
            .parse()
            .unwrap();
    let queries = example["sources"]["prometheus"]["queries"]
        .as_array()
        .unwrap();
    assert!(queries.len() >= 5);
    exprs.extend(
        queries
            .iter()
            .map(|q| q["query"].as_str().unwrap().to_owned()),
    );
    for expr in &exprs {
        // `query` panics with Prometheus' own error when it refuses one.
        let _ = prom.query(expr);
    }
}

/// The bcrypt hash (cost 4) of `s3cret-pw`, as Prometheus' web config takes it.
const PW_HASH: &str = "$2b$04$T9L29hFRqs4IJMW5dc3G0uS4MuWlf4lxEqVJlsTNYgf0ChHxGxO7.";

/// A Prometheus that requires basic auth: the right password reads, a wrong
/// one makes the source unavailable saying the credentials were refused (a
/// defer, never a go), and the password appears nowhere.
#[test]
fn basic_auth_is_sent_and_a_refusal_is_named() {
    let prom = Prometheus::start(&PrometheusSetup {
        basic_auth: Some(("reader".into(), "s3cret-pw".into(), PW_HASH.into())),
        ..PrometheusSetup::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let config = |password: &str| {
        format!(
            "[sources.prometheus]\nurl = \"{}\"\nuser = \"reader\"\npassword = \"{password}\"\n[[sources.prometheus.queries]]\nname = \"up\"\nquery = \"vector(1)\"\n\n[gates.up]\nbuiltin = \"signals\"\n[[gates.up.params.signals]]\nid = \"up\"\ntitle = \"Prometheus answers\"\nmeasure = {{ kind = \"promql\", query = \"up\" }}\nwhen = \"== 1\"\n\n[phases.p]\ngates = [\"up\"]\n",
            prom.url()
        )
    };
    std::fs::write(dir.path().join("gatekeeper.toml"), config("s3cret-pw")).unwrap();
    let out = gatekeeper(dir.path(), &["check", "p", "-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    std::fs::write(dir.path().join("gatekeeper.toml"), config("wr0ng-pw")).unwrap();
    let out = gatekeeper(dir.path(), &["check", "p", "-o", "json"]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(2), "{r:#}");
    let msg = criterion(&r, "up")["message"].as_str().unwrap().to_owned();
    assert!(
        msg.contains("prometheus source unavailable")
            && msg.contains("answered HTTP 401: the server refused the credentials"),
        "{msg}"
    );
    for stream in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains("wr0ng-pw"));
    }
}
