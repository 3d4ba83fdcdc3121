//! `freshness`: checks the result, not the job. Every protected resource must
//! have a complete backup younger than its recovery point objective; the run
//! sends the ages and counts to CloudWatch, a `Heartbeat` so an alarm notices
//! when the checker itself stops, and one alert listing everything stale or
//! unprotected. Backups are found with one paginated listing per kind, never
//! one call per resource. A check that could not run fails the run: it is
//! never reported as fresh.

use lifeboat::alert::{Alert, table};
use lifeboat::catalog::{Catalog, ManagedBackup};
use lifeboat::ec2;
use lifeboat::freshness::{classify, newest_by_resource};
use lifeboat::metrics::{Metric, Unit};
use lifeboat::payload::{FreshnessCheck, FreshnessFields};
use lifeboat::report::{Check, Failed, Freshness as State, Kind, Report};
use lifeboat::runtime::{BackupFunction, Invocation, Sinks};
use lifeboat::{Error, Request};
use std::collections::BTreeMap;

/// The `freshness` function with its clients.
pub struct Freshness {
    catalog: Catalog,
    rds: aws_sdk_rds::Client,
    ec2: aws_sdk_ec2::Client,
    sinks: Sinks,
}

impl Freshness {
    /// The function over a catalog of backups, the clients that list the protected resources, and its sinks.
    pub fn new(
        catalog: Catalog,
        rds: aws_sdk_rds::Client,
        ec2: aws_sdk_ec2::Client,
        sinks: Sinks,
    ) -> Self {
        Freshness {
            catalog,
            rds,
            ec2,
            sinks,
        }
    }

    /// The function as configured by the environment.
    pub fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, Error> {
        Ok(Self::with_sinks(aws, Sinks::from_env(aws)?))
    }

    /// The function over the environment's clients with the given sinks (`lifeboat status` sends nothing).
    pub fn with_sinks(aws: &aws_config::SdkConfig, sinks: Sinks) -> Self {
        let bucket = std::env::var("LIFEBOAT_BUCKET")
            .ok()
            .filter(|b| !b.is_empty());
        let rds = aws_sdk_rds::Client::new(aws);
        let ec2 = aws_sdk_ec2::Client::new(aws);
        let catalog = Catalog::new(
            rds.clone(),
            ec2.clone(),
            lifeboat::aws::s3_client(aws),
            bucket,
        );
        Self::new(catalog, rds, ec2, sinks)
    }

    /// Runs every check, changing nothing: one verdict per protected resource,
    /// and a failure for each listed resource that does not exist. `only_plan`
    /// narrows every check to backups of that plan.
    pub async fn check(
        &self,
        fields: &FreshnessFields,
        only_plan: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(Vec<Check>, Vec<Failed>), Error> {
        let mut listings: BTreeMap<Kind, Vec<ManagedBackup>> = BTreeMap::new();
        let mut checks = Vec::new();
        let mut failed = Vec::new();
        for check in &fields.checks {
            // One listing per kind, however many checks share it.
            if let std::collections::btree_map::Entry::Vacant(slot) = listings.entry(check.kind) {
                slot.insert(self.catalog.list(check.kind, None).await?);
            }
            let backups = listings
                .get(&check.kind)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let (resources, missing) = self.resources(check).await?;
            failed.extend(missing.into_iter().map(|id| Failed {
                kind: check.kind,
                error: format!("protected resource `{id}` does not exist in this region"),
                source: id,
            }));
            let plans: Option<Vec<String>> = match (only_plan, &check.plans) {
                (Some(plan), _) => Some(vec![plan.to_owned()]),
                (None, plans) => plans.clone(),
            };
            let newest = newest_by_resource(backups, plans.as_deref(), now);
            for resource in resources {
                let backup = newest.get(resource.as_str());
                let (state, age_hours) = classify(backup.map(|b| b.slot), check.max_age_hours, now);
                checks.push(Check {
                    kind: check.kind,
                    newest: backup.map(|b| b.id.clone()),
                    newest_time: backup.map(|b| b.slot.format("%Y-%m-%dT%H:%M:00Z").to_string()),
                    age_hours: age_hours.map(|a| (a * 100.0).round() / 100.0),
                    max_age_hours: check.max_age_hours,
                    state,
                    source: resource,
                });
            }
        }
        checks.sort_by(|a, b| {
            (a.kind, &a.source)
                .cmp(&(b.kind, &b.source))
                .then(a.state.cmp(&b.state))
        });
        // A resource in several checks gets a verdict from each: no verdict hides another.
        Ok((checks, failed))
    }

    /// The protected resources of one check, and its listed ids that do not exist.
    async fn resources(&self, check: &FreshnessCheck) -> Result<(Vec<String>, Vec<String>), Error> {
        if let Some(names) = &check.database {
            return Ok((names.values(), Vec::new()));
        }
        let Some(selection) = &check.select else {
            return Ok((Vec::new(), Vec::new()));
        };
        let ids = |found: Vec<String>, missing: Vec<String>| (found, missing);
        Ok(match check.kind {
            Kind::Rds | Kind::RdsCluster => {
                let listed = if check.kind == Kind::Rds {
                    rds_snapshot::inventory::list_instances(&self.rds).await?
                } else {
                    rds_snapshot::inventory::list_clusters(&self.rds).await?
                };
                let (chosen, missing) =
                    rds_snapshot::inventory::select(selection, check.kind, listed);
                ids(
                    chosen.into_iter().map(|s| s.id).collect(),
                    missing.into_iter().map(|f| f.source).collect(),
                )
            }
            Kind::Ebs => {
                let (volumes, missing) = ec2::select_volumes(&self.ec2, selection).await?;
                ids(volumes.into_iter().map(|v| v.id).collect(), missing)
            }
            Kind::Ami => {
                let (instances, missing) = ec2::select_instances(&self.ec2, selection).await?;
                let alive = instances
                    .into_iter()
                    .filter(|i| i.state != "terminated" && i.state != "shutting-down");
                ids(alive.map(|i| i.id).collect(), missing)
            }
            Kind::PgDump => (Vec::new(), Vec::new()),
        })
    }
}

impl BackupFunction for Freshness {
    const NAME: &'static str = "freshness";
    type Fields = FreshnessFields;

