//! One metric's judgement: read both groups from the snapshot, test, and
//! say pass / fail / unknown with the figures behind it.

use crate::stats::{self, Alternative};
use crate::{Checked, Compare, Direction, Group, Params};
use gatekeeper_gate_sdk::model::{PromSeries, Snapshot};
use gatekeeper_gate_sdk::{Criterion, labels};

pub(crate) fn judge(snap: &Snapshot, m: &Checked<'_>, p: &Params) -> Criterion {
    let (id, title) = (m.metric.id.as_str(), m.metric.title.as_str());
    let verdict: Result<Verdict, String> = match &m.compare {
        Compare::Continuous {
            canary,
            baseline,
            tolerance,
            spread_tolerance,
        } => (|| {
            let c = observations(snap, canary)?;
            let b = observations(snap, baseline)?;
            Ok(continuous(
                &c,
                &b,
                m.metric.direction,
                *tolerance,
                *spread_tolerance,
                p,
            ))
        })(),
        Compare::Proportion {
            canary_events,
            canary_total,
            baseline_events,
            baseline_total,
            tolerance,
        } => (|| {
            let counts = [canary_events, canary_total, baseline_events, baseline_total]
                .map(|g| total(snap, g));
            let [ce, ct, be, bt] = counts;
            Ok(proportion(
                (ce?, ct?),
                (be?, bt?),
                m.metric.direction,
                *tolerance,
                p,
            ))
        })(),
    };
    match verdict {
        Err(why) => Criterion::unknown(id, title, why),
        Ok(Verdict {
            status,
            message,
            observed,
            expected,
        }) => {
            let c = match status {
                Status::Pass => Criterion::pass(id, title, message),
                Status::Fail => Criterion::fail(id, title, message),
                Status::Unknown => Criterion::unknown(id, title, message),
            };
            c.observed(observed).expected(expected)
        }
    }
}

enum Status {
    Pass,
    Fail,
    Unknown,
}

struct Verdict {
    status: Status,
    message: String,
    observed: String,
    expected: String,
}

fn series<'a>(snap: &'a Snapshot, g: &Group) -> Result<Vec<&'a PromSeries>, String> {
    let q = snap
        .prometheus
        .usable("prometheus")?
        .query_or_why(g.query())?;
    Ok(q.series
        .iter()
        .filter(|s| {
            g.labels()
                .is_none_or(|want| labels::matches(&s.labels, want))
        })
        .collect())
}

/// Every finite point of the group's series. Non-finite points (a
/// quantile with no traffic at that step is NaN) carry no observation.
fn observations(snap: &Snapshot, g: &Group) -> Result<Vec<f64>, String> {
    Ok(series(snap, g)?
        .iter()
        .flat_map(|s| &s.points)
        .filter_map(|p| p.value)
        .collect())
}

/// The sum of the last points of the group's series; no series is 0 (a
/// counter that never moved has no `result="error"` series at all).
fn total(snap: &Snapshot, g: &Group) -> Result<f64, String> {
    series(snap, g)?
        .iter()
        .try_fold(0.0, |sum, s| match s.points.last() {
            Some(p) => p.value.map(|v| sum + v).ok_or_else(|| {
                format!(
                    "prometheus query `{}`: non-finite value {}",
                    g.query(),
                    p.raw.as_deref().unwrap_or("?")
                )
            }),
            None => Ok(sum),
        })
}

