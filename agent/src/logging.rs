//! Logs: tracing to stderr, human (one line per event, every value
//! sanitized) or JSON.

use crate::cli::LogFormat;
use crate::text::untrusted_line;
use std::io::IsTerminal;

/// tracing to stderr: human on a terminal, JSON with `--log-format json`;
/// the filter comes from `RUST_LOG` (default `default_level`: `info` for the
/// daemon, `warn` for one-shot commands).
pub fn init_logging(format: LogFormat, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder
            .with_ansi(crate::report::use_color(std::io::stderr().is_terminal()))
            .fmt_fields(one_line_fields())
            .try_init(),
    };
}

/// Human log fields, each value through the one sanitizer: a value (a gate's
/// words in an error, an alert) can never start a line of its own.
fn one_line_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let text = untrusted_line(&format!("{value:?}"));
        if field.name() == "message" {
            write!(w, "{text}")
        } else {
            write!(w, "{}={text}", field.name())
        }
    })
    .delimited(" ")
}
