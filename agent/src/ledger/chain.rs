//! The hash chain over the ledger. Each record is stored sealed: its
//! position (stream sequence or line number), a link to the record before
//! it (that record's position and digest) and its own digest over all
//! three. Reading follows the chain and stops at the first break: a record
//! edited (digest), moved or copied (position), removed or inserted (link),
//! or not sealed at all after the chain started (forged, or written by an
//! agent older than the chain). A break is an error, never facts: the
//! criteria that read the ledger become unknown.
//!
//! What the chain proves is relative to its head: someone able to rewrite
//! the whole ledger can write a new, consistent chain. `gatekeeper ledger
//! verify` prints the head digest; keeping it elsewhere (a CI log, a
//! ticket) and passing it back with `--expect-head` detects that too.

use super::Record;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// What every digest starts with, so a digest of this format can never be
/// confused with another hash of the same bytes.
const DOMAIN: &[u8] = b"gatekeeper-ledger-chain/1\n";

/// The digest a link carries when the record it points at could not be
/// read when the next one was written (deleted from the stream).
pub const MISSING: &str = "missing";

/// A link to a stored record: its position and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub seq: u64,
    pub digest: String,
}

/// A record as stored.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    seq: u64,
    /// `None` for the first record of a ledger.
    prev: Option<Link>,
    record: Box<RawValue>,
    digest: String,
}

fn digest(seq: u64, prev: Option<&Link>, record: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(seq.to_string().as_bytes());
    h.update(b"\n");
    if let Some(p) = prev {
        h.update(p.seq.to_string().as_bytes());
        h.update(b" ");
        h.update(p.digest.as_bytes());
    }
    h.update(b"\n");
    h.update(record);
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// The digest of stored bytes that are not sealed (records written before
/// the chain): the bytes' own hash, so the first sealed record can link to
/// them.
fn unsealed_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// `record` sealed at position `seq` after `prev`: the bytes to store, and
/// the link the next record takes.
pub fn seal(seq: u64, prev: Option<Link>, record: &Record) -> (Vec<u8>, Link) {
    let json = serde_json::to_string(record).expect("a record always encodes");
    let d = digest(seq, prev.as_ref(), json.as_bytes());
    let sealed = Sealed {
        seq,
        prev,
        record: RawValue::from_string(json).expect("a record encodes as JSON"),
        digest: d.clone(),
    };
    let bytes = serde_json::to_vec(&sealed).expect("a sealed record encodes");
    (bytes, Link { seq, digest: d })
}

/// The link to stored bytes at `seq`, as the writer of the next record
/// takes it (the stored digest; reading checks it).
pub fn link_to(seq: u64, bytes: &[u8]) -> Link {
    match serde_json::from_slice::<Sealed>(bytes) {
        Ok(s) => Link {
            seq,
            digest: s.digest,
        },
        Err(_) => Link {
            seq,
            digest: unsealed_digest(bytes),
        },
    }
}

/// Where the chain breaks, and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Break {
    #[error("its digest does not match its content: the record was edited after it was written")]
    Edited,
    #[error("it was sealed for position {sealed_for}: the record was moved or copied here")]
    Moved { sealed_for: u64 },
    #[error("it links to position {links_to}, but the record before it is at {previous}: {}", if links_to > previous { "a record was removed" } else { "a record was inserted or the order changed" })]
    Gap { links_to: u64, previous: u64 },
    #[error("the record it links to at {seq} was changed or replaced")]
    Replaced { seq: u64 },
    #[error("the record it links to at {seq} is missing: it was removed")]
    Missing { seq: u64 },
    #[error(
        "it is not sealed, after the chain started: a forged record, or one written by an agent older than the chain"
    )]
    Unsealed,
    #[error("it starts a new chain after records at positions up to {previous}")]
    Restarted { previous: u64 },
}

/// A ledger read so far: where the chain stands, and what it is made of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    /// The last record read (any record: sealed or from before the chain).
    pub head: Option<Link>,
    /// Sealed records read.
    pub sealed: u64,
    /// Records from before the chain (unsealed, all before the first sealed one).
    pub unsealed: u64,
    /// Where the chain was first read from when its start had aged out of
    /// the stream (`max_age`): nothing before it can be checked.
    pub anchored_at: Option<u64>,
    /// A digest to look for (`ledger verify --expect-head`), and where it was found.
    pub find: Option<String>,
    pub found: Option<u64>,
}

