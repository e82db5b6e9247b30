//! What a gate answers: a decision, the criteria behind it, and rollback triggers.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A gate's or a phase's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Go,
    NoGo,
    Defer,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Go => "go",
            Decision::NoGo => "no-go",
            Decision::Defer => "defer",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of one criterion; `Unknown` is never a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CriterionStatus {
    Pass,
    Fail,
    Unknown,
}

impl CriterionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CriterionStatus::Pass => "pass",
            CriterionStatus::Fail => "fail",
            CriterionStatus::Unknown => "unknown",
        }
    }
}

/// Who acts on a rollback trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// The daemon rolls back by itself.
    Automatic,
    /// A person decides; the daemon only alerts.
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// One machine-checked line of a checklist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Criterion {
    /// Stable, kebab-case identifier.
    pub id: String,
    pub title: String,
    pub status: CriterionStatus,
    pub observed: Option<String>,
    pub expected: Option<String>,
    pub message: String,
}

impl Criterion {
    fn with_status(id: &str, title: &str, status: CriterionStatus, message: String) -> Self {
        Criterion {
            id: id.to_owned(),
            title: title.to_owned(),
            status,
            observed: None,
            expected: None,
            message,
        }
    }

    pub fn pass(id: &str, title: &str, message: impl Into<String>) -> Self {
        Self::with_status(id, title, CriterionStatus::Pass, message.into())
    }

    pub fn fail(id: &str, title: &str, message: impl Into<String>) -> Self {
        Self::with_status(id, title, CriterionStatus::Fail, message.into())
    }

    pub fn unknown(id: &str, title: &str, message: impl Into<String>) -> Self {
        Self::with_status(id, title, CriterionStatus::Unknown, message.into())
    }

    pub fn observed(mut self, observed: impl Into<String>) -> Self {
        self.observed = Some(observed.into());
        self
    }

    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }
}

/// A condition that asks for a rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    pub id: String,
    pub severity: Severity,
    pub reason: String,
    /// Since when the condition has held, when the gate can tell.
    pub since: Option<crate::Timestamp>,
}

/// A gate's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub decision: Decision,
    pub criteria: Vec<Criterion>,
    pub triggers: Vec<Trigger>,
}

/// Why an evaluation returned by a gate cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvaluationProblem {
    NoCriteria,
    BadId {
        id: String,
    },
    DuplicateId {
        id: String,
    },
    /// The decision is not the one the criteria imply (any fail → no-go,
    /// else any unknown → defer, else go): the host derives it, a gate may
    /// not soften it.
    DecisionMismatch {
        stated: Decision,
        derived: Decision,
    },
    /// A trigger whose own criterion (same id) did not fail: a gate may only
    /// ask for a rollback over a condition it reports as failed.
    TriggerWithoutFailure {
        id: String,
    },
}

impl fmt::Display for EvaluationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvaluationProblem::NoCriteria => f.write_str("the evaluation has no criteria"),
            EvaluationProblem::BadId { id } => {
                write!(f, "id {id:?} is not kebab-case ([a-z0-9-], 1-64 chars)")
            }
            EvaluationProblem::DuplicateId { id } => write!(f, "id {id:?} appears twice"),
            EvaluationProblem::DecisionMismatch { stated, derived } => {
                write!(f, "decision is {stated} but the criteria say {derived}")
            }
            EvaluationProblem::TriggerWithoutFailure { id } => write!(
                f,
                "trigger {id:?} has no failed criterion of the same id (a trigger must come with the criterion that failed)"
            ),
        }
    }
}

