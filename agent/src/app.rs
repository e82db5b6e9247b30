//! What each command does, returning the exit code; `main` only maps errors.

use crate::check::{self, CheckError, GateSet, PreparedGate};
use crate::cli::{
    Cli, Command, ConfigArgs, EXIT_DEFER, EXIT_GO, EXIT_NO_GO, GatesCommand, InspectFormat,
};
use crate::collect;
use crate::config::{Config, ConfigError, ProcessEnv};
use crate::report;
use crate::wait::{self, WaitOptions};
use gatekeeper_model::{Decision, format_duration};
use gatekeeper_model::{Snapshot, SourceStatus};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Runs a parsed command line; `Err` means "could not evaluate" (exit 3).
pub fn run(cli: Cli) -> Result<u8, CheckError> {
    match cli.command {
        Command::Check {
            phase,
            config,
            snapshot,
            record,
            wait,
            timeout,
            interval,
            sample,
            output,
        } => {
            let config = load_config(&config)?;
            // Refuse an unknown phase before reading or collecting anything.
            let gate_names = check::phase_gates(&config, &phase)?;
            let report = if wait {
                let options = WaitOptions { interval, timeout };
                let outcome = wait_live(&config, &phase, gate_names, options)?;
                if let Some(dir) = record {
                    record_recording(&dir, &phase, &outcome.recording)?;
                }
                outcome.report
            } else {
                let recording = match snapshot {
                    Some(path) => crate::recording::read_recording(
                        &path,
                        config
                            .runtime
                            .max_snapshot_size
                            .map_or(crate::files::DEFAULT_MAX_SNAPSHOT_BYTES, |b| b.0 as u64),
                    )
                    .map_err(|e| CheckError::Snapshot {
                        path: e.path,
                        message: e.message,
                    })?,
                    None => {
                        let window = sample
                            .or_else(|| config.phases[&phase].sample.map(|d| d.0))
                            .unwrap_or_default();
                        let recording = if window.is_zero() {
                            check::Recording {
                                current: collect_live(&config)?,
                                history: Vec::new(),
                            }
                        } else {
                            sample_live(&config, window, interval)?
                        };
                        if let Some(dir) = record {
                            record_recording(&dir, &phase, &recording)?;
                        }
                        recording
                    }
                };
                check::check_phase(&config, &phase, &recording)?
            };
            let color = output == report::OutputFormat::Table
                && report::use_color(std::io::stdout().is_terminal());
            emit(&report::render(&report, output, color))?;
            Ok(match report.verdict {
                Decision::Go => EXIT_GO,
                Decision::NoGo => EXIT_NO_GO,
                Decision::Defer => EXIT_DEFER,
            })
        }
        Command::Snapshot { config, output } => {
            let config = load_config(&config)?;
            let snapshot = collect_live(&config)?;
            let json = snapshot_json(&snapshot);
            match output {
                Some(path) => write_atomically(&path, json.as_bytes())?,
                None => emit(&format!("{json}\n"))?,
            }
            note(source_summary(&snapshot).trim_end());
            Ok(EXIT_GO)
        }
        Command::Watch {
            config,
            phase,
            interval,
            dry_run,
            listen,
            agent,
        } => {
            let config_args = config;
            let config = load_config(&config_args)?;
            precompile_gates(&config, &config_args);
            let options = crate::watch::WatchOptions {
                phase,
                interval,
                dry_run,
                listen,
                agent: agent.unwrap_or_else(default_agent_name),
            };
            let runtime = runtime()?;
            let summary = runtime.block_on(async {
                let signal = shutdown_signal()
                    .map_err(|e| CheckError::Watch(format!("cannot handle signals: {e}")))?;
                crate::watch::watch(config, options, signal)
                    .await
                    .map_err(|e| match e {
                        crate::watch::WatchError::Check(c) => c,
                        other => CheckError::Watch(other.to_string()),
                    })
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
        Command::Attest {
            phase,
            criterion,
            by,
            note,
            config,
        } => {
            let config = load_config(&config)?;
            attest(&config, phase, criterion, by, note)
        }
        Command::Ledger { config, kind } => {
            let config = load_config(&config)?;
            let records = runtime()?
                .block_on(async {
                    let ledger = crate::ledger::Ledger::open_to_read(&config).await?;
                    ledger.read().await
                })
                .map_err(|e| CheckError::Collect(e.to_string()))?;
            let mut out = std::io::stdout().lock();
            for r in records
                .iter()
                .filter(|r| kind.as_deref().is_none_or(|k| r.kind() == k))
            {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string(r).expect("a record encodes")
                );
            }
            Ok(EXIT_GO)
        }
        Command::Validate { config } => {
            let config = load_config(&config)?;
            let set = GateSet::load_checked(&config)?;
            set.check_plans(&config)?;
            let failed: Vec<String> = set
                .gates()
                .filter_map(|g| {
                    g.loaded
                        .as_ref()
                        .err()
                        .map(|e| format!("gate {}: {}", g.name, crate::text::untrusted_line(e)))
                })
                .collect();
            let profiles: Vec<String> = config
                .params_by_profile
                .variants
                .iter()
                .map(|(p, _)| p.clone().unwrap_or_else(|| "(base)".into()))
                .collect();
            let mut out = String::new();
            for f in &failed {
                let _ = writeln!(out, "{f}");
            }
            let _ = writeln!(
                out,
                "{}: {} gates, {} phases; params checked under {}",
                if failed.is_empty() {
                    "valid"
                } else {
                    "NOT valid"
                },
                set.gates().count(),
                config.phases.len(),
                profiles.join(", ")
            );
            emit(&out)?;
            Ok(if failed.is_empty() {
                EXIT_GO
            } else {
                EXIT_NO_GO
            })
        }
        Command::Gates {
            command: GatesCommand::List { config },
        } => {
            let config = load_config_or_builtins(&config)?;
            emit(&list_gates(&config)?)?;
            Ok(EXIT_GO)
        }
        Command::Gates {
            command:
                GatesCommand::Inspect {
                    gate,
                    config,
                    output,
                },
        } => {
            let mut config = load_config_or_builtins(&config)?;
            let configured = config.gates.contains_key(&gate);
            if !configured {
                if crate::builtin::builtin_gate(&gate).is_none() {
                    return Err(CheckError::Config(ConfigError::Syntax {
                        path: "gates inspect".into(),
                        message: format!(
                            "no gate `{gate}` in the config and no such built-in gate (built-in: {})",
                            crate::builtin::builtin_names().join(", ")
                        ),
                    }));
                }
                config
                    .gates
                    .insert(gate.clone(), builtin_gate_config(&gate));
            }
            // A configured gate is inspected with its params checked (in
            // every profile, like every gate of the config); a bare built-in
            // has no params to check.
            let set = if configured {
                GateSet::load_checked(&config)?
            } else {
                GateSet::load(&config, Some(std::slice::from_ref(&gate)))
            };
            let prepared = set.gate(&gate).expect("loaded just above");
            let value = inspect_json(prepared, configured);
            match output {
                InspectFormat::Json => emit(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&value).expect("encodes")
                ))?,
                InspectFormat::Table => emit(&inspect_table(&value))?,
            }
            Ok(
                if prepared.loaded.is_ok() && (!configured || prepared.params.is_ok()) {
                    EXIT_GO
                } else {
                    EXIT_NO_GO
                },
            )
        }
    }
}

