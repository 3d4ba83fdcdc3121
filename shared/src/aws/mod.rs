//! The adapters at the edge: the AWS listings and calls, per service, read
//! into the model's plain structs. Also the SDK configuration, loaded once
//! from the standard environment, and the wording of SDK errors.
//!
//! Alerts and metrics, which every function sends and tests hold in memory,
//! sit behind the traits of [`crate::alert`] and [`crate::metrics`]. The
//! listings here are plain functions over SDK clients: tests drive them with
//! aws-smithy-mocks at the SDK level and against the local emulator.

pub mod catalog;
pub mod ec2;
pub mod rds;

use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Loads the SDK configuration from the standard environment (profile, region,
/// credentials, and `AWS_ENDPOINT_URL`, which points every client at the local
/// emulator in tests and in the demo). Call it once per process.
pub async fn load() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// An S3 client. Path-style addressing when an endpoint is set (the local
/// emulator on `http://127.0.0.1:PORT` has no bucket subdomains).
pub fn s3_client(aws: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(aws)
        .force_path_style(aws.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A client's region as a name (`us-east-1`), empty when none is configured.
pub fn region_name(region: Option<&aws_config::Region>) -> String {
    region.map(ToString::to_string).unwrap_or_default()
}

/// An error with its whole chain of causes on one line, for a person to read.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    DisplayErrorContext(error).to_string()
}

/// The short form of an SDK error for a report item: `Code: message`, falling
/// back to the whole chain when the service sent no code (a network error).
pub fn summarize<E>(error: &E) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => describe(error),
    }
}
