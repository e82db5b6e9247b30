//! The ledger: what Gatekeeper saw and did, as facts `check` can read back.
//!
//! Records are JSON, one per message on a JetStream stream (`<subject>.<kind>`)
//! or one per line in a local JSONL file when there is no NATS. Folded, they
//! are the snapshot's `ledger` section: phase verdicts over time, incidents,
//! attestations. Actions and alerts are kept for audit.
//!
//! The HA lease lives in a KV bucket (a JetStream stream `KV_<bucket>`, the
//! same layout `nats kv` reads), taken and renewed by compare-and-set on the
//! key's revision.

use crate::collect::Collector;
use crate::config::{Config, LedgerBackend, LedgerConfig};
use crate::jetstream::{ERR_WRONG_LAST_SEQUENCE, JetStream, JsError};
use gatekeeper_model::{
    Attestation, Decision, Incident, LedgerFacts, PhaseRecord, Timestamp, Trigger,
};
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// One ledger record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Record {
    /// A phase's verdict at a time (on change, and at least every few minutes).
    Verdict {
        phase: String,
        verdict: Decision,
        at: Timestamp,
        agent: String,
    },
    IncidentOpened {
        incident: String,
        at: Timestamp,
        agent: String,
        summary: String,
        triggers: Vec<Trigger>,
    },
    IncidentClosed {
        incident: String,
        at: Timestamp,
        agent: String,
    },
    /// One step of a plan, with its outcome.
    Step {
        incident: String,
        plan: String,
        /// 1-based position in the plan.
        step: usize,
        action: String,
        outcome: StepOutcome,
        detail: String,
        /// When the step started.
        at: Timestamp,
        #[serde(default)]
        duration_ms: u64,
        agent: String,
    },
    /// A plan's end (or why it did not start).
    Plan {
        incident: String,
        plan: String,
        trigger: String,
        outcome: PlanOutcome,
        detail: String,
        at: Timestamp,
        agent: String,
    },
    /// One `[watch] alert` hook run for an alert (exec or webhook). Its own
    /// kind: an alert is never a plan.
    AlertDelivery {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incident: Option<String>,
        action: String,
        outcome: StepOutcome,
        detail: String,
        at: Timestamp,
        #[serde(default)]
        duration_ms: u64,
        agent: String,
    },
    Alert {
        at: Timestamp,
        agent: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incident: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trigger: Option<String>,
        message: String,
    },
    Attestation {
        phase: String,
        criterion: String,
        by: String,
        at: Timestamp,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
}

impl Record {
    /// The last subject token: `verdict`, `incident-opened`, …
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Verdict { .. } => "verdict",
            Record::IncidentOpened { .. } => "incident-opened",
            Record::IncidentClosed { .. } => "incident-closed",
            Record::Step { .. } => "step",
            Record::Plan { .. } => "plan",
            Record::Alert { .. } => "alert",
            Record::AlertDelivery { .. } => "alert-delivery",
            Record::Attestation { .. } => "attestation",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepOutcome {
    /// Changed what it had to.
    Done,
    /// Already as wanted; nothing changed.
    Unchanged,
    Failed,
    /// Dry run: this is what would have been done.
    WouldRun,
    /// Stopped by shutdown before it finished.
    Interrupted,
}

impl StepOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Done => "done",
            StepOutcome::Unchanged => "unchanged",
            StepOutcome::Failed => "failed",
            StepOutcome::WouldRun => "would-run",
            StepOutcome::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanOutcome {
    Done,
    Failed,
    Interrupted,
    /// Dry run: every step recorded as `would-run`.
    DryRun,
    /// A veto gate was not go.
    Vetoed,
    /// Another plan ran less than `cooldown` ago.
    Cooldown,
}

impl PlanOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanOutcome::Done => "done",
            PlanOutcome::Failed => "failed",
            PlanOutcome::Interrupted => "interrupted",
            PlanOutcome::DryRun => "dry-run",
            PlanOutcome::Vetoed => "vetoed",
            PlanOutcome::Cooldown => "cooldown",
        }
    }
}

