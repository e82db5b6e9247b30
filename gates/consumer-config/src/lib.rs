//! Gate `consumer-config`: each specified JetStream consumer exists on its
//! stream and matches its spec (seed 003's `normalize-hrv-durable` on
//! AA_CORE_HOT: filter `athlete-ally.hrv.raw-received`, ack explicit, max
//! deliver 5, ack wait 60 s, max ack pending 1000). Only the fields a spec
//! names are compared; drift is listed field by field.

use gatekeeper_gate_sdk::model::{
    ConsumerConfig, NatsFacts, format_duration_ms, parse_duration_ms,
};
use gatekeeper_gate_sdk::spec::{Field, compare, kebab_id, show_list, verdict};
use gatekeeper_gate_sdk::{Criterion, Evaluation, Gate, GateError, Input, Metadata, ParamSpec};
use serde::Deserialize;

pub struct ConsumerConfigGate;

gatekeeper_gate_sdk::export_gate!(ConsumerConfigGate);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub consumers: Vec<ConsumerSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSpec {
    pub stream: String,
    pub name: String,
    /// Criterion id; default `consumer-<stream>-<name>` in kebab-case.
    pub id: Option<String>,
    pub title: Option<String>,
    /// Compared as a set (one `filter_subject` or 2.10+ `filter_subjects`).
    pub filter_subjects: Option<Vec<String>>,
    pub ack_policy: Option<String>,
    pub deliver_policy: Option<String>,
    pub max_deliver: Option<i64>,
    /// e.g. `60s`.
    pub ack_wait: Option<String>,
    pub max_ack_pending: Option<i64>,
    /// Require a durable consumer (true) or an ephemeral one (false).
    pub durable: Option<bool>,
}

impl Gate for ConsumerConfigGate {
    fn metadata() -> Metadata {
        Metadata {
            name: "consumer-config".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "JetStream consumers exist and match their spec: filter, ack/deliver policy, max deliver, ack wait, max ack pending, durable.".into(),
            sources: vec!["nats".into()],
            params: vec![ParamSpec::required("consumers", "List of {stream, name, id?, title?, filter_subjects?, ack_policy?, deliver_policy?, max_deliver?, ack_wait?, max_ack_pending?, durable?}; one criterion per consumer.")],
            snapshot_schema: gatekeeper_gate_sdk::model::SNAPSHOT_SCHEMA_VERSION,
        }
    }

    fn reads(params: &serde_json::Value) -> Result<Vec<String>, GateError> {
        let params: Params = gatekeeper_gate_sdk::decode_params(params)?;
        Ok(params
            .consumers
            .iter()
            .map(|c| format!("nats.consumers.{}.{}", c.stream, c.name))
            .collect())
    }

    fn evaluate(input: &Input) -> Result<Evaluation, GateError> {
        let params: Params = input.params()?;
        if params.consumers.is_empty() {
            return Err(GateError::BadParams(
                "`consumers` is empty: name at least one consumer".into(),
            ));
        }
        let nats = input.snapshot.nats.usable("nats");
        let criteria = params
            .consumers
            .iter()
            .map(|spec| {
                let ack_wait_ms = spec
                    .ack_wait
                    .as_deref()
                    .map(parse_duration_ms)
                    .transpose()
                    .map_err(|e| {
                        GateError::BadParams(format!(
                            "consumer {}/{}: ack_wait: {e}",
                            spec.stream, spec.name
                        ))
                    })?;
                Ok(check_consumer(
                    spec,
                    ack_wait_ms,
                    nats.as_deref().map_err(Clone::clone),
                ))
            })
            .collect::<Result<Vec<_>, GateError>>()?;
        Ok(Evaluation::from_criteria(criteria))
    }
}

