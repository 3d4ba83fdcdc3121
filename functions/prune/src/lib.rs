//! `prune`: one retention policy over every kind of managed backup of a plan.
//!
//! List (one paginated, tag-filtered listing per kind, never one per source)
//! → decide (the retention engine, pure: per source, then capped at
//! `max_deletions` for the whole run, oldest surplus first; the backup of a
//! source whose restore drill passed last is kept) → delete (through
//! the fan-out) → report. Only backups of the run's own plan are touched, and
//! only Lifeboat's. A dry run reports the whole decision and makes no
//! mutating call.

pub mod fields;

use fields::PruneFields;
use lifeboat::aws::catalog::{Catalog, Deletion};
use lifeboat::fanout::FanOut;
use lifeboat::report::{Deleted, Failed, Kept, Notice, Report, Skipped};
use lifeboat::rules::naming;
use lifeboat::rules::retention::{self, Listing};
use lifeboat::runtime::{BackupFunction, Invocation, Sinks};
use lifeboat::{Error, Kind, Request};
use std::collections::BTreeMap;

/// The `prune` function with its clients.
pub struct Prune {
    catalog: Catalog,
    sinks: Sinks,
    fan_out: FanOut,
}

impl Prune {
    /// The function over a catalog of backups, its sinks, and how many deletions run at once.
    pub fn new(catalog: Catalog, sinks: Sinks, fan_out: FanOut) -> Self {
        Prune {
            catalog,
            sinks,
            fan_out,
        }
    }

    /// The function as configured by the environment (`LIFEBOAT_BUCKET` holds the dumps).
    pub fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, Error> {
        Ok(Self::new(
            Catalog::from_env(aws),
            Sinks::from_env(aws)?,
            FanOut::from_env()?,
        ))
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
        let mut report = request.report(Self::NAME);
        let mut listings = Vec::new();
        let mut unread = BTreeMap::new();
        for kind in &fields.kinds {
            let mut backups = self.catalog.list(*kind, Some(&request.plan)).await?;
            tracing::info!(%kind, backups = backups.len(), "listed");
            // Which dumps' drills passed (the last proven restore is kept).
            if *kind == Kind::PgDump {
                unread.extend(self.catalog.prove_dumps(&mut backups).await?);
            }
            // What an earlier run's deregistration left: deleted as the rest of that backup.
            let leftovers = match kind {
                Kind::Ami => self.catalog.leftover_image_snapshots(&request.plan).await?,
                _ => Vec::new(),
            };
            listings.push(Listing { backups, leftovers });
        }
        let mut decision =
            retention::decide(&fields.keep, listings, invocation.now, fields.max_deletions);
        // A dump whose drill record cannot be read may be its source's last proven restore.
        decision.delete.retain(|b| {
            let record = naming::drill_key(&b.id);
            let Some(why) = unread.get(&record) else {
                return true;
            };
            report.skipped.push(Skipped::new(
                b.kind,
                b.source(),
                Some(b.id.clone()),
                format!(
                    "due for deletion, but its restore drill record {record} could not be read ({why}): \
                     kept, as it may be its source's last proven restore; a later run decides"
                ),
            ));
            false
        });
        report
            .kept
            .extend(decision.keep.into_iter().map(|(b, reasons)| Kept {
                kind: b.kind,
                source: b.label.source,
                backup: b.id,
                scheduled_time: b.label.slot,
                reasons,
            }));
        for b in &decision.deferred {
            report.skipped.push(Skipped::new(
                b.kind,
                b.source(),
                Some(b.id.clone()),
                format!(
                    "due for deletion, but over max_deletions ({}); a later run deletes it",
                    fields.max_deletions
                ),
            ));
        }
        if request.dry_run {
            report
                .deleted
                .extend(decision.delete.iter().map(Deleted::of));
            return Ok(report);
        }
        for (backup, outcome) in self.catalog.delete(decision.delete, self.fan_out).await {
            match outcome {
                Deletion::Deleted => {
                    tracing::info!(kind = %backup.kind, source = %backup.source(), backup = %backup.id, "deleted");
                    report.deleted.push(Deleted::of(&backup));
                }
                Deletion::Refused(reason) => report.skipped.push(Skipped::new(
                    backup.kind,
                    backup.source(),
                    Some(backup.id.clone()),
                    reason,
                )),
                Deletion::Failed(error) => {
                    let error = error.context(format!("{} could not be deleted", backup.id));
                    report
                        .failed
                        .push(Failed::new(backup.kind, backup.source(), error));
                }
            }
        }
        if !decision.deferred.is_empty() {
            report.notices.push(cap_notice(
                &report,
                fields.max_deletions,
                decision.deferred.len(),
            ));
        }
        Ok(report)
    }
}

/// The cap held back deletions: not a failure, but a person should know.
fn cap_notice(report: &Report, max: usize, left: usize) -> Notice {
    Notice {
        subject: format!(
            "Lifeboat prune: stopped at max_deletions {max}, {left} left (plan {})",
            report.plan
        ),
        body: format!(
            "Lifeboat prune deleted {} backups of plan `{}` and stopped at max_deletions = {max}; \
             {left} more are due and a later run deletes them, oldest first.\n\n\
             If that many deletions are expected (a policy was tightened), raise max_deletions for a run; \
             if not, check the plan's policy before the next run.\n",
            report.deleted.len(),
            report.plan
        ),
        attributes: Vec::new(),
    }
}
