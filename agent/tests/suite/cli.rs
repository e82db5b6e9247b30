//! End-to-end: the built `gatekeeper` binary, its exit codes and outputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_gatekeeper");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn example(rel: &str) -> String {
    root()
        .join("examples/athlete-ally")
        .join(rel)
        .display()
        .to_string()
}

/// Runs the binary with a private compile cache and no inherited overrides.
fn gatekeeper(args: &[&str], cache: &Path) -> Output {
    gatekeeper_env(args, cache, &[])
}

fn gatekeeper_env(args: &[&str], cache: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .env_remove("NATS_URL")
        .env_remove("DATABASE_URL")
        .env_remove("KUBECONFIG")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .expect("run gatekeeper")
}

fn check(phase: &str, snapshot: &str, extra: &[&str], cache: &Path) -> Output {
    let config = example("topology.toml");
    let snap = example(&format!("snapshots/{snapshot}"));
    let mut args = vec!["check", phase, "--config", &config, "--snapshot", &snap];
    args.extend_from_slice(extra);
    gatekeeper(&args, cache)
}

/// Writes `config` as `dir/g.toml`, checks phase `p` on the staging snapshot
/// with JSON output, and returns the exit code and the parsed report.
fn check_config(dir: &Path, config: &str) -> (Option<i32>, serde_json::Value) {
    let file = dir.join("g.toml");
    std::fs::write(&file, config).unwrap();
    let snapshot = example("snapshots/staging-after-cutover.json");
    let o = gatekeeper(
        &[
            "check",
            "p",
            "-c",
            file.to_str().unwrap(),
            "--snapshot",
            &snapshot,
            "-o",
            "json",
        ],
        dir,
    );
    let report = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("no JSON report ({e}); stderr: {}", stderr(&o)));
    (o.status.code(), report)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn go_is_exit_0_with_every_criterion_in_the_table() {
    let cache = tempfile::tempdir().unwrap();
    let o = check("phase-2", "staging-after-cutover.json", &[], cache.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for id in [
        "dlq-stream-ready",
        "vendor-stream-ready",
        "core-stream-ready",
    ] {
        assert!(
            out.contains(&format!("✓ {id}")),
            "{id} missing from:\n{out}"
        );
    }
    assert!(out.ends_with("verdict: GO\n"), "{out}");
    assert!(!out.contains('\x1b'), "NO_COLOR must disable colour");
}

#[test]
fn no_go_is_exit_1_and_names_the_drift() {
    let cache = tempfile::tempdir().unwrap();
    let o = check(
        "phase-2",
        "staging-after-cutover.json",
        &["--profile", "production"],
        cache.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).contains("stream AA_CORE_HOT drifted: replicas: expected 3, observed 1"));
    let before = check(
        "phase-0",
        "staging-before-migration.json",
        &[],
        cache.path(),
    );
    assert_eq!(before.status.code(), Some(1));
    assert!(stdout(&before).contains("✗ dlq-stream-ready"));
    assert!(stdout(&before).contains("stream AA_DLQ does not exist"));
}

#[test]
fn unknown_facts_defer_with_exit_2() {
    let cache = tempfile::tempdir().unwrap();
    let o = check("phase-2", "nats-down.json", &["-o", "json"], cache.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["verdict"], "defer");
    assert_eq!(v["gates"][0]["criteria"][0]["status"], "unknown");
}