    fn sinks(&self) -> &Sinks {
        &self.sinks
    }

    async fn run(
        &self,
        request: &Request<FreshnessFields>,
        invocation: &Invocation,
    ) -> Result<Report, Error> {
        let mut report = Report::new(
            Self::NAME,
            request.plan.clone(),
            request.slot,
            request.dry_run,
        );
        let (checks, failed) = self.check(&request.fields, None, invocation.now).await?;
        report.checks = checks;
        report.failed = failed;
        let stale = report
            .checks
            .iter()
            .filter(|c| c.state == State::Stale)
            .count();
        let unprotected = report
            .checks
            .iter()
            .filter(|c| c.state == State::Unprotected)
            .count();
        tracing::info!(
            checked = report.checks.len(),
            stale,
            unprotected,
            "freshness checked"
        );
        if request.dry_run {
            return Ok(report);
        }
        // Not sending either is a failure of the run (the alarms watch the metrics), never a pass.
        if stale + unprotected > 0 {
            let alert = findings(&report, stale, unprotected);
            self.sinks
                .alerts
                .publish(&alert)
                .await
                .map_err(|e| Error::aws("Publish", e))?;
        }
        let metrics = metrics(&report, stale, unprotected);
        self.sinks
            .metrics
            .put(&metrics)
            .await
            .map_err(|e| Error::aws("PutMetricData", e))?;
        Ok(report)
    }
}

/// `BackupAgeSeconds` per resource with a backup; `StaleBackups`, `UnprotectedResources` and `Heartbeat` per plan.
fn metrics(report: &Report, stale: usize, unprotected: usize) -> Vec<Metric> {
    let plan = || vec![("Plan", report.plan.to_string())];
    let mut metrics: Vec<Metric> = report
        .checks
        .iter()
        .filter_map(|c| {
            c.age_hours.map(|hours| Metric {
                name: "BackupAgeSeconds",
                dimensions: vec![("Kind", c.kind.to_string()), ("Source", c.source.clone())],
                value: (hours * 3600.0).round(),
                unit: Unit::Seconds,
            })
        })
        .collect();
    for (name, value) in [
        ("StaleBackups", stale),
        ("UnprotectedResources", unprotected),
        ("Heartbeat", 1),
    ] {
        metrics.push(Metric {
            name,
            dimensions: plan(),
            value: value as f64,
            unit: Unit::Count,
        });
    }
    metrics
}

/// One message listing every stale and unprotected resource, for a person.
fn findings(report: &Report, stale: usize, unprotected: usize) -> Alert {
    let subject = format!(
        "Lifeboat: {stale} stale, {unprotected} unprotected (plan {})",
        report.plan
    );
    let rows = report
        .checks
        .iter()
        .filter(|c| c.state != State::Ok)
        .map(|c| {
            [
                c.state.to_string(),
                c.kind.to_string(),
                c.source.clone(),
                c.newest_time.clone().unwrap_or_else(|| "none".to_owned()),
                c.age_hours
                    .map_or_else(|| "-".to_owned(), |a| format!("{a:.1} h")),
                format!("{} h", c.max_age_hours),
            ]
        });
    let body = format!(
        "Lifeboat's freshness check (plan `{}`) found resources without a fresh backup:\n\n{}\n\
         A stale resource's newest complete backup is older than its threshold; an unprotected one has none.\n\
         Check the backup function's logs and its Errors alarm, then run it by hand if needed.\n",
        report.plan,
        table(
            [
                "state",
                "kind",
                "source",
                "newest backup",
                "age",
                "threshold"
            ],
            rows
        )
    );
    let mut alert = Alert::notice("freshness", report.plan.as_str(), subject, body);
    alert
        .attributes
        .insert("stale".to_owned(), stale.to_string());
    alert
        .attributes
        .insert("unprotected".to_owned(), unprotected.to_string());
    alert
}
