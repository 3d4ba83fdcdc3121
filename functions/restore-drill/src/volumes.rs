//! EBS drills: a volume created from the source's Lifeboat snapshot in the
//! source's availability zone, waited for until `available`, then deleted.
//! The drill's state lives on the temporary volume's own tags (which
//! snapshot, which source, when the restore was called), so a drill that a
//! run leaves `creating` is taken up by the next; the result is recorded on
//! the snapshot's tags (`lifeboat:drilled-at`, `-outcome`, `-seconds`).
//! Every run first deletes drill volumes older than `max_age_hours`, and
//! never touches a volume without the `lifeboat:drill` tag.

use crate::fields::{RestoreDrillFields, VolumeDrills};
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::ResourceType;
use chrono::{DateTime, Utc};
use lifeboat::aws::ec2::{self, Snapshot};
use lifeboat::model::tag as tags;
use lifeboat::report::{Drill, DrillOutcome, Failed, Metric, Report, Skipped, Unit};
use lifeboat::rules::drill;
use lifeboat::runtime::Invocation;
use lifeboat::{Error, ItemError, Kind, Plan, Request, Slot};
use std::collections::BTreeSet;
use std::time::Duration;

/// How long one run waits for a new drill volume before leaving it to the next run.
const WAIT_IN_RUN: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_secs(3);

/// A drill's temporary volume, as its tags describe it.
#[derive(Debug, Clone)]
struct DrillVolume {
    id: String,
    state: String,
    zone: String,
    snapshot: String,
    source: String,
    slot: Option<Slot>,
    started: Option<DateTime<Utc>>,
}

/// Drills EBS snapshots.
pub struct VolumeDriller<'a> {
    /// EC2 in the home region.
    pub ec2: &'a Client,
}

