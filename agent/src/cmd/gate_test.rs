//! `gatekeeper gate test [DIR]`: a gate crate's golden cases run against
//! its built wasm, the way `check` runs it. A case is a directory
//! `tests/golden/<case>/` holding `snapshot.json` (a snapshot or a
//! recording), `params.json` (optional, a JSON object) and
//! `expected.json`: the gate's verdict, error, criteria and triggers.

use super::gate_run::{RUN_PHASE, one_gate_config};
use super::{AppError, emit, snapshot_limit, write_atomically};
use crate::cli::{EXIT_GO, EXIT_NO_GO, GateTestArgs};
use crate::gate_set::GateSet;
use crate::recording::read_recording;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where the cases live in a gate crate.
pub const GOLDEN_DIR: &str = "tests/golden";

struct Outcome {
    case: String,
    /// `None` passed; else why not (a diff, or a missing file).
    failure: Option<String>,
    blessed: bool,
}

pub(super) fn run(args: GateTestArgs) -> Result<u8, AppError> {
    let wasm = match &args.wasm {
        Some(w) => w.clone(),
        None => built_wasm(&args.dir)?,
    };
    if !wasm.is_file() {
        return Err(AppError::Usage {
            command: "gate test",
            message: format!(
                "{} is not built: run `cargo build --release --target wasm32-wasip2` in {} first",
                wasm.display(),
                args.dir.display()
            ),
        });
    }
    let golden = args.dir.join(GOLDEN_DIR);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&golden)
        .map_err(|e| AppError::Unreadable {
            path: golden.display().to_string(),
            message: format!("{e} (golden cases live in {GOLDEN_DIR}/<case>/)"),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    if cases.is_empty() {
        return Err(AppError::Usage {
            command: "gate test",
            message: format!(
                "no case in {}: add {GOLDEN_DIR}/<case>/snapshot.json",
                golden.display()
            ),
        });
    }
    let wasm_text = wasm.display().to_string();
    let mut outcomes = Vec::new();
    for case in &cases {
        outcomes.push(run_case(&wasm_text, case, args.bless)?);
    }
    let mut out = String::new();
    for o in &outcomes {
        match (&o.failure, o.blessed) {
            (_, true) => {
                let _ = writeln!(out, "blessed {}", o.case);
            }
            (None, false) => {
                let _ = writeln!(out, "ok      {}", o.case);
            }
            (Some(why), false) => {
                let _ = writeln!(out, "FAIL    {}\n{why}", o.case);
            }
        }
    }
    let failed = outcomes
        .iter()
        .filter(|o| o.failure.is_some() && !o.blessed)
        .count();
    let _ = writeln!(
        out,
        "\n{} case(s): {} passed, {failed} failed ({})",
        outcomes.len(),
        outcomes.len() - failed,
        wasm.display()
    );
    if let Some(path) = &args.junit {
        write_atomically(path, junit(&outcomes).as_bytes())?;
    }
    emit(&out)?;
    Ok(if failed == 0 { EXIT_GO } else { EXIT_NO_GO })
}

/// The crate's wasm: `<target>/wasm32-wasip2/release/<crate>.wasm`.
fn built_wasm(dir: &Path) -> Result<PathBuf, AppError> {
    let manifest = dir.join("Cargo.toml");
    let text =
        crate::files::read_untrusted_text(&manifest, 1 << 20, "a Cargo.toml").map_err(|e| {
            AppError::Unreadable {
                path: manifest.display().to_string(),
                message: format!("{e} (run `gate test` in a gate crate, or give --wasm)"),
            }
        })?;
    let doc: toml::Table = toml::from_str(&text).map_err(|e| AppError::Unreadable {
        path: manifest.display().to_string(),
        message: e.to_string(),
    })?;
    let name = doc
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .ok_or_else(|| AppError::Unreadable {
            path: manifest.display().to_string(),
            message: "no [package] name".into(),
        })?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("target"));
    Ok(target
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_"))))
}

fn run_case(wasm: &str, case: &Path, bless: bool) -> Result<Outcome, AppError> {
    let name = case
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let params = case.join("params.json");
    // Present in any form (a directory, a dangling link): read, and refused
    // with its reason; only an absent file means "no params".
    let params = std::fs::symlink_metadata(&params)
        .is_ok()
        .then_some(params.as_path());
    let in_case = |e: AppError| AppError::Usage {
        command: "gate test",
        message: format!("case {name}: {e}"),
    };
    let (config, gate) = one_gate_config(wasm, None, params).map_err(in_case)?;
    let gates = GateSet::load_checked(&config).map_err(|e| in_case(e.into()))?;
    let recording = read_recording(&case.join("snapshot.json"), snapshot_limit(&config))
        .map_err(|e| in_case(e.into()))?;
    let report = gates.evaluate_phase(RUN_PHASE, config.phase_gates(RUN_PHASE)?, &recording);
    let g = report
        .gates
        .iter()
        .find(|g| g.name == gate)
        .expect("the one gate ran");
    let mut actual = serde_json::json!({
        "verdict": g.verdict,
        "criteria": g.criteria,
        "triggers": g.triggers,
    });
    if let Some(e) = &g.error {
        actual["error"] = e.as_str().into();
    }
    let actual_text = serde_json::to_string_pretty(&actual).expect("encodes");
    let expected_path = case.join("expected.json");
    if bless {
        write_atomically(&expected_path, actual_text.as_bytes())?;
        return Ok(Outcome {
            case: name,
            failure: None,
            blessed: true,
        });
    }
    let expected_text = match crate::files::read_untrusted_text(
        &expected_path,
        16 << 20,
        "expected output",
    ) {
        Ok(t) => t,
        Err(e) if e.is_not_found() => {
            return Ok(Outcome {
                case: name,
                failure: Some(format!(
                    "  no expected.json: run `gatekeeper gate test --bless` and review it\n  actual:\n{}",
                    indent(&actual_text)
                )),
                blessed: false,
            });
        }
        Err(e) => {
            return Err(AppError::Unreadable {
                path: expected_path.display().to_string(),
                message: e.to_string(),
            });
        }
    };
    let expected: Result<serde_json::Value, _> = serde_json::from_str(&expected_text);
    let failure = match expected {
        Ok(v) if v == actual => None,
        Ok(v) => Some(diff(
            &serde_json::to_string_pretty(&v).expect("encodes"),
            &actual_text,
        )),
        Err(e) => Some(format!("  expected.json is not JSON ({e})")),
    };
    Ok(Outcome {
        case: name,
        failure,
        blessed: false,
    })
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// A line diff (`-` expected, `+` actual) with two lines of context.
pub fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().take(4000).collect();
    let b: Vec<&str> = actual.lines().take(4000).collect();
    // Longest common subsequence table, from the ends.
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut lines: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            lines.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            lines.push(('-', a[i]));
            i += 1;
        } else {
            lines.push(('+', b[j]));
            j += 1;
        }
    }
    let near_change = |k: usize| {
        lines[k.saturating_sub(2)..(k + 3).min(lines.len())]
            .iter()
            .any(|(c, _)| *c != ' ')
    };
    let mut out = String::from("  --- expected.json\n  +++ actual\n");
    let mut skipped = false;
    for (k, (c, line)) in lines.iter().enumerate() {
        if near_change(k) {
            // JSON indentation kept; the rest through the one sanitizer.
            let body = line.trim_start_matches(' ');
            let indent = &line[..line.len() - body.len()];
            let _ = writeln!(out, "  {c} {indent}{}", crate::text::untrusted_line(body));
            skipped = false;
        } else if !skipped {
            out.push_str("  …\n");
            skipped = true;
        }
    }
    out
}

fn junit(outcomes: &[Outcome]) -> String {
    use crate::report::xml;
    let failed = outcomes
        .iter()
        .filter(|o| o.failure.is_some() && !o.blessed)
        .count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"gate test\" tests=\"{}\" failures=\"{failed}\">\n",
        outcomes.len()
    );
    for o in outcomes {
        let _ = write!(
            out,
            "    <testcase classname=\"golden\" name=\"{}\"",
            xml(&o.case)
        );
        match &o.failure {
            Some(why) if !o.blessed => {
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"output differs from expected.json\">{}</failure>\n    </testcase>",
                    xml(why)
                );
            }
            _ => out.push_str("/>\n"),
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::diff;

    #[test]
    fn the_diff_shows_what_changed_with_context() {
        let d = diff("a\nb\nc\nd\ne\nf\ng\nh", "a\nb\nc\nD\ne\nf\ng\nh");
        assert_eq!(
            d,
            "  --- expected.json\n  +++ actual\n  …\n    b\n    c\n  - d\n  + D\n    e\n    f\n  …\n"
        );
    }
}
