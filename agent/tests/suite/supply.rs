//! Gates that travel: signed (minisign format, checked against the real
//! `minisign`), pushed to and pulled from a real OCI registry (the CNCF
//! distribution server, Debian's `docker-registry`), pinned by digest,
//! read from the local cache, and refused at load when `[trust]` says no.

use gatekeeper_testsupport::OciRegistry;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_gatekeeper");
const TEST_GATES: &str = env!("GATEKEEPER_TEST_GATES_DIR");

/// Runs the binary with a private compile cache and OCI cache under `home`.
fn gk(home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(home)
        .env("XDG_CACHE_HOME", home.join("xdg"))
        .env("GATEKEEPER_OCI_CACHE", home.join("oci-cache"))
        .env_remove("GATEKEEPER_SIGNING_PASSWORD")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run gatekeeper")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        out(&o),
        err(&o)
    );
    out(&o)
}

fn minisign() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("minisign"))
            .find(|f| f.exists())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`minisign` is needed for this test: `apt-get install minisign` or run scripts/setup"
        )
    })
}

/// Runs the real `minisign` in `dir`; it must succeed.
fn minisign_ok(dir: &Path, args: &[&str]) -> Output {
    let o = Command::new(minisign())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "minisign {args:?}: {}", err(&o));
    o
}

fn snapshot() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/athlete-ally/snapshots/staging-after-cutover.json")
        .display()
        .to_string()
}

/// A copy of a test gate (consumer-drained) in `dir`.
fn gate_file(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy(format!("{TEST_GATES}/consumer-drained.wasm"), &path).unwrap();
    path
}

fn sha256_hex(path: &Path) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// Checks phase `p` of `config` on the staging snapshot: (exit, report).
fn check(home: &Path, config: &str) -> (Option<i32>, serde_json::Value) {
    std::fs::write(home.join("gk.toml"), config).unwrap();
    let snap = snapshot();
    let o = gk(
        home,
        &[
            "check",
            "p",
            "-c",
            "gk.toml",
            "--snapshot",
            &snap,
            "-o",
            "json",
        ],
    );
    let report =
        serde_json::from_str(&out(&o)).unwrap_or_else(|e| panic!("no report ({e}): {}", err(&o)));
    (o.status.code(), report)
}

const PARAMS: &str =
    "params = { stream = \"ATHLETE_ALLY_EVENTS\", consumer = \"legacy-consumer\" }";

