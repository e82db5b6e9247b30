//! One line per step saying what it would do, for dry runs, logs and
//! `plan`.

use super::{configmap, origin};
use crate::config::{DEFAULT_ROLLOUT_WAIT, DEFAULT_WAIT_FOR, StepConfig};

/// What a step would do, for dry runs and logs.
pub fn describe(step: &StepConfig) -> String {
    match step {
        StepConfig::PatchConfigMap {
            namespace,
            name,
            data,
        } => format!(
            "merge-patch configmap {}{name}: {}",
            namespace
                .as_deref()
                .map(|n| format!("{n}/"))
                .unwrap_or_default(),
            configmap::key_values(data)
        ),
        StepConfig::RestartDeployments {
            namespace,
            names,
            wait,
        } => format!(
            "rollout restart {}{}{}",
            namespace
                .as_deref()
                .map(|n| format!("{n}/"))
                .unwrap_or_default(),
            names.join(", "),
            match wait.map_or(DEFAULT_ROLLOUT_WAIT, |w| w.0) {
                w if w.is_zero() => String::new(),
                w => format!(
                    ", wait up to {} for rollout status",
                    gatekeeper_model::format_duration(w)
                ),
            }
        ),
        StepConfig::MoveSubjects { subjects, from, to } => format!(
            "remove {} from {}, then add them to {to}",
            subjects.join(", "),
            from.join(", ")
        ),
        StepConfig::Exec {
            command, unless, ..
        } => match unless {
            Some(u) => format!("exec {} unless {} exits 0", command.join(" "), u.join(" ")),
            None => format!("exec {}", command.join(" ")),
        },
        StepConfig::Webhook { url, .. } => format!("POST verdict to {}", origin(url)),
        StepConfig::EnsureStream { gate, name, .. } => match (gate, name) {
            (Some(g), Some(n)) => format!("ensure stream {n} as gate {g} specifies"),
            (Some(g), None) => format!("ensure the streams gate {g} specifies"),
            (None, n) => format!("ensure stream {}", n.as_deref().unwrap_or("?")),
        },
        StepConfig::EnsureConsumer {
            gate, stream, name, ..
        } => match gate {
            Some(g) => format!("ensure the consumers gate {g} specifies"),
            None => format!(
                "ensure consumer {}/{}",
                stream.as_deref().unwrap_or("?"),
                name.as_deref().unwrap_or("?")
            ),
        },
        StepConfig::DeleteStream { stream } => format!("delete stream {stream}"),
        StepConfig::ScaleDeployment {
            namespace,
            name,
            replicas,
            ..
        } => format!(
            "scale deployment {}{name} to {replicas} replicas",
            namespace
                .as_deref()
                .map(|n| format!("{n}/"))
                .unwrap_or_default()
        ),
        StepConfig::WaitFor {
            phase,
            criterion,
            timeout,
            ..
        } => format!(
            "wait up to {} for {}{phase} to be go",
            gatekeeper_model::format_duration(timeout.map_or(DEFAULT_WAIT_FOR, |t| t.0)),
            criterion
                .as_deref()
                .map(|c| format!("{c} of "))
                .unwrap_or_default()
        ),
    }
}