/// True for kebab-case ids: `[a-z0-9]` runs joined by single `-`, 1–64 chars.
pub fn is_kebab_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('-')
        && !id.ends_with('-')
        && !id.contains("--")
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// True for param names: a lowercase letter, then `[a-z0-9_-]`, at most 64 chars.
pub fn is_param_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl Evaluation {
    /// An evaluation with the decision its criteria imply. Each trigger must
    /// carry the id of a failed criterion (see [`Evaluation::problems`]).
    pub fn from_parts(criteria: Vec<Criterion>, triggers: Vec<Trigger>) -> Self {
        Evaluation {
            decision: Self::derived_decision(&criteria),
            criteria,
            triggers,
        }
    }

    pub fn from_criteria(criteria: Vec<Criterion>) -> Self {
        Self::from_parts(criteria, Vec::new())
    }

    /// The decision the criteria imply: any fail → no-go, else any unknown
    /// (or no criteria at all) → defer, else go.
    pub fn derived_decision(criteria: &[Criterion]) -> Decision {
        if criteria.iter().any(|c| c.status == CriterionStatus::Fail) {
            Decision::NoGo
        } else if criteria.is_empty()
            || criteria
                .iter()
                .any(|c| c.status == CriterionStatus::Unknown)
        {
            Decision::Defer
        } else {
            Decision::Go
        }
    }

    /// Checks what the host must not take on trust: ids are well formed and
    /// unique, there is at least one criterion, the decision is the one the
    /// criteria imply, and every trigger comes with its failed criterion.
    pub fn problems(&self) -> Vec<EvaluationProblem> {
        let mut problems = Vec::new();
        if self.criteria.is_empty() {
            problems.push(EvaluationProblem::NoCriteria);
        }
        // Criteria and triggers are two namespaces: a trigger usually carries
        // the id of the criterion that raised it.
        let mut seen = std::collections::BTreeSet::new();
        let ids = self
            .criteria
            .iter()
            .map(|c| ("c", &c.id))
            .chain(self.triggers.iter().map(|t| ("t", &t.id)));
        for (kind, id) in ids {
            if !is_kebab_id(id) {
                problems.push(EvaluationProblem::BadId { id: id.clone() });
            } else if !seen.insert((kind, id.as_str())) {
                problems.push(EvaluationProblem::DuplicateId { id: id.clone() });
            }
        }
        let derived = Self::derived_decision(&self.criteria);
        if self.decision != derived && !self.criteria.is_empty() {
            problems.push(EvaluationProblem::DecisionMismatch {
                stated: self.decision,
                derived,
            });
        }
        for t in &self.triggers {
            let failed = self
                .criteria
                .iter()
                .any(|c| c.id == t.id && c.status == CriterionStatus::Fail);
            if !failed {
                problems.push(EvaluationProblem::TriggerWithoutFailure { id: t.id.clone() });
            }
        }
        problems
    }
}

/// A parameter a gate accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    pub name: String,
    pub description: String,
    /// The default; `None` (absent in JSON) means the param is required.
    /// `Some(null)` is an optional param with no value.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub default: Option<serde_json::Value>,
}

impl ParamSpec {
    /// A param the config must set.
    pub fn required(name: &str, description: &str) -> Self {
        ParamSpec {
            name: name.into(),
            description: description.into(),
            default: None,
        }
    }

    /// A param with a default (`null`: optional, no value).
    pub fn with_default(name: &str, description: &str, default: serde_json::Value) -> Self {
        ParamSpec {
            name: name.into(),
            description: description.into(),
            default: Some(default),
        }
    }
}

/// A present field is `Some`, even when it is `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde::Deserialize::deserialize(d).map(Some)
}

/// Why configured params do not fit a gate's declared params.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamsError {
    NotAnObject,
    Unknown {
        name: String,
        accepted: Vec<String>,
        /// The accepted name closest to it, when one is close.
        suggestion: Option<String>,
    },
    Missing {
        name: String,
        description: String,
    },
}

impl ParamsError {
    /// The param the error is about, if any.
    pub fn param(&self) -> Option<&str> {
        match self {
            ParamsError::NotAnObject => None,
            ParamsError::Unknown { name, .. } | ParamsError::Missing { name, .. } => Some(name),
        }
    }
}

impl fmt::Display for ParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamsError::NotAnObject => f.write_str("params must be an object"),
            ParamsError::Unknown {
                name,
                accepted,
                suggestion,
            } => {
                write!(f, "unknown param `{name}`")?;
                if let Some(s) = suggestion {
                    write!(f, "; did you mean `{s}`?")?;
                }
                write!(f, " (accepts: {})", accepted.join(", "))
            }
            ParamsError::Missing { name, description } => {
                write!(f, "param `{name}` is required ({description})")
            }
        }
    }
}

