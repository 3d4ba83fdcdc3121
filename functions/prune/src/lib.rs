//! `prune`: one retention policy over every kind of managed backup of a plan.
//!
//! For each kind: one paginated, tag-filtered listing (never one per source),
//! grouped by source, planned with the retention engine, then deleted, oldest
//! surplus first, at most `max_deletions` in the whole run. Only backups of the
//! run's own plan are touched, and only Lifeboat's. A dry run reports the
//! whole plan and makes no mutating call.

use lifeboat::alert::Alert;
use lifeboat::catalog::{Catalog, Deletion, ManagedBackup};
use lifeboat::payload::PruneFields;
use lifeboat::report::{Deleted, Failed, Kept, Report, Skipped};
use lifeboat::retention::{self, Backup};
use lifeboat::runtime::{BackupFunction, Invocation, Sinks};
use lifeboat::{Error, Kind, Request};
use std::collections::BTreeMap;

/// The `prune` function with its clients.
pub struct Prune {
    catalog: Catalog,
    sinks: Sinks,
}

impl Prune {
    /// The function over a catalog of backups and its sinks.
    pub fn new(catalog: Catalog, sinks: Sinks) -> Self {
        Prune { catalog, sinks }
    }

    /// The function as configured by the environment (`LIFEBOAT_BUCKET` holds the dumps).
    pub fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, Error> {
        let bucket = std::env::var("LIFEBOAT_BUCKET")
            .ok()
            .filter(|b| !b.is_empty());
        let catalog = Catalog::new(
            aws_sdk_rds::Client::new(aws),
            aws_sdk_ec2::Client::new(aws),
            lifeboat::aws::s3_client(aws),
            bucket,
        );
        Ok(Self::new(catalog, Sinks::from_env(aws)?))
    }
}

impl BackupFunction for Prune {
    const NAME: &'static str = "prune";
    type Fields = PruneFields;

    fn sinks(&self) -> &Sinks {
        &self.sinks
    }

    async fn run(
        &self,
        request: &Request<PruneFields>,
        invocation: &Invocation,
    ) -> Result<Report, Error> {
        let fields = &request.fields;
        let mut report = Report::new(
            Self::NAME,
            request.plan.clone(),
            request.slot,
            request.dry_run,
        );
        let mut surplus = Vec::new();
        for kind in &fields.kinds {
            let listed = self
                .catalog
                .list(*kind, Some(request.plan.as_str()))
                .await?;
            tracing::info!(%kind, backups = listed.len(), "listed");
            // One group per source (and, for dumps, per key prefix).
            let mut by_source: BTreeMap<(String, String), Vec<ManagedBackup>> = BTreeMap::new();
            for backup in listed {
                by_source
                    .entry((backup.source.clone(), backup.scope.clone()))
                    .or_default()
                    .push(backup);
            }
            for (_, group) in by_source {
                let candidates = group
                    .iter()
                    .map(|b| Backup {
                        id: b.id.clone(),
                        time: b.slot,
                        complete: b.complete,
                    })
                    .collect();
                let plan = retention::apply(&fields.keep, candidates, invocation.now);
                let mut by_id: BTreeMap<String, ManagedBackup> =
                    group.into_iter().map(|b| (b.id.clone(), b)).collect();
                for (backup, reasons) in plan.keep {
                    if let Some(b) = by_id.remove(&backup.id) {
                        report.kept.push(Kept {
                            kind: b.kind,
                            source: b.source,
                            backup: b.id,
                            scheduled_time: slot(&b.slot),
                            reasons,
                        });
                    }
                }
                surplus.extend(
                    plan.delete
                        .into_iter()
                        .filter_map(|d| by_id.remove(&d.id))
                        .map(|b| (b.slot, b)),
                );
            }
            if *kind == Kind::Ami {
                // What an earlier run's deregistration left: deleted as the rest of that backup.
                let left = self
                    .catalog
                    .leftover_image_snapshots(request.plan.as_str())
                    .await?;
                surplus.extend(left.into_iter().map(|b| (b.slot, b)));
            }
        }

        let (now, deferred) = retention::cap(surplus, fields.max_deletions);
        for b in &deferred {
            report.skipped.push(Skipped {
                kind: b.kind,
                source: b.source.clone(),
                backup: Some(b.id.clone()),
                reason: format!(
                    "due for deletion, but over max_deletions ({}); a later run deletes it",
                    fields.max_deletions
                ),
            });
        }
        if request.dry_run {
            report.deleted.extend(now.iter().map(deleted));
            return Ok(report);
        }
        for (backup, outcome) in self.catalog.delete(now).await {
            match outcome {
                Deletion::Deleted => {
                    tracing::info!(kind = %backup.kind, source = %backup.source, backup = %backup.id, "deleted");
                    report.deleted.push(deleted(&backup));
                }
                Deletion::Refused(reason) => report.skipped.push(Skipped {
                    kind: backup.kind,
                    source: backup.source,
                    backup: Some(backup.id),
                    reason,
                }),
                Deletion::Failed(error) => report.failed.push(Failed {
                    kind: backup.kind,
                    source: backup.source,
                    error: format!("{} could not be deleted: {error}", backup.id),
                }),
            }
        }
        if !deferred.is_empty() {
            self.alert_cap(&report, fields.max_deletions, deferred.len())
                .await;
        }
        Ok(report)
    }
}

impl Prune {
    /// The cap held back deletions: not a failure, but a person should know.
    async fn alert_cap(&self, report: &Report, max: usize, left: usize) {
        let alert = Alert::notice(
            Self::NAME,
            report.plan.as_str(),
            format!(
                "Lifeboat prune: stopped at max_deletions {max}, {left} left (plan {})",
                report.plan
            ),
            format!(
                "Lifeboat prune deleted {} backups of plan `{}` and stopped at max_deletions = {max}; \
                 {left} more are due and a later run deletes them, oldest first.\n\n\
                 If that many deletions are expected (a policy was tightened), raise max_deletions for a run; \
                 if not, check the plan's policy before the next run.\n",
                report.deleted.len(),
                report.plan
            ),
        );
        if let Err(e) = self.sinks.alerts.publish(&alert).await {
            tracing::error!(error = %lifeboat::aws::describe(e.as_ref()), "cap alert could not be sent");
        }
    }
}

fn slot(time: &chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:00Z").to_string()
}

fn deleted(b: &ManagedBackup) -> Deleted {
    Deleted {
        kind: b.kind,
        source: b.source.clone(),
        backup: b.parts.join(","),
        scheduled_time: slot(&b.slot),
    }
}
