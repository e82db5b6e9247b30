//! `gatekeeper validate`: the config checked without touching any source —
//! every profile, every gate loads, every gate's params under every profile,
//! every plan's triggers. Exit 0 valid, 1 a gate does not load, 3 invalid.

use super::{AppError, emit, load_config};
use crate::cli::{EXIT_GO, EXIT_NO_GO, ValidateArgs};
use crate::config::{Config, GateConfig, ProcessEnv};
use crate::gate_set::GateSet;
use crate::text::untrusted_line;
use std::fmt::Write as _;

pub(super) fn run(args: ValidateArgs) -> Result<u8, AppError> {
    let config = load_config(&args.config)?;
    let set = GateSet::load_checked(&config)?;
    set.check_plans(&config)?;
    let mut failed: Vec<String> = set
        .gates()
        .filter_map(|g| {
            g.loaded
                .as_ref()
                .err()
                .map(|e| format!("gate {}: {}", g.name, untrusted_line(&e.to_string())))
        })
        .collect();
    failed.extend(profile_gates(&args, &config)?);
    let profiles: Vec<String> = config
        .params_by_profile
        .variants
        .iter()
        .map(|(p, _)| p.clone().unwrap_or_else(|| "(base)".into()))
        .collect();
    let mut out = String::new();
    for f in &failed {
        let _ = writeln!(out, "{f}");
    }
    let _ = writeln!(
        out,
        "{}: {} gates, {} phases; params checked under {}",
        if failed.is_empty() {
            "valid"
        } else {
            "NOT valid"
        },
        set.gates().count(),
        config.phases.len(),
        profiles.join(", ")
    );
    emit(&out)?;
    Ok(if failed.is_empty() {
        EXIT_GO
    } else {
        EXIT_NO_GO
    })
}

/// The gates a profile gives another source (a different `builtin`,
/// `wasm`, `oci`, pin or signature, or a gate only the profile has, or a
/// different `[trust]`), loaded as that profile would load them, with its
/// params: what would not load there.
fn profile_gates(args: &ValidateArgs, base: &Config) -> Result<Vec<String>, AppError> {
    let source = |g: &GateConfig| {
        (
            g.builtin.clone(),
            g.wasm.clone(),
            g.oci.clone(),
            g.sha256.clone(),
            g.signature.clone(),
        )
    };
    let mut failed = Vec::new();
    for (profile, _) in &base.params_by_profile.variants {
        let Some(profile) = profile else { continue };
        let config = Config::load(&args.config.config, Some(profile), &ProcessEnv)?;
        let changed: Vec<String> = config
            .gates
            .iter()
            .filter(|(name, g)| {
                config.trust != base.trust
                    || base.gates.get(*name).is_none_or(|b| source(b) != source(g))
            })
            .map(|(name, _)| name.clone())
            .collect();
        if changed.is_empty() {
            continue;
        }
        let set = GateSet::load(&config, Some(&changed));
        for g in set.gates() {
            let problem = match (&g.loaded, &g.params) {
                (Err(e), _) => Some(e.to_string()),
                (Ok(_), Err(e)) => Some(e.to_string()),
                (Ok(_), Ok(_)) => None,
            };
            if let Some(p) = problem {
                failed.push(format!(
                    "profile {profile}: gate {}: {}",
                    g.name,
                    untrusted_line(&p)
                ));
            }
        }
    }
    Ok(failed)
}
