//! `scripts/demo live`: the seeds' migration run for real on loopback.
//!
//! 1. nats-server and PostgreSQL start on free ports in a temp dir; the
//!    legacy topology of seed 002 is created (`ATHLETE_ALLY_EVENTS` with
//!    `athlete-ally.>`, `vendor.>`, `sleep.*` and its `normalize-hrv-durable`).
//! 2. The stack starts (ingest, normalize with 10 workers, mode `single`) and
//!    the load generator posts readings.
//! 3. `gatekeeper apply phase-0`, `phase-1`, `phase-2` with the example
//!    config's `live` profile: each gated before, verified after; phase 2
//!    moves the legacy stream to `legacy.>`, creates `AA_CORE_HOT` and its
//!    consumer, and takes the canary 10 → 50 → 100 %.
//! 4. `gatekeeper watch` on the canary; the fault switch makes normalize
//!    fail 60 % of readings; the DLQ spike fires after its hold and
//!    `rollback-to-single` moves the subjects back and sets the mode to
//!    single; readings land on the legacy stream again.
//! 5. `gatekeeper apply phase-3` is refused by its pre-gate (the legacy
//!    stream is in use again).
//! 6. The load stops, the queues drain, and the count must hold: rows in
//!    `hrv_data` + messages in `AA_DLQ` = readings published.
//!
//! The timeline (from the ledger and the driver's own events) and the
//! ledger are printed; everything is stopped and removed on return.

use crate::ingest::Published;
use crate::{CORE, DLQ, DURABLE, HRV_SUBJECT, LEGACY};
use gatekeeper_testsupport::{NatsServer, NatsVersion, Postgres, js_request};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct DemoOptions {
    /// The gatekeeper binary.
    pub gatekeeper: PathBuf,
    /// `examples/athlete-ally/gatekeeper.toml`.
    pub example: PathBuf,
    pub nats: NatsVersion,
    /// Readings per second.
    pub rate: f64,
}

/// What the demo saw.
#[derive(Debug, Default)]
pub struct DemoReport {
    /// (when, what), in order.
    pub timeline: Vec<(chrono::DateTime<chrono::Utc>, String)>,
    /// The ledger, one JSON record per line.
    pub ledger: String,
    pub published: usize,
    pub rows: usize,
    pub dead_lettered: usize,
    /// Readings stored on the legacy stream after the rollback.
    pub legacy_after_rollback: usize,
    /// The plans `watch` ran.
    pub plans: Vec<Value>,
    /// (phase, apply exit code) in order.
    pub applies: Vec<(String, i32)>,
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

struct Driver {
    gatekeeper: PathBuf,
    dir: PathBuf,
    env: Vec<(String, String)>,
    report: DemoReport,
}

impl Driver {
    fn event(&mut self, what: impl Into<String>) {
        let what = what.into();
        eprintln!("[demo] {what}");
        self.report.timeline.push((now(), what));
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.gatekeeper);
        c.args(args)
            .args(["-c", "gatekeeper.toml", "-p", "live"])
            .current_dir(&self.dir)
            // No Prometheus runs here: its collector's warnings are noise.
            .env("RUST_LOG", "gatekeeper=error");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    fn gatekeeper(&self, args: &[&str]) -> Result<Output, String> {
        self.command(args)
            .output()
            .map_err(|e| format!("{}: cannot run: {e}", self.gatekeeper.display()))
    }

    fn apply(&mut self, phase: &str) -> Result<i32, String> {
        self.event(format!("gatekeeper apply {phase}"));
        let o = self.gatekeeper(&["apply", phase, "--yes", "--by", "demo", "--interval", "1s"])?;
        let code = o.status.code().unwrap_or(-1);
        let stderr = String::from_utf8_lossy(&o.stderr);
        for line in String::from_utf8_lossy(&o.stdout)
            .lines()
            .chain(stderr.lines())
        {
            eprintln!("    {line}");
        }
        let last = stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("apply ") || l.starts_with("gatekeeper: error"))
            .unwrap_or("")
            .to_owned();
        self.event(format!("apply {phase}: exit {code}: {last}"));
        self.report.applies.push((phase.to_owned(), code));
        Ok(code)
    }

