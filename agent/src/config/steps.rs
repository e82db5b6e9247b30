//! The steps plans and phases run (`[watch.plans.X] steps`, `[phases.X]
//! steps`): their fields, the stream and consumer specs they converge to
//! (written inline or taken from a `stream-topology` / `consumer-config`
//! gate's params, so the spec the gate checks is the spec the step makes),
//! and what the types alone cannot check.

use super::ledger::js_name;
use super::{Config, DurationValue, Invalid, at};
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

/// A gate's params list (`streams` or `consumers`), as the gate reads it.
fn gate_list<T: serde::de::DeserializeOwned>(
    config: &Config,
    gate: &str,
    builtin: &str,
    key: &str,
) -> Result<Vec<T>, String> {
    let g = config
        .gates
        .get(gate)
        .ok_or_else(|| format!("no gate named `{gate}`"))?;
    if g.builtin.as_deref() != Some(builtin) {
        return Err(format!(
            "gate `{gate}` is not a `{builtin}` gate, so it holds no {key} spec"
        ));
    }
    let list = g
        .params
        .get(key)
        .cloned()
        .unwrap_or(toml::Value::Array(Vec::new()));
    list.try_into::<Vec<T>>()
        .map_err(|e| format!("gate `{gate}`: params.{key}: {e}"))
}

fn duration(text: &str, what: &str) -> Result<Duration, String> {
    parse_duration_ms(text)
        .map(Duration::from_millis)
        .map_err(|e| format!("{what}: {e}"))
}

impl StepConfig {
    /// The streams an `ensure-stream` step converges to.
    pub fn stream_specs(&self, config: &Config) -> Result<Vec<StreamSpec>, String> {
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
            return Err(format!(
                "the spec comes from gate `{gate}`: set its fields there, not on the step"
            ));
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
            return Err(match name {
                Some(n) => format!("gate `{gate}` has no stream named `{n}`"),
                None => format!("gate `{gate}` names no stream"),
            });
        }
        Ok(specs)
    }

    /// The consumers an `ensure-consumer` step converges to.
    pub fn consumer_specs(&self, config: &Config) -> Result<Vec<ConsumerSpec>, String> {
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
            return Err(format!(
                "the spec comes from gate `{gate}`: set its fields there, not on the step"
            ));
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
            return Err(match name {
                Some(n) => format!("gate `{gate}` has no consumer named `{n}`"),
                None => format!("gate `{gate}` names no consumer"),
            });
        }
        Ok(specs)
    }
}

/// Where a step is: a rollback plan or alert hook, or a phase's forward steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepPlace {
    Plan,
    Phase,
}

