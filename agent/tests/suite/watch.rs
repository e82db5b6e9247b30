//! `gatekeeper watch` end to end: the built binary against a real nats-server
//! (2.9 and 2.15) and PostgreSQL, and the fake Kubernetes API server (no real
//! API server can run here). A DLQ spike is published to the real AA_DLQ.

use gatekeeper_testsupport::{
    FakeKube, NatsServer, NatsVersion, Postgres, WebhookSink, free_port, js_request, wait_for_async,
};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_gatekeeper");
const NS: &str = "athlete-ally";
const INTERVAL_MS: i64 = 1000;
const HOLD_MS: i64 = 3000;
const CONFIGMAP_PATH: &str = "/api/v1/namespaces/athlete-ally/configmaps/event-bus-config";
const DEPLOYMENTS_PATH: &str = "/apis/apps/v1/namespaces/athlete-ally/deployments/";

/// One test's world: servers, the fake API server, a config file.
struct World {
    dir: tempfile::TempDir,
    nats: NatsServer,
    pg: Postgres,
    kube: FakeKube,
    hook: WebhookSink,
    config: PathBuf,
}

impl World {
    async fn start(version: NatsVersion, ledger: &str, wait: &str) -> World {
        World::start_with(version, CONFIG, ledger, wait).await
    }

