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
    Lookback::one(samples, at).rate(window_ms, counter)
}

/// **Counters**: the increase over the window ending at `samples[at]`, and
/// the milliseconds the samples really cover. Resets count from zero.
pub fn increase_at(
    samples: &[&Snapshot],
    at: usize,
    window_ms: u64,
    counter: impl Fn(&Snapshot) -> Result<f64, String>,
) -> Result<(f64, u64), String> {
    Lookback::one(samples, at).increase(window_ms, counter)
}

/// **Gauges**: the net change (last − first, signed) over the window ending
/// at `samples[at]`, and the milliseconds it covers.
pub fn change_at(
    samples: &[&Snapshot],
    at: usize,
    window_ms: u64,
    gauge: impl Fn(&Snapshot) -> Result<f64, String>,
) -> Result<(f64, u64), String> {
    Lookback::one(samples, at).change(window_ms, gauge)
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
    Lookback::one(samples, at).growth(window_ms, gauge)
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
    let (values, _) = Lookback::one(&all, all.len() - 1).values(window_ms, value)?;
    Ok(values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        }))
}

/// The longest two consecutive samples may be apart and still count as
/// watched without a break: 1.5 × the sampling interval — the one the host
/// declared (`Snapshot::interval_ms`, on the newest sample), or the shortest
/// gap seen in the samples when it declared none. `None` with fewer than two
/// samples and no declaration.
pub fn gap_limit_ms(samples: &[&Snapshot]) -> Option<u64> {
    prefix_gap_limits(samples).last().flatten()
}

/// [`gap_limit_ms`] of every prefix of `samples` in one pass: `[i]` is
/// `gap_limit_ms(&samples[..=i])`.
pub fn gap_limits(samples: &[&Snapshot]) -> Vec<Option<u64>> {
    prefix_gap_limits(samples).collect()
}

/// The gap limit of `samples[..=i]` for each `i` in turn: 1.5 × the shorter
/// of the interval `samples[i]` declares and the shortest gap seen so far.
fn prefix_gap_limits<'s>(samples: &'s [&Snapshot]) -> impl Iterator<Item = Option<u64>> + 's {
    let mut shortest: Option<u64> = None;
    samples.iter().enumerate().map(move |(i, s)| {
        if let Some(before) = i.checked_sub(1).map(|b| samples[b]) {
            let gap = millis_between(before.taken_at, s.taken_at);
            if gap > 0 {
                shortest = Some(shortest.map_or(gap as u64, |m| m.min(gap as u64)));
            }
        }
        let interval = match (s.interval_ms, shortest) {
            (Some(d), Some(o)) => d.min(o),
            (d, o) => d.or(o)?,
        };
        Some(interval + interval / 2)
    })
}

/// The samples of a window (oldest first) with each prefix's gap limit
/// worked out once ([`gap_limits`]), for looking back from many samples in
/// turn — a hold asks a rate at every sample of its run — at the cost of
/// the window looked at, not of the whole history every time. The results
/// are those of the free functions ([`rate_at`], [`increase_at`], …).
#[derive(Debug, Clone)]
pub struct Samples<'a> {
    all: Vec<&'a Snapshot>,
    limits: Vec<Option<u64>>,
}

impl<'a> Samples<'a> {
    pub fn new(all: Vec<&'a Snapshot>) -> Samples<'a> {
        let limits = gap_limits(&all);
        Samples { all, limits }
    }

    /// Every sample of the input's window, current last.
    pub fn of(input: &'a Input) -> Samples<'a> {
        Samples::new(samples(input).collect())
    }

    /// The samples, oldest first.
    pub fn all(&self) -> &[&'a Snapshot] {
        &self.all
    }

    /// Looking back from `all()[at]`.
    pub fn at(&self, at: usize) -> Lookback<'_, 'a> {
        Lookback {
            samples: &self.all[..=at],
            limit: self.limits[at],
        }
    }
}

/// A window ending at a sample, looked back over: rates, increases,
/// changes and growth over the last `window_ms` before it.
#[derive(Debug, Clone, Copy)]
pub struct Lookback<'s, 'a> {
    /// Up to and including the sample looked back from.
    samples: &'s [&'a Snapshot],
    /// `gap_limit_ms(samples)`.
    limit: Option<u64>,
}

impl<'s, 'a> Lookback<'s, 'a> {
    /// Looking back from `samples[at]`, its gap limit worked out here.
    fn one(samples: &'s [&'a Snapshot], at: usize) -> Lookback<'s, 'a> {
        let samples = &samples[..=at];
        Lookback {
            samples,
            limit: gap_limit_ms(samples),
        }
    }

