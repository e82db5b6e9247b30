//! Verdicts as attestations through the built binary: `check --attest DIR`
//! writes an in-toto statement, `verify-attestation` checks it and, with the
//! snapshot, re-evaluates it to the identical report; an edited statement,
//! another snapshot, a changed config or a swapped gate component is named
//! (exit 1).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_gatekeeper");

fn example(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/athlete-ally")
        .join(file)
}

fn run(args: &[&str], cache: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .env("NATS_URL", "nats://127.0.0.1:1")
        .env_remove("DATABASE_URL")
        .env_remove("KUBECONFIG")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// The one statement in `dir`.
fn statement_in(dir: &Path) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".intoto.json"))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

fn verify(statement: &Path, snapshot: Option<&Path>, config: &Path, cache: &Path) -> (i32, String) {
    let mut args = vec![
        "verify-attestation".to_owned(),
        statement.display().to_string(),
        "-c".into(),
        config.display().to_string(),
    ];
    if let Some(s) = snapshot {
        args.extend(["--snapshot".into(), s.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&args, cache);
    (
        o.status.code().unwrap(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn edit(path: &Path, f: impl FnOnce(&mut Value)) -> PathBuf {
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    f(&mut v);
    let out = path.with_extension("edited.json");
    std::fs::write(&out, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    out
}

#[test]
fn a_verdict_statement_replays_to_the_identical_report_and_each_lie_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = example("gatekeeper.toml");
    let recording = example("snapshots/staging-after-cutover.recording.json");
    let attest_dir = dir.path().join("attest");
    let o = run(
        &[
            "check",
            "phase-2",
            "-c",
            config.to_str().unwrap(),
            "--snapshot",
            recording.to_str().unwrap(),
            "-o",
            "json",
            "--attest",
            attest_dir.to_str().unwrap(),
        ],
        dir.path(),
    );
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let statement_path = statement_in(&attest_dir);
    let statement: Value =
        serde_json::from_slice(&std::fs::read(&statement_path).unwrap()).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "urn:gatekeeper:verdict:v1");
    assert_eq!(
        statement["subject"][0]["name"],
        "staging-after-cutover.recording.json"
    );
    {
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(std::fs::read(&recording).unwrap()));
        assert_eq!(statement["subject"][0]["digest"]["sha256"], digest);
    }
    let p = &statement["predicate"];
    assert_eq!(
        p["report"], report,
        "the statement holds the printed report"
    );
    assert_eq!(p["verdict"], report["verdict"]);
    assert_eq!(p["phase"], "phase-2");
    assert_eq!(
        p["gates"].as_array().unwrap().len(),
        report["gates"].as_array().unwrap().len()
    );
    for g in p["gates"].as_array().unwrap() {
        assert_eq!(g["sha256"].as_str().map(str::len), Some(64), "{g}");
        assert_eq!(g["contract"], "0.2.0", "{g}");
    }
    assert_eq!(p["config"]["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(p["lease_epoch"], Value::Null);

    let (code, out) = verify(&statement_path, None, &config, dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("consistent: phase-2 defer on staging-after-cutover.recording.json"),
        "{out}"
    );
    let (code, out) = verify(&statement_path, Some(&recording), &config, dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("re-evaluated to the identical report (sha256:"),
        "{out}"
    );

    // The verdict changed to go, nothing else.
    let lie = edit(&statement_path, |v| v["predicate"]["verdict"] = "go".into());
    let (code, out) = verify(&lie, Some(&recording), &config, dir.path());
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out.trim(),
        "NOT VERIFIED: the statement contradicts itself: verdict: the predicate says go, its report defer"
    );
    // Verdict and report both changed: the report's hash gives it away.
    let lie = edit(&statement_path, |v| {
        v["predicate"]["verdict"] = "go".into();
        v["predicate"]["report"]["verdict"] = "go".into();
    });
    let (code, out) = verify(&lie, None, &config, dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not hash to report_sha256"), "{out}");

    // Another snapshot than the subject.
    let other = example("snapshots/staging-before-migration.json");
    let (code, out) = verify(&statement_path, Some(&other), &config, dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the snapshot file's sha256 is"), "{out}");

    // The config changed since (a threshold, a comment: any byte).
    let changed = dir.path().join("gatekeeper.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&changed, format!("{text}\n# changed\n")).unwrap();
    let (code, out) = verify(&statement_path, Some(&recording), &changed, dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the config's sha256 is"), "{out}");

    // Not a statement at all: could not check (3), naming the file.
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"hello\": 1}").unwrap();
    let (code, out) = verify(&junk, None, &config, dir.path());
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("junk.json: not a verdict statement"), "{out}");
}

#[test]
fn a_swapped_gate_component_and_a_live_check_are_found_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let gates = Path::new(env!("GATEKEEPER_TEST_GATES_DIR"));
    let wasm = dir.path().join("drained.wasm");
    std::fs::copy(gates.join("consumer-drained.wasm"), &wasm).unwrap();
    let config = dir.path().join("gatekeeper.toml");
    std::fs::write(
        &config,
        "[sources.nats]\nurl = \"nats://127.0.0.1:1\"\n\
         [gates.drained]\nwasm = \"drained.wasm\"\n\
         params = { stream = \"ATHLETE_ALLY_EVENTS\", consumer = \"normalize-hrv-durable\" }\n\
         [phases.p]\ngates = [\"drained\"]\n",
    )
    .unwrap();
    // Live: NATS is not there, so the gate defers; the recording of what
    // was collected is written beside the statement and is its subject.
    let attest_dir = dir.path().join("attest");
    let o = run(
        &[
            "check",
            "p",
            "-c",
            config.to_str().unwrap(),
            "--attest",
            attest_dir.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let statement_path = statement_in(&attest_dir);
    let statement: Value =
        serde_json::from_slice(&std::fs::read(&statement_path).unwrap()).unwrap();
    let subject = attest_dir.join(statement["subject"][0]["name"].as_str().unwrap());
    assert!(subject.exists(), "{subject:?}");
    let (code, out) = verify(&statement_path, Some(&subject), &config, dir.path());
    assert_eq!(code, 0, "{out}");

    // The component at the same path replaced (the config is unchanged).
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/consumer-drained-contract-0.1.0.wasm"),
        &wasm,
    )
    .unwrap();
    let (code, out) = verify(&statement_path, Some(&subject), &config, dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("NOT VERIFIED: gate `drained`: its component is"),
        "{out}"
    );
}
