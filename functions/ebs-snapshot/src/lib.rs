//! `ebs-snapshot`: one snapshot per selected volume, and one crash-consistent
//! multi-volume snapshot set per selected instance, per slot.
//!
//! EBS snapshots have no names, so idempotency comes from the tags: one
//! filtered, paginated listing finds the slot's existing snapshots, and only
//! the missing ones are created. Two deliveries racing each other can both
//! create; each run that created anything lists the slot again and deletes
//! all but one snapshot per source and volume (the lowest id, the same choice
//! in every run), so the race converges on one backup.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{InstanceSpecification, ResourceType};
use futures::stream::{self, StreamExt};
use lifeboat::ec2::{self, Instance, Snapshot, Volume};
use lifeboat::payload::{CopyTarget, EbsSnapshotFields};
use lifeboat::report::{Created, Failed, Kind, Report, Skipped};
use lifeboat::runtime::{BackupFunction, Invocation, Sinks};
use lifeboat::tags::{self, BackupLabel};
use lifeboat::{Error, Request, aws, copy};
use std::collections::{BTreeMap, BTreeSet};

/// The `ebs-snapshot` function with its clients.
pub struct EbsSnapshot {
    ec2: Client,
    sinks: Sinks,
    concurrency: usize,
}

/// One snapshot (or snapshot set) to create.
#[derive(Debug)]
enum Job {
    Volume(Volume),
    Instance(Instance),
}

impl Job {
    fn source(&self) -> &str {
        match self {
            Job::Volume(v) => &v.id,
            Job::Instance(i) => &i.id,
        }
    }

    fn name_tag(&self) -> Option<&String> {
        match self {
            Job::Volume(v) => v.tags.get("Name"),
            Job::Instance(i) => i.tags.get("Name"),
        }
    }
}

impl EbsSnapshot {
    /// The function over an EC2 client (whose region is the home region), its sinks, and how many creations run at once.
    pub fn new(ec2: Client, sinks: Sinks, concurrency: usize) -> Self {
        EbsSnapshot {
            ec2,
            sinks,
            concurrency: concurrency.max(1),
        }
    }

    /// The function as configured by the environment.
    pub fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, Error> {
        Ok(Self::new(
            Client::new(aws),
            Sinks::from_env(aws)?,
            lifeboat::runtime::concurrency_from_env()?,
        ))
    }