impl Chain {
    /// Follows the stored bytes at position `seq`. `first` is the first
    /// position the store still holds (records before it aged out). The
    /// record, or why the chain breaks here; `Err(None)` when the bytes
    /// are not a record at all (the caller names the decoding error).
    pub fn follow(&mut self, seq: u64, bytes: &[u8], first: u64) -> Result<Record, Option<Break>> {
        let Ok(sealed) = serde_json::from_slice::<Sealed>(bytes) else {
            let record: Record = serde_json::from_slice(bytes).map_err(|_| None)?;
            if self.sealed > 0 {
                return Err(Some(Break::Unsealed));
            }
            self.unsealed += 1;
            self.head = Some(Link {
                seq,
                digest: unsealed_digest(bytes),
            });
            return Ok(record);
        };
        if sealed.seq != seq {
            return Err(Some(Break::Moved {
                sealed_for: sealed.seq,
            }));
        }
        if digest(seq, sealed.prev.as_ref(), sealed.record.get().as_bytes()) != sealed.digest {
            return Err(Some(Break::Edited));
        }
        match (&self.head, &sealed.prev) {
            (Some(head), Some(link)) if link.seq != head.seq => {
                return Err(Some(Break::Gap {
                    links_to: link.seq,
                    previous: head.seq,
                }));
            }
            (Some(_), Some(link)) if link.digest == MISSING => {
                return Err(Some(Break::Missing { seq: link.seq }));
            }
            (Some(head), Some(link)) if link.digest != head.digest => {
                return Err(Some(Break::Replaced { seq: link.seq }));
            }
            (Some(head), None) => {
                return Err(Some(Break::Restarted { previous: head.seq }));
            }
            (None, Some(link)) if link.seq >= first => {
                return Err(Some(Break::Missing { seq: link.seq }));
            }
            (None, Some(_)) => self.anchored_at = Some(seq),
            _ => {}
        }
        let record: Record = serde_json::from_str(sealed.record.get()).map_err(|_| None)?;
        self.sealed += 1;
        if self.find.as_deref() == Some(sealed.digest.as_str()) {
            self.found = Some(seq);
        }
        self.head = Some(Link {
            seq,
            digest: sealed.digest,
        });
        Ok(record)
    }
}