    /// **Counters**: see [`rate_at`].
    pub fn rate(
        &self,
        window_ms: u64,
        counter: impl Fn(&Snapshot) -> Result<f64, String>,
    ) -> Result<f64, String> {
        self.increase(window_ms, counter)
            .map(|(increase, covered)| increase * 60_000.0 / covered as f64)
    }

    /// **Counters**: see [`increase_at`].
    pub fn increase(
        &self,
        window_ms: u64,
        counter: impl Fn(&Snapshot) -> Result<f64, String>,
    ) -> Result<(f64, u64), String> {
        let (values, covered) = self.values(window_ms, counter)?;
        let increase = values
            .windows(2)
            .map(|w| if w[1] >= w[0] { w[1] - w[0] } else { w[1] })
            .sum();
        Ok((increase, covered))
    }

    /// **Gauges**: see [`change_at`].
    pub fn change(
        &self,
        window_ms: u64,
        gauge: impl Fn(&Snapshot) -> Result<f64, String>,
    ) -> Result<(f64, u64), String> {
        let (values, covered) = self.values(window_ms, gauge)?;
        Ok((values[values.len() - 1] - values[0], covered))
    }

    /// **Gauges**: see [`growth_at`].
    pub fn growth(
        &self,
        window_ms: u64,
        gauge: impl Fn(&Snapshot) -> Result<f64, String>,
    ) -> Result<(f64, u64), String> {
        let (values, covered) = self.values(window_ms, gauge)?;
        let growth = values.windows(2).map(|w| (w[1] - w[0]).max(0.0)).sum();
        Ok((growth, covered))
    }
}

/// Why the samples do not show an unbroken watch over a span.
#[derive(Debug, Clone, PartialEq)]
pub enum Unwatched {
    /// The samples do not reach back that far.
    Short { have_ms: u64 },
    /// The nearest sample before the span's start is further back than a gap.
    NoSampleNearStart { span_ms: u64, nearest_ms: u64 },
    /// Two consecutive samples are further apart than the gap limit.
    Gap {
        from: Timestamp,
        to: Timestamp,
        limit_ms: u64,
    },
}

impl std::fmt::Display for Unwatched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unwatched::Short { have_ms } => write!(
                f,
                "the history covers only {}",
                format_duration_ms(*have_ms)
            ),
            Unwatched::NoSampleNearStart {
                span_ms,
                nearest_ms,
            } => write!(
                f,
                "no sample near the start of the {} window (the nearest is {} old)",
                format_duration_ms(*span_ms),
                format_duration_ms(*nearest_ms)
            ),
            Unwatched::Gap { from, to, limit_ms } => write!(
                f,
                "no sample between {} and {} (a gap over {}, 1.5 sampling intervals)",
                gatekeeper_model::format_timestamp(*from),
                gatekeeper_model::format_timestamp(*to),
                format_duration_ms(*limit_ms)
            ),
        }
    }
}

/// Where an unbroken watch over the last `span_ms` starts in `samples`
/// (oldest first, the last is now): the newest sample at least `span_ms`
/// old, no more than a gap limit ([`gap_limit_ms`]) older than that, with no
/// gap between it and now. With `span_ms` `None`, the whole history must be
/// gap-free and the start is its first sample. Taking a sample away can
/// only make this fail, never move the start: what is computed from the
/// span sees the same evidence or none.
pub fn watched_since(samples: &[&Snapshot], span_ms: Option<u64>) -> Result<usize, Unwatched> {
    watched_within(samples, span_ms, gap_limit_ms(samples))
}

