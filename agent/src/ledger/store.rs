//! Where records are kept: a JetStream stream (one message per record on
//! `<subject>.<kind>`) or a local JSONL file (one line per record), each
//! record sealed into the hash chain ([`super::chain`]) as it is appended
//! and the chain followed as it is read.

use super::chain::{self, Chain, Link};
use super::{LedgerError, Record};
use crate::clients::nats::{
    ERR_STREAM_NOT_FOUND, ERR_WRONG_LAST_SEQUENCE, Expected, JetStream, JsError,
};
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

    /// Appends one record, sealed after the ledger's last one
    /// (acknowledged by JetStream, or written and synced). On NATS the
    /// publish is a compare-and-set on the stream's last sequence, so two
    /// writers never fork the chain: the one that loses links again and
    /// retries. A file is locked while its last line is read and the new
    /// one written.
    pub async fn append(&self, record: &Record) -> Result<(), LedgerError> {
        match self {
            Ledger::Nats {
                js,
                stream,
                subject,
            } => {
                let subject = format!("{subject}.{}", record.kind());
                let mut tries = 0;
                loop {
                    let (_, last) = js
                        .stream_bounds(stream)
                        .await
                        .map_err(|e| self.unavailable(e.message))?;
                    let prev = match last {
                        0 => None,
                        seq => Some(match js.message_at(stream, seq).await {
                            Ok(Some(bytes)) => chain::link_to(seq, &bytes),
                            Ok(None) => Link {
                                seq,
                                digest: chain::MISSING.into(),
                            },
                            Err(e) => return Err(self.unavailable(e.message)),
                        }),
                    };
                    let (bytes, _) = chain::seal(last + 1, prev, record);
                    match js
                        .publish(&subject, bytes, Some(Expected::StreamSequence(last)))
                        .await
                    {
                        Ok(_) => return Ok(()),
                        Err(JsError { code, .. })
                            if code == ERR_WRONG_LAST_SEQUENCE && tries < 20 =>
                        {
                            tries += 1;
                        }
                        Err(e) => return Err(self.unavailable(e.message)),
                    }
                }
            }
            Ledger::File { path } => {
                let write = || -> std::io::Result<()> {
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .read(true)
                        .append(true)
                        .open(path)?;
                    f.lock()?;
                    let lines = file_lines(&f)?;
                    let last = lines.len() as u64;
                    let prev = lines.last().map(|l| chain::link_to(last, l));
                    let (mut line, _) = chain::seal(last + 1, prev, record);
                    line.push(b'\n');
                    f.write_all(&line)?;
                    f.sync_data()
                };
                write().map_err(|e| self.unavailable(e.to_string()))
            }
        }
    }

    /// The records after the chain's head (a stream sequence, or a line
    /// number for a file), oldest first, with the chain followed: a break
    /// is an error naming the record, never records.
    pub async fn read_after(&self, chain: &mut Chain) -> Result<Vec<Record>, LedgerError> {
        let after = chain.head.as_ref().map_or(0, |h| h.seq);
        let (stored, first): (Vec<(u64, Vec<u8>)>, u64) = match self {
            Ledger::Nats {
                js,
                stream,
                subject,
            } => {
                let first = match js.stream_bounds(stream).await {
                    Ok((first, _)) => first,
                    Err(e) if e.code == ERR_STREAM_NOT_FOUND => return Ok(Vec::new()),
                    Err(e) => return Err(self.unavailable(e.message)),
                };
                match js
                    .read_from(stream, &format!("{subject}.>"), after + 1)
                    .await
                {
                    Ok(r) => (r, first),
                    Err(e) if e.code == ERR_STREAM_NOT_FOUND => (Vec::new(), first),
                    Err(e) => return Err(self.unavailable(e.message)),
                }
            }
            Ledger::File { .. } => {
                let all = self.raw_lines()?;
                ((1..).zip(all).skip(after as usize).collect(), 1)
            }
        };
        stored
            .iter()
            .map(|(seq, bytes)| {
                chain
                    .follow(*seq, bytes, first)
                    .map_err(|broken| match broken {
                        Some(why) => LedgerError::Broken {
                            where_: self.describe(),
                            seq: *seq,
                            why,
                        },
                        None => LedgerError::BadRecord {
                            where_: self.describe(),
                            index: *seq as usize,
                            message: chain::decoding_error(bytes),
                        },
                    })
            })
            .collect()
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
            Ok(file) => Ok(split_lines(&file.bytes)),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(self.unavailable(e.to_string())),
        }
    }

    /// Every record, oldest first, with the chain followed. A file or
    /// stream that does not exist yet holds none.
    pub async fn read(&self) -> Result<Vec<Record>, LedgerError> {
        self.read_after(&mut Chain::default()).await
    }

    /// Follows the whole chain, looking for `find` (a digest) on the way:
    /// what it holds, or where it breaks.
    pub async fn verify(&self, find: Option<String>) -> Result<Chain, LedgerError> {
        let mut chain = Chain {
            find,
            ..Chain::default()
        };
        self.read_after(&mut chain).await?;
        Ok(chain)
    }
}

/// The non-blank lines of a ledger file, each a stored record.
fn split_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(<[u8]>::to_vec)
        .collect()
}

/// The lines of an open (locked) ledger file, read under its size cap.
fn file_lines(mut f: &std::fs::File) -> std::io::Result<Vec<Vec<u8>>> {
    use std::io::{Read as _, Seek as _};
    f.rewind()?;
    let mut bytes = Vec::new();
    f.take(crate::files::MAX_LEDGER_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > crate::files::MAX_LEDGER_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "the ledger file is over {} bytes: start a new one",
            crate::files::MAX_LEDGER_FILE_BYTES
        )));
    }
    Ok(split_lines(&bytes))
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
