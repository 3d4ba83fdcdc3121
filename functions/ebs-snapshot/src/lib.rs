//! `ebs-snapshot`: one snapshot per selected volume, and one crash-consistent
//! multi-volume snapshot set per selected instance, per slot.
//!
//! EBS snapshots have no names, so idempotency comes from the tags: one
//! filtered, paginated listing finds the slot's existing snapshots, and only
//! the missing ones are created. Two deliveries racing each other can both
//! create; each run that created anything lists the slot again and deletes
//! all but one snapshot per source and volume (the lowest id, the same choice
//! in every run), so the race converges on one backup.

pub mod fields;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{InstanceSpecification, ResourceType};
use fields::EbsSnapshotFields;
use lifeboat::aws::ec2::{self, Snapshot, Source, SourceKind};
use lifeboat::copier::{self, CopySeam, Copyable};
use lifeboat::fanout::FanOut;
use lifeboat::model::tag as tags;
use lifeboat::report::{Failed, Report};
use lifeboat::rules::copy::{self, CopyTarget};
use lifeboat::rules::planner;
use lifeboat::runtime::{BackupFunction, Invocation, Sinks};
use lifeboat::{BackupLabel, Error, ItemError, Kind, Plan, Request};
use std::collections::{BTreeMap, BTreeSet};

/// The `ebs-snapshot` function with its clients.
pub struct EbsSnapshot {
    ec2: Client,
    sinks: Sinks,
    fan_out: FanOut,
}

impl EbsSnapshot {
    /// The function over an EC2 client (whose region is the home region), its sinks, and how many calls run at once.
    pub fn new(ec2: Client, sinks: Sinks, fan_out: FanOut) -> Self {
        EbsSnapshot {
            ec2,
            sinks,
            fan_out,
        }
    }

    /// The function as configured by the environment.
    pub fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, Error> {
        Ok(Self::new(
            Client::new(aws),
            Sinks::from_env(aws)?,
            FanOut::from_env()?,
        ))
    }

    fn client_in(&self, region: &str) -> Client {
        let config = self
            .ec2
            .config()
            .to_builder()
            .region(aws_config::Region::new(region.to_owned()))
            .build();
        Client::from_conf(config)
    }
}

impl BackupFunction for EbsSnapshot {
    const NAME: &'static str = "ebs-snapshot";
    type Fields = EbsSnapshotFields;

    fn sinks(&self) -> &Sinks {
        &self.sinks
    }

    async fn run(
        &self,
        request: &Request<EbsSnapshotFields>,
        _: &Invocation,
    ) -> Result<Report, Error> {
        let home = lifeboat::aws::region_name(self.ec2.config().region());
        copy::refuse_home_region(&request.fields.copy_to, &home)?;
        let mut report = request.report(Self::NAME);
        // One listing of the plan's snapshots: this slot's only, unless copies need the recent ones too.
        let window = request.fields.copy_to.is_empty().then_some(request.slot);
        let mut existing =
            ec2::list_snapshots(&self.ec2, ec2::label_filters(&request.plan, window)).await?;
        let slot_backups: Vec<&Snapshot> = existing
            .iter()
            .filter(|s| {
                s.is_ebs_backup() && s.label.as_ref().is_some_and(|l| l.slot == request.slot)
            })
            .collect();
        // Two snapshots of one volume in this slot: left by a run that could
        // not finish its clean-up; this run finishes it.
        let mut volumes = BTreeSet::new();
        let doubled = slot_backups
            .iter()
            .any(|s| !volumes.insert((s.label.as_ref().map(|l| &l.source), &s.volume_id)));
        let done = planner::done(
            slot_backups
                .iter()
                .filter_map(|s| Some((s.label.as_ref()?.source.as_str(), s.id.as_str()))),
        );

        let mut jobs = Vec::new();
        if let Some(selection) = &request.fields.select {
            let (found, missing) = ec2::select_volumes(&self.ec2, selection).await?;
            report
                .failed
                .extend(planner::missing(Kind::Ebs, "volume", missing));
            jobs.extend(found);
        }
        if let Some(selection) = &request.fields.instances {
            let (found, missing) = ec2::select_instances(&self.ec2, selection).await?;
            report
                .failed
                .extend(planner::missing(Kind::Ebs, "instance", missing));
            jobs.extend(found);
        }
        let selected: BTreeSet<String> = jobs.iter().map(|j| j.id.clone()).collect();
        let create = planner::plan(Kind::Ebs, jobs, &done).into_report(&mut report);

        if request.dry_run {
            for job in &create {
                report.created(
                    Kind::Ebs,
                    job.id.as_str(),
                    "(dry run: not created)",
                    &home,
                    None,
                );
            }
        } else if !create.is_empty() || doubled {
            let made = self.create_all(request, create, &home, &mut report).await;
            // Snapshots were made: a failed look at the slot is a failure of
            // those sources, never a run that "backed up nothing".
            if let Err(e) = self.remove_duplicates(request, &mut report).await {
                let why = format!(
                    "made, but the slot could not be listed again to remove a racing run's duplicate ({}); the next run does it",
                    lifeboat::aws::describe(&e)
                );
                let made: Vec<String> = report.created.iter().map(|c| c.source.clone()).collect();
                for source in made {
                    report
                        .failed
                        .push(Failed::new(Kind::Ebs, source, ItemError::new(why.clone())));
                }
            }
            existing.extend(made);
        }

        let selected: BTreeSet<&str> = selected.iter().map(String::as_str).collect();
        let copyable: Vec<Copyable> = existing
            .into_iter()
            .filter(Snapshot::is_ebs_backup)
            .filter_map(copyable)
            .collect();
        let seam = Snapshots { ec2: self };
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
        Ok(report)
    }
}

