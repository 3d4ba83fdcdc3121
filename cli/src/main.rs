//! `lifeboat`: the operator's command. Runs the functions' own handlers
//! in-process against whatever AWS the standard SDK environment points at.

mod restore;
mod retention;
mod status;
mod verify;

use clap::{Parser, Subcommand, ValueEnum};
use lifeboat::Error;
use lifeboat::logging::{self, LogFormat};
use lifeboat::runtime::{self, BackupFunction, Invocation};
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Lifeboat: backups of an AWS estate, run by hand.
#[derive(Debug, Parser)]
#[command(name = "lifeboat", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a function's handler with a payload and print its JSON report.
    ///
    /// Exits 0 when the run succeeded, 1 when it failed and its alert was
    /// sent (a dry run sends none; the report is still printed), 2 when the
    /// payload was refused (nothing was changed), 3 when it failed and no
    /// alert could be sent (its configuration, or SNS, failed).
    Run {
        /// The function to run.
        function: Function,
        /// The payload file (JSON), or `-` for standard input.
        #[arg(long, required_unless_present = "payload", conflicts_with = "payload")]
        event: Option<PathBuf>,
        /// The payload itself, as JSON text (how pg-dump's task is given its database).
        #[arg(long)]
        payload: Option<String>,
        /// Run as a Lambda run of this many seconds would: with its deadline,
        /// so that pg-dump hands what it cannot finish to its task. Without
        /// it, a run has no deadline and dumps everything itself.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=900))]
        timeout: Option<u64>,
    },
    /// The freshness check for a person: every protected resource, its newest
    /// backup, age, threshold and state. Sends nothing; exits 1 when anything
    /// is stale or unprotected (or could not be checked), 2 on a bad payload.
    Status {
        /// The freshness payload whose checks to run.
        #[arg(long, default_value = "events/freshness.json")]
        event: PathBuf,
        /// Count only backups of this plan.
        #[arg(long)]
        plan: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Try a retention policy: read a JSON array of RFC 3339 backup times on
    /// stdin and print which the policy keeps (and why) and which it deletes.
    ///
    /// With --simulate, instead show what the policy holds in steady state.
    Retention {
        /// The `keep` policy, as JSON: '{"daily": 7, "weekly": 4, "monthly": 12}'.
        #[arg(long)]
        policy: String,
        /// Simulate this many days of backups, pruned after each one, instead of reading stdin.
        #[arg(long, value_name = "DAYS")]
        simulate: Option<u32>,
        /// With --simulate: how often a backup is made (`1d`, `6h`).
        #[arg(long, default_value = "1d", requires = "simulate")]
        every: String,
    },
    /// Check a stored dump against its manifest without restoring it: the
    /// exact object version it names, its size and SHA-256, its archive read
    /// whole, and the rows of every table against the manifest's fingerprint.
    ///
    /// Exits 0 when the dump is the one its manifest describes, 1 when it
    /// differs or cannot be checked, 2 on bad options.
    Verify(verify::Which),
    /// Restore a stored dump into an empty database: the exact object
    /// version its manifest names, streamed from S3 into pg_restore and psql
    /// in one transaction, committed only when its size and SHA-256 are as
    /// recorded; then every table's rows compared with the manifest.
    ///
    /// Exits 0 when the database holds what the manifest records, 1 when
    /// nothing was restored or the rows differ, 2 on bad options.
    Restore(restore::Restore),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Function {
    RdsSnapshot,
    EbsSnapshot,
    AmiBackup,
    PgDump,
    Prune,
    Freshness,
    RestoreDrill,
}

#[tokio::main]
async fn main() -> ExitCode {
    logging::init(LogFormat::Text);
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            function,
            event,
            payload,
            timeout,
        } => {
            let event = match (event, payload) {
                (_, Some(text)) => {
                    serde_json::from_str(&text).map_err(|e| format!("the payload is not JSON: {e}"))
                }
                (Some(path), None) => read_event(&path),
                (None, None) => Err("give --event or --payload".into()),
            };
            let invocation = match timeout {
                Some(seconds) => {
                    let deadline = std::time::SystemTime::now() + Duration::from_secs(seconds);
                    let ms = deadline
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as u64)
                        .unwrap_or_default();
                    Invocation::with_deadline_ms(ms)
                }
                None => Invocation::now(),
            };
            run(function, event, invocation).await
        }
        Command::Status { event, plan, json } => {
            status_command(&event, plan.as_deref(), json).await
        }
        Command::Retention {
            policy,
            simulate,
            every,
        } => retention_command(&policy, simulate, &every),
        Command::Verify(which) => verify::command(which).await,
        Command::Restore(restore) => restore::command(restore).await,
    }
}

