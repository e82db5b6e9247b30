//! `gatekeeper plan PHASE` and `gatekeeper apply PHASE`: a phase's forward
//! steps, planned against the live state ([`crate::apply`]), then run the
//! way `watch` runs a rollback: one actor at a time (the lease, or a file
//! lock with a file ledger), each step recorded, SIGTERM recorded as an
//! interrupted step. Around the steps: the pre-gates (`requires`, default
//! the phase itself) must be go, and afterwards the `verify` phase must go
//! within `verify_timeout`; when a step fails or verify does not go, the
//! phase's `on_failure` plan runs (or an alert is raised).

use super::apply_hold::{release, take_hold};
use super::apply_wait::GateWaiter;
use super::check::{collect_live, sample_live};
use super::watch::shutdown_signal;
use super::{AppError, async_runtime, default_agent_name, emit, load_config, note};
use crate::actions::{Executor, PlanRun};
use crate::apply::plan_phase;
use crate::cli::{ApplyArgs, EXIT_CANNOT_EVALUATE, EXIT_DEFER, EXIT_GO, EXIT_NO_GO, PlanArgs};
use crate::collect;
use crate::config::{Config, DEFAULT_VERIFY_TIMEOUT, PhaseConfig, PlanConfig};
use crate::gate_set::GateSet;
use crate::ledger::{APPLY_TRIGGER, ApplyOutcome, Journal, PlanOutcome, Record};
use crate::metrics::Metrics;
use crate::recording::Recording;
use crate::report::OutputFormat;
use crate::verdict::PhaseReport;
use crate::wait::{self, Stop, WaitOptions};
use gatekeeper_model::{Decision, format_duration};
use std::sync::Arc;
use std::time::Duration;

/// The phase's config, if it has steps.
fn phase_with_steps<'c>(
    config: &'c Config,
    phase: &str,
    command: &'static str,
) -> Result<&'c PhaseConfig, AppError> {
    config.phase_gates(phase)?;
    let p = &config.phases[phase];
    if p.steps.is_empty() {
        return Err(AppError::Usage {
            command,
            message: format!("phase `{phase}` has no steps (`[phases.{phase}] steps = [...]`)"),
        });
    }
    Ok(p)
}

pub(super) fn plan(args: PlanArgs) -> Result<u8, AppError> {
    let config = load_config(&args.config)?;
    phase_with_steps(&config, &args.phase, "plan")?;
    let plan = async_runtime()?.block_on(plan_phase(&config, &args.phase));
    emit(&plan.render())?;
    Ok(if plan.cannot().is_some() {
        EXIT_CANNOT_EVALUATE
    } else if plan.pending() {
        EXIT_DEFER
    } else {
        EXIT_GO
    })
}

/// One live verdict of `phase`, sampled over the phase's `sample` window.
fn evaluate_once(
    config: &Config,
    gates: &GateSet,
    phase: &str,
    interval: Duration,
    stop: &Stop,
) -> Result<PhaseReport, AppError> {
    let names = config.phase_gates(phase)?;
    let window = config.phases[phase].sample.map(|d| d.0).unwrap_or_default();
    let recording = if window.is_zero() {
        Recording {
            current: collect_live(config)?,
            history: Vec::new(),
        }
    } else {
        sample_live(config, window, interval, stop)?
    };
    Ok(gates.evaluate_phase(phase, names, &recording))
}

fn confirm(args: &ApplyArgs, stop: &Stop) -> Result<(), AppError> {
    use std::io::IsTerminal as _;
    if args.yes || args.dry_run {
        return Ok(());
    }
    let refuse = |message: &str| AppError::Usage {
        command: "apply",
        message: message.to_owned(),
    };
    if !std::io::stdin().is_terminal() {
        return Err(refuse(
            "apply changes live systems: pass --yes (or --dry-run) when not at a terminal",
        ));
    }
    note(&format!("apply {}? type `yes` to go on:", args.phase));
    // Read on a thread of its own, so a signal ends the wait for an answer.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut answer = String::new();
        let _ = tx.send(std::io::stdin().read_line(&mut answer).map(|_| answer));
    });
    let answer = loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(read) => break read.map_err(|e| refuse(&format!("cannot read the answer: {e}")))?,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if !stop.requested() => {}
            Err(_) => return Err(refuse("stopped before an answer; nothing was changed")),
        }
    };
    if answer.trim() != "yes" {
        return Err(refuse("not confirmed; nothing was changed"));
    }
    Ok(())
}

