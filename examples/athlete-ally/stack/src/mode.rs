//! The files the stack reads every second: the stream mode (the stand-in
//! for the `event-bus-config` ConfigMap's `EVENT_STREAM_MODE`) and the
//! fault switch.

use std::path::Path;

/// `single`, `multi` (every worker), or `multi N` (N % of the workers: a
/// canary share).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// The share of workers in multi mode, 0–100.
    pub multi_percent: u8,
}

impl Mode {
    pub fn parse(text: &str) -> Result<Mode, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["single"] => Ok(Mode { multi_percent: 0 }),
            ["multi"] => Ok(Mode { multi_percent: 100 }),
            ["multi", n] => match n.trim_end_matches('%').parse::<u8>() {
                Ok(p) if p <= 100 => Ok(Mode { multi_percent: p }),
                _ => Err(format!("`{text}`: the share is 0 to 100")),
            },
            _ => Err(format!(
                "`{text}`: expected `single`, `multi` or `multi <percent>`"
            )),
        }
    }

    /// Whether worker `i` of `n` runs in multi mode.
    pub fn worker_is_multi(self, i: usize, n: usize) -> bool {
        i * 100 < usize::from(self.multi_percent) * n
    }
}

/// The mode in `path`; an unreadable or malformed file keeps `fallback`.
pub fn read_mode(path: &Path, fallback: Mode) -> Mode {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| Mode::parse(&t).ok())
        .unwrap_or(fallback)
}

/// The share of messages normalize fails, 0–100 (absent or malformed: 0).
pub fn read_fault(path: &Path) -> u8 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.trim().trim_end_matches('%').parse::<u8>().ok())
        .map_or(0, |p| p.min(100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_shares() {
        assert_eq!(Mode::parse("single\n"), Ok(Mode { multi_percent: 0 }));
        assert_eq!(Mode::parse("multi"), Ok(Mode { multi_percent: 100 }));
        let ten = Mode::parse("multi 10").unwrap();
        let multi: Vec<bool> = (0..10).map(|i| ten.worker_is_multi(i, 10)).collect();
        assert_eq!(multi.iter().filter(|m| **m).count(), 1);
        assert!(Mode::parse("multi 101").is_err());
        assert!(Mode::parse("dual").is_err());
    }
}