#[test]
fn json_has_the_documented_shape() {
    let cache = tempfile::tempdir().unwrap();
    let o = check(
        "phase-2",
        "staging-after-cutover.json",
        &["--output", "json"],
        cache.path(),
    );
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["phase"], "phase-2");
    assert_eq!(v["verdict"], "go");
    assert_eq!(v["taken_at"], "2025-10-02T17:10:00Z");
    assert!(
        v["snapshot_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let gate = &v["gates"][2];
    assert_eq!(gate["name"], "core-stream");
    assert_eq!(gate["verdict"], "go");
    assert!(
        gate.get("error").is_none(),
        "error appears only when a gate failed"
    );
    let c = &gate["criteria"][0];
    assert_eq!(c["id"], "core-stream-ready");
    assert_eq!(c["status"], "pass");
    assert_eq!(
        c["observed"],
        "subjects [athlete-ally.>, sleep.*], max_age 48h, replicas 1, storage file"
    );
    assert_eq!(
        c["expected"],
        "subjects [athlete-ally.>, sleep.*], max_age 48h, replicas 1, storage file"
    );
    assert_eq!(c["message"], "stream AA_CORE_HOT matches its spec");
    assert_eq!(gate["triggers"], serde_json::json!([]));
}

#[test]
fn junit_has_one_testcase_per_criterion() {
    let cache = tempfile::tempdir().unwrap();
    let o = check(
        "phase-2",
        "staging-after-cutover.json",
        &["--output", "junit", "--profile", "production"],
        cache.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    let xml = stdout(&o);
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 3);
    assert_eq!(xml.matches("<failure ").count(), 3);
    assert!(
        xml.contains(
            r#"<testsuites name="gatekeeper phase-2 no-go" tests="3" failures="3" errors="0">"#
        ),
        "{xml}"
    );
}

#[test]
fn could_not_evaluate_is_exit_3_with_a_clear_message() {
    let cache = tempfile::tempdir().unwrap();
    let p = cache.path();
    let unknown_phase = check("phase-9", "staging-after-cutover.json", &[], p);
    assert_eq!(unknown_phase.status.code(), Some(3));
    assert_eq!(
        stderr(&unknown_phase),
        "gatekeeper: error: unknown phase `phase-9` (phases: phase-0, phase-1, phase-2)\n"
    );

    let missing = check("phase-2", "no-such-file.json", &[], p);
    assert_eq!(missing.status.code(), Some(3));
    assert!(
        stderr(&missing).contains("no-such-file.json: cannot open: No such file or directory"),
        "{}",
        stderr(&missing)
    );

    let bad_snapshot = p.join("bad.json");
    std::fs::write(
        &bad_snapshot,
        r#"{"schema_version": 1, "taken_at": "yesterday"}"#,
    )
    .unwrap();
    let o = gatekeeper(
        &[
            "check",
            "phase-2",
            "-c",
            &example("topology.toml"),
            "--snapshot",
            bad_snapshot.to_str().unwrap(),
        ],
        p,
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("bad.json: field `taken_at`: "),
        "{}",
        stderr(&o)
    );

    let unknown_profile = check(
        "phase-2",
        "staging-after-cutover.json",
        &["--profile", "prod"],
        p,
    );
    assert_eq!(unknown_profile.status.code(), Some(3));
    assert!(
        stderr(&unknown_profile)
            .contains("unknown profile `prod` (defined: local, production, staging)")
    );

    let bad_config = p.join("gatekeeper.toml");
    std::fs::write(&bad_config, "[phases.phase-2]\ngates = [\"nope\"]\n").unwrap();
    let o = gatekeeper(
        &[
            "check",
            "phase-2",
            "-c",
            bad_config.to_str().unwrap(),
            "--snapshot",
            &example("snapshots/nats-down.json"),
        ],
        p,
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).ends_with(
            "gatekeeper.toml:2: phases.phase-2.gates[0]: no gate named `nope` (gates: )\n"
        ),
        "{}",
        stderr(&o)
    );

    // Live, with nothing listening on the configured NATS port: defer, never go.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("nats://127.0.0.1:{}", free.local_addr().unwrap().port());
    drop(free);
    let live = gatekeeper_env(
        &["check", "phase-2", "-c", &example("topology.toml")],
        p,
        &[("NATS_URL", url.as_str())],
    );
    assert_eq!(live.status.code(), Some(2), "{}", stderr(&live));
    assert!(stdout(&live).contains("nats source unavailable: cannot connect to"));
}

#[test]
fn usage_errors_are_exit_3_and_help_is_exit_0() {
    let cache = tempfile::tempdir().unwrap();
    assert_eq!(gatekeeper(&["check"], cache.path()).status.code(), Some(3));
    assert_eq!(
        gatekeeper(&["frobnicate"], cache.path()).status.code(),
        Some(3)
    );
    assert_eq!(
        gatekeeper(&["check", "phase-2", "--output", "yaml"], cache.path())
            .status
            .code(),
        Some(3)
    );
    let help = gatekeeper(&["--help"], cache.path());
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("check"));
}

/// `--sample 0s` turns a phase's sampling off, as `--help` says.
#[test]
fn sample_zero_turns_sampling_off() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path();
    let config = dir.join("g.toml");
    std::fs::write(
        &config,
        "[sources.nats]\nurl = \"nats://127.0.0.1:1\"\ntimeout = \"300ms\"\n\
         [gates.core]\nbuiltin = \"stream-topology\"\nparams = { streams = [{ name = \"AA_CORE_HOT\" }] }\n\
         [phases.p]\ngates = [\"core\"]\nsample = \"1m\"\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let o = gatekeeper(
        &[
            "check",
            "p",
            "-c",
            config.to_str().unwrap(),
            "--sample",
            "0s",
        ],
        dir,
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!stderr(&o).contains("sampling"), "{}", stderr(&o));
}