/// Verdicts are recorded on change and every few minutes in between. A run
/// of the same verdict for a phase with no gap longer than this between
/// records folds into one `PhaseRecord` (`at` … `until`): a phase that was
/// go for 90 days is one record, and a gap shows as two.
pub const VERDICT_RUN_GAP_MS: i64 = 15 * 60 * 1000;

/// The facts gates read: verdicts (runs compacted), incidents (opened and
/// closed merged by id), attestations.
pub fn fold(records: &[Record]) -> LedgerFacts {
    let mut facts = LedgerFacts::default();
    for r in records {
        fold_one(&mut facts, r);
    }
    facts
}

/// Adds one record to folded facts.
pub fn fold_one(facts: &mut LedgerFacts, r: &Record) {
    match r {
        Record::Verdict {
            phase, verdict, at, ..
        } => push_verdict(
            &mut facts.phase_history,
            PhaseRecord {
                phase: phase.clone(),
                verdict: *verdict,
                at: *at,
                until: None,
            },
        ),
        Record::IncidentOpened {
            incident,
            at,
            summary,
            ..
        } => {
            if !facts.incidents.iter().any(|i| &i.id == incident) {
                facts.incidents.push(Incident {
                    id: incident.clone(),
                    opened_at: *at,
                    closed_at: None,
                    summary: summary.clone(),
                });
            }
        }
        Record::IncidentClosed { incident, at, .. } => {
            if let Some(i) = facts.incidents.iter_mut().find(|i| &i.id == incident) {
                i.closed_at = Some(*at);
            }
        }
        Record::Attestation {
            phase,
            criterion,
            by,
            at,
            note,
        } => facts.attestations.push(Attestation {
            phase: phase.clone(),
            criterion: criterion.clone(),
            by: by.clone(),
            at: *at,
            note: note.clone(),
        }),
        Record::Step { .. }
        | Record::Plan { .. }
        | Record::Alert { .. }
        | Record::AlertDelivery { .. } => {}
    }
}

/// Appends a verdict, or extends the phase's latest run when the verdict is
/// the same and follows within [`VERDICT_RUN_GAP_MS`].
fn push_verdict(history: &mut Vec<PhaseRecord>, r: PhaseRecord) {
    if let Some(last) = history.iter_mut().rev().find(|x| x.phase == r.phase)
        && last.verdict == r.verdict
        && (0..=VERDICT_RUN_GAP_MS)
            .contains(&gatekeeper_model::millis_between(last.last_seen(), r.at))
    {
        last.until = Some(r.at);
        return;
    }
    history.push(r);
}

/// Why the ledger could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger {where_}: {message}")]
    Unavailable { where_: String, message: String },
    /// A record that does not parse: nothing after it is trusted.
    #[error("ledger {where_}: record {index}: {message}")]
    BadRecord {
        where_: String,
        index: usize,
        message: String,
    },
}

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
                let js = JetStream::connect(config).await.map_err(unavailable)?;
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
                Err(e) if e.code == crate::jetstream::ERR_STREAM_NOT_FOUND => (Vec::new(), after),
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

/// Reads the ledger into the snapshot's `ledger` section (for `check`).
pub struct LedgerCollector<'c> {
    config: &'c Config,
}

impl<'c> LedgerCollector<'c> {
    pub fn new(config: &'c Config) -> Self {
        LedgerCollector { config }
    }
}

impl Collector for LedgerCollector<'_> {
    type Facts = LedgerFacts;
    const NAME: &'static str = "ledger";

    fn timeout(&self) -> Duration {
        crate::config::DEFAULT_SOURCE_TIMEOUT
    }

    async fn collect(&self, _deadline: tokio::time::Instant) -> Result<LedgerFacts, String> {
        let ledger = Ledger::open_to_read(self.config)
            .await
            .map_err(|e| e.to_string())?;
        let records = ledger.read().await.map_err(|e| e.to_string())?;
        Ok(fold(&records))
    }

    fn complete(_facts: &LedgerFacts) -> bool {
        true
    }
}

