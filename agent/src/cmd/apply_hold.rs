//! One `apply` at a time: the lease (key `apply`) with a NATS ledger, a
//! file lock with a file ledger; the lease renewed while the apply runs.

use super::AppError;
use crate::config::{Config, LedgerBackend};
use crate::watch::lease::LeaseKeeper;
use std::sync::Arc;

/// One apply at a time: the lease (key `apply`) with a NATS ledger, an
/// exclusive lock on `<ledger file>.apply-lock` with a file ledger.
pub(super) enum Hold {
    Lease {
        stop: tokio::sync::watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    },
    File(#[allow(dead_code)] std::fs::File),
}

pub(super) async fn take_hold(
    config: &Arc<Config>,
    agent: &str,
) -> Result<(Hold, Option<crate::actions::fence::Fence>), AppError> {
    let busy = |message: String| AppError::Usage {
        command: "apply",
        message,
    };
    let ledger = config.ledger.clone().unwrap_or_default();
    if ledger.backend(&config.sources) != LedgerBackend::Nats {
        let path = config.ledger_file().with_extension("apply-lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|error| AppError::Write {
                path: path.display().to_string(),
                error,
            })?;
        return match file.try_lock() {
            Ok(()) => {
                // A lock file removed or replaced since it was opened locks
                // nothing another apply would see: refuse rather than run
                // beside it.
                use std::os::unix::fs::MetadataExt as _;
                let same = |a: &std::fs::Metadata, b: &std::fs::Metadata| {
                    (a.dev(), a.ino()) == (b.dev(), b.ino())
                };
                match (file.metadata(), std::fs::metadata(&path)) {
                    (Ok(held), Ok(now)) if same(&held, &now) => {}
                    _ => {
                        return Err(busy(format!(
                            "{} was removed or replaced while it was being locked; try again",
                            path.display()
                        )));
                    }
                }
                // Who holds it, for the one refused.
                let _ = file.set_len(0);
                let _ = std::io::Write::write_all(&mut &file, agent.as_bytes());
                Ok((Hold::File(file), None))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = crate::text::untrusted_line(holder.trim());
                Err(busy(format!(
                    "another apply{} holds {}; one apply at a time",
                    if holder.is_empty() {
                        String::new()
                    } else {
                        format!(" (agent `{holder}`)")
                    },
                    path.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                Err(busy(format!("{}: cannot lock: {e}", path.display())))
            }
        };
    }
    let mut lease = LeaseKeeper::new(config, "apply", agent);
    let state = lease.step().await;
    if !state.acting {
        return Err(busy(match (state.known, lease.holder()) {
            (true, Some(holder)) => {
                format!("another apply holds the lease (agent `{holder}`); one apply at a time")
            }
            (true, None) => "another apply took the lease first; one apply at a time".into(),
            (false, _) => {
                "cannot take the apply lease: NATS (the ledger's lease bucket) is not reachable"
                    .into()
            }
        }));
    }
    let fence = lease.fence();
    let renew_every = ledger.lease_ttl() / 3;
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(renew_every) => { lease.step().await; }
                _ = stopped.changed() => break,
            }
        }
        lease.release().await;
    });
    Ok((Hold::Lease { stop, task }, fence))
}

pub(super) async fn release(hold: Hold) {
    if let Hold::Lease { stop, task } = hold {
        let _ = stop.send(true);
        let _ = task.await;
    }
}
