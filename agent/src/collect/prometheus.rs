//! A Prometheus server: named PromQL queries over its HTTP API
//! (`/api/v1/query`, `/api/v1/query_range`), each kept with its labels,
//! timestamps and warnings.
//!
//! Each query has its own timeout (sent to the server as well) and its own
//! error: a server error, a timeout, a body that is not the API's JSON, or an
//! answer with warnings (Prometheus' sign of a partial response) leaves that
//! query without a usable result and the source `partial`. When no query got
//! any answer at all (the server is down) or the server refused the
//! credentials (401/403), the source is `unavailable`, with every query's error.
//!
//! Queries go as POST forms, so the expressions never appear in a URL; the
//! URL's credentials, the bearer token and the password are never shown.

use super::http::describe;
use super::timeout_or_default;
use crate::clients::{SourceError, install_crypto_provider, remaining, resolve};
use crate::config::{PromQueryConfig, PrometheusSourceConfig, default_step};
use gatekeeper_model::{PromPoint, PromQuery, PromSeries, PrometheusFacts};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

/// The largest answer read for one query (a bigger one is refused).
const MAX_ANSWER_BYTES: usize = 32 << 20;
/// A query's budget when the config gives none.
const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

pub struct PrometheusCollector {
    config: PrometheusSourceConfig,
    base_dir: PathBuf,
}

impl PrometheusCollector {
    pub fn new(config: PrometheusSourceConfig, base_dir: &std::path::Path) -> Self {
        PrometheusCollector {
            config,
            base_dir: base_dir.to_path_buf(),
        }
    }