/// The candidate closest to `word` by edit distance, when it is close
/// (at most a third of the word's length, and at least one edit).
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let distance = |a: &str, b: &str| {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let next = (prev + usize::from(ca != *cb))
                    .min(row[j] + 1)
                    .min(row[j + 1] + 1);
                prev = row[j + 1];
                row[j + 1] = next;
            }
        }
        row[b.len()]
    };
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

impl Metadata {
    /// A gate's params as it will see them: `configured` (a JSON object)
    /// checked against the declared params, with defaults filled in. The host
    /// and the SDK's `Testcase` both call this, so tests see what production does.
    pub fn effective_params(
        &self,
        configured: &serde_json::Value,
    ) -> Result<serde_json::Value, ParamsError> {
        let serde_json::Value::Object(mut params) = configured.clone() else {
            return Err(ParamsError::NotAnObject);
        };
        let accepted: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
        if let Some(unknown) = params.keys().find(|k| !accepted.contains(&k.as_str())) {
            return Err(ParamsError::Unknown {
                name: unknown.clone(),
                accepted: accepted.iter().map(|a| (*a).to_owned()).collect(),
                suggestion: closest(unknown, accepted.iter().copied()).map(str::to_owned),
            });
        }
        for spec in &self.params {
            if !params.contains_key(&spec.name) {
                match &spec.default {
                    Some(d) => {
                        params.insert(spec.name.clone(), d.clone());
                    }
                    None => {
                        return Err(ParamsError::Missing {
                            name: spec.name.clone(),
                            description: spec.description.clone(),
                        });
                    }
                }
            }
        }
        Ok(serde_json::Value::Object(params))
    }
}

/// What a gate says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub name: String,
    pub version: String,
    pub description: String,
    /// Fact sources read: `nats`, `postgres`, `kubernetes`, `http`, `metrics`,
    /// `prometheus`, `ledger`.
    pub sources: Vec<String>,
    pub params: Vec<ParamSpec>,
    /// The snapshot schema version the gate was built against.
    pub snapshot_schema: u32,
}

/// A trigger a gate can raise, and the severity it proposes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerSpec {
    pub id: String,
    pub title: String,
    pub severity: Severity,
}

/// A sign-off a gate reads: an attestation of `criterion` in `phase`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationSpec {
    pub phase: String,
    pub criterion: String,
    pub title: String,
}

/// What a gate needs with given params (contract 0.2's `needs`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Needs {
    /// Fact paths it reads.
    pub reads: Vec<String>,
    /// How far back its history window must reach, in milliseconds.
    pub history_ms: u64,
    /// Every trigger it can raise.
    pub triggers: Vec<TriggerSpec>,
    /// The attestations it reads.
    pub attestations: Vec<AttestationSpec>,
}

/// A gate's own report that it could not decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "kebab-case")]
pub enum GateError {
    BadParams(String),
    BadInput(String),
    Internal(String),
}

