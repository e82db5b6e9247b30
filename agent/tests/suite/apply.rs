//! `gatekeeper plan` and `apply` through the binary on real nats-servers (2.9
//! and 2.15): the seeds' phases 0–3 as steps (seed 004's commands, in the
//! order seed 002 found nats-server accepts), applied phase by phase from
//! the legacy topology, each gated before and verified after; a second
//! apply changes nothing; a failing pre-gate blocks with nothing changed; a
//! verify that does not go runs `on_failure`; a failing step stops the
//! phase and is recorded; two applies at once: one acts.

use gatekeeper_testsupport::{NatsServer, NatsVersion, js_request, wait_for};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_gatekeeper");
const LEGACY: &str = "ATHLETE_ALLY_EVENTS";

const CONFIG: &str = r#"
[sources.nats]
url = "nats://127.0.0.1:1"
streams = ["ATHLETE_ALLY_EVENTS", "AA_*"]
timeout = "5s"

[ledger]
backend = "file"
file = "ledger.jsonl"

[gates.legacy]
builtin = "stream-topology"
[[gates.legacy.params.streams]]
name = "ATHLETE_ALLY_EVENTS"

[gates.dlq-stream]
builtin = "stream-topology"
[[gates.dlq-stream.params.streams]]
name = "AA_DLQ"
subjects = ["dlq.>"]
max_age = "14d"
replicas = 1
storage = "file"

[gates.vendor-stream]
builtin = "stream-topology"
[[gates.vendor-stream.params.streams]]
name = "AA_VENDOR_HOT"
subjects = ["vendor.>"]
max_age = "48h"
replicas = 1
storage = "file"

[gates.core-stream]
builtin = "stream-topology"
[[gates.core-stream.params.streams]]
name = "AA_CORE_HOT"
subjects = ["athlete-ally.>", "sleep.*"]
max_age = "48h"
replicas = 1
storage = "file"

[gates.hrv-consumer]
builtin = "consumer-config"
[[gates.hrv-consumer.params.consumers]]
stream = "AA_CORE_HOT"
name = "normalize-hrv-durable"
filter_subjects = ["athlete-ally.hrv.raw-received"]
ack_policy = "explicit"
deliver_policy = "all"
max_deliver = 5
ack_wait = "60s"
max_ack_pending = 1000

[gates.overlap]
builtin = "subject-overlap"

[gates.missing]
builtin = "stream-topology"
[[gates.missing.params.streams]]
name = "NO_SUCH_STREAM"

[phases.ready]
gates = ["legacy", "overlap"]
[phases.phase-0-done]
gates = ["dlq-stream", "overlap"]
[phases.phase-1-done]
gates = ["dlq-stream", "vendor-stream", "overlap"]
[phases.phase-2-done]
gates = ["core-stream", "hrv-consumer", "vendor-stream", "overlap"]
[phases.never]
gates = ["missing"]

[phases.phase-0]
gates = ["dlq-stream"]
requires = ["ready"]
verify = "phase-0-done"
verify_timeout = "20s"
steps = [{ action = "ensure-stream", gate = "dlq-stream" }]

[phases.phase-1]
gates = ["vendor-stream"]
requires = ["phase-0-done"]
verify = "phase-1-done"
verify_timeout = "20s"
steps = [
    { action = "ensure-stream", name = "ATHLETE_ALLY_EVENTS", subjects = ["athlete-ally.>", "sleep.*"] },
    { action = "ensure-stream", gate = "vendor-stream" },
    { action = "ensure-consumer", stream = "AA_VENDOR_HOT", name = "normalize-oura", filter_subjects = ["vendor.oura.>"], max_deliver = 5 },
]

