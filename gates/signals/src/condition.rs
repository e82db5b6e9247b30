//! A signal's `when` (`> 10`, `== 0`, `in 10..50`), parsed and applied.

/// A parsed `when`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Condition {
    Gt(f64),
    Ge(f64),
    Lt(f64),
    Le(f64),
    Eq(f64),
    Ne(f64),
    /// `a <= v < b`
    In(f64, f64),
}

impl Condition {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let num = |s: &str| {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("when = {text:?}: {:?} is not a number", s.trim()))
        };
        if let Some(range) = t.strip_prefix("in ") {
            let (a, b) = range
                .split_once("..")
                .ok_or_else(|| format!("when = {text:?}: want `in A..B`"))?;
            let (a, b) = (num(a)?, num(b)?);
            if a >= b {
                return Err(format!("when = {text:?}: want A < B"));
            }
            return Ok(Condition::In(a, b));
        }
        for (op, make) in [
            (">=", Condition::Ge as fn(f64) -> Condition),
            ("<=", Condition::Le),
            ("==", Condition::Eq),
            ("!=", Condition::Ne),
            (">", Condition::Gt),
            ("<", Condition::Lt),
        ] {
            if let Some(rest) = t.strip_prefix(op) {
                return Ok(make(num(rest)?));
            }
        }
        Err(format!(
            "when = {text:?}: want `> X`, `>= X`, `< X`, `<= X`, `== X`, `!= X` or `in A..B`"
        ))
    }

    pub(crate) fn holds(self, v: f64) -> bool {
        match self {
            Condition::Gt(x) => v > x,
            Condition::Ge(x) => v >= x,
            Condition::Lt(x) => v < x,
            Condition::Le(x) => v <= x,
            Condition::Eq(x) => v == x,
            Condition::Ne(x) => v != x,
            Condition::In(a, b) => a <= v && v < b,
        }
    }

    pub(crate) fn show(self, unit: &str) -> String {
        let u = |x: f64| show_value(x, unit);
        match self {
            Condition::Gt(x) => format!("> {}", u(x)),
            Condition::Ge(x) => format!(">= {}", u(x)),
            Condition::Lt(x) => format!("< {}", u(x)),
            Condition::Le(x) => format!("<= {}", u(x)),
            Condition::Eq(x) => format!("= {}", u(x)),
            Condition::Ne(x) => format!("!= {}", u(x)),
            Condition::In(a, b) => format!("in [{}, {})", show_number(a), u(b)),
        }
    }
}

pub(crate) fn show_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

pub(crate) fn show_value(v: f64, unit: &str) -> String {
    match unit {
        "" => show_number(v),
        "%" => format!("{}%", show_number(v)),
        u => format!("{} {u}", show_number(v)),
    }
}
