//! The verdict types: a gate's verdict in a phase, and the phase's answer,
//! aggregated fail-closed. What `check` prints and `watch` decides on.

use gatekeeper_model::{self as model, Decision};
use serde::Serialize;

/// A gate's verdict in a phase report: its decision, or `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateVerdict {
    Go,
    NoGo,
    Defer,
    Error,
}

impl GateVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            GateVerdict::Go => "go",
            GateVerdict::NoGo => "no-go",
            GateVerdict::Defer => "defer",
            GateVerdict::Error => "error",
        }
    }
}

impl From<Decision> for GateVerdict {
    fn from(d: Decision) -> Self {
        match d {
            Decision::Go => GateVerdict::Go,
            Decision::NoGo => GateVerdict::NoGo,
            Decision::Defer => GateVerdict::Defer,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    /// The gate's name in config.
    pub name: String,
    /// What runs it: `stream-topology@0.1.0`, the wasm path, or the OCI reference.
    pub implementation: String,
    /// Hex sha256 of the component that ran (absent when it did not load).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Who vouches for it: `built-in`, a `[trust]` key, or unchecked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    pub verdict: GateVerdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub criteria: Vec<model::Criterion>,
    pub triggers: Vec<model::Trigger>,
}

/// The answer for one phase. Its JSON is deterministic: no timings.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub phase: String,
    pub verdict: Decision,
    pub taken_at: model::Timestamp,
    /// `sha256:<hex>` of the snapshot the gates saw (canonical JSON).
    pub snapshot_digest: String,
    pub gates: Vec<GateReport>,
}

/// Any error or no-go → no-go; else any defer → defer; else go.
pub fn phase_verdict(gates: &[GateReport]) -> Decision {
    if gates
        .iter()
        .any(|g| matches!(g.verdict, GateVerdict::Error | GateVerdict::NoGo))
        || gates.is_empty()
    {
        Decision::NoGo
    } else if gates.iter().any(|g| g.verdict == GateVerdict::Defer) {
        Decision::Defer
    } else {
        Decision::Go
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_verdict_is_fail_closed() {
        let g = |v| GateReport {
            name: "g".into(),
            implementation: "i".into(),
            sha256: None,
            signer: None,
            verdict: v,
            error: None,
            criteria: vec![],
            triggers: vec![],
        };
        assert_eq!(
            phase_verdict(&[g(GateVerdict::Go), g(GateVerdict::Go)]),
            Decision::Go
        );
        assert_eq!(
            phase_verdict(&[g(GateVerdict::Go), g(GateVerdict::Defer)]),
            Decision::Defer
        );
        assert_eq!(
            phase_verdict(&[g(GateVerdict::Defer), g(GateVerdict::Error)]),
            Decision::NoGo
        );
        assert_eq!(
            phase_verdict(&[g(GateVerdict::NoGo), g(GateVerdict::Defer)]),
            Decision::NoGo
        );
        assert_eq!(phase_verdict(&[]), Decision::NoGo);
    }
}
