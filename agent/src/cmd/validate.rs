//! `gatekeeper validate`: the config checked without touching any source —
//! every profile, every gate loads, every gate's params under every profile,
//! every plan's triggers. Exit 0 valid, 1 a gate does not load, 3 invalid.

use super::{AppError, emit, load_config};
use crate::cli::{EXIT_GO, EXIT_NO_GO, ValidateArgs};
use crate::gate_set::GateSet;
use crate::text::untrusted_line;
use std::fmt::Write as _;

pub(super) fn run(args: ValidateArgs) -> Result<u8, AppError> {
    let config = load_config(&args.config)?;
    let set = GateSet::load_checked(&config)?;
    set.check_plans(&config)?;
    let failed: Vec<String> = set
        .gates()
        .filter_map(|g| {
            g.loaded
                .as_ref()
                .err()
                .map(|e| format!("gate {}: {}", g.name, untrusted_line(&e.to_string())))
        })
        .collect();
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
