//! `rds-snapshot`: one manual snapshot per selected DB instance and Aurora
//! cluster per slot, tagged, idempotent, and copied to other regions.
//!
//! Idempotency comes from the name: the snapshot identifier derives from plan,
//! source and slot, so the run lists the region's manual snapshots once and
//! creates only those that are missing; a concurrent duplicate delivery that
//! wins the race shows up as "already exists" and is a skip, not a failure.
//!
//! Copies to other regions are handed over, not waited for: a snapshot that is
//! still `creating` cannot be copied, and RDS snapshots can take hours, so each
//! run copies every `available` snapshot of its plan and sources from the last
//! [`lifeboat::copy::COPY_WINDOW`] that the destination lacks. A copy that has to wait
//! is reported as skipped with the reason, and the next run makes it.

pub mod inventory;
pub mod snapshots;

use aws_sdk_rds::Client;
use futures::stream::{self, StreamExt};
use inventory::{Readiness, Source};
use lifeboat::naming::{RDS_SNAPSHOT_ID_MAX, rds_snapshot_id};
use lifeboat::payload::{CopyTarget, RdsSnapshotFields};
use lifeboat::report::{Created, Failed, Kind, Report, Skipped};
use lifeboat::runtime::{BackupFunction, Invocation, Sinks};
use lifeboat::tags::BackupLabel;
use lifeboat::{Error, Request, copy, tags};
use snapshots::{Refusal, Snapshot};
use std::collections::{BTreeMap, BTreeSet};

/// How many create or copy calls run at once. RDS throttles bursts; the SDK retries throttling.
pub const CONCURRENCY: usize = 4;

/// The `rds-snapshot` function with its clients.
pub struct RdsSnapshot {
    rds: Client,
    sinks: Sinks,
}

impl RdsSnapshot {
    /// The function over an RDS client (whose region is the home region) and its alert and metric sinks.
    pub fn new(rds: Client, sinks: Sinks) -> Self {
        RdsSnapshot { rds, sinks }
    }

    /// The function as configured by the environment.
    pub fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, Error> {
        Ok(Self::new(Client::new(aws), Sinks::from_env(aws)?))
    }

    fn home_region(&self) -> String {
        self.rds
            .config()
            .region()
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    /// A client for another region, sharing everything else (credentials, endpoint, retries).
    fn client_in(&self, region: &str) -> Client {
        let config = self
            .rds
            .config()
            .to_builder()
            .region(aws_sdk_rds::config::Region::new(region.to_owned()))
            .build();
        Client::from_conf(config)
    }
}

impl BackupFunction for RdsSnapshot {
    const NAME: &'static str = "rds-snapshot";
    type Fields = RdsSnapshotFields;

    fn sinks(&self) -> &Sinks {
        &self.sinks
    }

    async fn run(
        &self,
        request: &Request<RdsSnapshotFields>,
        _: &Invocation,
    ) -> Result<Report, Error> {
        let home = self.home_region();
        copy::refuse_home_region(&request.fields.copy_to, &home)?;
        let mut report = Report::new(
            Self::NAME,
            request.plan.clone(),
            request.slot,
            request.dry_run,
        );
        let kinds = [
            (Kind::Rds, &request.fields.select),
            (Kind::RdsCluster, &request.fields.clusters),
        ];
        for (kind, selection) in kinds {
            let Some(selection) = selection else { continue };
            let listed = if kind == Kind::Rds {
                inventory::list_instances(&self.rds).await?
            } else {
                inventory::list_clusters(&self.rds).await?
            };
            let (sources, missing) = inventory::select(selection, kind, listed);
            report.failed.extend(missing);
            let mut existing = snapshots::list_manual(&self.rds, kind).await?;
            let made = self
                .snapshot_all(request, kind, &sources, &existing, &home, &mut report)
                .await;
            existing.extend(made);
            let selected: BTreeSet<&str> = sources.iter().map(|s| s.id.as_str()).collect();
            for target in &request.fields.copy_to {
                self.copy_missing(request, kind, target, &existing, &selected, &mut report)
                    .await?;
            }
        }
        Ok(report)
    }
}

impl RdsSnapshot {
    /// Snapshots every selected source that has no snapshot for this slot yet; returns the snapshots made.
    async fn snapshot_all(
        &self,
        request: &Request<RdsSnapshotFields>,
        kind: Kind,
        sources: &[Source],
        existing: &[Snapshot],
        home: &str,
        report: &mut Report,
    ) -> Vec<Snapshot> {
        let existing: BTreeMap<&str, &str> = existing
            .iter()
            .map(|s| (s.id.as_str(), s.status.as_str()))
            .collect();
        let mut to_create = Vec::new();
        for source in sources {
            let id = rds_snapshot_id(&request.plan, &source.id, request.slot, RDS_SNAPSHOT_ID_MAX);
            match existing.get(id.as_str()) {
                // The name is taken by a snapshot that will never be a backup: say so, loudly.
                Some(&"failed") => {
                    report.failed.push(Failed {
                        kind,
                        source: source.id.clone(),
                        error: format!("this slot's snapshot {id} is `failed`; delete it so that a rerun can take the snapshot again"),
                    });
                    continue;
                }
                Some(_) => {
                    report.skipped.push(slot_done(kind, &source.id, id));
                    continue;
                }
                None => {}
            }
            match source.readiness() {
                Readiness::Ready => to_create.push((source, id)),
                Readiness::Skip(reason) => report.skipped.push(inventory::not_now(source, reason)),
                Readiness::Fail(error) => report.failed.push(Failed {
                    kind,
                    source: source.id.clone(),
                    error,
                }),
            }
        }
        if request.dry_run {
            report.created.extend(
                to_create
                    .into_iter()
                    .map(|(s, id)| created(kind, &s.id, id, home, None)),
            );
            return Vec::new();
        }
        // The futures are made first and then driven: a `map` closure inside the
        // stream would make the whole run future lose its `Send` proof.
        let calls: Vec<_> = to_create
            .into_iter()
            .map(|(source, id)| async move {
                let tags = snapshots::rds_tags(&tags::backup_tags(
                    &request.plan,
                    &source.id,
                    request.slot,
                ));
                let result = snapshots::create(&self.rds, kind, &source.id, &id, tags).await;
                (source, id, result)
            })
            .collect();
        let results: Vec<_> = stream::iter(calls)
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut made = Vec::new();
        for (source, id, result) in results {
            match result {
                Ok(mut snapshot) => {
                    // Label it from what was asked, not from the echo of the response.
                    snapshot.label =
                        Some(BackupLabel::new(&request.plan, &source.id, request.slot));
                    tracing::info!(%kind, source = %source.id, snapshot = %id, status = %snapshot.status, "snapshot created");
                    report
                        .created
                        .push(created(kind, &source.id, id, home, None));
                    made.push(snapshot);
                }
                Err(Refusal::AlreadyExists) => report.skipped.push(slot_done(kind, &source.id, id)),
                Err(Refusal::Failed(error)) => {
                    tracing::warn!(%kind, source = %source.id, %error, "snapshot failed");
                    report.failed.push(Failed {
                        kind,
                        source: source.id.clone(),
                        error,
                    });
                }
            }
        }
        made
    }

