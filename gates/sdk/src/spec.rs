//! Comparing an object's config with a spec, field by field: only the fields
//! the spec names are compared, every drift is listed, and a field the server
//! did not report makes the verdict unknown unless a definite drift already
//! fails it. Used by `stream-topology` and `consumer-config`.

use crate::Criterion;

/// One field's verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Same,
    Drift(String),
    NotReported(String),
}

/// Compares one field; `show` renders values for the message.
pub fn compare<T: PartialEq>(
    name: &str,
    expected: &T,
    observed: Option<&T>,
    show: impl Fn(&T) -> String,
) -> Field {
    match observed {
        None => Field::NotReported(format!("{name} not reported")),
        Some(o) if o == expected => Field::Same,
        Some(o) => Field::Drift(format!(
            "{name}: expected {}, observed {}",
            show(expected),
            show(o)
        )),
    }
}

/// The criterion for `what` (e.g. `stream AA_DLQ`) from its fields:
/// any drift fails (naming every drift, then what was not reported),
/// else anything not reported is unknown, else it passes.
pub fn verdict(
    id: &str,
    title: &str,
    what: &str,
    fields: &[Field],
    observed: String,
    expected: String,
) -> Criterion {
    let pick = |want: fn(&Field) -> Option<&String>| -> Vec<&str> {
        fields.iter().filter_map(want).map(String::as_str).collect()
    };
    let drift = pick(|f| {
        if let Field::Drift(d) = f {
            Some(d)
        } else {
            None
        }
    });
    let missing = pick(|f| {
        if let Field::NotReported(d) = f {
            Some(d)
        } else {
            None
        }
    });
    let criterion = if !drift.is_empty() {
        let mut message = format!("{what} drifted: {}", drift.join("; "));
        if !missing.is_empty() {
            message.push_str(&format!("; also {}", missing.join(", ")));
        }
        Criterion::fail(id, title, message)
    } else if !missing.is_empty() {
        Criterion::unknown(id, title, format!("{what}: {}", missing.join(", ")))
    } else {
        Criterion::pass(id, title, format!("{what} matches its spec"))
    };
    criterion.observed(observed).expected(expected)
}

/// `[a, b]`.
pub fn show_list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// A kebab-case criterion id from parts: `("stream", "AA_CORE_HOT")` → `stream-aa-core-hot`.
pub fn kebab_id(prefix: &str, names: &[&str]) -> String {
    let mut id = String::from(prefix);
    for name in names {
        for part in name
            .to_ascii_lowercase()
            .split(|c: char| !c.is_ascii_alphanumeric())
        {
            if !part.is_empty() {
                id.push('-');
                id.push_str(part);
            }
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CriterionStatus::*;

    #[test]
    fn drift_beats_not_reported_and_both_are_named() {
        let fields = [
            compare("replicas", &3, Some(&1), |v| v.to_string()),
            compare("storage", &"file".to_owned(), None, |v| v.clone()),
        ];
        let c = verdict("s", "S", "stream S", &fields, "o".into(), "e".into());
        assert_eq!(c.status, Fail);
        assert_eq!(
            c.message,
            "stream S drifted: replicas: expected 3, observed 1; also storage not reported"
        );
        let c = verdict("s", "S", "stream S", &fields[1..], "o".into(), "e".into());
        assert_eq!(
            (c.status, c.message.as_str()),
            (Unknown, "stream S: storage not reported")
        );
        let c = verdict("s", "S", "stream S", &[Field::Same], "o".into(), "e".into());
        assert_eq!(
            (c.status, c.message.as_str()),
            (Pass, "stream S matches its spec")
        );
        assert_eq!(
            kebab_id("consumer", &["AA_CORE_HOT", "normalize-hrv-durable"]),
            "consumer-aa-core-hot-normalize-hrv-durable"
        );
    }
}
