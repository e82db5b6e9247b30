//! `ensure-consumer`: a durable pull consumer brought to a spec, the same
//! way `streams.rs` brings a stream: one pure function says what changes.

use super::streams::{Change, Converge, Edit, NotInPlace, list, outcome, same_set, shown, strings};
use super::{StepError, StepResult};
use crate::clients::nats::{ERR_STREAM_NOT_FOUND, JetStream, JsError};
use crate::config::ConsumerSpec;
use serde_json::{Value, json};

/// JetStream's "consumer not found".
pub const ERR_CONSUMER_NOT_FOUND: u16 = 10014;

/// The filter subjects a consumer config names (`filter_subject` or, on
/// 2.10+, `filter_subjects`).
fn filters_of(config: &Value) -> Vec<String> {
    let mut v = strings(config.get("filter_subjects"));
    if let Some(one) = config.get("filter_subject").and_then(Value::as_str)
        && !one.is_empty()
    {
        v.push(one.to_owned());
    }
    v
}

/// What bringing a durable pull consumer to `spec` takes (`current`: its
/// config). The ack and deliver policies cannot change in place.
pub fn consumer_change(current: Option<&Value>, spec: &ConsumerSpec) -> Result<Change, NotInPlace> {
    let fresh = json!({
        "durable_name": spec.name,
        "ack_policy": "explicit",
        "deliver_policy": "all",
    });
    let mut e = Edit::new(current, fresh);
    for (key, field, want) in [
        ("ack_policy", "ack_policy", &spec.ack_policy),
        ("deliver_policy", "deliver_policy", &spec.deliver_policy),
    ] {
        let have = e.text(key);
        let want = match want {
            Some(w) => w.clone(),
            None => have.clone(),
        };
        if e.exists && have != want {
            return Err(NotInPlace(format!(
                "consumer {}/{}: {key} is {have}, the spec says {want}: nats-server cannot change a consumer's {key} in place (delete the consumer and create it again once it is drained)",
                spec.stream, spec.name
            )));
        }
        e.set(key, field, json!(want), have, want.clone(), false);
    }
    if let Some(filters) = &spec.filter_subjects {
        let have = filters_of(&e.config);
        if !e.exists || !same_set(&have, filters) {
            if let Some(obj) = e.config.as_object_mut() {
                obj.remove("filter_subject");
                obj.remove("filter_subjects");
            }
            let (key, value) = match filters.as_slice() {
                [one] => ("filter_subject", json!(one)),
                many => ("filter_subjects", json!(many)),
            };
            e.set(
                key,
                "filter_subjects",
                value,
                list(&have),
                list(filters),
                true,
            );
        }
    }
    for (key, field, want) in [
        ("max_deliver", "max_deliver", spec.max_deliver),
        ("max_ack_pending", "max_ack_pending", spec.max_ack_pending),
    ] {
        let Some(want) = want else { continue };
        let have = e.config.get(key).and_then(Value::as_i64);
        let from = have.map_or("unset".into(), |h| h.to_string());
        e.set(
            key,
            field,
            json!(want),
            from,
            want.to_string(),
            have != Some(want),
        );
    }
    if let Some(wait) = spec.ack_wait {
        e.set_duration("ack_wait", wait);
    }
    Ok(e.finish())
}

/// A consumer's config, or `None` when it (or its stream) does not exist.
pub async fn consumer_config(
    js: &JetStream,
    stream: &str,
    name: &str,
) -> Result<Option<Value>, JsError> {
    let info: Result<Value, JsError> = js
        .api(&format!("CONSUMER.INFO.{stream}.{name}"), json!({}))
        .await;
    match info {
        Ok(i) => Ok(i.get("config").cloned()),
        Err(e) if e.code == ERR_CONSUMER_NOT_FOUND || e.code == ERR_STREAM_NOT_FOUND => Ok(None),
        Err(e) => Err(e),
    }
}