/// A number for people: four significant digits, no exponent for
/// everyday magnitudes.
pub(crate) fn num(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    if x.abs() < 1e-4 {
        return format!("{x:.2e}");
    }
    let digits = (3 - x.abs().log10().floor() as i32).clamp(0, 9) as usize;
    let s = format!("{x:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

fn percent(x: f64) -> String {
    if x.is_infinite() {
        return if x > 0.0 { "+inf %" } else { "-inf %" }.into();
    }
    format!("{:+.1} %", 100.0 * x)
}

fn alternative(d: Direction) -> Alternative {
    match d {
        Direction::HigherIsWorse => Alternative::Greater,
        Direction::LowerIsWorse => Alternative::Less,
        Direction::Either => Alternative::TwoSided,
    }
}

/// Is `delta` (canary − baseline, relative or absolute) worse than
/// `tolerance` in the metric's bad direction?
fn beyond(d: Direction, delta: f64, tolerance: f64) -> bool {
    match d {
        Direction::HigherIsWorse => delta > tolerance,
        Direction::LowerIsWorse => -delta > tolerance,
        Direction::Either => delta.abs() > tolerance,
    }
}

fn worse_word(d: Direction) -> &'static str {
    match d {
        Direction::HigherIsWorse => "higher",
        Direction::LowerIsWorse => "lower",
        Direction::Either => "either way",
    }
}

/// Observations per group the shift estimate uses at most: its pairwise
/// differences (n × m) must fit the sandbox's memory and fuel, so larger
/// groups are thinned evenly (deterministically). The tests use every point.
const SHIFT_SAMPLE: usize = 1000;

fn thinned(xs: &[f64]) -> Vec<f64> {
    if xs.len() <= SHIFT_SAMPLE {
        return xs.to_vec();
    }
    (0..SHIFT_SAMPLE)
        .map(|i| xs[i * xs.len() / SHIFT_SAMPLE])
        .collect()
}

fn continuous(
    c: &[f64],
    b: &[f64],
    d: Direction,
    tolerance: f64,
    spread_tolerance: f64,
    p: &Params,
) -> Verdict {
    let alpha = 1.0 - p.confidence;
    let expected = format!(
        "shift within {} ({} is worse) or not significant at {} confidence; spread within ×{}",
        percent(tolerance).trim_start_matches('+'),
        worse_word(d),
        p.confidence,
        num(1.0 + spread_tolerance)
    );
    let unknown = |message: String, observed: String| Verdict {
        status: Status::Unknown,
        message,
        observed,
        expected: expected.clone(),
    };
    let counts = format!("{} canary vs {} baseline observations", c.len(), b.len());
    if c.len() < p.min_samples || b.len() < p.min_samples {
        return unknown(
            format!(
                "too few observations to judge: {counts} (need {} each)",
                p.min_samples
            ),
            counts,
        );
    }
    if let Some(first) = c.first()
        && c.iter().chain(b).all(|x| x == first)
    {
        return unknown(
            format!(
                "every observation is {} in both groups: nothing to compare (no traffic?)",
                num(*first)
            ),
            counts,
        );
    }
    let (Some(mw), Some(hl), Some(med_c), Some(med_b)) = (
        stats::mann_whitney(c, b, alternative(d)),
        stats::hodges_lehmann(&thinned(c), &thinned(b)),
        stats::median(c),
        stats::median(b),
    ) else {
        return unknown(format!("the groups cannot be compared: {counts}"), counts);
    };
    let relative = if med_b != 0.0 {
        hl / med_b.abs()
    } else if hl == 0.0 {
        0.0
    } else {
        hl.signum() * f64::INFINITY
    };
    let mad = |xs: &[f64], med: f64| {
        let dev: Vec<f64> = xs.iter().map(|x| (x - med).abs()).collect();
        stats::median(&dev).unwrap_or(0.0)
    };
    let (mad_c, mad_b) = (mad(c, med_c), mad(b, med_b));
    let spread = if mad_b > 0.0 {
        mad_c / mad_b
    } else if mad_c > 0.0 {
        f64::INFINITY
    } else {
        1.0
    };
    let bf = stats::brown_forsythe(c, b);
    let observed = format!(
        "canary median {} vs baseline {}; shift {} (Hodges-Lehmann {}), Mann-Whitney p = {}; spread ×{}{}; {counts}",
        num(med_c),
        num(med_b),
        percent(relative),
        num(hl),
        num(mw.p_value),
        num(spread),
        bf.as_ref()
            .map(|t| format!(" (Brown-Forsythe p = {})", num(t.p_value)))
            .unwrap_or_default(),
    );
    let shifted = mw.p_value < alpha && beyond(d, relative, tolerance);
    let spread_grew =
        bf.as_ref().is_some_and(|t| t.p_value < alpha) && spread > 1.0 + spread_tolerance;
    let (status, message) = match (shifted, spread_grew) {
        (true, _) => (
            Status::Fail,
            format!(
                "the canary is worse: shifted {} (tolerated {}), significant (p = {} < {})",
                percent(relative),
                percent(tolerance).trim_start_matches('+'),
                num(mw.p_value),
                num(alpha)
            ),
        ),
        (false, true) => (
            Status::Fail,
            format!(
                "the canary varies more: spread ×{} (tolerated ×{}), significant (Brown-Forsythe p = {} < {})",
                num(spread),
                num(1.0 + spread_tolerance),
                bf.as_ref().map_or(String::new(), |t| num(t.p_value)),
                num(alpha)
            ),
        ),
        (false, false) => (
            Status::Pass,
            format!(
                "no worse than the baseline: shift {}, spread ×{}",
                percent(relative),
                num(spread)
            ),
        ),
    };
    Verdict {
        status,
        message,
        observed,
        expected,
    }
}

fn proportion(
    (ce, ct): (f64, f64),
    (be, bt): (f64, f64),
    d: Direction,
    tolerance: f64,
    p: &Params,
) -> Verdict {
    let alpha = 1.0 - p.confidence;
    let expected = format!(
        "difference within {} percentage points ({} is worse), shown at {} confidence",
        num(100.0 * tolerance),
        worse_word(d),
        p.confidence
    );
    let share = |e: f64, t: f64| {
        if t > 0.0 {
            format!("{} of {} ({} %)", num(e), num(t), num(100.0 * e / t))
        } else {
            format!("{} of {}", num(e), num(t))
        }
    };
    let observed = format!("canary {} vs baseline {}", share(ce, ct), share(be, bt));
    let verdict = |status, message| Verdict {
        status,
        message,
        observed: observed.clone(),
        expected: expected.clone(),
    };
    if ct < p.min_total || bt < p.min_total {
        return verdict(
            Status::Unknown,
            format!(
                "too little traffic to judge: {} and {} counted (need {} each)",
                num(ct),
                num(bt),
                num(p.min_total)
            ),
        );
    }
    if ce < 0.0 || be < 0.0 || ce > ct || be > bt {
        return verdict(
            Status::Unknown,
            "the counts are inconsistent (events below 0 or above the total): check the queries"
                .into(),
        );
    }
    // Prometheus' increase() extrapolates: counts come as real numbers.
    let round = |x: f64| x.round() as u64;
    let (ce_n, ct_n, be_n, bt_n) = (round(ce), round(ct), round(be), round(bt));
    let diff = ce / ct - be / bt;
    let two_sided = d == Direction::Either;
    let z = stats::normal_quantile(if two_sided {
        1.0 - alpha / 2.0
    } else {
        p.confidence
    });
    let test = stats::two_proportion_z(ce_n, ct_n, be_n, bt_n, alternative(d));
    let bounds = stats::newcombe_difference(ce_n, ct_n, be_n, bt_n, z);
    let significant = test.as_ref().is_some_and(|t| t.p_value < alpha);
    if significant && beyond(d, diff, tolerance) {
        return verdict(
            Status::Fail,
            format!(
                "the canary is worse: {} percentage points (tolerated {}), significant (p = {} < {})",
                signed(100.0 * diff),
                num(100.0 * tolerance),
                test.as_ref().map_or(String::new(), |t| num(t.p_value)),
                num(alpha)
            ),
        );
    }
    let Some((lo, hi)) = bounds else {
        return verdict(Status::Unknown, "no interval for the difference".into());
    };
    let within = match d {
        Direction::HigherIsWorse => hi <= tolerance,
        Direction::LowerIsWorse => lo >= -tolerance,
        Direction::Either => hi <= tolerance && lo >= -tolerance,
    };
    let interval = format!(
        "the difference is between {} and {} percentage points",
        signed(100.0 * lo),
        signed(100.0 * hi)
    );
    if within {
        verdict(
            Status::Pass,
            format!("no worse than the baseline: {interval}"),
        )
    } else {
        verdict(
            Status::Unknown,
            format!(
                "cannot tell yet: {interval}, which reaches past the {} tolerated; more traffic is needed",
                num(100.0 * tolerance)
            ),
        )
    }
}

fn signed(x: f64) -> String {
    if x >= 0.0 {
        format!("+{}", num(x))
    } else {
        num(x)
    }
}
