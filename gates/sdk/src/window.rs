//! Rates and holds over the history window.
//!
//! The window is `input.history` (oldest first) followed by the current
//! snapshot. When the window is too short, or a sample in it could not be
//! read, the answer is unknown (`Err` with the reason), never a pass.
//!
//! Two kinds of series, two families of helpers — use the one for the kind
//! you read:
//! - **counters** only go up, except when they reset (a stream's
//!   `last_seq`, a Prometheus `_total`): [`rate_per_minute`], [`rate_at`],
//!   [`increase_at`]. A value that goes down is taken as a reset to zero.
//! - **gauges** go up and down (a stream's `messages`, a consumer's
//!   pending, a table's row count): [`change_per_minute`] (net, signed),
//!   [`growth_per_minute`] (only the rises: what arrived, when things also
//!   leave), [`min_max`]. A counter helper on a gauge misreads every drop as a
//!   reset: 40, 42, 38, 40, 41, 43 a minute apart is 9/min as a counter,
//!   1.4/min of growth and 0.6/min of change as the gauge it is.

use crate::{Input, Snapshot, Timestamp};
use gatekeeper_model::{format_duration_ms, millis_between};

/// Every sample in the window, oldest first, current last.
pub fn samples(input: &Input) -> impl Iterator<Item = &Snapshot> {
    input.history.iter().chain(std::iter::once(&input.snapshot))
}

/// **Counters**: the increase per minute over the last `window_ms`.
///
/// `counter` reads the counter from a snapshot (`Err` = could not read).
/// A counter that goes down is treated as a reset, as Prometheus does; for
/// a gauge use [`change_per_minute`] or [`growth_per_minute`].
pub fn rate_per_minute(
    input: &Input,
    window_ms: u64,
    counter: impl Fn(&Snapshot) -> Result<f64, String>,
) -> Result<f64, String> {
    let all: Vec<&Snapshot> = samples(input).collect();
    rate_at(&all, all.len() - 1, window_ms, counter)
}

/// **Counters**: [`rate_per_minute`] as seen at `samples[at]`: the window
/// ends there. `samples` is oldest first.
pub fn rate_at(
    samples: &[&Snapshot],
    at: usize,
    window_ms: u64,
    counter: impl Fn(&Snapshot) -> Result<f64, String>,
) -> Result<f64, String> {
    increase_at(samples, at, window_ms, counter)
        .map(|(increase, covered)| increase * 60_000.0 / covered as f64)
}

/// **Counters**: the increase over the window ending at `samples[at]`, and
/// the milliseconds the samples really cover. Resets count from zero.
pub fn increase_at(
    samples: &[&Snapshot],
    at: usize,
    window_ms: u64,
    counter: impl Fn(&Snapshot) -> Result<f64, String>,
) -> Result<(f64, u64), String> {
    let (values, covered) = window_values(samples, at, window_ms, counter)?;
    let increase = values
        .windows(2)
        .map(|w| if w[1] >= w[0] { w[1] - w[0] } else { w[1] })
        .sum();
    Ok((increase, covered))
}

/// **Gauges**: the net change (last − first, signed) over the window ending
/// at `samples[at]`, and the milliseconds it covers.
pub fn change_at(
    samples: &[&Snapshot],
    at: usize,
    window_ms: u64,
    gauge: impl Fn(&Snapshot) -> Result<f64, String>,
) -> Result<(f64, u64), String> {
    let (values, covered) = window_values(samples, at, window_ms, gauge)?;
    Ok((values[values.len() - 1] - values[0], covered))
}

/// **Gauges**: the sum of the rises (drops ignored) over the window ending
/// at `samples[at]` — what arrived, when things also leave — and the
/// milliseconds it covers.
pub fn growth_at(
    samples: &[&Snapshot],
    at: usize,
    window_ms: u64,
    gauge: impl Fn(&Snapshot) -> Result<f64, String>,
) -> Result<(f64, u64), String> {
    let (values, covered) = window_values(samples, at, window_ms, gauge)?;
    let growth = values.windows(2).map(|w| (w[1] - w[0]).max(0.0)).sum();
    Ok((growth, covered))
}

