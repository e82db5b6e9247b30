//! What the types of a step (`[watch.plans.X] steps`, `[phases.X] steps`)
//! cannot check: the sources it needs, names nats-server accepts, the
//! values it knows, a spec it can read, `wait-for` only in phases.

use super::ledger::js_name;
use super::steps::StepConfig;
use super::{Config, DurationValue, Invalid, at};

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
                Err(m) => return err(if gate.is_some() { "gate" } else { "name" }, &m.0),
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
                Err(m) => return err(if gate.is_some() { "gate" } else { "name" }, &m.0),
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
