//! Logs: JSON lines for CloudWatch from the Lambdas, plain text for a person at the CLI.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object a line (Lambda, CloudWatch Logs Insights).
    Json,
    /// Compact text for a terminal.
    Text,
}

/// Sends log lines to stderr, filtered by `RUST_LOG` (default `info`). Safe to call twice.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.compact().with_target(false).try_init(),
    };
}
