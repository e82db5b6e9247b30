//! `gatekeeper ledger [--kind K]`: the ledger's records as JSON lines,
//! oldest first.

use super::{AppError, async_runtime, emit, load_config};
use crate::cli::{EXIT_GO, LedgerArgs};
use crate::ledger::Ledger;
use std::fmt::Write as _;

pub(super) fn run(args: LedgerArgs) -> Result<u8, AppError> {
    let config = load_config(&args.config)?;
    let records = async_runtime()?.block_on(async {
        let ledger = Ledger::open_to_read(&config).await?;
        ledger.read().await
    })?;
    let mut out = String::new();
    for r in records
        .iter()
        .filter(|r| args.kind.as_deref().is_none_or(|k| r.kind() == k))
    {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string(r).expect("a record encodes")
        );
    }
    emit(&out)?;
    Ok(EXIT_GO)
}
