//! `ensure-stream` and `delete-stream`: JetStream streams brought to a
//! spec (consumers: `consumers.rs`). What a step would change is worked out
//! by one pure function per kind ([`stream_change`],
//! [`super::consumers::consumer_change`]) from the
//! object's current config, so `plan` (on the state it expects after the
//! steps before) and the step itself (on the live state) say the same.

use super::{StepError, StepResult};
use crate::clients::nats::{ERR_STREAM_NOT_FOUND, JetStream, JsError};
use crate::config::StreamSpec;
use crate::ledger::StepOutcome;
use gatekeeper_model::format_duration;
use serde_json::{Value, json};
use std::time::Duration;

/// One field a step changes: `max_age: 24h → 48h`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub field: &'static str,
    /// `None`: the object does not exist yet.
    pub from: Option<String>,
    pub to: String,
}

impl std::fmt::Display for FieldChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.from {
            Some(from) => write!(f, "{}: {from} → {}", self.field, self.to),
            None => write!(f, "{}: {}", self.field, self.to),
        }
    }
}

/// A change nats-server cannot make in place (a stream's storage or
/// retention, a consumer's ack or deliver policy): the message says what
/// to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotInPlace(pub String);

/// What converging an object to its spec takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Converge {
    /// It does not exist: create it with this config.
    Create(Value),
    /// It exists and differs: write back this whole config.
    Update(Value),
    Unchanged,
}

/// A converge and the fields it changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub converge: Converge,
    pub fields: Vec<FieldChange>,
}

pub(super) fn list(v: &[String]) -> String {
    format!("[{}]", v.join(", "))
}

pub(super) fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn same_set(a: &[String], b: &[String]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    b.sort();
    a == b
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(i64::MAX as u128) as u64
}

fn shown_nanos(v: Option<&Value>) -> String {
    match v.and_then(Value::as_u64) {
        Some(0) | None => "unlimited".into(),
        Some(n) => format_duration(Duration::from_nanos(n)),
    }
}

/// A stream's subjects in its config.
pub fn subjects_of(config: &Value) -> Vec<String> {
    strings(config.get("subjects"))
}

/// What bringing a stream (`current`: its config, `None` when absent) to
/// `spec` takes. Fields nats-server cannot change in place are an error.
pub fn stream_change(current: Option<&Value>, spec: &StreamSpec) -> Result<Change, NotInPlace> {
    let mut e = Edit::new(current, json!({"name": spec.name}));
    if let Some(subjects) = &spec.subjects {
        let have = strings(e.config.get("subjects"));
        let differs = !same_set(&have, subjects);
        e.set(
            "subjects",
            "subjects",
            json!(subjects),
            list(&have),
            list(subjects),
            differs,
        );
    }
    if let Some(age) = spec.max_age {
        e.set_duration("max_age", age);
    }
    if let Some(r) = spec.replicas {
        let have = e
            .config
            .get("num_replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        e.set(
            "num_replicas",
            "replicas",
            json!(r),
            have.to_string(),
            r.to_string(),
            have != u64::from(r),
        );
    }
    for (key, want) in [
        ("storage", &spec.storage),
        ("retention", &spec.retention),
        ("discard", &spec.discard),
    ] {
        let Some(want) = want else { continue };
        let have = e.text(key);
        if e.exists && have != *want && key != "discard" {
            return Err(NotInPlace(format!(
                "stream {}: {key} is {have}, the spec says {want}: nats-server cannot change a stream's {key} in place (create a new stream and move the subjects to it)",
                spec.name
            )));
        }
        let field = match key {
            "storage" => "storage",
            "retention" => "retention",
            _ => "discard",
        };
        let differs = have != *want;
        e.set(key, field, json!(want), have, want.clone(), differs);
    }
    Ok(e.finish())
}

/// A config being brought to a spec, and the fields that changed.
pub(super) struct Edit {
    pub(super) config: Value,
    pub(super) fields: Vec<FieldChange>,
    pub(super) exists: bool,
}

impl Edit {
    pub(super) fn new(current: Option<&Value>, fresh: Value) -> Edit {
        Edit {
            config: current.cloned().unwrap_or(fresh),
            fields: Vec::new(),
            exists: current.is_some(),
        }
    }

    /// Sets `key` to `want` when the object is new or the value differs.
    pub(super) fn set(
        &mut self,
        key: &str,
        field: &'static str,
        want: Value,
        from: String,
        to: String,
        differs: bool,
    ) {
        if !self.exists || differs {
            self.fields.push(FieldChange {
                field,
                from: self.exists.then_some(from),
                to,
            });
            self.config[key] = want;
        }
    }

    /// A text field of the config as it is (`""` when unset).
    pub(super) fn text(&self, key: &str) -> String {
        self.config
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    }

    /// Sets a duration field (nanoseconds in the config, `48h` shown).
    pub(super) fn set_duration(&mut self, key: &'static str, want: Duration) {
        let have = self.config.get(key).cloned();
        let differs = have.as_ref().and_then(Value::as_u64) != Some(nanos(want));
        let from = shown_nanos(have.as_ref());
        self.set(
            key,
            key,
            json!(nanos(want)),
            from,
            format_duration(want),
            differs,
        );
    }

    pub(super) fn finish(self) -> Change {
        let converge = match (self.exists, self.fields.is_empty()) {
            (false, _) => Converge::Create(self.config),
            (true, true) => Converge::Unchanged,
            (true, false) => Converge::Update(self.config),
        };
        Change {
            converge,
            fields: self.fields,
        }
    }
}

