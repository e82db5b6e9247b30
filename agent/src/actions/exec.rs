//! `exec`: runs a command with the verdict in a file (and in the
//! environment when it fits), killed after its timeout.

use super::{PlanRun, StepError, StepResult};
use crate::ledger::StepOutcome;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _};

/// How much of a command's stdout and stderr is kept (the end of it); the
/// rest is read and dropped, so a chatty command costs no memory.
const KEPT_OUTPUT_BYTES: usize = 4096;

/// The command's process group, killed whole when this is dropped (the
/// step timed out, was interrupted, or finished leaving children behind):
/// a step leaves nothing running.
struct Group(Option<u32>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pid) = self.0.and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Reads `from` to its end, keeping the last [`KEPT_OUTPUT_BYTES`].
async fn tail_of(from: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let Some(mut from) = from else {
        return Vec::new();
    };
    let mut kept = Vec::with_capacity(2 * KEPT_OUTPUT_BYTES);
    let mut chunk = [0u8; 8192];
    while let Ok(n) = from.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&chunk[..n]);
        if kept.len() > 2 * KEPT_OUTPUT_BYTES {
            kept.drain(..kept.len() - KEPT_OUTPUT_BYTES);
        }
    }
    kept
}

/// The largest verdict also passed in `GATEKEEPER_VERDICT` (Linux refuses
/// one variable over 128 KiB); `GATEKEEPER_VERDICT_FILE` always has it.
const MAX_VERDICT_ENV_BYTES: usize = 64 << 10;

/// Runs `command` (program and arguments) for `run`, within `timeout`.
pub async fn exec(command: &[String], timeout: Duration, run: &PlanRun) -> StepResult {
    // The verdict in a file always; in the environment too when it
    // fits (a report can be larger than the kernel lets one
    // variable be, and that must not stop a rollback).
    let mut verdict = tempfile::NamedTempFile::new()
        .map_err(|e| StepError::Command(format!("cannot write the verdict file: {e}")))?;
    std::io::Write::write_all(&mut verdict, run.verdict_json.as_bytes())
        .map_err(|e| StepError::Command(format!("cannot write the verdict file: {e}")))?;
    let mut cmd = tokio::process::Command::new(&command[0]);
    if run.verdict_json.len() <= MAX_VERDICT_ENV_BYTES {
        cmd.env("GATEKEEPER_VERDICT", &run.verdict_json);
    }
    if let Some(epoch) = run.epoch {
        cmd.env("GATEKEEPER_LEASE_EPOCH", epoch.to_string());
    }
    let mut child = cmd
        .args(&command[1..])
        .env("GATEKEEPER_VERDICT_FILE", verdict.path())
        .env("GATEKEEPER_INCIDENT", &run.incident)
        .env("GATEKEEPER_PLAN", &run.plan)
        .env("GATEKEEPER_TRIGGER", &run.trigger)
        .env("GATEKEEPER_PHASE", &run.phase)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
        .map_err(|e| StepError::Command(format!("{}: cannot start: {e}", command[0])))?;
    let _group = Group(child.id());
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let run = async {
        let (status, stdout, stderr) = tokio::join!(child.wait(), tail_of(stdout), tail_of(stderr));
        status.map(|status| std::process::Output {
            status,
            stdout,
            stderr,
        })
    };
    let out = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| {
            StepError::Command(format!(
                "{}: still running after {}; killed",
                command[0],
                gatekeeper_model::format_duration(timeout)
            ))
        })?
        .map_err(|e| StepError::Command(format!("{}: {e}", command[0])))?;
    let tail = |b: &[u8]| {
        let s = String::from_utf8_lossy(b);
        let s = s.trim();
        let start = s.char_indices().rev().nth(399).map_or(0, |(i, _)| i);
        s[start..].to_owned()
    };
    if out.status.success() {
        Ok((
            StepOutcome::Done,
            format!("{} exited 0: {}", command[0], tail(&out.stdout)),
        ))
    } else {
        Err(StepError::Command(format!(
            "{} {}: {}",
            command[0],
            out.status,
            tail(&out.stderr)
        )))
    }
}

/// An `exec` step's `unless` check: true when it exits 0 (the step is
/// done). It runs with the phase in its environment, within `timeout`.
pub async fn already_done(
    unless: &[String],
    timeout: Duration,
    phase: &str,
) -> Result<bool, StepError> {
    let child = tokio::process::Command::new(&unless[0])
        .args(&unless[1..])
        .env("GATEKEEPER_PHASE", phase)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .process_group(0)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return Err(StepError::Command(format!(
                "unless {}: cannot start: {e}",
                unless[0]
            )));
        }
    };
    let _group = Group(child.id());
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(s)) => Ok(s.success()),
        Ok(Err(e)) => Err(StepError::Command(format!("unless {}: {e}", unless[0]))),
        Err(_) => Err(StepError::Command(format!(
            "unless {}: still running after {}; killed",
            unless[0],
            gatekeeper_model::format_duration(timeout)
        ))),
    }
}
