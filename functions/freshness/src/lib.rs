//! `freshness`: checks the result, not the job. Every protected resource must
//! have a complete backup younger than its recovery point objective.
//!
//! List (one paginated listing per kind, never one call per resource, the
//! kinds at once through the fan-out; and the protected resources) → assess
//! (pure: the newest complete backup of each resource against its threshold)
//! → report, with the ages and counts as metrics, a `Heartbeat` so an alarm
//! notices when the checker itself stops, and one notice listing everything
//! stale, unprotected or (where a check asks for a restore drill that passed
//! within `proven_within_days`) unproven; the runtime sends both, and fails the run if they do
//! not arrive. A check that could not run fails the run: it is never reported
//! as fresh.

pub mod fields;

use fields::{FreshnessCheck, FreshnessFields};
use lifeboat::alert::table;
use lifeboat::aws::catalog::Catalog;
use lifeboat::aws::{ec2, rds};
use lifeboat::fanout::FanOut;
use lifeboat::report::{Check, Failed, Freshness as State, Metric, Notice, Quota, Report, Unit};
use lifeboat::rules::freshness::{Limits, assess};
use lifeboat::rules::planner;
use lifeboat::runtime::{BackupFunction, Invocation, Sinks};
use lifeboat::{Backup, Error, ItemError, Kind, Plan, Request};
use std::collections::{BTreeMap, BTreeSet};

/// What one look finds (see [`Freshness::check`]).
#[derive(Debug, Default)]
pub struct Findings {
    /// One verdict per protected resource and check.
    pub checks: Vec<Check>,
    /// Listed resources that do not exist, and a quota that could not be read.
    pub failed: Vec<Failed>,
    /// RDS's manual-snapshot quotas and their usage, when RDS backups were checked.
    pub quotas: Vec<Quota>,
}

/// The `freshness` function with its clients.
pub struct Freshness {
    catalog: Catalog,
    rds: aws_sdk_rds::Client,
    ec2: aws_sdk_ec2::Client,
    sinks: Sinks,
    fan_out: FanOut,
}

impl Freshness {
    /// The function over a catalog of backups, the clients that list the
    /// protected resources, its sinks, and how many listings run at once.
    pub fn new(
        catalog: Catalog,
        rds: aws_sdk_rds::Client,
        ec2: aws_sdk_ec2::Client,
        sinks: Sinks,
        fan_out: FanOut,
    ) -> Self {
        Freshness {
            catalog,
            rds,
            ec2,
            sinks,
            fan_out,
        }
    }

    /// The function as configured by the environment.
    pub fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, Error> {
        Ok(Self::with_sinks(
            aws,
            Sinks::from_env(aws)?,
            FanOut::from_env()?,
        ))
    }

    /// The function over the environment's clients with the given sinks (`lifeboat status` sends nothing).
    pub fn with_sinks(aws: &aws_config::SdkConfig, sinks: Sinks, fan_out: FanOut) -> Self {
        let rds = aws_sdk_rds::Client::new(aws);
        let ec2 = aws_sdk_ec2::Client::new(aws);
        Self::new(Catalog::from_env(aws), rds, ec2, sinks, fan_out)
    }

