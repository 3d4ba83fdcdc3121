//! The run of a function, shared by the Lambda entry points and `lifeboat run`:
//! parse and validate the payload, do the work, then report, alert and count.
//!
//! Alerting policy lives here and nowhere else. A function puts what a person
//! must hear (its notices) and what an alarm watches (its metrics) into its
//! report; the runtime sends them. Anything that must be delivered and was
//! not fails the run with its report, so the Lambda `Errors` alarm, which
//! CloudWatch raises without the function's help, still tells someone. The
//! alert about a failed run is the one message whose loss is only logged:
//! the run fails anyway and its alarm is the alert of last resort.

use crate::alert::{Alert, Alerts, SnsAlerts};
use crate::error::Error;
use crate::metrics::{CloudWatchMetrics, DEFAULT_NAMESPACE, Metric, Metrics, Unit};
use crate::report::Report;
use crate::request::{Fields, Request};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What the caller knows about this invocation.
#[derive(Debug, Clone, Copy)]
pub struct Invocation {
    /// The clock, read once at the start.
    pub now: DateTime<Utc>,
    /// When Lambda will stop the function, if it will.
    pub deadline: Option<SystemTime>,
}

impl Invocation {
    /// An invocation starting now, with no deadline (the CLI).
    pub fn now() -> Self {
        Invocation {
            now: Utc::now(),
            deadline: None,
        }
    }

    /// An invocation starting now that must end by Lambda's deadline (milliseconds since the epoch).
    pub fn with_deadline_ms(deadline_ms: u64) -> Self {
        Invocation {
            now: Utc::now(),
            deadline: (deadline_ms > 0)
                .then(|| SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms)),
        }
    }
}

/// A token naming this run, different for every invocation (nanoseconds and
/// process id): what two runs of one slot tell their own work apart by.
pub fn run_token() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:x}-{:x}", nanos, std::process::id())
}

/// Where a function's alerts and metrics go.
#[derive(Clone)]
pub struct Sinks {
    /// Alerts for people.
    pub alerts: Arc<dyn Alerts>,
    /// Metrics for dashboards and alarms.
    pub metrics: Arc<dyn Metrics>,
}

impl Sinks {
    /// SNS and CloudWatch, as configured by `LIFEBOAT_SNS_TOPIC_ARN` and `LIFEBOAT_METRIC_NAMESPACE`.
    pub fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, Error> {
        let topic = std::env::var("LIFEBOAT_SNS_TOPIC_ARN")
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::Config(
                    "LIFEBOAT_SNS_TOPIC_ARN is not set: failures could not be alerted".into(),
                )
            })?;
        let namespace = std::env::var("LIFEBOAT_METRIC_NAMESPACE")
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        Ok(Sinks {
            alerts: Arc::new(SnsAlerts::new(aws_sdk_sns::Client::new(aws), topic)),
            metrics: Arc::new(CloudWatchMetrics::new(
                aws_sdk_cloudwatch::Client::new(aws),
                namespace,
            )),
        })
    }
}

/// A Lifeboat function: its name, its payload, and its work.
pub trait BackupFunction: Send + Sync {
    /// The function's name (`rds-snapshot`), as deployed and as `lifeboat run` calls it.
    const NAME: &'static str;
    /// The function's own payload fields.
    type Fields: Fields + Send + Sync;

    /// Where this function's alerts and metrics go.
    fn sinks(&self) -> &Sinks;

    /// Does the work of one valid request and reports it. Failures of single
    /// sources go into the report; an `Err` means the run as a whole could not proceed.
    fn run(
        &self,
        request: &Request<Self::Fields>,
        invocation: &Invocation,
    ) -> impl Future<Output = Result<Report, Error>> + Send;
}

/// Handles one event: an invalid payload is refused before any AWS call; a run
/// with failures (or one that could not proceed) sends one alert and returns an
/// error, so the Lambda `Errors` metric and its alarm fire as well. Dry runs
/// send no alert, notice or metric: they make no call that changes anything.
pub async fn handle<F: BackupFunction>(
    function: &F,
    event: Value,
    invocation: Invocation,
) -> Result<Report, Error> {
    handle_and_tell(function, event, invocation).await.outcome
}

/// How a run ended, and whether a failure's alert was lost.
#[derive(Debug)]
pub struct Ended {
    /// The report, or why the run failed.
    pub outcome: Result<Report, Error>,
    /// The run failed, its alert was due (not a dry run, not a refused
    /// payload) and could not be sent: no one has been told yet, so whoever
    /// watches the process from outside (pg-dump's task's stop rule) must.
    pub unalerted: bool,
}