/// **Gauges**: the net change per minute over the last `window_ms`.
pub fn change_per_minute(
    input: &Input,
    window_ms: u64,
    gauge: impl Fn(&Snapshot) -> Result<f64, String>,
) -> Result<f64, String> {
    let all: Vec<&Snapshot> = samples(input).collect();
    change_at(&all, all.len() - 1, window_ms, gauge).map(|(c, ms)| c * 60_000.0 / ms as f64)
}

/// **Gauges**: the rises per minute over the last `window_ms`.
pub fn growth_per_minute(
    input: &Input,
    window_ms: u64,
    gauge: impl Fn(&Snapshot) -> Result<f64, String>,
) -> Result<f64, String> {
    let all: Vec<&Snapshot> = samples(input).collect();
    growth_at(&all, all.len() - 1, window_ms, gauge).map(|(g, ms)| g * 60_000.0 / ms as f64)
}

/// **Gauges** (or anything): the lowest and highest value over the last
/// `window_ms`.
pub fn min_max(
    input: &Input,
    window_ms: u64,
    value: impl Fn(&Snapshot) -> Result<f64, String>,
) -> Result<(f64, f64), String> {
    let all: Vec<&Snapshot> = samples(input).collect();
    let (values, _) = window_values(&all, all.len() - 1, window_ms, value)?;
    Ok(values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        }))
}

/// The values of the samples of the window ending at `samples[at]`, oldest
/// first, and the milliseconds they cover. The window must be covered: its
/// oldest sample at most one sample interval after its start (10 % slack);
/// it starts from the newest sample at or before the window's start when one
/// is close enough (≤ 1.5 windows back), so irregular sampling still covers
/// it. Any sample that cannot be read makes the whole answer unknown.
fn window_values(
    samples: &[&Snapshot],
    at: usize,
    window_ms: u64,
    read: impl Fn(&Snapshot) -> Result<f64, String>,
) -> Result<(Vec<f64>, u64), String> {
    let now = samples[at].taken_at;
    let age = |s: &Snapshot| millis_between(s.taken_at, now);
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
    let covered = millis_between(oldest.taken_at, now);
    if (covered as f64) < window_ms as f64 * 0.9 || in_window.len() < 2 || covered <= 0 {
        return Err(format!(
            "need {} of history for a rate, have {}",
            format_duration_ms(window_ms),
            format_duration_ms(covered.max(0) as u64)
        ));
    }
    let values = in_window
        .iter()
        .map(|snap| {
            read(snap).map_err(|e| {
                format!(
                    "at {}: {e}",
                    gatekeeper_model::format_timestamp(snap.taken_at)
                )
            })
        })
        .collect::<Result<Vec<f64>, String>>()?;
    Ok((values, covered as u64))
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

    /// The series: a gauge read as a counter takes every drop for a
    /// reset.
    #[test]
    fn gauges_have_their_own_helpers() {
        let i = input(&[
            ("2025-10-02T10:00:00Z", Some(40.0)),
            ("2025-10-02T10:01:00Z", Some(42.0)),
            ("2025-10-02T10:02:00Z", Some(38.0)),
            ("2025-10-02T10:03:00Z", Some(40.0)),
            ("2025-10-02T10:04:00Z", Some(41.0)),
            ("2025-10-02T10:05:00Z", Some(43.0)),
        ]);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        let counter = rate_per_minute(&i, 300_000, value).unwrap();
        assert!(close(counter, 9.0), "{counter}");
        let growth = growth_per_minute(&i, 300_000, value).unwrap();
        assert!(close(growth, 1.4), "{growth}");
        let change = change_per_minute(&i, 300_000, value).unwrap();
        assert!(close(change, 0.6), "{change}");
        assert_eq!(min_max(&i, 300_000, value).unwrap(), (38.0, 43.0));
        // Unknown, never a number, when the window is short or a sample is unread.
        assert_eq!(
            growth_per_minute(&i, 600_000, value).unwrap_err(),
            "need 10m of history for a rate, have 5m"
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