/// [`watched_since`] with the gap limit of `samples` given.
fn watched_within(
    samples: &[&Snapshot],
    span_ms: Option<u64>,
    limit: Option<u64>,
) -> Result<usize, Unwatched> {
    let Some(now) = samples.last().map(|s| s.taken_at) else {
        return Err(Unwatched::Short { have_ms: 0 });
    };
    let age = |s: &Snapshot| millis_between(s.taken_at, now).max(0) as u64;
    let oldest = age(samples[0]);
    let base = match span_ms {
        None => 0,
        Some(span) => {
            let Some(base) = samples.iter().rposition(|s| age(s) >= span) else {
                return Err(Unwatched::Short { have_ms: oldest });
            };
            let Some(limit) = limit else {
                return Err(Unwatched::Short { have_ms: oldest });
            };
            if age(samples[base]) > span + limit {
                return Err(Unwatched::NoSampleNearStart {
                    span_ms: span,
                    nearest_ms: age(samples[base]),
                });
            }
            base
        }
    };
    if let Some(limit) = limit
        && let Some(w) = samples[base..]
            .windows(2)
            .find(|w| millis_between(w[0].taken_at, w[1].taken_at) as u64 > limit)
    {
        return Err(Unwatched::Gap {
            from: w[0].taken_at,
            to: w[1].taken_at,
            limit_ms: limit,
        });
    }
    Ok(base)
}