async fn status_command(event: &PathBuf, plan: Option<&str>, json: bool) -> ExitCode {
    let now = chrono::Utc::now();
    let request = read_event(event).and_then(|e| {
        lifeboat::Request::<freshness::fields::FreshnessFields>::parse(e, now)
            .map_err(|e| format!("invalid payload: {e}"))
    });
    let (request, only) = match (request, plan.map(lifeboat::Plan::new).transpose()) {
        (Err(message), _) | (Ok(_), Err(message)) => {
            eprintln!("lifeboat: {message}");
            return ExitCode::from(2);
        }
        (Ok(request), Ok(only)) => (request, only),
    };
    let aws = lifeboat::aws::load().await;
    let sinks = lifeboat::runtime::Sinks {
        alerts: std::sync::Arc::new(lifeboat::alert::MemoryAlerts::default()),
        metrics: std::sync::Arc::new(lifeboat::metrics::MemoryMetrics::default()),
    };
    let fan_out = match lifeboat::fanout::FanOut::from_env() {
        Ok(fan_out) => fan_out,
        Err(e) => {
            eprintln!("lifeboat: {e}");
            return ExitCode::from(2);
        }
    };
    let function = freshness::Freshness::with_sinks(&aws, sinks, fan_out);
    let found = match function.check(&request.fields, only.as_ref(), now).await {
        Ok(found) => found,
        Err(e) => {
            eprintln!(
                "lifeboat: the check could not run: {}",
                lifeboat::aws::describe(&e)
            );
            return ExitCode::FAILURE;
        }
    };
    if json {
        let out = serde_json::json!({ "checks": found.checks, "failed": found.failed, "quotas": found.quotas });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        print!("{}", status::render(&found));
    }
    let healthy = found.failed.is_empty()
        && found.quotas.iter().all(|q| !q.is_near())
        && found
            .checks
            .iter()
            .all(|c| c.state == lifeboat::report::Freshness::Ok && !c.unproven);
    if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn retention_command(policy: &str, simulate: Option<u32>, every: &str) -> ExitCode {
    let policy = match retention::parse_policy(policy) {
        Ok(policy) => policy,
        Err(message) => {
            eprintln!("lifeboat: {message}");
            return ExitCode::from(2);
        }
    };
    let now = chrono::Utc::now();
    let out = match simulate {
        Some(days) => retention::simulate(&policy, days, every, now),
        None => retention::plan_stdin(&policy, now),
    };
    match out {
        Ok(text) => {
            println!("{}", text.trim_end());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("lifeboat: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run(function: Function, event: Result<Value, String>, invocation: Invocation) -> ExitCode {
    let event = match event {
        Ok(event) => event,
        Err(message) => {
            eprintln!("lifeboat: {message}");
            return ExitCode::from(2);
        }
    };
    let aws = lifeboat::aws::load().await;
    let outcome = match function {
        Function::RdsSnapshot => {
            invoke(rds_snapshot::RdsSnapshot::from_env(&aws), event, invocation).await
        }
        Function::EbsSnapshot => {
            invoke(ebs_snapshot::EbsSnapshot::from_env(&aws), event, invocation).await
        }
        Function::AmiBackup => {
            invoke(ami_backup::AmiBackup::from_env(&aws), event, invocation).await
        }
        Function::PgDump => invoke(pg_dump::PgDump::from_env(&aws), event, invocation).await,
        Function::Prune => invoke(prune::Prune::from_env(&aws), event, invocation).await,
        Function::Freshness => {
            invoke(freshness::Freshness::from_env(&aws), event, invocation).await
        }
        Function::RestoreDrill => {
            invoke(
                restore_drill::RestoreDrill::from_env(&aws),
                event,
                invocation,
            )
            .await
        }
    };
    finish(outcome)
}

/// Runs `function`'s handler; a function that cannot be configured ran
/// without sinks, so its failure was told no one.
async fn invoke<F: BackupFunction>(
    function: Result<F, Error>,
    event: Value,
    invocation: Invocation,
) -> runtime::Ended {
    match function {
        Ok(function) => runtime::handle_and_tell(&function, event, invocation).await,
        Err(error) => runtime::Ended {
            outcome: Err(error),
            unalerted: true,
        },
    }
}

fn read_event(path: &PathBuf) -> Result<Value, String> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read the payload from stdin: {e}"))?;
        text
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
    };
    serde_json::from_str(&text).map_err(|e| format!("the payload is not JSON: {e}"))
}

/// Exit 3 for a failure that no alert told: pg-dump's task's stop rule
/// (terraform/task.tf) alerts on every exit but 0 and 1.
const FAILED_UNALERTED: u8 = 3;

fn finish(ended: runtime::Ended) -> ExitCode {
    let failed = || {
        if ended.unalerted {
            eprintln!("lifeboat: no alert about this failure could be sent");
            ExitCode::from(FAILED_UNALERTED)
        } else {
            ExitCode::FAILURE
        }
    };
    match ended.outcome {
        Ok(report) => {
            print_json(&report);
            ExitCode::SUCCESS
        }
        Err(Error::RunFailed { report }) => {
            print_json(&report);
            eprintln!("lifeboat: {}", Error::RunFailed { report });
            failed()
        }
        Err(e @ Error::InvalidPayload(_)) => {
            eprintln!("lifeboat: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("lifeboat: {}", lifeboat::aws::describe(&e));
            failed()
        }
    }
}

fn print_json(report: &lifeboat::Report) {
    use std::io::Write;
    match serde_json::to_string_pretty(report) {
        // A reader that stopped reading (`| head`) is not an error of the run.
        Ok(json) => {
            let _ = writeln!(std::io::stdout(), "{json}");
        }
        Err(e) => eprintln!("lifeboat: cannot print the report: {e}"),
    }
}
