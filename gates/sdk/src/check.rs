//! Building criteria from observed values and thresholds.
//!
//! Every helper takes the observation as `Result<T, String>`: the error is why
//! the fact could not be read, and it always yields an `unknown` criterion.

use crate::Criterion;
use std::fmt::Display;

/// Identifies a criterion: a stable kebab-case id and a one-line title.
#[derive(Debug, Clone, Copy)]
pub struct Id<'a> {
    pub id: &'a str,
    pub title: &'a str,
}

pub const fn id<'a>(id: &'a str, title: &'a str) -> Id<'a> {
    Id { id, title }
}

/// `observed <= limit` passes.
pub fn at_most<T: PartialOrd + Display>(
    id: Id<'_>,
    observed: Result<T, String>,
    limit: T,
    unit: &str,
) -> Criterion {
    compare(id, observed, limit, unit, "<=", |o, l| o <= l)
}

/// `observed < limit` passes.
pub fn below<T: PartialOrd + Display>(
    id: Id<'_>,
    observed: Result<T, String>,
    limit: T,
    unit: &str,
) -> Criterion {
    compare(id, observed, limit, unit, "<", |o, l| o < l)
}

/// `observed >= limit` passes.
pub fn at_least<T: PartialOrd + Display>(
    id: Id<'_>,
    observed: Result<T, String>,
    limit: T,
    unit: &str,
) -> Criterion {
    compare(id, observed, limit, unit, ">=", |o, l| o >= l)
}

/// `observed == expected` passes.
pub fn equals<T: PartialEq + Display>(
    id: Id<'_>,
    observed: Result<T, String>,
    expected: T,
    unit: &str,
) -> Criterion {
    compare(id, observed, expected, unit, "=", |o, e| o == e)
}

fn compare<T: Display>(
    id: Id<'_>,
    observed: Result<T, String>,
    limit: T,
    unit: &str,
    op: &str,
    ok: impl Fn(&T, &T) -> bool,
) -> Criterion {
    let sep = if unit.is_empty() || unit.starts_with('%') {
        ""
    } else {
        " "
    };
    let expected = format!("{op} {limit}{sep}{unit}");
    match observed {
        Err(why) => Criterion::unknown(id.id, id.title, why).expected(expected),
        Ok(value) => {
            let shown = format!("{value}{sep}{unit}");
            if ok(&value, &limit) {
                Criterion::pass(id.id, id.title, format!("{shown} (required {expected})"))
            } else {
                Criterion::fail(id.id, id.title, format!("{shown}, required {expected}"))
            }
            .observed(shown)
            .expected(expected)
        }
    }
}

/// One part of a criterion made of several checks (see [`all_of`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Pass(String),
    Fail(String),
    /// Why this part could not be decided.
    Unknown(String),
}

/// A criterion that passes only when every part passes: any failing part
/// fails it (naming every failure), else any unknown part makes it unknown.
/// `observed` lists every decided part. No parts at all is unknown.
pub fn all_of(id: Id<'_>, parts: Vec<Part>) -> Criterion {
    let pick = |want: fn(&Part) -> Option<&String>| -> Vec<String> {
        parts.iter().filter_map(want).cloned().collect()
    };
    let fails = pick(|p| if let Part::Fail(t) = p { Some(t) } else { None });
    let unknowns = pick(|p| {
        if let Part::Unknown(t) = p {
            Some(t)
        } else {
            None
        }
    });
    let decided: Vec<String> = pick(|p| match p {
        Part::Pass(t) | Part::Fail(t) => Some(t),
        Part::Unknown(_) => None,
    });
    let criterion = if parts.is_empty() {
        Criterion::unknown(id.id, id.title, "nothing to check")
    } else if !fails.is_empty() {
        Criterion::fail(id.id, id.title, fails.join("; "))
    } else if !unknowns.is_empty() {
        Criterion::unknown(id.id, id.title, unknowns.join("; "))
    } else {
        Criterion::pass(id.id, id.title, decided.join(", "))
    };
    if decided.is_empty() {
        criterion
    } else {
        criterion.observed(decided.join(", "))
    }
}

/// Turns "not reported" into the reason a criterion is unknown.
pub fn reported<T>(value: Option<T>, what: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("{what} not reported"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CriterionStatus::*;

    const ID: Id<'static> = id("old-consumer-drained", "Old consumer drained");

    #[test]
    fn all_of_fails_on_any_failure_and_is_unknown_on_any_gap() {
        let c = all_of(
            ID,
            vec![
                Part::Pass("ping 3 ms".into()),
                Part::Unknown("connections not reported".into()),
            ],
        );
        assert_eq!(c.status, Unknown);
        assert_eq!(c.message, "connections not reported");
        assert_eq!(c.observed.as_deref(), Some("ping 3 ms"));
        let c = all_of(
            ID,
            vec![
                Part::Fail("ping 80 ms > 50 ms".into()),
                Part::Unknown("x".into()),
                Part::Pass("connections 10%".into()),
            ],
        );
        assert_eq!(c.status, Fail);
        assert_eq!(c.message, "ping 80 ms > 50 ms");
        assert_eq!(
            c.observed.as_deref(),
            Some("ping 80 ms > 50 ms, connections 10%")
        );
        assert_eq!(
            all_of(ID, vec![Part::Pass("a".into()), Part::Pass("b".into())]).status,
            Pass
        );
        assert_eq!(all_of(ID, vec![]).status, Unknown);
    }

    #[test]
    fn thresholds() {
        let c = at_most(ID, Ok(37u64), 0, "pending");
        assert_eq!(c.status, Fail);
        assert_eq!(c.observed.as_deref(), Some("37 pending"));
        assert_eq!(c.expected.as_deref(), Some("<= 0 pending"));
        assert_eq!(c.message, "37 pending, required <= 0 pending");
        assert_eq!(at_most(ID, Ok(0u64), 0, "pending").status, Pass);
        assert_eq!(below(ID, Ok(50.0), 50.0, "ms").status, Fail);
        assert_eq!(at_least(ID, Ok(3), 3, "nodes").status, Pass);
        assert_eq!(equals(ID, Ok("file"), "memory", "").status, Fail);
    }

    #[test]
    fn unreadable_is_unknown_never_pass() {
        let c = at_most::<u64>(ID, reported(None, "num_pending"), 0, "pending");
        assert_eq!(c.status, Unknown);
        assert_eq!(c.message, "num_pending not reported");
        assert_eq!(c.observed, None);
    }
}
