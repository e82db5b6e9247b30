//! Compiles every gate crate to a `wasm32-wasip2` component, so one `cargo
//! build` gives a self-contained binary. Built-in gates are embedded
//! (`include_bytes!`); test and example gates are left in OUT_DIR for the
//! tests (`GATEKEEPER_TEST_GATES_DIR`).
//!
//! The list of gates is in one place: each gate crate under `gates/` or
//! `examples/` says what it is in its own manifest —
//! `[package.metadata.gatekeeper] gate = "builtin" | "test" | "example"`
//! (and `name`, the gate's name). The workspace takes them by glob, the wasm
//! lint step takes every workspace crate but the host's, and this script
//! reads the manifests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

/// Shadow stack (in linear memory) of the gates built here.
const GATE_SHADOW_STACK_BYTES: usize = 256 << 10;

/// One gate crate, as its manifest describes it.
struct GateCrate {
    package: String,
    /// The gate's name: the built-in's name, or the file stem in OUT_DIR.
    name: String,
    builtin: bool,
}

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
        "examples",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let gates = gate_crates(&root);
    assert!(
        gates.iter().any(|g| g.builtin),
        "no built-in gate found under gates/ (each declares [package.metadata.gatekeeper] gate = \"builtin\")"
    );
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
    for g in &gates {
        cmd.args(["-p", &g.package]);
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
    for g in &gates {
        let built = artifacts.join(format!("{}.wasm", g.package.replace('-', "_")));
        let dest = out_dir.join(format!("{}.wasm", g.name));
        fs::copy(&built, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
        if g.builtin {
            builtin_rs.push_str(&format!(
                "    ({:?}, include_bytes!({:?})),\n",
                g.name,
                dest.display().to_string()
            ));
        }
    }
    builtin_rs.push_str("];\n");
    fs::write(out_dir.join("builtin_gates.rs"), builtin_rs).expect("write builtin_gates.rs");
    println!(
        "cargo:rustc-env=GATEKEEPER_TEST_GATES_DIR={}",
        out_dir.display()
    );
}

/// Every crate under `gates/` and `examples/` whose manifest says it is a
/// gate, built-ins first, each sorted by name.
fn gate_crates(root: &Path) -> Vec<GateCrate> {
    let mut out = Vec::new();
    for dir in ["gates", "examples"] {
        let Ok(entries) = fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let manifest = entry.path().join("Cargo.toml");
            let Ok(text) = fs::read_to_string(&manifest) else {
                continue;
            };
            let doc: toml::Table = text
                .parse()
                .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
            let package = &doc["package"];
            let Some(meta) = package.get("metadata").and_then(|m| m.get("gatekeeper")) else {
                continue;
            };
            let kind = meta["gate"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: metadata.gatekeeper.gate", manifest.display()));
            let name = package["name"].as_str().expect("package.name").to_owned();
            out.push(GateCrate {
                name: meta
                    .get("name")
                    .and_then(|n| n.as_str())
                    .map_or_else(|| name.clone(), str::to_owned),
                package: name,
                builtin: match kind {
                    "builtin" => true,
                    "test" | "example" => false,
                    other => panic!("{}: unknown gate kind {other:?}", manifest.display()),
                },
            });
        }
    }
    out.sort_by(|a, b| (!a.builtin, &a.name).cmp(&(!b.builtin, &b.name)));
    out
}
