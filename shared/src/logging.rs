//! Logs: JSON lines for CloudWatch from the Lambdas, plain text for a person
//! at the CLI, honouring Lambda's own log settings.
//!
//! Lambda's advanced logging controls set `AWS_LAMBDA_LOG_FORMAT` (`JSON` or
//! `Text`) and, for JSON, `AWS_LAMBDA_LOG_LEVEL` (`TRACE` … `FATAL`). A
//! function follows them; `RUST_LOG`, when set, is the finer filter and wins.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object a line (Lambda, CloudWatch Logs Insights).
    Json,
    /// Compact text for a terminal.
    Text,
}

/// The filter and format in force, from the variables `var` reads.
/// `default` is the caller's format (JSON for a Lambda, text for the CLI);
/// `AWS_LAMBDA_LOG_FORMAT` overrides it.
pub fn settings(default: LogFormat, var: impl Fn(&str) -> Option<String>) -> (String, LogFormat) {
    let format = match var("AWS_LAMBDA_LOG_FORMAT").as_deref() {
        Some(f) if f.eq_ignore_ascii_case("json") => LogFormat::Json,
        Some(f) if f.eq_ignore_ascii_case("text") => LogFormat::Text,
        _ => default,
    };
    let lambda_level = var("AWS_LAMBDA_LOG_LEVEL").map(|level| {
        match level.to_ascii_lowercase().as_str() {
            // tracing has no level above error.
            "fatal" => "error".to_owned(),
            other => other.to_owned(),
        }
    });
    let filter = var("RUST_LOG")
        .filter(|f| !f.is_empty())
        .or(lambda_level)
        .unwrap_or_else(|| "info".to_owned());
    (filter, format)
}

/// Sends log lines to stderr, with the filter and format of [`settings`]. Safe to call twice.
pub fn init(default: LogFormat) {
    let (filter, format) = settings(default, |name| std::env::var(name).ok());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_settings_and_rust_log() {
        type Case<'a> = (&'a [(&'a str, &'a str)], LogFormat, &'a str, LogFormat);
        let cases: [Case; 6] = [
            (&[], LogFormat::Json, "info", LogFormat::Json),
            (&[], LogFormat::Text, "info", LogFormat::Text),
            (
                &[("AWS_LAMBDA_LOG_FORMAT", "Text")],
                LogFormat::Json,
                "info",
                LogFormat::Text,
            ),
            (
                &[
                    ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
                    ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
                ],
                LogFormat::Json,
                "debug",
                LogFormat::Json,
            ),
            (
                &[("AWS_LAMBDA_LOG_LEVEL", "FATAL")],
                LogFormat::Json,
                "error",
                LogFormat::Json,
            ),
            (
                &[
                    ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
                    ("RUST_LOG", "pg_dump=trace"),
                ],
                LogFormat::Json,
                "pg_dump=trace",
                LogFormat::Json,
            ),
        ];
        for (vars, default, filter, format) in cases {
            let var = |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            };
            assert_eq!(
                settings(default, var),
                (filter.to_owned(), format),
                "{vars:?}"
            );
        }
    }
}