/// [`handle`], and whether a failure's due alert was lost.
pub async fn handle_and_tell<F: BackupFunction>(
    function: &F,
    event: Value,
    invocation: Invocation,
) -> Ended {
    let ended = |outcome, unalerted| Ended { outcome, unalerted };
    let request = match Request::<F::Fields>::parse(event, invocation.now) {
        Ok(request) => request,
        Err(refused) => return ended(Err(refused.into()), false),
    };
    tracing::info!(function = F::NAME, plan = %request.plan, slot = %request.slot, dry_run = request.dry_run, "run started");
    let outcome = function.run(&request, &invocation).await;
    let sinks = function.sinks();
    match outcome {
        Ok(mut report) => {
            report.sort();
            if !report.dry_run {
                deliver(sinks, &mut report).await;
            }
            tracing::info!(
                created = report.created.len(),
                skipped = report.skipped.len(),
                failed = report.failed.len(),
                report = %serde_json::to_string(&report).unwrap_or_default(),
                "run finished"
            );
            if !report.has_failed() {
                return ended(Ok(report), false);
            }
            let lost = !report.dry_run && !alert(sinks, &Alert::for_failures(&report)).await;
            let report = Box::new(report);
            ended(Err(Error::RunFailed { report }), lost)
        }
        Err(error) => {
            tracing::error!(error = %crate::aws::describe(&error), "run failed");
            let lost = !request.dry_run
                && !alert(
                    sinks,
                    &Alert::for_error(F::NAME, request.plan.as_str(), &error),
                )
                .await;
            ended(Err(error), lost)
        }
    }
}

/// Sends the report's notices and metrics, and the outcome counts; what must
/// arrive and did not goes into `undelivered`.
async fn deliver(sinks: &Sinks, report: &mut Report) {
    for notice in &report.notices {
        let alert = Alert::notice(&report.function, report.plan.as_str(), notice);
        if let Err(e) = sinks.alerts.publish(&alert).await {
            let error = crate::aws::describe(e.as_ref());
            tracing::error!(%error, subject = %alert.subject, "notice could not be sent");
            report
                .undelivered
                .push(format!("notice `{}`: Publish: {error}", alert.subject));
        }
    }
    let watched = match report.metrics.is_empty() {
        true => Ok(()),
        false => sinks.metrics.put(&report.metrics).await,
    };
    if let Err(e) = watched {
        let error = crate::aws::describe(e.as_ref());
        tracing::error!(%error, "metrics could not be sent");
        let count = report.metrics.len();
        report
            .undelivered
            .push(format!("{count} metrics: PutMetricData: {error}"));
    }
    // The outcome counts feed the dashboard only: their loss is logged.
    if let Err(e) = sinks.metrics.put(&outcome_counts(report)).await {
        tracing::warn!(error = %crate::aws::describe(e.as_ref()), "outcome metrics could not be sent");
    }
}

/// Publishes `alert`; whether it was sent.
async fn alert(sinks: &Sinks, alert: &Alert) -> bool {
    match sinks.alerts.publish(alert).await {
        Ok(()) => {
            tracing::info!(subject = %alert.subject, "alert sent");
            true
        }
        Err(e) => {
            tracing::error!(error = %crate::aws::describe(e.as_ref()), subject = %alert.subject, "alert could not be sent");
            false
        }
    }
}

/// Job outcomes per function and plan, for the dashboard.
fn outcome_counts(report: &Report) -> [Metric; 3] {
    let dims = || {
        vec![
            ("Function", report.function.clone()),
            ("Plan", report.plan.to_string()),
        ]
    };
    [
        ("BackupsCreated", report.created.len()),
        ("BackupsSkipped", report.skipped.len()),
        ("BackupsFailed", report.failed.len()),
    ]
    .map(|(name, n)| Metric {
        name,
        dimensions: dims(),
        value: n as f64,
        unit: Unit::Count,
    })
}

/// Serves `function` as a Lambda: each event goes through [`handle`]'s run.
pub async fn serve<F: BackupFunction>(function: F) -> Result<(), lambda_runtime::Error> {
    let function = &function;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| async move {
            let invocation = Invocation::with_deadline_ms(event.context.deadline);
            // handle_and_tell, not handle: one async layer fewer keeps the
            // functions' futures within the compiler's layout depth.
            handle_and_tell(function, event.payload, invocation)
                .await
                .outcome
        },
    ))
    .await
}
