//! `check --wait`: re-collect and re-evaluate a phase until it is go or the
//! timeout passes — the seeds' "wait until the old consumer is drained" loop.
//!
//! The gates are loaded once; every round collects a fresh snapshot. Earlier
//! rounds become the recording's history (bounded), so gates that read rates
//! and holds see the window the wait itself has sampled.

use crate::gate_set::GateSet;
use crate::history::History;
use crate::recording::Recording;
use crate::text::untrusted_line;
use crate::verdict::PhaseReport;
use gatekeeper_model::{CriterionStatus, Decision, Snapshot};
use std::time::{Duration, Instant};

/// Snapshots of earlier rounds kept as history.
pub const MAX_HISTORY: usize = 120;

#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// Time between the start of one round and the next.
    pub interval: Duration,
    /// Give up after this long (the last round, at the deadline, stands).
    pub timeout: Duration,
    /// A stop request (SIGTERM) the wait gives way to at once.
    pub stop: Stop,
}

/// A stop request (SIGTERM, SIGINT) that waits and sampling windows give
/// way to within 50 ms. The default never stops.
#[derive(Debug, Clone, Default)]
pub struct Stop(Option<tokio::sync::watch::Receiver<bool>>);

impl Stop {
    pub fn new(requested: tokio::sync::watch::Receiver<bool>) -> Self {
        Stop(Some(requested))
    }

    pub fn requested(&self) -> bool {
        self.0.as_ref().is_some_and(|r| *r.borrow())
    }

