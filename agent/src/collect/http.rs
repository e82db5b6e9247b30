//! HTTP: health probes (GET → status code and latency) and Prometheus
//! text-format scrapes (parsed by the `prometheus-parse` crate), keeping the
//! configured metric families with their labels.
//!
//! URLs may carry credentials; errors are reported without the URL
//! (`reqwest::Error::without_url`) and URLs are shown redacted.

use super::{Collector, timeout_or_default};
use crate::clients::{SourceError, install_crypto_provider, remaining};
use crate::config::{DurationValue, HttpProbeConfig, MetricsScrapeConfig, SecretUrl};
use gatekeeper_model::{HttpFacts, HttpProbe, MetricFamily, MetricsFacts, Sample, ScrapeTarget};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// The largest scrape body read (a bigger one is refused, not truncated).
pub const MAX_SCRAPE_BYTES: usize = 32 << 20;

fn client() -> Result<reqwest::Client, SourceError> {
    install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(concat!("gatekeeper/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SourceError::Setup(format!("HTTP client: {}", e.without_url())))
}

/// GETs `url` within its own `timeout` and the source's `deadline`, whichever
/// comes first: (status, latency ms, response). `what` names it in errors.
async fn get(
    client: &reqwest::Client,
    what: &str,
    url: &SecretUrl,
    timeout: Option<DurationValue>,
    deadline: Instant,
) -> Result<(u16, f64, reqwest::Response), SourceError> {
    let timeout = remaining(deadline, what)?.min(timeout_or_default(timeout));
    let start = Instant::now();
    let response = client
        .get(url.expose())
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| SourceError::Unreachable(describe(&e)))?;
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    Ok((response.status().as_u16(), latency_ms, response))
}

pub(super) fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    // The source chain names the cause (connection refused, ...), never the URL.
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}

fn longest(timeouts: impl Iterator<Item = Option<DurationValue>>) -> Duration {
    timeouts
        .map(timeout_or_default)
        .max()
        .unwrap_or_else(|| timeout_or_default(None))
}

pub struct ProbeCollector {
    probes: Vec<HttpProbeConfig>,
}

impl ProbeCollector {
    pub fn new(probes: Vec<HttpProbeConfig>) -> Self {
        ProbeCollector { probes }
    }
}

impl Collector for ProbeCollector {
    type Facts = HttpFacts;
    const NAME: &'static str = "http";

    fn timeout(&self) -> Duration {
        longest(self.probes.iter().map(|p| p.timeout))
    }

    async fn collect(&self, deadline: Instant) -> Result<HttpFacts, SourceError> {
        let client = client()?;
        let probes = self.probes.iter().map(|p| {
            let client = &client;
            async move {
                let mut probe = HttpProbe {
                    name: p.name.to_string(),
                    url: p.url.redacted(),
                    ..HttpProbe::default()
                };
                match get(client, &p.name, &p.url, p.timeout, deadline).await {
                    Ok((status, latency, _)) => {
                        probe.status_code = Some(status);
                        probe.latency_ms = Some(latency);
                    }
                    Err(e) => probe.error = Some(e.to_string()),
                }
                probe
            }
        });
        Ok(HttpFacts {
            probes: futures::future::join_all(probes).await,
        })
    }

    /// A probe that got no answer is a gap; a 500 is an answer (a fact).
    fn complete(facts: &HttpFacts) -> bool {
        facts.probes.iter().all(|p| p.error.is_none())
    }
}

pub struct MetricsCollector {
    scrapes: Vec<MetricsScrapeConfig>,
}

impl MetricsCollector {
    pub fn new(scrapes: Vec<MetricsScrapeConfig>) -> Self {
        MetricsCollector { scrapes }
    }
}

impl Collector for MetricsCollector {
    type Facts = MetricsFacts;
    const NAME: &'static str = "metrics";

    fn timeout(&self) -> Duration {
        longest(self.scrapes.iter().map(|s| s.timeout))
    }

    async fn collect(&self, deadline: Instant) -> Result<MetricsFacts, SourceError> {
        let client = client()?;
        let targets = self.scrapes.iter().map(|s| {
            let client = &client;
            async move {
                let mut target = ScrapeTarget {
                    name: s.name.to_string(),
                    url: s.url.redacted(),
                    ..ScrapeTarget::default()
                };
                if let Err(e) = scrape(client, s, deadline, &mut target).await {
                    target.error = Some(e.to_string());
                }
                target
            }
        });
        Ok(MetricsFacts {
            targets: futures::future::join_all(targets).await,
        })
    }

    fn complete(facts: &MetricsFacts) -> bool {
        facts.targets.iter().all(|t| t.error.is_none())
    }
}

async fn scrape(
    client: &reqwest::Client,
    config: &MetricsScrapeConfig,
    deadline: Instant,
    target: &mut ScrapeTarget,
) -> Result<(), SourceError> {
    let (status, latency, response) =
        get(client, &config.name, &config.url, config.timeout, deadline).await?;
    target.status_code = Some(status);
    target.latency_ms = Some(latency);
    if status != 200 {
        return Err(SourceError::Refused(format!("answered HTTP {status}")));
    }
    if response
        .content_length()
        .is_some_and(|l| l > MAX_SCRAPE_BYTES as u64)
    {
        return Err(SourceError::Refused(format!(
            "body over {} MiB",
            MAX_SCRAPE_BYTES >> 20
        )));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| SourceError::Unreachable(describe(&e)))?;
    if body.len() > MAX_SCRAPE_BYTES {
        return Err(SourceError::Refused(format!(
            "body over {} MiB",
            MAX_SCRAPE_BYTES >> 20
        )));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|e| SourceError::Unreadable(format!("body is not UTF-8: {e}")))?;
    target.families = parse_families(text, &config.families)?;
    let missing: Vec<&str> = config
        .families
        .iter()
        .filter(|f| !target.families.iter().any(|t| &t.name == *f))
        .map(String::as_str)
        .collect();
    // An absent family is a fact (the service has not exported it yet), not an
    // error: the family is listed with no samples.
    for name in missing {
        target.families.push(MetricFamily {
            name: name.to_owned(),
            kind: "absent".into(),
            samples: Vec::new(),
        });
    }
    target.families.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(())
}

