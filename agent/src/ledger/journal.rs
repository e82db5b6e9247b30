//! Writes ledger records so that none is lost: to the configured ledger, or
//! when NATS cannot take them, to a local JSONL spool that is replayed into
//! the ledger once it answers again.

use crate::config::{Config, LedgerBackend, LedgerConfig};
use crate::ledger::chain::Chain;
use crate::ledger::{self, Ledger, LedgerError, Record};
use gatekeeper_model::LedgerFacts;
use prometheus_client::metrics::counter::Counter;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Mutex;

pub struct Journal {
    config: Arc<Config>,
    /// Counts writes the ledger refused (the daemon's `ledger_errors`).
    failed_writes: Counter,
    /// `None` until NATS first answers.
    ledger: Mutex<Option<Ledger>>,
    /// Records NATS did not take, in order (NATS backend only).
    spool: Option<Ledger>,
    /// What was read so far: each read fetches only the records after it.
    read: Mutex<ReadSoFar>,
}

#[derive(Default)]
struct ReadSoFar {
    /// The chain as followed so far (its head: the last record read).
    chain: Chain,
    facts: LedgerFacts,
    /// Every record but verdicts (incidents, plans, steps, alerts,
    /// attestations), for taking over an open incident.
    events: Vec<Record>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Journal")
    }
}

impl Journal {
    /// Opens the configured ledger (or, while NATS is away, only the
    /// spool); `failed_writes` counts the writes the ledger refuses.
    pub async fn open(config: Arc<Config>, failed_writes: Counter) -> Journal {
        let default = LedgerConfig::default();
        let lc = config.ledger.as_ref().unwrap_or(&default);
        let spool = (lc.backend(&config.sources) == LedgerBackend::Nats).then(|| {
            let mut path = config.ledger_file().into_os_string();
            path.push(".spool");
            Ledger::File {
                path: PathBuf::from(path),
            }
        });
        let ledger = match Ledger::open(&config).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(error = %e, "ledger not reachable; records go to the local spool until it is");
                None
            }
        };
        let journal = Journal {
            config,
            failed_writes,
            ledger: Mutex::new(ledger),
            spool,
            read: Mutex::new(ReadSoFar::default()),
        };
        journal.flush().await;
        journal
    }

    /// Where records go, for messages.
    pub async fn describe(&self) -> String {
        match (&*self.ledger.lock().await, &self.spool) {
            (Some(l), _) => l.describe(),
            (None, Some(s)) => format!("{} (spool; NATS not reachable)", s.describe()),
            (None, None) => "none".into(),
        }
    }

    /// Appends a record; if the ledger refuses it, to the spool. Logged either way.
    pub async fn append(&self, record: Record) {
        let mut guard = self.ledger.lock().await;
        let result = match &*guard {
            Some(l) => l.append(&record).await,
            None => Err(LedgerError::Unavailable {
                where_: "NATS".into(),
                message: "not connected".into(),
            }),
        };
        if let Err(e) = result {
            self.failed_writes.inc();
            if matches!(&*guard, Some(Ledger::Nats { .. })) {
                *guard = None;
            }
            match &self.spool {
                Some(spool) => {
                    tracing::warn!(error = %e, spool = %spool.describe(), kind = record.kind(), "ledger write failed; spooled");
                    if let Err(e) = spool.append(&record).await {
                        tracing::error!(error = %e, record = ?record, "cannot write the spool either; record only in this log");
                    }
                }
                None => {
                    tracing::error!(error = %e, record = ?record, "ledger write failed; record only in this log")
                }
            }
        }
    }

    /// Reconnects if needed and replays the spool into the ledger.
    pub async fn flush(&self) {
        let Some(spool) = &self.spool else { return };
        let mut guard = self.ledger.lock().await;
        if guard.is_none() {
            match Ledger::open(&self.config).await {
                Ok(l) => *guard = Some(l),
                Err(_) => return,
            }
        }
        let Some(ledger) = &*guard else { return };
        let records = match spool.read().await {
            Ok(r) if r.is_empty() => return,
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "spool unreadable; left as it is");
                return;
            }
        };
        for r in &records {
            if let Err(e) = ledger.append(r).await {
                tracing::warn!(error = %e, "ledger still refuses records; spool kept");
                *guard = None;
                return;
            }
        }
        if let Ledger::File { path } = spool
            && let Err(e) = std::fs::remove_file(path)
        {
            tracing::error!(error = %e, "spool replayed but not removed: its records may appear twice");
        }
        tracing::info!(
            records = records.len(),
            "spooled records replayed into the ledger"
        );
    }

    /// The ledger folded into facts, and every record but verdicts, oldest
    /// first (ledger, then spool). Only records added since the last call
    /// are read; verdict runs are folded as they come, so memory stays small.
    pub async fn read(&self) -> Result<(LedgerFacts, Vec<Record>), LedgerError> {
        let guard = self.ledger.lock().await;
        let Some(l) = &*guard else {
            return Err(LedgerError::Unavailable {
                where_: "NATS".into(),
                message: "not connected".into(),
            });
        };
        let mut so_far = self.read.lock().await;
        let mut chain = so_far.chain.clone();
        let new = l.read_after(&mut chain).await?;
        so_far.chain = chain;
        for r in new {
            ledger::fold_one(&mut so_far.facts, &r);
            if !matches!(r, Record::Verdict { .. }) {
                so_far.events.push(r);
            }
        }
        let mut facts = so_far.facts.clone();
        let mut events = so_far.events.clone();
        if let Some(spool) = &self.spool {
            for r in spool.read().await? {
                ledger::fold_one(&mut facts, &r);
                if !matches!(r, Record::Verdict { .. }) {
                    events.push(r);
                }
            }
        }
        Ok((facts, events))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn attestation(by: &str) -> Record {
        Record::Attestation {
            phase: "phase-2".into(),
            criterion: "staging-verified".into(),
            by: by.into(),
            at: "2025-10-02T10:10:00Z".parse().unwrap(),
            note: None,
        }
    }

    /// The daemon reads only what is new, and what is new must follow the
    /// chain from where it stopped: a record forged after it read is a
    /// break, and stays one round after round.
    #[tokio::test]
    async fn the_daemon_refuses_a_forged_record_after_what_it_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let config = Config::parse(
            &format!("[ledger]\nfile = {:?}\n", path.display().to_string()),
            "test.toml",
            None,
        )
        .unwrap();
        let journal = Journal::open(Arc::new(config), Counter::default()).await;
        journal.append(attestation("alice")).await;
        let (facts, _) = journal.read().await.unwrap();
        assert_eq!(facts.attestations.len(), 1);
        journal.append(attestation("bob")).await;
        assert_eq!(journal.read().await.unwrap().0.attestations.len(), 2);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(
                format!(
                    "{}\n",
                    serde_json::to_string(&attestation("mallory")).unwrap()
                )
                .as_bytes(),
            )
            .unwrap();
        for _ in 0..2 {
            let err = journal.read().await.unwrap_err().to_string();
            assert!(
                err.ends_with("the chain breaks at record 3: it is not sealed, after the chain started: a forged record, or one written by an agent older than the chain"),
                "{err}"
            );
        }
        // The daemon's own next record still links to the ledger's last
        // line, so the break stays visible to every reader.
        journal.append(attestation("carol")).await;
        assert!(journal.read().await.is_err());
    }
}