    /// Sleeps `d`, or less when a stop is requested. True: stop.
    pub fn sleep(&self, d: Duration) -> bool {
        if self.0.is_none() {
            std::thread::sleep(d);
            return false;
        }
        let end = Instant::now() + d;
        loop {
            if self.requested() {
                return true;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}

/// What one round found, for the progress line.
#[derive(Debug)]
pub struct Round<'a> {
    pub number: usize,
    pub elapsed: Duration,
    pub report: &'a PhaseReport,
}

/// The last round: its report and the recording it was decided on.
#[derive(Debug)]
pub struct WaitOutcome {
    pub report: PhaseReport,
    pub recording: Recording,
    pub rounds: usize,
    pub timed_out: bool,
    /// A stop request ended the wait before go or the timeout.
    pub interrupted: bool,
}

/// Runs rounds until go or `options.timeout` (a last round at the deadline
/// when the interval would pass it), or a stop request. `collect` gives each
/// round's snapshot; `progress` is told about every round that is not go.
pub fn wait_until_go(
    gates: &GateSet,
    phase: &str,
    gate_names: &[String],
    options: WaitOptions,
    mut collect: impl FnMut() -> Snapshot,
    mut progress: impl FnMut(&Round<'_>),
) -> WaitOutcome {
    let start = Instant::now();
    let mut history = History::new(MAX_HISTORY);
    let mut rounds = 0;
    loop {
        let round_start = Instant::now();
        rounds += 1;
        let mut current = collect();
        current.interval_ms = Some(options.interval.as_millis() as u64);
        let report = gates.evaluate_kept(phase, gate_names, &current, &history);
        let elapsed = start.elapsed();
        let left = options.timeout.saturating_sub(elapsed);
        let stopped = options.stop.requested();
        if report.verdict == Decision::Go || left.is_zero() || stopped {
            return WaitOutcome {
                timed_out: report.verdict != Decision::Go && !stopped,
                interrupted: report.verdict != Decision::Go && stopped,
                report,
                recording: Recording {
                    current,
                    history: history.into_vec(),
                },
                rounds,
            };
        }
        progress(&Round {
            number: rounds,
            elapsed,
            report: &report,
        });
        history.push(current);
        // The next round, or one at the deadline if that comes first.
        let pause = options
            .interval
            .saturating_sub(round_start.elapsed())
            .min(left);
        // A stop during the pause ends the wait at the next round's check.
        options.stop.sleep(pause);
    }
}

/// Collects every `interval` until the snapshots span `window` (by their own
/// `taken_at`, the clock gates use): the last snapshot is current, the earlier
/// ones (at most [`MAX_HISTORY`], the newest kept) its history.
/// A stop request ends the window early (the caller asks `stop`).
pub fn sample(
    window: Duration,
    interval: Duration,
    stop: &Stop,
    mut collect: impl FnMut() -> Snapshot,
) -> Recording {
    let start = Instant::now();
    // Never more samples than the history keeps: widen the interval instead.
    let interval = interval
        .max(Duration::from_millis(10))
        .max(window / MAX_HISTORY as u32);
    let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    // Past this, stop even if the snapshots' clock has not moved enough.
    let give_up = window * 2 + Duration::from_secs(30);
    // Each snapshot says the interval it was sampled at (holds and rates
    // do not reach across a longer gap).
    let mut collect = || {
        let mut s = collect();
        s.interval_ms = Some(interval.as_millis() as u64);
        s
    };
    let mut history = History::new(MAX_HISTORY);
    let mut current = collect();
    let first = current.taken_at;
    let mut next = start;
    while gatekeeper_model::millis_between(first, current.taken_at) < window_ms
        && start.elapsed() < give_up
    {
        next += interval;
        if stop.sleep(next.saturating_duration_since(Instant::now())) {
            break;
        }
        history.push(std::mem::replace(&mut current, collect()));
    }
    Recording {
        current,
        history: history.into_vec(),
    }
}

/// `phase-2 no-go after 3 rounds (10s): legacy-consumer-drained: 37 pending; …`
pub fn progress_line(round: &Round<'_>) -> String {
    let mut open = Vec::new();
    for gate in &round.report.gates {
        if let Some(error) = &gate.error {
            open.push(format!("{}: error: {}", gate.name, untrusted_line(error)));
        }
        for c in &gate.criteria {
            if c.status != CriterionStatus::Pass {
                let detail = c.observed.as_deref().filter(|o| !o.is_empty() && *o != "-");
                let text = match detail {
                    Some(o) if c.status == CriterionStatus::Fail => {
                        format!("{} ({})", untrusted_line(&c.message), untrusted_line(o))
                    }
                    _ => untrusted_line(&c.message),
                };
                open.push(format!("{}: {}", c.id, text));
            }
        }
    }
    format!(
        "{} {} after {} round{} ({:.1}s): {}",
        round.report.phase,
        round.report.verdict.as_str(),
        round.number,
        if round.number == 1 { "" } else { "s" },
        round.elapsed.as_secs_f64(),
        if open.is_empty() {
            "nothing open".to_owned()
        } else {
            open.join("; ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use gatekeeper_model::{NatsFacts, Source, StreamConfig, StreamFacts, Timestamp};

    const CONFIG: &str = r#"
[runtime]
cache = false
[gates.dlq]
builtin = "stream-topology"
params = { streams = [{ name = "AA_DLQ", id = "dlq-stream-ready", subjects = ["dlq.>"] }] }
[phases.phase-0]
gates = ["dlq"]
"#;

    fn snapshot(second: i64, dlq: bool) -> Snapshot {
        let mut s = Snapshot::empty(Timestamp::from_timestamp(1_760_000_000 + second, 0).unwrap());
        let streams = if dlq {
            vec![StreamFacts {
                name: "AA_DLQ".into(),
                config: Some(StreamConfig {
                    subjects: vec!["dlq.>".into()],
                    ..StreamConfig::default()
                }),
                consumers_complete: true,
                ..StreamFacts::default()
            }]
        } else {
            Vec::new()
        };
        s.nats = Source::ok(NatsFacts {
            streams,
            streams_complete: true,
            ..NatsFacts::default()
        });
        s
    }

    #[test]
    fn sampling_covers_the_window_and_keeps_order() {
        let start = std::time::Instant::now();
        let t0 = Timestamp::from_timestamp(1_760_000_000, 0).unwrap();
        let clock = || {
            Snapshot::empty(t0 + chrono::Duration::milliseconds(start.elapsed().as_millis() as i64))
        };
        let r = sample(
            Duration::from_millis(300),
            Duration::from_millis(100),
            &Stop::default(),
            clock,
        );
        assert!(
            (1..=4).contains(&r.history.len()),
            "{} samples",
            r.history.len()
        );
        let span = gatekeeper_model::millis_between(r.history[0].taken_at, r.current.taken_at);
        assert!(
            span >= 300,
            "the samples span {span} ms, not the 300 ms window"
        );
        assert!(r.history.windows(2).all(|w| w[0].taken_at <= w[1].taken_at));
        // A long window at a short interval never keeps more than MAX_HISTORY.
        let n = std::cell::Cell::new(0u32);
        let r = sample(
            Duration::from_millis(1300),
            Duration::from_millis(1),
            &Stop::default(),
            || {
                n.set(n.get() + 1);
                clock()
            },
        );
        assert!(r.history.len() <= MAX_HISTORY);
        assert!(
            n.get() as usize <= MAX_HISTORY + 2,
            "{} collections",
            n.get()
        );
    }

    /// The `dlq` gate of [`CONFIG`], loaded, and the names to wait on.
    fn dlq_gates() -> (Vec<String>, GateSet) {
        let config = Config::parse(CONFIG, "t.toml", None).unwrap();
        let names = vec!["dlq".to_owned()];
        let gates = GateSet::load(&config, Some(&names));
        (names, gates)
    }

    #[test]
    fn waits_through_no_go_rounds_until_go_keeping_them_as_history() {
        let (names, gates) = dlq_gates();
        let mut round = 0;
        let mut lines = Vec::new();
        let outcome = wait_until_go(
            &gates,
            "phase-0",
            &names,
            WaitOptions {
                interval: Duration::ZERO,
                timeout: Duration::from_secs(60),
                stop: Stop::default(),
            },
            || {
                round += 1;
                snapshot(round, round == 3)
            },
            |r| lines.push(progress_line(r)),
        );
        assert_eq!(outcome.report.verdict, Decision::Go);
        assert_eq!((outcome.rounds, outcome.timed_out), (3, false));
        assert_eq!(outcome.recording.history.len(), 2);
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with("phase-0 no-go after 1 round ("),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("): dlq-stream-ready: "), "{}", lines[0]);
        assert!(
            lines[1].starts_with("phase-0 no-go after 2 rounds ("),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn gives_up_at_the_timeout_with_the_last_verdict() {
        let (names, gates) = dlq_gates();
        let outcome = wait_until_go(
            &gates,
            "phase-0",
            &names,
            WaitOptions {
                interval: Duration::from_secs(1),
                timeout: Duration::ZERO,
                stop: Stop::default(),
            },
            || snapshot(0, false),
            |_| panic!("no progress line after the last round"),
        );
        assert_eq!(outcome.report.verdict, Decision::NoGo);
        assert_eq!((outcome.rounds, outcome.timed_out), (1, true));
    }

    #[test]
    fn an_interval_past_the_deadline_still_checks_at_the_deadline() {
        let (names, gates) = dlq_gates();
        let mut round = 0;
        let outcome = wait_until_go(
            &gates,
            "phase-0",
            &names,
            WaitOptions {
                interval: Duration::from_secs(3600),
                timeout: Duration::from_millis(200),
                stop: Stop::default(),
            },
            || {
                round += 1;
                snapshot(round, round == 2)
            },
            |_| {},
        );
        assert_eq!(outcome.report.verdict, Decision::Go);
        assert_eq!((outcome.rounds, outcome.timed_out), (2, false));
    }

    #[test]
    fn a_stop_request_ends_the_wait_as_interrupted() {
        let (names, gates) = dlq_gates();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let outcome = wait_until_go(
            &gates,
            "phase-0",
            &names,
            WaitOptions {
                interval: Duration::from_secs(3600),
                timeout: Duration::from_secs(7200),
                stop: Stop::new(rx),
            },
            || snapshot(0, false),
            |_| {
                tx.send(true).unwrap();
            },
        );
        assert_eq!(outcome.report.verdict, Decision::NoGo);
        assert_eq!(
            (outcome.rounds, outcome.timed_out, outcome.interrupted),
            (2, false, true)
        );
    }
}
