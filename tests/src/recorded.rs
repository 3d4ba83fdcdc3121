//! The AWS operations each function makes in the emulator tests, written to
//! `target/aws-calls/` for `scripts/iam_grants.py`, which checks every one
//! against that function's policy as Terraform renders it.
//!
//! Only the clients handed to a function are recorded (`client.recorded("prune")`,
//! [`crate::AlertInbox::sinks`]), never those that build a test's fixtures or
//! read its results, so each line is a call the function itself made.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

/// A client whose operations are recorded as one function's.
pub trait Recorded: Sized {
    /// The same client (its configuration and interceptors kept), recording
    /// every operation it sends as `function`'s.
    fn recorded(self, function: &str) -> Self;
}

macro_rules! recorded {
    ($($sdk:ident => $prefix:literal),* $(,)?) => {$(
        impl Recorded for $sdk::Client {
            fn recorded(self, function: &str) -> Self {
                let config = self
                    .config()
                    .to_builder()
                    .interceptor(CallLog::new(function, $prefix))
                    .build();
                $sdk::Client::from_conf(config)
            }
        }
    )*};
}

// The IAM service prefix of each SDK the functions use.
recorded! {
    aws_sdk_cloudwatch => "cloudwatch",
    aws_sdk_ec2 => "ec2",
    aws_sdk_ecs => "ecs",
    aws_sdk_rds => "rds",
    aws_sdk_s3 => "s3",
    aws_sdk_secretsmanager => "secretsmanager",
    aws_sdk_sns => "sns",
}

/// The folder the calls go to: `LIFEBOAT_AWS_CALLS`, or `aws-calls` in
/// Cargo's target folder.
pub fn calls_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LIFEBOAT_AWS_CALLS") {
        return PathBuf::from(dir);
    }
    target_dir().join("aws-calls")
}

/// Where the terraform test writes the policies it rendered:
/// `LIFEBOAT_AWS_POLICIES`, or `aws-policies.json` in Cargo's target folder.
pub fn policies_path() -> PathBuf {
    if let Some(path) = std::env::var_os("LIFEBOAT_AWS_POLICIES") {
        return PathBuf::from(path);
    }
    target_dir().join("aws-policies.json")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join("target"))
}

/// Writes each operation a client sends, once per test process, as a line
/// `<function> <region> <prefix> <Operation> [flags]`. The flags are what the
/// request carries that IAM authorises as a further or another action:
/// `version` (an S3 object version), `tags` (tags sent with a create).
#[derive(Debug)]
struct CallLog {
    function: String,
    prefix: &'static str,
}

impl CallLog {
    fn new(function: &str, prefix: &'static str) -> Self {
        CallLog {
            function: function.to_owned(),
            prefix,
        }
    }
}

/// The lines this process has written, so each is written once.
static WRITTEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn write_line(line: String) -> std::io::Result<()> {
    let mut written = WRITTEN.lock().unwrap_or_else(|e| e.into_inner());
    if written.contains(&line) {
        return Ok(());
    }
    let dir = calls_dir();
    std::fs::create_dir_all(&dir)?;
    // One file per test process: parallel binaries never share a file.
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "tests".to_owned());
    let path = dir.join(format!("{binary}-{}.calls", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{line}")?;
    written.insert(line);
    Ok(())
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    // Before each attempt the request exists (to see a version id) and the
    // operation's metadata is in the bag; a retry writes nothing new.
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map(|m| m.name().to_owned())
            .ok_or("CallLog: no operation metadata before transmit")?;
        let region = cfg
            .load::<aws_config::Region>()
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        let request = context.request();
        let body = request.body().bytes().unwrap_or_default();
        let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
        let mut line = format!("{} {region} {} {operation}", self.function, self.prefix);
        let version = match self.prefix {
            "s3" => request.uri().contains("versionId=") || has(b"<VersionId>"),
            _ => false,
        };
        if version {
            line.push_str(" version");
        }
        // EC2's TagSpecification.N, RDS's Tags.Tag.N (query protocol), S3's header.
        let tags = match self.prefix {
            "ec2" => has(b"TagSpecification."),
            "rds" => has(b"Tags.Tag."),
            "s3" => request.headers().contains_key("x-amz-tagging"),
            _ => false,
        };
        if tags {
            line.push_str(" tags");
        }
        write_line(line)
            .map_err(|e| format!("CallLog: write to {}: {e}", calls_dir().display()).into())
    }
}
