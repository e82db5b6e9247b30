//! The seeds' staging migration (seed 002), replayed on a real nats-server (2.9
//! and 2.15) and a real PostgreSQL, checked at every step with the example
//! config `examples/athlete-ally/gatekeeper.toml` through the built binary:
//!
//! 1. the legacy stream ATHLETE_ALLY_EVENTS holds `athlete-ally.>`, `vendor.>`,
//!    `sleep.*` and 55 messages, with its consumers;
//! 2. NATS refuses AA_CORE_HOT while the legacy stream holds its subjects;
//! 3. the legacy stream moves to `legacy.>`;
//! 4. AA_CORE_HOT, AA_VENDOR_HOT and AA_DLQ are created;
//! 5. the consumers are created on the new streams;
//! 6. the old consumer is drained and the test HRV row reaches the database.
//!
//! Each phase's verdict and every criterion's status is asserted at each step.
//! The only change to the example is an `e2e` profile appended to it that
//! shortens the traffic rate window to the 2 s the test samples (`--sample`).

use futures::StreamExt as _;
use gatekeeper_testsupport::{
    NatsServer, NatsVersion, Postgres, SEED_ACK_WAIT, SEED_MAX_ACK_PENDING, js_request,
    wait_for_async,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_gatekeeper");
const LEGACY: &str = "ATHLETE_ALLY_EVENTS";
const DAY_NS: u64 = 86_400_000_000_000;

struct Env<'a> {
    config: String,
    cache: &'a Path,
    nats: &'a NatsServer,
    pg: &'a Postgres,
}

/// `check PHASE` on the example with the e2e profile: (exit code, verdict,
/// criterion id → status).
/// The messages are returned too, for failure reports.
#[allow(clippy::type_complexity)]
fn check(
    env: &Env<'_>,
    phase: &str,
) -> (
    i32,
    String,
    BTreeMap<String, String>,
    BTreeMap<String, String>,
) {
    let o = Command::new(BIN)
        .args([
            "check",
            phase,
            "-c",
            &env.config,
            "-p",
            "e2e",
            "-o",
            "json",
            "--sample",
            "2s",
            "--interval",
            "400ms",
        ])
        .env("XDG_CACHE_HOME", env.cache)
        .env("NATS_URL", env.nats.url())
        .env("NATS_MONITOR_URL", env.nats.monitor_url())
        .env("DATABASE_URL", env.pg.url())
        .env_remove("KUBECONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run gatekeeper");
    let report: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{phase}: no JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    let mut statuses = BTreeMap::new();
    let mut messages = BTreeMap::new();
    for gate in report["gates"].as_array().unwrap() {
        assert!(gate["error"].is_null(), "{phase}: gate error: {gate}");
        for c in gate["criteria"].as_array().unwrap() {
            let (id, status) = (c["id"].as_str().unwrap(), c["status"].as_str().unwrap());
            // Every criterion is explained: a message, whatever its status.
            assert!(!c["message"].as_str().unwrap().is_empty(), "{phase}: {c}");
            statuses.insert(id.to_owned(), status.to_owned());
            messages.insert(id.to_owned(), c["message"].as_str().unwrap().to_owned());
        }
    }
    (
        o.status.code().unwrap(),
        report["verdict"].as_str().unwrap().to_owned(),
        statuses,
        messages,
    )
}

/// Asserts the verdict and the status of every criterion that is not a
/// ledger (people/history) criterion; those must all be unknown.
fn expect(env: &Env<'_>, step: &str, phase: &str, verdict: &str, machine: &[(&str, &str)]) {
    let (code, got, statuses, messages) = check(env, phase);
    let context = format!("{step}, {phase}: {statuses:?}");
    assert_eq!(got, verdict, "{context}");
    let want_code = match verdict {
        "go" => 0,
        "no-go" => 1,
        _ => 2,
    };
    assert_eq!(code, want_code, "{context}");
    for (id, status) in machine {
        assert_eq!(
            statuses.get(*id).map(String::as_str),
            Some(*status),
            "{context}: {id}: {:?}",
            messages.get(*id)
        );
    }
    let people: Vec<&String> = statuses
        .keys()
        .filter(|id| !machine.iter().any(|(m, _)| m == id))
        .collect();
    for id in people {
        assert_eq!(
            statuses[id], "unknown",
            "{context}: {id} is not a machine criterion, so only the ledger can decide it"
        );
    }
}