/// Compiles every gate into the on-disk cache in a child process (`gates
/// list`), so the daemon only loads them: the compiler's peak memory goes
/// back to the OS with the child instead of staying in the daemon's heap
/// (about 37 MiB idle instead of 64 MiB; README, Benchmarks). Without a cache, or
/// if the child fails, the daemon compiles them itself.
fn precompile_gates(config: &Config, args: &ConfigArgs) {
    if check::runtime_options(config).cache_dir.is_none() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut command = std::process::Command::new(exe);
    command
        .args(["gates", "list", "--config"])
        .arg(&args.config);
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
        other => {
            tracing::warn!(outcome = ?other, "precompiling the gates in a child failed; compiling them here")
        }
    }
}

/// `host-pid`: unique per process, readable in the lease and the ledger.
fn default_agent_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gatekeeper".into());
    format!("{host}-{}", std::process::id())
}

/// Installs SIGTERM and SIGINT handlers now (inside the runtime); the
/// future resolves on the first of them.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
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

/// The attestations a phase's gates read (their `needs`), by criterion.
fn attestation_names(gates: &GateSet, config: &Config, phase: &str) -> Vec<String> {
    let mut names: Vec<String> = config
        .phases
        .get(phase)
        .map(|p| p.gates.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|g| gates.gate(g)?.params.as_ref().ok())
        .flat_map(|p| &p.needs.attestations)
        .filter(|a| a.phase == phase)
        .map(|a| a.criterion.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `gatekeeper attest`: one attestation record in the configured ledger.
fn attest(
    config: &Config,
    phase: String,
    criterion: String,
    by: String,
    note: Option<String>,
) -> Result<u8, CheckError> {
    check::phase_gates(config, &phase)?;
    let bad = |message: String| {
        CheckError::Config(ConfigError::Syntax {
            path: "attest".into(),
            message,
        })
    };
    if config.ledger.is_none() {
        return Err(bad(
            "the config has no [ledger]: there is nowhere to record an attestation".into(),
        ));
    }
    let gates = GateSet::load_checked(config)?;
    let names = attestation_names(&gates, config, &phase);
    if !names.contains(&criterion) {
        return Err(bad(format!(
            "{phase} has no attestation criterion `{criterion}` (it has: {})",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        )));
    }
    if by.trim().is_empty() {
        return Err(bad("--by must name who attests".into()));
    }
    let record = crate::ledger::Record::Attestation {
        phase: phase.clone(),
        criterion: criterion.clone(),
        by: by.clone(),
        at: chrono::Utc::now(),
        note,
    };
    let where_ = runtime()?.block_on(async {
        let ledger = crate::ledger::Ledger::open(config).await?;
        ledger.append(&record).await?;
        Ok::<_, crate::ledger::LedgerError>(ledger.describe())
    });
    let where_ = where_.map_err(|e| CheckError::Write {
        path: "ledger".into(),
        message: e.to_string(),
    })?;
    emit(&format!(
        "attested {phase} {criterion} by {by} ({where_})\n"
    ))?;
    Ok(EXIT_GO)
}

fn runtime() -> Result<tokio::runtime::Runtime, CheckError> {
    collect::runtime()
        .map_err(|e| CheckError::Collect(format!("cannot start the async runtime: {e}")))
}

fn collect_live(config: &Config) -> Result<Snapshot, CheckError> {
    Ok(runtime()?.block_on(collect::collect(config)))
}

/// A one-shot check's sampling window: one collection every `interval` for
/// `window`; the last is the current snapshot, the others its history.
fn sample_live(
    config: &Config,
    window: std::time::Duration,
    interval: std::time::Duration,
) -> Result<check::Recording, CheckError> {
    let runtime = runtime()?;
    note(&format!(
        "sampling the sources for {} (every {}) for rates and holds",
        format_duration(window),
        format_duration(interval),
    ));
    Ok(wait::sample(window, interval, || {
        runtime.block_on(collect::collect(config))
    }))
}

/// `check --wait`: gates loaded once, one async runtime, a progress line per round on stderr.
fn wait_live(
    config: &Config,
    phase: &str,
    gate_names: &[String],
    options: WaitOptions,
) -> Result<wait::WaitOutcome, CheckError> {
    let runtime = runtime()?;
    let span = tracing::info_span!("check", phase);
    let _enter = span.enter();
    let gates = GateSet::load_checked(config)?;
    let outcome = wait::wait_until_go(
        &gates,
        phase,
        gate_names,
        options,
        || runtime.block_on(collect::collect(config)),
        |round| note(&wait::progress_line(round)),
    );
    if outcome.timed_out {
        note(&format!(
            "{phase}: still {} after {} rounds; gave up at --timeout {}",
            outcome.report.verdict.as_str(),
            outcome.rounds,
            format_duration(options.timeout)
        ));
    }
    Ok(outcome)
}

/// Writes a command's output to stdout. A reader that went away (`| head`)
/// is not an error: the command still exits with its verdict, quietly.
fn emit(text: &str) -> Result<(), CheckError> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CheckError::Write {
            path: "stdout".into(),
            message: e.to_string(),
        }),
    }
}

