//! `move-subjects`: moves subjects between JetStream streams, each stream a
//! read-modify-write of its current config.

use super::{StepError, StepResult};
use crate::clients::nats::{ERR_STREAM_NOT_FOUND, JetStream};
use crate::ledger::StepOutcome;

/// Removes `subjects` from each `from` stream, then adds them to `to`, each
/// a read-modify-write of the stream's current config (only `subjects`
/// changes). Removing first means the streams never overlap in between.
pub async fn move_subjects(
    js: &JetStream,
    subjects: &[String],
    from: &[String],
    to: &str,
) -> StepResult {
    let mut changed = Vec::new();
    for stream in from {
        let mut config = match js.stream_config(stream).await {
            Ok(c) => c,
            Err(e) if e.code == ERR_STREAM_NOT_FOUND => continue,
            Err(e) => return Err(StepError::Refused(e.message)),
        };
        let current = subjects_of(&config);
        let kept: Vec<String> = current
            .iter()
            .filter(|s| !subjects.contains(s))
            .cloned()
            .collect();
        if kept.len() == current.len() {
            continue;
        }
        config["subjects"] = serde_json::json!(kept);
        js.update_stream(&config)
            .await
            .map_err(|e| StepError::Refused(e.message))?;
        changed.push(format!(
            "removed {} from {stream}",
            current
                .iter()
                .filter(|s| subjects.contains(s))
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut config = js
        .stream_config(to)
        .await
        .map_err(|e| StepError::Refused(e.message))?;
    let mut current = subjects_of(&config);
    let missing: Vec<String> = subjects
        .iter()
        .filter(|s| !current.contains(s))
        .cloned()
        .collect();
    if !missing.is_empty() {
        current.extend(missing.iter().cloned());
        config["subjects"] = serde_json::json!(current);
        js.update_stream(&config)
            .await
            .map_err(|e| StepError::Refused(e.message))?;
        changed.push(format!("added {} to {to}", missing.join(", ")));
    }
    if changed.is_empty() {
        Ok((
            StepOutcome::Unchanged,
            format!(
                "{to} already has {}; no other stream does",
                subjects.join(", ")
            ),
        ))
    } else {
        Ok((StepOutcome::Done, changed.join("; ")))
    }
}

fn subjects_of(config: &serde_json::Value) -> Vec<String> {
    config["subjects"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