    fn ledger(&self) -> Result<Vec<Value>, String> {
        let o = self.gatekeeper(&["ledger"])?;
        if !o.status.success() {
            return Err(format!(
                "gatekeeper ledger: {}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }
}

/// Polls `check` every 250 ms until it answers or `timeout` passes.
fn poll<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<Option<T>, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check()? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "gave up after {}s waiting for {what}",
                timeout.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn stop_child(child: &mut Child) {
    // SIGTERM: watch stops gracefully and releases its lease.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A stream's message count and its durable's pending + unacked (None: absent).
async fn stream_state(c: &async_nats::Client, stream: &str) -> Option<(u64, u64)> {
    let reply = c
        .request(format!("$JS.API.STREAM.INFO.{stream}"), "{}".into())
        .await
        .ok()?;
    let info: Value = serde_json::from_slice(&reply.payload).ok()?;
    info.get("error").is_none().then_some(())?;
    let messages = info["state"]["messages"].as_u64().unwrap_or(0);
    let reply = c
        .request(
            format!("$JS.API.CONSUMER.INFO.{stream}.{DURABLE}"),
            "{}".into(),
        )
        .await
        .ok()?;
    let consumer: Value = serde_json::from_slice(&reply.payload).ok()?;
    let open = consumer["num_pending"].as_u64().unwrap_or(0)
        + consumer["num_ack_pending"].as_u64().unwrap_or(0);
    Some((
        messages,
        if consumer.get("error").is_some() {
            0
        } else {
            open
        },
    ))
}

/// Runs the demo: what it saw, and `Err` naming the first expectation that
/// did not hold.
pub fn run(options: &DemoOptions) -> (DemoReport, Result<(), String>) {
    let mut report = DemoReport::default();
    let result = run_into(options, &mut report);
    (report, result)
}

fn run_into(options: &DemoOptions, out: &mut DemoReport) -> Result<(), String> {
    let started = Instant::now();
    let gatekeeper = std::fs::canonicalize(&options.gatekeeper).map_err(|e| {
        format!(
            "{}: {e} (build it: cargo build --release -p gatekeeper)",
            options.gatekeeper.display()
        )
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))?;
    let temp = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let dir = temp.path().to_path_buf();
    let nats = NatsServer::start(options.nats);
    let pg = Postgres::start();
    let client = runtime
        .block_on(async_nats::connect(nats.url()))
        .map_err(|e| format!("NATS: {e}"))?;

    // The legacy topology of seed 002, before phase 0.
    runtime.block_on(async {
        js_request(
            &client,
            &format!("$JS.API.STREAM.CREATE.{LEGACY}"),
            json!({"name": LEGACY, "subjects": ["athlete-ally.>", "vendor.>", "sleep.*"], "storage": "file"}),
        )
        .await;
        js_request(
            &client,
            &format!("$JS.API.CONSUMER.DURABLE.CREATE.{LEGACY}.{DURABLE}"),
            json!({"stream_name": LEGACY, "config": {"durable_name": DURABLE, "ack_policy": "explicit", "deliver_policy": "all", "filter_subject": HRV_SUBJECT, "max_deliver": 5, "ack_wait": 60_000_000_000u64, "max_ack_pending": 1000}}),
        )
        .await;
    });

    // The stack.
    let mode_file = dir.join("event-bus-config.mode");
    let fault_file = dir.join("normalize.fault");
    std::fs::write(&mode_file, "single").map_err(|e| e.to_string())?;
    std::fs::write(&fault_file, "0").map_err(|e| e.to_string())?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let published = Arc::new(Mutex::new(Published::default()));
    let (ingest_addr, normalize_addr, workers) = runtime.block_on(async {
        let ingest = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let normalize = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let (ia, na) = (
            ingest.local_addr().map_err(|e| e.to_string())?,
            normalize.local_addr().map_err(|e| e.to_string())?,
        );
        crate::serve(
            ingest,
            crate::ingest::router(client.clone(), published.clone()),
        );
        let (app, workers) = crate::normalize::start(
            client.clone(),
            &pg.url(),
            crate::normalize::Options {
                workers: 10,
                mode_file: mode_file.clone(),
                fault_file: fault_file.clone(),
            },
            stop_rx.clone(),
        )
        .await?;
        crate::serve(normalize, app);
        Ok::<_, String>((ia, na, workers))
    })?;
    let (load_stop_tx, load_stop_rx) = tokio::sync::watch::channel(false);
    let load = runtime.spawn(crate::load::run(ingest_addr, options.rate, load_stop_rx));

    // The example config, its two service addresses pointed at the stack.
    let example = std::fs::read_to_string(&options.example)
        .map_err(|e| format!("{}: {e}", options.example.display()))?;
    let config = example
        .replace("http://127.0.0.1:4101", &format!("http://{ingest_addr}"))
        .replace("http://127.0.0.1:4102", &format!("http://{normalize_addr}"))
        .replace("http://127.0.0.1:9090", "http://127.0.0.1:9");
    std::fs::write(dir.join("gatekeeper.toml"), config).map_err(|e| e.to_string())?;
    let mut d = Driver {
        gatekeeper,
        dir: dir.clone(),
        env: vec![
            ("NATS_URL".into(), nats.url()),
            ("NATS_MONITOR_URL".into(), nats.monitor_url()),
            ("DATABASE_URL".into(), pg.url()),
            ("AA_MODE_FILE".into(), mode_file.display().to_string()),
            (
                "XDG_CACHE_HOME".into(),
                std::env::var("XDG_CACHE_HOME")
                    .unwrap_or_else(|_| dir.join("cache").display().to_string()),
            ),
        ],
        report: DemoReport::default(),
    };
    d.event(format!(
        "stack up: nats-server {} , PostgreSQL, ingest {ingest_addr}, normalize {normalize_addr}, {} readings/s, mode single",
        nats.url(),
        options.rate
    ));

    let result = (|| {
        for phase in ["phase-0", "phase-1", "phase-2"] {
            let code = d.apply(phase)?;
            if code != 0 {
                return Err(format!(
                    "apply {phase} exited {code}, expected 0 (go, done, verified)"
                ));
            }
        }
        d.event(format!(
            "mode file: {}",
            std::fs::read_to_string(&mode_file).unwrap_or_default()
        ));

        // The canary watched; the fault.
        d.event("gatekeeper watch --phase canary (every 1 s)");
        let mut watch = d
            .command(&["watch", "--phase", "canary", "--agent", "demo-watch"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("watch: {e}"))?;
        let outcome = (|| {
            poll("watch's first verdict", Duration::from_secs(30), || {
                Ok(d.ledger()?
                    .iter()
                    .any(|r| r["kind"] == "verdict" && r["agent"] == "demo-watch")
                    .then_some(()))
            })?;
            std::fs::write(&fault_file, "60").map_err(|e| e.to_string())?;
            d.event("fault injected: normalize fails 60 % of readings (to dlq.>)");
            let plan = poll("the rollback plan", Duration::from_secs(90), || {
                Ok(d.ledger()?
                    .into_iter()
                    .find(|r| r["kind"] == "plan" && r["agent"] == "demo-watch"))
            })?;
            Ok::<_, String>(plan)
        })();
        stop_child(&mut watch);
        let plan = outcome?;
        d.event(format!(
            "watch ran plan {}: {}",
            plan["plan"], plan["outcome"]
        ));
        d.report.plans.push(plan.clone());
        if plan["outcome"] != "done" {
            return Err(format!(
                "the rollback plan ended {}: {}",
                plan["outcome"], plan["detail"]
            ));
        }
        std::fs::write(&fault_file, "0").map_err(|e| e.to_string())?;
        d.event("fault cleared");
        let rolled_back_at = published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .log
            .len();
        poll(
            "a reading stored on the legacy stream after the rollback",
            Duration::from_secs(30),
            || {
                let p = published.lock().unwrap_or_else(|e| e.into_inner());
                Ok(p.log[rolled_back_at..]
                    .iter()
                    .any(|(_, s)| s == LEGACY)
                    .then_some(()))
            },
        )?;
        d.event(format!(
            "readings land on {LEGACY} again (mode file: {})",
            std::fs::read_to_string(&mode_file).unwrap_or_default()
        ));

        // Phase 3 must not go while the legacy stream is in use.
        let code = d.apply("phase-3")?;
        if code == 0 {
            return Err("apply phase-3 went ahead while the legacy stream is in use".into());
        }
        Ok(rolled_back_at)
    })();

    // Drain and count, whatever happened above.
    let _ = load_stop_tx.send(true);
    let accepted = runtime.block_on(load).unwrap_or(0);
    d.event(format!("load stopped after {accepted} readings"));
    let drained = poll("every queue drained", Duration::from_secs(60), || {
        let states = runtime.block_on(async {
            let mut v = Vec::new();
            for s in [LEGACY, CORE] {
                v.push(stream_state(&client, s).await);
            }
            v
        });
        Ok(states
            .iter()
            .all(|s| s.is_none_or(|(_, open)| open == 0))
            .then_some(()))
    });
    let _ = stop_tx.send(true);
    runtime.block_on(async {
        for w in workers {
            let _ = w.await;
        }
    });
    let p = published.lock().unwrap_or_else(|e| e.into_inner());
    d.report.published = p.ids.len();
    if let Ok(at) = &result {
        d.report.legacy_after_rollback = p.log[*at..].iter().filter(|(_, s)| s == LEGACY).count();
    }
    drop(p);
    d.report.rows = pg
        .psql("SELECT count(*) FROM hrv_data")
        .trim()
        .parse()
        .unwrap_or(0);
    d.report.dead_lettered = runtime
        .block_on(stream_state(&client, DLQ))
        .map_or(0, |(m, _)| m as usize);
    d.event(format!(
        "count: {} published = {} rows in hrv_data + {} in {DLQ}",
        d.report.published, d.report.rows, d.report.dead_lettered
    ));
    let ledger = d
        .gatekeeper(&["ledger"])
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    d.report.ledger = ledger.unwrap_or_default();
    add_ledger_events(&mut d.report);
    eprintln!("[demo] finished in {}s", started.elapsed().as_secs());
    let lost = d.report.rows + d.report.dead_lettered != d.report.published;
    let summary = format!(
        "{} published, {} rows + {} dead-lettered",
        d.report.published, d.report.rows, d.report.dead_lettered
    );
    *out = std::mem::take(&mut d.report);
    result?;
    drained?;
    if lost {
        return Err(format!("messages lost or doubled: {summary}"));
    }
    Ok(())
}

/// The ledger's records as timeline events (applies, steps, incidents,
/// plans, verdict changes), merged by time.
fn add_ledger_events(report: &mut DemoReport) {
    let mut last_verdict: std::collections::BTreeMap<String, String> = Default::default();
    for line in report.ledger.lines() {
        let Ok(r) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(at) = r["at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        else {
            continue;
        };
        let s = |k: &str| r[k].as_str().unwrap_or("").to_owned();
        let text = match s("kind").as_str() {
            "verdict" => {
                let (phase, verdict) = (s("phase"), s("verdict"));
                if last_verdict
                    .insert(phase.clone(), verdict.clone())
                    .as_deref()
                    == Some(verdict.as_str())
                {
                    continue;
                }
                format!("  verdict {phase}: {verdict}")
            }
            "step" => format!(
                "  {} step {} {}: {} — {}",
                s("plan"),
                r["step"],
                s("action"),
                s("outcome"),
                s("detail")
            ),
            "plan" => format!(
                "  plan {} ({}): {} — {}",
                s("plan"),
                s("trigger"),
                s("outcome"),
                s("detail")
            ),
            "apply" => format!("  apply {}: {} — {}", s("phase"), s("outcome"), s("detail")),
            "incident-opened" => format!("  incident {} opened: {}", s("incident"), s("summary")),
            "incident-closed" => format!("  incident {} closed", s("incident")),
            "alert" => format!("  alert: {}", s("message")),
            _ => continue,
        };
        report.timeline.push((at.with_timezone(&chrono::Utc), text));
    }
    report.timeline.sort_by_key(|(at, _)| *at);
}

/// The timeline as text: `hh:mm:ss.mmm  what`.
pub fn render_timeline(report: &DemoReport) -> String {
    let mut out = String::from("timeline:\n");
    for (at, what) in &report.timeline {
        out.push_str(&format!("{}  {what}\n", at.format("%H:%M:%S%.3f")));
    }
    out
}

/// The example config beside this crate.
pub fn default_example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../gatekeeper.toml")
}