    /// Copies to `target` every recent, available snapshot of this plan and these sources that it lacks.
    async fn copy_missing(
        &self,
        request: &Request<RdsSnapshotFields>,
        kind: Kind,
        target: &CopyTarget,
        existing: &[Snapshot],
        selected: &BTreeSet<&str>,
        report: &mut Report,
    ) -> Result<(), Error> {
        let dest = self.client_in(&target.region);
        let there: BTreeSet<String> = snapshots::list_manual(&dest, kind)
            .await?
            .into_iter()
            .map(|s| s.id)
            .collect();
        let mut to_copy = Vec::new();
        for snapshot in existing {
            let Some(label) = &snapshot.label else {
                continue;
            };
            if !copy::wants_copy(label, &request.plan, selected, request.slot)
                || there.contains(&snapshot.id)
            {
                continue;
            }
            if snapshot.status != "available" {
                report.skipped.push(Skipped {
                    kind,
                    source: label.source.clone(),
                    backup: Some(snapshot.id.clone()),
                    reason: copy::waits(&target.region, &snapshot.status),
                });
                continue;
            }
            to_copy.push((snapshot, label));
        }
        if request.dry_run {
            report.created.extend(to_copy.into_iter().map(|(s, l)| {
                created(
                    kind,
                    &l.source,
                    s.id.clone(),
                    &target.region,
                    Some(s.arn.clone()),
                )
            }));
            return Ok(());
        }
        let calls: Vec<_> = to_copy
            .into_iter()
            .map(|(snapshot, label)| {
                let dest = &dest;
                async move {
                    let mut tags = label.tags();
                    tags.push((tags::COPY_OF, snapshot.arn.clone()));
                    let result = snapshots::copy(
                        dest,
                        kind,
                        snapshot,
                        target.kms_key_id.as_deref(),
                        snapshots::rds_tags(&tags),
                    )
                    .await;
                    (snapshot, label, result)
                }
            })
            .collect();
        let results: Vec<_> = stream::iter(calls)
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for (snapshot, label, result) in results {
            match result {
                Ok(()) => {
                    tracing::info!(%kind, source = %label.source, snapshot = %snapshot.id, region = %target.region, "copy started");
                    report.created.push(created(
                        kind,
                        &label.source,
                        snapshot.id.clone(),
                        &target.region,
                        Some(snapshot.arn.clone()),
                    ));
                }
                Err(Refusal::AlreadyExists) => {}
                Err(Refusal::Failed(error)) => report.failed.push(Failed {
                    kind,
                    source: label.source.clone(),
                    error: format!("copy of {} to {}: {error}", snapshot.id, target.region),
                }),
            }
        }
        Ok(())
    }
}

fn created(
    kind: Kind,
    source: &str,
    backup: String,
    region: &str,
    copy_of: Option<String>,
) -> Created {
    Created {
        kind,
        source: source.to_owned(),
        backup,
        region: region.to_owned(),
        copy_of,
    }
}

fn slot_done(kind: Kind, source: &str, id: String) -> Skipped {
    Skipped {
        kind,
        source: source.to_owned(),
        backup: Some(id),
        reason: "this slot's snapshot already exists".to_owned(),
    }
}