#[test]
fn a_broken_gate_is_an_error_verdict_and_a_no_go() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path();
    std::fs::write(dir.join("broken.wasm"), b"not wasm at all").unwrap();
    let config = "[gates.broken]\nwasm = \"broken.wasm\"\n[gates.core]\nbuiltin = \"stream-topology\"\n\
                  params = { streams = [{ name = \"AA_CORE_HOT\" }] }\n[phases.p]\ngates = [\"core\", \"broken\"]\n";
    let (code, v) = check_config(dir, config);
    assert_eq!(code, Some(1));
    assert_eq!(v["gates"][0]["verdict"], "go");
    assert_eq!(v["gates"][1]["verdict"], "error");
    assert!(
        v["gates"][1]["error"]
            .as_str()
            .unwrap()
            .starts_with("failed to load: not WebAssembly (no `\\0asm` magic); build the gate with `cargo build --release --target wasm32-wasip2`"),
        "{}",
        v["gates"][1]["error"]
    );
}

#[test]
fn a_gate_missing_a_required_param_is_a_config_error() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path();
    std::fs::write(
        dir.join("g.toml"),
        "[gates.core]\nbuiltin = \"stream-topology\"\n[phases.p]\ngates = [\"core\"]\n",
    )
    .unwrap();
    let snapshot = example("snapshots/staging-after-cutover.json");
    let o = gatekeeper(
        &[
            "check",
            "p",
            "-c",
            dir.join("g.toml").to_str().unwrap(),
            "--snapshot",
            &snapshot,
        ],
        dir,
    );
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        stderr(&o),
        format!(
            "gatekeeper: error: {}:1: gates.core.params.streams: param `streams` is required (List of {{name, id?, title?, subjects?, max_age?, replicas?, storage?, retention?, discard?}}; one criterion per stream.)\n",
            dir.join("g.toml").display()
        )
    );
}

/// Issue 12: a typo or a type error in a profile nobody is using fails every
/// command that loads the gates, naming the file, line, profile, gate and
/// field (and the closest param name for a typo); `validate` is the check
/// for CI, with no source contacted.
#[test]
fn a_bad_param_in_any_profile_fails_at_load() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path();
    let base = "[gates.core]\nbuiltin = \"stream-topology\"\n\
                params = { streams = [{ name = \"AA_CORE_HOT\", replicas = 1 }] }\n\
                [phases.p]\ngates = [\"core\"]\n\
                [sources.nats]\nurl = \"nats://127.0.0.1:1\"\n";
    let cases = [
        (
            "[profiles.production.gates.core.params]\nstreamz = []\n",
            ":9: profile `production`: gates.core.params.streamz: unknown param `streamz`; did you mean `streams`? (accepts: streams)",
        ),
        (
            "[[profiles.production.gates.core.params.streams]]\nname = \"AA_CORE_HOT\"\nreplicas = \"3\"\n",
            ":10: profile `production`: gates.core.params.streams[0].replicas: bad params: invalid type: string \"3\", expected u32",
        ),
    ];
    let file = dir.join("g.toml");
    let f = file.to_str().unwrap();
    let snapshot = example("snapshots/staging-after-cutover.json");
    for (profile, expected) in cases {
        std::fs::write(&file, format!("{base}{profile}")).unwrap();
        for args in [
            vec!["validate", "-c", f],
            vec!["check", "p", "-c", f, "--snapshot", &snapshot],
            vec!["gates", "list", "-c", f],
            vec!["gates", "inspect", "core", "-c", f],
        ] {
            let o = gatekeeper(&args, dir);
            assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stdout(&o));
            assert_eq!(
                stderr(&o),
                format!("gatekeeper: error: {f}{expected}\n"),
                "{args:?}"
            );
        }
    }
    std::fs::write(&file, base).unwrap();
    let o = gatekeeper(&["validate", "-c", f], dir);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "valid: 1 gates, 1 phases; params checked under (base)\n"
    );
}

