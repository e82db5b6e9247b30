//! The steps plans and phases run (`[watch.plans.X] steps`, `[phases.X]
//! steps`): their fields, the stream and consumer specs they converge to
//! (written inline or taken from a `stream-topology` / `consumer-config`
//! gate's params, so the spec the gate checks is the spec the step makes),
//! and what the types alone cannot check.

use super::{Config, DurationValue};
use gatekeeper_model::parse_duration_ms;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// One step of a plan or a phase. Every step is idempotent: run twice, it
/// changes nothing more.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum StepConfig {
    /// JSON merge patch of a ConfigMap's `data` (e.g. `EVENT_STREAM_MODE = "single"`).
    PatchConfigMap {
        namespace: Option<String>,
        name: String,
        data: BTreeMap<String, String>,
    },
    /// `kubectl rollout restart` (the `kubectl.kubernetes.io/restartedAt`
    /// annotation), then wait for each rollout to finish (`wait`, default
    /// 5m; `0s`: do not wait). In a phase it restarts only when an earlier
    /// step of the same apply changed something.
    RestartDeployments {
        namespace: Option<String>,
        names: Vec<String>,
        wait: Option<DurationValue>,
    },
    /// Read-modify-write of stream configs: remove `subjects` from every
    /// stream in `from` first, then add them to `to`, so no two streams
    /// ever overlap (nats-server refuses overlapping subjects).
    MoveSubjects {
        subjects: Vec<String>,
        from: Vec<String>,
        to: String,
    },
    /// Run a command (no shell) with the verdict in its environment. With
    /// `unless`, a command that exits 0 when the step is already done: then
    /// `command` does not run (and `plan` can say so).
    Exec {
        command: Vec<String>,
        timeout: Option<DurationValue>,
        unless: Option<Vec<String>>,
    },
    /// POST the verdict JSON.
    Webhook {
        url: String,
        timeout: Option<DurationValue>,
    },
    /// Create a stream, or change the fields the spec names (and only
    /// those) on the one there is. The spec is inline (`name`, `subjects`,
    /// …) or every stream of a `stream-topology` gate (`gate`, optionally
    /// only `name`).
    EnsureStream {
        gate: Option<String>,
        name: Option<String>,
        subjects: Option<Vec<String>>,
        max_age: Option<DurationValue>,
        replicas: Option<u32>,
        storage: Option<String>,
        retention: Option<String>,
        discard: Option<String>,
    },
    /// Create a durable pull consumer, or change the fields the spec names.
    /// Inline or from a `consumer-config` gate (`gate`, optionally `name`).
    EnsureConsumer {
        gate: Option<String>,
        stream: Option<String>,
        name: Option<String>,
        filter_subjects: Option<Vec<String>>,
        ack_policy: Option<String>,
        deliver_policy: Option<String>,
        max_deliver: Option<i64>,
        ack_wait: Option<DurationValue>,
        max_ack_pending: Option<i64>,
    },
    /// Delete a stream and its messages (phase 3). Already gone: unchanged.
    DeleteStream { stream: String },
    /// Set a Deployment's replicas (a canary's share of pods), then wait
    /// for its rollout (`wait`, default 5m; `0s`: do not wait).
    ScaleDeployment {
        namespace: Option<String>,
        name: String,
        replicas: u32,
        wait: Option<DurationValue>,
    },
    /// Phases only: re-collect until a phase (or one of its criteria) is
    /// go; past `timeout` (default 10m) the step fails.
    WaitFor {
        phase: String,
        criterion: Option<String>,
        timeout: Option<DurationValue>,
        interval: Option<DurationValue>,
    },
}

/// How long `wait-for` waits by default.
pub const DEFAULT_WAIT_FOR: Duration = Duration::from_secs(10 * 60);