    fn home_region(&self) -> String {
        self.ec2
            .config()
            .region()
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    fn client_in(&self, region: &str) -> Client {
        let config = self
            .ec2
            .config()
            .to_builder()
            .region(aws_sdk_ec2::config::Region::new(region.to_owned()))
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
        let home = self.home_region();
        copy::refuse_home_region(&request.fields.copy_to, &home)?;
        let mut report = Report::new(
            Self::NAME,
            request.plan.clone(),
            request.slot,
            request.dry_run,
        );
        // One listing of the plan's snapshots: this slot's only, unless copies need the recent ones too.
        let window = request.fields.copy_to.is_empty().then_some(request.slot);
        let mut existing =
            ec2::list_snapshots(&self.ec2, ec2::label_filters(&request.plan, window)).await?;
        let slot = request.slot.to_string();
        let mut slot_backups = existing.iter().filter(|s| {
            s.is_ebs_backup() && s.label.as_ref().is_some_and(|l| l.scheduled_time == slot)
        });
        // Two snapshots of one volume in this slot: left by a run that could
        // not finish its clean-up; this run finishes it.
        let mut volumes = BTreeSet::new();
        let doubled = slot_backups
            .any(|s| !volumes.insert((s.label.as_ref().map(|l| &l.source), &s.volume_id)));
        let done: BTreeMap<&str, Vec<&str>> = existing
            .iter()
            .filter(|s| s.is_ebs_backup())
            .filter_map(|s| {
                s.label
                    .as_ref()
                    .filter(|l| l.scheduled_time == slot)
                    .map(|l| (l.source.as_str(), s.id.as_str()))
            })
            .fold(BTreeMap::new(), |mut m, (source, id)| {
                m.entry(source).or_default().push(id);
                m
            });

        let mut jobs = Vec::new();
        if let Some(selection) = &request.fields.select {
            let (found, missing) = ec2::select_volumes(&self.ec2, selection).await?;
            report
                .failed
                .extend(missing.into_iter().map(|id| not_found(&id, "volume")));
            jobs.extend(found.into_iter().map(Job::Volume));
        }
        if let Some(selection) = &request.fields.instances {
            let (found, missing) = ec2::select_instances(&self.ec2, selection).await?;
            report
                .failed
                .extend(missing.into_iter().map(|id| not_found(&id, "instance")));
            jobs.extend(found.into_iter().map(Job::Instance));
        }
        let selected: BTreeSet<String> = jobs.iter().map(|j| j.source().to_owned()).collect();
        let mut ready = Vec::new();
        for job in jobs {
            if let Some(ids) = done.get(job.source()) {
                report.skipped.push(Skipped {
                    kind: Kind::Ebs,
                    source: job.source().to_owned(),
                    backup: Some(ids.join(",")),
                    reason: "this slot's snapshot already exists".to_owned(),
                });
                continue;
            }
            match readiness(&job) {
                Ok(()) => ready.push(job),
                Err(Outcome::Skip(reason)) => report.skipped.push(skipped(job.source(), reason)),
                Err(Outcome::Fail(error)) => report.failed.push(Failed {
                    kind: Kind::Ebs,
                    source: job.source().to_owned(),
                    error,
                }),
            }
        }

        if request.dry_run {
            report.created.extend(ready.iter().map(|job| {
                created(
                    job.source(),
                    "(dry run: not created)".to_owned(),
                    &home,
                    None,
                )
            }));
        } else if !ready.is_empty() || doubled {
            let made = self.create_all(request, ready, &home, &mut report).await;
            self.remove_duplicates(request, &mut report).await?;
            existing.extend(made);
        }

        let selected: BTreeSet<&str> = selected.iter().map(String::as_str).collect();
        for target in &request.fields.copy_to {
            self.copy_missing(request, target, &home, &existing, &selected, &mut report)
                .await?;
        }
        Ok(report)
    }
}

enum Outcome {
    Skip(String),
    Fail(String),
}

/// Volumes can be snapshotted `available` or `in-use`; instance sets `running` or `stopped`.
fn readiness(job: &Job) -> Result<(), Outcome> {
    match job {
        Job::Volume(v) => match v.state.as_str() {
            "available" | "in-use" => Ok(()),
            "error" => Err(Outcome::Fail(format!(
                "volume `{}` is in state `error`; an operator must look",
                v.id
            ))),
            other => Err(Outcome::Skip(format!(
                "volume is `{other}`; the next run snapshots it"
            ))),
        },
        Job::Instance(i) => match i.state.as_str() {
            "running" | "stopped" | "stopping" => Ok(()),
            "terminated" | "shutting-down" => Err(Outcome::Fail(format!(
                "instance `{}` is `{}`: nothing left to back up",
                i.id, i.state
            ))),
            other => Err(Outcome::Skip(format!(
                "instance is `{other}`; the next run snapshots it"
            ))),
        },
    }
}

impl EbsSnapshot {
    /// Creates every job's snapshot(s), at most `concurrency` at once; returns what was made.
    async fn create_all(
        &self,
        request: &Request<EbsSnapshotFields>,
        jobs: Vec<Job>,
        home: &str,
        report: &mut Report,
    ) -> Vec<Snapshot> {
        let run = run_token();
        let run = &run;
        let calls: Vec<_> = jobs
            .into_iter()
            .map(|job| async move {
                let result = self.create(request, &job, run).await;
                (job, result)
            })
            .collect();
        let results: Vec<_> = stream::iter(calls)
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut made = Vec::new();
        for (job, result) in results {
            match result {
                Ok(snapshots) => {
                    let ids: Vec<&str> = snapshots.iter().map(|s| s.id.as_str()).collect();
                    tracing::info!(source = job.source(), snapshots = %ids.join(","), "snapshot created");
                    report
                        .created
                        .push(created(job.source(), ids.join(","), home, None));
                    made.extend(snapshots);
                }
                Err(error) => {
                    tracing::warn!(source = job.source(), %error, "snapshot failed");
                    report.failed.push(Failed {
                        kind: Kind::Ebs,
                        source: job.source().to_owned(),
                        error,
                    });
                }
            }
        }
        made
    }

