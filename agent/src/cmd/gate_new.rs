//! `gatekeeper gate new NAME`: a gate crate that builds outside this
//! repository — its own `Cargo.toml` (no workspace inheritance, the
//! versions this binary was tested with, pinned, and its `Cargo.lock`),
//! the SDK as a path or git dependency, one `Gate` with one criterion,
//! native tests on a fixture, a golden case for `gate test`, a README.

use super::{AppError, emit};
use crate::cli::{EXIT_GO, GateNewArgs};
use std::path::{Path, PathBuf};

const CARGO_TOML: &str = include_str!("../../templates/gate/Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("../../templates/gate/lib.rs.tmpl");
const README: &str = include_str!("../../templates/gate/README.md.tmpl");
const TOOLCHAIN: &str = include_str!("../../templates/gate/rust-toolchain.toml");
const GITIGNORE: &str = include_str!("../../templates/gate/gitignore");
const SNAPSHOT: &str = include_str!("../../templates/gate/snapshot.json");
const PARAMS: &str = include_str!("../../templates/gate/params.json");
const EXPECTED: &str = include_str!("../../templates/gate/expected.json");
/// The lockfile this binary was built and tested with: the new crate
/// starts from the same versions (cargo drops what it does not use).
const LOCKFILE: &str = include_str!("../../../Cargo.lock");

fn usage(message: String) -> AppError {
    AppError::Usage {
        command: "gate new",
        message,
    }
}

pub(super) fn run(args: GateNewArgs) -> Result<u8, AppError> {
    let name = args.name.as_str();
    let kebab = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        && !name.ends_with('-')
        && !name.contains("--");
    if !kebab || name.len() > 64 {
        return Err(usage(format!(
            "`{name}` is not a gate name: kebab-case, a-z 0-9 and -, starting with a letter"
        )));
    }
    // A crate cannot be named after a Rust keyword, nor after the ones
    // that name the standard library and the SDK.
    const RESERVED: &[&str] = &[
        "as",
        "async",
        "await",
        "box",
        "break",
        "const",
        "continue",
        "crate",
        "do",
        "dyn",
        "else",
        "enum",
        "extern",
        "false",
        "final",
        "fn",
        "for",
        "gen",
        "if",
        "impl",
        "in",
        "let",
        "loop",
        "macro",
        "match",
        "mod",
        "move",
        "mut",
        "override",
        "priv",
        "pub",
        "ref",
        "return",
        "self",
        "static",
        "struct",
        "super",
        "trait",
        "true",
        "try",
        "type",
        "typeof",
        "unsafe",
        "unsized",
        "use",
        "virtual",
        "where",
        "while",
        "yield",
        "std",
        "core",
        "alloc",
        "test",
        "proc-macro",
        "gatekeeper-gate-sdk",
        "serde",
        "serde-json",
    ];
    if RESERVED.contains(&name) {
        return Err(usage(format!(
            "`{name}` is reserved in Rust; choose another gate name"
        )));
    }
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(name));
    match std::fs::symlink_metadata(&dir) {
        Err(_) => {}
        Ok(m) if m.is_dir() => {
            if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
                return Err(usage(format!("{} exists and is not empty", dir.display())));
            }
        }
        Ok(_) => {
            return Err(usage(format!(
                "{} exists and is not a directory",
                dir.display()
            )));
        }
    }
    let sdk = match (&args.sdk, &args.sdk_git) {
        (Some(path), _) => path_dependency(path)?,
        (None, Some(url)) => format!("gatekeeper-gate-sdk = {{ git = {} }}", toml_string(url)),
        (None, None) => {
            let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gates/sdk");
            if !built_from.join("Cargo.toml").is_file() {
                return Err(usage(format!(
                    "the gate SDK is not on crates.io and the source this binary was built from ({}) \
                     is gone: pass --sdk PATH (gates/sdk of a Gatekeeper checkout) or --sdk-git URL",
                    built_from.display()
                )));
            }
            path_dependency(&built_from)?
        }
    };
    let crate_name = name.replace('-', "_");
    // `orders-size` → `OrdersSizeGate`: the suffix keeps it clear of the
    // template's own names (`Params`, `Input`, `Gate`, `Result`, `Self`).
    let type_name: String = name
        .split('-')
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .chain(["Gate".to_owned()])
        .collect();
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{type}}", &type_name)
            .replace("{{sdk}}", &sdk)
            .replace("{{serde}}", &locked_version("serde"))
            .replace("{{serde_json}}", &locked_version("serde_json"))
    };
    let files: [(&str, String); 9] = [
        ("Cargo.toml", fill(CARGO_TOML)),
        ("Cargo.lock", LOCKFILE.to_owned()),
        ("rust-toolchain.toml", TOOLCHAIN.to_owned()),
        (".gitignore", GITIGNORE.to_owned()),
        ("README.md", fill(README)),
        ("src/lib.rs", fill(LIB_RS)),
        ("tests/golden/basic/snapshot.json", SNAPSHOT.to_owned()),
        ("tests/golden/basic/params.json", PARAMS.to_owned()),
        ("tests/golden/basic/expected.json", EXPECTED.to_owned()),
    ];
    for (rel, text) in &files {
        let path = dir.join(rel);
        let write_error = |error| AppError::Write {
            path: path.display().to_string(),
            error,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write_error)?;
        }
        std::fs::write(&path, text).map_err(write_error)?;
    }
    emit(&format!(
        "created gate crate `{name}` in {}\n\n  cd {}\n  cargo test\n  cargo build --release --target wasm32-wasip2\n  \
         gatekeeper gate test        # runs target/wasm32-wasip2/release/{crate_name}.wasm on tests/golden/\n",
        dir.display(),
        dir.display()
    ))?;
    Ok(EXIT_GO)
}

fn path_dependency(path: &Path) -> Result<String, AppError> {
    let abs = path
        .canonicalize()
        .map_err(|e| usage(format!("--sdk {}: {e}", path.display())))?;
    if !abs.join("Cargo.toml").is_file() {
        return Err(usage(format!(
            "--sdk {}: no Cargo.toml there",
            abs.display()
        )));
    }
    Ok(format!(
        "gatekeeper-gate-sdk = {{ path = {} }}",
        toml_string(&abs.display().to_string())
    ))
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// A package's version in the lockfile this binary was built with.
fn locked_version(package: &str) -> String {
    let lock: toml::Table = toml::from_str(LOCKFILE).expect("Cargo.lock parses");
    lock.get("package")
        .and_then(|p| p.as_array())
        .and_then(|packages| {
            packages
                .iter()
                .find(|p| p.get("name").and_then(|n| n.as_str()) == Some(package))
        })
        .and_then(|p| p.get("version").and_then(|v| v.as_str()))
        .expect("serde and serde_json are in Cargo.lock")
        .to_owned()
}