    fn client(&self) -> Result<reqwest::Client, SourceError> {
        install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("gatekeeper/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &self.config.ca_file {
            let path = resolve(&self.base_dir, ca);
            let pem = std::fs::read(&path)
                .map_err(|e| SourceError::Setup(format!("ca_file {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                SourceError::Setup(format!(
                    "ca_file {}: not PEM certificates: {e}",
                    path.display()
                ))
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        builder
            .build()
            .map_err(|e| SourceError::Setup(format!("HTTP client: {}", e.without_url())))
    }

    /// The `Authorization` to send, read fresh each time (a mounted token
    /// rotates).
    fn authorization(&self) -> Result<Option<Auth>, SourceError> {
        if let Some(token) = &self.config.bearer_token {
            return Ok(Some(Auth::Bearer(token.expose().to_owned())));
        }
        if let Some(file) = &self.config.bearer_token_file {
            let path = resolve(&self.base_dir, file);
            let token = std::fs::read_to_string(&path).map_err(|e| {
                SourceError::Setup(format!("bearer_token_file {}: {e}", path.display()))
            })?;
            return Ok(Some(Auth::Bearer(token.trim().to_owned())));
        }
        Ok(match (&self.config.user, &self.config.password) {
            (Some(user), Some(password)) => {
                Some(Auth::Basic(user.clone(), password.expose().to_owned()))
            }
            _ => None,
        })
    }
}

enum Auth {
    Bearer(String),
    Basic(String, String),
}

impl super::Collector for PrometheusCollector {
    type Facts = PrometheusFacts;
    const NAME: &'static str = "prometheus";

    fn timeout(&self) -> Duration {
        timeout_or_default(self.config.timeout)
    }

    async fn collect(&self, deadline: Instant) -> Result<PrometheusFacts, SourceError> {
        let client = self.client()?;
        let auth = self.authorization()?;
        let now = chrono::Utc::now();
        let base = self.config.url.expose().trim_end_matches('/').to_owned();
        let asked = self.config.queries.iter().map(|q| {
            let (client, auth, base) = (&client, &auth, &base);
            async move {
                let mut query = PromQuery {
                    name: q.name.to_string(),
                    query: q.query.clone(),
                    range_ms: q.range.map(|r| millis(r.0)),
                    step_ms: q.range.map(|r| millis(step_of(q, r.0))),
                    time_ms: Some(now.timestamp_millis()),
                    ..PromQuery::default()
                };
                let answer = ask(client, auth.as_ref(), base, q, now, deadline).await;
                // Read nothing: no answer, or the credentials were refused.
                let read = match answer {
                    Ok(answer) => {
                        answer.fill(&mut query);
                        true
                    }
                    Err(e) => {
                        query.error = Some(e.to_string());
                        !matches!(e, SourceError::Unreachable(_) | SourceError::Setup(_))
                    }
                };
                (query, read)
            }
        });
        let answers = futures::future::join_all(asked).await;
        if !answers.is_empty() && answers.iter().all(|(_, read)| !read) {
            // Each reason once (a server that is down fails every query alike).
            let mut reasons: Vec<String> = Vec::new();
            for e in answers.into_iter().filter_map(|(q, _)| q.error) {
                if !reasons.contains(&e) {
                    reasons.push(e);
                }
            }
            return Err(SourceError::NothingRead(reasons));
        }
        Ok(PrometheusFacts {
            url: self.config.url.redacted(),
            queries: answers.into_iter().map(|(q, _)| q).collect(),
        })
    }

    fn complete(facts: &PrometheusFacts) -> bool {
        facts.queries.iter().all(|q| q.error.is_none())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn step_of(q: &PromQueryConfig, range: Duration) -> Duration {
    q.step.map_or_else(|| default_step(range), |s| s.0)
}

/// Seconds since the epoch with milliseconds, as the API takes times.
fn api_time(t: chrono::DateTime<chrono::Utc>) -> String {
    let ms = t.timestamp_millis();
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn api_seconds(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

async fn ask(
    client: &reqwest::Client,
    auth: Option<&Auth>,
    base: &str,
    q: &PromQueryConfig,
    now: chrono::DateTime<chrono::Utc>,
    deadline: Instant,
) -> Result<Answer, SourceError> {
    let timeout = remaining(deadline, &format!("query {}", q.name))?
        .min(q.timeout.map_or(DEFAULT_QUERY_TIMEOUT, |t| t.0));
    let mut form: Vec<(&str, String)> = vec![
        ("query", q.query.clone()),
        ("timeout", api_seconds(timeout)),
    ];
    let path = match q.range {
        None => {
            form.push(("time", api_time(now)));
            "/api/v1/query"
        }
        Some(range) => {
            let start = now - chrono::Duration::milliseconds(millis(range.0) as i64);
            form.push(("start", api_time(start)));
            form.push(("end", api_time(now)));
            form.push(("step", api_seconds(step_of(q, range.0))));
            "/api/v1/query_range"
        }
    };
    let mut request = client
        .post(format!("{base}{path}"))
        .timeout(timeout)
        .form(&form);
    request = match auth {
        Some(Auth::Bearer(token)) => request.bearer_auth(token),
        Some(Auth::Basic(user, password)) => request.basic_auth(user, Some(password)),
        None => request,
    };
    let response = request
        .send()
        .await
        .map_err(|e| SourceError::Unreachable(describe(&e)))?;
    let status = response.status().as_u16();
    let body = read_limited(response).await?;
    parse_answer(status, &body)
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, SourceError> {
    let too_big = || SourceError::Refused(format!("answer over {} MiB", MAX_ANSWER_BYTES >> 20));
    if response
        .content_length()
        .is_some_and(|l| l > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| SourceError::Unreachable(describe(&e)))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The API's envelope (`status`, `data`, `errorType`, `error`, `warnings`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct RawSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// A successful answer.
#[derive(Debug, PartialEq)]
pub(crate) struct Answer {
    result_type: String,
    series: Vec<PromSeries>,
    warnings: Vec<String>,
}

impl Answer {
    fn fill(self, query: &mut PromQuery) {
        if !self.warnings.is_empty() {
            query.error = Some(format!(
                "the server answered with warnings, so the result may be partial: {}",
                self.warnings.join("; ")
            ));
        }
        query.result_type = Some(self.result_type);
        query.series = self.series;
        query.warnings = self.warnings;
    }
}

/// Reads the API's answer: an error envelope (any status) is the server's
/// error; anything else that is not the API's JSON is unreadable.
pub(crate) fn parse_answer(status: u16, body: &[u8]) -> Result<Answer, SourceError> {
    if status == 401 || status == 403 {
        // The credentials the config gives are unusable: a setup error.
        return Err(SourceError::Setup(format!(
            "answered HTTP {status}: the server refused the credentials"
        )));
    }
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        let what = if status == 200 {
            format!("the answer is not the Prometheus API's JSON: {e}")
        } else {
            format!("answered HTTP {status}, not the Prometheus API's JSON")
        };
        SourceError::Unreadable(what)
    })?;
    if envelope.status != "success" {
        return Err(SourceError::Refused(format!(
            "the server refused the query ({}): {}",
            envelope.error_type.as_deref().unwrap_or("no error type"),
            envelope.error.as_deref().unwrap_or("no reason given")
        )));
    }
    let data = envelope
        .data
        .ok_or_else(|| SourceError::Unreadable("a successful answer without `data`".to_owned()))?;
    let bad = |e: serde_json::Error| {
        SourceError::Unreadable(format!(
            "a `{}` result that cannot be read: {e}",
            data.result_type
        ))
    };
    let series = match data.result_type.as_str() {
        "vector" | "matrix" => {
            let raw: Vec<RawSeries> = serde_json::from_value(data.result.clone()).map_err(bad)?;
            raw.into_iter()
                .map(|s| PromSeries {
                    labels: s.metric,
                    points: s
                        .value
                        .into_iter()
                        .chain(s.values)
                        .map(|(t, v)| PromPoint::parse(t, &v))
                        .collect(),
                })
                .collect()
        }
        "scalar" | "string" => {
            let (t, v): (f64, String) = serde_json::from_value(data.result.clone()).map_err(bad)?;
            vec![PromSeries {
                labels: BTreeMap::new(),
                points: vec![PromPoint::parse(t, &v)],
            }]
        }
        other => {
            return Err(SourceError::Unreadable(format!(
                "unknown result type `{other}`"
            )));
        }
    };
    Ok(Answer {
        result_type: data.result_type,
        series,
        warnings: envelope.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_matrices_and_scalars_keep_labels_times_and_raw_values() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"stream":"AA_CORE_HOT"},"value":[1700000000.123,"4.5"]},
            {"metric":{"stream":"ATHLETE_ALLY_EVENTS"},"value":[1700000000.123,"NaN"]}]}}"#;
        let a = parse_answer(200, body).unwrap();
        assert_eq!(a.result_type, "vector");
        assert_eq!(a.series.len(), 2);
        assert_eq!(a.series[0].labels["stream"], "AA_CORE_HOT");
        assert_eq!(a.series[0].points[0].t_ms, 1_700_000_000_123);
        assert_eq!(a.series[0].points[0].value, Some(4.5));
        assert_eq!(a.series[1].points[0].raw.as_deref(), Some("NaN"));

        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{},"values":[[10,"1"],[20,"+Inf"],[30,"3"]]}]}}"#;
        let a = parse_answer(200, body).unwrap();
        let values: Vec<Option<f64>> = a.series[0].points.iter().map(|p| p.value).collect();
        assert_eq!(values, [Some(1.0), None, Some(3.0)]);

        let body = br#"{"status":"success","data":{"resultType":"scalar","result":[5,"2"]}}"#;
        let a = parse_answer(200, body).unwrap();
        assert_eq!(a.series[0].points[0].value, Some(2.0));
    }

    #[test]
    fn errors_and_warnings_are_the_querys_error() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert_eq!(
            parse_answer(400, body).unwrap_err().to_string(),
            "the server refused the query (bad_data): parse error at char 5"
        );
        assert_eq!(
            parse_answer(502, b"<html>bad gateway</html>")
                .unwrap_err()
                .to_string(),
            "answered HTTP 502, not the Prometheus API's JSON"
        );
        let body = br#"{"status":"success","warnings":["remote store unavailable"],
            "data":{"resultType":"vector","result":[]}}"#;
        let mut q = PromQuery::default();
        parse_answer(200, body).unwrap().fill(&mut q);
        assert_eq!(
            q.error.as_deref(),
            Some(
                "the server answered with warnings, so the result may be partial: remote store unavailable"
            )
        );
        assert_eq!(q.warnings, ["remote store unavailable"]);
        let body = br#"{"status":"success","data":{"resultType":"vector","result":{"x":1}}}"#;
        assert!(
            parse_answer(200, body)
                .unwrap_err()
                .to_string()
                .starts_with("a `vector` result that cannot be read")
        );
    }

    #[test]
    fn times_go_as_seconds_with_milliseconds() {
        let t = chrono::DateTime::from_timestamp_millis(1_700_000_000_007).unwrap();
        assert_eq!(api_time(t), "1700000000.007");
        assert_eq!(api_seconds(Duration::from_millis(1500)), "1.500");
    }
}
