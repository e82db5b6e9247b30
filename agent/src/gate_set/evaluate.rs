//! Evaluating a phase: its gates run at once on the gate threads (the last
//! one here when this thread may run gates), all within the phase budget,
//! each on the part of the snapshot it reads; the verdict is aggregated
//! fail-closed.

use super::{GateSet, GateUnusable};
use crate::history::{History, project};
use crate::recording::Recording;
use crate::runtime::{Budget, EvaluationError, EvaluationInput, PendingEvaluation};
use crate::verdict::{GateReport, GateVerdict, PhaseReport, phase_verdict};
use gatekeeper_model::{self as model, FactPath, Snapshot};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The snapshots before the current one, oldest first: as read (a
/// recording's), or a window kept from round to round, which keeps them
/// encoded as the gates are sent them (see [`History::projected`]).
#[derive(Debug, Clone, Copy)]
enum Window<'a> {
    Snapshots(&'a [Snapshot]),
    Kept(&'a History),
}

impl Window<'_> {
    fn projected(&self, reads: &[FactPath]) -> Vec<Arc<str>> {
        match self {
            Window::Snapshots(all) => all.iter().map(|s| project(s, reads)).collect(),
            Window::Kept(history) => history.projected(reads),
        }
    }
}

/// Each set of facts read, narrowed and encoded once per evaluation: the
/// current snapshot and the window.
type Projections = BTreeMap<Vec<FactPath>, (Arc<str>, Vec<Arc<str>>)>;

/// Why a gate was not run.
#[derive(Debug, thiserror::Error)]
enum NotRun<'g> {
    #[error("gate `{0}` is not loaded")]
    NotConfigured(String),
    #[error("failed to load: {0}")]
    LoadFailed(&'g GateUnusable),
    #[error("{0}")]
    Params(&'g GateUnusable),
}

impl GateSet {
    /// Evaluates `gate_names` on the recording and aggregates the verdict.
    pub fn evaluate_phase(
        &self,
        phase: &str,
        gate_names: &[String],
        recording: &Recording,
    ) -> PhaseReport {
        self.evaluate(phase, gate_names, &recording.current, &recording.history)
    }

    /// Evaluates `gate_names` on `current` with `history` (oldest first).
    /// The gates run at once on the gate threads, all within the phase's
    /// budget; a gate that cannot finish inside it is an error.
    pub fn evaluate(
        &self,
        phase: &str,
        gate_names: &[String],
        current: &Snapshot,
        history: &[Snapshot],
    ) -> PhaseReport {
        self.evaluate_in(phase, gate_names, current, Window::Snapshots(history))
    }

    /// [`GateSet::evaluate`] with a window kept from round to round (`watch`,
    /// `check --wait`): the same report, without encoding the whole window
    /// again every round.
    pub fn evaluate_kept(
        &self,
        phase: &str,
        gate_names: &[String],
        current: &Snapshot,
        history: &History,
    ) -> PhaseReport {
        self.evaluate_in(phase, gate_names, current, Window::Kept(history))
    }

    fn evaluate_in(
        &self,
        phase: &str,
        gate_names: &[String],
        current: &Snapshot,
        history: Window<'_>,
    ) -> PhaseReport {
        let digest = snapshot_digest(current);
        let budget = Budget::starting_now(self.budget);
        let mut projections = Projections::new();
        // Every gate but the last goes to the gate threads; the last runs
        // here when this thread may run gates, while the others run.
        let here = crate::runtime::may_run_gates_here();
        let running: Vec<(&String, Result<Started, NotRun<'_>>)> = gate_names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let inline = here && i + 1 == gate_names.len();
                let started = self.start(name, current, history, &mut projections, budget, inline);
                (name, started)
            })
            .collect();
        let mut reports = Vec::new();
        for (name, started) in running {
            let identity = self.identity(name);
            let report = match started.map(Started::wait) {
                Err(e) => error_report(name, identity, e.to_string()),
                Ok(Err(e)) => error_report(name, identity, e.to_string()),
                Ok(Ok(e)) => match self.undeclared_trigger(name, &e) {
                    Some(id) => error_report(
                        name,
                        identity,
                        format!(
                            "malformed output: trigger `{id}` is not one the gate declared in `needs`"
                        ),
                    ),
                    None => GateReport {
                        name: name.clone(),
                        implementation: identity.implementation,
                        sha256: identity.sha256,
                        signer: identity.signer,
                        verdict: e.decision.into(),
                        error: None,
                        criteria: e.criteria,
                        triggers: e.triggers,
                    },
                },
            };
            tracing::info!(gate = %name, verdict = report.verdict.as_str(), error = report.error.as_deref().map(crate::text::untrusted_line), "gate evaluated");
            reports.push(report);
        }
        PhaseReport {
            phase: phase.to_owned(),
            verdict: phase_verdict(&reports),
            taken_at: current.taken_at,
            snapshot_digest: digest,
            gates: reports,
        }
    }

    /// A trigger the gate raised but did not declare (0.2 gates declare all).
    fn undeclared_trigger<'e>(&self, gate: &str, e: &'e model::Evaluation) -> Option<&'e str> {
        let declared = self
            .gates
            .get(gate)?
            .params
            .as_ref()
            .ok()?
            .needs
            .triggers
            .as_ref()?;
        e.triggers
            .iter()
            .find(|t| !declared.iter().any(|d| d.id == t.id))
            .map(|t| t.id.as_str())
    }

    /// Starts one gate's evaluation, or says why it cannot run.
    fn start(
        &self,
        name: &str,
        current: &Snapshot,
        history: Window<'_>,
        projections: &mut Projections,
        budget: Budget,
        inline: bool,
    ) -> Result<Started, NotRun<'_>> {
        let Some(gate) = self.gates.get(name) else {
            return Err(NotRun::NotConfigured(name.to_owned()));
        };
        let (loaded, params) = match (&gate.loaded, &gate.params) {
            (Err(e), _) => return Err(NotRun::LoadFailed(e)),
            (_, Err(e)) => return Err(NotRun::Params(e)),
            (Ok(loaded), Ok(params)) => (loaded, params),
        };
        let reads = &params.needs.reads;
        let (snap, history) = projections
            .entry(reads.clone())
            .or_insert_with(|| (project(current, reads), history.projected(reads)));
        let input = EvaluationInput {
            taken_at: current.taken_at,
            snapshot_json: snap,
            history_json: history,
            params_json: &params.json,
        };
        Ok(if inline {
            Started::Done(loaded.evaluate_within(&input, Some(budget)))
        } else {
            Started::Running(loaded.start_evaluate(&input, Some(budget)))
        })
    }
}