fn check_consumer(
    spec: &ConsumerSpec,
    ack_wait_ms: Option<u64>,
    nats: Result<&NatsFacts, String>,
) -> Criterion {
    let id = spec
        .id
        .clone()
        .unwrap_or_else(|| kebab_id("consumer", &[&spec.stream, &spec.name]));
    let what = format!("consumer {}/{}", spec.stream, spec.name);
    let title = spec
        .title
        .clone()
        .unwrap_or_else(|| format!("Consumer {} on {} matches its spec", spec.name, spec.stream));
    let fields_wanted = wanted(spec, ack_wait_ms);
    let expected = describe(&fields_wanted, |(_, want, _)| want.clone());
    let unknown = |why: String| Criterion::unknown(&id, &title, why).expected(expected.clone());
    let nats = match nats {
        Ok(n) => n,
        Err(why) => return unknown(why),
    };
    let Some(stream) = nats.stream(&spec.stream) else {
        if nats.stream_absent(&spec.stream) {
            return Criterion::fail(
                &id,
                &title,
                format!("{what}: stream {} does not exist", spec.stream),
            )
            .observed("absent")
            .expected(expected);
        }
        return unknown(format!(
            "{what}: stream not in the listing, and the listing is incomplete"
        ));
    };
    let Some(consumer) = stream.consumer(&spec.name) else {
        if stream.consumer_absent(&spec.name) && stream.error.is_none() {
            return Criterion::fail(&id, &title, format!("{what} does not exist"))
                .observed("absent")
                .expected(expected);
        }
        return unknown(format!(
            "{what}: not in the listing, and the consumer listing is incomplete{}",
            stream
                .error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ));
    };
    let Some(config) = &consumer.config else {
        return unknown(format!(
            "{what}: config could not be read{}",
            consumer
                .error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ));
    };
    let fields: Vec<Field> = fields_wanted
        .iter()
        .map(|(name, want, get)| compare(name, want, get(config).as_ref(), Clone::clone))
        .collect();
    let observed = describe(&fields_wanted, |(_, _, get)| {
        get(config).unwrap_or_else(|| "not reported".into())
    });
    verdict(&id, &title, &what, &fields, observed, expected)
}

/// A spec'd field: its name, the wanted value as shown, and how to read it.
type Wanted = (
    &'static str,
    String,
    Box<dyn Fn(&ConsumerConfig) -> Option<String>>,
);

fn wanted(spec: &ConsumerSpec, ack_wait_ms: Option<u64>) -> Vec<Wanted> {
    let mut out: Vec<Wanted> = Vec::new();
    let lower = |v: &Option<String>| v.as_ref().map(|s| s.to_ascii_lowercase());
    if let Some(filters) = &spec.filter_subjects {
        let mut want = filters.clone();
        want.sort();
        out.push((
            "filter",
            show_list(&want),
            Box::new(|c: &ConsumerConfig| {
                let mut have = c.filter_subjects.clone();
                have.sort();
                Some(show_list(&have))
            }),
        ));
    }
    if let Some(v) = &spec.ack_policy {
        out.push((
            "ack_policy",
            v.to_ascii_lowercase(),
            Box::new(move |c| lower(&c.ack_policy)),
        ));
    }
    if let Some(v) = &spec.deliver_policy {
        out.push((
            "deliver_policy",
            v.to_ascii_lowercase(),
            Box::new(move |c| lower(&c.deliver_policy)),
        ));
    }
    if let Some(v) = spec.max_deliver {
        out.push((
            "max_deliver",
            v.to_string(),
            Box::new(|c| c.max_deliver.map(|v| v.to_string())),
        ));
    }
    if let Some(ms) = ack_wait_ms {
        out.push((
            "ack_wait",
            format_duration_ms(ms),
            Box::new(|c| c.ack_wait_ms.map(format_duration_ms)),
        ));
    }
    if let Some(v) = spec.max_ack_pending {
        out.push((
            "max_ack_pending",
            v.to_string(),
            Box::new(|c| c.max_ack_pending.map(|v| v.to_string())),
        ));
    }
    if let Some(v) = spec.durable {
        out.push((
            "durable",
            v.to_string(),
            Box::new(|c| Some(c.durable_name.is_some().to_string())),
        ));
    }
    out
}

