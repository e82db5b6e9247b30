//! The backtest as a person reads it: the timeline, then the summary.

use super::Backtest;
use gatekeeper_model::{format_duration, format_timestamp, millis_between};
use std::fmt::Write as _;
use std::time::Duration;

/// The timeline and summary as text.
pub fn table(b: &Backtest) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "backtest {}: {} snapshots from {} to {} (every {}), history window {}",
        b.phase,
        b.snapshots,
        format_timestamp(b.from),
        format_timestamp(b.to),
        format_duration(Duration::from_millis(b.interval_ms)),
        format_duration(Duration::from_millis(b.window_ms)),
    );
    let _ = writeln!(out, "\nTIMELINE");
    for e in &b.events {
        let offset = format_duration(Duration::from_millis(
            millis_between(b.from, e.at).max(0) as u64
        ));
        let _ = writeln!(
            out,
            "  {} {:<10} {:<16} {}  {}",
            format_timestamp(e.at),
            format!("(+{offset})"),
            e.kind,
            crate::text::untrusted_line(&e.subject),
            crate::text::untrusted_line(&e.detail)
        );
    }
    let _ = writeln!(out, "\nSUMMARY");
    let verdicts: Vec<String> = b.verdicts.iter().map(|(v, n)| format!("{v} {n}")).collect();
    let _ = writeln!(out, "  rounds by verdict: {}", verdicts.join(", "));
    for (t, s) in &b.triggers {
        let _ = writeln!(
            out,
            "  trigger {t}: raised {} time(s), first at {}, {} round(s) raised",
            s.raised,
            s.first_raised.map_or("-".to_owned(), format_timestamp),
            s.rounds
        );
    }
    if b.triggers.is_empty() {
        let _ = writeln!(out, "  no trigger was raised");
    }
    let _ = writeln!(out, "  incidents: {}", b.incidents);
    for (plan, at) in &b.plans {
        let times: Vec<String> = at.iter().map(|t| format_timestamp(*t)).collect();
        let _ = writeln!(
            out,
            "  plan {plan} would have run {} time(s): {}",
            at.len(),
            times.join(", ")
        );
    }
    if b.plans.is_empty() {
        let _ = writeln!(out, "  no plan would have run");
    }
    if let Some(l) = &b.ledger {
        let _ = writeln!(
            out,
            "  ledger: {} recorded verdict(s), {} disagree with the replay",
            l.recorded,
            l.disagreements.len()
        );
        for d in &l.disagreements {
            let _ = writeln!(out, "    {}: {}", format_timestamp(d.at), d.detail);
        }
    }
    let _ = writeln!(
        out,
        "  replayed in {} ms ({:.0} snapshots/s)",
        b.elapsed_ms, b.snapshots_per_second
    );
    out
}
