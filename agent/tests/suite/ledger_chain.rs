//! The ledger's hash chain through the built binary: `attest` seals, `ledger
//! verify` names the first edited, removed, reordered or forged record (exit
//! 1), and `check` refuses ledger facts from a broken chain (the ledger
//! criteria become unknown, the phase defers, the reason names the record).
//! On a JSONL file and on a real nats-server (2.9 and 2.15), where two
//! writers at once must not fork the chain.

use gatekeeper_testsupport::{NatsServer, NatsVersion, js_request};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_gatekeeper");

const CRITERIA: &str = r#"
[gates.people]
builtin = "ledger"
[[gates.people.params.criteria]]
id = "staging-verified"
title = "Staging verified by a person"
requires = { kind = "attestation", phase = "phase-2" }
[[gates.people.params.criteria]]
id = "on-call-available"
title = "On-call available"
requires = { kind = "attestation", phase = "phase-2" }

[phases.phase-2]
gates = ["people"]
"#;

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    fn new(ledger: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("gatekeeper.toml");
        std::fs::write(&config, format!("{CRITERIA}\n{ledger}")).unwrap();
        Setup { dir, config }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("-c")
            .arg(&self.config)
            .env("XDG_CACHE_HOME", self.dir.path())
            .env_remove("NATS_URL")
            .env_remove("DATABASE_URL")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    fn attest(&self, criterion: &str, by: &str) {
        let o = self.run(&["attest", "phase-2", criterion, "--by", by]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    /// `ledger verify [extra]`: (exit code, stdout).
    fn verify(&self, extra: &[&str]) -> (i32, String) {
        let mut args = vec!["ledger", "verify"];
        args.extend_from_slice(extra);
        let o = self.run(&args);
        (
            o.status.code().unwrap(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    }

    /// `check phase-2 -o json`: (exit code, the report).
    fn check(&self) -> (i32, Value) {
        let o = self.run(&["check", "phase-2", "-o", "json"]);
        let report = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "check printed no report ({e}): {}",
                String::from_utf8_lossy(&o.stderr)
            )
        });
        (o.status.code().unwrap(), report)
    }
}

/// Every criterion of the report: (id, status, message).
fn criteria(report: &Value) -> Vec<(String, String, String)> {
    report["gates"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["criteria"].as_array().unwrap().clone())
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
                c["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The check defers, every ledger criterion unknown, naming the break.
fn assert_refused(setup: &Setup, names: &str) {
    let (code, report) = setup.check();
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["verdict"], "defer");
    let all = criteria(&report);
    assert_eq!(all.len(), 2, "{report:#}");
    for (id, status, message) in &all {
        assert_eq!(status, "unknown", "{id}: {report:#}");
        assert!(message.contains(names), "{id}: `{message}` lacks `{names}`");
    }
}

fn head_digest(verify_out: &str) -> String {
    verify_out
        .lines()
        .find_map(|l| l.strip_prefix("head: "))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or_else(|| panic!("no head in {verify_out}"))
        .to_owned()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn a_file_ledger_finds_each_tamper_and_check_refuses_it() {
    let setup = Setup::new("[ledger]\nfile = \"ledger.jsonl\"");
    let path = setup.dir.path().join("ledger.jsonl");
    setup.attest("staging-verified", "alice");
    setup.attest("on-call-available", "bob");
    let (code, report) = setup.check();
    assert_eq!(code, 0, "{report:#}");

    let (code, out) = setup.verify(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 records, 2 sealed in the chain"), "{out}");
    let head = head_digest(&out);
    assert!(head.starts_with("sha256:") && head.len() == 71, "{head}");
    let intact = lines(&path);

    // Edited: alice's attestation now says mallory.
    write_lines(
        &path,
        &[intact[0].replace("alice", "mallory"), intact[1].clone()],
    );
    let (code, out) = setup.verify(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("the chain breaks at record 1: its digest does not match its content"),
        "{out}"
    );
    assert_refused(&setup, "the chain breaks at record 1");

    // Removed: the first line is gone, the second moves up.
    write_lines(&path, &intact[1..]);
    let (code, out) = setup.verify(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("record 1: it was sealed for position 2"),
        "{out}"
    );
    assert_refused(&setup, "the chain breaks at record 1");

    // Reordered.
    write_lines(&path, &[intact[1].clone(), intact[0].clone()]);
    assert_eq!(setup.verify(&[]).0, 1);
    assert_refused(&setup, "the chain breaks at record 1");

    // Forged: a plain record appended by hand, as anyone with write access could.
    let forged = json!({"kind": "attestation", "phase": "phase-2", "criterion": "staging-verified",
        "by": "mallory", "at": "2026-01-01T00:00:00Z"});
    write_lines(
        &path,
        &[intact[0].clone(), intact[1].clone(), forged.to_string()],
    );
    let (code, out) = setup.verify(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("record 3: it is not sealed"), "{out}");
    assert_refused(&setup, "the chain breaks at record 3");

    // Restored, the chain is whole again and holds the head it had.
    write_lines(&path, &intact);
    let (code, out) = setup.verify(&["--expect-head", &head]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("holds {head} at record 2")), "{out}");
    assert_eq!(setup.check().0, 0);

    // Rewritten from scratch: a consistent new chain, but not the one whose
    // head was kept.
    std::fs::remove_file(&path).unwrap();
    setup.attest("staging-verified", "mallory");
    setup.attest("on-call-available", "mallory");
    assert_eq!(setup.verify(&[]).0, 0);
    let (code, out) = setup.verify(&["--expect-head", &head]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("the chain does not hold {head}")),
        "{out}"
    );
}

#[test]
fn a_ledger_from_before_the_chain_keeps_working_and_is_extended() {
    let setup = Setup::new("[ledger]\nfile = \"ledger.jsonl\"");
    let path = setup.dir.path().join("ledger.jsonl");
    // What an agent before the chain wrote: plain records.
    let old = json!({"kind": "attestation", "phase": "phase-2", "criterion": "staging-verified",
        "by": "alice", "at": "2026-01-01T00:00:00Z"});
    write_lines(&path, &[old.to_string()]);
    setup.attest("on-call-available", "bob");
    let (code, out) = setup.verify(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("2 records, 1 sealed in the chain, 1 from before the chain (not verifiable)"),
        "{out}"
    );
    assert_eq!(setup.check().0, 0);
    // The old record edited after the first sealed one linked to it: found.
    let mut edited = lines(&path);
    edited[0] = edited[0].replace("alice", "mallory");
    write_lines(&path, &edited);
    let (code, out) = setup.verify(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("record 2: the record it links to at 1 was changed or replaced"),
        "{out}"
    );
}

/// The ledger stream's messages: (sequence, subject, payload).
async fn stream_messages(c: &async_nats::Client) -> Vec<(u64, Value)> {
    let info = js_request(c, "$JS.API.STREAM.INFO.GATEKEEPER_LEDGER", json!({})).await;
    let (first, last) = (
        info["state"]["first_seq"].as_u64().unwrap(),
        info["state"]["last_seq"].as_u64().unwrap(),
    );
    let mut out = Vec::new();
    for seq in first..=last {
        let reply = c
            .request(
                "$JS.API.STREAM.MSG.GET.GATEKEEPER_LEDGER",
                json!({ "seq": seq }).to_string().into(),
            )
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&reply.payload).unwrap();
        if v.get("error").is_none() {
            use base64::Engine as _;
            let data = base64::engine::general_purpose::STANDARD
                .decode(v["message"]["data"].as_str().unwrap())
                .unwrap();
            out.push((seq, serde_json::from_slice(&data).unwrap()));
        }
    }
    out
}

#[tokio::test]
async fn a_nats_ledger_never_forks_and_finds_removed_copied_and_forged_records() {
    for version in NatsVersion::ALL {
        let nats = NatsServer::start(version);
        let setup = Setup::new(&format!(
            "[sources.nats]\nurl = \"{}\"\n\n[ledger]\nbackend = \"nats\"",
            nats.url()
        ));
        // Two writers at once, four times: every append is a compare-and-set
        // on the stream's last sequence, so the chain never forks.
        for round in 0..4 {
            let a = std::thread::scope(|s| {
                let x = s.spawn(|| setup.attest("staging-verified", &format!("alice-{round}")));
                let y = s.spawn(|| setup.attest("on-call-available", &format!("bob-{round}")));
                x.join().is_ok() && y.join().is_ok()
            });
            assert!(a, "{version:?}: an attest failed");
        }
        let (code, out) = setup.verify(&[]);
        assert_eq!(code, 0, "{version:?}: {out}");
        assert!(out.contains("8 records, 8 sealed in the chain"), "{out}");
        assert_eq!(setup.check().0, 0);

        let c = async_nats::connect(nats.url()).await.unwrap();
        let stored = stream_messages(&c).await;
        assert_eq!(stored.len(), 8);
        for (seq, sealed) in &stored {
            assert_eq!(sealed["seq"].as_u64(), Some(*seq), "{sealed}");
            let prev = sealed["prev"]["seq"].as_u64();
            assert_eq!(prev, seq.checked_sub(1).filter(|p| *p > 0), "{sealed}");
        }

        // A copy of a sealed record republished: found where it lands.
        c.request(
            "gatekeeper.ledger.attestation",
            stored[1].1.to_string().into(),
        )
        .await
        .unwrap();
        let (code, out) = setup.verify(&[]);
        assert_eq!(code, 1, "{version:?}: {out}");
        assert!(
            out.contains("the chain breaks at record 9: it was sealed for position 2"),
            "{out}"
        );
        assert_refused(&setup, "the chain breaks at record 9");
        js_request(
            &c,
            "$JS.API.STREAM.MSG.DELETE.GATEKEEPER_LEDGER",
            json!({ "seq": 9 }),
        )
        .await;
        // Deleting the copy leaves the chain whole: 9 was never linked to.
        assert_eq!(setup.verify(&[]).0, 0);

        // Removed from the middle.
        js_request(
            &c,
            "$JS.API.STREAM.MSG.DELETE.GATEKEEPER_LEDGER",
            json!({ "seq": 3 }),
        )
        .await;
        let (code, out) = setup.verify(&[]);
        assert_eq!(code, 1, "{version:?}: {out}");
        assert!(
            out.contains("the chain breaks at record 4: it links to position 3, but the record before it is at 2: a record was removed"),
            "{out}"
        );
        assert_refused(&setup, "the chain breaks at record 4");

        // A forged record on a fresh ledger, after a sealed one.
        js_request(&c, "$JS.API.STREAM.PURGE.GATEKEEPER_LEDGER", json!({})).await;
        setup.attest("staging-verified", "alice");
        let forged = json!({"kind": "attestation", "phase": "phase-2",
            "criterion": "on-call-available", "by": "mallory", "at": "2026-01-01T00:00:00Z"});
        c.request("gatekeeper.ledger.attestation", forged.to_string().into())
            .await
            .unwrap();
        let (code, out) = setup.verify(&[]);
        assert_eq!(code, 1, "{version:?}: {out}");
        assert!(out.contains("it is not sealed"), "{out}");
        assert_refused(&setup, "it is not sealed");
    }
}
