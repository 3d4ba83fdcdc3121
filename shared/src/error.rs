//! The one error type of the shared crate, and the payload error that names a field.

use crate::report::Report;

/// A boxed error from an AWS client or another library, kept whole until a person reads it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a payload was refused. Always names the field, so an operator can fix the schedule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct PayloadError {
    /// Dotted path of the offending field (`select.tags`, `copy_to[0].region`), or `.` for the whole payload.
    pub field: String,
    /// What is wrong with it, in words.
    pub message: String,
}

impl PayloadError {
    /// A refusal of `field` for the reason `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Everything that can end a run of a Lifeboat function.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The payload did not parse or validate; nothing was changed.
    #[error("invalid payload: {0}")]
    InvalidPayload(#[from] PayloadError),

    /// The run finished, but some sources failed; the report says which.
    #[error("{} in plan `{}`: {}", what_failed(.report), .report.plan, .report.failure_summary())]
    RunFailed {
        /// The full report of the run, failures included.
        report: Box<Report>,
    },

    /// An AWS call that the whole run depends on failed (for example the
    /// listing of the sources), so no source could be handled.
    #[error("{operation} failed: {source}")]
    Aws {
        /// The AWS operation, as AWS names it (`DescribeDBInstances`).
        operation: &'static str,
        /// The SDK's error, with its code and message.
        #[source]
        source: BoxError,
    },

    /// The function's environment is not usable (a missing or malformed variable).
    #[error("configuration: {0}")]
    Config(String),
}

fn what_failed(report: &Report) -> String {
    match report.failed.len() {
        0 => "what the run had to send was not delivered".to_owned(),
        1 => "1 source failed".to_owned(),
        n => format!("{n} sources failed"),
    }
}

impl Error {
    /// The error type the Lambda runtime reports (and CloudWatch shows) for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::InvalidPayload(_) => "Lifeboat.InvalidPayload",
            Error::RunFailed { .. } => "Lifeboat.RunFailed",
            Error::Aws { .. } => "Lifeboat.AwsError",
            Error::Config(_) => "Lifeboat.Config",
        }
    }

    /// Wraps an SDK error from `operation`, keeping its code and message.
    pub fn aws(operation: &'static str, source: impl Into<BoxError>) -> Self {
        Error::Aws {
            operation,
            source: source.into(),
        }
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(error: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: crate::aws::describe(&error),
        }
    }
}