/// The error a record that is not a record at all gets: the record's own
/// decoding error (through the envelope when it is sealed).
pub fn decoding_error(bytes: &[u8]) -> String {
    match serde_json::from_slice::<Sealed>(bytes) {
        Ok(s) => serde_json::from_str::<Record>(s.record.get())
            .err()
            .map_or_else(String::new, |e| e.to_string()),
        Err(_) => serde_json::from_slice::<Record>(bytes)
            .err()
            .map_or_else(String::new, |e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: u32) -> Record {
        Record::Attestation {
            phase: "phase-2".into(),
            criterion: format!("c-{n}"),
            by: "bob".into(),
            at: "2025-10-02T10:10:00Z".parse().unwrap(),
            note: None,
        }
    }

    /// `n` sealed records at positions 1..=n.
    fn ledger(n: u32) -> Vec<Vec<u8>> {
        let mut prev = None;
        (1..=n)
            .map(|i| {
                let (bytes, link) = seal(u64::from(i), prev.take(), &rec(i));
                prev = Some(link);
                bytes
            })
            .collect()
    }

    fn follow_all(stored: &[(u64, Vec<u8>)], first: u64) -> Result<Chain, (u64, Option<Break>)> {
        let mut chain = Chain::default();
        for (seq, bytes) in stored {
            chain.follow(*seq, bytes, first).map_err(|b| (*seq, b))?;
        }
        Ok(chain)
    }

    fn at_positions(records: Vec<Vec<u8>>) -> Vec<(u64, Vec<u8>)> {
        (1..).zip(records).collect()
    }

    #[test]
    fn an_intact_chain_reads_and_each_tamper_is_named() {
        let chain = follow_all(&at_positions(ledger(4)), 1).unwrap();
        assert_eq!(chain.sealed, 4);
        assert_eq!(chain.head.as_ref().unwrap().seq, 4);

        // Edited: one field of record 2 changed, envelope kept.
        let mut edited = ledger(4);
        edited[1] = String::from_utf8(edited[1].clone())
            .unwrap()
            .replace("c-2", "c-9")
            .into_bytes();
        assert_eq!(
            follow_all(&at_positions(edited), 1).unwrap_err(),
            (2, Some(Break::Edited))
        );

        // Removed from a stream: positions keep their numbers, 2 is gone.
        let mut removed: Vec<(u64, Vec<u8>)> = at_positions(ledger(4));
        removed.remove(1);
        assert_eq!(
            follow_all(&removed, 1).unwrap_err(),
            (
                3,
                Some(Break::Gap {
                    links_to: 2,
                    previous: 1
                })
            )
        );

        // Removed from a file: the lines after it move up one.
        let mut lines = ledger(4);
        lines.remove(1);
        assert_eq!(
            follow_all(&at_positions(lines), 1).unwrap_err(),
            (2, Some(Break::Moved { sealed_for: 3 }))
        );

        // Reordered (lines of a file): 3 before 2.
        let mut swapped = ledger(4);
        swapped.swap(1, 2);
        assert_eq!(
            follow_all(&at_positions(swapped), 1).unwrap_err(),
            (2, Some(Break::Moved { sealed_for: 3 }))
        );

        // Forged: an unsealed record appended after the chain started.
        let mut forged = at_positions(ledger(2));
        forged.push((3, serde_json::to_vec(&rec(7)).unwrap()));
        assert_eq!(
            follow_all(&forged, 1).unwrap_err(),
            (3, Some(Break::Unsealed))
        );

        // Forged and sealed by someone who read the chain, but sealed
        // after record 1 instead of the head (inserted).
        let mut inserted = at_positions(ledger(2));
        let first = link_to(1, &inserted[0].1);
        inserted.push((3, seal(3, Some(first), &rec(8)).0));
        assert_eq!(
            follow_all(&inserted, 1).unwrap_err().1,
            Some(Break::Gap {
                links_to: 1,
                previous: 2
            })
        );

        // A new chain started in the middle.
        let mut restarted = at_positions(ledger(2));
        restarted.push((3, seal(3, None, &rec(9)).0));
        assert_eq!(
            follow_all(&restarted, 1).unwrap_err().1,
            Some(Break::Restarted { previous: 2 })
        );
    }

    #[test]
    fn records_before_the_chain_and_an_aged_out_start_are_accepted() {
        // Two records from before the chain, then sealed ones linking to them.
        let old: Vec<Vec<u8>> = (1..=2)
            .map(|i| serde_json::to_vec(&rec(i)).unwrap())
            .collect();
        let head = link_to(2, &old[1]);
        let (third, link) = seal(3, Some(head), &rec(3));
        let (fourth, _) = seal(4, Some(link), &rec(4));
        let chain = follow_all(
            &at_positions(vec![old[0].clone(), old[1].clone(), third, fourth]),
            1,
        )
        .unwrap();
        assert_eq!((chain.unsealed, chain.sealed), (2, 2));

        // The stream's first two aged out: the chain is read from 3.
        let stored: Vec<(u64, Vec<u8>)> = at_positions(ledger(4)).into_iter().skip(2).collect();
        let chain = follow_all(&stored, 3).unwrap();
        assert_eq!(chain.anchored_at, Some(3));
        // ...but with the stream still holding 2, a record linking to it
        // as the first read means 2 was removed.
        assert_eq!(
            follow_all(&stored, 2).unwrap_err(),
            (3, Some(Break::Missing { seq: 2 }))
        );
    }

    #[test]
    fn a_link_to_a_record_deleted_before_the_next_write_is_a_break() {
        let stored = at_positions(ledger(2));
        let (third, _) = seal(
            3,
            Some(Link {
                seq: 2,
                digest: MISSING.into(),
            }),
            &rec(3),
        );
        // Record 2 was deleted before 3 was written, and is gone.
        let kept = vec![stored[0].clone(), (3, third)];
        assert_eq!(
            follow_all(&kept, 1).unwrap_err().1,
            Some(Break::Gap {
                links_to: 2,
                previous: 1
            })
        );
    }
}
