//! `gatekeeper snapshot`: collect every configured source once and write the
//! snapshot; a source being down is a fact in it (exit 0).

use super::check::collect_live;
use super::{AppError, emit, load_config, note, write_atomically};
use crate::cli::{EXIT_GO, SnapshotArgs};
use gatekeeper_model::{Snapshot, SourceStatus};
use std::fmt::Write as _;

pub(super) fn run(args: SnapshotArgs) -> Result<u8, AppError> {
    let config = load_config(&args.config)?;
    let snapshot = collect_live(&config)?;
    let json = crate::recording::to_json(&snapshot, &[]);
    match &args.output {
        Some(path) => write_atomically(path, json.as_bytes())?,
        None => emit(&format!("{json}\n"))?,
    }
    note(source_summary(&snapshot).trim_end());
    Ok(EXIT_GO)
}

/// One line per source on stderr: `nats: ok (12 ms)`, `postgres: unavailable: …`.
/// The ledger is Gatekeeper's own record, not a source of the world: not listed.
fn source_summary(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    for s in snapshot.source_states() {
        if s.status == SourceStatus::NotConfigured || s.name == "ledger" {
            continue;
        }
        let ms = s
            .duration_ms
            .map(|m| format!(" ({m} ms)"))
            .unwrap_or_default();
        let error = s.error.map(|e| format!(": {e}")).unwrap_or_default();
        let _ = writeln!(out, "{}: {}{ms}{error}", s.name, s.status.as_str());
    }
    if out.is_empty() {
        out.push_str("no sources configured\n");
    }
    out
}