/// A gate evaluation that was started on a gate thread, or already ran here.
enum Started {
    Running(PendingEvaluation),
    Done(Result<model::Evaluation, EvaluationError>),
}

impl Started {
    fn wait(self) -> Result<model::Evaluation, EvaluationError> {
        match self {
            Started::Running(p) => p.wait(),
            Started::Done(r) => r,
        }
    }
}

/// `sha256:<hex>` of the snapshot's canonical JSON, hashed as it is written
/// (never held as one string).
pub fn snapshot_digest(snapshot: &Snapshot) -> String {
    struct HashWriter(Sha256);
    impl std::io::Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = HashWriter(Sha256::new());
    serde_json::to_writer(&mut w, snapshot).expect("a snapshot always encodes");
    format!("sha256:{}", hex::encode(w.0.finalize()))
}

/// What a report says ran: the implementation, its digest and signer.
struct Identity {
    implementation: String,
    sha256: Option<String>,
    signer: Option<String>,
}

impl GateSet {
    fn identity(&self, name: &str) -> Identity {
        let gate = self.gates.get(name);
        Identity {
            implementation: gate.map_or("?".into(), |g| g.implementation.clone()),
            sha256: gate.and_then(|g| g.loaded.as_ref().ok().map(|l| l.digest().to_owned())),
            signer: gate.and_then(|g| g.signer.as_ref().map(ToString::to_string)),
        }
    }
}

fn error_report(name: &str, identity: Identity, error: String) -> GateReport {
    GateReport {
        name: name.to_owned(),
        implementation: identity.implementation,
        sha256: identity.sha256,
        signer: identity.signer,
        verdict: GateVerdict::Error,
        error: Some(error),
        criteria: Vec::new(),
        triggers: Vec::new(),
    }
}