/// The values of the samples of the window ending at `samples[at]`, oldest
/// first, and the milliseconds they cover. The window starts from its base:
/// the newest sample at least the window old, at most one gap limit
/// ([`gap_limit_ms`]) older than that; and from the base to now no two
/// samples may be further apart than the gap limit. Anything less — a
/// window not reached, a gap nobody watched, a sample that cannot be read —
/// is unknown, never a number: with less evidence a rate must not come out
/// different.
impl Lookback<'_, '_> {
    fn values(
        &self,
        window_ms: u64,
        read: impl Fn(&Snapshot) -> Result<f64, String>,
    ) -> Result<(Vec<f64>, u64), String> {
        let samples = self.samples;
        let at = samples.len() - 1;
        let now = samples[at].taken_at;
        let age = |s: &Snapshot| millis_between(s.taken_at, now);
        let short = |have: i64| {
            format!(
                "need {} of history for a rate, have {}",
                format_duration_ms(window_ms),
                format_duration_ms(have.max(0) as u64)
            )
        };
        let base = watched_within(samples, Some(window_ms), self.limit).map_err(|e| match e {
            Unwatched::Short { have_ms } => short(have_ms as i64),
            other => other.to_string(),
        })?;
        let in_window = &samples[base..=at];
        let covered = age(in_window[0]);
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
    let limit = gap_limit_ms(samples);
    let mut since: Option<Timestamp> = None;
    let mut from_start = false;
    for (i, snap) in samples.iter().enumerate().rev() {
        let age = millis_between(snap.taken_at, now);
        // A gap nobody watched ends the run: the condition is not known to
        // have held through it.
        if let (Some(newer), Some(limit)) = (samples.get(i + 1), limit)
            && millis_between(snap.taken_at, newer.taken_at) as u64 > limit
        {
            break;
        }
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
    fn samples_look_back_as_the_free_functions_do() {
        // Irregular gaps, one that no interval covers, a declared interval
        // on some samples, a reset and an unreadable sample: every prefix's
        // gap limit, and every rate, change and growth from every sample,
        // must be what the free functions say.
        let times = [0, 5, 10, 15, 20, 25, 30, 60, 65, 70, 75, 77, 80, 85];
        let values = [
            1.0, 2.0, 4.0, 4.0, 1.0, 3.0, 8.0, 9.0, 9.0, 12.0, 13.0, 20.0, 2.0, 5.0,
        ];
        let snaps: Vec<Snapshot> = times
            .iter()
            .zip(values)
            .enumerate()
            .map(|(i, (t, v))| {
                let at = format!("2025-10-02T10:{:02}:{:02}Z", t / 60, t % 60);
                let mut s = snap(&at, (i != 7).then_some(v));
                s.interval_ms = (i % 3 == 0).then_some(4_000);
                s
            })
            .collect();
        let all: Vec<&Snapshot> = snaps.iter().collect();
        let samples = Samples::new(all.clone());
        let limits = gap_limits(&all);
        for at in 0..all.len() {
            assert_eq!(limits[at], gap_limit_ms(&all[..=at]), "gap limit at {at}");
            for window in [5_000, 20_000, 60_000] {
                let back = samples.at(at);
                assert_eq!(back.rate(window, value), rate_at(&all, at, window, value));
                assert_eq!(
                    back.increase(window, value),
                    increase_at(&all, at, window, value)
                );
                assert_eq!(
                    back.change(window, value),
                    change_at(&all, at, window, value)
                );
                assert_eq!(
                    back.growth(window, value),
                    growth_at(&all, at, window, value)
                );
            }
        }
        // Not vacuous: some rates are known, some unknown.
        let known = (0..all.len())
            .filter(|&at| samples.at(at).rate(20_000, value).is_ok())
            .count();
        assert!(known > 2 && known < all.len(), "{known}");
    }

    #[test]
    fn rate_over_covered_window_with_reset() {
        let i = input(&[
            ("2025-10-02T10:00:00Z", Some(100.0)),
            ("2025-10-02T10:01:00Z", Some(105.0)),
            ("2025-10-02T10:02:00Z", Some(110.0)),
            ("2025-10-02T10:03:00Z", Some(4.0)), // reset: counts 4
            ("2025-10-02T10:04:00Z", Some(7.0)),
            ("2025-10-02T10:05:00Z", Some(10.0)),
        ]);
        let rate = rate_per_minute(&i, 300_000, value).unwrap();
        assert!((rate - 4.0).abs() < 1e-9, "{rate}");
    }

    #[test]
    fn a_rate_starts_at_the_window_and_never_reaches_across_a_gap() {
        // 20 s samples; the base is the sample 60 s back.
        let i = input(&[
            ("2025-10-02T10:00:00Z", Some(0.0)),
            ("2025-10-02T10:00:20Z", Some(20.0)),
            ("2025-10-02T10:00:40Z", Some(40.0)),
            ("2025-10-02T10:01:00Z", Some(60.0)),
        ]);
        let rate = rate_per_minute(&i, 60_000, value).unwrap();
        assert!((rate - 60.0).abs() < 1e-9, "{rate}");
        // A slow round: nothing between 10:00:00 and 10:00:50 while the
        // samples are 20 s apart. Nobody watched for 50 s: unknown.
        let i = input(&[
            ("2025-10-02T10:00:00Z", Some(0.0)),
            ("2025-10-02T10:00:50Z", Some(50.0)),
            ("2025-10-02T10:01:10Z", Some(70.0)),
        ]);
        assert_eq!(
            rate_per_minute(&i, 60_000, value).unwrap_err(),
            "no sample between 2025-10-02T10:00:00Z and 2025-10-02T10:00:50Z (a gap over 30s, 1.5 sampling intervals)"
        );
        // The host's declared interval counts too: one sample dropped from a
        // 1-minute series is a gap.
        let mut i = input(&[
            ("2025-10-02T10:00:00Z", Some(0.0)),
            ("2025-10-02T10:02:00Z", Some(50.0)),
        ]);
        i.snapshot.interval_ms = Some(60_000);
        assert!(
            rate_per_minute(&i, 120_000, value)
                .unwrap_err()
                .starts_with("no sample between")
        );
        // No sample near the window's start.
        let i = input(&[
            ("2025-10-02T10:00:00Z", Some(0.0)),
            ("2025-10-02T10:01:50Z", Some(50.0)),
            ("2025-10-02T10:02:00Z", Some(70.0)),
        ]);
        assert_eq!(
            rate_per_minute(&i, 60_000, value).unwrap_err(),
            "no sample near the start of the 1m window (the nearest is 2m old)"
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
            ("2025-10-02T10:02:00Z", Some(20.0)),
            ("2025-10-02T10:03:00Z", Some(20.0)),
            ("2025-10-02T10:04:00Z", Some(20.0)),
            ("2025-10-02T10:05:00Z", Some(20.0)),
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
            ("2025-10-02T10:05:00Z", Some(20.0)),
            ("2025-10-02T10:06:00Z", Some(30.0)),
        ]);
        assert_eq!(
            hold(&whole, 60_000, high).unwrap(),
            Hold::Held {
                since: parse_timestamp("2025-10-02T10:05:00Z").unwrap(),
                since_window_start: true,
            }
        );
        // A gap nobody watched ends the run: 10:02 and 10:03 are missing.
        let gap = input(&[
            ("2025-10-02T10:00:00Z", Some(20.0)),
            ("2025-10-02T10:01:00Z", Some(20.0)),
            ("2025-10-02T10:04:00Z", Some(20.0)),
            ("2025-10-02T10:05:00Z", Some(20.0)),
        ]);
        assert_eq!(
            hold(&gap, 180_000, high).unwrap(),
            Hold::Pending {
                since: parse_timestamp("2025-10-02T10:04:00Z").unwrap(),
                held_ms: 60_000
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