/// What the lease's key holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseValue {
    /// The agent holding it; empty when released.
    holder: String,
    ttl_ms: u64,
}

/// The HA lease: one agent acts, the others evaluate and report.
///
/// Time is each agent's own monotonic clock: the holder counts from its last
/// successful renewal, a standby from when it first saw the current revision.
/// A standby takes over only after the revision stayed unchanged for a whole
/// TTL, by which time the holder has stopped counting itself the holder.
#[derive(Debug)]
pub struct Lease {
    js: JetStream,
    stream: String,
    subject: String,
    agent: String,
    ttl: Duration,
    /// The revision we wrote, and when.
    held: Option<(u64, std::time::Instant)>,
    /// (revision, holder, first seen) of someone else's lease.
    observed: Option<(u64, String, std::time::Instant)>,
}

impl Lease {
    /// Opens the lease bucket (created if missing) for `key` (e.g. the watched phase).
    pub async fn open(
        js: JetStream,
        config: &LedgerConfig,
        key: &str,
        agent: &str,
    ) -> Result<Lease, JsError> {
        let bucket = config.lease_bucket();
        let stream = format!("KV_{bucket}");
        js.ensure_stream(serde_json::json!({
            "name": stream,
            "subjects": [format!("$KV.{bucket}.>")],
            "retention": "limits",
            "storage": "file",
            "discard": "new",
            "max_msgs_per_subject": 1,
            "allow_rollup_hdrs": true,
            "deny_delete": true,
            "num_replicas": config.replicas.unwrap_or(1),
        }))
        .await?;
        Ok(Lease {
            js,
            stream,
            subject: format!("$KV.{bucket}.{key}"),
            agent: agent.to_owned(),
            ttl: config.lease_ttl(),
            held: None,
            observed: None,
        })
    }

    /// True while we hold it: renewed less than a TTL ago.
    pub fn held(&self) -> bool {
        self.held.is_some_and(|(_, at)| at.elapsed() < self.ttl)
    }

    /// The other holder we last saw, if any.
    pub fn holder(&self) -> Option<&str> {
        self.observed.as_ref().map(|(_, h, _)| h.as_str())
    }

    /// Renews, takes or observes the lease; returns whether we hold it now.
    pub async fn tick(&mut self) -> Result<bool, JsError> {
        let current = self.js.last_by_subject(&self.stream, &self.subject).await?;
        let (rev, value) = match current {
            None => (0, None),
            Some((rev, bytes)) => (rev, serde_json::from_slice::<LeaseValue>(&bytes).ok()),
        };
        let mine = value.as_ref().is_some_and(|v| v.holder == self.agent);
        let free = value.as_ref().is_none_or(|v| v.holder.is_empty());
        if mine || free {
            self.observed = None;
            let fresh = self
                .held
                .is_some_and(|(r, at)| r == rev && at.elapsed() < self.ttl / 3);
            if fresh {
                return Ok(true);
            }
            return self.write(rev).await;
        }
        self.held = None;
        let holder = value.map(|v| v.holder).unwrap_or_default();
        match &self.observed {
            Some((r, _, since)) if *r == rev => {
                if since.elapsed() >= self.ttl {
                    tracing::warn!(holder = %holder, "lease not renewed for a whole TTL; taking it over");
                    return self.write(rev).await;
                }
            }
            _ => self.observed = Some((rev, holder, std::time::Instant::now())),
        }
        Ok(false)
    }