/// nats-server before 2.10 keeps one filter subject per consumer and drops
/// a list without an error: a spec of several is refused there.
pub fn filters_unsupported(server_version: &str, spec: &ConsumerSpec) -> Option<String> {
    let several = spec.filter_subjects.as_ref().is_some_and(|f| f.len() > 1);
    let mut parts = server_version
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (several && (major, minor) < (2, 10)).then(|| {
        format!(
            "nats-server {server_version} keeps one filter subject per consumer; several (`filter_subjects`) need 2.10 or later"
        )
    })
}

/// Brings each durable consumer to its spec, in order.
pub async fn ensure_consumers(js: &JetStream, specs: &[ConsumerSpec]) -> StepResult {
    let mut done = Vec::new();
    for spec in specs {
        let at = format!("consumer {}/{}", spec.stream, spec.name);
        let current = consumer_config(js, &spec.stream, &spec.name)
            .await
            .map_err(|e| StepError::Refused(format!("{at}: {}", e.message)))?;
        let change = consumer_change(current.as_ref(), spec)?;
        let config = match &change.converge {
            Converge::Create(c) | Converge::Update(c) => c.clone(),
            Converge::Unchanged => continue,
        };
        if let Some(why) = filters_unsupported(&js.client().server_info().version, spec) {
            return Err(StepError::Refused(format!("{at}: {why}")));
        }
        let _: Value = js
            .api(
                &format!("CONSUMER.DURABLE.CREATE.{}.{}", spec.stream, spec.name),
                json!({"stream_name": spec.stream, "config": config}),
            )
            .await
            .map_err(|e| StepError::Refused(format!("{at}: {}", e.message)))?;
        // Read back: a server that rewrote or dropped a field (a value it
        // clamps) must not pass for done.
        let kept = consumer_config(js, &spec.stream, &spec.name)
            .await
            .map_err(|e| StepError::Refused(format!("{at}: reading it back: {}", e.message)))?;
        let again = consumer_change(kept.as_ref(), spec)?;
        if !again.fields.is_empty() {
            return Err(StepError::Refused(format!(
                "{at}: the server did not keep {}",
                shown(&again.fields)
            )));
        }
        let verb = if current.is_some() { "" } else { "created " };
        done.push(format!("{verb}{at} ({})", shown(&change.fields)));
    }
    Ok(outcome(done, || {
        format!(
            "{} already as specified",
            specs
                .iter()
                .map(|s| format!("{}/{}", s.stream, s.name))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_consumer_converges_and_its_policies_cannot_change() {
        let spec = ConsumerSpec {
            stream: "AA_CORE_HOT".into(),
            name: "normalize-hrv-durable".into(),
            filter_subjects: Some(vec!["athlete-ally.hrv.raw-received".into()]),
            ack_policy: Some("explicit".into()),
            deliver_policy: Some("all".into()),
            max_deliver: Some(5),
            ack_wait: Some(Duration::from_secs(60)),
            max_ack_pending: Some(1000),
        };
        let c = consumer_change(None, &spec).unwrap();
        let Converge::Create(config) = &c.converge else {
            panic!()
        };
        assert_eq!(
            config["filter_subject"],
            json!("athlete-ally.hrv.raw-received")
        );
        assert_eq!(config["ack_wait"], json!(60_000_000_000u64));
        let mut live = config.clone();
        assert_eq!(
            consumer_change(Some(&live), &spec).unwrap().converge,
            Converge::Unchanged
        );
        live["ack_wait"] = json!(30_000_000_000u64);
        let c = consumer_change(Some(&live), &spec).unwrap();
        assert_eq!(
            c.fields.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["ack_wait: 30s → 1m"]
        );
        live["ack_policy"] = json!("none");
        assert!(
            consumer_change(Some(&live), &spec)
                .unwrap_err()
                .0
                .contains("ack_policy is none")
        );
    }
}
