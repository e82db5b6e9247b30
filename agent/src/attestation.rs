//! Verdicts as attestations: an [in-toto Statement v1] whose subject is the
//! snapshot (or recording) file a verdict was decided on, and whose
//! predicate says what decided it: the phase and verdict, every gate's
//! name, implementation, sha256, version and contract, the config's sha256
//! and profile, the agent, and the whole report with its sha256. Anyone
//! with the snapshot and the config re-evaluates it and gets the same
//! report byte for byte ([`verify`]).
//!
//! Statements are not signed here: gate signing does not exist yet, and a
//! statement is only as trustworthy as the place it is kept.
//!
//! [in-toto Statement v1]: https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md

use crate::gate_set::GateSet;
use crate::verdict::PhaseReport;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "urn:gatekeeper:verdict:v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub type_: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: Verdict,
}

/// A file by name and digest (`{"sha256": "<hex>"}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    pub name: String,
    pub digest: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    pub phase: String,
    pub verdict: String,
    pub taken_at: String,
    /// `sha256:<hex>` of the current snapshot's canonical JSON (as the report has it).
    pub snapshot_digest: String,
    pub gates: Vec<GateUsed>,
    pub config: ConfigUsed,
    pub agent: String,
    /// The HA lease's revision when a `watch` holder decided; `None` for `check`.
    pub lease_epoch: Option<u64>,
    pub gatekeeper_version: String,
    /// `sha256:<hex>` of `report` as canonical JSON (keys sorted, no
    /// spaces): the same report always hashes the same.
    pub report_sha256: String,
    pub report: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateUsed {
    pub name: String,
    pub implementation: String,
    /// Hex sha256 of the component; `None` when the gate did not load.
    pub sha256: Option<String>,
    pub version: Option<String>,
    pub contract: Option<String>,
    /// Who vouches for the gate: `built-in`, a `[trust]` key, or unchecked.
    pub signer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigUsed {
    pub path: String,
    pub sha256: String,
    pub profile: Option<String>,
}

/// `sha256:<hex>` of a JSON value's canonical form (keys sorted, compact).
fn canonical_sha256(value: &serde_json::Value) -> String {
    let bytes = serde_json::to_vec(value).expect("a value encodes");
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn report_value(report: &PhaseReport) -> serde_json::Value {
    serde_json::to_value(report).expect("a report encodes")
}

/// Where two JSON values first differ, as `path: stated → replayed`.
fn first_difference(
    stated: &serde_json::Value,
    replayed: &serde_json::Value,
    path: String,
) -> Option<String> {
    use serde_json::Value;
    match (stated, replayed) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|k| {
                first_difference(
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    format!("{path}.{k}"),
                )
            })
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, format!("{path}[{i}]"))),
        (a, b) if a == b => None,
        (a, b) => Some(format!("{path}: {a} → {b}")),
    }
}

/// The gates of `names` as the set loaded them.
pub fn gates_used(gates: &GateSet, names: &[String]) -> Vec<GateUsed> {
    names
        .iter()
        .filter_map(|n| gates.gate(n))
        .map(|g| {
            let loaded = g.loaded.as_ref().ok();
            GateUsed {
                name: g.name.clone(),
                implementation: g.implementation.clone(),
                sha256: loaded.map(|l| l.digest().to_owned()),
                version: loaded.map(|l| l.metadata().version.clone()),
                contract: loaded.map(|l| l.contract().version().to_owned()),
                signer: g.signer.as_ref().map(ToString::to_string),
            }
        })
        .collect()
}

/// The statement for `report`, decided on the file `subject` (name, bytes' hex sha256).
pub fn statement(
    report: &PhaseReport,
    subject: (String, String),
    gates: Vec<GateUsed>,
    config: ConfigUsed,
    agent: String,
    lease_epoch: Option<u64>,
) -> Statement {
    let report_value = report_value(report);
    Statement {
        type_: STATEMENT_TYPE.into(),
        subject: vec![Subject {
            name: subject.0,
            digest: [("sha256".to_owned(), subject.1)].into(),
        }],
        predicate_type: PREDICATE_TYPE.into(),
        predicate: Verdict {
            phase: report.phase.clone(),
            verdict: report.verdict.as_str().to_owned(),
            taken_at: gatekeeper_model::format_timestamp(report.taken_at),
            snapshot_digest: report.snapshot_digest.clone(),
            gates,
            config,
            agent,
            lease_epoch,
            gatekeeper_version: env!("CARGO_PKG_VERSION").into(),
            report_sha256: canonical_sha256(&report_value),
            report: report_value,
        },
    }
}

