//! `gatekeeper gate run GATE --snapshot F`: one gate on one snapshot or
//! recording, without a config or a phase. The gate is given a config of
//! its own (one gate, one phase `run`), so it is loaded, checked and
//! evaluated exactly as `check` would.

use super::AppError;
use crate::cli::RunArgs;
use crate::config::Config;
use crate::gate_set::GateSet;
use crate::recording::read_recording;
use std::path::{Path, PathBuf};

/// The phase a one-gate config names.
pub(super) const RUN_PHASE: &str = crate::backtest::ONE_GATE_PHASE;

pub(super) fn run(args: RunArgs) -> Result<u8, AppError> {
    let (config, _) = one_gate_config(
        &args.source.gate,
        args.source.params.as_deref(),
        args.source.params_file.as_deref(),
    )?;
    let gates = GateSet::load_checked(&config)?;
    let recording = read_recording(&args.snapshot, super::snapshot_limit(&config))?;
    let names = config.phase_gates(RUN_PHASE)?;
    let report = gates.evaluate_phase(RUN_PHASE, names, &recording);
    super::emit_report(&report, args.output)
}

/// A config holding one gate (named after the file, or the built-in) in a
/// phase `run`, with the params given as JSON text or a JSON/TOML file.
pub(super) fn one_gate_config(
    gate: &str,
    params: Option<&str>,
    params_file: Option<&Path>,
) -> Result<(Config, String), AppError> {
    let usage = |message: String| AppError::Usage {
        command: "gate",
        message,
    };
    let mut entry = toml::Table::new();
    let name = if gate.starts_with("oci://") {
        entry.insert("oci".into(), gate.into());
        gate_name(
            gate.rsplit('/')
                .next()
                .unwrap_or(gate)
                .split(['@', ':'])
                .next()
                .unwrap_or(""),
        )
    } else if gate.ends_with(".wasm") || gate.contains('/') || Path::new(gate).is_file() {
        let path = std::path::absolute(gate).unwrap_or_else(|_| PathBuf::from(gate));
        entry.insert("wasm".into(), path.display().to_string().into());
        gate_name(
            &path
                .file_stem()
                .map(|s| s.to_string_lossy())
                .unwrap_or_default(),
        )
    } else {
        entry.insert("builtin".into(), gate.into());
        gate_name(gate)
    };
    let params = match (params, params_file) {
        (Some(text), _) => json_params(text).map_err(|e| usage(format!("--params: {e}")))?,
        (None, Some(path)) => {
            let text = crate::files::read_untrusted_text(
                path,
                crate::files::MAX_CONFIG_BYTES,
                "a params file",
            )
            .map_err(|e| AppError::Unreadable {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            let parsed = if path.extension().is_some_and(|e| e == "toml") {
                toml::from_str::<toml::Table>(&text).map_err(|e| e.to_string())
            } else {
                json_params(&text).map_err(|e| e.0)
            };
            parsed.map_err(|message| AppError::Unreadable {
                path: path.display().to_string(),
                message,
            })?
        }
        (None, None) => toml::Table::new(),
    };
    entry.insert("params".into(), params.into());
    let mut gates = toml::Table::new();
    gates.insert(name.clone(), entry.into());
    let mut phase = toml::Table::new();
    phase.insert(
        "gates".into(),
        toml::Value::Array(vec![name.clone().into()]),
    );
    let mut phases = toml::Table::new();
    phases.insert(RUN_PHASE.into(), phase.into());
    let mut doc = toml::Table::new();
    doc.insert("gates".into(), gates.into());
    doc.insert("phases".into(), phases.into());
    let text = toml::to_string(&doc).map_err(|e| usage(format!("params: {e}")))?;
    Ok((Config::parse(&text, "(gate run)", None)?, name))
}

/// Why params given on the command line are unusable.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadParams(String);

/// A JSON object as a TOML table (TOML has no null: a null is refused).
fn json_params(text: &str) -> Result<toml::Table, BadParams> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| BadParams(format!("not JSON: {e}")))?;
    if !value.is_object() {
        return Err(BadParams("must be a JSON object".into()));
    }
    toml::Table::try_from(value).map_err(|e| {
        BadParams(format!(
            "cannot be a config table ({e}); null is not allowed"
        ))
    })
}

/// A kebab-case config name for a gate file or reference.
fn gate_name(stem: &str) -> String {
    let name: String = stem
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    let name = name.trim_matches('-').to_owned();
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        format!("gate-{name}").trim_end_matches('-').to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_params() {
        assert_eq!(gate_name("my_gate"), "my-gate");
        assert_eq!(gate_name("Gate2"), "gate2");
        assert_eq!(gate_name("9lives"), "gate-9lives");
        assert_eq!(gate_name(""), "gate");
        assert!(json_params("[1]").unwrap_err().0.contains("object"));
        assert!(json_params("{\"a\": null}").unwrap_err().0.contains("null"));
        assert_eq!(
            json_params("{\"a\": [1, \"x\"]}").unwrap()["a"][1].as_str(),
            Some("x")
        );
        let (config, name) =
            one_gate_config("stream-topology", Some("{\"streams\": []}"), None).unwrap();
        assert_eq!(name, "stream-topology");
        assert_eq!(
            config.gates[&name].builtin.as_deref(),
            Some("stream-topology")
        );
    }
}
