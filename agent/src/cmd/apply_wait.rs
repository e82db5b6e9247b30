//! `wait-for` under `apply`: re-collect and evaluate until a phase (or one
//! of its criteria) is go, within the step's timeout.

use super::note;
use crate::actions::{PhaseWait, StepError, StepResult};
use crate::collect;
use crate::config::Config;
use crate::gate_set::GateSet;
use crate::history::History;
use crate::ledger::StepOutcome;
use crate::verdict::PhaseReport;
use crate::wait::{self, MAX_HISTORY, Round};
use gatekeeper_model::{CriterionStatus, Decision, format_duration};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `wait-for`: re-collect until the phase (or one criterion) is go.
pub(super) struct GateWaiter {
    pub(super) config: Arc<Config>,
    pub(super) gates: Arc<GateSet>,
}

fn criterion_status(report: &PhaseReport, id: &str) -> Option<CriterionStatus> {
    report
        .gates
        .iter()
        .flat_map(|g| &g.criteria)
        .find(|c| c.id == id)
        .map(|c| c.status)
}

impl PhaseWait for GateWaiter {
    fn wait_for<'a>(
        &'a self,
        phase: &'a str,
        criterion: Option<&'a str>,
        timeout: Duration,
        interval: Option<Duration>,
    ) -> Pin<Box<dyn Future<Output = StepResult> + Send + 'a>> {
        Box::pin(async move {
            let names = self
                .config
                .phase_gates(phase)
                .map_err(|e| StepError::Refused(e.to_string()))?
                .to_vec();
            let interval = interval.unwrap_or(Duration::from_secs(2));
            let what = match criterion {
                Some(c) => format!("{c} of {phase}"),
                None => phase.to_owned(),
            };
            let start = Instant::now();
            let mut history = History::new(MAX_HISTORY);
            for rounds in 1.. {
                let round_start = Instant::now();
                let mut snapshot = collect::collect(&self.config).await;
                snapshot.interval_ms = Some(interval.as_millis() as u64);
                let report = tokio::task::block_in_place(|| {
                    self.gates.evaluate_kept(phase, &names, &snapshot, &history)
                });
                let go = match criterion {
                    None => report.verdict == Decision::Go,
                    Some(c) => match criterion_status(&report, c) {
                        Some(s) => s == CriterionStatus::Pass,
                        None => {
                            return Err(StepError::Refused(format!(
                                "phase {phase} has no criterion `{c}`"
                            )));
                        }
                    },
                };
                let elapsed = start.elapsed();
                if go {
                    return Ok((
                        StepOutcome::Unchanged,
                        format!(
                            "{what} go after {rounds} round(s) ({})",
                            format_duration(elapsed)
                        ),
                    ));
                }
                let line = wait::progress_line(&Round {
                    number: rounds,
                    elapsed,
                    report: &report,
                });
                let left = timeout.saturating_sub(elapsed);
                if left.is_zero() {
                    return Err(StepError::NotDone(format!(
                        "{what} not go after {}: {line}",
                        format_duration(timeout)
                    )));
                }
                note(&format!("  waiting: {line}"));
                history.push(snapshot);
                // The next round, or one at the deadline if that comes first.
                tokio::time::sleep(interval.saturating_sub(round_start.elapsed()).min(left)).await;
            }
            unreachable!("the loop returns")
        })
    }
}
