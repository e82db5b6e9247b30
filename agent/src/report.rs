//! Rendering a phase report: a table for people, JSON for machines, JUnit for CI.

use crate::verdict::{GateVerdict, PhaseReport};
use gatekeeper_model::{CriterionStatus, Decision, format_timestamp};
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Junit,
}

pub fn render(report: &PhaseReport, format: OutputFormat, color: bool) -> String {
    match format {
        OutputFormat::Table => table(report, color),
        OutputFormat::Json => json(report),
        OutputFormat::Junit => junit(report),
    }
}

/// Pretty JSON with a trailing newline; byte-identical for the same input.
pub fn json(report: &PhaseReport) -> String {
    let mut out = serde_json::to_string_pretty(report).expect("a report always encodes");
    out.push('\n');
    out
}

/// Whether to colour: not when `NO_COLOR` is set (any value) or not a terminal.
pub fn use_color(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

struct Paint(bool);

impl Paint {
    fn code(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn green(&self, t: &str) -> String {
        self.code("32", t)
    }
    fn red(&self, t: &str) -> String {
        self.code("31", t)
    }
    fn yellow(&self, t: &str) -> String {
        self.code("33", t)
    }
    fn bold(&self, t: &str) -> String {
        self.code("1", t)
    }
}

/// Gate text is untrusted: one line, nothing a terminal interprets.
fn clean(text: &str) -> String {
    crate::text::untrusted_line(text)
}

pub fn table(report: &PhaseReport, color: bool) -> String {
    let p = Paint(color);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  snapshot {}  {}",
        p.bold(&report.phase),
        format_timestamp(report.taken_at),
        &report.snapshot_digest[..report.snapshot_digest.len().min(19)]
    );
    for gate in &report.gates {
        let verdict = match gate.verdict {
            GateVerdict::Go => p.green("go"),
            GateVerdict::NoGo | GateVerdict::Error => p.red(gate.verdict.as_str()),
            GateVerdict::Defer => p.yellow("defer"),
        };
        let _ = writeln!(
            out,
            "\ngate {} ({}): {verdict}",
            clean(&gate.name),
            clean(&gate.implementation)
        );
        // Who vouches for a gate that is not built in, and which bytes ran.
        if let (Some(signer), Some(sha)) = (&gate.signer, &gate.sha256)
            && signer != "built-in"
        {
            let _ = writeln!(
                out,
                "  sha256 {}…  signer: {}",
                &sha[..sha.len().min(16)],
                clean(signer)
            );
        }
        if let Some(e) = &gate.error {
            let _ = writeln!(out, "  {} {}", p.red("!"), clean(e));
        }
        let width = gate.criteria.iter().map(|c| c.id.len()).max().unwrap_or(0);
        for c in &gate.criteria {
            let mark = match c.status {
                CriterionStatus::Pass => p.green("✓"),
                CriterionStatus::Fail => p.red("✗"),
                CriterionStatus::Unknown => p.yellow("?"),
            };
            let _ = writeln!(out, "  {mark} {:width$}  {}", c.id, clean(&c.title));
            if c.observed.is_some() || c.expected.is_some() {
                let o = c.observed.as_deref().map_or_else(|| "-".to_owned(), clean);
                let e = c.expected.as_deref().map_or_else(|| "-".to_owned(), clean);
                let _ = writeln!(out, "    {:width$}  observed: {o}", "");
                let _ = writeln!(out, "    {:width$}  expected: {e}", "");
            }
            if c.status != CriterionStatus::Pass {
                let _ = writeln!(out, "    {:width$}  {}", "", clean(&c.message));
            }
        }
        for t in &gate.triggers {
            let severity = match t.severity {
                gatekeeper_model::Severity::Automatic => "automatic",
                gatekeeper_model::Severity::Manual => "manual",
            };
            let since = t
                .since
                .map(|s| format!(" since {}", format_timestamp(s)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {} trigger {} ({severity}){since}: {}",
                p.red("⚑"),
                t.id,
                clean(&t.reason)
            );
        }
    }
    let verdict = match report.verdict {
        Decision::Go => p.green("GO"),
        Decision::NoGo => p.red("NO-GO"),
        Decision::Defer => p.yellow("DEFER"),
    };
    let _ = writeln!(out, "\nverdict: {}", p.bold(&verdict));
    out
}

/// XML-escapes text, replacing characters XML 1.0 cannot carry.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// One testcase per criterion (unknown is a failure: it is never a pass), and
/// one `load` testcase with an error for a gate that could not run.
pub fn junit(report: &PhaseReport) -> String {
    let mut suites = String::new();
    let (mut total, mut failures, mut errors) = (0, 0, 0);
    for gate in &report.gates {
        let mut cases = String::new();
        let (mut t, mut f, mut e) = (0, 0, 0);
        let class = xml(&format!("{}.{}", report.phase, gate.name));
        if let Some(err) = &gate.error {
            t += 1;
            e += 1;
            let _ = writeln!(
                cases,
                "    <testcase classname=\"{class}\" name=\"gate\"><error message=\"{}\" type=\"gate-error\"/></testcase>",
                xml(&clean(err))
            );
        }
        for c in &gate.criteria {
            t += 1;
            let name = xml(&format!("{}: {}", c.id, clean(&c.title)));
            let detail = xml(&format!(
                "observed: {}\nexpected: {}\n{}",
                clean(c.observed.as_deref().unwrap_or("-")),
                clean(c.expected.as_deref().unwrap_or("-")),
                clean(&c.message)
            ));
            match c.status {
                CriterionStatus::Pass => {
                    let _ = writeln!(
                        cases,
                        "    <testcase classname=\"{class}\" name=\"{name}\"/>"
                    );
                }
                status => {
                    f += 1;
                    let _ = writeln!(
                        cases,
                        "    <testcase classname=\"{class}\" name=\"{name}\"><failure message=\"{}\" type=\"{}\">{detail}</failure></testcase>",
                        xml(&clean(&c.message)),
                        status.as_str()
                    );
                }
            }
        }
        for trig in &gate.triggers {
            t += 1;
            f += 1;
            let _ = writeln!(
                cases,
                "    <testcase classname=\"{class}\" name=\"{}\"><failure message=\"{}\" type=\"trigger\"/></testcase>",
                xml(&format!("trigger {}", trig.id)),
                xml(&clean(&trig.reason))
            );
        }
        let _ = write!(
            suites,
            "  <testsuite name=\"{class}\" tests=\"{t}\" failures=\"{f}\" errors=\"{e}\">\n{cases}  </testsuite>\n"
        );
        total += t;
        failures += f;
        errors += e;
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"gatekeeper {} {}\" tests=\"{total}\" failures=\"{failures}\" errors=\"{errors}\">\n{suites}</testsuites>\n",
        xml(&report.phase),
        report.verdict
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_and_drops_control_characters() {
        assert_eq!(
            xml("a<b>&\"'\u{0}\u{1b}"),
            "a&lt;b&gt;&amp;&quot;&apos;\u{FFFD}\u{FFFD}"
        );
    }

    #[test]
    fn clean_escapes_terminal_sequences() {
        assert_eq!(clean("ok\x1b[31mred\nx"), "ok\\u{1b}[31mred\\nx");
    }
}