# Seed 002's order: the legacy stream leaves athlete-ally.> first.
[phases.phase-2]
gates = ["core-stream"]
requires = ["phase-1-done"]
verify = "phase-2-done"
verify_timeout = "20s"
steps = [
    { action = "ensure-stream", name = "ATHLETE_ALLY_EVENTS", subjects = ["legacy.>"] },
    { action = "ensure-stream", gate = "core-stream" },
    { action = "ensure-consumer", gate = "hrv-consumer" },
    { action = "wait-for", phase = "phase-2-done", timeout = "20s", interval = "200ms" },
]

# Seed 004's order, which staging found nats-server refuses.
[phases.phase-2-as-written]
gates = ["core-stream"]
steps = [
    { action = "ensure-stream", gate = "core-stream" },
    { action = "ensure-stream", name = "ATHLETE_ALLY_EVENTS", subjects = ["legacy.>"] },
]

[phases.phase-3]
gates = ["core-stream"]
requires = ["phase-2-done"]
steps = [{ action = "delete-stream", stream = "ATHLETE_ALLY_EVENTS" }]

[phases.memory-dlq]
gates = ["dlq-stream"]
steps = [{ action = "ensure-stream", name = "AA_DLQ", storage = "memory" }]

[phases.unverifiable]
gates = ["legacy"]
requires = ["ready"]
verify = "never"
verify_timeout = "2s"
on_failure = "give-back"
steps = [{ action = "ensure-stream", name = "AA_SCRATCH", subjects = ["scratch.>"] }]

[phases.broken-step]
gates = ["legacy"]
requires = ["ready"]
steps = [
    { action = "ensure-stream", name = "AA_SCRATCH2", subjects = ["scratch2.>"] },
    { action = "exec", command = ["false"] },
    { action = "ensure-stream", name = "AA_NEVER", subjects = ["never.>"] },
]

[phases.slow]
gates = ["legacy"]
requires = []
steps = [{ action = "exec", command = ["sh", "-c", "touch started && sleep 3"] }]

[watch.plans.give-back]
on = []
steps = [{ action = "delete-stream", stream = "AA_SCRATCH" }]
"#;

/// `gatekeeper ARGS -c CONFIG` in `dir`, on `nats`.
fn gatekeeper(dir: &Path, nats: &NatsServer, config: &str, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .args(["-c", config])
        .current_dir(dir)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("NATS_URL", nats.url())
        .env_remove("NATS_MONITOR_URL")
        .env_remove("RUST_LOG");
    c
}

fn run(dir: &Path, nats: &NatsServer, args: &[&str]) -> Output {
    gatekeeper(dir, nats, "gatekeeper.toml", args)
        .output()
        .expect("run gatekeeper")
}

/// An apply left running (stderr kept), to race or to signal.
fn spawn_apply(dir: &Path, nats: &NatsServer, args: &[&str]) -> std::process::Child {
    gatekeeper(dir, nats, "gatekeeper.toml", args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start gatekeeper")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every stream's subjects (and whether it exists).
fn streams(nats: &NatsServer) -> std::collections::BTreeMap<String, Vec<String>> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = async_nats::connect(nats.url()).await.unwrap();
        let list = js_request(&c, "$JS.API.STREAM.LIST", json!({})).await;
        list["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let subjects = s["config"]["subjects"]
                    .as_array()
                    .map(|a| a.iter().map(|x| x.as_str().unwrap().to_owned()).collect())
                    .unwrap_or_default();
                (s["config"]["name"].as_str().unwrap().to_owned(), subjects)
            })
            .collect()
    })
}

fn legacy_topology(nats: &NatsServer) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = async_nats::connect(nats.url()).await.unwrap();
        js_request(
            &c,
            &format!("$JS.API.STREAM.CREATE.{LEGACY}"),
            json!({"name": LEGACY, "subjects": ["athlete-ally.>", "vendor.>", "sleep.*"], "storage": "file", "max_age": 0}),
        )
        .await;
    });
}

fn ledger(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("ledger.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| v.get("record").cloned().unwrap_or(v))
        .collect()
}

fn of_kind<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["kind"] == kind).collect()
}

