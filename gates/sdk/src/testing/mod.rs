//! Running gates natively in tests, without wasm.

mod series;

pub use series::Series;

use crate::{Evaluation, Gate, GateError, Input, LogLevel, Snapshot};
use gatekeeper_model::FactPath;
use std::cell::RefCell;

thread_local! {
    static LOGS: RefCell<Vec<(LogLevel, String)>> = const { RefCell::new(Vec::new()) };
}

pub(crate) fn record_log(level: LogLevel, message: &str) {
    LOGS.with(|l| l.borrow_mut().push((level, message.to_owned())));
}

/// Log lines the gate sent on this thread since the last call.
pub fn take_logs() -> Vec<(LogLevel, String)> {
    LOGS.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

/// One gate run on a fixture: a snapshot, optional history, params.
#[derive(Debug, Clone)]
pub struct Testcase {
    pub snapshot: Snapshot,
    pub history: Vec<Snapshot>,
    pub params: serde_json::Value,
}

impl Testcase {
    pub fn new(snapshot: Snapshot, params: serde_json::Value) -> Self {
        Testcase {
            snapshot,
            history: Vec::new(),
            params,
        }
    }

    /// Loads a snapshot fixture from JSON text (e.g. `include_str!`).
    pub fn from_json(snapshot_json: &str, params: serde_json::Value) -> Self {
        let snapshot = serde_json::from_str(snapshot_json)
            .unwrap_or_else(|e| panic!("fixture snapshot does not decode: {e}"));
        Self::new(snapshot, params)
    }

    pub fn with_history(mut self, history: Vec<Snapshot>) -> Self {
        self.history = history;
        self
    }

    /// Runs the gate the way the host does: only the facts `G::reads` names,
    /// through the same JSON path, and checks the result would pass the
    /// host's output validation. A gate that looks at facts it did not
    /// declare sees them missing here, as it would in production.
    pub fn run<G: Gate>(&self) -> Result<Evaluation, GateError> {
        // Defaults filled in and unknown params refused, as the host does.
        let params = G::metadata()
            .effective_params(&self.params)
            .map_err(|e| GateError::BadParams(e.to_string()))?;
        let declared = G::metadata().sources;
        let needs = G::needs(&params)?;
        let mut paths = needs
            .reads
            .iter()
            .map(|p| FactPath::parse(p).map_err(GateError::BadParams))
            .collect::<Result<Vec<_>, _>>()?;
        // The host refuses a gate that reads outside its declared sources.
        if let Some(p) = paths
            .iter()
            .find(|p| !declared.iter().any(|s| s == p.source()))
        {
            return Err(GateError::Internal(format!(
                "the host would refuse this gate: it reads `{p}` but declares only the sources [{}]",
                declared.join(", ")
            )));
        }
        paths.sort();
        paths.dedup();
        let encode =
            |s: &Snapshot| serde_json::to_string(&s.select(&paths)).expect("snapshot encodes");
        let snapshot = encode(&self.snapshot);
        let history: Vec<String> = self.history.iter().map(encode).collect();
        let result = crate::evaluate_json::<G>(&snapshot, &history, &params.to_string());
        if let Ok(evaluation) = &result {
            let problems = evaluation.problems();
            assert!(
                problems.is_empty(),
                "the host would reject this evaluation: {problems:?}"
            );
            for t in &evaluation.triggers {
                assert!(
                    needs.triggers.iter().any(|d| d.id == t.id),
                    "the host would reject this evaluation: trigger {:?} is not declared in `needs`",
                    t.id
                );
            }
        }
        result
    }

    /// The fixture's stream `name`, to change facts in place. Panics when the
    /// fixture has no NATS facts or no such stream.
    pub fn stream_mut(&mut self, name: &str) -> &mut gatekeeper_model::StreamFacts {
        let nats = self
            .snapshot
            .nats
            .facts
            .as_mut()
            .expect("fixture has NATS facts");
        nats.streams
            .iter_mut()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("fixture has no stream {name}"))
    }

    /// The typed input, for calling gate logic directly.
    pub fn input(&self) -> Input {
        Input {
            snapshot: self.snapshot.clone(),
            history: self.history.clone(),
            params: self.params.clone(),
        }
    }
}