impl StepConfig {
    pub fn action(&self) -> &'static str {
        match self {
            StepConfig::PatchConfigMap { .. } => "patch-config-map",
            StepConfig::RestartDeployments { .. } => "restart-deployments",
            StepConfig::MoveSubjects { .. } => "move-subjects",
            StepConfig::Exec { .. } => "exec",
            StepConfig::Webhook { .. } => "webhook",
            StepConfig::EnsureStream { .. } => "ensure-stream",
            StepConfig::EnsureConsumer { .. } => "ensure-consumer",
            StepConfig::DeleteStream { .. } => "delete-stream",
            StepConfig::ScaleDeployment { .. } => "scale-deployment",
            StepConfig::WaitFor { .. } => "wait-for",
        }
    }
}

/// A stream as a step wants it: the fields it does not name are left as
/// they are (or the server's default on create).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: String,
    pub subjects: Option<Vec<String>>,
    pub max_age: Option<Duration>,
    pub replicas: Option<u32>,
    pub storage: Option<String>,
    pub retention: Option<String>,
    pub discard: Option<String>,
}

/// A durable consumer as a step wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSpec {
    pub stream: String,
    pub name: String,
    pub filter_subjects: Option<Vec<String>>,
    pub ack_policy: Option<String>,
    pub deliver_policy: Option<String>,
    pub max_deliver: Option<i64>,
    pub ack_wait: Option<Duration>,
    pub max_ack_pending: Option<i64>,
}

/// The stream-topology gate's spec of one stream (its params' shape).
#[derive(Debug, Deserialize)]
struct GateStream {
    name: String,
    subjects: Option<Vec<String>>,
    max_age: Option<String>,
    replicas: Option<u32>,
    storage: Option<String>,
    retention: Option<String>,
    discard: Option<String>,
}

/// The consumer-config gate's spec of one consumer.
#[derive(Debug, Deserialize)]
struct GateConsumer {
    stream: String,
    name: String,
    filter_subjects: Option<Vec<String>>,
    ack_policy: Option<String>,
    deliver_policy: Option<String>,
    max_deliver: Option<i64>,
    ack_wait: Option<String>,
    max_ack_pending: Option<i64>,
}

/// Why a step's stream or consumer spec cannot be read (a missing gate, a
/// gate of the wrong kind, a field set twice, a bad duration).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

impl From<&str> for SpecError {
    fn from(message: &str) -> Self {
        SpecError(message.to_owned())
    }
}

/// A gate's params list (`streams` or `consumers`), as the gate reads it.
fn gate_list<T: serde::de::DeserializeOwned>(
    config: &Config,
    gate: &str,
    builtin: &str,
    key: &str,
) -> Result<Vec<T>, SpecError> {
    let g = config
        .gates
        .get(gate)
        .ok_or_else(|| SpecError(format!("no gate named `{gate}`")))?;
    if g.builtin.as_deref() != Some(builtin) {
        return Err(SpecError(format!(
            "gate `{gate}` is not a `{builtin}` gate, so it holds no {key} spec"
        )));
    }
    let list = g
        .params
        .get(key)
        .cloned()
        .unwrap_or(toml::Value::Array(Vec::new()));
    list.try_into::<Vec<T>>()
        .map_err(|e| SpecError(format!("gate `{gate}`: params.{key}: {e}")))
}

fn duration(text: &str, what: &str) -> Result<Duration, SpecError> {
    parse_duration_ms(text)
        .map(Duration::from_millis)
        .map_err(|e| SpecError(format!("{what}: {e}")))
}