    /// Compare-and-set on `rev`: we hold it if nobody wrote in between.
    async fn write(&mut self, rev: u64) -> Result<bool, JsError> {
        let at = std::time::Instant::now();
        match self.put(self.agent.clone(), rev).await {
            Ok(new_rev) => {
                self.held = Some((new_rev, at));
                self.observed = None;
                Ok(true)
            }
            Err(e) if e.code == ERR_WRONG_LAST_SEQUENCE => {
                self.held = None;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Writes `holder` into the key if its revision is still `rev`.
    async fn put(&self, holder: String, rev: u64) -> Result<u64, JsError> {
        let value = LeaseValue {
            holder,
            ttl_ms: self.ttl.as_millis() as u64,
        };
        self.js
            .publish(
                &self.subject,
                serde_json::to_vec(&value).expect("encodes"),
                Some(rev),
            )
            .await
    }

    /// Gives the lease up (on shutdown) so a standby need not wait a TTL.
    pub async fn release(&mut self) -> Result<(), JsError> {
        if let Some((rev, _)) = self.held.take() {
            self.put(String::new(), rev).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn outcomes_read_as_in_the_json() {
        use StepOutcome::*;
        for o in [Done, Unchanged, Failed, WouldRun, Interrupted] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        use PlanOutcome as P;
        for o in [
            P::Done,
            P::Failed,
            P::Interrupted,
            P::DryRun,
            P::Vetoed,
            P::Cooldown,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
    }

    #[test]
    fn records_fold_into_facts() {
        let records = vec![
            Record::Verdict {
                phase: "phase-1".into(),
                verdict: Decision::Go,
                at: at("2025-10-02T10:00:00Z"),
                agent: "a".into(),
            },
            Record::IncidentOpened {
                incident: "dlq-spike-1".into(),
                at: at("2025-10-02T10:01:00Z"),
                agent: "a".into(),
                summary: "dlq-spike".into(),
                triggers: vec![],
            },
            Record::Alert {
                at: at("2025-10-02T10:01:00Z"),
                agent: "a".into(),
                incident: None,
                trigger: None,
                message: "m".into(),
            },
            Record::IncidentClosed {
                incident: "dlq-spike-1".into(),
                at: at("2025-10-02T10:09:00Z"),
                agent: "a".into(),
            },
            Record::Attestation {
                phase: "phase-2".into(),
                criterion: "staging-verified".into(),
                by: "alice".into(),
                at: at("2025-10-02T10:10:00Z"),
                note: Some("ok".into()),
            },
        ];
        let facts = fold(&records);
        assert_eq!(facts.phase_history.len(), 1);
        assert_eq!(facts.phase_history[0].verdict, Decision::Go);
        assert_eq!(facts.incidents.len(), 1);
        assert_eq!(
            facts.incidents[0].closed_at,
            Some(at("2025-10-02T10:09:00Z"))
        );
        assert_eq!(facts.attestations[0].by, "alice");
        assert_eq!(facts.attestations[0].note.as_deref(), Some("ok"));
    }

    #[test]
    fn a_run_of_verdicts_is_one_record_and_a_gap_starts_another() {
        let v = |phase: &str, verdict: Decision, t: &str| Record::Verdict {
            phase: phase.into(),
            verdict,
            at: at(t),
            agent: "a".into(),
        };
        let records = vec![
            v("phase-1", Decision::Go, "2025-10-02T10:00:00Z"),
            v("phase-2", Decision::Defer, "2025-10-02T10:00:00Z"),
            v("phase-1", Decision::Go, "2025-10-02T10:05:00Z"),
            v("phase-1", Decision::Go, "2025-10-02T10:10:00Z"),
            v("phase-1", Decision::Go, "2025-10-02T10:15:00Z"),
            // The watch was down for an hour: a new run.
            v("phase-1", Decision::Go, "2025-10-02T11:15:00Z"),
            v("phase-1", Decision::NoGo, "2025-10-02T11:20:00Z"),
        ];
        let kept: Vec<String> = fold(&records)
            .phase_history
            .iter()
            .map(|r| {
                format!(
                    "{} {} {}..{}",
                    r.phase,
                    r.verdict,
                    gatekeeper_model::format_timestamp(r.at),
                    r.until
                        .map(gatekeeper_model::format_timestamp)
                        .unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(
            kept,
            [
                "phase-1 go 2025-10-02T10:00:00Z..2025-10-02T10:15:00Z",
                "phase-2 defer 2025-10-02T10:00:00Z..",
                "phase-1 go 2025-10-02T11:15:00Z..",
                "phase-1 no-go 2025-10-02T11:20:00Z..",
            ]
        );
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
