//! The one implementation of cross-region copies: for each `copy_to` target,
//! list what the destination holds, pick what this run should copy
//! ([`crate::rules::copy`]), and start the copies through a small per-service
//! seam. Copies are handed over from run to run, never waited for.

use crate::error::Error;
use crate::fanout::FanOut;
use crate::model::{BackupLabel, Kind, Plan, tag};
use crate::report::ItemError;
use crate::report::{Failed, Report, Skipped};
use crate::request::Request;
use crate::rules::copy::{self, CopyTarget};
use std::collections::BTreeSet;
use std::future::Future;

/// A backup in the home region that may need a copy elsewhere.
#[derive(Debug, Clone)]
pub struct Copyable {
    /// Its id.
    pub id: String,
    /// What a copy names as its source, and records in `lifeboat:copy-of`
    /// (an RDS snapshot's ARN, an EBS snapshot's id).
    pub reference: String,
    /// Its label.
    pub label: BackupLabel,
    /// Its state, for the report while it is not complete.
    pub state: String,
    /// Whether it is complete and can be copied.
    pub complete: bool,
    /// Its `Name` tag, carried to the copy.
    pub name: Option<String>,
}

impl Copyable {
    /// The tags of its copy: its label, where it was copied from, and its name.
    pub fn copy_tags(&self) -> Vec<(&'static str, String)> {
        let mut tags = self.label.tags();
        tags.push((tag::COPY_OF, self.reference.clone()));
        if let Some(name) = &self.name {
            tags.push(("Name", name.clone()));
        }
        tags
    }
}

/// What a service needs to offer for its backups to be copied.
pub trait CopySeam: Sync {
    /// The kind of backup copied.
    fn kind(&self) -> Kind;

    /// The ids of this plan's home backups that `region` already holds a copy of.
    fn copied_to(
        &self,
        region: &str,
        plan: &Plan,
    ) -> impl Future<Output = Result<BTreeSet<String>, Error>> + Send;

    /// Starts the copy of `backup` into `target`: the copy's id, or `None`
    /// when another delivery of this run made it already.
    fn copy(
        &self,
        backup: &Copyable,
        target: &CopyTarget,
    ) -> impl Future<Output = Result<Option<String>, ItemError>> + Send;
}

/// Copies to every target the recent, complete backups of this run's plan
/// and `selected` sources that it lacks; reports copies started, copies that
/// wait for their backup, and copies that failed.
pub async fn copy_missing<S: CopySeam, F: Sync>(
    seam: &S,
    request: &Request<F>,
    targets: &[CopyTarget],
    backups: &[Copyable],
    selected: &BTreeSet<&str>,
    fan_out: FanOut,
    report: &mut Report,
) {
    let kind = seam.kind();
    for target in targets {
        let wanted = backups
            .iter()
            .filter(|b| copy::wants_copy(&b.label, &request.plan, selected, request.slot));
        // The backups are made by then: a destination that cannot be listed is
        // a failure of the sources whose copies wait, never of the whole run.
        let there = match seam.copied_to(&target.region, &request.plan).await {
            Ok(there) => there,
            Err(e) => {
                let sources: BTreeSet<&str> = wanted.map(|b| b.label.source.as_str()).collect();
                let why = format!(
                    "copies to {} not started: {}; a later run copies them",
                    target.region,
                    crate::aws::describe(&e)
                );
                for source in sources {
                    report
                        .failed
                        .push(Failed::new(kind, source, ItemError::new(why.clone())));
                }
                continue;
            }
        };
        let mut to_copy = Vec::new();
        for backup in wanted {
            if there.contains(&backup.id) {
                continue;
            }
            if backup.complete {
                to_copy.push(backup);
            } else {
                let reason = copy::waits(&target.region, &backup.state);
                let skipped =
                    Skipped::new(kind, &backup.label.source, Some(backup.id.clone()), reason);
                report.skipped.push(skipped);
            }
        }
        if request.dry_run {
            for b in to_copy {
                let copy_of = Some(b.reference.clone());
                report.created(
                    kind,
                    &b.label.source,
                    "(dry run: not copied)",
                    &target.region,
                    copy_of,
                );
            }
            continue;
        }
        let calls = to_copy
            .into_iter()
            .map(|backup| async move { (backup, seam.copy(backup, target).await) })
            .collect();
        for (backup, result) in fan_out.run(calls).await {
            let source = &backup.label.source;
            match result {
                Ok(Some(id)) => {
                    tracing::info!(%kind, %source, backup = %backup.id, copy = %id, region = %target.region, "copy started");
                    report.created(
                        kind,
                        source,
                        id,
                        &target.region,
                        Some(backup.reference.clone()),
                    );
                }
                Ok(None) => {}
                Err(e) => {
                    let e = e.context(format!("copy of {} to {}", backup.id, target.region));
                    report.failed.push(Failed::new(kind, source, e));
                }
            }
        }
    }
}