pub(super) fn validate_step(
    step: &StepConfig,
    config: &Config,
    field: &[&str],
    place: StepPlace,
) -> Result<(), Invalid> {
    let sources = &config.sources;
    let err = |name: &str, message: &str| {
        let mut f = at(field);
        f.push(name.to_owned());
        Err((f, message.to_owned()))
    };
    let needs_kube = || {
        err(
            "action",
            "needs [sources.kubernetes] (the cluster to change)",
        )
    };
    let needs_nats = || err("action", "needs [sources.nats] (the streams to change)");
    let positive = |name: &str, d: &Option<DurationValue>| {
        if d.is_some_and(|t| t.0.is_zero()) {
            err(name, "must be greater than 0s")
        } else {
            Ok(())
        }
    };
    let stream_name = |name: &str, value: &str| {
        if js_name(value) {
            Ok(())
        } else {
            err(
                name,
                "stream and consumer names cannot be empty or hold spaces, `.`, `*`, `>`",
            )
        }
    };
    match step {
        StepConfig::PatchConfigMap { name, data, .. } => {
            if sources.kubernetes.is_none() {
                return needs_kube();
            }
            if name.is_empty() {
                return err("name", "must not be empty");
            }
            if data.is_empty() {
                return err("data", "set at least one key");
            }
        }
        StepConfig::RestartDeployments { names, .. } => {
            if sources.kubernetes.is_none() {
                return needs_kube();
            }
            if names.is_empty() || names.iter().any(String::is_empty) {
                return err("names", "name at least one Deployment");
            }
        }
        StepConfig::ScaleDeployment { name, .. } => {
            if sources.kubernetes.is_none() {
                return needs_kube();
            }
            if name.is_empty() {
                return err("name", "must not be empty");
            }
        }
        StepConfig::MoveSubjects { subjects, from, to } => {
            if sources.nats.is_none() {
                return needs_nats();
            }
            if subjects.is_empty() {
                return err("subjects", "name at least one subject");
            }
            if from.is_empty() {
                return err("from", "name at least one stream");
            }
            if from.iter().chain([to]).any(|s| !js_name(s)) {
                return err(
                    "to",
                    "stream names cannot be empty or hold spaces, `.`, `*`, `>`",
                );
            }
            if from.contains(to) {
                return err("to", "`to` cannot also be in `from`");
            }
        }
        StepConfig::Exec {
            command,
            timeout,
            unless,
        } => {
            if command.first().is_none_or(String::is_empty) {
                return err(
                    "command",
                    "give the program and its arguments, e.g. [\"/bin/notify\", \"--now\"]",
                );
            }
            if unless
                .as_ref()
                .is_some_and(|u| u.first().is_none_or(String::is_empty))
            {
                return err(
                    "unless",
                    "give the program that exits 0 when the step is done, e.g. [\"test\", \"-e\", \"done\"]",
                );
            }
            positive("timeout", timeout)?;
        }
        StepConfig::Webhook { url, timeout } => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return err("url", "must be an http:// or https:// URL");
            }
            positive("timeout", timeout)?;
        }
        StepConfig::EnsureStream {
            gate,
            max_age,
            replicas,
            storage,
            retention,
            discard,
            ..
        } => {
            if sources.nats.is_none() {
                return needs_nats();
            }
            let specs = match step.stream_specs(config) {
                Ok(specs) => specs,
                Err(m) => return err(if gate.is_some() { "gate" } else { "name" }, &m),
            };
            for s in &specs {
                stream_name("name", &s.name)?;
                if s.subjects
                    .as_ref()
                    .is_some_and(|v| v.is_empty() || v.iter().any(String::is_empty))
                {
                    return err("subjects", "name at least one subject, none empty");
                }
            }
            positive("max_age", max_age)?;
            if *replicas == Some(0) || replicas.is_some_and(|r| r > 5) {
                return err("replicas", "must be 1 to 5");
            }
            for (name, value, allowed) in [
                ("storage", storage, &["file", "memory"][..]),
                (
                    "retention",
                    retention,
                    &["limits", "interest", "workqueue"][..],
                ),
                ("discard", discard, &["old", "new"][..]),
            ] {
                if let Some(v) = value
                    && !allowed.contains(&v.as_str())
                {
                    return err(name, &format!("must be one of {}", allowed.join(", ")));
                }
            }
        }
        StepConfig::EnsureConsumer {
            gate,
            ack_policy,
            deliver_policy,
            ack_wait,
            ..
        } => {
            if sources.nats.is_none() {
                return needs_nats();
            }
            let specs = match step.consumer_specs(config) {
                Ok(specs) => specs,
                Err(m) => return err(if gate.is_some() { "gate" } else { "name" }, &m),
            };
            for c in &specs {
                stream_name("stream", &c.stream)?;
                stream_name("name", &c.name)?;
            }
            positive("ack_wait", ack_wait)?;
            for (name, value, allowed) in [
                ("ack_policy", ack_policy, &["explicit", "none", "all"][..]),
                (
                    "deliver_policy",
                    deliver_policy,
                    &["all", "last", "new", "last_per_subject"][..],
                ),
            ] {
                if let Some(v) = value
                    && !allowed.contains(&v.as_str())
                {
                    return err(name, &format!("must be one of {}", allowed.join(", ")));
                }
            }
        }
        StepConfig::DeleteStream { stream } => {
            if sources.nats.is_none() {
                return needs_nats();
            }
            stream_name("stream", stream)?;
        }
        StepConfig::WaitFor {
            phase,
            criterion,
            timeout,
            interval,
        } => {
            if place == StepPlace::Plan {
                return err(
                    "action",
                    "`wait-for` is a phase step (`[phases.X] steps`); a rollback plan does not wait for gates",
                );
            }
            if !config.phases.contains_key(phase) {
                return err("phase", &format!("no phase named `{phase}`"));
            }
            if criterion.as_ref().is_some_and(String::is_empty) {
                return err("criterion", "must not be empty");
            }
            positive("timeout", timeout)?;
            positive("interval", interval)?;
        }
    }
    Ok(())
}
