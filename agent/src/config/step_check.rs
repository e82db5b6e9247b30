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
        if js_name(value) && value.len() <= MAX_NAME_BYTES {
            Ok(())
        } else {
            err(
                name,
                "stream and consumer names cannot be empty, longer than 255 bytes, or hold spaces, `.`, `*`, `>`",
            )
        }
    };
    // The ledger's stream and the lease's bucket are Gatekeeper's own: a
    // step that changed or deleted them would erase the audit trail.
    let ledger = config.ledger.clone().unwrap_or_default();
    let lease_stream = format!("KV_{}", ledger.lease_bucket());
    let protected = |name: &str, value: &str| {
        if value == ledger.stream() || value == lease_stream {
            err(
                name,
                &format!(
                    "`{value}` is Gatekeeper's own (the ledger's stream or the lease's bucket): a step cannot change or delete it"
                ),
            )
        } else {
            Ok(())
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
            for s in from {
                protected("from", s)?;
            }
            protected("to", to)?;
            if let Some(m) = subject_problem(subjects) {
                return err("subjects", &m);
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
        StepConfig::EnsureStream { gate, .. } => {
            if sources.nats.is_none() {
                return needs_nats();
            }
            let specs = match step.stream_specs(config) {
                Ok(specs) => specs,
                Err(m) => return err(if gate.is_some() { "gate" } else { "name" }, &m.0),
            };
            // A spec from a gate is checked as strictly as one written
            // inline; its errors name the gate and the stream.
            let field = |name: &'static str| if gate.is_some() { "gate" } else { name };
            for s in &specs {
                stream_name("name", &s.name)?;
                protected("name", &s.name)?;
                let at = |m: &str| match gate {
                    Some(g) => format!("gate `{g}` stream {}: {m}", s.name),
                    None => m.to_owned(),
                };
                if let Some(subjects) = &s.subjects
                    && let Some(m) = subject_problem(subjects)
                {
                    return err(field("subjects"), &at(&m));
                }
                if s.max_age.is_some_and(|d| d.is_zero()) {
                    return err(field("max_age"), &at("max_age must be greater than 0s"));
                }
                if s.replicas.is_some_and(|r| !(1..=5).contains(&r)) {
                    return err(field("replicas"), &at("replicas must be 1 to 5"));
                }
                if let Some((name, m)) = not_allowed(&[
                    ("storage", &s.storage, &["file", "memory"]),
                    (
                        "retention",
                        &s.retention,
                        &["limits", "interest", "workqueue"],
                    ),
                    ("discard", &s.discard, &["old", "new"]),
                ]) {
                    return err(field(name), &at(&m));
                }
            }
        }
        StepConfig::EnsureConsumer { gate, .. } => {
            if sources.nats.is_none() {
                return needs_nats();
            }
            let specs = match step.consumer_specs(config) {
                Ok(specs) => specs,
                Err(m) => return err(if gate.is_some() { "gate" } else { "name" }, &m.0),
            };
            let field = |name: &'static str| if gate.is_some() { "gate" } else { name };
            for c in &specs {
                stream_name("stream", &c.stream)?;
                stream_name("name", &c.name)?;
                protected("stream", &c.stream)?;
                let at = |m: &str| match gate {
                    Some(g) => format!("gate `{g}` consumer {}/{}: {m}", c.stream, c.name),
                    None => m.to_owned(),
                };
                if let Some(filters) = &c.filter_subjects
                    && let Some(m) = subject_problem(filters)
                {
                    return err(field("filter_subjects"), &at(&m));
                }
                if c.ack_wait.is_some_and(|d| d.is_zero()) {
                    return err(field("ack_wait"), &at("ack_wait must be greater than 0s"));
                }
                // nats-server rewrites 0 and anything below -1 (to -1 or its
                // default), so such a spec would never read back as done.
                for (name, value) in [
                    ("max_deliver", c.max_deliver),
                    ("max_ack_pending", c.max_ack_pending),
                ] {
                    if value.is_some_and(|v| v == 0 || v < -1) {
                        return err(
                            field(name),
                            &at(&format!("{name} must be -1 (unlimited) or at least 1")),
                        );
                    }
                }
                if let Some((name, m)) = not_allowed(&[
                    ("ack_policy", &c.ack_policy, &["explicit", "none", "all"]),
                    (
                        "deliver_policy",
                        &c.deliver_policy,
                        &["all", "last", "new", "last_per_subject"],
                    ),
                ]) {
                    return err(field(name), &at(&m));
                }
            }
        }
        StepConfig::DeleteStream { stream } => {
            if sources.nats.is_none() {
                return needs_nats();
            }
            stream_name("stream", stream)?;
            protected("stream", stream)?;
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

/// The first value set to something not among its choices, as its field
/// and the message (`storage must be one of file, memory`).
fn not_allowed(
    values: &[(&'static str, &Option<String>, &[&str])],
) -> Option<(&'static str, String)> {
    values.iter().find_map(|(name, value, allowed)| {
        let v = value.as_deref()?;
        (!allowed.contains(&v)).then(|| {
            (
                *name,
                format!("{name} must be one of {}", allowed.join(", ")),
            )
        })
    })
}

/// The longest stream or consumer name nats-server takes.
const MAX_NAME_BYTES: usize = 255;

/// The subjects of a stream or a consumer's filters as nats-server takes
/// them: tokens not empty, `*` and `>` only as whole tokens, `>` only last,
/// no whitespace, nothing of the JetStream API, no
/// duplicates, none overlapping another of the same list. `None`: fine.
pub(super) fn subject_problem(subjects: &[String]) -> Option<String> {
    if subjects.is_empty() {
        return Some("name at least one subject".into());
    }
    for s in subjects {
        let tokens: Vec<&str> = s.split('.').collect();
        let bad_token = tokens.iter().enumerate().any(|(i, t)| {
            t.is_empty()
                || t.chars().any(char::is_whitespace)
                || (t.len() > 1 && (t.contains('*') || t.contains('>')))
                || (*t == ">" && i + 1 != tokens.len())
        });
        if bad_token {
            return Some(format!(
                "`{s}` is not a subject nats-server takes (empty tokens, whitespace, or `*`/`>` inside a token or `>` before the end)"
            ));
        }
        if gatekeeper_model::subjects_overlap(s, "$JS.API.>") {
            return Some(format!(
                "`{s}` takes in the JetStream API (`$JS.API.>`), which nats-server refuses in a stream"
            ));
        }
    }
    for (i, a) in subjects.iter().enumerate() {
        for b in &subjects[i + 1..] {
            if gatekeeper_model::subjects_overlap(a, b) {
                return Some(format!(
                    "`{a}` and `{b}` overlap (or repeat): nats-server refuses a list where one subject takes in another"
                ));
            }
        }
    }
    None
}