impl fmt::Display for GateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GateError::BadParams(m) => write!(f, "bad params: {m}"),
            GateError::BadInput(m) => write!(f, "bad input: {m}"),
            GateError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for GateError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_required_optional_and_defaulted() {
        let spec = |name: &str, default: Option<serde_json::Value>| ParamSpec {
            name: name.into(),
            description: format!("the {name}"),
            default,
        };
        let md = Metadata {
            name: "g".into(),
            version: "1".into(),
            description: String::new(),
            sources: vec![],
            params: vec![
                spec("need", None),
                spec("maybe", Some(serde_json::Value::Null)),
                spec("limit", Some(serde_json::json!(50))),
            ],
            snapshot_schema: 1,
        };
        let p = md
            .effective_params(&serde_json::json!({"need": 1}))
            .unwrap();
        assert_eq!(
            p,
            serde_json::json!({"need": 1, "maybe": null, "limit": 50})
        );
        assert_eq!(
            md.effective_params(&serde_json::json!({}))
                .unwrap_err()
                .to_string(),
            "param `need` is required (the need)"
        );
        assert_eq!(
            md.effective_params(&serde_json::json!({"need": 1, "nope": 2}))
                .unwrap_err()
                .to_string(),
            "unknown param `nope` (accepts: need, maybe, limit)"
        );
        assert_eq!(
            md.effective_params(&serde_json::json!({"need": 1, "limt": 2}))
                .unwrap_err()
                .to_string(),
            "unknown param `limt`; did you mean `limit`? (accepts: need, maybe, limit)"
        );
        // Required vs optional-without-value survive a JSON round trip.
        let back: Metadata = serde_json::from_str(&serde_json::to_string(&md).unwrap()).unwrap();
        assert_eq!(back, md);
    }

    fn c(id: &str, status: CriterionStatus) -> Criterion {
        Criterion {
            status,
            ..Criterion::pass(id, "t", "m")
        }
    }

    #[test]
    fn decision_follows_criteria() {
        use CriterionStatus::*;
        assert_eq!(
            Evaluation::from_criteria(vec![c("a", Pass)]).decision,
            Decision::Go
        );
        assert_eq!(
            Evaluation::from_criteria(vec![c("a", Pass), c("b", Unknown)]).decision,
            Decision::Defer
        );
        assert_eq!(
            Evaluation::from_criteria(vec![c("a", Unknown), c("b", Fail)]).decision,
            Decision::NoGo
        );
        assert_eq!(Evaluation::from_criteria(vec![]).decision, Decision::Defer);
        let trig = Trigger {
            id: "a".into(),
            severity: Severity::Manual,
            reason: "r".into(),
            since: None,
        };
        let with_trigger = Evaluation::from_parts(vec![c("a", Fail)], vec![trig]);
        assert_eq!(with_trigger.decision, Decision::NoGo);
        assert_eq!(with_trigger.problems(), vec![]);
    }

    #[test]
    fn problems_catch_untrustworthy_output() {
        use CriterionStatus::*;
        let mut e = Evaluation::from_criteria(vec![c("a", Pass), c("a", Pass), c("Bad Id", Pass)]);
        assert_eq!(
            e.problems(),
            vec![
                EvaluationProblem::DuplicateId { id: "a".into() },
                EvaluationProblem::BadId {
                    id: "Bad Id".into()
                }
            ]
        );
        e = Evaluation {
            decision: Decision::Go,
            criteria: vec![c("x", Unknown)],
            triggers: vec![],
        };
        assert_eq!(
            e.problems(),
            vec![EvaluationProblem::DecisionMismatch {
                stated: Decision::Go,
                derived: Decision::Defer
            }]
        );
        // A softer decision than the criteria imply is refused too.
        e.decision = Decision::Defer;
        e.criteria = vec![c("x", Fail)];
        assert_eq!(
            e.problems(),
            vec![EvaluationProblem::DecisionMismatch {
                stated: Decision::Defer,
                derived: Decision::NoGo
            }]
        );
        // A trigger needs its own failed criterion.
        let trig = |id: &str| Trigger {
            id: id.into(),
            severity: Severity::Automatic,
            reason: "r".into(),
            since: None,
        };
        e.decision = Decision::NoGo;
        e.criteria = vec![c("x", Fail), c("dlq-spike", Pass)];
        e.triggers = vec![trig("dlq-spike"), trig("x")];
        assert_eq!(
            e.problems(),
            vec![EvaluationProblem::TriggerWithoutFailure {
                id: "dlq-spike".into()
            }]
        );
        e.criteria.clear();
        e.triggers.clear();
        assert_eq!(e.problems(), vec![EvaluationProblem::NoCriteria]);
    }

    #[test]
    fn kebab_ids() {
        assert!(is_kebab_id("core-stream-ready"));
        assert!(is_kebab_id("phase-2"));
        for bad in ["", "-a", "a-", "a--b", "A", "a_b", "a b"] {
            assert!(!is_kebab_id(bad), "{bad}");
        }
    }

    #[test]
    fn json_names_are_the_documented_ones() {
        assert_eq!(serde_json::to_string(&Decision::NoGo).unwrap(), "\"no-go\"");
        assert_eq!(
            serde_json::to_string(&CriterionStatus::Unknown).unwrap(),
            "\"unknown\""
        );
        assert_eq!(
            serde_json::to_string(&Severity::Automatic).unwrap(),
            "\"automatic\""
        );
    }
}