/// Why a statement does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error(
        "not an in-toto Statement v1 of a Gatekeeper verdict (_type {type_}, predicateType {predicate})"
    )]
    NotOurs { type_: String, predicate: String },
    #[error("the statement contradicts itself: {0}")]
    Inconsistent(String),
    #[error("the snapshot file's sha256 is {actual}, the statement's subject is {expected}")]
    Subject { expected: String, actual: String },
    #[error("the config's sha256 is {actual}, the statement was decided with {expected}")]
    Config { expected: String, actual: String },
    #[error("gate `{gate}`: {what}")]
    Gate { gate: String, what: String },
    #[error(
        "re-evaluated, the report differs at {first} (sha256 {actual}, the statement says {expected})"
    )]
    Report {
        expected: String,
        actual: String,
        /// The first difference: `gates[0].criteria[1].status: "unknown" → "pass"`.
        first: String,
    },
}

impl Statement {
    /// What can be checked without the snapshot: its types, and that its
    /// parts agree (the report hashes to `report_sha256` and says the
    /// phase, verdict and snapshot digest the predicate says).
    pub fn check_consistent(&self) -> Result<(), Mismatch> {
        if self.type_ != STATEMENT_TYPE || self.predicate_type != PREDICATE_TYPE {
            return Err(Mismatch::NotOurs {
                type_: self.type_.clone(),
                predicate: self.predicate_type.clone(),
            });
        }
        let p = &self.predicate;
        let report: PhaseReportView = serde_json::from_value(p.report.clone())
            .map_err(|e| Mismatch::Inconsistent(format!("the report does not decode: {e}")))?;
        if canonical_sha256(&p.report) != p.report_sha256 {
            return Err(Mismatch::Inconsistent(
                "the report does not hash to report_sha256 (edited)".into(),
            ));
        }
        for (what, stated, reported) in [
            ("phase", &p.phase, &report.phase),
            ("verdict", &p.verdict, &report.verdict),
            (
                "snapshot digest",
                &p.snapshot_digest,
                &report.snapshot_digest,
            ),
        ] {
            if stated != reported {
                return Err(Mismatch::Inconsistent(format!(
                    "{what}: the predicate says {stated}, its report {reported}"
                )));
            }
        }
        if self.subject.len() != 1 || !self.subject[0].digest.contains_key("sha256") {
            return Err(Mismatch::Inconsistent(
                "a verdict has one subject, with a sha256 digest".into(),
            ));
        }
        Ok(())
    }

    /// Checks the snapshot file's bytes against the subject.
    pub fn check_subject(&self, bytes: &[u8]) -> Result<(), Mismatch> {
        let actual = hex::encode(Sha256::digest(bytes));
        let expected = self.subject[0].digest["sha256"].clone();
        if actual != expected {
            return Err(Mismatch::Subject { expected, actual });
        }
        Ok(())
    }

    /// Checks the config, the gates and the re-evaluated report against the statement.
    pub fn check_replay(
        &self,
        config_sha256: &str,
        gates: &[GateUsed],
        report: &PhaseReport,
    ) -> Result<(), Mismatch> {
        let p = &self.predicate;
        if config_sha256 != p.config.sha256 {
            return Err(Mismatch::Config {
                expected: p.config.sha256.clone(),
                actual: config_sha256.to_owned(),
            });
        }
        for stated in &p.gates {
            let Some(now) = gates.iter().find(|g| g.name == stated.name) else {
                return Err(Mismatch::Gate {
                    gate: stated.name.clone(),
                    what: "not in the phase any more".into(),
                });
            };
            if now.sha256 != stated.sha256 {
                return Err(Mismatch::Gate {
                    gate: stated.name.clone(),
                    what: format!(
                        "its component is {}, the statement was decided with {}",
                        now.sha256.as_deref().unwrap_or("(not loaded)"),
                        stated.sha256.as_deref().unwrap_or("(not loaded)")
                    ),
                });
            }
        }
        let replayed = report_value(report);
        let actual = canonical_sha256(&replayed);
        if actual != p.report_sha256 {
            return Err(Mismatch::Report {
                expected: p.report_sha256.clone(),
                actual,
                first: first_difference(&p.report, &replayed, "report".into())
                    .unwrap_or_else(|| "(no field: the encoding)".into()),
            });
        }
        Ok(())
    }
}

/// The fields of a report the predicate repeats.
#[derive(Deserialize)]
struct PhaseReportView {
    phase: String,
    verdict: String,
    snapshot_digest: String,
}

#[cfg(test)]
mod tests {
    use super::first_difference;
    use serde_json::json;

    #[test]
    fn the_first_difference_names_its_path_and_both_values() {
        let stated = json!({"verdict": "no-go", "gates": [{"criteria": [{"id": "a", "status": "unknown"}]}]});
        let replayed =
            json!({"verdict": "no-go", "gates": [{"criteria": [{"id": "a", "status": "pass"}]}]});
        assert_eq!(
            first_difference(&stated, &replayed, "report".into()).as_deref(),
            Some(r#"report.gates[0].criteria[0].status: "unknown" → "pass""#)
        );
        assert_eq!(first_difference(&stated, &stated, "report".into()), None);
        let longer = json!({"verdict": "no-go", "gates": []});
        assert!(
            first_difference(&stated, &longer, "report".into())
                .unwrap()
                .starts_with("report.gates: [")
        );
    }
}