    async fn create(
        &self,
        request: &Request<EbsSnapshotFields>,
        job: &Job,
        run: &str,
    ) -> Result<Vec<Snapshot>, String> {
        let label = BackupLabel::new(&request.plan, job.source(), request.slot);
        let mut tags = label.tags();
        tags.push((tags::RUN, run.to_owned()));
        if let Some(name) = job.name_tag() {
            tags.push(("Name", name.clone()));
        }
        let description = format!(
            "Lifeboat plan {}: {} at {}",
            request.plan,
            job.source(),
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
        match job {
            Job::Volume(volume) => {
                let out = self
                    .ec2
                    .create_snapshot()
                    .volume_id(&volume.id)
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
            Job::Instance(instance) => {
                let out = self
                    .ec2
                    .create_snapshots()
                    .instance_specification(
                        InstanceSpecification::builder()
                            .instance_id(&instance.id)
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
                        report.failed.push(Failed {
                            kind: Kind::Ebs,
                            source: source.clone(),
                            error: format!(
                                "duplicate snapshot {loser} could not be deleted: {}",
                                aws::summarize(&e)
                            ),
                        });
                    }
                }
            }
            for c in report.created.iter_mut().filter(|c| c.source == source) {
                c.backup = kept.clone();
            }
        }
        Ok(())
    }

    /// Copies to `target` every recent, completed snapshot of this plan and these sources that it lacks.
    async fn copy_missing(
        &self,
        request: &Request<EbsSnapshotFields>,
        target: &CopyTarget,
        home: &str,
        existing: &[Snapshot],
        selected: &BTreeSet<&str>,
        report: &mut Report,
    ) -> Result<(), Error> {
        let dest = self.client_in(&target.region);
        let there = ec2::list_snapshots(&dest, ec2::label_filters(&request.plan, None)).await?;
        let copied: BTreeSet<&str> = there
            .iter()
            .filter_map(|s| s.tags.get(tags::COPY_OF).map(String::as_str))
            .collect();
        let mut to_copy = Vec::new();
        for snapshot in existing {
            let Some(label) = &snapshot.label else {
                continue;
            };
            if !copy::wants_copy(label, &request.plan, selected, request.slot)
                || copied.contains(snapshot.id.as_str())
            {
                continue;
            }
            if snapshot.state != "completed" {
                report.skipped.push(Skipped {
                    kind: Kind::Ebs,
                    source: label.source.clone(),
                    backup: Some(snapshot.id.clone()),
                    reason: copy::waits(&target.region, &snapshot.state),
                });
                continue;
            }
            to_copy.push((snapshot, label));
        }
        if request.dry_run {
            report.created.extend(to_copy.iter().map(|(s, l)| {
                created(
                    &l.source,
                    "(dry run: not copied)".to_owned(),
                    &target.region,
                    Some(s.id.clone()),
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
                    tags.push((tags::COPY_OF, snapshot.id.clone()));
                    if let Some(name) = snapshot.tags.get("Name") {
                        tags.push(("Name", name.clone()));
                    }
                    let result = dest
                        .copy_snapshot()
                        .source_region(home)
                        .source_snapshot_id(&snapshot.id)
                        .description(format!("Lifeboat copy of {} from {home}", snapshot.id))
                        .set_encrypted(target.kms_key_id.as_ref().map(|_| true))
                        .set_kms_key_id(target.kms_key_id.clone())
                        .tag_specifications(ec2::tag_spec(ResourceType::Snapshot, &tags))
                        .send()
                        .await;
                    (snapshot, label, result)
                }
            })
            .collect();
        let results: Vec<_> = stream::iter(calls)
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        for (snapshot, label, result) in results {
            match result {
                Ok(out) => report.created.push(created(
                    &label.source,
                    out.snapshot_id().unwrap_or_default().to_owned(),
                    &target.region,
                    Some(snapshot.id.clone()),
                )),
                Err(e) => report.failed.push(Failed {
                    kind: Kind::Ebs,
                    source: label.source.clone(),
                    error: format!(
                        "copy of {} to {}: {}",
                        snapshot.id,
                        target.region,
                        refusal(&e)
                    ),
                }),
            }
        }
        Ok(())
    }
}

/// An EC2 error worded for the report; the snapshot limits say what to do.
fn refusal<E>(error: &E) -> String
where
    E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let summary = aws::summarize(error);
    error
        .code()
        .and_then(|code| ec2::snapshot_limit_message(code, &summary))
        .unwrap_or(summary)
}

/// A token naming this run, different for every invocation.
fn run_token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:x}-{:x}", nanos, std::process::id())
}

fn not_found(id: &str, what: &str) -> Failed {
    Failed {
        kind: Kind::Ebs,
        source: id.to_owned(),
        error: format!("no {what} `{id}` in this region"),
    }
}

fn skipped(source: &str, reason: String) -> Skipped {
    Skipped {
        kind: Kind::Ebs,
        source: source.to_owned(),
        backup: None,
        reason,
    }
}

fn created(source: &str, backup: String, region: &str, copy_of: Option<String>) -> Created {
    Created {
        kind: Kind::Ebs,
        source: source.to_owned(),
        backup,
        region: region.to_owned(),
        copy_of,
    }
}
