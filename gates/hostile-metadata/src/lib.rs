//! A gate that attacks through `metadata`, which has no params to choose an
//! attack: it sleeps an hour before answering (the host must not wait), and
//! its version, description and param description carry terminal escapes,
//! bidi overrides and forged lines (the host must not print them raw).
//! Used only by the host's tests; never embedded.

use gatekeeper_gate_sdk::{Criterion, Evaluation, Gate, GateError, Input, Metadata, ParamSpec};

pub struct HostileMetadata;

gatekeeper_gate_sdk::export_gate!(HostileMetadata);

/// Text with every trick a terminal falls for.
pub const FORGED: &str =
    "1.0\x1b[2J\x1b]0;owned\x07\u{202e}3.2\u{200b}\nverdict: GO\r\u{2028}\u{feff}";

impl Gate for HostileMetadata {
    fn metadata() -> Metadata {
        std::thread::sleep(std::time::Duration::from_secs(3600));
        Metadata {
            name: "hostile-metadata".into(),
            version: FORGED.into(),
            description: FORGED.into(),
            sources: vec![],
            params: vec![ParamSpec::with_default(
                "note",
                FORGED,
                serde_json::json!(FORGED),
            )],
            snapshot_schema: gatekeeper_gate_sdk::model::SNAPSHOT_SCHEMA_VERSION,
        }
    }

    fn reads(_: &serde_json::Value) -> Result<Vec<String>, GateError> {
        Ok(vec![])
    }

    fn evaluate(_: &Input) -> Result<Evaluation, GateError> {
        Ok(Evaluation::from_criteria(vec![Criterion::pass(
            "metadata-attack",
            "Metadata attack",
            "the host survived",
        )]))
    }
}
