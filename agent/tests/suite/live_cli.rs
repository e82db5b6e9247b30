//! End-to-end with live collection: the built binary against a real
//! nats-server holding the seeds' streams.

use gatekeeper_testsupport::{NatsServer, NatsVersion, js_request};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_gatekeeper");

fn example_config() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/athlete-ally/topology.toml")
        .display()
        .to_string()
}

fn gatekeeper(args: &[&str], cache: &Path, nats_url: &str) -> Output {
    Command::new(BIN)
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .env("NATS_URL", nats_url)
        .env_remove("DATABASE_URL")
        .env_remove("KUBECONFIG")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run gatekeeper")
}

/// A temp dir holding `gatekeeper.toml` with `text`; the dir doubles as the compile cache.
fn config_file(text: impl AsRef<[u8]>) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gatekeeper.toml");
    std::fs::write(&config, text).unwrap();
    (dir, config)
}

/// The three streams of the seeds' target topology (seed 001/003).
async fn create_target_streams(url: &str) {
    let c = async_nats::connect(url).await.unwrap();
    let day_ns: u64 = 86_400_000_000_000;
    for (name, subjects, days) in [
        ("AA_DLQ", vec!["dlq.>"], 14),
        ("AA_VENDOR_HOT", vec!["vendor.>"], 2),
        ("AA_CORE_HOT", vec!["athlete-ally.>", "sleep.*"], 2),
    ] {
        js_request(
            &c,
            &format!("$JS.API.STREAM.CREATE.{name}"),
            json!({"name": name, "subjects": subjects, "storage": "file", "num_replicas": 1,
                   "max_age": days * day_ns}),
        )
        .await;
    }
}

#[tokio::test]
async fn check_collects_live_records_and_replays() {
    for version in NatsVersion::ALL {
        let server = NatsServer::start(version);
        create_target_streams(&server.url()).await;
        let cache = tempfile::tempdir().unwrap();
        let record = tempfile::tempdir().unwrap();
        let config = example_config();
        let record_dir = record.path().join("snapshots");
        let live = gatekeeper(
            &[
                "check",
                "phase-2",
                "-c",
                &config,
                "--record",
                record_dir.to_str().unwrap(),
                "-o",
                "json",
            ],
            cache.path(),
            &server.url(),
        );
        let stdout = String::from_utf8_lossy(&live.stdout).to_string();
        assert_eq!(
            live.status.code(),
            Some(0),
            "{version:?}: {stdout}\n{}",
            String::from_utf8_lossy(&live.stderr)
        );
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["verdict"], "go");

        // The recorded snapshot replays to the same report.
        let recorded: Vec<_> = std::fs::read_dir(&record_dir).unwrap().flatten().collect();
        assert_eq!(recorded.len(), 1);
        let path = recorded[0].path();
        assert!(
            path.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .ends_with("-phase-2.json")
        );
        let replay = gatekeeper(
            &[
                "check",
                "phase-2",
                "-c",
                &config,
                "--snapshot",
                path.to_str().unwrap(),
                "-o",
                "json",
            ],
            cache.path(),
            "nats://127.0.0.1:1",
        );
        assert_eq!(replay.status.code(), Some(0));
        assert_eq!(
            String::from_utf8_lossy(&replay.stdout),
            stdout,
            "replay differs from the live check"
        );

        // `snapshot --output` writes what `check --snapshot` reads.
        let out = record.path().join("snap.json");
        let snap = gatekeeper(
            &["snapshot", "-c", &config, "-o", out.to_str().unwrap()],
            cache.path(),
            &server.url(),
        );
        assert_eq!(snap.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&snap.stderr).contains("nats: ok ("));
        let value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(value["nats"]["status"], "ok");
        assert_eq!(
            value["nats"]["facts"]["streams"].as_array().unwrap().len(),
            3
        );
    }
}

