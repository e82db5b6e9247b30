//! Recording phase verdicts into the ledger (the lease holder only): the
//! watched phase every round it changes, every phase in `watch.record` every
//! `record_every`, and each at least every [`VERDICT_HEARTBEAT`] so a run of
//! the same verdict is known to be unbroken. With `watch.attest`, every
//! change of a recorded verdict is also written as an in-toto statement.

use super::{VERDICT_HEARTBEAT, WatchError, Watcher};
use crate::attestation;
use crate::config::{Config, WatchConfig};
use crate::files::write_atomically;
use crate::ledger::{GateRan, Record};
use crate::recording;
use crate::verdict::PhaseReport;
use gatekeeper_model::{Decision, Snapshot, Timestamp};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What was recorded last, per phase, and when the other phases are due.
pub(super) struct VerdictRecorder {
    /// The phases recorded besides the watched one.
    phases: Vec<String>,
    last: BTreeMap<String, (Decision, Timestamp)>,
    due: tokio::time::Instant,
}

impl VerdictRecorder {
    /// `watch.record`, or every phase but the watched one; each must exist.
    pub fn new(config: &Config, wc: &WatchConfig, watched: &str) -> Result<Self, WatchError> {
        let phases: Vec<String> = wc.record.clone().unwrap_or_else(|| {
            config
                .phases
                .keys()
                .filter(|p| *p != watched)
                .cloned()
                .collect()
        });
        for p in &phases {
            config.phase_gates(p)?;
        }
        Ok(VerdictRecorder {
            phases,
            last: BTreeMap::new(),
            due: tokio::time::Instant::now(),
        })
    }

    /// Whether `report` is to be recorded now (changed, or the heartbeat is due).
    fn is_due(&mut self, report: &PhaseReport) -> bool {
        let due = match self.last.get(&report.phase) {
            Some((v, at)) => {
                *v != report.verdict
                    || gatekeeper_model::millis_between(*at, report.taken_at)
                        >= VERDICT_HEARTBEAT.as_millis() as i64
            }
            None => true,
        };
        if due {
            self.last
                .insert(report.phase.clone(), (report.verdict, report.taken_at));
        }
        due
    }
}

impl Watcher {
    /// Records the watched phase's verdict, and the other phases' when
    /// they are due, then flushes the journal.
    pub(super) async fn record(
        &mut self,
        snapshot: &Snapshot,
        report: &PhaseReport,
    ) -> Result<(), WatchError> {
        let mut others = Vec::new();
        if tokio::time::Instant::now() >= self.recorder.due {
            self.recorder.due = tokio::time::Instant::now() + self.wc.record_every();
            for p in &self.recorder.phases {
                let names = self.config.phase_gates(p)?;
                others.push(tokio::task::block_in_place(|| {
                    self.gates.evaluate_kept(p, names, snapshot, &self.history)
                }));
            }
        }
        for r in std::iter::once(report).chain(&others) {
            self.metrics.observe_phase(r);
            let changed = self
                .recorder
                .last
                .get(&r.phase)
                .is_none_or(|(v, _)| *v != r.verdict);
            if self.recorder.is_due(r) {
                if changed && let Some(dir) = self.attest_dir() {
                    tokio::task::block_in_place(|| self.attest(&dir, snapshot, r));
                }
                self.journal
                    .append(Record::Verdict {
                        phase: r.phase.clone(),
                        verdict: r.verdict,
                        at: r.taken_at,
                        agent: self.agent.clone(),
                        gates: r
                            .gates
                            .iter()
                            .map(|g| GateRan {
                                name: g.name.clone(),
                                sha256: g.sha256.clone(),
                                signer: g.signer.clone(),
                            })
                            .collect(),
                    })
                    .await;
            }
        }
        self.journal.flush().await;
        Ok(())
    }

    /// `watch.attest`, resolved against the config's directory.
    fn attest_dir(&self) -> Option<PathBuf> {
        let dir = self.wc.attest.as_ref()?;
        Some(if dir.is_absolute() {
            dir.clone()
        } else {
            self.config.base_dir.join(dir)
        })
    }

    /// A changed verdict as an in-toto statement (`watch.attest`), its
    /// subject the recording it was decided on (the round's snapshot after
    /// the history window), with the lease epoch it was decided under. A
    /// statement that cannot be written is logged, never in the way.
    fn attest(&self, dir: &Path, snapshot: &Snapshot, report: &PhaseReport) {
        let Ok(names) = self.config.phase_gates(&report.phase) else {
            return;
        };
        let json = recording::to_json(snapshot, self.history.snapshots());
        let stem = recording::file_stem(report.taken_at, &report.phase);
        let recording = dir.join(format!("{stem}.json"));
        let statement_path = dir.join(format!("{stem}.intoto.json"));
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            write_atomically(&recording, json.as_bytes())?;
            // As written: the bytes and the newline after them.
            let mut bytes = json.into_bytes();
            bytes.push(b'\n');
            let statement = attestation::statement(
                report,
                (format!("{stem}.json"), hex::encode(Sha256::digest(&bytes))),
                attestation::gates_used(&self.gates, names),
                attestation::ConfigUsed {
                    path: self.config.params_by_profile.shown().to_owned(),
                    sha256: self.config.params_by_profile.text_sha256(),
                    profile: self.config.profile.clone(),
                },
                self.agent.clone(),
                self.lease.epoch(),
            );
            write_atomically(
                &statement_path,
                serde_json::to_string_pretty(&statement)
                    .expect("a statement encodes")
                    .as_bytes(),
            )
        };
        match write() {
            Ok(()) => {
                tracing::info!(statement = %statement_path.display(), phase = %report.phase, verdict = report.verdict.as_str(), "verdict attested")
            }
            Err(e) => {
                tracing::error!(error = %e, dir = %dir.display(), "cannot write the verdict's attestation")
            }
        }
    }
}