#[test]
fn gates_list_and_inspect() {
    let cache = tempfile::tempdir().unwrap();
    let list = gatekeeper(
        &["gates", "list", "-c", &example("topology.toml")],
        cache.path(),
    );
    assert_eq!(list.status.code(), Some(0), "{}", stderr(&list));
    let out = stdout(&list);
    for name in [
        "builtin:stream-topology",
        "core-stream",
        "dlq-stream",
        "vendor-stream",
    ] {
        assert!(out.contains(name), "{name} missing:\n{out}");
    }
    let inspect = gatekeeper(
        &[
            "gates",
            "inspect",
            "core-stream",
            "-c",
            &example("topology.toml"),
            "-o",
            "json",
        ],
        cache.path(),
    );
    assert_eq!(inspect.status.code(), Some(0), "{}", stderr(&inspect));
    let v: serde_json::Value = serde_json::from_str(&stdout(&inspect)).unwrap();
    assert_eq!(v["metadata"]["name"], "stream-topology");
    assert_eq!(v["metadata"]["sources"], serde_json::json!(["nats"]));
    assert_eq!(v["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(v["limits"]["deadline_ms"], 500);
    assert_eq!(v["limits"]["fuel"], 200_000_000);
    assert_eq!(v["params"]["streams"][0]["name"], "AA_CORE_HOT");
    let table = gatekeeper(&["gates", "inspect", "stream-topology"], cache.path());
    assert_eq!(table.status.code(), Some(0), "{}", stderr(&table));
    assert!(
        stdout(&table).contains("streams (required)"),
        "{}",
        stdout(&table)
    );
}

#[test]
fn secrets_in_urls_never_reach_the_output() {
    let cache = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .args([
            "check",
            "phase-2",
            "-c",
            &example("topology.toml"),
            "--snapshot",
            &example("snapshots/nats-down.json"),
            "--log-format",
            "json",
        ])
        .env("XDG_CACHE_HOME", cache.path())
        .env("NATS_URL", "nats://app:hunter2@127.0.0.1:14222")
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!all.contains("hunter2"), "secret leaked:\n{all}");
}

#[test]
fn a_custom_gate_loads_from_a_path_with_a_sha256_pin() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let wasm = Path::new(env!("GATEKEEPER_TEST_GATES_DIR")).join("consumer-drained.wasm");
    let digest = hex::encode(sha2::Sha256::digest(std::fs::read(&wasm).unwrap()));
    let config = |sha: &str| {
        format!(
            "[gates.legacy-drained]\nwasm = {:?}\nsha256 = \"{sha}\"\nparams = {{ stream = \"ATHLETE_ALLY_EVENTS\", consumer = \"normalize-hrv-durable\", id = \"legacy-consumer-drained\" }}\n[phases.p]\ngates = [\"legacy-drained\"]\n",
            wasm.display().to_string()
        )
    };
    let (code, v) = check_config(dir.path(), &config(&digest));
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(
        v["gates"][0]["criteria"][0]["id"],
        "legacy-consumer-drained"
    );
    assert_eq!(v["gates"][0]["criteria"][0]["observed"], "0 pending");

    let (code, v) = check_config(dir.path(), &config(&"ab".repeat(32)));
    assert_eq!(code, Some(1));
    assert_eq!(v["gates"][0]["verdict"], "error");
    assert_eq!(
        v["gates"][0]["error"],
        format!(
            "failed to load: sha256 mismatch: config pins {}, the gate is {digest}",
            "ab".repeat(32)
        )
    );
}

/// A plan naming a trigger its gate does not declare (contract 0.2 `needs`)
/// is a config error, located, with the closest trigger suggested.
#[test]
fn a_plan_naming_an_undeclared_trigger_is_refused() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path();
    let file = dir.join("g.toml");
    std::fs::write(
        &file,
        "[sources.nats]\nurl = \"nats://127.0.0.1:1\"\n\
         [ledger]\nbackend = \"file\"\n\
         [gates.t]\nbuiltin = \"signals\"\n\
         [[gates.t.params.signals]]\nid = \"dlq-spike\"\ntitle = \"DLQ spike\"\n\
         measure = { kind = \"stream-messages\", stream = \"AA_DLQ\" }\nwhen = \"> 10\"\ntrigger = \"automatic\"\n\
         [phases.canary]\ngates = [\"t\"]\n\
         [watch.plans.rollback]\non = [\"t/dlq-spke\"]\n\
         steps = [{ action = \"exec\", command = [\"/bin/true\"] }]\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let expected = format!(
        "gatekeeper: error: {f}:16: watch.plans.rollback.on[0]: gate `t` raises no trigger `dlq-spke`; did you mean `t/dlq-spike`? (it can raise: dlq-spike)\n"
    );
    let o = gatekeeper(&["validate", "-c", f], dir);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(stderr(&o), expected);
    let o = gatekeeper(&["watch", "-c", f, "--interval", "1s"], dir);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(stderr(&o), expected);
}
