//! Example custom gate, `consumer-drained`: a JetStream consumer has at most
//! `max_pending` messages pending. Seed 003 demands `num_pending = 0` on the
//! old `normalize-hrv-durable` before phase 2 ("MANDATORY").
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p gate-consumer-drained`
//! Test:  `cargo test -p gate-consumer-drained` (native, no wasm needed)

use gatekeeper_gate_sdk::check::{at_most, id, reported};
use gatekeeper_gate_sdk::{Evaluation, Gate, GateError, Input, Metadata, ParamSpec};
use serde::Deserialize;

pub struct ConsumerDrained;

gatekeeper_gate_sdk::export_gate!(ConsumerDrained);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    stream: String,
    consumer: String,
    #[serde(default)]
    max_pending: u64,
    #[serde(default = "default_id")]
    id: String,
}

fn default_id() -> String {
    "consumer-drained".into()
}

fn params(value: &serde_json::Value) -> Result<Params, GateError> {
    serde_json::from_value(value.clone()).map_err(|e| GateError::BadParams(e.to_string()))
}

impl Gate for ConsumerDrained {
    fn metadata() -> Metadata {
        Metadata {
            name: "consumer-drained".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "A JetStream consumer has at most max_pending messages pending.".into(),
            sources: vec!["nats".into()],
            params: vec![
                ParamSpec::required("stream", "stream name"),
                ParamSpec::required("consumer", "durable consumer name"),
                ParamSpec::with_default("max_pending", "largest acceptable num_pending", 0.into()),
                ParamSpec::with_default("id", "criterion id", "consumer-drained".into()),
            ],
            snapshot_schema: gatekeeper_gate_sdk::model::SNAPSHOT_SCHEMA_VERSION,
        }
    }

    fn reads(params_value: &serde_json::Value) -> Result<Vec<String>, GateError> {
        let p = params(params_value)?;
        Ok(vec![format!("nats.consumers.{}.{}", p.stream, p.consumer)])
    }

    fn evaluate(input: &Input) -> Result<Evaluation, GateError> {
        let p = params(&input.params)?;
        let title = format!(
            "{} on {} has at most {} pending",
            p.consumer, p.stream, p.max_pending
        );
        let pending = input.snapshot.nats.usable("nats").and_then(|nats| {
            let stream = nats.stream(&p.stream).ok_or_else(|| {
                if nats.streams_complete {
                    format!("stream {} does not exist", p.stream)
                } else {
                    format!("stream {} not listed", p.stream)
                }
            })?;
            let consumer = stream
                .consumer(&p.consumer)
                .ok_or_else(|| format!("consumer {} not listed on {}", p.consumer, p.stream))?;
            if let Some(e) = &consumer.error {
                return Err(format!("consumer info could not be read: {e}"));
            }
            reported(
                consumer.state.as_ref().and_then(|s| s.num_pending),
                "num_pending",
            )
        });
        Ok(Evaluation::from_criteria(vec![at_most(
            id(&p.id, &title),
            pending,
            p.max_pending,
            "pending",
        )]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatekeeper_gate_sdk::testing::Testcase;
    use gatekeeper_gate_sdk::{CriterionStatus, Decision};
    use serde_json::json;

    const AFTER: &str = include_str!("../../athlete-ally/snapshots/staging-after-cutover.json");

    fn params(max: u64) -> serde_json::Value {
        json!({"stream": "ATHLETE_ALLY_EVENTS", "consumer": "normalize-hrv-durable", "max_pending": max, "id": "legacy-consumer-drained"})
    }

    #[test]
    fn drained_legacy_consumer_passes() {
        let e = Testcase::from_json(AFTER, params(0))
            .run::<ConsumerDrained>()
            .unwrap();
        assert_eq!(e.decision, Decision::Go);
        assert_eq!(e.criteria[0].id, "legacy-consumer-drained");
        assert_eq!(e.criteria[0].observed.as_deref(), Some("0 pending"));
    }

    #[test]
    fn backlog_fails_with_the_count() {
        let mut t = Testcase::from_json(AFTER, params(0));
        let legacy = t.stream_mut("ATHLETE_ALLY_EVENTS");
        legacy.consumers[0].state.as_mut().unwrap().num_pending = Some(37);
        let e = t.run::<ConsumerDrained>().unwrap();
        assert_eq!(e.decision, Decision::NoGo);
        assert_eq!(e.criteria[0].message, "37 pending, required <= 0 pending");
    }

    #[test]
    fn unknown_consumer_state_is_unknown() {
        let mut t = Testcase::from_json(AFTER, params(0));
        let legacy = t.stream_mut("ATHLETE_ALLY_EVENTS");
        legacy.consumers[0].state = None;
        let e = t.run::<ConsumerDrained>().unwrap();
        assert_eq!(e.criteria[0].status, CriterionStatus::Unknown);
        assert_eq!(e.criteria[0].message, "num_pending not reported");
    }

    #[test]
    fn only_the_named_consumer_is_sent() {
        let other = json!({"stream": "ATHLETE_ALLY_EVENTS", "consumer": "normalize-oura"});
        let e = Testcase::from_json(AFTER, other)
            .run::<ConsumerDrained>()
            .unwrap();
        assert_eq!(e.decision, Decision::Go);
        assert_eq!(
            ConsumerDrained::reads(&params(0)).unwrap(),
            ["nats.consumers.ATHLETE_ALLY_EVENTS.normalize-hrv-durable"]
        );
    }
}