fn example_with_e2e_profile(dir: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/athlete-ally");
    let mut text = std::fs::read_to_string(root.join("gatekeeper.toml")).unwrap();
    text.push_str("\n[profiles.e2e.gates.traffic.params]\nwindow = \"2s\"\n");
    let path = dir.join("gatekeeper.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

async fn create_stream(c: &async_nats::Client, name: &str, subjects: &[&str], days: u64) -> Value {
    let reply = c
        .request(
            format!("$JS.API.STREAM.CREATE.{name}"),
            json!({"name": name, "subjects": subjects, "storage": "file", "num_replicas": 1,
                   "max_age": days * DAY_NS})
            .to_string()
            .into(),
        )
        .await
        .unwrap();
    serde_json::from_slice(&reply.payload).unwrap()
}

/// Seed 001's consumer settings, on any stream.
async fn create_consumer(c: &async_nats::Client, stream: &str, name: &str, filter: &str) {
    gatekeeper_testsupport::create_consumer(
        c,
        stream,
        name,
        filter,
        SEED_ACK_WAIT,
        SEED_MAX_ACK_PENDING,
    )
    .await;
}

async fn num_pending(c: &async_nats::Client, stream: &str, consumer: &str) -> u64 {
    let info = js_request(
        c,
        &format!("$JS.API.CONSUMER.INFO.{stream}.{consumer}"),
        json!({}),
    )
    .await;
    info["num_pending"].as_u64().unwrap() + info["num_ack_pending"].as_u64().unwrap()
}

/// One pull of up to 100 messages from a durable pull consumer, each acked.
async fn drain_once(c: &async_nats::Client, stream: &str, consumer: &str) {
    let inbox = c.new_inbox();
    let mut sub = c.subscribe(inbox.clone()).await.unwrap();
    c.publish_with_reply(
        format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"),
        inbox,
        json!({"batch": 100, "no_wait": true}).to_string().into(),
    )
    .await
    .unwrap();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(500), sub.next()).await {
        // A status message (404 no messages, 408 timeout) ends the batch.
        if msg.status.is_some() {
            break;
        }
        if let Some(reply) = msg.reply {
            c.publish(reply, "+ACK".into()).await.unwrap();
        }
    }
    c.flush().await.unwrap();
}

#[tokio::test]
async fn seed_002_staging_sequence_phase_by_phase() {
    let pg = Postgres::start();
    pg.psql(
        r#"CREATE TABLE hrv_data ("userId" text NOT NULL, date date, rmssd real, "lnRmssd" real,
           "createdAt" timestamptz NOT NULL DEFAULT now())"#,
    );
    for version in NatsVersion::ALL {
        pg.psql("DELETE FROM hrv_data");
        let nats = NatsServer::start(version);
        let dir = tempfile::tempdir().unwrap();
        let env = Env {
            config: example_with_e2e_profile(dir.path()),
            cache: dir.path(),
            nats: &nats,
            pg: &pg,
        };
        let c = async_nats::connect(nats.url()).await.unwrap();
        let step = |s: &str| format!("{version:?} {s}");

        // 1. The legacy topology: 55 messages, its two consumers.
        let created =
            create_stream(&c, LEGACY, &["athlete-ally.>", "vendor.>", "sleep.*"], 7).await;
        assert!(created.get("error").is_none(), "{created}");
        create_consumer(
            &c,
            LEGACY,
            "normalize-hrv-durable",
            "athlete-ally.hrv.raw-received",
        )
        .await;
        create_consumer(&c, LEGACY, "normalize-oura", "vendor.oura.>").await;
        for (subject, n) in [
            ("athlete-ally.hrv.raw-received", 45),
            ("vendor.oura.webhook", 5),
            ("sleep.summary", 5),
        ] {
            for i in 0..n {
                let ack = c
                    .request(subject, format!("{{\"n\":{i}}}").into())
                    .await
                    .unwrap();
                let ack: Value = serde_json::from_slice(&ack.payload).unwrap();
                assert_eq!(ack["stream"], LEGACY, "{ack}");
            }
        }
        let s1 = step("1 legacy only");
        expect(
            &env,
            &s1,
            "phase-0",
            "no-go",
            &[
                ("nats-cluster-healthy", "pass"),
                ("dlq-stream-ready", "fail"),
                ("traffic-low", "pass"),
            ],
        );
        expect(
            &env,
            &s1,
            "phase-2",
            "no-go",
            &[
                ("core-stream-ready", "fail"),
                ("hrv-consumer-ready", "fail"),
                ("legacy-consumer-drained", "fail"),
                ("hrv-flow-verified", "fail"),
                ("database-responsive", "pass"),
                ("subjects-no-overlap", "pass"),
                ("traffic-low", "pass"),
            ],
        );

        // 2. NATS refuses the new stream while the legacy one holds its subjects.
        let refused = create_stream(&c, "AA_CORE_HOT", &["athlete-ally.>", "sleep.*"], 2).await;
        let error = refused["error"]["description"].as_str().unwrap_or_default();
        assert!(error.contains("overlap"), "{version:?}: {refused}");

        // 3. The legacy stream moves to legacy.> (read-modify-write).
        let info = js_request(&c, &format!("$JS.API.STREAM.INFO.{LEGACY}"), json!({})).await;
        let mut config = info["config"].clone();
        config["subjects"] = json!(["legacy.>"]);
        js_request(&c, &format!("$JS.API.STREAM.UPDATE.{LEGACY}"), config).await;

        // 4. The three streams (seed 001: replicas 1 in staging).
        for (name, subjects, days) in [
            ("AA_CORE_HOT", vec!["athlete-ally.>", "sleep.*"], 2),
            ("AA_VENDOR_HOT", vec!["vendor.>"], 2),
            ("AA_DLQ", vec!["dlq.>"], 14),
        ] {
            let created = create_stream(&c, name, &subjects, days).await;
            assert!(created.get("error").is_none(), "{created}");
        }
        let s4 = step("4 streams created");
        expect(
            &env,
            &s4,
            "phase-0",
            "defer",
            &[
                ("nats-cluster-healthy", "pass"),
                ("dlq-stream-ready", "pass"),
                ("traffic-low", "pass"),
            ],
        );
        expect(
            &env,
            &s4,
            "phase-1",
            "no-go",
            &[
                ("vendor-stream-ready", "pass"),
                ("oura-consumer-ready", "fail"),
                ("legacy-oura-consumer-drained", "pass"),
                ("database-responsive", "pass"),
            ],
        );
        expect(
            &env,
            &s4,
            "phase-2",
            "no-go",
            &[
                ("core-stream-ready", "pass"),
                ("hrv-consumer-ready", "fail"),
                ("legacy-consumer-drained", "fail"),
                ("hrv-flow-verified", "fail"),
                ("database-responsive", "pass"),
                ("subjects-no-overlap", "pass"),
                ("traffic-low", "pass"),
            ],
        );

        // 5. The consumers on the new streams, as seed 001 specifies.
        create_consumer(
            &c,
            "AA_CORE_HOT",
            "normalize-hrv-durable",
            "athlete-ally.hrv.raw-received",
        )
        .await;
        create_consumer(&c, "AA_VENDOR_HOT", "normalize-oura", "vendor.oura.>").await;
        let s5 = step("5 consumers created");
        expect(
            &env,
            &s5,
            "phase-1",
            "defer",
            &[
                ("vendor-stream-ready", "pass"),
                ("oura-consumer-ready", "pass"),
                ("legacy-oura-consumer-drained", "pass"),
                ("database-responsive", "pass"),
            ],
        );
        expect(
            &env,
            &s5,
            "phase-2",
            "no-go",
            &[
                ("core-stream-ready", "pass"),
                ("hrv-consumer-ready", "pass"),
                ("legacy-consumer-drained", "fail"),
                ("hrv-flow-verified", "fail"),
                ("database-responsive", "pass"),
                ("subjects-no-overlap", "pass"),
                ("traffic-low", "pass"),
            ],
        );

        // 6. Drain the old consumer (fetch and ack all 45), and the test HRV
        // row (seed 002: rmssd 62 → ln_rmssd 4.127) reaches the database.
        wait_for_async(
            "the old consumer to drain",
            Duration::from_secs(20),
            || async {
                drain_once(&c, LEGACY, "normalize-hrv-durable").await;
                (num_pending(&c, LEGACY, "normalize-hrv-durable").await == 0).then_some(())
            },
        )
        .await;
        pg.psql(
            r#"INSERT INTO hrv_data ("userId", date, rmssd, "lnRmssd") VALUES ('staging-phase-b-test', '2025-10-02', 62, 4.127)"#,
        );
        let s6 = step("6 drained");
        expect(
            &env,
            &s6,
            "phase-2",
            "defer",
            &[
                ("core-stream-ready", "pass"),
                ("hrv-consumer-ready", "pass"),
                ("legacy-consumer-drained", "pass"),
                ("hrv-flow-verified", "pass"),
                ("database-responsive", "pass"),
                ("subjects-no-overlap", "pass"),
                ("traffic-low", "pass"),
            ],
        );
        // Nothing was lost: the legacy stream still holds its 55 (seed 002).
        let legacy = js_request(&c, &format!("$JS.API.STREAM.INFO.{LEGACY}"), json!({})).await;
        assert_eq!(legacy["state"]["messages"], 55, "{version:?}");
    }
}
