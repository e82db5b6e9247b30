//! `gatekeeper ledger [--kind K]`: the ledger's records as JSON lines,
//! oldest first, read through the hash chain; `gatekeeper ledger verify`:
//! the chain followed from its first record to its head.

use super::{AppError, async_runtime, emit, load_config};
use crate::cli::{EXIT_GO, EXIT_NO_GO, LedgerArgs, LedgerCommand, VerifyArgs};
use crate::ledger::{Ledger, LedgerError};
use std::fmt::Write as _;

pub(super) fn run(args: LedgerArgs) -> Result<u8, AppError> {
    if let Some(LedgerCommand::Verify(verify_args)) = args.command {
        return verify(verify_args);
    }
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

fn verify(args: VerifyArgs) -> Result<u8, AppError> {
    let config = load_config(&args.config)?;
    let expect = args.expect_head.clone();
    let (where_, verified) = async_runtime()?.block_on(async {
        let ledger = Ledger::open_to_read(&config).await?;
        Ok::<_, AppError>((ledger.describe(), ledger.verify(expect).await))
    })?;
    let chain = match verified {
        Ok(chain) => chain,
        Err(e @ LedgerError::Broken { .. }) => {
            emit(&format!("BROKEN: {e}\n"))?;
            return Ok(EXIT_NO_GO);
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = String::new();
    let records = chain.sealed + chain.unsealed;
    match &chain.head {
        None => {
            let _ = writeln!(out, "intact: {where_} holds no records");
        }
        Some(head) => {
            let _ = writeln!(
                out,
                "intact: {where_}: {records} records, {} sealed in the chain{}",
                chain.sealed,
                if chain.unsealed > 0 {
                    format!(
                        ", {} from before the chain (not verifiable)",
                        chain.unsealed
                    )
                } else {
                    String::new()
                }
            );
            if let Some(at) = chain.anchored_at {
                let _ = writeln!(
                    out,
                    "read from record {at}: the records before it aged out of the stream"
                );
            }
            let _ = writeln!(out, "head: record {} {}", head.seq, head.digest);
        }
    }
    if let Some(expected) = &args.expect_head {
        match chain.found {
            Some(seq) => {
                let _ = writeln!(out, "holds {expected} at record {seq}");
            }
            None => {
                let _ = writeln!(
                    out,
                    "BROKEN: the chain does not hold {expected}: the ledger was rewritten, or the digest is of another ledger"
                );
                emit(&out)?;
                return Ok(EXIT_NO_GO);
            }
        }
    }
    emit(&out)?;
    Ok(EXIT_GO)
}