#[test]
fn snapshot_exits_0_when_a_source_is_down_and_3_on_a_bad_config() {
    let cache = tempfile::tempdir().unwrap();
    let port = gatekeeper_testsupport::free_port();
    let url = format!("nats://app:hunter2@127.0.0.1:{port}");
    let down = gatekeeper(&["snapshot", "-c", &example_config()], cache.path(), &url);
    assert_eq!(down.status.code(), Some(0));
    let value: serde_json::Value = serde_json::from_slice(&down.stdout).unwrap();
    assert_eq!(value["nats"]["status"], "unavailable");
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(stderr.contains("nats: unavailable"), "{stderr}");
    assert!(
        !stderr.contains("hunter2") && !String::from_utf8_lossy(&down.stdout).contains("hunter2")
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[sources.postgres]\nurl = \"mysql://x\"\n").unwrap();
    let o = gatekeeper(
        &["snapshot", "-c", bad.to_str().unwrap()],
        cache.path(),
        &url,
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("sources.postgres.url: must be a postgres:// or postgresql:// URL")
    );
}

#[test]
fn passwords_never_reach_logs_or_output_with_debug_logging() {
    use gatekeeper_testsupport::{NatsOptions, Postgres};
    let nats = NatsServer::start_with(
        NatsVersion::V2_15,
        &NatsOptions {
            user_password: Some(("app".into(), "nats-pa55word".into())),
            ..NatsOptions::default()
        },
    );
    let pg = Postgres::start();
    let (dir, config) = config_file(format!(
        "[sources.postgres]\nurl = \"{}\"\n[[sources.postgres.queries]]\nname = \"one\"\nsql = \"SELECT 1\"\n",
        pg.url()
    ));
    let nats_url = format!("nats://app:nats-pa55word@127.0.0.1:{}", nats.port);
    let o = Command::new(BIN)
        .args(["snapshot", "-c", config.to_str().unwrap()])
        .env("XDG_CACHE_HOME", dir.path())
        .env("NATS_URL", &nats_url)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(value["nats"]["status"], "ok", "{stderr}");
    assert_eq!(value["postgres"]["status"], "ok", "{stderr}");
    assert_eq!(value["postgres"]["facts"]["queries"][0]["value"], 1.0);
    assert!(stderr.len() > 1000, "trace logging produced output");
    for secret in ["nats-pa55word", pg.password.as_str()] {
        assert!(!stdout.contains(secret), "secret in stdout");
        assert!(!stderr.contains(secret), "secret in stderr");
    }
}