fn phases_apply_and_converge(version: NatsVersion) {
    let nats = NatsServer::start(version);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gatekeeper.toml"), CONFIG).unwrap();
    legacy_topology(&nats);
    let d = dir.path();

    // Seed 004's order is refused at plan time, naming the collision.
    let o = run(d, &nats, &["plan", "phase-2-as-written"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(
            "AA_CORE_HOT's `athlete-ally.>` would overlap ATHLETE_ALLY_EVENTS's `athlete-ally.>`"
        ) || out.contains(
            "ATHLETE_ALLY_EVENTS's `athlete-ally.>` would overlap AA_CORE_HOT's `athlete-ally.>`"
        ),
        "{}",
        text(&o)
    );

    // Phase 2 planned on the legacy topology: every step, field by field.
    let o = run(d, &nats, &["plan", "phase-2"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for line in [
        "~ stream ATHLETE_ALLY_EVENTS: subjects: [athlete-ally.>, vendor.>, sleep.*] → [legacy.>]",
        "+ create stream AA_CORE_HOT",
        "subjects: [athlete-ally.>, sleep.*]",
        "max_age: 48h",
        "+ create consumer AA_CORE_HOT/normalize-hrv-durable",
        "ack_wait: 1m",
        "4. wait-for",
    ] {
        assert!(out.contains(line), "missing `{line}`:\n{}", text(&o));
    }
    // Nothing changed by planning.
    assert_eq!(streams(&nats).len(), 1);

    // A failing pre-gate blocks: phase 2 needs phase 1 done.
    let o = run(d, &nats, &["apply", "phase-2", "--yes"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("pre-gate phase-1-done: no-go"),
        "{}",
        text(&o)
    );
    assert_eq!(
        streams(&nats)[LEGACY],
        ["athlete-ally.>", "vendor.>", "sleep.*"],
        "nothing changed"
    );
    assert!(of_kind(&ledger(d), "step").is_empty());
    // The first record says the apply started (a ledger that refuses it
    // stops the apply); the second how it ended.
    let records = ledger(d);
    let applies = of_kind(&records, "apply");
    assert_eq!(
        applies
            .iter()
            .map(|a| a["outcome"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["started", "blocked"]
    );
    assert_eq!(applies[0]["detail"], "pre-gates phase-1-done");

    // Without --yes and without a terminal: refused, nothing changed.
    let o = run(d, &nats, &["apply", "phase-0"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("pass --yes"), "{}", text(&o));

    // Phases 0, 1, 2, each gated and verified; each applied a second time
    // changes nothing, and plan says so first.
    for (phase, steps) in [("phase-0", 1), ("phase-1", 3), ("phase-2", 4)] {
        let o = run(
            d,
            &nats,
            &["apply", phase, "--yes", "--by", "platform-lead"],
        );
        assert_eq!(o.status.code(), Some(0), "{phase}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(&format!("apply {phase}: done")),
            "{}",
            text(&o)
        );
        let o = run(d, &nats, &["plan", phase]);
        assert_eq!(o.status.code(), Some(0), "{phase}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("nothing to change"),
            "{}",
            text(&o)
        );
        let before = ledger(d).len();
        let o = run(d, &nats, &["apply", phase, "--yes"]);
        assert_eq!(o.status.code(), Some(0), "{phase} again: {}", text(&o));
        let records = ledger(d);
        let again: Vec<&Value> = records[before..]
            .iter()
            .filter(|r| r["kind"] == "step")
            .collect();
        assert_eq!(again.len(), steps, "{again:?}");
        assert!(
            again.iter().all(|r| r["outcome"] == "unchanged"),
            "{phase}: {again:?}"
        );
    }
    let s = streams(&nats);
    assert_eq!(s[LEGACY], ["legacy.>"]);
    assert_eq!(s["AA_CORE_HOT"], ["athlete-ally.>", "sleep.*"]);
    assert_eq!(s["AA_VENDOR_HOT"], ["vendor.>"]);
    assert_eq!(s["AA_DLQ"], ["dlq.>"]);
    // Phase 1 again now would give athlete-ally.> back to the legacy stream
    // while AA_CORE_HOT holds it: refused at plan time, nothing changed.
    let o = run(d, &nats, &["apply", "phase-1", "--yes"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(streams(&nats)[LEGACY], ["legacy.>"]);
    let records = ledger(d);

    // The ledger: each step with its outcome, detail and duration; who applied.
    let steps = of_kind(&records, "step");
    let created = steps
        .iter()
        .find(|r| r["plan"] == "phase-2" && r["action"] == "ensure-consumer")
        .expect("phase-2's consumer step");
    assert_eq!(created["outcome"], "done");
    assert!(
        created["detail"]
            .as_str()
            .unwrap()
            .contains("created consumer AA_CORE_HOT/normalize-hrv-durable")
    );
    assert!(created["duration_ms"].is_u64());
    let applied = of_kind(&records, "attestation");
    assert!(
        applied.iter().any(|a| a["phase"] == "phase-2"
            && a["criterion"] == "applied"
            && a["by"] == "platform-lead"),
        "{applied:?}"
    );

    // A change nats-server cannot make in place is refused at plan time.
    let o = run(d, &nats, &["plan", "memory-dlq"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("cannot change a stream's storage in place"),
        "{}",
        text(&o)
    );

    // Verify never goes: on_failure runs (it deletes what the step made).
    let o = run(d, &nats, &["apply", "unverifiable", "--yes"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        !streams(&nats).contains_key("AA_SCRATCH"),
        "on_failure removed it: {}",
        text(&o)
    );
    let records = ledger(d);
    let last_apply = of_kind(&records, "apply").last().copied().unwrap().clone();
    assert_eq!(last_apply["outcome"], "not-verified");
    assert!(
        of_kind(&records, "plan")
            .iter()
            .any(|p| p["plan"] == "give-back"
                && p["outcome"] == "done"
                && p["trigger"] == "apply/unverifiable")
    );

    // A failing step stops the phase: the step after it never runs.
    let o = run(d, &nats, &["apply", "broken-step", "--yes"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let s = streams(&nats);
    assert!(
        s.contains_key("AA_SCRATCH2") && !s.contains_key("AA_NEVER"),
        "{s:?}"
    );
    let records = ledger(d);
    let failed: Vec<(u64, String)> = of_kind(&records, "step")
        .into_iter()
        .filter(|r| r["plan"] == "broken-step")
        .map(|r| {
            (
                r["step"].as_u64().unwrap(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(failed, [(1, "done".to_owned()), (2, "failed".to_owned())]);
    assert_eq!(
        of_kind(&records, "apply").last().unwrap()["outcome"],
        "failed"
    );
    assert!(of_kind(&records, "alert").iter().any(|a| {
        a["message"]
            .as_str()
            .unwrap()
            .contains("no on_failure plan")
    }));

    // Phase 3: the legacy stream deleted; the next plan says it is gone.
    let o = run(d, &nats, &["apply", "phase-3", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!streams(&nats).contains_key(LEGACY));
    let o = run(d, &nats, &["plan", "phase-3"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // Two applies at once: one acts, the other is refused at once.
    let first = spawn_apply(d, &nats, &["apply", "slow", "--yes", "--agent", "first"]);
    // The first holds the lock once its step started.
    wait_for("the first apply's step", Duration::from_secs(30), || {
        d.join("started").exists().then_some(())
    });
    let o = run(d, &nats, &["apply", "slow", "--yes"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("another apply (agent `first`) holds ledger.apply-lock"),
        "{}",
        text(&o)
    );
    let first = first.wait_with_output().unwrap();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
}

/// What a careless phase or a hostile moment must not get past: subjects
/// nats-server would refuse, several consumer filters on a 2.9 server, an
/// unwritable ledger, a command's children outliving its step, a signal
/// while verifying.
const HOSTILE_PHASES: &str = r#"
[phases.crowded]
gates = ["legacy"]
requires = []
steps = [{ action = "move-subjects", subjects = ["athlete-ally.hrv.x"], from = ["AA_NONE"], to = "ATHLETE_ALLY_EVENTS" }]

[phases.two-filters]
gates = ["legacy"]
requires = []
steps = [{ action = "ensure-consumer", stream = "ATHLETE_ALLY_EVENTS", name = "two", filter_subjects = ["athlete-ally.a", "athlete-ally.b"] }]

[phases.scratch]
gates = ["legacy"]
requires = []
steps = [{ action = "ensure-stream", name = "AA_SCRATCH3", subjects = ["scratch3.>"] }]

[phases.lingering]
gates = ["legacy"]
requires = []
steps = [{ action = "exec", timeout = "1s", command = ["sh", "-c", "sleep 60 & echo $! > grandchild; sleep 60"] }]

[phases.verify-forever]
gates = ["legacy"]
requires = []
verify = "never"
verify_timeout = "10m"
on_failure = "give-back"
steps = [{ action = "exec", command = ["touch", "stepped"] }]
"#;

fn apply_fails_closed(version: NatsVersion) {
    let nats = NatsServer::start(version);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = format!("{CONFIG}{HOSTILE_PHASES}");
    std::fs::write(d.join("gatekeeper.toml"), &config).unwrap();
    legacy_topology(&nats);

    // A subject moved into a stream that already takes it in: one stream
    // would hold overlapping subjects, which nats-server refuses.
    let o = run(d, &nats, &["plan", "crowded"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains(
            "ATHLETE_ALLY_EVENTS would hold both `athlete-ally.>` and `athlete-ally.hrv.x`"
        ),
        "{}",
        text(&o)
    );

    // Several filters: 2.9 would keep none of them (the consumer would get
    // every subject), so 2.9 refuses at plan time; 2.10+ takes them.
    let o = run(d, &nats, &["plan", "two-filters"]);
    if version == NatsVersion::V2_9 {
        assert_eq!(o.status.code(), Some(3), "{}", text(&o));
        assert!(
            text(&o).contains("keeps one filter subject per consumer"),
            "{}",
            text(&o)
        );
    } else {
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let o = run(d, &nats, &["apply", "two-filters", "--yes"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let o = run(d, &nats, &["plan", "two-filters"]);
        assert_eq!(o.status.code(), Some(0), "read back as done: {}", text(&o));
    }

    // A ledger that cannot be written: nothing runs.
    std::fs::create_dir(d.join("ledger-dir")).unwrap();
    std::fs::write(
        d.join("unwritable.toml"),
        config.replace("file = \"ledger.jsonl\"", "file = \"ledger-dir\""),
    )
    .unwrap();
    let o = gatekeeper(d, &nats, "unwritable.toml", &["apply", "scratch", "--yes"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("apply records every step there, so nothing was changed"),
        "{}",
        text(&o)
    );
    assert!(!streams(&nats).contains_key("AA_SCRATCH3"));

    // A command killed at its timeout takes its children with it.
    let o = run(d, &nats, &["apply", "lingering", "--yes"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let pid = std::fs::read_to_string(d.join("grandchild")).unwrap();
    let proc_dir = Path::new("/proc").join(pid.trim());
    wait_for(
        "the step's background child to be gone",
        Duration::from_secs(10),
        || {
            let state = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
            // Gone, or a zombie waiting for init to reap it.
            (state.is_empty() || state.contains(") Z ")).then_some(())
        },
    );

    // SIGTERM while verifying: the wait ends at once, the apply is recorded
    // interrupted, and on_failure does not run on the operator's stop.
    let child = spawn_apply(d, &nats, &["apply", "verify-forever", "--yes"]);
    wait_for("the apply to be verifying", Duration::from_secs(30), || {
        ledger(d)
            .iter()
            .any(|r| r["kind"] == "step" && r["plan"] == "verify-forever")
            .then_some(())
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let records = ledger(d);
    let applied = records.iter().rfind(|r| r["kind"] == "apply").unwrap();
    assert_eq!(applied["outcome"], "interrupted", "{applied}");
    assert!(
        applied["detail"]
            .as_str()
            .unwrap()
            .contains("stopped by a signal while verifying never"),
        "{applied}"
    );
    assert!(
        !records
            .iter()
            .any(|r| r["kind"] == "plan" && r["trigger"] == "apply/verify-forever"),
        "no on_failure plan ran"
    );
}

#[test]
fn apply_fails_closed_on_nats_2_9() {
    apply_fails_closed(NatsVersion::V2_9);
}

#[test]
fn apply_fails_closed_on_nats_2_15() {
    apply_fails_closed(NatsVersion::V2_15);
}

#[test]
fn phases_apply_and_converge_on_nats_2_9() {
    phases_apply_and_converge(NatsVersion::V2_9);
}

#[test]
fn phases_apply_and_converge_on_nats_2_15() {
    phases_apply_and_converge(NatsVersion::V2_15);
}

const KUBE_CONFIG: &str = r#"
[sources.nats]
url = "nats://127.0.0.1:1"
streams = ["ATHLETE_ALLY_EVENTS"]

[sources.kubernetes]
kubeconfig = "KUBECONFIG"
namespaces = ["staging"]
deployments = "app.kubernetes.io/part-of=athlete-ally"

[ledger]
replicas = 1
lease_ttl = "6s"

[gates.legacy]
builtin = "stream-topology"
[[gates.legacy.params.streams]]
name = "ATHLETE_ALLY_EVENTS"

[phases.ready]
gates = ["legacy"]

# Staging's cutover (seed 001): the ConfigMap, a rolling restart, and the
# canary's share of pods.
[phases.cut-over]
gates = ["legacy"]
requires = ["ready"]
steps = [
    { action = "patch-config-map", name = "event-bus-config", data = { EVENT_STREAM_MODE = "multi" } },
    { action = "restart-deployments", names = ["normalize-service"], wait = "10s" },
    { action = "scale-deployment", name = "normalize-service", replicas = 5, wait = "10s" },
]

[phases.slow]
gates = ["legacy"]
requires = []
steps = [{ action = "exec", command = ["sh", "-c", "touch started && exec sleep 60"], timeout = "2m" }]
"#;

/// Kubernetes steps through the real `kube::Client` against the fake API
/// server (no cluster can run here), with the NATS ledger and its lease:
/// plan shows each field, `--dry-run` changes nothing, apply converges, a
/// second apply restarts nothing; two applies at once: the lease refuses the
/// second; SIGTERM records the running step as interrupted and frees the
/// lease at once.
fn kubernetes_steps_and_the_lease(version: NatsVersion) {
    use gatekeeper_testsupport::FakeKube;
    let nats = NatsServer::start(version);
    let kube = FakeKube::start();
    kube.add_deployment(
        serde_json::from_value(json!({
            "metadata": {"name": "normalize-service", "namespace": "staging", "generation": 3,
                         "labels": {"app.kubernetes.io/part-of": "athlete-ally"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "normalize-service"}},
                     "template": {"metadata": {"labels": {"app": "normalize-service"}}}},
            "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2,
                       "readyReplicas": 2, "availableReplicas": 2}
        }))
        .unwrap(),
    );
    kube.add_config_map(
        serde_json::from_value(json!({
            "metadata": {"name": "event-bus-config", "namespace": "staging"},
            "data": {"EVENT_STREAM_MODE": "single"}
        }))
        .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let kubeconfig = kube.kubeconfig(d, "staging");
    std::fs::write(
        d.join("gatekeeper.toml"),
        KUBE_CONFIG.replace("KUBECONFIG", &kubeconfig.display().to_string()),
    )
    .unwrap();
    legacy_topology(&nats);
    let ledger = || -> Vec<Value> {
        let o = run(d, &nats, &["ledger"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let mode = || {
        kube.config_map("staging", "event-bus-config")
            .unwrap()
            .data
            .unwrap()["EVENT_STREAM_MODE"]
            .clone()
    };
    let replicas = || {
        kube.deployment("staging", "normalize-service")
            .unwrap()
            .spec
            .unwrap()
            .replicas
    };

    let o = run(d, &nats, &["plan", "cut-over"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    for line in [
        "~ configmap staging/event-bus-config: EVENT_STREAM_MODE: single → multi",
        "~ rollout restart normalize-service (an earlier step changes something)",
        "~ deployment staging/normalize-service: replicas 2 → 5",
    ] {
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(line),
            "missing `{line}`: {}",
            text(&o)
        );
    }

    // A dry run records would-run steps and changes nothing.
    let o = run(d, &nats, &["apply", "cut-over", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(mode(), "single");
    assert_eq!(replicas(), Some(2));
    let would: Vec<Value> = ledger()
        .into_iter()
        .filter(|r| r["kind"] == "step")
        .collect();
    assert_eq!(would.len(), 3);
    assert!(
        would.iter().all(|r| r["outcome"] == "would-run"),
        "{would:?}"
    );

    let o = run(d, &nats, &["apply", "cut-over", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(mode(), "multi");
    assert_eq!(replicas(), Some(5));
    let restarted = kube
        .deployment("staging", "normalize-service")
        .unwrap()
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .annotations
        .unwrap();
    assert!(
        restarted.contains_key("kubectl.kubernetes.io/restartedAt"),
        "{restarted:?}"
    );

    let o = run(d, &nats, &["plan", "cut-over"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let before = ledger().len();
    let o = run(d, &nats, &["apply", "cut-over", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let again: Vec<Value> = ledger()[before..]
        .iter()
        .filter(|r| r["kind"] == "step")
        .cloned()
        .collect();
    assert_eq!(again.len(), 3);
    assert!(
        again.iter().all(|r| r["outcome"] == "unchanged"),
        "{again:?}"
    );
    assert!(
        again[1]["detail"].as_str().unwrap().contains("no restart"),
        "{again:?}"
    );

    // Two applies at once: the lease lets one act.
    let first = spawn_apply(d, &nats, &["apply", "slow", "--yes", "--agent", "first"]);
    wait_for("the first apply's step", Duration::from_secs(30), || {
        d.join("started").exists().then_some(())
    });
    let o = run(
        d,
        &nats,
        &["apply", "cut-over", "--yes", "--agent", "second"],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("another apply holds the lease (agent `first`)"),
        "{}",
        text(&o)
    );

    // SIGTERM: the step is recorded as interrupted and the lease is free.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let first = first.wait_with_output().unwrap();
    assert_eq!(
        first.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let records = ledger();
    let step = records
        .iter()
        .rfind(|r| r["kind"] == "step" && r["plan"] == "slow")
        .unwrap();
    assert_eq!(step["outcome"], "interrupted", "{step}");
    let applied = records.iter().rfind(|r| r["kind"] == "apply").unwrap();
    assert_eq!(applied["outcome"], "interrupted", "{applied}");
    let o = run(
        d,
        &nats,
        &["apply", "cut-over", "--yes", "--agent", "third"],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "the lease was released: {}",
        text(&o)
    );
}

#[test]
fn kubernetes_steps_and_the_lease_on_nats_2_9() {
    kubernetes_steps_and_the_lease(NatsVersion::V2_9);
}

#[test]
fn kubernetes_steps_and_the_lease_on_nats_2_15() {
    kubernetes_steps_and_the_lease(NatsVersion::V2_15);
}
