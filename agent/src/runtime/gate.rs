//! A [`LoadedGate`]: a compiled, checked gate, ready for many evaluations,
//! and what it is asked: metadata, needs, evaluate.

use super::call::GateInner;
use super::contract::{Contract, w};
use super::{Budget, EvaluationError, EvaluationLimits, pool};
use gatekeeper_model as model;
use std::sync::Arc;

/// What a gate needs with given params, checked (see [`LoadedGate::needs`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GateNeeds {
    /// The facts it reads: the host sends only these.
    pub reads: Vec<model::FactPath>,
    /// The history it needs (ms); `None` from a 0.1 gate, which cannot say.
    pub history_ms: Option<u64>,
    /// Every trigger it can raise; `None` from a 0.1 gate.
    pub triggers: Option<Vec<model::TriggerSpec>>,
    /// The attestations it reads.
    pub attestations: Vec<model::AttestationSpec>,
}

/// What one evaluation is given; the snapshot and history are JSON documents
/// already narrowed to the facts the gate reads (see [`LoadedGate::reads`]).
#[derive(Debug, Clone)]
pub struct EvaluationInput<'a> {
    pub taken_at: model::Timestamp,
    pub snapshot_json: &'a str,
    pub history_json: &'a [Arc<str>],
    pub params_json: &'a str,
}

impl EvaluationInput<'_> {
    /// The input as the contract carries it into the sandbox.
    fn to_wit(&self) -> w::GateInput {
        w::GateInput {
            snapshot: self.snapshot_json.to_owned(),
            history: self.history_json.iter().map(|h| h.to_string()).collect(),
            params: self.params_json.to_owned(),
        }
    }
}

/// A compiled, checked gate, ready for many evaluations. Cheap to clone.
#[derive(Clone)]
pub struct LoadedGate {
    pub(super) inner: Arc<GateInner>,
    pub(super) pool: Arc<pool::GatePool>,
}

/// An evaluation running on a gate thread; [`PendingEvaluation::wait`] for it.
pub struct PendingEvaluation(pool::Pending<Result<model::Evaluation, EvaluationError>>);

impl PendingEvaluation {
    pub fn wait(self) -> Result<model::Evaluation, EvaluationError> {
        self.0
            .wait()
            .unwrap_or_else(|e| Err(EvaluationError::Instantiate(e.to_string())))
    }
}

impl LoadedGate {
    pub fn metadata(&self) -> &model::Metadata {
        &self.inner.metadata
    }

    /// Hex sha256 of the component bytes.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    pub fn limits(&self) -> &EvaluationLimits {
        &self.inner.limits
    }

    /// The contract version the gate was built for.
    pub fn contract(&self) -> Contract {
        self.inner.contract
    }

    /// Asks the gate what it needs with these params (once per load and
    /// params): the facts it reads — every path must parse and lie within
    /// its declared sources — and, from a 0.2 gate, its history, triggers
    /// and attestations.
    pub fn needs(&self, params_json: &str) -> Result<GateNeeds, EvaluationError> {
        let inner = Arc::clone(&self.inner);
        let params = params_json.to_owned();
        self.pool
            .spawn(move || inner.call_needs(&params))
            .wait()
            .unwrap_or_else(|e| Err(EvaluationError::Instantiate(e.to_string())))
    }

    /// One evaluation in a fresh sandbox; waits for it. It runs right here
    /// when this thread may run gates ([`pool::may_run_gates_here`]: a gate
    /// thread, or the main thread outside the async runtime with a stack as
    /// large as a gate thread's), else on a gate thread. Never panics on
    /// guest behaviour.
    pub fn evaluate(
        &self,
        input: &EvaluationInput<'_>,
    ) -> Result<model::Evaluation, EvaluationError> {
        self.evaluate_within(input, None)
    }

    /// [`LoadedGate::evaluate`] within a phase's `budget`.
    pub fn evaluate_within(
        &self,
        input: &EvaluationInput<'_>,
        budget: Option<Budget>,
    ) -> Result<model::Evaluation, EvaluationError> {
        if pool::may_run_gates_here() {
            let wit_input = input.to_wit();
            return self.inner.call_evaluate(input.taken_at, &wit_input, budget);
        }
        self.start_evaluate(input, budget).wait()
    }

    /// Starts one evaluation on a gate thread, within the phase's `budget`.
    pub fn start_evaluate(
        &self,
        input: &EvaluationInput<'_>,
        budget: Option<Budget>,
    ) -> PendingEvaluation {
        let inner = Arc::clone(&self.inner);
        let taken_at = input.taken_at;
        let wit_input = input.to_wit();
        PendingEvaluation(
            self.pool
                .spawn(move || inner.call_evaluate(taken_at, &wit_input, budget)),
        )
    }
}
