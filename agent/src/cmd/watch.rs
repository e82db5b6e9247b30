//! `gatekeeper watch`: the daemon. Evaluates the watched phase every
//! interval and runs the rollback plan when an automatic trigger fires
//! (the loop itself is [`crate::watch`]); stops on SIGTERM/SIGINT.

use super::{AppError, async_runtime, default_agent_name, load_config, note};
use crate::cli::{ConfigArgs, EXIT_GO, WatchArgs};
use crate::config::Config;
use crate::watch::{WatchOptions, watch};

pub(super) fn run(args: WatchArgs) -> Result<u8, AppError> {
    let config = load_config(&args.config)?;
    precompile_gates(&config, &args.config);
    let options = WatchOptions {
        phase: args.phase,
        interval: args.interval,
        dry_run: args.dry_run,
        listen: args.listen,
        agent: args.agent.unwrap_or_else(default_agent_name),
    };
    let summary = async_runtime()?.block_on(async {
        let signal = shutdown_signal().map_err(AppError::Signals)?;
        Ok::<_, AppError>(watch(config, options, signal).await?)
    })?;
    note(&format!(
        "watch stopped after {} rounds; plans: {}",
        summary.rounds,
        if summary.plans.is_empty() {
            "none".to_owned()
        } else {
            summary
                .plans
                .iter()
                .map(|(p, o)| format!("{p} {}", o.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        }
    ));
    Ok(EXIT_GO)
}

/// Compiles the config's gates into the on-disk cache in a child process
/// (`validate`: only the gates the config names, not every built-in), so the
/// daemon only loads them: the compiler's peak memory goes
/// back to the OS with the child instead of staying in the daemon's heap
/// (about 37 MiB idle instead of 64 MiB; README, Benchmarks). Without a cache, or
/// if the child fails, the daemon compiles them itself.
fn precompile_gates(config: &Config, args: &ConfigArgs) {
    if crate::gate_set::runtime_options(config).cache_dir.is_none() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut command = std::process::Command::new(exe);
    command.args(["validate", "--config"]).arg(&args.config);
    if let Some(profile) = &args.profile {
        command.args(["--profile", profile]);
    }
    match command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
    {
        Ok(status) if status.success() => {}
        // The config does not validate or a gate does not load: the daemon
        // says so itself, with the same message.
        Ok(status) if matches!(status.code(), Some(1 | 3)) => {}
        other => {
            tracing::warn!(outcome = ?other, "precompiling the gates in a child failed; compiling them here")
        }
    }
}

/// Installs SIGTERM and SIGINT handlers now (inside the runtime); the
/// future resolves on the first of them.
pub(super) fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        let which = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = which, "stopping");
    })
}
