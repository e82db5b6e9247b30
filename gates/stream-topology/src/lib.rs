//! Gate `stream-topology`: each specified JetStream stream exists and matches
//! its spec. Only the fields a spec names are compared; drift is listed field
//! by field; a field the server does not report makes the criterion unknown.

use gatekeeper_gate_sdk::model::{NatsFacts, StreamConfig, format_duration_ms, parse_duration_ms};
use gatekeeper_gate_sdk::spec::{Field, compare, kebab_id, show_list, verdict};
use gatekeeper_gate_sdk::{Criterion, Evaluation, Gate, GateError, Input, Metadata, ParamSpec};
use serde::Deserialize;

pub struct StreamTopology;

gatekeeper_gate_sdk::export_gate!(StreamTopology);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub streams: Vec<StreamSpec>,
}

/// The expected shape of one stream. Unset fields are not checked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    pub name: String,
    /// Criterion id; default `stream-<name>` in kebab-case.
    pub id: Option<String>,
    pub title: Option<String>,
    /// Compared as a set: order does not matter, extra or missing subjects do.
    pub subjects: Option<Vec<String>>,
    /// e.g. `48h`, `14d`; `0s` means unlimited.
    pub max_age: Option<String>,
    pub replicas: Option<u32>,
    pub storage: Option<String>,
    pub retention: Option<String>,
    pub discard: Option<String>,
}

impl StreamSpec {
    fn criterion_id(&self) -> String {
        self.id
            .clone()
            .unwrap_or_else(|| kebab_id("stream", &[&self.name]))
    }
}

impl Gate for StreamTopology {
    fn metadata() -> Metadata {
        Metadata {
            name: "stream-topology".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "JetStream streams exist and match their spec: subjects, max age, replicas, storage, retention, discard.".into(),
            sources: vec!["nats".into()],
            params: vec![ParamSpec::required("streams", "List of {name, id?, title?, subjects?, max_age?, replicas?, storage?, retention?, discard?}; one criterion per stream.")],
            snapshot_schema: gatekeeper_gate_sdk::model::SNAPSHOT_SCHEMA_VERSION,
        }
    }

    /// Only the named streams (without their consumers).
    fn reads(params: &serde_json::Value) -> Result<Vec<String>, GateError> {
        let params: Params = gatekeeper_gate_sdk::decode_params(params)?;
        Ok(params
            .streams
            .iter()
            .map(|s| format!("nats.streams.{}", s.name))
            .collect())
    }

    fn evaluate(input: &Input) -> Result<Evaluation, GateError> {
        let params: Params = input.params()?;
        if params.streams.is_empty() {
            return Err(GateError::BadParams(
                "`streams` is empty: name at least one stream".into(),
            ));
        }
        let nats = input.snapshot.nats.usable("nats");
        let criteria = params
            .streams
            .iter()
            .map(|spec| {
                let max_age_ms = spec
                    .max_age
                    .as_deref()
                    .map(parse_duration_ms)
                    .transpose()
                    .map_err(|e| {
                        GateError::BadParams(format!("stream {}: max_age: {e}", spec.name))
                    })?;
                Ok(check_stream(
                    spec,
                    max_age_ms,
                    nats.as_deref().map_err(Clone::clone),
                ))
            })
            .collect::<Result<Vec<_>, GateError>>()?;
        Ok(Evaluation::from_criteria(criteria))
    }
}

