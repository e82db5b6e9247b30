//! The one data model of Gatekeeper: what the host collects (the [`Snapshot`])
//! and what a gate answers (the [`Evaluation`]).
//!
//! It is shared by the host and the gate SDK, does no I/O, and compiles for
//! both native targets and `wasm32-wasip2`.
//!
//! Two rules shape every type here:
//! - Every fact source carries its own [`SourceStatus`], so "could not read"
//!   can never look like zero or absent.
//! - A fact a server does not report is `None` ("not reported"), never `0`.
//!
//! Compatibility: decoders ignore unknown fields and default missing ones, so a
//! gate built against an older schema keeps working when the host adds facts.

mod duration;
mod evaluation;
mod select;
mod snapshot;

pub use duration::{DurationError, format_duration, format_duration_ms, parse_duration_ms};
pub use evaluation::{
    AttestationSpec, Criterion, CriterionStatus, Decision, Evaluation, EvaluationProblem,
    GateError, LogLevel, Metadata, Needs, ParamSpec, ParamsError, Severity, Trigger, TriggerSpec,
    closest, is_kebab_id, is_param_name,
};
pub use select::FactPath;
pub use snapshot::*;

/// Whether some NATS subject matches both patterns (`*` = one token, `>` =
/// one or more trailing tokens): nats-server refuses two streams whose
/// subjects overlap. The `subject-overlap` gate and `gatekeeper plan` ask it.
pub fn subjects_overlap(a: &str, b: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    for i in 0..a.len().max(b.len()) {
        match (a.get(i), b.get(i)) {
            (Some(&">"), Some(_)) | (Some(_), Some(&">")) => return true,
            (Some(x), Some(y)) if x == y || *x == "*" || *y == "*" => {}
            _ => return false,
        }
    }
    true
}

/// Point in time, UTC; serialized as RFC 3339.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// RFC 3339 with `Z` and only the fractional digits needed.
pub fn format_timestamp(ts: Timestamp) -> String {
    ts.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Parses an RFC 3339 timestamp (any offset) into UTC.
pub fn parse_timestamp(text: &str) -> Result<Timestamp, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("invalid RFC 3339 timestamp `{text}`: {e}"))
}

/// Milliseconds from `earlier` to `later` (negative if `later` is earlier).
pub fn millis_between(earlier: Timestamp, later: Timestamp) -> i64 {
    (later - earlier).num_milliseconds()
}
