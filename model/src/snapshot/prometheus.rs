//! A Prometheus server: the named PromQL queries and what each returned.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PrometheusFacts {
    /// The server's URL, credentials removed.
    pub url: String,
    /// Named queries from config; each carries its own result or error.
    pub queries: Vec<PromQuery>,
}

impl PrometheusFacts {
    /// The query named `name`, or why it cannot be read.
    pub fn query_or_why(&self, name: &str) -> Result<&PromQuery, String> {
        let q = self
            .queries
            .iter()
            .find(|q| q.name == name)
            .ok_or_else(|| format!("prometheus query `{name}` is not in the snapshot"))?;
        match &q.error {
            Some(e) => Err(format!("prometheus query `{name}`: {e}")),
            None => Ok(q),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PromQuery {
    pub name: String,
    /// The PromQL expression as sent.
    pub query: String,
    /// For a range query: its length and resolution (ms); `None` = instant.
    pub range_ms: Option<u64>,
    pub step_ms: Option<u64>,
    /// The evaluation time (instant) or the range's end, in ms since the epoch.
    pub time_ms: Option<i64>,
    /// `vector`, `matrix`, `scalar` or `string`, as the server said.
    pub result_type: Option<String>,
    /// Every series returned (a scalar is one series with no labels).
    pub series: Vec<PromSeries>,
    /// Warnings the server attached to an otherwise successful answer.
    pub warnings: Vec<String>,
    /// Why the query has no result (a server error, a timeout, a bad answer).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PromSeries {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<PromPoint>,
}

/// One sample: its time and value. Prometheus sends values as strings;
/// non-finite ones (`NaN`, `+Inf`, `-Inf`) are kept as `None` with `raw` set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PromPoint {
    /// Milliseconds since the epoch.
    pub t_ms: i64,
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

impl PromPoint {
    /// Reads Prometheus' `[<unix seconds>, "<value>"]`.
    pub fn parse(seconds: f64, value: &str) -> PromPoint {
        let t_ms = (seconds * 1000.0).round() as i64;
        match value.parse::<f64>() {
            Ok(v) if v.is_finite() => PromPoint {
                t_ms,
                value: Some(v),
                raw: None,
            },
            _ => PromPoint {
                t_ms,
                value: None,
                raw: Some(value.to_owned()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_are_kept_raw_never_as_numbers() {
        let p = PromPoint::parse(1_700_000_000.5, "NaN");
        assert_eq!(
            (p.t_ms, p.value, p.raw.as_deref()),
            (1_700_000_000_500, None, Some("NaN"))
        );
        let p = PromPoint::parse(1.0, "+Inf");
        assert_eq!((p.value, p.raw.as_deref()), (None, Some("+Inf")));
        let p = PromPoint::parse(2.0, "0.25");
        assert_eq!((p.t_ms, p.value, p.raw), (2000, Some(0.25), None));
    }

    #[test]
    fn a_failed_query_says_why() {
        let facts = PrometheusFacts {
            url: String::new(),
            queries: vec![PromQuery {
                name: "dlq".into(),
                error: Some("timed out".into()),
                ..PromQuery::default()
            }],
        };
        assert_eq!(
            facts.query_or_why("dlq").unwrap_err(),
            "prometheus query `dlq`: timed out"
        );
        assert_eq!(
            facts.query_or_why("nope").unwrap_err(),
            "prometheus query `nope` is not in the snapshot"
        );
    }
}