    /// Runs every check, changing nothing: one verdict per protected resource,
    /// a failure for each listed resource that does not exist, and RDS's
    /// snapshot quotas when RDS backups are checked. `only_plan` narrows every
    /// check to backups of that plan.
    pub async fn check(
        &self,
        fields: &FreshnessFields,
        only_plan: Option<&Plan>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Findings, Error> {
        // One listing per kind, however many checks share it, the kinds at once.
        let kinds: BTreeSet<Kind> = fields.checks.iter().map(|c| c.kind).collect();
        let calls = kinds
            .into_iter()
            .map(|kind| async move { (kind, self.catalog.list(kind, None).await) })
            .collect();
        let mut listings: BTreeMap<Kind, Vec<Backup>> = BTreeMap::new();
        let mut failed = Vec::new();
        for (kind, listed) in self.fan_out.run(calls).await {
            let mut listed = listed?;
            if kind == Kind::PgDump {
                // A dump's drill result is in its record, not in the listing;
                // one that cannot be read fails that dump's proof alone.
                for (record, why) in self.catalog.prove_dumps(&mut listed).await? {
                    failed.push(Failed::new(
                        Kind::PgDump,
                        &record,
                        ItemError::new(format!(
                            "its restore drill record could not be read (its last proven restore is unknown): {why}"
                        )),
                    ));
                }
            }
            listings.insert(kind, listed);
        }
        let mut checks = Vec::new();
        let mut quotas = Vec::new();
        if listings.contains_key(&Kind::Rds) || listings.contains_key(&Kind::RdsCluster) {
            // Usage of the quota that a night of new snapshots would otherwise meet unannounced.
            match rds::snapshot_quotas(&self.rds).await {
                Ok(found) => quotas = found,
                Err(e) => failed.push(Failed::new(
                    Kind::Rds,
                    "snapshot quotas",
                    ItemError::new(lifeboat::aws::describe(&e)),
                )),
            }
        }
        for check in &fields.checks {
            let backups = listings
                .get(&check.kind)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let (resources, missing) = self.resources(check).await?;
            failed.extend(planner::missing(check.kind, "protected resource", missing));
            let plans = match only_plan {
                Some(plan) => Some(vec![plan.clone()]),
                None => check.plans(),
            };
            checks.extend(assess(
                check.kind,
                resources,
                backups,
                plans.as_deref(),
                Limits {
                    max_age_hours: check.max_age_hours,
                    proven_within_days: check.proven_within_days,
                },
                now,
            ));
        }
        checks.sort_by(|a, b| {
            (a.kind, &a.source)
                .cmp(&(b.kind, &b.source))
                .then(a.state.cmp(&b.state))
        });
        // A resource in several checks gets a verdict from each: no verdict hides another.
        Ok(Findings {
            checks,
            failed,
            quotas,
        })
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
                let (chosen, missing) = rds::select(&self.rds, check.kind, selection).await?;
                ids(chosen.into_iter().map(|s| s.id).collect(), missing)
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
        let mut report = request.report(Self::NAME);
        let found = self.check(&request.fields, None, invocation.now).await?;
        (report.checks, report.failed, report.quotas) = (found.checks, found.failed, found.quotas);
        let count = |state| report.checks.iter().filter(|c| c.state == state).count();
        let counts = Counts {
            stale: count(State::Stale),
            unprotected: count(State::Unprotected),
            unproven: report.checks.iter().filter(|c| c.unproven).count(),
        };
        tracing::info!(
            checked = report.checks.len(),
            stale = counts.stale,
            unprotected = counts.unprotected,
            unproven = counts.unproven,
            "freshness checked"
        );
        if counts.stale + counts.unprotected + counts.unproven > 0 {
            report.notices.push(findings(&report, counts));
        }
        report.metrics = metrics(&report, counts);
        Ok(report)
    }
}

/// How many resources are in each kind of trouble.
#[derive(Debug, Clone, Copy)]
struct Counts {
    stale: usize,
    unprotected: usize,
    unproven: usize,
}

/// `BackupAgeSeconds` per resource with a backup and `ProvenRestoreAgeSeconds`
/// per resource with a passed drill; `StaleBackups`, `UnprotectedResources`,
/// `UnprovenResources` and `Heartbeat` per plan; `SnapshotQuotaUsed`,
/// `SnapshotQuotaMax` and `SnapshotQuotaUsedPercent` per quota.
fn metrics(report: &Report, counts: Counts) -> Vec<Metric> {
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
    metrics.extend(report.checks.iter().filter_map(|c| {
        c.last_proven.map(|at| Metric {
            name: "ProvenRestoreAgeSeconds",
            dimensions: vec![("Kind", c.kind.to_string()), ("Source", c.source.clone())],
            value: (report.slot.time() - at).num_seconds().max(0) as f64,
            unit: Unit::Seconds,
        })
    }));
    for (name, value) in [
        ("StaleBackups", counts.stale),
        ("UnprotectedResources", counts.unprotected),
        ("UnprovenResources", counts.unproven),
        ("Heartbeat", 1),
    ] {
        metrics.push(Metric {
            name,
            dimensions: plan(),
            value: value as f64,
            unit: Unit::Count,
        });
    }
    for quota in &report.quotas {
        for (name, value, unit) in [
            ("SnapshotQuotaUsed", quota.used as f64, Unit::Count),
            ("SnapshotQuotaMax", quota.max as f64, Unit::Count),
            ("SnapshotQuotaUsedPercent", quota.percent(), Unit::Percent),
        ] {
            metrics.push(Metric {
                name,
                dimensions: vec![("Quota", quota.name.clone())],
                value,
                unit,
            });
        }
    }
    metrics
}

/// One message listing every stale, unprotected and unproven resource, for a person.
fn findings(report: &Report, counts: Counts) -> Notice {
    let Counts {
        stale,
        unprotected,
        unproven,
    } = counts;
    let subject = format!(
        "Lifeboat: {stale} stale, {unprotected} unprotected, {unproven} unproven (plan {})",
        report.plan
    );
    let rows = report
        .checks
        .iter()
        .filter(|c| c.state != State::Ok || c.unproven)
        .map(|c| {
            [
                if c.unproven && c.state == State::Ok {
                    "unproven".to_owned()
                } else if c.unproven {
                    format!("{}, unproven", c.state)
                } else {
                    c.state.to_string()
                },
                c.kind.to_string(),
                c.source.clone(),
                c.newest_time
                    .map_or_else(|| "none".to_owned(), |t| t.to_string()),
                c.age_hours
                    .map_or_else(|| "-".to_owned(), |a| format!("{a:.1} h")),
                format!("{} h", c.max_age_hours),
                last_proven(c),
            ]
        });
    let body = format!(
        "Lifeboat's freshness check (plan `{}`) found resources without a fresh backup or a proven restore:\n\n{}\n\
         A stale resource's newest complete backup is older than its threshold; an unprotected one has none: \
         check the backup function's logs and its Errors alarm, then run it by hand if needed.\n\
         An unproven one has no restore drill that passed within its check's proven_within_days: see the \
         restore-drill function's last report and its Errors alarm, or run `lifeboat run restore-drill` by hand.\n",
        report.plan,
        table(
            [
                "state",
                "kind",
                "source",
                "newest backup",
                "age",
                "threshold",
                "last proven restore",
            ],
            rows
        )
    );
    Notice {
        subject,
        body,
        attributes: vec![
            ("stale".to_owned(), stale.to_string()),
            ("unprotected".to_owned(), unprotected.to_string()),
            ("unproven".to_owned(), unproven.to_string()),
        ],
    }
}

/// A check's last proven restore, in words: its date, and its limit when it has one.
pub fn last_proven(check: &Check) -> String {
    let at = check.last_proven.map_or_else(
        || "never".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    );
    match check.proven_within_days {
        Some(days) => format!("{at} (limit {days} d)"),
        None => at,
    }
}