    /// A world with another config (the same placeholders are filled in).
    async fn start_with(version: NatsVersion, template: &str, ledger: &str, wait: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let nats = NatsServer::start(version);
        let pg = Postgres::start();
        let kube = FakeKube::start();
        seed_kube(&kube);
        let kubeconfig = kube.kubeconfig(dir.path(), NS);
        let hook = WebhookSink::start();
        create_streams(&nats.url()).await;
        let config = dir.path().join("gatekeeper.toml");
        let text = template
            .replace("TEST_GATES", env!("GATEKEEPER_TEST_GATES_DIR"))
            .replace("DIR", &dir.path().display().to_string())
            .replace("NATS_URL", &nats.url())
            .replace("PG_URL", &pg.url())
            .replace("KUBECONFIG", &kubeconfig.display().to_string())
            .replace("LEDGER", ledger)
            .replace("WAIT", wait)
            .replace(
                "OUTFILE",
                &dir.path().join("exec.json").display().to_string(),
            )
            .replace("HOOK", &hook.url());
        std::fs::write(&config, text).unwrap();
        World {
            dir,
            nats,
            pg,
            kube,
            hook,
            config,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .arg("-c")
            .arg(&self.config)
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            .env_remove("NATS_URL")
            .env_remove("DATABASE_URL")
            .env_remove("KUBECONFIG")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1");
        c
    }

    /// Starts `gatekeeper watch` (JSON logs into the temp dir); killed on drop.
    fn watch(&self, agent: &str, extra: &[&str]) -> Agent {
        let port = free_port();
        let log = self.dir.path().join(format!("{agent}.log"));
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec![
            "--log-format",
            "json",
            "watch",
            "--agent",
            agent,
            "--listen",
            &listen,
        ];
        args.extend(extra);
        let child = self
            .command(&args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start gatekeeper watch");
        Agent {
            child: std::sync::Mutex::new(child),
            port,
            log,
            name: agent.to_owned(),
        }
    }

    /// The ledger's records (`gatekeeper ledger`), optionally of one kind.
    fn ledger(&self, kind: &str) -> Vec<Value> {
        let out = self.command(&["ledger", "--kind", kind]).output().unwrap();
        assert!(
            out.status.success(),
            "gatekeeper ledger: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    async fn wait_for_plan(&self, agents: &[&Agent]) -> Value {
        wait_for_async(
            "a plan record in the ledger",
            Duration::from_secs(40),
            || async {
                for a in agents {
                    a.assert_running();
                }
                self.ledger("plan").into_iter().next()
            },
        )
        .await
    }

    /// The step records are exactly these (action, outcome), in order.
    fn assert_steps(&self, expected: &[(&str, &str)], context: &str) {
        let steps = self.ledger("step");
        let got: Vec<(&str, &str)> = steps
            .iter()
            .map(|s| {
                (
                    s["action"].as_str().unwrap(),
                    s["outcome"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, expected, "{context}: {steps:?}");
    }

    fn patches(&self, path_contains: &str) -> Vec<Value> {
        self.kube
            .patches()
            .into_iter()
            .filter(|(p, _)| p.contains(path_contains))
            .map(|(_, b)| b)
            .collect()
    }

    async fn stream_config(&self, name: &str) -> Value {
        let c = async_nats::connect(self.nats.url()).await.unwrap();
        js_request(&c, &format!("$JS.API.STREAM.INFO.{name}"), json!({})).await["config"].clone()
    }
}

struct Agent {
    child: std::sync::Mutex<Child>,
    port: u16,
    log: PathBuf,
    name: String,
}

impl Agent {
    fn assert_running(&self) {
        if let Some(status) = self.child.lock().unwrap().try_wait().unwrap() {
            panic!(
                "agent {} exited ({status}):\n{}",
                self.name,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }

    async fn metric(&self, name: &str) -> Option<f64> {
        // Err: already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", self.port))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Waits until `n` more rounds have ended.
    async fn rounds(&self, n: f64) {
        let start = wait_for_async("the agent's /metrics", Duration::from_secs(30), || {
            self.metric("gatekeeper_rounds_total")
        })
        .await;
        wait_for_async(
            &format!("{n} more rounds"),
            Duration::from_secs(30),
            || async {
                self.metric("gatekeeper_rounds_total")
                    .await
                    .filter(|r| *r >= start + n)
            },
        )
        .await;
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Publishes to the DLQ subject every 50 ms (1200/min, far above 10/min).
fn spike(url: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let c = async_nats::connect(url).await.unwrap();
        loop {
            if c.publish("dlq.normalize.hrv", "failed".into())
                .await
                .is_err()
            {
                return;
            }
            let _ = c.flush().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

const CONFIG: &str = r#"
[sources.nats]
url = "NATS_URL"

[sources.postgres]
url = "PG_URL"
[[sources.postgres.queries]]
name = "hrv-rows"
sql = "select 5"

[sources.kubernetes]
kubeconfig = "KUBECONFIG"
namespaces = ["athlete-ally"]
deployments = "app.kubernetes.io/part-of=athlete-ally"

[gates.triggers]
builtin = "signals"
[[gates.triggers.params.signals]]
id = "dlq-spike"
title = "DLQ message spike (> 10 messages/minute sustained)"
measure = { kind = "stream-publish-rate", streams = ["AA_DLQ"], window = "2s" }
when = "> 10"
for = "3s"
trigger = "automatic"
[[gates.triggers.params.signals]]
id = "db-inserts-stopped"
title = "Database inserts = 0"
measure = { kind = "query", name = "hrv-rows" }
when = "== 0"
trigger = "automatic"
[[gates.triggers.params.signals]]
id = "dlq-volume"
title = "Unexpected DLQ volume (> 30 messages)"
measure = { kind = "stream-messages", stream = "AA_DLQ" }
when = "> 30"
trigger = "manual"

[gates.legacy-stream]
builtin = "stream-topology"
[[gates.legacy-stream.params.streams]]
name = "ATHLETE_ALLY_EVENTS"

[phases.canary]
gates = ["triggers"]
[phases.phase-2]
gates = ["legacy-stream"]

[ledger]
LEDGER

[watch]
interval = "1s"
veto = ["legacy-stream"]

[watch.plans.rollback-to-single]
on = ["triggers/dlq-spike"]
[[watch.plans.rollback-to-single.steps]]
action = "move-subjects"
subjects = ["athlete-ally.>", "sleep.*", "vendor.>"]
from = ["AA_CORE_HOT", "AA_VENDOR_HOT"]
to = "ATHLETE_ALLY_EVENTS"
[[watch.plans.rollback-to-single.steps]]
action = "patch-config-map"
name = "event-bus-config"
data = { EVENT_STREAM_MODE = "single" }
[[watch.plans.rollback-to-single.steps]]
action = "restart-deployments"
names = ["normalize-service", "ingest-service"]
wait = "WAIT"
[[watch.plans.rollback-to-single.steps]]
action = "exec"
command = ["/bin/sh", "-c", "printf '%s' \"$GATEKEEPER_VERDICT\" > 'OUTFILE'"]
[[watch.plans.rollback-to-single.steps]]
action = "webhook"
url = "HOOK"
"#;

/// After phase 2 of seed 004: the legacy stream kept only `legacy.>`.
async fn create_streams(url: &str) {
    let c = async_nats::connect(url).await.unwrap();
    let hour_ns: u64 = 3_600_000_000_000;
    for (name, subjects, extra) in [
        (
            "ATHLETE_ALLY_EVENTS",
            vec!["legacy.>"],
            json!({"max_age": 24 * hour_ns, "max_msgs": 1_000_000, "description": "legacy single stream"}),
        ),
        (
            "AA_CORE_HOT",
            vec!["athlete-ally.>", "sleep.*"],
            json!({"max_age": 48 * hour_ns}),
        ),
        (
            "AA_VENDOR_HOT",
            vec!["vendor.>"],
            json!({"max_age": 48 * hour_ns}),
        ),
        (
            "AA_DLQ",
            vec!["dlq.>"],
            json!({"max_age": 14 * 24 * hour_ns}),
        ),
    ] {
        let mut config =
            json!({"name": name, "subjects": subjects, "storage": "file", "num_replicas": 1});
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        js_request(&c, &format!("$JS.API.STREAM.CREATE.{name}"), config).await;
    }
}

fn seed_kube(kube: &FakeKube) {
    for name in ["normalize-service", "ingest-service"] {
        kube.add_deployment(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": NS, "generation": 3,
                             "labels": {"app.kubernetes.io/part-of": "athlete-ally"}},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}}}},
                "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2,
                           "readyReplicas": 2, "availableReplicas": 2}
            }))
            .unwrap(),
        );
    }
    kube.add_config_map(
        serde_json::from_value(json!({
            "metadata": {"name": "event-bus-config", "namespace": NS},
            "data": {"EVENT_STREAM_MODE": "multi", "NATS_URL": "nats://nats:4222"}
        }))
        .unwrap(),
    );
}

fn subjects(config: &Value) -> Vec<String> {
    config["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn millis(ts: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(ts.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

#[tokio::test]
async fn dlq_spike_rolls_back_exactly_once_within_interval_plus_1s() {
    for version in NatsVersion::ALL {
        let world = World::start(version, "", "10s").await;
        let agent = world.watch("agent-a", &[]);
        agent.rounds(2.0).await;
        assert!(
            world.kube.patches().is_empty(),
            "{version:?}: nothing to do before the spike"
        );
        let publisher = spike(world.nats.url());
        let plan = world.wait_for_plan(&[&agent]).await;
        assert_eq!(plan["outcome"], "done", "{version:?}: {plan}");
        assert_eq!(plan["plan"], "rollback-to-single");
        assert_eq!(plan["trigger"], "triggers/dlq-spike");
        assert_eq!(plan["agent"], "agent-a");

        // The spike goes on: more rounds, still exactly one run.
        agent.rounds(4.0).await;
        publisher.abort();
        assert_eq!(world.ledger("plan").len(), 1, "{version:?}: one plan run");
        assert_eq!(
            world.patches(CONFIGMAP_PATH),
            vec![json!({"data": {"EVENT_STREAM_MODE": "single"}})]
        );
        for name in ["normalize-service", "ingest-service"] {
            let patches = world.patches(&format!("{DEPLOYMENTS_PATH}{name}"));
            assert_eq!(
                patches.len(),
                1,
                "{version:?}: {name} restarted once: {patches:?}"
            );
            let stamp = &patches[0]["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"];
            assert!(stamp.as_str().is_some_and(|s| s.ends_with('Z')), "{stamp}");
            let d = world.kube.deployment(NS, name).unwrap();
            assert_eq!(
                d.metadata.generation,
                Some(4),
                "a spec change is a new generation"
            );
        }
        let cm = world
            .kube
            .config_map(NS, "event-bus-config")
            .unwrap()
            .data
            .unwrap();
        assert_eq!(cm["EVENT_STREAM_MODE"], "single");
        assert_eq!(cm["NATS_URL"], "nats://nats:4222", "other keys untouched");

        // Legacy subjects restored on the real server; nothing else reset.
        let legacy = world.stream_config("ATHLETE_ALLY_EVENTS").await;
        assert_eq!(
            subjects(&legacy),
            ["legacy.>", "athlete-ally.>", "sleep.*", "vendor.>"]
        );
        assert_eq!(legacy["max_age"], json!(24 * 3_600_000_000_000u64));
        assert_eq!(legacy["max_msgs"], json!(1_000_000));
        assert_eq!(legacy["description"], "legacy single stream");
        for (name, moved) in [
            ("AA_CORE_HOT", "athlete-ally.>"),
            ("AA_VENDOR_HOT", "vendor.>"),
        ] {
            let s = subjects(&world.stream_config(name).await);
            assert!(
                !s.contains(&moved.to_owned()),
                "{version:?}: {name} still has {moved}: {s:?}"
            );
        }

        // Every step recorded, in order, done.
        let steps = world.ledger("step");
        world.assert_steps(
            &[
                ("move-subjects", "done"),
                ("patch-config-map", "done"),
                ("restart-deployments", "done"),
                ("exec", "done"),
                ("webhook", "done"),
            ],
            &format!("{version:?}"),
        );

        // exec and webhook got the verdict.
        let verdict: Value = serde_json::from_str(
            &std::fs::read_to_string(world.dir.path().join("exec.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(verdict["trigger"]["id"], "dlq-spike");
        assert_eq!(verdict["gate"], "triggers");
        assert_eq!(verdict["plan"], "rollback-to-single");
        assert_eq!(verdict["incident"], plan["incident"]);
        let hooks = world.hook.bodies();
        assert_eq!(hooks.len(), 1);
        assert_eq!(hooks[0]["trigger"]["id"], "dlq-spike");

        // Detect-to-action: the first step started within interval + 1 s of the hold's end.
        let hold_end = millis(&verdict["trigger"]["since"]) + HOLD_MS;
        let latency = millis(&steps[0]["at"]) - hold_end;
        assert!(
            (0..=INTERVAL_MS + 1000).contains(&latency),
            "{version:?}: first step {latency} ms after the hold ended"
        );

        // The incident, the manual trigger's alert and phase verdicts are facts now.
        let opened = world.ledger("incident-opened");
        assert_eq!(opened.len(), 1);
        assert_eq!(opened[0]["incident"], plan["incident"]);
        let alerts = world.ledger("alert");
        assert!(
            alerts.iter().any(|a| a["trigger"] == "triggers/dlq-volume"
                && a["message"].as_str().unwrap().contains("(the gate proposes manual) (no plan in [watch.plans] names it: a person decides)")),
            "{version:?}: {alerts:?}"
        );
        assert!(
            !alerts.iter().any(|a| a["trigger"] == "triggers/dlq-spike"),
            "an automatic trigger with a plan does not alert: {alerts:?}"
        );
        let verdicts = world.ledger("verdict");
        assert!(
            verdicts
                .iter()
                .any(|v| v["phase"] == "phase-2" && v["verdict"] == "go"),
            "{verdicts:?}"
        );
        assert!(
            verdicts
                .iter()
                .any(|v| v["phase"] == "canary" && v["verdict"] == "no-go"),
            "{verdicts:?}"
        );
        // Each verdict names the gates that decided it: digest and signer.
        let canary = verdicts.iter().find(|v| v["phase"] == "canary").unwrap();
        let triggers = canary["gates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == "triggers")
            .unwrap_or_else(|| panic!("{canary}"));
        assert_eq!(
            triggers["sha256"].as_str().map(str::len),
            Some(64),
            "{canary}"
        );
        assert_eq!(triggers["signer"], "built-in", "{canary}");
        assert_eq!(agent.metric("gatekeeper_lease_held").await, Some(1.0));
        assert_eq!(agent.metric("gatekeeper_incident_open").await, Some(1.0));
    }
}

#[tokio::test]
async fn two_agents_one_action() {
    let world = World::start(NatsVersion::V2_15, "", "10s").await;
    let a = world.watch("agent-a", &[]);
    a.rounds(1.0).await;
    let b = world.watch("agent-b", &[]);
    b.rounds(2.0).await;
    let held: Vec<Option<f64>> = vec![
        a.metric("gatekeeper_lease_held").await,
        b.metric("gatekeeper_lease_held").await,
    ];
    assert_eq!(
        held,
        [Some(1.0), Some(0.0)],
        "the first agent holds the lease"
    );
    let publisher = spike(world.nats.url());
    let plan = world.wait_for_plan(&[&a, &b]).await;
    assert_eq!(plan["agent"], "agent-a");
    b.rounds(4.0).await;
    publisher.abort();
    assert_eq!(world.ledger("plan").len(), 1);
    assert_eq!(world.patches(CONFIGMAP_PATH).len(), 1);
    assert_eq!(world.patches(DEPLOYMENTS_PATH).len(), 2);
    assert_eq!(world.hook.bodies().len(), 1);
    assert!(world.ledger("step").iter().all(|s| s["agent"] == "agent-a"));
    assert!(
        world
            .ledger("incident-opened")
            .iter()
            .all(|s| s["agent"] == "agent-a")
    );

    // The holder goes away: the standby takes over after the TTL and adopts
    // the open incident, so the plan does not run a second time.
    drop(a);
    wait_for_async(
        "agent-b to take the lease",
        Duration::from_secs(20),
        || async {
            b.metric("gatekeeper_lease_held")
                .await
                .filter(|v| *v == 1.0)
        },
    )
    .await;
    let publisher = spike(world.nats.url());
    b.rounds(3.0).await;
    publisher.abort();
    assert_eq!(
        world.ledger("plan").len(),
        1,
        "the adopted incident's plan ran already"
    );
    assert_eq!(world.patches(CONFIGMAP_PATH).len(), 1);
}

/// Also `watch.attest`: each change of a recorded verdict is an in-toto
/// statement with its recording, which `verify-attestation` replays to the
/// identical report, and which names the lease epoch it was decided under.
#[tokio::test]
async fn dry_run_records_and_changes_nothing() {
    let world = World::start_with(
        NatsVersion::V2_9,
        &CONFIG.replace(
            "interval = \"1s\"\n",
            "interval = \"1s\"\nattest = \"attest\"\n",
        ),
        "",
        "10s",
    )
    .await;
    let agent = world.watch("agent-a", &["--dry-run"]);
    let publisher = spike(world.nats.url());
    let plan = world.wait_for_plan(&[&agent]).await;
    publisher.abort();
    assert_eq!(plan["outcome"], "dry-run");
    let steps = world.ledger("step");
    assert_eq!(steps.len(), 5);
    assert!(
        steps.iter().all(|s| s["outcome"] == "would-run"),
        "{steps:?}"
    );
    assert_eq!(
        steps[0]["detail"],
        "remove athlete-ally.>, sleep.*, vendor.> from AA_CORE_HOT, AA_VENDOR_HOT, then add them to ATHLETE_ALLY_EVENTS"
    );
    assert_eq!(
        steps[1]["detail"],
        "merge-patch configmap event-bus-config: EVENT_STREAM_MODE=single"
    );
    assert!(
        world.kube.patches().is_empty(),
        "{:?}",
        world.kube.patches()
    );
    assert!(
        world
            .kube
            .requests()
            .iter()
            .all(|r| !r.starts_with("PATCH"))
    );
    assert_eq!(
        subjects(&world.stream_config("ATHLETE_ALLY_EVENTS").await),
        ["legacy.>"]
    );
    assert_eq!(
        subjects(&world.stream_config("AA_CORE_HOT").await),
        ["athlete-ally.>", "sleep.*"]
    );
    assert!(!world.dir.path().join("exec.json").exists());
    assert!(world.hook.bodies().is_empty());

    // The canary went no-go: that change is attested (the statement is
    // written as the round records, which may end after the plan), and it
    // replays.
    let attest_dir = world.dir.path().join("attest");
    let statement = || {
        std::fs::read_dir(&attest_dir)
            .ok()?
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".intoto.json"))
            .map(|p| {
                let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                (p, v)
            })
            .find(|(_, v)| {
                v["predicate"]["phase"] == "canary" && v["predicate"]["verdict"] == "no-go"
            })
    };
    let (path, no_go) = wait_for_async(
        "the canary's no-go statement",
        Duration::from_secs(20),
        || async { statement() },
    )
    .await;
    assert!(
        no_go["predicate"]["lease_epoch"].as_u64().is_some(),
        "{no_go}"
    );
    assert_eq!(no_go["predicate"]["agent"], "agent-a");
    let subject = attest_dir.join(no_go["subject"][0]["name"].as_str().unwrap());
    let o = world
        .command(&["verify-attestation"])
        .arg(&path)
        .arg("--snapshot")
        .arg(&subject)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    // A gate stopped by a wall-clock limit (its deadline or the phase
    // budget, on a loaded machine, live or in the replay) decided nothing
    // reproducible: replay must then say the report differs, and where.
    // Otherwise it must be identical.
    let limit = |e: &str| e.contains("exceeded its deadline") || e.contains("evaluation budget");
    let wall_clock = no_go["predicate"]["report"]["gates"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["error"].as_str().is_some_and(limit))
        || (out.contains("re-evaluated, the report differs at report.gates[") && limit(&out));
    if wall_clock {
        assert_eq!(o.status.code(), Some(1), "{out}");
        assert!(out.contains("re-evaluated, the report differs"), "{out}");
        return;
    }
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}\nstatement: {no_go:#}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("re-evaluated to the identical report"),
        "{out}"
    );
}

#[tokio::test]
async fn a_failing_step_stops_the_plan_and_alerts() {
    let world = World::start(NatsVersion::V2_9, "", "10s").await;
    world.kube.fault(gatekeeper_testsupport::Fault::Status {
        path_contains: "configmaps/event-bus-config".into(),
        code: 500,
    });
    let agent = world.watch("agent-a", &[]);
    let publisher = spike(world.nats.url());
    let plan = world.wait_for_plan(&[&agent]).await;
    publisher.abort();
    assert_eq!(plan["outcome"], "failed");
    assert!(
        plan["detail"].as_str().unwrap().starts_with(
            "step 2 (patch-config-map) failed: configmap athlete-ally/event-bus-config:"
        ),
        "{plan}"
    );
    world.assert_steps(
        &[("move-subjects", "done"), ("patch-config-map", "failed")],
        "the rest did not run",
    );
    assert!(world.patches(DEPLOYMENTS_PATH).is_empty());
    assert!(world.hook.bodies().is_empty());
    let alerts = wait_for_async("the failure's alert", Duration::from_secs(10), || async {
        let alerts = world.ledger("alert");
        alerts
            .iter()
            .any(|a| {
                a["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("plan rollback-to-single failed: step 2")
            })
            .then_some(alerts)
    })
    .await;
    assert!(alerts.iter().all(|a| a["agent"] == "agent-a"));
}

#[tokio::test]
async fn a_veto_gate_blocks_the_plan_and_alerts() {
    let world = World::start(NatsVersion::V2_15, "", "10s").await;
    // Phase 3 happened: the legacy stream, the rollback's target, is gone.
    let c = async_nats::connect(world.nats.url()).await.unwrap();
    js_request(&c, "$JS.API.STREAM.DELETE.ATHLETE_ALLY_EVENTS", json!({})).await;
    let agent = world.watch("agent-a", &[]);
    let publisher = spike(world.nats.url());
    let plan = world.wait_for_plan(&[&agent]).await;
    agent.rounds(3.0).await;
    publisher.abort();
    assert_eq!(plan["outcome"], "vetoed");
    assert!(
        plan["detail"]
            .as_str()
            .unwrap()
            .contains("stream-athlete-ally-events"),
        "{plan}"
    );
    assert_eq!(world.ledger("plan").len(), 1, "recorded once per incident");
    assert!(world.ledger("step").is_empty());
    assert!(world.kube.patches().is_empty());
    assert!(world.ledger("alert").iter().any(|a| {
        a["message"]
            .as_str()
            .unwrap()
            .starts_with("plan rollback-to-single not run (vetoed)")
    }));
}

#[tokio::test]
async fn a_collector_down_alerts_and_never_rolls_back() {
    // The ledger is a local file here, so the agent keeps acting with NATS gone.
    let mut world = World::start(NatsVersion::V2_15, "backend = \"file\"", "10s").await;
    let agent = world.watch("agent-a", &[]);
    agent.rounds(2.0).await;
    let publisher = spike(world.nats.url());
    // The spike is seen, then NATS dies before the 3 s hold is complete.
    wait_for_async(
        "the DLQ rate to be seen",
        Duration::from_secs(10),
        || async {
            agent
                .metric("gatekeeper_trigger_state{trigger=\"dlq-spike\",state=\"unknown\"}")
                .await
                .filter(|v| *v == 1.0)
        },
    )
    .await;
    world.nats.kill();
    publisher.abort();
    agent.rounds(6.0).await;
    assert!(world.ledger("plan").is_empty());
    assert!(world.ledger("step").is_empty());
    assert!(world.kube.patches().is_empty());
    let alerts = world.ledger("alert");
    assert!(
        alerts.iter().any(|a| a["message"]
            .as_str()
            .unwrap()
            .starts_with("cannot see: nats unavailable")),
        "{alerts:?}"
    );
    assert_eq!(
        agent
            .metric("gatekeeper_trigger_state{trigger=\"dlq-spike\",state=\"unknown\"}")
            .await,
        Some(1.0)
    );
    assert!(
        agent
            .metric("gatekeeper_collector_errors_total{source=\"nats\"}")
            .await
            .unwrap()
            >= 6.0
    );
}

#[tokio::test]
async fn sigterm_mid_plan_stops_cleanly_and_records_it() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let world = World::start(NatsVersion::V2_15, "", "60s").await;
    world.kube.hold_rollouts(true);
    let agent = world.watch("agent-a", &[]);
    let publisher = spike(world.nats.url());
    wait_for_async("both restarts patched", Duration::from_secs(40), || async {
        agent.assert_running();
        (world.patches(DEPLOYMENTS_PATH).len() == 2).then_some(())
    })
    .await;
    publisher.abort();
    let pid = agent.child.lock().unwrap().id();
    kill(Pid::from_raw(pid as i32), Signal::SIGTERM).unwrap();
    let status =
        gatekeeper_testsupport::wait_for("the agent to exit", Duration::from_secs(15), || {
            agent.child.lock().unwrap().try_wait().unwrap()
        });
    assert!(
        status.success(),
        "{status}: {}",
        std::fs::read_to_string(&agent.log).unwrap()
    );
    let plan = world.ledger("plan");
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0]["outcome"], "interrupted");
    assert_eq!(
        plan[0]["detail"],
        "stopped during step 3 (restart-deployments)"
    );
    world.assert_steps(
        &[
            ("move-subjects", "done"),
            ("patch-config-map", "done"),
            ("restart-deployments", "interrupted"),
        ],
        "SIGTERM during the rollout wait",
    );
    // The lease was given up, not left to expire.
    let c = async_nats::connect(world.nats.url()).await.unwrap();
    let lease = js_request(
        &c,
        "$JS.API.STREAM.MSG.GET.KV_gatekeeper-lease",
        json!({"last_by_subj": "$KV.gatekeeper-lease.canary"}),
    )
    .await;
    use base64::Engine as _;
    let value: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(lease["message"]["data"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(value["holder"], "");
    let log = std::fs::read_to_string(&agent.log).unwrap();
    assert!(log.contains("\"signal\":\"SIGTERM\""), "{log}");
}

#[test]
fn attest_is_read_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gatekeeper.toml");
    std::fs::write(
        &config,
        r#"
[gates.people]
builtin = "ledger"
[[gates.people.params.criteria]]
id = "staging-verified"
title = "Staging verified by a person"
requires = { kind = "attestation", phase = "phase-2" }

[phases.phase-2]
gates = ["people"]

[ledger]
file = "ledger.jsonl"
"#,
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .arg("-c")
            .arg(&config)
            .env("XDG_CACHE_HOME", dir.path())
            .env_remove("NATS_URL")
            .env_remove("DATABASE_URL")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let before = run(&["check", "phase-2"]);
    assert_eq!(
        before.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&before.stdout)
    );
    assert!(
        String::from_utf8_lossy(&before.stdout)
            .contains("not attested yet: gatekeeper attest phase-2 staging-verified --by NAME")
    );

    let typo = run(&["attest", "phase-2", "staging-verfied", "--by", "alice"]);
    assert_eq!(typo.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&typo.stderr).trim(),
        "gatekeeper: error: attest: phase-2 has no attestation criterion `staging-verfied` (it has: staging-verified)"
    );
    let attest = run(&[
        "attest",
        "phase-2",
        "staging-verified",
        "--by",
        "alice",
        "--note",
        "ran the HRV flow",
    ]);
    assert!(
        attest.status.success(),
        "{}",
        String::from_utf8_lossy(&attest.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&attest.stdout).trim(),
        format!(
            "attested phase-2 staging-verified by alice (file {})",
            dir.path().join("ledger.jsonl").display()
        )
    );
    let after = run(&["check", "phase-2", "-o", "json"]);
    assert_eq!(
        after.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&after.stdout)
    );
    let report: Value = serde_json::from_slice(&after.stdout).unwrap();
    let c = &report["gates"][0]["criteria"][0];
    assert_eq!(c["status"], "pass");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .ends_with(": ran the HRV flow"),
        "{c}"
    );
}

/// The evaluate-time attacks of `gates/hostile`, each a gate in the watched
/// phase and in a recorded phase.
const WATCHED_ATTACKS: &[&str] = &[
    "panic",
    "print",
    "print-then-panic",
    "sleep",
    "poll-sleep",
    "wait-for-time",
    "read-stdin",
    "infinite-loop",
    "memory-bomb",
    "deep-recursion",
    "shadow-stack-overflow",
    "huge-output",
    "read-file",
    "read-env",
    "read-clock",
    "random",
    "network",
    "malformed-output",
    "log-flood",
    "gate-error",
    "forge-text",
    "defer-while-failing",
    "trigger-from-defer",
    "trigger-without-failure",
    "trigger-storm",
    "dlq-spike",
    "undeclared-trigger",
    "reads-sleep",
];

/// Every attack in the watched phase and in a recorded phase (plus a gate
/// whose metadata sleeps): `watch` starts at once, runs round after round at
/// a 1 s interval, alerts once for what it cannot see and once for the
/// triggers no plan names (the impostor `dlq-spike` among them), and runs
/// no plan.
#[tokio::test]
async fn hostile_gates_cannot_crash_stall_or_steer_watch() {
    let mut config = String::from(
        r#"
[sources.nats]
url = "NATS_URL"

[gates.triggers]
builtin = "signals"
[[gates.triggers.params.signals]]
id = "dlq-spike"
title = "DLQ message spike"
measure = { kind = "stream-publish-rate", streams = ["AA_DLQ"], window = "2s" }
when = "> 10"
for = "3s"
trigger = "automatic"

[gates.sleepy-metadata]
wasm = "TEST_GATES/hostile-metadata.wasm"

[ledger]
backend = "file"
file = "DIR/ledger.jsonl"

[watch]
interval = "1s"
record = ["recorded"]
record_every = "1s"
alert = [{ action = "exec", command = ["/bin/sh", "-c", "echo alert >> 'DIR/alerts.txt'"] }]

[watch.plans.rollback]
on = ["triggers/dlq-spike"]
steps = [{ action = "exec", command = ["/bin/sh", "-c", "touch 'DIR/rolled-back'"] }]
"#,
    );
    let names: Vec<String> = WATCHED_ATTACKS.iter().map(|a| format!("h-{a}")).collect();
    for (name, attack) in names.iter().zip(WATCHED_ATTACKS) {
        config.push_str(&format!(
            "[gates.{name}]\nwasm = \"TEST_GATES/hostile.wasm\"\nparams = {{ attack = \"{attack}\" }}\n"
        ));
    }
    let list = |extra: &str| {
        let mut all: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
        all.push(format!("\"{extra}\""));
        all.join(", ")
    };
    config.push_str(&format!(
        "[phases.canary]\ngates = [{}]\n[phases.recorded]\ngates = [{}]\n",
        list("triggers"),
        list("sleepy-metadata")
    ));
    let world = World::start_with(NatsVersion::V2_15, &config, "", "0s").await;
    let started = std::time::Instant::now();
    let agent = world.watch("agent-h", &[]);
    agent.rounds(10.0).await;
    agent.assert_running();
    // Ten rounds at 1 s, after start-up and the first compile: no stall.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "ten rounds took {:?}",
        started.elapsed()
    );
    assert!(
        !world.dir.path().join("rolled-back").exists(),
        "a hostile gate started the rollback"
    );
    assert!(
        world.ledger("plan").is_empty(),
        "{:?}",
        world.ledger("plan")
    );
    let alerts = world.ledger("alert");
    let messages: Vec<&str> = alerts
        .iter()
        .map(|a| a["message"].as_str().unwrap())
        .collect();
    assert_eq!(alerts.len(), 2, "{messages:#?}");
    let blind = messages
        .iter()
        .find(|m| m.starts_with("cannot see: gate h-"))
        .unwrap_or_else(|| panic!("{messages:#?}"));
    assert!(blind.contains("… and "), "aggregated: {blind}");
    let unplanned = messages
        .iter()
        .find(|m| m.contains("(no plan in [watch.plans] names them"))
        .unwrap_or_else(|| panic!("{messages:#?}"));
    assert!(
        unplanned.contains("h-dlq-spike/dlq-spike") || unplanned.contains("… and "),
        "{unplanned}"
    );
    // One exec per alert, not one per trigger.
    let hooks = wait_for_async("the alert hooks", Duration::from_secs(10), || async {
        std::fs::read_to_string(world.dir.path().join("alerts.txt"))
            .ok()
            .filter(|t| t.lines().count() >= 2)
    })
    .await;
    assert_eq!(hooks.lines().count(), 2, "{hooks}");
    // The recorded phase was evaluated and recorded (as no-go: its gates err).
    let verdicts = world.ledger("verdict");
    assert!(
        verdicts
            .iter()
            .any(|v| v["phase"] == "recorded" && v["verdict"] == "no-go"),
        "{verdicts:?}"
    );
    // Nothing a gate wrote forged a log line.
    let log = std::fs::read_to_string(&agent.log).unwrap();
    assert!(
        log.lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "every log line is one JSON object"
    );
    assert!(!log.contains("\u{1b}"), "raw escape in the log");
}

/// CONFIG with a manual trigger the test controls (a row in `flag`) and an
/// alert hook.
fn config_with_manual_flag() -> String {
    CONFIG
        .replace(
            "[[sources.postgres.queries]]\nname = \"hrv-rows\"",
            "[[sources.postgres.queries]]\nname = \"flag\"\nsql = \"select count(*) from flag\"\n[[sources.postgres.queries]]\nname = \"hrv-rows\"",
        )
        .replace(
            "[[gates.triggers.params.signals]]\nid = \"dlq-volume\"",
            "[[gates.triggers.params.signals]]\nid = \"manual-flag\"\ntitle = \"A person raised the flag\"\nmeasure = { kind = \"query\", name = \"flag\" }\nwhen = \"> 0\"\ntrigger = \"manual\"\n[[gates.triggers.params.signals]]\nid = \"dlq-volume\"",
        )
        .replace(
            "veto = [\"legacy-stream\"]",
            "veto = [\"legacy-stream\"]\nalert = [{ action = \"exec\", command = [\"/bin/sh\", \"-c\", \"echo alert >> 'DIR/alerts.txt'\"] }]",
        )
}

/// Issue 12: a manual trigger alerts (with its hook), then the agent that
/// alerted goes away; the next one — the same agent restarted, or a standby
/// taking the lease over — sees a DLQ spike: the rollback runs, exactly
/// once. Alerts are never plans, also for an agent reading them back from
/// the ledger, and also when an older agent wrote an alert hook as plan
/// `alert`.
async fn alert_then_new_agent_then_spike(takeover: bool) {
    let world = World::start_with(
        NatsVersion::V2_15,
        &config_with_manual_flag(),
        "lease_ttl = \"3s\"",
        "0s",
    )
    .await;
    world.pg.psql("create table flag (x int)");
    let first = world.watch("agent-a", &[]);
    first.rounds(1.0).await;
    let standby = takeover.then(|| world.watch("agent-b", &[]));
    if let Some(b) = &standby {
        b.rounds(1.0).await;
        assert_eq!(b.metric("gatekeeper_lease_held").await, Some(0.0));
    }
    world.pg.psql("insert into flag values (1)");
    let delivered = wait_for_async("the alert hook", Duration::from_secs(30), || async {
        let d = world.ledger("alert-delivery");
        (!d.is_empty()).then_some(d)
    })
    .await;
    assert_eq!(delivered[0]["outcome"], "done", "{delivered:?}");
    assert!(world.ledger("plan").is_empty(), "an alert is not a plan");
    // What an agent before this fix wrote for the same hook run, sealed
    // into the chain as that agent's writer would.
    let c = async_nats::connect(world.nats.url()).await.unwrap();
    let incident = world.ledger("incident-opened")[0]["incident"].clone();
    let legacy = json!({"kind": "plan", "incident": incident, "plan": "alert", "trigger": "",
        "outcome": "done", "detail": "1 steps", "at": chrono::Utc::now(), "agent": "agent-old"});
    append_sealed(&c, serde_json::from_value(legacy).unwrap()).await;
    drop(first);
    let next = match standby {
        Some(b) => b,
        None => world.watch("agent-a2", &[]),
    };
    wait_for_async(
        "the new agent to hold the lease",
        Duration::from_secs(30),
        || async {
            next.metric("gatekeeper_lease_held")
                .await
                .filter(|v| *v == 1.0)
        },
    )
    .await;
    let publisher = spike(world.nats.url());
    let real_plans = || {
        world
            .ledger("plan")
            .into_iter()
            .filter(|p| p["plan"] != "alert")
            .collect::<Vec<Value>>()
    };
    let plan = wait_for_async("the rollback", Duration::from_secs(40), || async {
        next.assert_running();
        real_plans().into_iter().next()
    })
    .await;
    next.rounds(3.0).await;
    publisher.abort();
    let plans = real_plans();
    assert_eq!(plans.len(), 1, "{plans:?}");
    assert_eq!(plan["plan"], "rollback-to-single");
    assert_eq!(plan["outcome"], "done", "{plan}");
    assert_eq!(plan["agent"], if takeover { "agent-b" } else { "agent-a2" });
    assert_eq!(world.patches(CONFIGMAP_PATH).len(), 1);
}

#[tokio::test]
async fn an_alert_never_blocks_the_rollback_after_a_restart() {
    alert_then_new_agent_then_spike(false).await;
}

#[tokio::test]
async fn an_alert_never_blocks_the_rollback_after_a_takeover() {
    alert_then_new_agent_then_spike(true).await;
}

/// Appends `record` to the ledger stream sealed after its last message, as
/// an agent's writer does: a compare-and-set on the stream's last sequence,
/// linked again and retried when a running agent appended first.
async fn append_sealed(c: &async_nats::Client, record: gatekeeper::ledger::Record) {
    use base64::Engine as _;
    use gatekeeper::ledger::chain;
    for _ in 0..20 {
        let info = js_request(c, "$JS.API.STREAM.INFO.GATEKEEPER_LEDGER", json!({})).await;
        let last = info["state"]["last_seq"].as_u64().unwrap();
        let stored = js_request(
            c,
            "$JS.API.STREAM.MSG.GET.GATEKEEPER_LEDGER",
            json!({ "seq": last }),
        )
        .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(stored["message"]["data"].as_str().unwrap())
            .unwrap();
        let (sealed, _) = chain::seal(last + 1, Some(chain::link_to(last, &bytes)), &record);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Expected-Last-Sequence", last.to_string());
        let ack = c
            .request_with_headers(
                format!("gatekeeper.ledger.{}", record.kind()),
                headers,
                sealed.into(),
            )
            .await
            .unwrap();
        let ack: Value = serde_json::from_slice(&ack.payload).unwrap();
        if ack["seq"].as_u64() == Some(last + 1) {
            return;
        }
        assert_eq!(ack["error"]["err_code"], 10071, "{ack}");
    }
    panic!("the ledger kept moving: 20 appends lost the compare-and-set");
}

/// Issue 17, fencing: the holder is paused (SIGSTOP) in the middle of its
/// plan, past the lease TTL; the standby takes the lease over and runs the
/// plan; the paused one, resumed, proves it no longer holds the lease and
/// takes no action: no subjects moved, no patch, no exec, no webhook. Each
/// exec step gets the epoch it ran under.
#[tokio::test]
async fn a_paused_holder_is_fenced_after_a_takeover() {
    let first_step = "[[watch.plans.rollback-to-single.steps]]\naction = \"exec\"\n\
        command = [\"/bin/sh\", \"-c\", \"touch \\\"DIR/step1-$GATEKEEPER_LEASE_EPOCH\\\"; sleep 2\"]\n";
    let template = CONFIG.replace(
        "[[watch.plans.rollback-to-single.steps]]\naction = \"move-subjects\"",
        &format!(
            "{first_step}[[watch.plans.rollback-to-single.steps]]\naction = \"move-subjects\""
        ),
    );
    let world = World::start_with(NatsVersion::V2_15, &template, "lease_ttl = \"3s\"", "10s").await;
    let a = world.watch("agent-a", &[]);
    a.rounds(1.0).await;
    let b = world.watch("agent-b", &[]);
    b.rounds(1.0).await;
    assert_eq!(a.metric("gatekeeper_lease_held").await, Some(1.0));
    let step1 = |dir: &std::path::Path| -> Vec<u64> {
        let mut epochs: Vec<u64> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .strip_prefix("step1-")
                    .map(|n| n.parse().expect("an epoch"))
            })
            .collect();
        epochs.sort();
        epochs
    };
    let publisher = spike(world.nats.url());
    // agent-a starts its plan: its first step is running. Pause it there.
    let a_epoch = wait_for_async("agent-a's first step", Duration::from_secs(40), || async {
        a.assert_running();
        step1(world.dir.path()).first().copied()
    })
    .await;
    let pid = nix::unistd::Pid::from_raw(a.child.lock().unwrap().id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();

    // agent-b takes over after the TTL, adopts the incident (agent-a's plan
    // never finished, so it did not run) and runs the plan itself.
    let b_plan = wait_for_async("agent-b's plan", Duration::from_secs(40), || async {
        b.assert_running();
        world
            .ledger("plan")
            .into_iter()
            .find(|p| p["agent"] == "agent-b")
    })
    .await;
    assert_eq!(b_plan["outcome"], "done", "{b_plan}");
    let epochs = step1(world.dir.path());
    assert_eq!(epochs.len(), 2, "{epochs:?}");
    assert!(epochs[1] > a_epoch, "agent-b's epoch is later: {epochs:?}");

    // agent-a wakes up mid-plan: every step from here on is refused.
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    let a_plan = wait_for_async("agent-a's plan to end", Duration::from_secs(30), || async {
        world
            .ledger("plan")
            .into_iter()
            .find(|p| p["agent"] == "agent-a")
    })
    .await;
    publisher.abort();
    assert_eq!(a_plan["outcome"], "fenced", "{a_plan}");
    let detail = a_plan["detail"].as_str().unwrap();
    // Refused on its own clock (its renewal is older than the TTL), on the
    // key (it names agent-b at a later epoch), or because its lease keeper
    // already saw agent-b hold it: which one depends on what ran first
    // after the pause.
    let expired = format!("this agent's lease (epoch {a_epoch}) was last renewed");
    let moved = format!("(holder `agent-b`); this agent's epoch {a_epoch} is stale");
    let not_held = "this agent does not hold the lease";
    assert!(
        detail.starts_with("refused at step 2 (move-subjects): ")
            && (detail.contains(&expired) || detail.contains(&moved) || detail.ends_with(not_held)),
        "{detail}"
    );
    let a_steps: Vec<(String, String)> = world
        .ledger("step")
        .iter()
        .filter(|s| s["agent"] == "agent-a")
        .map(|s| {
            (
                s["action"].as_str().unwrap().to_owned(),
                s["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        a_steps,
        [
            ("exec".to_owned(), "done".to_owned()),
            ("move-subjects".to_owned(), "fenced".to_owned())
        ]
    );
    // Every action outside the process is agent-b's alone.
    b.rounds(2.0).await;
    assert_eq!(world.patches(CONFIGMAP_PATH).len(), 1);
    assert_eq!(world.patches(DEPLOYMENTS_PATH).len(), 2);
    assert_eq!(world.hook.bodies().len(), 1);
    assert_eq!(step1(world.dir.path()).len(), 2);
    assert_eq!(
        world
            .ledger("step")
            .iter()
            .filter(|s| s["agent"] == "agent-b" && s["outcome"] == "done")
            .count(),
        6
    );
}