fn check_stream(
    spec: &StreamSpec,
    max_age_ms: Option<u64>,
    nats: Result<&NatsFacts, String>,
) -> Criterion {
    let id = spec.criterion_id();
    let title = spec
        .title
        .clone()
        .unwrap_or_else(|| format!("Stream {} matches its spec", spec.name));
    let expected = describe_spec(spec, max_age_ms);
    let unknown = |why: String| Criterion::unknown(&id, &title, why).expected(expected.clone());
    let nats = match nats {
        Ok(n) => n,
        Err(why) => return unknown(why),
    };
    let Some(stream) = nats.stream(&spec.name) else {
        if nats.stream_absent(&spec.name) {
            return Criterion::fail(&id, &title, format!("stream {} does not exist", spec.name))
                .observed("absent")
                .expected(expected);
        }
        return unknown(format!(
            "stream {} not in the listing, and the listing is incomplete{}",
            spec.name,
            if nats.missing_streams.contains(&spec.name) {
                " (server reported it missing)"
            } else {
                ""
            }
        ));
    };
    let Some(config) = &stream.config else {
        let why = stream
            .error
            .clone()
            .unwrap_or_else(|| "config not reported".into());
        return unknown(format!(
            "stream {} info could not be read: {why}",
            spec.name
        ));
    };

    let fields = compare_fields(spec, max_age_ms, config);
    verdict(
        &id,
        &title,
        &format!("stream {}", spec.name),
        &fields,
        describe_config(spec, config),
        expected,
    )
}

fn compare_fields(spec: &StreamSpec, max_age_ms: Option<u64>, config: &StreamConfig) -> Vec<Field> {
    let mut fields = Vec::new();
    if let Some(subjects) = &spec.subjects {
        let mut want = subjects.clone();
        want.sort();
        let mut have = config.subjects.clone();
        have.sort();
        fields.push(compare("subjects", &want, Some(&have), |v| show_list(v)));
    }
    if let Some(ms) = max_age_ms {
        fields.push(compare("max_age", &ms, config.max_age_ms.as_ref(), |v| {
            format_duration_ms(*v)
        }));
    }
    if let Some(r) = &spec.replicas {
        fields.push(compare("replicas", r, config.replicas.as_ref(), |v| {
            v.to_string()
        }));
    }
    for (name, want, have) in [
        ("storage", &spec.storage, &config.storage),
        ("retention", &spec.retention, &config.retention),
        ("discard", &spec.discard, &config.discard),
    ] {
        if let Some(want) = want {
            fields.push(compare(
                name,
                &want.to_ascii_lowercase(),
                have.as_ref().map(|h| h.to_ascii_lowercase()).as_ref(),
                |v| v.clone(),
            ));
        }
    }
    fields
}

fn describe_spec(spec: &StreamSpec, max_age_ms: Option<u64>) -> String {
    let mut parts = Vec::new();
    if let Some(s) = &spec.subjects {
        parts.push(format!("subjects {}", show_list(s)));
    }
    if let Some(ms) = max_age_ms {
        parts.push(format!("max_age {}", format_duration_ms(ms)));
    }
    if let Some(r) = spec.replicas {
        parts.push(format!("replicas {r}"));
    }
    for (name, value) in [
        ("storage", &spec.storage),
        ("retention", &spec.retention),
        ("discard", &spec.discard),
    ] {
        if let Some(v) = value {
            parts.push(format!("{name} {v}"));
        }
    }
    if parts.is_empty() {
        "exists".into()
    } else {
        parts.join(", ")
    }
}

fn describe_config(spec: &StreamSpec, c: &StreamConfig) -> String {
    let or_nr = |v: Option<String>| v.unwrap_or_else(|| "not reported".into());
    let mut parts = Vec::new();
    if spec.subjects.is_some() {
        parts.push(format!("subjects {}", show_list(&c.subjects)));
    }
    if spec.max_age.is_some() {
        parts.push(format!(
            "max_age {}",
            or_nr(c.max_age_ms.map(format_duration_ms))
        ));
    }
    if spec.replicas.is_some() {
        parts.push(format!(
            "replicas {}",
            or_nr(c.replicas.map(|r| r.to_string()))
        ));
    }
    for (name, asked, value) in [
        ("storage", &spec.storage, &c.storage),
        ("retention", &spec.retention, &c.retention),
        ("discard", &spec.discard, &c.discard),
    ] {
        if asked.is_some() {
            parts.push(format!("{name} {}", or_nr(value.clone())));
        }
    }
    if parts.is_empty() {
        "exists".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests;