fn describe(fields: &[Wanted], value: impl Fn(&Wanted) -> String) -> String {
    if fields.is_empty() {
        return "exists".into();
    }
    fields
        .iter()
        .map(|f| format!("{} {}", f.0, value(f)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatekeeper_gate_sdk::model::ConsumerFacts;
    use gatekeeper_gate_sdk::testing::Testcase;
    use gatekeeper_gate_sdk::{CriterionStatus, Decision};
    use serde_json::json;

    const AFTER: &str =
        include_str!("../../../examples/athlete-ally/snapshots/staging-after-cutover.json");

    fn seed_spec() -> serde_json::Value {
        json!({"consumers": [{
            "stream": "AA_CORE_HOT", "name": "normalize-hrv-durable", "id": "hrv-consumer-ready",
            "filter_subjects": ["athlete-ally.hrv.raw-received"], "ack_policy": "explicit",
            "max_deliver": 5, "ack_wait": "60s", "max_ack_pending": 1000, "durable": true
        }]})
    }

    fn with_consumer(config: ConsumerConfig) -> Testcase {
        let mut t = Testcase::from_json(AFTER, seed_spec());
        let stream = t.stream_mut("AA_CORE_HOT");
        stream.consumers = vec![ConsumerFacts {
            name: "normalize-hrv-durable".into(),
            config: Some(config),
            ..ConsumerFacts::default()
        }];
        stream.consumers_complete = true;
        t
    }

    fn seed_config() -> ConsumerConfig {
        ConsumerConfig {
            durable_name: Some("normalize-hrv-durable".into()),
            filter_subjects: vec!["athlete-ally.hrv.raw-received".into()],
            ack_policy: Some("explicit".into()),
            deliver_policy: Some("all".into()),
            max_deliver: Some(5),
            ack_wait_ms: Some(60_000),
            max_ack_pending: Some(1000),
        }
    }

    #[test]
    fn the_seed_consumer_matches() {
        let e = with_consumer(seed_config())
            .run::<ConsumerConfigGate>()
            .unwrap();
        assert_eq!(e.decision, Decision::Go, "{}", e.criteria[0].message);
        let c = &e.criteria[0];
        assert_eq!(c.id, "hrv-consumer-ready");
        assert_eq!(
            c.observed.as_deref(),
            Some(
                "filter [athlete-ally.hrv.raw-received], ack_policy explicit, max_deliver 5, ack_wait 1m, max_ack_pending 1000, durable true"
            )
        );
    }

    #[test]
    fn drift_is_listed_field_by_field() {
        let mut config = seed_config();
        config.ack_wait_ms = Some(30_000);
        config.max_ack_pending = None;
        config.filter_subjects = vec!["athlete-ally.>".into()];
        let e = with_consumer(config).run::<ConsumerConfigGate>().unwrap();
        assert_eq!(e.decision, Decision::NoGo);
        assert_eq!(
            e.criteria[0].message,
            "consumer AA_CORE_HOT/normalize-hrv-durable drifted: filter: expected [athlete-ally.hrv.raw-received], \
             observed [athlete-ally.>]; ack_wait: expected 1m, observed 30s; also max_ack_pending not reported"
        );
    }

    #[test]
    fn absent_is_a_failure_only_when_the_listing_is_complete() {
        let mut t = with_consumer(seed_config());
        t.stream_mut("AA_CORE_HOT").consumers.clear();
        let e = t.run::<ConsumerConfigGate>().unwrap();
        assert_eq!(
            e.criteria[0].message,
            "consumer AA_CORE_HOT/normalize-hrv-durable does not exist"
        );
        t.stream_mut("AA_CORE_HOT").consumers_complete = false;
        let e = t.run::<ConsumerConfigGate>().unwrap();
        assert_eq!(e.criteria[0].status, CriterionStatus::Unknown);
    }

    #[test]
    fn bad_params_are_errors() {
        let mut t = with_consumer(seed_config());
        t.params = json!({"consumers": [{"stream": "S", "name": "c", "ack_wait": "a minute"}]});
        assert!(
            matches!(t.run::<ConsumerConfigGate>(), Err(GateError::BadParams(m)) if m.contains("consumer S/c: ack_wait"))
        );
        t.params = json!({"consumers": []});
        assert!(matches!(
            t.run::<ConsumerConfigGate>(),
            Err(GateError::BadParams(_))
        ));
    }
}
