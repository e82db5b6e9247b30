//! The Gatekeeper gate SDK.
//!
//! A gate is one type implementing [`Gate`]: metadata, what it needs with
//! given params, and a function from a typed [`Input`] (snapshot, history
//! window, params) to an [`Evaluation`]. [`export_gate!`] turns it into a
//! `gatekeeper:gate@0.2.0` component when built for `wasm32-wasip2`;
//! natively the same code runs under plain `cargo test` through
//! [`testing::Testcase`].
//!
//! ```text
//! struct MyGate;
//! impl gatekeeper_gate_sdk::Gate for MyGate { /* metadata, evaluate */ }
//! gatekeeper_gate_sdk::export_gate!(MyGate);
//! ```

// The wit-bindgen glue names this crate by path, also from inside it.
extern crate self as gatekeeper_gate_sdk;

pub mod check;
pub mod labels;
pub mod spec;
pub mod window;

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod wasm;

pub use gatekeeper_model as model;
pub use gatekeeper_model::{
    AttestationSpec, Criterion, CriterionStatus, Decision, Evaluation, GateError, LogLevel,
    Metadata, Needs, ParamSpec, Severity, Snapshot, Timestamp, Trigger, TriggerSpec,
};

use serde::de::DeserializeOwned;

/// What a gate is given for one evaluation.
#[derive(Debug, Clone)]
pub struct Input {
    pub snapshot: Snapshot,
    /// Earlier snapshots, oldest first.
    pub history: Vec<Snapshot>,
    /// The gate's params from config (a JSON object).
    pub params: serde_json::Value,
}

impl Input {
    /// Decodes the params into the gate's own type (use `#[serde(default)]`
    /// and `deny_unknown_fields` there so typos are caught).
    pub fn params<P: DeserializeOwned>(&self) -> Result<P, GateError> {
        decode_params(&self.params)
    }

    /// The snapshot's time: the only clock a gate sees.
    pub fn now(&self) -> Timestamp {
        self.snapshot.taken_at
    }
}

/// Decodes params (in `evaluate` via [`Input::params`], or in `Gate::reads`);
/// a mismatch is `BadParams`, naming the field (`field `streams[0].replicas`:
/// invalid type: string "3", expected u32`), which the host turns into the
/// config's file, line and field.
pub fn decode_params<P: DeserializeOwned>(params: &serde_json::Value) -> Result<P, GateError> {
    serde_path_to_error::deserialize(params.clone()).map_err(|e| {
        let path = e.path().to_string();
        GateError::BadParams(if path == "." {
            e.inner().to_string()
        } else {
            format!("field `{path}`: {}", e.inner())
        })
    })
}

/// A gate: pure, deterministic, no I/O.
pub trait Gate {
    fn metadata() -> Metadata;

    /// The fact paths this gate reads with these params (see
    /// [`model::FactPath`]). The host sends only these. Default: every
    /// declared source, whole.
    fn reads(params: &serde_json::Value) -> Result<Vec<String>, GateError> {
        let _ = params;
        Ok(Self::metadata().sources)
    }

    /// What this gate needs with these params: the facts it reads
    /// ([`Gate::reads`]), how much history (ms), every trigger it can raise
    /// and the attestations it reads. The host asks once at load, for every
    /// profile's params: decode the params fully here, so a bad one is a
    /// config error. Default: `reads`, no history, no triggers, no
    /// attestations.
    fn needs(params: &serde_json::Value) -> Result<Needs, GateError> {
        Ok(Needs {
            reads: Self::reads(params)?,
            ..Needs::default()
        })
    }

    fn evaluate(input: &Input) -> Result<Evaluation, GateError>;
}

/// `Gate::needs` from the params' wire form.
pub fn needs_json<G: Gate>(params: &str) -> Result<Needs, GateError> {
    let params: serde_json::Value = serde_json::from_str(params)
        .map_err(|e| GateError::BadParams(format!("params are not JSON: {e}")))?;
    G::needs(&params)
}

/// Decodes the wire form (JSON documents) and evaluates: exactly what the
/// component does inside the sandbox, callable natively.
pub fn evaluate_json<G: Gate>(
    snapshot: &str,
    history: &[String],
    params: &str,
) -> Result<Evaluation, GateError> {
    let input = decode_input(snapshot, history, params)?;
    G::evaluate(&input)
}

/// Decodes the documents that cross the sandbox boundary.
pub fn decode_input(snapshot: &str, history: &[String], params: &str) -> Result<Input, GateError> {
    // `what` names the document only when it is wrong: a long history is
    // not paid for in names.
    let decode = |what: &dyn Fn() -> String, text: &str| -> Result<Snapshot, GateError> {
        let snap: Snapshot = serde_json::from_str(text)
            .map_err(|e| GateError::BadInput(format!("{}: {e}", what())))?;
        if snap.schema_version == 0 {
            return Err(GateError::BadInput(format!(
                "{}: schema_version 0 is not valid",
                what()
            )));
        }
        Ok(snap)
    };
    let snapshot = decode(&|| "snapshot".to_owned(), snapshot)?;
    let history = history
        .iter()
        .enumerate()
        .map(|(i, text)| decode(&|| format!("history[{i}]"), text))
        .collect::<Result<Vec<_>, _>>()?;
    let params: serde_json::Value = serde_json::from_str(params)
        .map_err(|e| GateError::BadParams(format!("params are not JSON: {e}")))?;
    if !params.is_object() {
        return Err(GateError::BadParams(
            "params must be a JSON object".to_owned(),
        ));
    }
    Ok(Input {
        snapshot,
        history,
        params,
    })
}

/// Sends a line to the host's log, tagged with the gate's name.
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    wasm::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    testing::record_log(level, message);
}

/// Turns a [`Gate`] into the exported component interface (wasm32 only; a
/// no-op natively so gate crates build and test on the host too).
#[macro_export]
macro_rules! export_gate {
    ($gate:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct GateExport;
            impl $crate::wasm::bindings::Guest for GateExport {
                fn metadata() -> $crate::wasm::bindings::gatekeeper::gate::types::Metadata {
                    $crate::wasm::metadata::<$gate>()
                }
                fn needs(
                    params: ::std::string::String,
                ) -> ::core::result::Result<
                    $crate::wasm::bindings::gatekeeper::gate::types::Needs,
                    $crate::wasm::bindings::gatekeeper::gate::types::GateError,
                > {
                    $crate::wasm::needs::<$gate>(&params)
                }
                fn evaluate(
                    input: $crate::wasm::bindings::gatekeeper::gate::types::GateInput,
                ) -> ::core::result::Result<
                    $crate::wasm::bindings::gatekeeper::gate::types::Evaluation,
                    $crate::wasm::bindings::gatekeeper::gate::types::GateError,
                > {
                    $crate::wasm::evaluate::<$gate>(input)
                }
            }
            $crate::wasm::bindings::__export_gate_world!(GateExport with_types_in $crate::wasm::bindings);
        };
    };
}