/// Parses the text format and keeps `wanted` families (all when empty).
pub fn parse_families(text: &str, wanted: &[String]) -> Result<Vec<MetricFamily>, SourceError> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .map_err(|e| SourceError::Unreadable(format!("not the Prometheus text format: {e}")))?;
    let family_of = |metric: &str| -> Option<String> {
        if wanted.is_empty() {
            return Some(metric.to_owned());
        }
        wanted
            .iter()
            .find(|f| {
                metric == f.as_str()
                    || metric
                        .strip_prefix(f.as_str())
                        .is_some_and(|rest| matches!(rest, "_sum" | "_count" | "_bucket"))
            })
            .cloned()
    };
    let mut families: BTreeMap<String, MetricFamily> = BTreeMap::new();
    for sample in scrape.samples {
        let Some(family) = family_of(&sample.metric) else {
            continue;
        };
        let entry = families
            .entry(family.clone())
            .or_insert_with(|| MetricFamily {
                name: family.clone(),
                kind: "untyped".into(),
                samples: Vec::new(),
            });
        let labels: BTreeMap<String, String> = sample
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let plain = |kind: &str, entry: &mut MetricFamily, v: f64| {
            if sample.metric == family {
                entry.kind = kind.into();
            }
            entry
                .samples
                .push(value_sample(&sample.metric, labels.clone(), None, v));
        };
        match &sample.value {
            prometheus_parse::Value::Counter(v) => plain("counter", entry, *v),
            prometheus_parse::Value::Gauge(v) => plain("gauge", entry, *v),
            prometheus_parse::Value::Untyped(v) => plain("untyped", entry, *v),
            prometheus_parse::Value::Histogram(buckets) => {
                entry.kind = "histogram".into();
                for b in buckets {
                    let le = format_bound(b.less_than);
                    entry.samples.push(value_sample(
                        &format!("{}_bucket", sample.metric),
                        labels.clone(),
                        Some(("le", le)),
                        b.count,
                    ));
                }
            }
            prometheus_parse::Value::Summary(quantiles) => {
                entry.kind = "summary".into();
                for q in quantiles {
                    entry.samples.push(value_sample(
                        &sample.metric,
                        labels.clone(),
                        Some(("quantile", format_bound(q.quantile))),
                        q.count,
                    ));
                }
            }
        }
    }
    let mut out: Vec<MetricFamily> = families.into_values().collect();
    for family in &mut out {
        family
            .samples
            .sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
    }
    Ok(out)
}

fn format_bound(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        v.to_string()
    }
}

fn value_sample(
    name: &str,
    mut labels: BTreeMap<String, String>,
    extra: Option<(&str, String)>,
    v: f64,
) -> Sample {
    if let Some((k, value)) = extra {
        labels.insert(k.to_owned(), value);
    }
    Sample {
        name: name.to_owned(),
        labels,
        value: v.is_finite().then_some(v),
        raw: (!v.is_finite()).then(|| format_bound(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP normalize_hrv_messages_total Messages handled.
# TYPE normalize_hrv_messages_total counter
normalize_hrv_messages_total{result="success",subject="athlete-ally.hrv.raw-received",stream="AA_CORE_HOT",durable="normalize-hrv-durable"} 1042
normalize_hrv_messages_total{result="dlq",subject="athlete-ally.hrv.raw-received",stream="AA_CORE_HOT",durable="normalize-hrv-durable"} 3
# TYPE request_seconds histogram
request_seconds_bucket{le="0.1"} 5
request_seconds_bucket{le="+Inf"} 7
request_seconds_sum 0.9
request_seconds_count 7
# TYPE temperature gauge
temperature NaN
other_metric 1
"#;

    #[test]
    fn keeps_configured_families_with_labels() {
        let families = parse_families(
            TEXT,
            &[
                "normalize_hrv_messages_total".into(),
                "request_seconds".into(),
                "temperature".into(),
            ],
        )
        .unwrap();
        let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "normalize_hrv_messages_total",
                "request_seconds",
                "temperature"
            ]
        );
        let counter = &families[0];
        assert_eq!(counter.kind, "counter");
        assert_eq!(counter.samples.len(), 2);
        let dlq = counter
            .samples
            .iter()
            .find(|s| s.labels.get("result").map(String::as_str) == Some("dlq"))
            .unwrap();
        assert_eq!(dlq.value, Some(3.0));
        assert_eq!(
            dlq.labels.get("stream").map(String::as_str),
            Some("AA_CORE_HOT")
        );
        let hist = &families[1];
        assert_eq!(hist.kind, "histogram");
        let inf = hist
            .samples
            .iter()
            .find(|s| s.name == "request_seconds_bucket" && s.labels["le"] == "+Inf")
            .unwrap();
        assert_eq!(inf.value, Some(7.0));
        assert!(
            hist.samples
                .iter()
                .any(|s| s.name == "request_seconds_count" && s.value == Some(7.0))
        );
        let temp = &families[2].samples[0];
        assert_eq!((temp.value, temp.raw.as_deref()), (None, Some("NaN")));
    }

    #[test]
    fn no_filter_keeps_everything() {
        let families = parse_families(TEXT, &[]).unwrap();
        assert!(families.iter().any(|f| f.name == "other_metric"));
    }
}