impl StepConfig {
    /// The streams an `ensure-stream` step converges to.
    pub fn stream_specs(&self, config: &Config) -> Result<Vec<StreamSpec>, SpecError> {
        let StepConfig::EnsureStream {
            gate,
            name,
            subjects,
            max_age,
            replicas,
            storage,
            retention,
            discard,
        } = self
        else {
            return Ok(Vec::new());
        };
        let Some(gate) = gate else {
            let name = name.clone().ok_or("name the stream (or a `gate`)")?;
            return Ok(vec![StreamSpec {
                name,
                subjects: subjects.clone(),
                max_age: max_age.map(|d| d.0),
                replicas: *replicas,
                storage: storage.clone(),
                retention: retention.clone(),
                discard: discard.clone(),
            }]);
        };
        if subjects.is_some()
            || max_age.is_some()
            || replicas.is_some()
            || storage.is_some()
            || retention.is_some()
            || discard.is_some()
        {
            return Err(SpecError(format!(
                "the spec comes from gate `{gate}`: set its fields there, not on the step"
            )));
        }
        let streams: Vec<GateStream> = gate_list(config, gate, "stream-topology", "streams")?;
        let mut specs = Vec::new();
        for s in streams {
            if name.as_ref().is_some_and(|n| *n != s.name) {
                continue;
            }
            specs.push(StreamSpec {
                max_age: s
                    .max_age
                    .as_deref()
                    .map(|t| duration(t, &format!("gate `{gate}` stream {} max_age", s.name)))
                    .transpose()?,
                name: s.name,
                subjects: s.subjects,
                replicas: s.replicas,
                storage: s.storage,
                retention: s.retention,
                discard: s.discard,
            });
        }
        if specs.is_empty() {
            return Err(SpecError(match name {
                Some(n) => format!("gate `{gate}` has no stream named `{n}`"),
                None => format!("gate `{gate}` names no stream"),
            }));
        }
        Ok(specs)
    }

    /// The consumers an `ensure-consumer` step converges to.
    pub fn consumer_specs(&self, config: &Config) -> Result<Vec<ConsumerSpec>, SpecError> {
        let StepConfig::EnsureConsumer {
            gate,
            stream,
            name,
            filter_subjects,
            ack_policy,
            deliver_policy,
            max_deliver,
            ack_wait,
            max_ack_pending,
        } = self
        else {
            return Ok(Vec::new());
        };
        let Some(gate) = gate else {
            return Ok(vec![ConsumerSpec {
                stream: stream.clone().ok_or("name the `stream` (or a `gate`)")?,
                name: name.clone().ok_or("name the consumer (or a `gate`)")?,
                filter_subjects: filter_subjects.clone(),
                ack_policy: ack_policy.clone(),
                deliver_policy: deliver_policy.clone(),
                max_deliver: *max_deliver,
                ack_wait: ack_wait.map(|d| d.0),
                max_ack_pending: *max_ack_pending,
            }]);
        };
        if filter_subjects.is_some()
            || ack_policy.is_some()
            || deliver_policy.is_some()
            || max_deliver.is_some()
            || ack_wait.is_some()
            || max_ack_pending.is_some()
            || stream.is_some()
        {
            return Err(SpecError(format!(
                "the spec comes from gate `{gate}`: set its fields there, not on the step"
            )));
        }
        let consumers: Vec<GateConsumer> = gate_list(config, gate, "consumer-config", "consumers")?;
        let mut specs = Vec::new();
        for c in consumers {
            if name.as_ref().is_some_and(|n| *n != c.name) {
                continue;
            }
            specs.push(ConsumerSpec {
                ack_wait: c
                    .ack_wait
                    .as_deref()
                    .map(|t| duration(t, &format!("gate `{gate}` consumer {} ack_wait", c.name)))
                    .transpose()?,
                stream: c.stream,
                name: c.name,
                filter_subjects: c.filter_subjects,
                ack_policy: c.ack_policy,
                deliver_policy: c.deliver_policy,
                max_deliver: c.max_deliver,
                max_ack_pending: c.max_ack_pending,
            });
        }
        if specs.is_empty() {
            return Err(SpecError(match name {
                Some(n) => format!("gate `{gate}` has no consumer named `{n}`"),
                None => format!("gate `{gate}` names no consumer"),
            }));
        }
        Ok(specs)
    }
}