/// A stream's config, or `None` when it does not exist.
pub async fn stream_config(js: &JetStream, name: &str) -> Result<Option<Value>, JsError> {
    match js.stream_config(name).await {
        Ok(c) => Ok(Some(c)),
        Err(e) if e.code == ERR_STREAM_NOT_FOUND => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every stream's config, by name (`STREAM.LIST`, every page).
pub async fn stream_configs(
    js: &JetStream,
) -> Result<std::collections::BTreeMap<String, Value>, JsError> {
    let mut out = std::collections::BTreeMap::new();
    loop {
        let page: Value = js.api("STREAM.LIST", json!({"offset": out.len()})).await?;
        let listed = page["streams"].as_array().cloned().unwrap_or_default();
        for s in &listed {
            if let Some(name) = s["config"]["name"].as_str() {
                out.insert(name.to_owned(), s["config"].clone());
            }
        }
        let total = page["total"].as_u64().unwrap_or(0) as usize;
        if listed.is_empty() || out.len() >= total {
            return Ok(out);
        }
    }
}

pub(super) fn shown(fields: &[FieldChange]) -> String {
    fields
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Brings each stream to its spec, in order.
pub async fn ensure_streams(js: &JetStream, specs: &[StreamSpec]) -> StepResult {
    let mut done = Vec::new();
    for spec in specs {
        let current = stream_config(js, &spec.name)
            .await
            .map_err(|e| StepError::Refused(format!("stream {}: {}", spec.name, e.message)))?;
        let change = stream_change(current.as_ref(), spec)?;
        let refused =
            |e: JsError| StepError::Refused(format!("stream {}: {}", spec.name, e.message));
        match &change.converge {
            Converge::Create(config) => {
                let _: Value = js
                    .api(&format!("STREAM.CREATE.{}", spec.name), config.clone())
                    .await
                    .map_err(refused)?;
                done.push(format!(
                    "created stream {} ({})",
                    spec.name,
                    shown(&change.fields)
                ));
            }
            Converge::Update(config) => {
                js.update_stream(config).await.map_err(refused)?;
                done.push(format!("stream {}: {}", spec.name, shown(&change.fields)));
            }
            Converge::Unchanged => continue,
        }
        // Read back: a server that rewrote a field must not pass for done.
        let kept = stream_config(js, &spec.name).await.map_err(|e| {
            StepError::Refused(format!(
                "stream {}: reading it back: {}",
                spec.name, e.message
            ))
        })?;
        let again = stream_change(kept.as_ref(), spec)?;
        if !again.fields.is_empty() {
            return Err(StepError::Refused(format!(
                "stream {}: the server did not keep {}",
                spec.name,
                shown(&again.fields)
            )));
        }
    }
    Ok(outcome(done, || {
        format!(
            "{} already as specified",
            specs
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }))
}

/// Deletes a stream (and its messages); a stream already gone is unchanged.
pub async fn delete_stream(js: &JetStream, stream: &str) -> StepResult {
    let deleted: Result<Value, JsError> =
        js.api(&format!("STREAM.DELETE.{stream}"), json!({})).await;
    match deleted {
        Ok(_) => Ok((StepOutcome::Done, format!("deleted stream {stream}"))),
        Err(e) if e.code == ERR_STREAM_NOT_FOUND => Ok((
            StepOutcome::Unchanged,
            format!("stream {stream} is already gone"),
        )),
        Err(e) => Err(StepError::Refused(format!(
            "stream {stream}: {}",
            e.message
        ))),
    }
}

pub(super) fn outcome(
    done: Vec<String>,
    unchanged: impl FnOnce() -> String,
) -> (StepOutcome, String) {
    if done.is_empty() {
        (StepOutcome::Unchanged, unchanged())
    } else {
        (StepOutcome::Done, done.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> StreamSpec {
        StreamSpec {
            name: "AA_CORE_HOT".into(),
            subjects: Some(vec!["athlete-ally.>".into(), "sleep.*".into()]),
            max_age: Some(Duration::from_secs(48 * 3600)),
            replicas: Some(1),
            storage: Some("file".into()),
            retention: None,
            discard: None,
        }
    }

    #[test]
    fn a_missing_stream_is_created_with_every_named_field() {
        let c = stream_change(None, &spec()).unwrap();
        let Converge::Create(config) = &c.converge else {
            panic!("{c:?}")
        };
        assert_eq!(config["max_age"], json!(172_800_000_000_000u64));
        assert_eq!(config["num_replicas"], json!(1));
        let shown: Vec<String> = c.fields.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "subjects: [athlete-ally.>, sleep.*]",
                "max_age: 48h",
                "replicas: 1",
                "storage: file"
            ]
        );
    }

    #[test]
    fn only_named_fields_that_differ_change_and_storage_is_refused() {
        let current = json!({"name": "AA_CORE_HOT", "subjects": ["sleep.*", "athlete-ally.>"], "max_age": 86_400_000_000_000u64, "num_replicas": 1, "storage": "file", "max_msgs": 5});
        let c = stream_change(Some(&current), &spec()).unwrap();
        let Converge::Update(config) = &c.converge else {
            panic!("{c:?}")
        };
        assert_eq!(
            config["max_msgs"],
            json!(5),
            "fields the spec does not name stay"
        );
        assert_eq!(
            c.fields.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["max_age: 24h → 48h"]
        );
        let mut same = current.clone();
        same["max_age"] = json!(172_800_000_000_000u64);
        assert_eq!(
            stream_change(Some(&same), &spec()).unwrap().converge,
            Converge::Unchanged
        );
        let mut memory = same;
        memory["storage"] = json!("memory");
        let e = stream_change(Some(&memory), &spec()).unwrap_err();
        assert!(
            e.0.contains("cannot change a stream's storage in place"),
            "{e}"
        );
    }
}
