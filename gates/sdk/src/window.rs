//! Rates and holds over the history window.
//!
//! The window is `input.history` (oldest first) followed by the current
//! snapshot. When the window is too short, or a sample in it could not be
//! read, the answer is unknown (`Err` with the reason), never a pass.

use crate::{Input, Snapshot, Timestamp};
use gatekeeper_model::{format_duration_ms, millis_between};

/// Every sample in the window, oldest first, current last.
pub fn samples(input: &Input) -> impl Iterator<Item = &Snapshot> {
    input.history.iter().chain(std::iter::once(&input.snapshot))
}

/// The increase of a counter per minute over the last `window_ms`.
///
/// `counter` reads the counter from a snapshot (`Err` = could not read).
/// A counter that goes down is treated as a reset, as Prometheus does.
pub fn rate_per_minute(
    input: &Input,
    window_ms: u64,
    counter: impl Fn(&Snapshot) -> Result<f64, String>,
) -> Result<f64, String> {
    let all: Vec<&Snapshot> = samples(input).collect();
    rate_at(&all, all.len() - 1, window_ms, counter)
}

/// [`rate_per_minute`] as seen at `samples[at]`: the window ends there.
/// `samples` is oldest first.
pub fn rate_at(
    samples: &[&Snapshot],
    at: usize,
    window_ms: u64,
    counter: impl Fn(&Snapshot) -> Result<f64, String>,
) -> Result<f64, String> {
    increase_at(samples, at, window_ms, counter)
        .map(|(increase, covered)| increase * 60_000.0 / covered as f64)
}

/// The increase of a counter over the window ending at `samples[at]`, and the
/// milliseconds the samples really cover. Resets count from zero.
pub fn increase_at(
    samples: &[&Snapshot],
    at: usize,
    window_ms: u64,
    counter: impl Fn(&Snapshot) -> Result<f64, String>,
) -> Result<(f64, u64), String> {
    let now = samples[at].taken_at;
    let age = |s: &Snapshot| millis_between(s.taken_at, now);
    // Start from the newest sample at or before the window's start when one is
    // close enough (≤ 1.5 windows back), so irregular sampling still covers the
    // window; else from the oldest sample inside it.
    let base = samples[..=at]
        .iter()
        .rposition(|s| age(s) >= window_ms as i64)
        .filter(|&i| age(samples[i]) as f64 <= window_ms as f64 * 1.5);
    let in_window: Vec<&Snapshot> = samples[..=at]
        .iter()
        .enumerate()
        .filter(|(i, s)| {
            Some(*i) == base || (base.is_none_or(|b| *i > b) && age(s) <= window_ms as i64)
        })
        .map(|(_, s)| *s)
        .collect();
    let oldest = in_window
        .first()
        .copied()
        .ok_or("no samples in the window")?;
    // The window must be covered: the oldest sample must be at most one
    // sample interval after its start (we accept 10% slack).
    let covered = millis_between(oldest.taken_at, now);
    if (covered as f64) < window_ms as f64 * 0.9 || in_window.len() < 2 || covered <= 0 {
        return Err(format!(
            "need {} of history for a rate, have {}",
            format_duration_ms(window_ms),
            format_duration_ms(covered.max(0) as u64)
        ));
    }
    let mut increase = 0.0;
    let mut previous: Option<f64> = None;
    for snap in &in_window {
        let value = counter(snap).map_err(|e| {
            format!(
                "at {}: {e}",
                gatekeeper_model::format_timestamp(snap.taken_at)
            )
        })?;
        if let Some(prev) = previous {
            increase += if value >= prev { value - prev } else { value };
        }
        previous = Some(value);
    }
    Ok((increase, covered as u64))
}