#[tokio::test]
async fn check_wait_polls_until_go_and_gives_up_at_timeout() {
    use std::io::BufRead as _;
    use std::process::Stdio;
    for version in NatsVersion::ALL {
        let server = NatsServer::start(version);
        let cache = tempfile::tempdir().unwrap();
        let record = tempfile::tempdir().unwrap();
        let config = example_config();

        // Nothing to wait for: gives up at --timeout with the last verdict.
        let gave_up = gatekeeper(
            &[
                "check",
                "phase-0",
                "-c",
                &config,
                "--wait",
                "--interval",
                "200ms",
                "--timeout",
                "1s",
            ],
            cache.path(),
            &server.url(),
        );
        assert_eq!(gave_up.status.code(), Some(1), "{version:?}");
        let stderr = String::from_utf8_lossy(&gave_up.stderr);
        assert!(
            stderr.contains("phase-0 no-go after 1 round (")
                && stderr.contains("s): dlq-stream-ready: "),
            "{stderr}"
        );
        assert!(stderr.contains("phase-0: still no-go after"), "{stderr}");
        assert!(stderr.contains("gave up at --timeout 1s"), "{stderr}");

        // AA_DLQ appears while it waits: go, exit 0.
        let mut child = Command::new(BIN)
            .args([
                "check",
                "phase-0",
                "-c",
                &config,
                "--wait",
                "--interval",
                "100ms",
                "--timeout",
                "60s",
            ])
            .args(["-o", "json", "--record", record.path().to_str().unwrap()])
            .env("XDG_CACHE_HOME", cache.path())
            .env("NATS_URL", server.url())
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let first = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("a progress line");
        assert!(first.starts_with("phase-0 no-go after 1 round"), "{first}");
        create_target_streams(&server.url()).await;
        let status = gatekeeper_testsupport::wait_for(
            "the wait to end",
            std::time::Duration::from_secs(30),
            || child.try_wait().unwrap(),
        );
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
        assert_eq!(status.code(), Some(0), "{version:?}: {stdout}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["verdict"], "go");
        // The recording holds the rounds before the decision, for replay.
        let file = std::fs::read_dir(record.path())
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .path();
        let recorded: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert!(recorded["snapshots"].as_array().unwrap().len() >= 2);
        let replay = gatekeeper(
            &[
                "check",
                "phase-0",
                "-c",
                &config,
                "--snapshot",
                file.to_str().unwrap(),
                "-o",
                "json",
            ],
            cache.path(),
            "nats://127.0.0.1:1",
        );
        assert_eq!(String::from_utf8_lossy(&replay.stdout), stdout);
    }
}

#[test]
fn builtin_health_gates_decide_on_real_servers() {
    use gatekeeper_testsupport::Postgres;
    let nats = NatsServer::start(NatsVersion::V2_9);
    let mut pg = Postgres::start();
    let (dir, config) = config_file(format!(
        r#"
[sources.nats]
url = "{nats}"
monitor_url = "{monitor}"
[sources.postgres]
url = "{pg}"

[gates.nats]
builtin = "nats-cluster-healthy"
[gates.db]
builtin = "database-responsive"
params = {{ max_ping_ms = 1000 }}

[phases.ready]
gates = ["nats", "db"]
"#,
        nats = nats.url(),
        monitor = nats.monitor_url(),
        pg = pg.url()
    ));
    let run = || {
        let o = gatekeeper(
            &[
                "check",
                "ready",
                "-c",
                config.to_str().unwrap(),
                "-o",
                "json",
            ],
            dir.path(),
            &nats.url(),
        );
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (o.status.code(), report)
    };
    let (code, report) = run();
    assert_eq!(code, Some(0), "{report:#}");
    let message = |report: &serde_json::Value, gate: usize| {
        report["gates"][gate]["criteria"][0]["message"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(
        message(&report, 0).starts_with("healthz ok, JetStream enabled, storage "),
        "{report:#}"
    );
    assert!(message(&report, 1).contains("connections "), "{report:#}");

    // The database goes away: that criterion is unknown, the phase defers.
    pg.stop();
    let (code, report) = run();
    assert_eq!(code, Some(2), "{report:#}");
    assert_eq!(report["gates"][1]["criteria"][0]["status"], "unknown");
    assert!(message(&report, 1).starts_with(
        "postgres source unavailable: cannot connect to postgresql://gatekeeper:***@"
    ));
}

/// The gate predicts what the server does: both refuse AA_CORE_HOT while the
/// legacy stream still holds `athlete-ally.>` (seed 002), both accept it after.
#[tokio::test]
async fn subject_overlap_predicts_what_the_server_refuses() {
    for version in NatsVersion::ALL {
        let server = NatsServer::start(version);
        let c = async_nats::connect(server.url()).await.unwrap();
        js_request(
            &c,
            "$JS.API.STREAM.CREATE.ATHLETE_ALLY_EVENTS",
            json!({"name": "ATHLETE_ALLY_EVENTS", "subjects": ["athlete-ally.>", "vendor.>", "sleep.*"]}),
        )
        .await;
        let (dir, config) = config_file(
            r#"
[sources.nats]
url = "nats://placeholder:4222"
[gates.overlap]
builtin = "subject-overlap"
params = { plan = [{ stream = "AA_CORE_HOT", subjects = ["athlete-ally.>", "sleep.*"] }] }
[phases.create-core]
gates = ["overlap"]
"#,
        );
        let check = || {
            gatekeeper(
                &["check", "create-core", "-c", config.to_str().unwrap()],
                dir.path(),
                &server.url(),
            )
        };
        let create_core = || async {
            let body = json!({"name": "AA_CORE_HOT", "subjects": ["athlete-ally.>", "sleep.*"]});
            let reply = c
                .request("$JS.API.STREAM.CREATE.AA_CORE_HOT", body.to_string().into())
                .await
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
            v.get("error").map(|e| e.to_string())
        };

        let o = check();
        assert_eq!(o.status.code(), Some(1), "{version:?}");
        assert!(String::from_utf8_lossy(&o.stdout).contains(
            "ATHLETE_ALLY_EVENTS `athlete-ally.>` overlaps AA_CORE_HOT `athlete-ally.>`"
        ));
        let refused = create_core()
            .await
            .expect("the server refuses the overlapping stream");
        assert!(refused.contains("overlap"), "{version:?}: {refused}");

        // Move legacy to legacy.> (seed 002), then both agree it is fine.
        js_request(
            &c,
            "$JS.API.STREAM.UPDATE.ATHLETE_ALLY_EVENTS",
            json!({"name": "ATHLETE_ALLY_EVENTS", "subjects": ["legacy.>"]}),
        )
        .await;
        assert_eq!(check().status.code(), Some(0), "{version:?}");
        assert_eq!(create_core().await, None, "{version:?}");
    }
}

/// Seed 003's consumer, created on a real server, passes `consumer-config`
/// on both versions (2.9 reports `filter_subject`, 2.10+ may add `filter_subjects`),
/// and a consumer that is not there fails as absent.
#[tokio::test]
async fn consumer_config_on_real_consumers() {
    for version in NatsVersion::ALL {
        let server = NatsServer::start(version);
        create_target_streams(&server.url()).await;
        let c = async_nats::connect(server.url()).await.unwrap();
        gatekeeper_testsupport::create_consumer(
            &c,
            "AA_CORE_HOT",
            "normalize-hrv-durable",
            "athlete-ally.hrv.raw-received",
            gatekeeper_testsupport::SEED_ACK_WAIT,
            gatekeeper_testsupport::SEED_MAX_ACK_PENDING,
        )
        .await;
        let (dir, config) = config_file(
            r#"
[sources.nats]
url = "nats://placeholder:4222"
[gates.hrv-consumer]
builtin = "consumer-config"
[[gates.hrv-consumer.params.consumers]]
stream = "AA_CORE_HOT"
name = "normalize-hrv-durable"
id = "hrv-consumer-ready"
filter_subjects = ["athlete-ally.hrv.raw-received"]
ack_policy = "explicit"
max_deliver = 5
ack_wait = "60s"
max_ack_pending = 1000
durable = true
[gates.vendor-consumer]
builtin = "consumer-config"
params = { consumers = [{ stream = "AA_VENDOR_HOT", name = "vendor-durable" }] }
[phases.ready]
gates = ["hrv-consumer"]
[phases.vendor]
gates = ["vendor-consumer"]
"#,
        );
        let o = gatekeeper(
            &["check", "ready", "-c", config.to_str().unwrap()],
            dir.path(),
            &server.url(),
        );
        assert_eq!(
            o.status.code(),
            Some(0),
            "{version:?}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        let o = gatekeeper(
            &["check", "vendor", "-c", config.to_str().unwrap()],
            dir.path(),
            &server.url(),
        );
        assert_eq!(o.status.code(), Some(1), "{version:?}");
        assert!(
            String::from_utf8_lossy(&o.stdout)
                .contains("consumer AA_VENDOR_HOT/vendor-durable does not exist")
        );
    }
}

/// `check --wait` samples history itself, so a rate-based gate that defers on
/// one snapshot decides once the rounds cover its window.
#[test]
fn wait_rounds_give_traffic_window_its_history() {
    let server = NatsServer::start(NatsVersion::V2_15);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(create_target_streams(&server.url()));
    let (dir, config) = config_file(
        r#"
[sources.nats]
url = "nats://placeholder:4222"
[gates.traffic]
builtin = "traffic-window"
params = { streams = ["AA_CORE_HOT"], window = "1s", weekdays_only = false }
[phases.quiet]
gates = ["traffic"]
"#,
    );
    let c = config.to_str().unwrap();
    let once = gatekeeper(&["check", "quiet", "-c", c], dir.path(), &server.url());
    assert_eq!(once.status.code(), Some(2), "one snapshot has no rate");
    assert!(String::from_utf8_lossy(&once.stdout).contains("message rate: need 1s of history"));
    let waited = gatekeeper(
        &[
            "check",
            "quiet",
            "-c",
            c,
            "--wait",
            "--interval",
            "200ms",
            "--timeout",
            "30s",
        ],
        dir.path(),
        &server.url(),
    );
    let stdout = String::from_utf8_lossy(&waited.stdout);
    assert_eq!(waited.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("0.0 msg/min over 1s"), "{stdout}");
    assert!(String::from_utf8_lossy(&waited.stderr).contains("quiet defer after 1 round"));
}