/// One line for the person at the terminal, on stderr; a closed stderr is ignored.
pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn snapshot_json(snapshot: &Snapshot) -> String {
    serde_json::to_string_pretty(snapshot).expect("a snapshot always encodes")
}

/// One line per source on stderr: `nats: ok (12 ms)`, `postgres: unavailable: …`.
/// The ledger is Gatekeeper's own record, not a source of the world: not listed.
pub fn source_summary(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    for s in snapshot.source_states() {
        if s.status == SourceStatus::NotConfigured || s.name == "ledger" {
            continue;
        }
        let ms = s
            .duration_ms
            .map(|m| format!(" ({m} ms)"))
            .unwrap_or_default();
        let error = s.error.map(|e| format!(": {e}")).unwrap_or_default();
        let _ = writeln!(out, "{}: {}{ms}{error}", s.name, s.status.as_str());
    }
    if out.is_empty() {
        out.push_str("no sources configured\n");
    }
    out
}

/// Writes `DIR/<taken_at>-<phase>.json`: the snapshot, or with history a
/// recording (`{"snapshots":[…]}`, oldest first), as `--snapshot` reads them.
fn record_recording(
    dir: &Path,
    phase: &str,
    recording: &check::Recording,
) -> Result<PathBuf, CheckError> {
    std::fs::create_dir_all(dir).map_err(|e| CheckError::Write {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let stamp = recording.current.taken_at.format("%Y%m%dT%H%M%S%.3fZ");
    let path = dir.join(format!("{stamp}-{phase}.json"));
    let json = if recording.history.is_empty() {
        snapshot_json(&recording.current)
    } else {
        let snapshots: Vec<&Snapshot> = recording
            .history
            .iter()
            .chain([&recording.current])
            .collect();
        serde_json::to_string_pretty(&serde_json::json!({ "snapshots": snapshots }))
            .expect("snapshots always encode")
    };
    write_atomically(&path, json.as_bytes())?;
    tracing::info!(path = %path.display(), "snapshot recorded");
    Ok(path)
}

/// Write to a temporary file beside `path`, then rename: a reader never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CheckError> {
    let err = |e: std::io::Error| CheckError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    tmp.write_all(b"\n").map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

fn load_config(args: &ConfigArgs) -> Result<Config, CheckError> {
    Ok(Config::load(
        &args.config,
        args.profile.as_deref(),
        &ProcessEnv,
    )?)
}

/// The config, or (when the default file is absent) an empty one: listing the
/// built-in gates needs no config.
fn load_config_or_builtins(args: &ConfigArgs) -> Result<Config, CheckError> {
    if args.config.as_os_str() == "gatekeeper.toml"
        && !args.config.exists()
        && args.profile.is_none()
    {
        return Ok(Config::parse("", "(no config)", None)?);
    }
    load_config(args)
}

fn builtin_gate_config(name: &str) -> crate::config::GateConfig {
    crate::config::GateConfig {
        builtin: Some(name.to_owned()),
        wasm: None,
        sha256: None,
        params: toml::Table::new(),
        limits: Default::default(),
    }
}

fn list_gates(original: &Config) -> Result<String, CheckError> {
    let mut config = original.clone();
    for name in crate::builtin::builtin_names() {
        config
            .gates
            .entry(format!("builtin:{name}"))
            .or_insert_with(|| builtin_gate_config(name));
    }
    let set = GateSet::load(&config, None);
    set.check_params(original)?;
    let mut rows = vec![[
        "NAME".to_owned(),
        "IMPLEMENTATION".into(),
        "SOURCES".into(),
        "SHA256".into(),
        "STATUS".into(),
    ]];
    for g in set.gates() {
        let (sources, digest, status) = match &g.loaded {
            Ok(l) => (
                l.metadata().sources.join(","),
                l.digest()[..16].to_owned(),
                "ok".to_owned(),
            ),
            Err(e) => (
                "-".into(),
                "-".into(),
                format!("error: {}", crate::text::untrusted_line(e)),
            ),
        };
        rows.push([
            g.name.clone(),
            crate::text::untrusted_line(&g.implementation),
            sources,
            digest,
            status,
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let _ = writeln!(
            out,
            "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
    }
    Ok(out)
}

/// A gate's description; `configured`: its params come from the config (a
/// bare built-in has none to show).
fn inspect_json(g: &PreparedGate, configured: bool) -> serde_json::Value {
    match &g.loaded {
        Err(e) => {
            serde_json::json!({ "name": g.name, "implementation": g.implementation, "error": e })
        }
        Ok(l) => {
            let lim = l.limits();
            serde_json::json!({
                "name": g.name,
                "implementation": g.implementation,
                "sha256": l.digest(),
                "metadata": l.metadata(),
                "limits": {
                    "fuel": lim.fuel,
                    "deadline_ms": lim.deadline.as_millis() as u64,
                    "memory_bytes": lim.memory_bytes,
                    "stack_bytes": lim.stack_bytes,
                    "output_bytes": lim.output_bytes,
                },
                "params": match (&g.params, configured) {
                    (_, false) => serde_json::Value::Null,
                    (Ok(p), true) => p.value.clone(),
                    (Err(e), true) => serde_json::json!({ "error": e }),
                },
                "reads": match (&g.params, configured) {
                    (Ok(p), true) => serde_json::json!(p.needs.reads.iter().map(ToString::to_string).collect::<Vec<_>>()),
                    _ => serde_json::Value::Null,
                },
            })
        }
    }
}

fn inspect_table(v: &serde_json::Value) -> String {
    let mut out = String::new();
    // Every value may come from the gate: shown through the one sanitizer.
    let s = |p: &str| {
        v.pointer(p)
            .map(|x| {
                crate::text::untrusted_line(
                    &x.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| x.to_string()),
                )
            })
            .unwrap_or_else(|| "-".into())
    };
    let _ = writeln!(out, "gate:            {}", s("/name"));
    let _ = writeln!(out, "implementation:  {}", s("/implementation"));
    if v.get("error").is_some() {
        let _ = writeln!(out, "error:           {}", s("/error"));
        return out;
    }
    let _ = writeln!(out, "version:         {}", s("/metadata/version"));
    let _ = writeln!(out, "description:     {}", s("/metadata/description"));
    let _ = writeln!(out, "sha256:          {}", s("/sha256"));
    let _ = writeln!(out, "sources:         {}", s("/metadata/sources"));
    let _ = writeln!(out, "snapshot schema: {}", s("/metadata/snapshot_schema"));
    let _ = writeln!(
        out,
        "limits:          fuel {}, deadline {} ms, memory {} B, stack {} B, output {} B",
        s("/limits/fuel"),
        s("/limits/deadline_ms"),
        s("/limits/memory_bytes"),
        s("/limits/stack_bytes"),
        s("/limits/output_bytes")
    );
    let _ = writeln!(out, "params accepted:");
    if let Some(params) = v.pointer("/metadata/params").and_then(|p| p.as_array()) {
        for p in params {
            let default = match p.get("default") {
                None => "required".to_owned(),
                Some(serde_json::Value::Null) => "optional".to_owned(),
                Some(d) => format!("default {}", crate::text::untrusted_line(&d.to_string())),
            };
            let _ = writeln!(
                out,
                "  {} ({default}): {}",
                crate::text::untrusted_line(p["name"].as_str().unwrap_or("?")),
                crate::text::untrusted_line(p["description"].as_str().unwrap_or(""))
            );
        }
    }
    let _ = writeln!(out, "params in effect: {}", s("/params"));
    let _ = writeln!(out, "reads:            {}", s("/reads"));
    out
}

/// tracing to stderr: human on a terminal, JSON with `--log-format json`;
/// the filter comes from `RUST_LOG` (default `default_level`: `info` for the
/// daemon, `warn` for one-shot commands).
pub fn init_logging(format: crate::cli::LogFormat, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        crate::cli::LogFormat::Json => builder.json().try_init(),
        crate::cli::LogFormat::Human => builder
            .with_ansi(report::use_color(std::io::stderr().is_terminal()))
            .fmt_fields(one_line_fields())
            .try_init(),
    };
}

/// Human log fields, each value through the one sanitizer: a value (a gate's
/// words in an error, an alert) can never start a line of its own.
fn one_line_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let text = crate::text::untrusted_line(&format!("{value:?}"));
        if field.name() == "message" {
            write!(w, "{text}")
        } else {
            write!(w, "{}={text}", field.name())
        }
    })
    .delimited(" ")
}
