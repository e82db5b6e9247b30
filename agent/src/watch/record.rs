//! Recording phase verdicts into the ledger (the lease holder only): the
//! watched phase every round it changes, every phase in `watch.record` every
//! `record_every`, and each at least every [`VERDICT_HEARTBEAT`] so a run of
//! the same verdict is known to be unbroken.

use super::{VERDICT_HEARTBEAT, WatchError, Watcher};
use crate::config::{Config, WatchConfig};
use crate::ledger::Record;
use crate::verdict::PhaseReport;
use gatekeeper_model::{Decision, Snapshot, Timestamp};
use std::collections::BTreeMap;

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
                    self.gates
                        .evaluate(p, names, snapshot, self.history.snapshots())
                }));
            }
        }
        for r in std::iter::once(report).chain(&others) {
            self.metrics.observe_phase(r);
            if self.recorder.is_due(r) {
                self.journal
                    .append(Record::Verdict {
                        phase: r.phase.clone(),
                        verdict: r.verdict,
                        at: r.taken_at,
                        agent: self.agent.clone(),
                    })
                    .await;
            }
        }
        self.journal.flush().await;
        Ok(())
    }
}