#[test]
fn a_signed_gate_goes_through_a_real_registry_and_is_pinned_trusted_and_replayed() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let wasm = gate_file(h, "drained.wasm");
    let keygen = ok(gk(h, &["gate", "keygen", "team"]));
    assert!(
        keygen.starts_with("public key team.pub (key id "),
        "{keygen}"
    );
    ok(gk(
        h,
        &["gate", "sign", "drained.wasm", "--key", "team.key"],
    ));
    // The real minisign accepts our signature, and ours accepts its.
    let v = minisign_ok(h, &["-V", "-p", "team.pub", "-m", "drained.wasm"]);
    assert!(
        out(&v).contains("Signature and comment signature verified"),
        "{}",
        out(&v)
    );

    let registry = OciRegistry::start();
    let tag_ref = format!("oci://{}/team/drained:1.0", registry.address());
    let pinned = ok(gk(h, &["gate", "push", "drained.wasm", &tag_ref]));
    let pinned = pinned.trim();
    assert!(
        pinned.starts_with(&format!("{tag_ref}@sha256:")),
        "{pinned}"
    );
    let manifest_hex = &pinned[pinned.len() - 64..];
    let (status, tags) = registry.get("/v2/team/drained/tags/list");
    assert_eq!(status, 200, "{tags}");
    let tags: serde_json::Value = serde_json::from_str(&tags).unwrap();
    let mut tags: Vec<&str> = tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    tags.sort_unstable();
    assert_eq!(tags, ["1.0", &format!("sha256-{manifest_hex}.minisig")]);
    // Pushing the same gate again gives the same digest (deterministic manifest).
    assert_eq!(
        ok(gk(h, &["gate", "push", "drained.wasm", &tag_ref])).trim(),
        pinned
    );

    // A fresh machine: an empty cache, pull by tag, get the pin back.
    std::fs::remove_dir_all(h.join("oci-cache")).unwrap();
    assert_eq!(ok(gk(h, &["gate", "pull", &tag_ref])).trim(), pinned);
    let cached = h.join("oci-cache/blobs/sha256").join(sha256_hex(&wasm));
    assert_eq!(
        std::fs::read(&cached).unwrap(),
        std::fs::read(&wasm).unwrap()
    );
    assert!(
        h.join(format!("oci-cache/signatures/{manifest_hex}.minisig"))
            .exists()
    );

    // Pinned in a config with [trust]: loads, runs, names digest and signer.
    let trusted = |key: &str, gates: &str| {
        format!(
            "[trust.keys.team]\npublic_key_file = \"{key}\"\ngates = [{gates}]\n\n\
             [gates.drained]\noci = \"{pinned}\"\n{PARAMS}\n\n[phases.p]\ngates = [\"drained\"]\n"
        )
    };
    let (code, report) = check(h, &trusted("team.pub", "\"drained\""));
    let g = &report["gates"][0];
    assert_eq!(g["sha256"], sha256_hex(&wasm).as_str(), "{report}");
    assert!(
        g["signer"].as_str().unwrap().starts_with("team (key "),
        "{report}"
    );
    assert_ne!(g["verdict"], "error", "{report}");
    assert_ne!(code, Some(3));
    // The table says it too; `gate pull --config` fetches every pinned gate.
    let snap = snapshot();
    let table = out(&gk(
        h,
        &["check", "p", "-c", "gk.toml", "--snapshot", &snap],
    ));
    assert!(table.contains("signer: team (key "), "{table}");
    std::fs::remove_dir_all(h.join("oci-cache")).unwrap();
    assert_eq!(ok(gk(h, &["gate", "pull", "-c", "gk.toml"])).trim(), pinned);
    // With the registry gone, the pinned gate still loads from the cache.
    drop(registry);
    let (_, report) = check(h, &trusted("team.pub", "\"drained\""));
    assert_ne!(report["gates"][0]["verdict"], "error", "{report}");

    // Another key altogether.
    minisign_ok(h, &["-G", "-W", "-p", "other.pub", "-s", "other.key"]);
    let (code, report) = check(h, &trusted("other.pub", "\"*\""));
    assert_eq!(code, Some(1));
    let e = report["gates"][0]["error"].as_str().unwrap();
    assert!(e.contains("which is not a trusted key"), "{e}");
    // The signing key is trusted, but only for other gates: refused, never run.
    let (code, report) = check(
        h,
        &format!(
            "[trust.keys.platform]\npublic_key_file = \"other.pub\"\ngates = [\"drained\"]\n\
             [trust.keys.team]\npublic_key_file = \"team.pub\"\ngates = [\"team-*\"]\n\n\
             [gates.drained]\noci = \"{pinned}\"\n{PARAMS}\n\n[phases.p]\ngates = [\"drained\"]\n"
        ),
    );
    assert_eq!(code, Some(1));
    let e = report["gates"][0]["error"].as_str().unwrap();
    assert!(
        e.contains("refused by [trust]: signed by `team`")
            && e.contains("does not allow to sign gate `drained`"),
        "{e}"
    );

    // The cached component changed on disk: refused, not trusted.
    let mut bytes = std::fs::read(&cached).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&cached, bytes).unwrap();
    let (code, report) = check(h, &trusted("team.pub", "\"drained\""));
    assert_eq!(code, Some(1));
    let e = report["gates"][0]["error"].as_str().unwrap();
    assert!(e.contains("changed in the cache; pull it again"), "{e}");
    // Not in the cache at all: the error says how to get it.
    std::fs::remove_dir_all(h.join("oci-cache")).unwrap();
    let (_, report) = check(h, &trusted("team.pub", "\"drained\""));
    let e = report["gates"][0]["error"].as_str().unwrap();
    assert!(
        e.contains(&format!("run `gatekeeper gate pull {pinned}`")),
        "{e}"
    );
}