fn copyable(s: Snapshot) -> Option<Copyable> {
    Some(Copyable {
        complete: s.state == "completed",
        name: s.tags.get("Name").cloned(),
        label: s.label?,
        reference: s.id.clone(),
        id: s.id,
        state: s.state,
    })
}

impl EbsSnapshot {
    /// Creates every job's snapshot(s), through the fan-out; returns what was made.
    async fn create_all(
        &self,
        request: &Request<EbsSnapshotFields>,
        jobs: Vec<Source>,
        home: &str,
        report: &mut Report,
    ) -> Vec<Snapshot> {
        let run = lifeboat::runtime::run_token();
        let run = &run;
        let calls = jobs
            .into_iter()
            .map(|job| async move {
                let result = self.create(request, &job, run).await;
                (job, result)
            })
            .collect();
        let mut made = Vec::new();
        for (job, result) in self.fan_out.run(calls).await {
            match result {
                Ok(snapshots) => {
                    let ids: Vec<&str> = snapshots.iter().map(|s| s.id.as_str()).collect();
                    tracing::info!(source = job.id.as_str(), snapshots = %ids.join(","), "snapshot created");
                    report.created(Kind::Ebs, job.id.as_str(), ids.join(","), home, None);
                    made.extend(snapshots);
                }
                Err(error) => {
                    tracing::warn!(source = job.id.as_str(), %error, "snapshot failed");
                    report
                        .failed
                        .push(Failed::new(Kind::Ebs, job.id.as_str(), error));
                }
            }
        }
        made
    }

    async fn create(
        &self,
        request: &Request<EbsSnapshotFields>,
        job: &Source,
        run: &str,
    ) -> Result<Vec<Snapshot>, ItemError> {
        let label = BackupLabel::new(&request.plan, job.id.as_str(), request.slot);
        let mut tags = label.tags();
        tags.push((tags::RUN, run.to_owned()));
        if let Some(name) = job.tags.get("Name") {
            tags.push(("Name", name.clone()));
        }
        let description = format!(
            "Lifeboat plan {}: {} at {}",
            request.plan,
            job.id.as_str(),
            request.slot
        );
        let spec = ec2::tag_spec(ResourceType::Snapshot, &tags);
        let made = |id: Option<&str>, volume: Option<&str>, state: Option<&str>| Snapshot {
            id: id.unwrap_or_default().to_owned(),
            volume_id: volume.unwrap_or_default().to_owned(),
            state: state.unwrap_or("pending").to_owned(),
            label: Some(label.clone()),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        };
        match job.kind {
            SourceKind::Volume => {
                let out = self
                    .ec2
                    .create_snapshot()
                    .volume_id(&job.id)
                    .description(description)
                    .tag_specifications(spec)
                    .send()
                    .await
                    .map_err(|e| refusal(&e))?;
                Ok(vec![made(
                    out.snapshot_id(),
                    out.volume_id(),
                    out.state().map(|s| s.as_str()),
                )])
            }
            SourceKind::Instance => {
                let out = self
                    .ec2
                    .create_snapshots()
                    .instance_specification(
                        InstanceSpecification::builder()
                            .instance_id(&job.id)
                            .exclude_boot_volume(request.fields.exclude_root)
                            .build(),
                    )
                    .description(description)
                    .tag_specifications(spec)
                    .send()
                    .await
                    .map_err(|e| refusal(&e))?;
                Ok(out
                    .snapshots()
                    .iter()
                    .map(|s| {
                        made(
                            s.snapshot_id(),
                            s.volume_id(),
                            s.state().map(|s| s.as_str()),
                        )
                    })
                    .collect())
            }
        }
    }

