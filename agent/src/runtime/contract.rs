//! The gate contract's versions, as the host binds them: `gatekeeper:gate@0.2.0`
//! (`wit/gate.wit`) and the frozen `0.1.0` (`wit/v0.1.0/`). The 0.1 binding
//! reuses 0.2's types (the records they share are the same), so everything
//! after the call is one code path. See `wit/README.md` for the rule.

use super::EvaluationError;
use super::sandbox::GateState;
use gatekeeper_model as model;
use wasmtime::Store;

pub(crate) mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "gate",
    });
}

pub(crate) mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "gate",
        with: {
            "gatekeeper:gate/types": super::v0_2::gatekeeper::gate::types,
        },
    });
}

pub(crate) use v0_2::gatekeeper::gate::types as w;

/// The contract versions this host loads, oldest first.
pub const SUPPORTED: &[&str] = &["0.1.0", "0.2.0"];

/// A component's contract, checked at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    V0_1,
    V0_2,
}

impl Contract {
    pub fn parse(version: &str) -> Option<Contract> {
        match version {
            "0.1.0" => Some(Contract::V0_1),
            "0.2.0" => Some(Contract::V0_2),
            _ => None,
        }
    }

    pub fn version(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1.0",
            Contract::V0_2 => "0.2.0",
        }
    }
}

/// A pre-instantiated gate of either version.
#[derive(Clone)]
pub(crate) enum GatePre {
    V0_1(v0_1::GatePre<GateState>),
    V0_2(v0_2::GatePre<GateState>),
}

/// An instantiated gate of either version.
pub(crate) enum Gate {
    V0_1(v0_1::Gate),
    V0_2(v0_2::Gate),
}

impl GatePre {
    pub(crate) fn new(
        contract: Contract,
        pre: wasmtime::component::InstancePre<GateState>,
    ) -> wasmtime::Result<GatePre> {
        Ok(match contract {
            Contract::V0_1 => GatePre::V0_1(v0_1::GatePre::new(pre)?),
            Contract::V0_2 => GatePre::V0_2(v0_2::GatePre::new(pre)?),
        })
    }

    pub(crate) fn instantiate(&self, store: &mut Store<GateState>) -> wasmtime::Result<Gate> {
        Ok(match self {
            GatePre::V0_1(p) => Gate::V0_1(p.instantiate(store)?),
            GatePre::V0_2(p) => Gate::V0_2(p.instantiate(store)?),
        })
    }
}

impl Gate {
    pub(crate) fn call_metadata(
        &self,
        store: &mut Store<GateState>,
    ) -> wasmtime::Result<w::Metadata> {
        match self {
            Gate::V0_1(g) => g.call_metadata(store),
            Gate::V0_2(g) => g.call_metadata(store),
        }
    }

    /// 0.2's `needs`; for a 0.1 gate, its `reads` and nothing else declared.
    pub(crate) fn call_needs(
        &self,
        store: &mut Store<GateState>,
        params: &str,
    ) -> wasmtime::Result<Result<w::Needs, w::GateError>> {
        match self {
            Gate::V0_1(g) => Ok(g.call_reads(store, params)?.map(|reads| w::Needs {
                reads,
                history_ms: 0,
                triggers: vec![],
                attestations: vec![],
            })),
            Gate::V0_2(g) => g.call_needs(store, params),
        }
    }

    pub(crate) fn call_evaluate(
        &self,
        store: &mut Store<GateState>,
        input: &w::GateInput,
    ) -> wasmtime::Result<Result<w::Evaluation, w::GateError>> {
        match self {
            Gate::V0_1(g) => g.call_evaluate(store, input),
            Gate::V0_2(g) => g.call_evaluate(store, input),
        }
    }
}

/// The host's imports (`log`), the same in every version.
pub(crate) fn add_to_linker(
    linker: &mut wasmtime::component::Linker<GateState>,
) -> wasmtime::Result<()> {
    v0_2::Gate::add_to_linker::<_, wasmtime::component::HasSelf<_>>(linker, |s| s)
}

impl v0_2::GateImports for GateState {
    fn log(&mut self, level: w::LogLevel, message: String) {
        let level = match level {
            w::LogLevel::Debug => model::LogLevel::Debug,
            w::LogLevel::Info => model::LogLevel::Info,
            w::LogLevel::Warn => model::LogLevel::Warn,
            w::LogLevel::Error => model::LogLevel::Error,
        };
        self.log_line(level, &message);
    }
}

impl w::Host for GateState {}

pub(crate) fn severity(s: w::Severity) -> model::Severity {
    match s {
        w::Severity::Automatic => model::Severity::Automatic,
        w::Severity::Manual => model::Severity::Manual,
    }
}

pub(crate) fn output_size(e: &w::Evaluation) -> usize {
    let criteria: usize = e
        .criteria
        .iter()
        .map(|c| {
            c.id.len()
                + c.title.len()
                + c.message.len()
                + c.observed.as_ref().map_or(0, String::len)
                + c.expected.as_ref().map_or(0, String::len)
        })
        .sum();
    let triggers: usize = e
        .triggers
        .iter()
        .map(|t| t.id.len() + t.reason.len() + t.since.as_ref().map_or(0, String::len))
        .sum();
    criteria + triggers
}

pub(crate) fn from_wit_error(e: w::GateError) -> model::GateError {
    match e {
        w::GateError::BadParams(m) => model::GateError::BadParams(m),
        w::GateError::BadInput(m) => model::GateError::BadInput(m),
        w::GateError::Internal(m) => model::GateError::Internal(m),
    }
}

pub(crate) fn from_wit_evaluation(e: w::Evaluation) -> Result<model::Evaluation, EvaluationError> {
    let triggers = e
        .triggers
        .into_iter()
        .map(|t| {
            let since = t
                .since
                .map(|s| {
                    model::parse_timestamp(&s).map_err(|e| {
                        EvaluationError::MalformedOutput(format!("trigger {}: since: {e}", t.id))
                    })
                })
                .transpose()?;
            Ok(model::Trigger {
                id: t.id,
                severity: severity(t.severity),
                reason: t.reason,
                since,
            })
        })
        .collect::<Result<Vec<_>, EvaluationError>>()?;
    Ok(model::Evaluation {
        decision: match e.decision {
            w::Decision::Go => model::Decision::Go,
            w::Decision::NoGo => model::Decision::NoGo,
            w::Decision::Defer => model::Decision::Defer,
        },
        criteria: e
            .criteria
            .into_iter()
            .map(|c| model::Criterion {
                id: c.id,
                title: c.title,
                status: match c.status {
                    w::CriterionStatus::Pass => model::CriterionStatus::Pass,
                    w::CriterionStatus::Fail => model::CriterionStatus::Fail,
                    w::CriterionStatus::Unknown => model::CriterionStatus::Unknown,
                },
                observed: c.observed,
                expected: c.expected,
                message: c.message,
            })
            .collect(),
        triggers,
    })
}
