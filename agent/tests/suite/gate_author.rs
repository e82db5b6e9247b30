//! The walkthrough a new gate author follows from the README, through the
//! binary and real tools: `gate new` in an empty directory, `cargo test`,
//! the wasm build, `gate run`, `gate test` (a failing case, its diff and
//! JUnit, `--bless`), `sign`, `push` to a real registry, the pinned
//! reference in a config with `[trust]`, and `check`.

use gatekeeper_testsupport::OciRegistry;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_gatekeeper");

fn gk(dir: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("XDG_CACHE_HOME", home.join("xdg"))
        .env("GATEKEEPER_OCI_CACHE", home.join("oci-cache"))
        .env_remove("CARGO_TARGET_DIR")
        .env("NO_COLOR", "1")
        .output()
        .expect("run gatekeeper")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// cargo in the new crate, with a target dir kept between runs of this test.
fn cargo(dir: &Path, args: &[&str]) {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/gate-author-test");
    let o = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo");
    assert!(
        o.status.success(),
        "cargo {args:?} in the new gate crate failed:\n{}",
        text(&o)
    );
}

#[test]
fn a_new_gate_is_scaffolded_tested_built_signed_pushed_pinned_and_checked() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let o = gk(h, h, &["gate", "new", "orders-size"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let krate = h.join("orders-size");
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    assert!(!manifest.contains("workspace = true"), "{manifest}");
    assert!(manifest.contains("[workspace]\n"), "standalone: {manifest}");
    let readme = std::fs::read_to_string(krate.join("README.md")).unwrap();
    for step in [
        "rustup target add wasm32-wasip2",
        "cargo build --release --target wasm32-wasip2",
        "target/wasm32-wasip2/release/orders_size.wasm",
    ] {
        assert!(readme.contains(step), "README lacks `{step}`");
    }
    // A second `gate new` into the same place refuses to overwrite.
    let o = gk(h, h, &["gate", "new", "orders-size"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(gk(h, h, &["gate", "new", "Bad_Name"]).status.code() == Some(3));

    cargo(&krate, &["test", "--quiet"]);
    cargo(
        &krate,
        &["build", "--release", "--target", "wasm32-wasip2", "--quiet"],
    );
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/gate-author-test");
    let wasm = target.join("wasm32-wasip2/release/orders_size.wasm");
    assert!(wasm.is_file(), "{} missing", wasm.display());
    let wasm_arg = wasm.display().to_string();

    // gate run: the golden snapshot, its params, exit 0 (go).
    let o = gk(
        &krate,
        h,
        &[
            "gate",
            "run",
            &wasm_arg,
            "--snapshot",
            "tests/golden/basic/snapshot.json",
            "--params-file",
            "tests/golden/basic/params.json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("ORDERS holds at most 100 messages"),
        "{}",
        text(&o)
    );

    // gate test: the shipped golden case passes against the built wasm.
    let o = gk(&krate, h, &["gate", "test", "--wasm", &wasm_arg]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("ok      basic"), "{}", text(&o));
    // A changed threshold: the case fails with a diff and JUnit says so.
    std::fs::write(
        krate.join("tests/golden/basic/params.json"),
        r#"{"stream":"ORDERS","max_messages":10}"#,
    )
    .unwrap();
    let junit = h.join("junit.xml");
    let o = gk(
        &krate,
        h,
        &[
            "gate",
            "test",
            "--wasm",
            &wasm_arg,
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let said = text(&o);
    assert!(said.contains("FAIL    basic"), "{said}");
    assert!(
        said.contains("-   \"verdict\": \"go\"\n  +   \"verdict\": \"no-go\""),
        "{said}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("tests=\"1\" failures=\"1\"") && xml.contains("<failure"),
        "{xml}"
    );
    // --bless accepts it; then it passes.
    assert_eq!(
        gk(&krate, h, &["gate", "test", "--wasm", &wasm_arg, "--bless"])
            .status
            .code(),
        Some(0)
    );
    let o = gk(&krate, h, &["gate", "test", "--wasm", &wasm_arg]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // Sign, push to a real registry, pin by digest, trust the key, check.
    assert_eq!(gk(h, h, &["gate", "keygen", "team"]).status.code(), Some(0));
    std::fs::copy(&wasm, h.join("orders_size.wasm")).unwrap();
    let o = gk(
        h,
        h,
        &["gate", "sign", "orders_size.wasm", "--key", "team.key"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let registry = OciRegistry::start();
    let reference = format!("oci://{}/gates/orders-size:0.1.0", registry.address());
    let o = gk(h, h, &["gate", "push", "orders_size.wasm", &reference]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let pinned = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    std::fs::write(
        h.join("gatekeeper.toml"),
        format!(
            "[trust.keys.team]\npublic_key_file = \"team.pub\"\ngates = [\"orders-size\"]\n\n\
             [gates.orders-size]\noci = \"{pinned}\"\nparams = {{ stream = \"ORDERS\", max_messages = 100 }}\n\n\
             [phases.p]\ngates = [\"orders-size\"]\n"
        ),
    )
    .unwrap();
    let o = gk(
        h,
        h,
        &[
            "check",
            "p",
            "--snapshot",
            &krate
                .join("tests/golden/basic/snapshot.json")
                .display()
                .to_string(),
            "-o",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        report["gates"][0]["signer"]
            .as_str()
            .unwrap()
            .starts_with("team (key "),
        "{report}"
    );
    assert_eq!(report["gates"][0]["implementation"], pinned.as_str());
}
