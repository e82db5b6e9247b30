//! Human durations (`250ms`, `60s`, `5m`, `48h`, `14d`, `1h30m`) as whole milliseconds.

use std::fmt;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(String);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DurationError {}

/// Parses `<number><unit>` groups, units `ms`, `s`, `m`, `h`, `d`.
pub fn parse_duration_ms(text: &str) -> Result<u64, DurationError> {
    let err = |why: &str| DurationError(format!("invalid duration `{text}`: {why}"));
    let s = text.trim();
    if s.is_empty() {
        return Err(err("empty (use e.g. `250ms`, `60s`, `5m`, `48h`, `14d`)"));
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(err("expected a number"));
        }
        let value: u64 = rest[..digits]
            .parse()
            .map_err(|_| err("number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(err("missing unit (ms, s, m, h, d)")),
            other => return Err(err(&format!("unknown unit `{other}` (ms, s, m, h, d)"))),
        };
        rest = &rest[unit_len..];
        total = value
            .checked_mul(factor)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| err("too large"))?;
    }
    Ok(total)
}

/// [`format_duration_ms`] for a `Duration` (saturating).
pub fn format_duration(d: std::time::Duration) -> String {
    format_duration_ms(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Renders milliseconds the way operators write them: `48h`, `24h`, `14d`,
/// `1m30s`, `250ms`. Days are used only from a week up.
pub fn format_duration_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    let mut rest = ms;
    let day = if ms >= 7 * 86_400_000 {
        86_400_000
    } else {
        u64::MAX
    };
    for (unit, size) in [
        ("d", day),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seed_durations() {
        assert_eq!(parse_duration_ms("48h"), Ok(172_800_000));
        assert_eq!(parse_duration_ms("14d"), Ok(1_209_600_000));
        assert_eq!(parse_duration_ms("60s"), Ok(60_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
    }

    #[test]
    fn rejects_bad_durations_with_reason() {
        assert_eq!(
            parse_duration_ms("5").unwrap_err().to_string(),
            "invalid duration `5`: missing unit (ms, s, m, h, d)"
        );
        assert_eq!(
            parse_duration_ms("5w").unwrap_err().to_string(),
            "invalid duration `5w`: unknown unit `w` (ms, s, m, h, d)"
        );
        assert!(parse_duration_ms("").is_err());
        assert!(parse_duration_ms("h").is_err());
        assert!(parse_duration_ms("99999999999999999999d").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for text in [
            "48h", "24h", "14d", "7d", "1m", "45s", "250ms", "1m30s", "0s", "8d12h",
        ] {
            assert_eq!(format_duration_ms(parse_duration_ms(text).unwrap()), text);
        }
    }
}