pub(super) fn apply(args: ApplyArgs) -> Result<u8, AppError> {
    let config = Arc::new(load_config(&args.config)?);
    let phase = args.phase.clone();
    let phase_config = phase_with_steps(&config, &phase, "apply")?.clone();
    let gates = Arc::new(GateSet::load_checked(&config)?);
    let agent = args.agent.clone().unwrap_or_else(default_agent_name);
    let by = args
        .by
        .clone()
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| agent.clone());
    if agent.trim().is_empty() || by.trim().is_empty() {
        return Err(AppError::Usage {
            command: "apply",
            message: "--agent and --by name who acts: they cannot be empty".into(),
        });
    }
    let runtime = async_runtime()?;
    // SIGTERM and SIGINT from here on: every wait gives way, the outcome is
    // recorded, the lock or lease is released.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let signal = {
        let _in = runtime.enter();
        shutdown_signal().map_err(AppError::Signals)?
    };
    runtime.spawn(async move {
        signal.await;
        let _ = stop_tx.send(true);
    });
    let (hold, fence) = runtime.block_on(take_hold(&config, &agent))?;
    let result = apply_held(
        &args,
        &config,
        &phase_config,
        &gates,
        (&agent, &by),
        fence,
        &runtime,
        stop_rx,
    );
    runtime.block_on(release(hold));
    result
}

#[allow(clippy::too_many_arguments)]
fn apply_held(
    args: &ApplyArgs,
    config: &Arc<Config>,
    phase_config: &PhaseConfig,
    gates: &Arc<GateSet>,
    (agent, by): (&str, &str),
    fence: Option<crate::actions::fence::Fence>,
    runtime: &tokio::runtime::Runtime,
    stop_rx: tokio::sync::watch::Receiver<bool>,
) -> Result<u8, AppError> {
    let phase = args.phase.as_str();
    let stop = Stop::new(stop_rx.clone());
    let stopped = |when: &str| AppError::Usage {
        command: "apply",
        message: format!("{phase}: stopped by a signal {when}; nothing was changed"),
    };
    let plan = runtime.block_on(plan_phase(config, phase));
    emit(&plan.render())?;
    if let Some((item, why)) = plan.cannot() {
        return Err(AppError::Usage {
            command: "apply",
            message: format!(
                "{phase}: step {} ({}) cannot run: {why}; nothing was changed",
                item.step, item.action
            ),
        });
    }
    if stop.requested() {
        return Err(stopped("while planning"));
    }
    confirm(args, &stop)?;
    let metrics = Metrics::new();
    let journal =
        Arc::new(runtime.block_on(Journal::open(config.clone(), metrics.ledger_errors.clone())));
    // Every step is recorded: a ledger that cannot be read (down, its chain
    // broken) or written stops the apply before anything changes.
    let ledger_unusable = |why: String| AppError::Usage {
        command: "apply",
        message: format!(
            "{phase}: the ledger ({}) {why}; apply records every step there, so nothing was changed",
            runtime.block_on(journal.describe())
        ),
    };
    if let Err(e) = runtime.block_on(journal.read()) {
        return Err(ledger_unusable(format!("cannot be read: {e}")));
    }
    let started = chrono::Utc::now();
    let run_id = format!("apply-{phase}-{}", started.format("%Y%m%dT%H%M%S%.3fZ"));
    let finish = |outcome: ApplyOutcome, detail: String| {
        note(&format!("apply {phase}: {} — {detail}", outcome.as_str()));
        runtime.block_on(async {
            journal
                .append(Record::Apply {
                    run: run_id.clone(),
                    phase: phase.to_owned(),
                    outcome,
                    detail: detail.clone(),
                    by: by.to_owned(),
                    at: chrono::Utc::now(),
                    agent: agent.to_owned(),
                })
                .await;
            if outcome == ApplyOutcome::Done {
                journal
                    .append(Record::Attestation {
                        phase: phase.to_owned(),
                        criterion: "applied".into(),
                        by: by.to_owned(),
                        at: chrono::Utc::now(),
                        note: Some(format!("{run_id}: {detail}")),
                    })
                    .await;
            }
            journal.flush().await;
        });
    };

    // Pre-gates: every required phase go, or nothing runs.
    let required = phase_config
        .requires
        .clone()
        .unwrap_or_else(|| vec![phase.to_owned()]);
    let errors_before = metrics.ledger_errors.get();
    finish(
        ApplyOutcome::Started,
        if required.is_empty() {
            "no pre-gates (`requires = []`): the steps run ungated".into()
        } else {
            format!("pre-gates {}", required.join(", "))
        },
    );
    if metrics.ledger_errors.get() != errors_before {
        return Err(ledger_unusable("refused the apply's first record".into()));
    }
    let mut pre_report = None;
    for p in &required {
        let report = evaluate_once(config, gates, p, args.interval, &stop)?;
        if stop.requested() {
            finish(
                ApplyOutcome::Interrupted,
                "stopped by a signal during the pre-gates; nothing was changed".into(),
            );
            return Err(stopped("during the pre-gates"));
        }
        note(&format!("pre-gate {p}: {}", report.verdict.as_str()));
        if report.verdict != Decision::Go {
            emit(&crate::report::render(&report, OutputFormat::Table, false))?;
            finish(
                ApplyOutcome::Blocked,
                format!(
                    "pre-gate {p} is {}; nothing was changed",
                    report.verdict.as_str()
                ),
            );
            return Ok(if report.verdict == Decision::Defer {
                EXIT_DEFER
            } else {
                EXIT_NO_GO
            });
        }
        pre_report = Some(report);
    }
    let verdict_json = pre_report
        .map(|r| crate::report::render(&r, OutputFormat::Json, false))
        .unwrap_or_default();

    let executor = Arc::new(
        Executor::new(
            config.clone(),
            journal.clone(),
            metrics.clone(),
            agent.to_owned(),
            args.dry_run,
            fence,
        )
        .with_waiter(Arc::new(GateWaiter {
            config: config.clone(),
            gates: gates.clone(),
        }))
        .with_progress(),
    );
    let run = PlanRun {
        incident: run_id.clone(),
        incident_at: started,
        plan: phase.to_owned(),
        trigger: APPLY_TRIGGER.into(),
        verdict_json,
        phase: phase.to_owned(),
        epoch: None,
        forward: true,
    };
    let steps = PlanConfig {
        phase: Some(phase.to_owned()),
        on: Vec::new(),
        steps: phase_config.steps.clone(),
    };
    let (outcome, detail) = runtime.block_on(executor.run_plan(&run, &steps, stop_rx.clone()));
    // A failed step or an unverified phase: `on_failure` runs, then the
    // apply's outcome is recorded.
    let failed = |outcome: ApplyOutcome, why: String| {
        on_failure(
            config,
            phase_config,
            &executor,
            &run,
            runtime,
            stop_rx.clone(),
            &why,
        );
        finish(outcome, why);
    };
    match outcome {
        PlanOutcome::DryRun => {
            finish(
                ApplyOutcome::DryRun,
                format!("{detail} recorded as would-run; nothing was changed"),
            );
            return Ok(EXIT_GO);
        }
        PlanOutcome::Interrupted | PlanOutcome::Fenced => {
            finish(ApplyOutcome::Interrupted, detail.clone());
            return Err(AppError::Usage {
                command: "apply",
                message: format!("{phase}: {detail}"),
            });
        }
        PlanOutcome::Done => {}
        _ => {
            failed(ApplyOutcome::Failed, detail.clone());
            return Err(AppError::Usage {
                command: "apply",
                message: format!("{phase}: {detail}"),
            });
        }
    }

    // Post-gates: the verify phase must go within its timeout.
    let Some(verify) = &phase_config.verify else {
        finish(ApplyOutcome::Done, format!("{detail}; no verify phase"));
        return Ok(EXIT_GO);
    };
    let timeout = phase_config
        .verify_timeout
        .map_or(DEFAULT_VERIFY_TIMEOUT, |t| t.0);
    note(&format!(
        "verifying: waiting up to {} for {verify} to be go",
        format_duration(timeout)
    ));
    let names = config.phase_gates(verify)?;
    let outcome = wait::wait_until_go(
        gates,
        verify,
        names,
        WaitOptions {
            interval: args.interval,
            timeout,
            stop: stop.clone(),
        },
        || runtime.block_on(collect::collect(config)),
        |round| note(&format!("  verify: {}", wait::progress_line(round))),
    );
    if outcome.interrupted {
        let why = format!(
            "{detail}; stopped by a signal while verifying {verify}: the steps are applied, not verified, and on_failure did not run"
        );
        finish(ApplyOutcome::Interrupted, why.clone());
        return Err(AppError::Usage {
            command: "apply",
            message: format!("{phase}: {why}"),
        });
    }
    if outcome.report.verdict == Decision::Go {
        finish(
            ApplyOutcome::Done,
            format!("{detail}; {verify} go after {} round(s)", outcome.rounds),
        );
        return Ok(EXIT_GO);
    }
    emit(&crate::report::render(
        &outcome.report,
        OutputFormat::Table,
        false,
    ))?;
    let why = format!(
        "{verify} still {} after {}",
        outcome.report.verdict.as_str(),
        format_duration(timeout)
    );
    failed(ApplyOutcome::NotVerified, why);
    Ok(EXIT_NO_GO)
}