/// Whether a condition has held, without a break, for at least `for_ms`.
/// `since` is always the earliest sample of the unbroken run that ends now,
/// as far back as the window reaches.
#[derive(Debug, Clone, PartialEq)]
pub enum Hold {
    /// It is true now and has been since `since`, for at least the duration.
    /// `since_window_start`: the run reaches the window's oldest sample, so
    /// it may have begun earlier than `since`.
    Held {
        since: Timestamp,
        since_window_start: bool,
    },
    /// It is true now, since `since`, but not for long enough yet (or the
    /// window does not reach back far enough to tell).
    Pending { since: Timestamp, held_ms: u64 },
    /// It is false now.
    NotHeld,
}

/// Walks back from the current snapshot while `condition` is true, to the
/// start of the unbroken run.
pub fn hold(
    input: &Input,
    for_ms: u64,
    condition: impl Fn(&Snapshot) -> Result<bool, String>,
) -> Result<Hold, String> {
    let all: Vec<&Snapshot> = samples(input).collect();
    hold_at(&all, for_ms, |i| condition(all[i]))
}

/// [`hold`] over `samples` (oldest first, the last is now), with the
/// condition asked by index, for conditions that look back themselves (rates).
pub fn hold_at(
    samples: &[&Snapshot],
    for_ms: u64,
    condition: impl Fn(usize) -> Result<bool, String>,
) -> Result<Hold, String> {
    let Some(last) = samples.last() else {
        return Ok(Hold::NotHeld);
    };
    let now = last.taken_at;
    let mut since: Option<Timestamp> = None;
    let mut from_start = false;
    for (i, snap) in samples.iter().enumerate().rev() {
        let age = millis_between(snap.taken_at, now);
        match condition(i) {
            Ok(true) => {
                since = Some(snap.taken_at);
                from_start = i == 0;
            }
            Ok(false) => break,
            // An unreadable sample inside the hold period breaks the
            // evidence; further back, it only ends the run.
            Err(e) if since.is_none() || (age as u64) <= for_ms => return Err(e),
            Err(_) => break,
        }
    }
    Ok(match since {
        None => Hold::NotHeld,
        Some(since) => {
            let held_ms = millis_between(since, now).max(0) as u64;
            if held_ms >= for_ms {
                Hold::Held {
                    since,
                    since_window_start: from_start,
                }
            } else {
                Hold::Pending { since, held_ms }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatekeeper_model::{PostgresFacts, Source, parse_timestamp};

    fn snap(at: &str, value: Option<f64>) -> Snapshot {
        let mut s = Snapshot::empty(parse_timestamp(at).unwrap());
        s.postgres = match value {
            Some(v) => Source::ok(PostgresFacts {
                ping_ms: Some(v),
                ..Default::default()
            }),
            None => Source::unavailable("down"),
        };
        s
    }

    fn input(points: &[(&str, Option<f64>)]) -> Input {
        let mut snaps: Vec<Snapshot> = points.iter().map(|(t, v)| snap(t, *v)).collect();
        let current = snaps.pop().unwrap();
        Input {
            snapshot: current,
            history: snaps,
            params: serde_json::json!({}),
        }
    }

    fn value(s: &Snapshot) -> Result<f64, String> {
        let pg = s.postgres.usable("postgres")?;
        pg.ping_ms.ok_or_else(|| "not reported".to_owned())
    }

    #[test]
    fn rate_over_covered_window_with_reset() {
        let i = input(&[
            ("2025-10-02T10:00:00Z", Some(100.0)),
            ("2025-10-02T10:02:00Z", Some(110.0)),
            ("2025-10-02T10:03:00Z", Some(4.0)), // reset: counts 4
            ("2025-10-02T10:05:00Z", Some(10.0)),
        ]);
        let rate = rate_per_minute(&i, 300_000, value).unwrap();
        assert!((rate - 4.0).abs() < 1e-9, "{rate}");
    }

    #[test]
    fn irregular_samples_start_from_the_one_before_the_window() {
        // A slow round: nothing between 10:00:00 and 10:00:50 inside a 1m
        // window ending 10:01:10; 10:00:00 (70 s back) is the base.
        let i = input(&[
            ("2025-10-02T10:00:00Z", Some(0.0)),
            ("2025-10-02T10:00:50Z", Some(50.0)),
            ("2025-10-02T10:01:10Z", Some(70.0)),
        ]);
        let rate = rate_per_minute(&i, 60_000, value).unwrap();
        assert!((rate - 60.0).abs() < 1e-9, "{rate}");
        // A base more than 1.5 windows back is not used.
        let i = input(&[
            ("2025-10-02T10:00:00Z", Some(0.0)),
            ("2025-10-02T10:01:50Z", Some(50.0)),
            ("2025-10-02T10:02:00Z", Some(70.0)),
        ]);
        assert_eq!(
            rate_per_minute(&i, 60_000, value).unwrap_err(),
            "need 1m of history for a rate, have 10s"
        );
    }

    #[test]
    fn rate_without_enough_history_is_unknown() {
        let i = input(&[
            ("2025-10-02T10:04:00Z", Some(1.0)),
            ("2025-10-02T10:05:00Z", Some(2.0)),
        ]);
        assert_eq!(
            rate_per_minute(&i, 300_000, value).unwrap_err(),
            "need 5m of history for a rate, have 1m"
        );
    }

    #[test]
    fn rate_with_unreadable_sample_is_unknown() {
        let i = input(&[
            ("2025-10-02T10:00:00Z", Some(1.0)),
            ("2025-10-02T10:02:00Z", None),
            ("2025-10-02T10:05:00Z", Some(2.0)),
        ]);
        let err = rate_per_minute(&i, 300_000, value).unwrap_err();
        assert_eq!(
            err,
            "at 2025-10-02T10:02:00Z: postgres source unavailable: down"
        );
    }

    #[test]
    fn hold_states() {
        let high = |s: &Snapshot| value(s).map(|v| v > 10.0);
        let held = input(&[
            ("2025-10-02T10:00:00Z", Some(1.0)),
            ("2025-10-02T10:01:00Z", Some(20.0)),
            ("2025-10-02T10:04:00Z", Some(20.0)),
            ("2025-10-02T10:06:00Z", Some(30.0)),
        ]);
        assert_eq!(
            hold(&held, 300_000, high).unwrap(),
            Hold::Held {
                since: parse_timestamp("2025-10-02T10:01:00Z").unwrap(),
                since_window_start: false,
            }
        );
        // `since` is the run's real start, not `now - for`: a 1-minute hold
        // over a run that began at 10:01 says 10:01.
        assert_eq!(
            hold(&held, 60_000, high).unwrap(),
            Hold::Held {
                since: parse_timestamp("2025-10-02T10:01:00Z").unwrap(),
                since_window_start: false,
            }
        );
        // A run that reaches the window's first sample says so.
        let whole = input(&[
            ("2025-10-02T10:01:00Z", Some(20.0)),
            ("2025-10-02T10:06:00Z", Some(30.0)),
        ]);
        assert_eq!(
            hold(&whole, 60_000, high).unwrap(),
            Hold::Held {
                since: parse_timestamp("2025-10-02T10:01:00Z").unwrap(),
                since_window_start: true,
            }
        );
        assert_eq!(
            hold(&held, 600_000, high).unwrap(),
            Hold::Pending {
                since: parse_timestamp("2025-10-02T10:01:00Z").unwrap(),
                held_ms: 300_000
            }
        );
        let not = input(&[
            ("2025-10-02T10:00:00Z", Some(20.0)),
            ("2025-10-02T10:06:00Z", Some(1.0)),
        ]);
        assert_eq!(hold(&not, 300_000, high).unwrap(), Hold::NotHeld);
        let broken = input(&[
            ("2025-10-02T10:04:00Z", None),
            ("2025-10-02T10:06:00Z", Some(20.0)),
        ]);
        assert!(hold(&broken, 300_000, high).is_err());
    }
}
