//! Compiles every gate crate under `gates/` (except the SDK) to a
//! `wasm32-wasip2` component, so one `cargo build` gives a self-contained
//! binary. Built-in gates are embedded (`include_bytes!`); test-only gates
//! (`gates/hostile`, `gates/wrong-interface`) are left in OUT_DIR for tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

/// (crate directory under gates/, gate name) of the gates embedded in the binary.
const BUILTIN: &[(&str, &str)] = &[
    ("stream-topology", "stream-topology"),
    ("database-responsive", "database-responsive"),
    ("nats-cluster-healthy", "nats-cluster-healthy"),
    ("workloads-healthy", "workloads-healthy"),
    ("subject-overlap", "subject-overlap"),
    ("consumer-config", "consumer-config"),
    ("traffic-window", "traffic-window"),
    ("signals", "signals"),
    ("ledger", "ledger"),
    ("message-continuity", "message-continuity"),
];
/// Shadow stack (in linear memory) of the gates built here.
const GATE_SHADOW_STACK_BYTES: usize = 256 << 10;
/// Gate crates built only for the test suite.
const TEST_ONLY: &[&str] = &[
    "hostile",
    "hostile-metadata",
    "wrong-interface",
    "../examples/custom-gate",
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("agent/ lives in the workspace root")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    for watched in [
        "gates",
        "wit",
        "model",
        "examples/custom-gate",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let crates: Vec<&str> = BUILTIN
        .iter()
        .map(|(dir, _)| *dir)
        .chain(TEST_ONLY.iter().copied())
        .collect();
    for dir in &crates {
        assert!(
            root.join("gates").join(dir).join("Cargo.toml").exists(),
            "gates/{dir} has no Cargo.toml"
        );
    }
    // A separate target dir: the outer cargo holds the lock on target/.
    let target_dir = root.join("target").join("gate-wasm");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "--profile",
            "gate",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    for dir in &crates {
        cmd.args(["-p", &package_name(&root, dir)]);
    }
    // The outer build's flags are for the host, not for wasm.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    // A 256 KiB shadow stack (Rust's default is 1 MiB) keeps the pages a
    // gate touches low in linear memory, so resetting a pooled slot is cheap.
    cmd.env(
        "CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS",
        format!("-C link-arg=-zstack-size={GATE_SHADOW_STACK_BYTES}"),
    );
    let output = cmd.output().expect("run cargo to build the gates");
    if !output.status.success() {
        panic!(
            "building the gates for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let artifacts = target_dir.join("wasm32-wasip2").join("gate");
    let mut builtin_rs = String::from(
        "/// Built-in gates: (name, component bytes).\npub const BUILTIN_GATES: &[(&str, &[u8])] = &[\n",
    );
    for (dir, name) in BUILTIN {
        let file = copy_artifact(&root, &artifacts, dir, &out_dir);
        builtin_rs.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            file.display().to_string()
        ));
    }
    builtin_rs.push_str("];\n");
    fs::write(out_dir.join("builtin_gates.rs"), builtin_rs).expect("write builtin_gates.rs");
    for dir in TEST_ONLY {
        copy_artifact(&root, &artifacts, dir, &out_dir);
    }
    println!(
        "cargo:rustc-env=GATEKEEPER_TEST_GATES_DIR={}",
        out_dir.display()
    );
}

fn package_name(root: &Path, dir: &str) -> String {
    let manifest = fs::read_to_string(root.join("gates").join(dir).join("Cargo.toml"))
        .expect("read gate manifest");
    manifest
        .lines()
        .find_map(|l| {
            l.strip_prefix("name = \"")
                .and_then(|r| r.strip_suffix('"'))
        })
        .unwrap_or_else(|| panic!("gates/{dir}/Cargo.toml has no `name = \"...\"` line"))
        .to_owned()
}

/// Copies `<package>.wasm` to OUT_DIR as `<dir>.wasm` and returns the new path.
fn copy_artifact(root: &Path, artifacts: &Path, dir: &str, out_dir: &Path) -> PathBuf {
    let built = artifacts.join(format!(
        "{}.wasm",
        package_name(root, dir).replace('-', "_")
    ));
    let file_name = Path::new(dir)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(dir);
    let dest = out_dir.join(format!("{file_name}.wasm"));
    fs::copy(&built, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
    dest
}