/// A failed or unverified apply: the phase's `on_failure` plan, or an alert.
fn on_failure(
    config: &Config,
    phase_config: &PhaseConfig,
    executor: &Executor,
    run: &PlanRun,
    runtime: &tokio::runtime::Runtime,
    stop: tokio::sync::watch::Receiver<bool>,
    why: &str,
) {
    let wc = config.watch.clone().unwrap_or_default();
    let Some(name) = &phase_config.on_failure else {
        note(&format!(
            "apply {}: {why}; no on_failure plan: stopping and alerting",
            run.phase
        ));
        runtime.block_on(async {
            executor
                .alert(
                    run,
                    format!("apply {} failed: {why}; no on_failure plan ran", run.phase),
                    &wc.alert,
                )
                .await
        });
        return;
    };
    note(&format!(
        "apply {}: {why}; running on_failure plan {name}",
        run.phase
    ));
    let plan = &wc.plans[name];
    let rollback = PlanRun {
        plan: name.clone(),
        trigger: format!("apply/{}", run.phase),
        forward: false,
        ..run.clone()
    };
    let (outcome, detail) = runtime.block_on(executor.run_plan(&rollback, plan, stop));
    note(&format!(
        "on_failure plan {name}: {} — {detail}",
        outcome.as_str()
    ));
}
