//! The wit-bindgen glue: converts between the WIT types and the model.

use crate::{Gate, GateError, LogLevel};
use gatekeeper_model as m;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "gate",
        pub_export_macro: true,
        export_macro_name: "__export_gate_world",
        runtime_path: "::gatekeeper_gate_sdk::wasm::__wit_bindgen::rt",
    });
}

use bindings::gatekeeper::gate::types as w;

pub fn log(level: LogLevel, message: &str) {
    let level = match level {
        LogLevel::Debug => w::LogLevel::Debug,
        LogLevel::Info => w::LogLevel::Info,
        LogLevel::Warn => w::LogLevel::Warn,
        LogLevel::Error => w::LogLevel::Error,
    };
    bindings::log(level, message);
}

pub fn metadata<G: Gate>() -> w::Metadata {
    let md = G::metadata();
    w::Metadata {
        name: md.name,
        version: md.version,
        description: md.description,
        sources: md.sources,
        params: md
            .params
            .into_iter()
            .map(|p| w::ParamSpec {
                name: p.name,
                description: p.description,
                default_json: p.default.map(|v| v.to_string()),
            })
            .collect(),
        snapshot_schema: md.snapshot_schema,
    }
}

fn to_wit_error(e: GateError) -> w::GateError {
    match e {
        GateError::BadParams(m) => w::GateError::BadParams(m),
        GateError::BadInput(m) => w::GateError::BadInput(m),
        GateError::Internal(m) => w::GateError::Internal(m),
    }
}

pub fn needs<G: Gate>(params: &str) -> Result<w::Needs, w::GateError> {
    let n = crate::needs_json::<G>(params).map_err(to_wit_error)?;
    let severity = |s: m::Severity| match s {
        m::Severity::Automatic => w::Severity::Automatic,
        m::Severity::Manual => w::Severity::Manual,
    };
    Ok(w::Needs {
        reads: n.reads,
        history_ms: n.history_ms,
        triggers: n
            .triggers
            .into_iter()
            .map(|t| w::TriggerSpec {
                id: t.id,
                title: t.title,
                severity: severity(t.severity),
            })
            .collect(),
        attestations: n
            .attestations
            .into_iter()
            .map(|a| w::AttestationSpec {
                phase: a.phase,
                criterion: a.criterion,
                title: a.title,
            })
            .collect(),
    })
}

pub fn evaluate<G: Gate>(input: w::GateInput) -> Result<w::Evaluation, w::GateError> {
    let evaluation = crate::evaluate_json::<G>(&input.snapshot, &input.history, &input.params)
        .map_err(to_wit_error)?;
    Ok(to_wit(evaluation))
}

fn to_wit(e: m::Evaluation) -> w::Evaluation {
    w::Evaluation {
        decision: match e.decision {
            m::Decision::Go => w::Decision::Go,
            m::Decision::NoGo => w::Decision::NoGo,
            m::Decision::Defer => w::Decision::Defer,
        },
        criteria: e
            .criteria
            .into_iter()
            .map(|c| w::Criterion {
                id: c.id,
                title: c.title,
                status: match c.status {
                    m::CriterionStatus::Pass => w::CriterionStatus::Pass,
                    m::CriterionStatus::Fail => w::CriterionStatus::Fail,
                    m::CriterionStatus::Unknown => w::CriterionStatus::Unknown,
                },
                observed: c.observed,
                expected: c.expected,
                message: c.message,
            })
            .collect(),
        triggers: e
            .triggers
            .into_iter()
            .map(|t| w::Trigger {
                id: t.id,
                severity: match t.severity {
                    m::Severity::Automatic => w::Severity::Automatic,
                    m::Severity::Manual => w::Severity::Manual,
                },
                reason: t.reason,
                since: t.since.map(m::format_timestamp),
            })
            .collect(),
    }
}