#[test]
fn trust_refuses_unsigned_forged_and_minisign_signed_gates_correctly() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    gate_file(h, "drained.wasm");
    minisign_ok(h, &["-G", "-W", "-p", "ms.pub", "-s", "ms.key"]);
    let config = |gate: &str| {
        format!(
            "[trust.keys.ms]\npublic_key_file = \"ms.pub\"\ngates = [\"*\"]\n\n\
             [gates.drained]\nwasm = \"{gate}\"\n{PARAMS}\n\n[phases.p]\ngates = [\"drained\"]\n"
        )
    };
    // Unsigned.
    let (code, report) = check(h, &config("drained.wasm"));
    assert_eq!(code, Some(1));
    let e = report["gates"][0]["error"].as_str().unwrap();
    assert!(
        e.contains("unsigned: [trust] requires a signature") && e.contains("drained.wasm.minisig"),
        "{e}"
    );
    // Signed with the real minisign: accepted, and named by its config key.
    minisign_ok(h, &["-S", "-s", "ms.key", "-m", "drained.wasm"]);
    let (_, report) = check(h, &config("drained.wasm"));
    assert!(
        report["gates"][0]["signer"]
            .as_str()
            .unwrap()
            .starts_with("ms (key "),
        "{report}"
    );
    // The signature of one gate beside another's bytes: forged.
    let hostile = h.join("hostile.wasm");
    std::fs::copy(format!("{TEST_GATES}/hostile.wasm"), &hostile).unwrap();
    std::fs::copy(
        h.join("drained.wasm.minisig"),
        h.join("hostile.wasm.minisig"),
    )
    .unwrap();
    let (code, report) = check(h, &config("hostile.wasm"));
    assert_eq!(code, Some(1));
    let e = report["gates"][0]["error"].as_str().unwrap();
    assert!(e.contains("BAD SIGNATURE"), "{e}");
    // A garbled signature file.
    std::fs::write(
        h.join("hostile.wasm.minisig"),
        "untrusted comment: x\nnot base64\n",
    )
    .unwrap();
    let (_, report) = check(h, &config("hostile.wasm"));
    let e = report["gates"][0]["error"].as_str().unwrap();
    assert!(e.contains("its signature is unreadable"), "{e}");
    // `gate verify` says the same to a person, with its exit code.
    let o = gk(
        h,
        &[
            "gate",
            "verify",
            "hostile.wasm",
            "--pubkey",
            "ms.pub",
            "--signature",
            "drained.wasm.minisig",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        out(&o).starts_with("INVALID: hostile.wasm: BAD SIGNATURE"),
        "{}",
        out(&o)
    );
    // Without [trust], signatures are not checked, and the report says so.
    let plain = "[gates.drained]\nwasm = \"hostile.wasm\"\n[phases.p]\ngates = [\"drained\"]\n";
    let (_, report) = check(h, plain);
    assert_eq!(
        report["gates"][0]["signer"], "unchecked (no [trust] in the config)",
        "{report}"
    );
    // An encrypted key needs its password from the environment, never a prompt.
    let o = gk(h, &["gate", "keygen", "enc", "--encrypt"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        err(&o).contains("GATEKEEPER_SIGNING_PASSWORD"),
        "{}",
        err(&o)
    );
}

#[test]
fn a_registry_serving_altered_content_is_refused_on_pull() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let wasm = gate_file(h, "drained.wasm");
    let registry = OciRegistry::start();
    let tag_ref = format!("oci://{}/team/drained:1.0", registry.address());
    ok(gk(h, &["gate", "push", "drained.wasm", &tag_ref]));
    std::fs::remove_dir_all(h.join("oci-cache")).unwrap();
    // Change the layer's bytes in the registry's own storage.
    let hex = sha256_hex(&wasm);
    let blob = registry.data_dir().join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut bytes = std::fs::read(&blob).unwrap_or_else(|e| panic!("{}: {e}", blob.display()));
    bytes[100] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    let o = gk(h, &["gate", "pull", &tag_ref]);
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    assert!(
        err(&o).contains(&format!(
            "blob sha256:{hex}: the registry sent content whose digest is sha256:"
        )),
        "{}",
        err(&o)
    );
    assert!(
        !h.join("oci-cache/blobs/sha256").join(&hex).exists(),
        "altered content was cached"
    );
    // Pushing a file that is not a gate is refused before anything is sent.
    std::fs::write(h.join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let o = gk(
        h,
        &[
            "gate",
            "push",
            "core.wasm",
            &format!("oci://{}/team/core:1", registry.address()),
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(
        err(&o).contains("not pushed: it does not load: this is a core wasm module"),
        "{}",
        err(&o)
    );
    let (status, _) = registry.get("/v2/team/core/tags/list");
    assert_eq!(status, 404, "{}", registry.log());
}

#[test]
fn gate_run_and_inspect_take_a_file_and_load_errors_say_what_was_given() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    gate_file(h, "drained.wasm");
    let snap = snapshot();
    let o = gk(
        h,
        &[
            "gate",
            "run",
            "drained.wasm",
            "--snapshot",
            &snap,
            "--params",
            r#"{"stream":"ATHLETE_ALLY_EVENTS","consumer":"legacy-consumer","max_pending":0}"#,
            "-o",
            "json",
        ],
    );
    let report: serde_json::Value =
        serde_json::from_str(&out(&o)).unwrap_or_else(|e| panic!("{e}: {}", err(&o)));
    assert_eq!(report["phase"], "run");
    assert_eq!(report["gates"][0]["name"], "drained");
    assert_eq!(
        report["gates"][0]["signer"],
        "unchecked (no [trust] in the config)"
    );
    let code = o.status.code().unwrap();
    let verdict = report["verdict"].as_str().unwrap();
    assert_eq!(
        code,
        match verdict {
            "go" => 0,
            "no-go" => 1,
            _ => 2,
        },
        "{report}"
    );
    // Params errors name the param; --params must be an object.
    let o = gk(
        h,
        &[
            "gate",
            "run",
            "drained.wasm",
            "--snapshot",
            &snap,
            "--params",
            r#"{"stream":"S","bogus":1}"#,
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(err(&o).contains("unknown param `bogus`"), "{}", err(&o));
    let o = gk(
        h,
        &[
            "gate",
            "run",
            "drained.wasm",
            "--snapshot",
            &snap,
            "--params",
            "[1]",
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(
        err(&o).contains("--params: must be a JSON object"),
        "{}",
        err(&o)
    );
    // inspect takes the file.
    let o = gk(h, &["gate", "inspect", "drained.wasm"]);
    assert!(ok(o).contains("contract:        gatekeeper:gate@0.2.0"));

    // What a confused author might hand over, and what they are told.
    std::fs::write(h.join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::copy("/bin/true", h.join("native.wasm")).unwrap();
    std::fs::write(h.join("text.wasm"), ";; gate\n(component)\n").unwrap();
    for (file, said) in [
        ("core.wasm", "this is a core wasm module, not a component"),
        (
            "native.wasm",
            "an ELF file: a native library or program, not wasm",
        ),
        ("text.wasm", "this is WebAssembly text (WAT)"),
    ] {
        let o = gk(h, &["gate", "run", file, "--snapshot", &snap, "-o", "json"]);
        assert_eq!(o.status.code(), Some(1), "{file}: {}", err(&o));
        let report: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
        let e = report["gates"][0]["error"].as_str().unwrap();
        assert!(e.contains(said), "{file}: {e}");
        assert!(e.contains("wasm32-wasip2"), "{file}: {e}");
    }
    let o = gk(
        h,
        &[
            "gate",
            "run",
            &format!("{TEST_GATES}/wrong-interface.wasm"),
            "--snapshot",
            &snap,
            "-o",
            "json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    let e = report["gates"][0]["error"].as_str().unwrap();
    assert!(e.contains("export_gate!(YourGate);"), "{e}");
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_poisoned_compile_cache_cannot_run_under_a_trusted_signer() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    gate_file(h, "drained.wasm");
    std::fs::copy(format!("{TEST_GATES}/hostile.wasm"), h.join("hostile.wasm")).unwrap();
    ok(gk(h, &["gate", "keygen", "team"]));
    ok(gk(
        h,
        &["gate", "sign", "drained.wasm", "--key", "team.key"],
    ));
    // Compile both into the cache (no config: the cache is on), then copy
    // the hostile gate's compiled code over the signed gate's entry.
    let cache = h.join("xdg/gatekeeper/wasmtime");
    ok(gk(h, &["gate", "inspect", "drained.wasm"]));
    let drained_entries = files_under(&cache);
    ok(gk(h, &["gate", "inspect", "hostile.wasm"]));
    let hostile_entries: Vec<PathBuf> = files_under(&cache)
        .into_iter()
        .filter(|f| !drained_entries.contains(f))
        .collect();
    let (Some(target), Some(poison)) = (
        drained_entries
            .iter()
            .find(|f| f.to_string_lossy().contains("/modules/")),
        hostile_entries
            .iter()
            .find(|f| f.to_string_lossy().contains("/modules/")),
    ) else {
        panic!("no compiled entries: {drained_entries:?} {hostile_entries:?}");
    };
    std::fs::copy(poison, target).unwrap();
    let gate = format!(
        "[gates.drained]\nwasm = \"drained.wasm\"\n{PARAMS}\n\n[phases.p]\ngates = [\"drained\"]\n"
    );
    // Without [trust] the cache is read back as it is (the README says so):
    // the hostile metadata answers, and the drained params are refused.
    std::fs::write(h.join("plain.toml"), &gate).unwrap();
    let snap = snapshot();
    let o = gk(h, &["check", "p", "-c", "plain.toml", "--snapshot", &snap]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "the poisoning did not take: {}",
        err(&o)
    );
    // With [trust] the signed bytes are compiled, the poisoned entry unused.
    let trusted = format!(
        "[trust.keys.team]\npublic_key_file = \"team.pub\"\ngates = [\"drained\"]\n\n{gate}"
    );
    let before = files_under(&cache);
    let (code, report) = check(h, &trusted);
    let g = &report["gates"][0];
    assert_ne!(code, Some(3), "{report}");
    assert_eq!(g["criteria"][0]["id"], "consumer-drained", "{report}");
    assert!(
        g["signer"].as_str().unwrap().starts_with("team (key "),
        "{report}"
    );
    assert_eq!(
        files_under(&cache),
        before,
        "a trusted load wrote to the compile cache"
    );
}

#[test]
fn validate_loads_the_gates_a_profile_swaps_in() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    gate_file(h, "drained.wasm");
    gate_file(h, "unsigned.wasm");
    ok(gk(h, &["gate", "keygen", "team"]));
    ok(gk(
        h,
        &["gate", "sign", "drained.wasm", "--key", "team.key"],
    ));
    let config = format!(
        "[trust.keys.team]\npublic_key_file = \"team.pub\"\ngates = [\"*\"]\n\n\
         [gates.drained]\nwasm = \"drained.wasm\"\n{PARAMS}\n\n[phases.p]\ngates = [\"drained\"]\n\n\
         [profiles.staging.gates.drained]\nwasm = \"drained.wasm\"\n\n\
         [profiles.production.gates.drained]\nwasm = \"unsigned.wasm\"\n\n\
         [profiles.production.gates.extra]\nwasm = \"missing.wasm\"\n"
    );
    std::fs::write(h.join("gk.toml"), config).unwrap();
    let o = gk(h, &["validate", "-c", "gk.toml"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let said = out(&o);
    assert!(
        said.contains("profile production: gate drained: refused by [trust]: unsigned"),
        "{said}"
    );
    assert!(said.contains("profile production: gate extra: "), "{said}");
    assert!(!said.contains("profile staging"), "{said}");
}