impl VolumeDriller<'_> {
    /// Sweeps stale drill volumes, moves open drills on, and starts the due ones.
    pub async fn run(
        &self,
        request: &Request<RestoreDrillFields>,
        drills: &VolumeDrills,
        invocation: &Invocation,
        report: &mut Report,
    ) -> Result<(), Error> {
        let fields = &request.fields;
        let rto_seconds = fields.rto_minutes * 60;
        let plan = drills
            .backup_plan
            .as_deref()
            .and_then(|p| Plan::new(p).ok());
        let snapshots = ec2::list_snapshots(self.ec2, ec2::managed_filters(plan.as_ref())).await?;
        let slot_of = |id: &str| {
            snapshots
                .iter()
                .find(|s| s.id == id)
                .and_then(|s| s.label.as_ref().map(|l| l.slot))
        };
        let mut busy = BTreeSet::new();
        for mut volume in self.drill_volumes().await? {
            volume.slot = slot_of(&volume.snapshot);
            busy.insert(volume.source.clone());
            let age = volume.started.map(|s| invocation.now - s);
            if age.is_none_or(|age| age > fields.max_age()) {
                if !request.dry_run {
                    self.sweep(&volume, fields, report).await;
                }
                continue;
            }
            if !request.dry_run {
                let done = self.advance(volume, rto_seconds, report).await;
                report.drills.push(done);
            }
        }
        let (sources, missing) = ec2::select_volumes(self.ec2, &drills.select).await?;
        for id in missing {
            report.failed.push(Failed::new(
                Kind::Ebs,
                &id,
                ItemError::new(format!("volume {id} does not exist: nothing to drill")),
            ));
        }
        let every = fields.every();
        for source in sources.iter().filter(|s| !busy.contains(&s.id)) {
            let backups: Vec<&Snapshot> = snapshots
                .iter()
                .filter(|s| s.is_ebs_backup() && s.state == "completed")
                .filter(|s| s.label.as_ref().is_some_and(|l| l.source == source.id))
                .collect();
            let last = crate::last_drilled(backups.iter().map(|s| &s.tags));
            if !drill::due(last, every.as_ref(), invocation.now) {
                report
                    .skipped
                    .push(crate::not_due(Kind::Ebs, &source.id, last, fields));
                continue;
            }
            let slots: Vec<Slot> = backups
                .iter()
                .filter_map(|s| s.label.as_ref().map(|l| l.slot))
                .collect();
            let Some(chosen) = drill::choose(&slots, fields.pick, crate::seed()) else {
                report.failed.push(Failed::new(
                    Kind::Ebs,
                    &source.id,
                    ItemError::new(format!(
                        "no completed Lifeboat snapshot of {} to drill",
                        source.id
                    )),
                ));
                continue;
            };
            let snapshot = backups[chosen];
            if request.dry_run {
                report.skipped.push(Skipped::new(
                    Kind::Ebs,
                    &source.id,
                    Some(snapshot.id.clone()),
                    format!(
                        "dry run: would create a volume from it in {} and delete it",
                        source.zone
                    ),
                ));
                continue;
            }
            let started = Utc::now();
            // One volume for duplicate deliveries of this run (EC2 keeps a token for a while; at most 64 characters).
            let token =
                crate::token(&[request.plan.as_str(), &request.slot.to_string(), &source.id]);
            let created = self
                .ec2
                .create_volume()
                .snapshot_id(&snapshot.id)
                .availability_zone(&source.zone)
                .client_token(token)
                .tag_specifications(ec2::tag_spec(
                    ResourceType::Volume,
                    &[
                        (tags::MANAGED_BY, tags::LIFEBOAT.to_owned()),
                        (tags::PLAN, request.plan.to_string()),
                        (tags::DRILL, snapshot.id.clone()),
                        (tags::DRILL_SOURCE, source.id.clone()),
                        (tags::DRILL_STARTED, started.to_rfc3339()),
                        ("Name", format!("lifeboat-drill-{}", snapshot.id)),
                    ],
                ))
                .send()
                .await;
            let volume = match created {
                Ok(out) => DrillVolume {
                    id: out.volume_id().unwrap_or_default().to_owned(),
                    state: out
                        .state()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                    zone: source.zone.clone(),
                    snapshot: snapshot.id.clone(),
                    source: source.id.clone(),
                    slot: snapshot.label.as_ref().map(|l| l.slot),
                    started: Some(started),
                },
                Err(e) => {
                    let error = ItemError::aws(&e).context(format!(
                        "the drill of {} failed at restore: CreateVolume",
                        snapshot.id
                    ));
                    self.record(&snapshot.id, DrillOutcome::Failed, None).await;
                    report
                        .failed
                        .push(Failed::new(Kind::Ebs, &source.id, error));
                    continue;
                }
            };
            let volume = self.wait(volume, invocation).await;
            let done = self.advance(volume, rto_seconds, report).await;
            report.drills.push(done);
        }
        Ok(())
    }

    /// Every volume with the `lifeboat:drill` tag: the open drills.
    async fn drill_volumes(&self) -> Result<Vec<DrillVolume>, Error> {
        let volumes = self
            .ec2
            .describe_volumes()
            .filters(ec2::filter("tag-key", [tags::DRILL]))
            .filters(ec2::filter(
                &format!("tag:{}", tags::MANAGED_BY),
                [tags::LIFEBOAT],
            ))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| Error::aws("DescribeVolumes", e))?;
        Ok(volumes
            .into_iter()
            .map(|v| {
                let tags = ec2::tag_map(v.tags());
                DrillVolume {
                    id: v.volume_id().unwrap_or_default().to_owned(),
                    state: v.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                    zone: v.availability_zone().unwrap_or_default().to_owned(),
                    snapshot: tags.get(tags::DRILL).cloned().unwrap_or_default(),
                    source: tags.get(tags::DRILL_SOURCE).cloned().unwrap_or_default(),
                    slot: None,
                    started: tags
                        .get(tags::DRILL_STARTED)
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&Utc)),
                }
            })
            .collect())
    }

    /// Polls a new volume until it is no longer `creating`, for as long as this run may.
    async fn wait(&self, mut volume: DrillVolume, invocation: &Invocation) -> DrillVolume {
        let until = std::time::Instant::now() + WAIT_IN_RUN;
        let deadline = invocation.deadline.map(|d| {
            d.duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
                .saturating_sub(Duration::from_secs(60))
        });
        let until = deadline.map_or(until, |left| until.min(std::time::Instant::now() + left));
        while volume.state == "creating" && std::time::Instant::now() < until {
            tokio::time::sleep(POLL).await;
            let described = self
                .ec2
                .describe_volumes()
                .volume_ids(&volume.id)
                .send()
                .await;
            if let Ok(out) = described
                && let Some(state) = out.volumes().first().and_then(|v| v.state())
            {
                volume.state = state.as_str().to_owned();
            }
        }
        volume
    }

    /// One step of an open drill: `available` is checked, deleted and
    /// recorded; `creating` waits for a later run; anything else failed.
    async fn advance(&self, volume: DrillVolume, rto_seconds: u64, report: &mut Report) -> Drill {
        let seconds = volume
            .started
            .map(|s| (Utc::now() - s).num_milliseconds() as f64 / 1000.0);
        let mut done = Drill {
            kind: Kind::Ebs,
            source: volume.source.clone(),
            backup: volume.snapshot.clone(),
            backup_slot: volume.slot,
            size_bytes: None,
            restored_into: format!("volume {} in {}", volume.id, volume.zone),
            restore_seconds: None,
            rto_seconds,
            checks: Vec::new(),
            outcome: DrillOutcome::InProgress,
            failed_step: None,
            reason: None,
        };
        if volume.state == "creating" {
            done.checks.push(format!(
                "{} is still creating: the next run goes on",
                volume.id
            ));
            return done;
        }
        let failed = |done: &mut Drill, step: &str, reason: String| {
            done.outcome = DrillOutcome::Failed;
            done.failed_step = Some(step.to_owned());
            done.reason = Some(reason);
        };
        if volume.state == "available" {
            done.restore_seconds = seconds;
            done.checks.push(format!(
                "{} created from {} and available",
                volume.id, volume.snapshot
            ));
            match seconds.and_then(|s| drill::over_rto(s, rto_seconds / 60)) {
                Some(missed) => failed(&mut done, "rto", missed),
                None => done.outcome = DrillOutcome::Passed,
            }
        } else {
            failed(
                &mut done,
                "restore",
                format!("{} is `{}`, not available", volume.id, volume.state),
            );
        }
        if let Err(e) = self.ec2.delete_volume().volume_id(&volume.id).send().await {
            // The volume keeps its tags: the next run deletes it, or the sweep does.
            let error = ItemError::aws(&e).context(format!("deleting drill volume {}", volume.id));
            failed(&mut done, "clean-up", error.message.clone());
        } else {
            done.checks.push(format!("{} deleted", volume.id));
        }
        self.record(&volume.snapshot, done.outcome, done.restore_seconds)
            .await;
        if let Some(seconds) = done.restore_seconds {
            report.metrics.push(Metric {
                name: "RestoreSeconds",
                dimensions: vec![
                    ("Kind", Kind::Ebs.to_string()),
                    ("Source", volume.source.clone()),
                ],
                value: seconds,
                unit: Unit::Seconds,
            });
        }
        if let (Some(step), Some(reason)) = (&done.failed_step, &done.reason) {
            report.failed.push(Failed::new(
                Kind::Ebs,
                &volume.source,
                ItemError::new(format!(
                    "the drill of {} failed at {step}: {reason}",
                    volume.snapshot
                )),
            ));
        }
        done
    }

    /// Deletes a drill volume that outlived `max_age_hours`: its drill failed.
    async fn sweep(&self, volume: &DrillVolume, fields: &RestoreDrillFields, report: &mut Report) {
        let hours = fields.max_age().num_hours();
        let outcome = self.ec2.delete_volume().volume_id(&volume.id).send().await;
        let why = match outcome {
            Ok(_) => format!(
                "the drill of {} failed at sweep: its volume {} was older than {hours} h (max_age_hours) and was deleted",
                volume.snapshot, volume.id
            ),
            Err(e) => format!(
                "the drill of {} failed at sweep: its volume {} is older than {hours} h and could not be deleted: {}",
                volume.snapshot,
                volume.id,
                ItemError::aws(&e).message
            ),
        };
        report
            .failed
            .push(Failed::new(Kind::Ebs, &volume.source, ItemError::new(why)));
    }

    /// Tags the snapshot with the drill's result; a failure to tag is logged
    /// (the drill itself is in the report).
    async fn record(&self, snapshot: &str, outcome: DrillOutcome, seconds: Option<f64>) {
        let outcome = match outcome {
            DrillOutcome::Passed => "passed",
            _ => "failed",
        };
        let mut record = vec![
            (tags::DRILLED_AT, Utc::now().to_rfc3339()),
            (tags::DRILL_OUTCOME, outcome.to_owned()),
        ];
        if let Some(seconds) = seconds {
            record.push((tags::DRILL_SECONDS, format!("{seconds:.1}")));
        }
        if let Err(e) = self
            .ec2
            .create_tags()
            .resources(snapshot)
            .set_tags(Some(ec2::ec2_tags(&record)))
            .send()
            .await
        {
            tracing::warn!(snapshot, error = %ItemError::aws(&e).message, "the drill's result could not be recorded on the snapshot");
        }
    }
}
