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
//! [`lifeboat::rules::copy::COPY_WINDOW`] that the destination lacks.

pub mod fields;
pub mod snapshots;

use fields::RdsSnapshotFields;
use lifeboat::aws::rds::{self, Snapshot};
use lifeboat::copier::{self, Copyable};
use lifeboat::fanout::FanOut;
use lifeboat::report::{Failed, Report, Skipped};
use lifeboat::rules::copy;
use lifeboat::rules::naming::{RDS_SNAPSHOT_ID_MAX, rds_snapshot_id};
use lifeboat::rules::planner::{self, Existing};
use lifeboat::runtime::{BackupFunction, Invocation, Sinks};
use lifeboat::{BackupLabel, Error, Kind, Request};
use snapshots::{Created, Snapshots};
use std::collections::{BTreeMap, BTreeSet};

/// The `rds-snapshot` function with its clients.
pub struct RdsSnapshot {
    rds: aws_sdk_rds::Client,
    sinks: Sinks,
    fan_out: FanOut,
}

impl RdsSnapshot {
    /// The function over an RDS client (whose region is the home region), its
    /// sinks, and how many calls run at once.
    pub fn new(rds: aws_sdk_rds::Client, sinks: Sinks, fan_out: FanOut) -> Self {
        RdsSnapshot {
            rds,
            sinks,
            fan_out,
        }
    }

    /// The function as configured by the environment.
    pub fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, Error> {
        Ok(Self::new(
            aws_sdk_rds::Client::new(aws),
            Sinks::from_env(aws)?,
            FanOut::from_env()?,
        ))
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
        let home = lifeboat::aws::region_name(self.rds.config().region());
        copy::refuse_home_region(&request.fields.copy_to, &home)?;
        let mut report = request.report(Self::NAME);
        let kinds = [
            (Kind::Rds, &request.fields.select),
            (Kind::RdsCluster, &request.fields.clusters),
        ];
        // Every kind's sources first: a payload that cannot copy them is
        // refused before anything is made.
        let mut selected = Vec::new();
        for (kind, selection) in kinds {
            if let Some(selection) = selection {
                selected.push((kind, rds::select(&self.rds, kind, selection).await?));
            }
        }
        let sources = selected.iter().flat_map(|(_, (sources, _))| sources);
        fields::refuse_unkeyed_copies(&request.fields.copy_to, sources)?;
        for (kind, (sources, missing)) in selected {
            report
                .failed
                .extend(planner::missing(kind, kind.source_noun(), missing));
            let mut existing = rds::list_manual(&self.rds, kind).await?;
            let selected: BTreeSet<String> = sources.iter().map(|s| s.id.clone()).collect();
            let slot = this_slot(request, &sources, &existing);
            let create = planner::plan(kind, sources, &slot).into_report(&mut report);
            let seam = Snapshots::new(&self.rds, kind);
            existing.extend(
                self.snapshot_all(request, &seam, create, &home, &mut report)
                    .await,
            );
            let selected: BTreeSet<&str> = selected.iter().map(String::as_str).collect();
            let copyable: Vec<Copyable> = existing.into_iter().filter_map(copyable).collect();
            copier::copy_missing(
                &seam,
                request,
                &request.fields.copy_to,
                &copyable,
                &selected,
                self.fan_out,
                &mut report,
            )
            .await;
        }
        Ok(report)
    }
}

/// This slot's snapshots, found by the name the slot gives each source. A
/// `failed` one holds the name and will never be a backup: that source fails.
fn this_slot(
    request: &Request<RdsSnapshotFields>,
    sources: &[rds::Source],
    existing: &[Snapshot],
) -> BTreeMap<String, Existing> {
    let status: BTreeMap<&str, &str> = existing
        .iter()
        .map(|s| (s.id.as_str(), s.status.as_str()))
        .collect();
    sources
        .iter()
        .filter_map(|source| {
            let id = rds_snapshot_id(&request.plan, &source.id, request.slot, RDS_SNAPSHOT_ID_MAX);
            let state = match *status.get(id.as_str())? {
                "failed" => Existing::Blocking(format!("this slot's snapshot {id} is `failed`; delete it so that a rerun can take the snapshot again")),
                _ => Existing::Done(id),
            };
            Some((source.id.clone(), state))
        })
        .collect()
}

fn copyable(s: Snapshot) -> Option<Copyable> {
    Some(Copyable {
        complete: s.status == "available",
        label: s.label?,
        id: s.id,
        reference: s.arn,
        state: s.status,
        name: None,
    })
}

impl RdsSnapshot {
    /// Snapshots every source the planner chose; returns the snapshots made.
    async fn snapshot_all(
        &self,
        request: &Request<RdsSnapshotFields>,
        seam: &Snapshots<'_>,
        sources: Vec<rds::Source>,
        home: &str,
        report: &mut Report,
    ) -> Vec<Snapshot> {
        let kind = seam.kind;
        let named = sources.into_iter().map(|source| {
            let id = rds_snapshot_id(&request.plan, &source.id, request.slot, RDS_SNAPSHOT_ID_MAX);
            (source.id, id)
        });
        if request.dry_run {
            for (source, id) in named {
                report.created(kind, &source, id, home, None);
            }
            return Vec::new();
        }
        let calls = named
            .map(|(source, id)| async move {
                let label = BackupLabel::new(&request.plan, &source, request.slot);
                let result = seam.create(&source, &id, &label).await;
                (label, id, result)
            })
            .collect();
        let mut made = Vec::new();
        for (label, id, result) in self.fan_out.run(calls).await {
            let source = &label.source;
            match result {
                Ok(Created::New(mut snapshot)) => {
                    tracing::info!(%kind, %source, snapshot = %id, status = %snapshot.status, "snapshot created");
                    report.created(kind, source, id, home, None);
                    // Labelled from what was asked, not from the echo of the response.
                    snapshot.label = Some(label);
                    made.push(snapshot);
                }
                Ok(Created::AlreadyExists) => report.skipped.push(Skipped::new(
                    kind,
                    source,
                    Some(id),
                    "this slot's backup already exists",
                )),
                Err(error) => {
                    tracing::warn!(%kind, %source, %error, "snapshot failed");
                    report.failed.push(Failed::new(kind, source, error));
                }
            }
        }
        made
    }
}
