//! `gatekeeper gates list` and `gates inspect GATE`: the built-in gates and
//! the config's, with their metadata, digest, limits and effective params.
//! Everything a gate says about itself is shown through the one sanitizer.

use super::{AppError, emit, load_config_or_builtins};
use crate::builtin;
use crate::cli::{ConfigArgs, EXIT_GO, EXIT_NO_GO, InspectArgs, InspectFormat};
use crate::config::{Config, GateConfig};
use crate::gate_set::{GateSet, PreparedGate};
use crate::text::untrusted_line;
use std::fmt::Write as _;

pub(super) fn list(args: ConfigArgs) -> Result<u8, AppError> {
    let config = load_config_or_builtins(&args)?;
    emit(&list_table(&config)?)?;
    Ok(EXIT_GO)
}

pub(super) fn inspect(args: InspectArgs) -> Result<u8, AppError> {
    let InspectArgs {
        gate,
        config,
        output,
    } = args;
    // A `.wasm` file or an OCI reference is inspected on its own, outside
    // any config (no params to check, signatures not checked).
    let standalone = gate.ends_with(".wasm") || gate.starts_with("oci://");
    let (mut config, gate, configured) = if standalone {
        let (c, name) = super::gate_run::one_gate_config(&gate, None, None)?;
        (c, name, false)
    } else {
        let c = load_config_or_builtins(&config)?;
        let configured = c.gates.contains_key(&gate);
        (c, gate, configured)
    };
    if !config.gates.contains_key(&gate) {
        if builtin::builtin_gate(&gate).is_none() {
            return Err(AppError::Usage {
                command: "gates inspect",
                message: format!(
                    "no gate `{gate}` in the config and no such built-in gate (built-in: {})",
                    builtin::builtin_names().join(", ")
                ),
            });
        }
        config
            .gates
            .insert(gate.clone(), builtin_gate_config(&gate));
    }
    // A configured gate is inspected with its params checked (in every
    // profile, like every gate of the config); a bare built-in has no params
    // to check.
    let set = if configured {
        GateSet::load_checked(&config)?
    } else {
        GateSet::load(&config, Some(std::slice::from_ref(&gate)))
    };
    let prepared = set.gate(&gate).expect("loaded just above");
    let value = inspect_json(prepared, configured);
    match output {
        InspectFormat::Json => emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&value).expect("encodes")
        ))?,
        InspectFormat::Table => emit(&inspect_table(&value))?,
    }
    Ok(
        if prepared.loaded.is_ok() && (!configured || prepared.params.is_ok()) {
            EXIT_GO
        } else {
            EXIT_NO_GO
        },
    )
}

fn builtin_gate_config(name: &str) -> GateConfig {
    GateConfig {
        builtin: Some(name.to_owned()),
        wasm: None,
        oci: None,
        signature: None,
        sha256: None,
        params: toml::Table::new(),
        limits: Default::default(),
    }
}

fn list_table(original: &Config) -> Result<String, AppError> {
    let mut config = original.clone();
    for name in builtin::builtin_names() {
        config
            .gates
            .entry(format!("builtin:{name}"))
            .or_insert_with(|| builtin_gate_config(name));
    }
    let set = GateSet::load(&config, None);
    set.check_params(original)?;
    let mut rows = vec![[
        "NAME".to_owned(),
        "IMPLEMENTATION".into(),
        "SOURCES".into(),
        "SHA256".into(),
        "STATUS".into(),
    ]];
    for g in set.gates() {
        let (sources, digest, status) = match &g.loaded {
            Ok(l) => (
                l.metadata().sources.join(","),
                l.digest()[..16].to_owned(),
                "ok".to_owned(),
            ),
            Err(e) => (
                "-".into(),
                "-".into(),
                format!("error: {}", untrusted_line(&e.to_string())),
            ),
        };
        rows.push([
            g.name.clone(),
            untrusted_line(&g.implementation),
            sources,
            digest,
            status,
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let _ = writeln!(
            out,
            "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
    }
    Ok(out)
}

/// A gate's description; `configured`: its params come from the config (a
/// bare built-in has none to show).
fn inspect_json(g: &PreparedGate, configured: bool) -> serde_json::Value {
    match &g.loaded {
        Err(e) => {
            serde_json::json!({ "name": g.name, "implementation": g.implementation, "error": e.to_string() })
        }
        Ok(l) => {
            let lim = l.limits();
            serde_json::json!({
                "name": g.name,
                "implementation": g.implementation,
                "sha256": l.digest(),
                "signer": g.signer.as_ref().map(ToString::to_string),
                "contract": l.contract().version(),
                "metadata": l.metadata(),
                "limits": {
                    "fuel": lim.fuel,
                    "deadline_ms": lim.deadline.as_millis() as u64,
                    "memory_bytes": lim.memory_bytes,
                    "stack_bytes": lim.stack_bytes,
                    "output_bytes": lim.output_bytes,
                },
                "params": match (&g.params, configured) {
                    (_, false) => serde_json::Value::Null,
                    (Ok(p), true) => p.value.clone(),
                    (Err(e), true) => serde_json::json!({ "error": e.to_string() }),
                },
                "reads": match (&g.params, configured) {
                    (Ok(p), true) => serde_json::json!(p.needs.reads.iter().map(ToString::to_string).collect::<Vec<_>>()),
                    _ => serde_json::Value::Null,
                },
            })
        }
    }
}

fn inspect_table(v: &serde_json::Value) -> String {
    let mut out = String::new();
    // Every value may come from the gate: shown through the one sanitizer.
    let s = |p: &str| {
        v.pointer(p)
            .map(|x| {
                untrusted_line(
                    &x.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| x.to_string()),
                )
            })
            .unwrap_or_else(|| "-".into())
    };
    let _ = writeln!(out, "gate:            {}", s("/name"));
    let _ = writeln!(out, "implementation:  {}", s("/implementation"));
    if v.get("error").is_some() {
        let _ = writeln!(out, "error:           {}", s("/error"));
        return out;
    }
    let _ = writeln!(out, "version:         {}", s("/metadata/version"));
    let _ = writeln!(out, "description:     {}", s("/metadata/description"));
    let _ = writeln!(out, "sha256:          {}", s("/sha256"));
    let _ = writeln!(out, "signer:          {}", s("/signer"));
    let _ = writeln!(out, "contract:        gatekeeper:gate@{}", s("/contract"));
    let _ = writeln!(out, "sources:         {}", s("/metadata/sources"));
    let _ = writeln!(out, "snapshot schema: {}", s("/metadata/snapshot_schema"));
    let _ = writeln!(
        out,
        "limits:          fuel {}, deadline {} ms, memory {} B, stack {} B, output {} B",
        s("/limits/fuel"),
        s("/limits/deadline_ms"),
        s("/limits/memory_bytes"),
        s("/limits/stack_bytes"),
        s("/limits/output_bytes")
    );
    let _ = writeln!(out, "params accepted:");
    if let Some(params) = v.pointer("/metadata/params").and_then(|p| p.as_array()) {
        for p in params {
            let default = match p.get("default") {
                None => "required".to_owned(),
                Some(serde_json::Value::Null) => "optional".to_owned(),
                Some(d) => format!("default {}", untrusted_line(&d.to_string())),
            };
            let _ = writeln!(
                out,
                "  {} ({default}): {}",
                untrusted_line(p["name"].as_str().unwrap_or("?")),
                untrusted_line(p["description"].as_str().unwrap_or(""))
            );
        }
    }
    let _ = writeln!(out, "params in effect: {}", s("/params"));
    let _ = writeln!(out, "reads:            {}", s("/reads"));
    out
}
