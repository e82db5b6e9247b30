//! HTTP probes and Prometheus-format metrics scrapes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpFacts {
    pub probes: Vec<HttpProbe>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpProbe {
    pub name: String,
    pub url: String,
    pub status_code: Option<u16>,
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsFacts {
    pub targets: Vec<ScrapeTarget>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ScrapeTarget {
    pub name: String,
    pub url: String,
    pub status_code: Option<u16>,
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
    pub families: Vec<MetricFamily>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricFamily {
    pub name: String,
    /// `counter`, `gauge`, `histogram`, `summary`, `untyped`.
    pub kind: String,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Sample {
    /// The sample's full name (e.g. `x_bucket` for a histogram bucket).
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Non-finite values (NaN, ±Inf) are kept as `None` with `raw` set.
    pub value: Option<f64>,
    pub raw: Option<String>,
}
