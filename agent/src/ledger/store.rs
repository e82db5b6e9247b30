//! Where records are kept: a JetStream stream (one message per record on
//! `<subject>.<kind>`) or a local JSONL file (one line per record).

use super::{LedgerError, Record};
use crate::clients::nats::{ERR_STREAM_NOT_FOUND, JetStream};
use crate::config::{Config, LedgerBackend, LedgerConfig};
use std::io::Write as _;
use std::path::PathBuf;

/// Where records go: a JetStream stream or a local JSONL file.
#[derive(Debug, Clone)]
pub enum Ledger {
    Nats {
        js: Box<JetStream>,
        stream: String,
        subject: String,
    },
    File {
        path: PathBuf,
    },
}

impl Ledger {
    /// Opens the configured ledger to write; on NATS, creates its stream if missing.
    pub async fn open(config: &Config) -> Result<Ledger, LedgerError> {
        Self::connect(config, true).await
    }

    /// Opens the configured ledger to read: creates nothing (a stream that
    /// does not exist yet holds no records).
    pub async fn open_to_read(config: &Config) -> Result<Ledger, LedgerError> {
        Self::connect(config, false).await
    }

    async fn connect(config: &Config, create: bool) -> Result<Ledger, LedgerError> {
        let default = LedgerConfig::default();
        let lc = config.ledger.as_ref().unwrap_or(&default);
        match lc.backend(&config.sources) {
            LedgerBackend::File => Ok(Ledger::File {
                path: config.ledger_file(),
            }),
            LedgerBackend::Nats => {
                let unavailable = |message: String| LedgerError::Unavailable {
                    where_: format!("stream {}", lc.stream()),
                    message,
                };
                let js = JetStream::open(config)
                    .await
                    .map_err(|e| unavailable(e.to_string()))?;
                if !create {
                    return Ok(Ledger::Nats {
                        js: Box::new(js),
                        stream: lc.stream().to_owned(),
                        subject: lc.subject().to_owned(),
                    });
                }
                js.ensure_stream(serde_json::json!({
                    "name": lc.stream(),
                    "subjects": [format!("{}.>", lc.subject())],
                    "retention": "limits",
                    "storage": "file",
                    "discard": "old",
                    "max_age": lc.max_age().as_nanos() as u64,
                    "num_replicas": lc.replicas.unwrap_or(1),
                }))
                .await
                .map_err(|e| unavailable(e.message))?;
                Ok(Ledger::Nats {
                    js: Box::new(js),
                    stream: lc.stream().to_owned(),
                    subject: lc.subject().to_owned(),
                })
            }
        }
    }

    /// Where it is, for messages: `stream GATEKEEPER_LEDGER`, `file ./x.jsonl`.
    pub fn describe(&self) -> String {
        match self {
            Ledger::Nats { stream, .. } => format!("stream {stream}"),
            Ledger::File { path } => format!("file {}", path.display()),
        }
    }

    fn unavailable(&self, message: impl Into<String>) -> LedgerError {
        LedgerError::Unavailable {
            where_: self.describe(),
            message: message.into(),
        }
    }

    /// Appends one record (acknowledged by JetStream, or written and synced).
    pub async fn append(&self, record: &Record) -> Result<(), LedgerError> {
        let json = serde_json::to_vec(record).expect("a record always encodes");
        match self {
            Ledger::Nats { js, subject, .. } => js
                .publish(&format!("{subject}.{}", record.kind()), json, None)
                .await
                .map(drop)
                .map_err(|e| self.unavailable(e.message)),
            Ledger::File { path } => {
                let write = || -> std::io::Result<()> {
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)?;
                    let mut line = json.clone();
                    line.push(b'\n');
                    f.write_all(&line)?;
                    f.sync_data()
                };
                write().map_err(|e| self.unavailable(e.to_string()))
            }
        }
    }

    /// The records after `after` (a stream sequence, or a line number for a
    /// file), oldest first, and the position to read after next time.
    pub async fn read_after(&self, after: u64) -> Result<(Vec<Record>, u64), LedgerError> {
        let (raw, last): (Vec<Vec<u8>>, u64) = match self {
            Ledger::Nats {
                js,
                stream,
                subject,
            } => match js
                .read_from(stream, &format!("{subject}.>"), after + 1)
                .await
            {
                Ok(r) => {
                    let last = r.last().map_or(after, |(seq, _)| *seq);
                    (r.into_iter().map(|(_, p)| p).collect(), last)
                }
                Err(e) if e.code == ERR_STREAM_NOT_FOUND => (Vec::new(), after),
                Err(e) => return Err(self.unavailable(e.message)),
            },
            Ledger::File { .. } => {
                let all = self.raw_lines()?;
                let last = all.len() as u64;
                (all.into_iter().skip(after as usize).collect(), last)
            }
        };
        let records = self.parse(&raw, after)?;
        Ok((records, last))
    }

    fn raw_lines(&self) -> Result<Vec<Vec<u8>>, LedgerError> {
        let Ledger::File { path } = self else {
            return Ok(Vec::new());
        };
        match crate::files::read_untrusted(
            path,
            crate::files::MAX_LEDGER_FILE_BYTES,
            "a ledger file",
        ) {
            Ok(file) => Ok(file
                .bytes
                .split(|b| *b == b'\n')
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                .map(<[u8]>::to_vec)
                .collect()),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(self.unavailable(e.to_string())),
        }
    }

    /// Parses raw records; `offset` numbers them for errors.
    fn parse(&self, raw: &[Vec<u8>], offset: u64) -> Result<Vec<Record>, LedgerError> {
        raw.iter()
            .enumerate()
            .map(|(i, bytes)| {
                serde_json::from_slice(bytes).map_err(|e| LedgerError::BadRecord {
                    where_: self.describe(),
                    index: offset as usize + i + 1,
                    message: e.to_string(),
                })
            })
            .collect()
    }

    /// Every record, oldest first. A file or stream that does not exist yet holds none.
    pub async fn read(&self) -> Result<Vec<Record>, LedgerError> {
        Ok(self.read_after(0).await?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatekeeper_model::Timestamp;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn a_file_ledger_round_trips_and_names_a_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let ledger = Ledger::File { path: path.clone() };
        assert!(ledger.read().await.unwrap().is_empty());
        let r = Record::Attestation {
            phase: "phase-2".into(),
            criterion: "x".into(),
            by: "bob".into(),
            at: at("2025-10-02T10:10:00Z"),
            note: None,
        };
        ledger.append(&r).await.unwrap();
        ledger.append(&r).await.unwrap();
        assert_eq!(ledger.read().await.unwrap(), vec![r.clone(), r]);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"kind\":\"vibes\"}\n")
            .unwrap();
        let err = ledger.read().await.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "ledger file {}: record 3: unknown variant `vibes`",
                path.display()
            )),
            "{err}"
        );
    }
}