    /// Lists the slot again and deletes all but the lowest-id snapshot per source and volume.
    async fn remove_duplicates(
        &self,
        request: &Request<EbsSnapshotFields>,
        report: &mut Report,
    ) -> Result<(), Error> {
        let slot = ec2::list_snapshots(
            &self.ec2,
            ec2::label_filters(&request.plan, Some(request.slot)),
        )
        .await?;
        // Per source, the snapshots of each run; the run holding the lowest id
        // wins (every run picks the same one) and the others' sets go whole, so
        // an instance set is never left mixed from two moments. Within the
        // winning run, one snapshot per volume: a create call that was retried
        // after AWS had done it (a dropped response) made a second one.
        let mut by_source: BTreeMap<String, BTreeMap<String, Vec<(String, String)>>> =
            BTreeMap::new();
        for s in slot.into_iter().filter(Snapshot::is_ebs_backup) {
            let run = s.tags.get(tags::RUN).cloned().unwrap_or_default();
            let Some(label) = s.label else { continue };
            by_source
                .entry(label.source)
                .or_default()
                .entry(run)
                .or_default()
                .push((s.id, s.volume_id));
        }
        for (source, mut runs) in by_source {
            for snapshots in runs.values_mut() {
                snapshots.sort();
            }
            let Some(winner) = runs
                .iter()
                .min_by(|a, b| a.1[0].cmp(&b.1[0]))
                .map(|(run, _)| run.clone())
            else {
                continue;
            };
            let mut volumes = BTreeSet::new();
            let (kept, retried): (Vec<_>, Vec<_>) = runs
                .remove(&winner)
                .unwrap_or_default()
                .into_iter()
                .partition(|(_, volume)| volumes.insert(volume.clone()));
            let kept = kept
                .into_iter()
                .map(|(id, _)| id)
                .collect::<Vec<_>>()
                .join(",");
            let losers = runs.into_values().flatten().chain(retried);
            for (loser, _) in losers {
                tracing::warn!(%source, snapshot = %loser, %kept, "duplicate from a concurrent run or a retried call; deleting it");
                match self.ec2.delete_snapshot().snapshot_id(&loser).send().await {
                    Ok(_) => {}
                    // Gone already: a concurrent delivery deleted the same duplicate.
                    Err(e) if e.code() == Some("InvalidSnapshot.NotFound") => {}
                    Err(e) => {
                        let error = ItemError::aws(&e)
                            .context(format!("duplicate snapshot {loser} could not be deleted"));
                        report.failed.push(Failed::new(Kind::Ebs, &source, error));
                    }
                }
            }
            for c in report.created.iter_mut().filter(|c| c.source == source) {
                c.backup = kept.clone();
            }
        }
        Ok(())
    }
}

/// The copier's seam for EBS snapshots.
struct Snapshots<'a> {
    ec2: &'a EbsSnapshot,
}

impl CopySeam for Snapshots<'_> {
    fn kind(&self) -> Kind {
        Kind::Ebs
    }

    /// A copy gets a new id and names its source in `lifeboat:copy-of`.
    async fn copied_to(&self, region: &str, plan: &Plan) -> Result<BTreeSet<String>, Error> {
        let dest = self.ec2.client_in(region);
        let there = ec2::list_snapshots(&dest, ec2::label_filters(plan, None)).await?;
        Ok(there
            .into_iter()
            .filter_map(|s| s.tags.get(tags::COPY_OF).cloned())
            .collect())
    }

    async fn copy(
        &self,
        from: &Copyable,
        target: &CopyTarget,
    ) -> Result<Option<String>, ItemError> {
        let home = lifeboat::aws::region_name(self.ec2.ec2.config().region());
        let out = self
            .ec2
            .client_in(&target.region)
            .copy_snapshot()
            .source_region(&home)
            .source_snapshot_id(&from.id)
            .description(format!("Lifeboat copy of {} from {home}", from.id))
            .set_encrypted(target.kms_key_id.as_ref().map(|_| true))
            .set_kms_key_id(target.kms_key_id.clone())
            .tag_specifications(ec2::tag_spec(ResourceType::Snapshot, &from.copy_tags()))
            .send()
            .await
            .map_err(|e| refusal(&e))?;
        Ok(Some(out.snapshot_id().unwrap_or_default().to_owned()))
    }
}

/// An EC2 error worded for the report; the snapshot limits say what to do.
fn refusal<E>(error: &E) -> ItemError
where
    E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let item = ItemError::aws(error);
    match error
        .code()
        .and_then(|code| ec2::snapshot_limit_message(code, &item.message))
    {
        Some(message) => ItemError { message, ..item },
        None => item,
    }
}
