//! `ami-backup`: one AMI per selected instance per slot, with the four
//! Lifeboat tags on the image and on its backing snapshots.
//!
//! The AMI name derives from plan, instance and slot, and AMI names are unique
//! per account and region, so a second run (or a second delivery racing the
//! first, which AWS answers with `InvalidAMIName.Duplicate`) finds the image
//! and skips.
//!
//! Tagging the backing snapshots: `CreateImage` could tag them itself with a
//! `snapshot` tag specification, which is right on AWS but fails in the local
//! emulator (HTTP 500), so this function tags them with `CreateTags` instead,
//! which is right on AWS too. On AWS an image's snapshot ids can appear only
//! some time after `CreateImage` returns; every run therefore tags the
//! snapshots of any image of its plan whose snapshots are not yet tagged, so a
//! snapshot missed by one run is tagged by the next, and `prune` (which deletes
//! an AMI's snapshots with it) finds them either way through the image.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{Image, ResourceType};
use futures::stream::{self, StreamExt};
use lifeboat::ec2::{self, Instance};
use lifeboat::payload::AmiBackupFields;
use lifeboat::report::{Created, Failed, Kind, Report, Skipped};
use lifeboat::runtime::{BackupFunction, Invocation, Sinks};
use lifeboat::tags::{self, BackupLabel};
use lifeboat::{Error, Plan, Request, Slot, aws};
use std::collections::{BTreeMap, BTreeSet};

/// The `ami-backup` function with its clients.
pub struct AmiBackup {
    ec2: Client,
    sinks: Sinks,
    concurrency: usize,
}

/// The AMI name of `instance`'s image for `slot` of `plan`: unique per account
/// and region, within AMI naming rules (3 to 128 characters of letters, digits
/// and `()[] ./-'@_`).
pub fn image_name(plan: &Plan, instance: &str, slot: Slot) -> String {
    format!("lifeboat-{plan}-{instance}-{}", slot.compact())
}

impl AmiBackup {
    /// The function over an EC2 client, its sinks, and how many images are started at once.
    pub fn new(ec2: Client, sinks: Sinks, concurrency: usize) -> Self {
        AmiBackup {
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

    fn region(&self) -> String {
        self.ec2
            .config()
            .region()
            .map(ToString::to_string)
            .unwrap_or_default()
    }
}

impl BackupFunction for AmiBackup {
    const NAME: &'static str = "ami-backup";
    type Fields = AmiBackupFields;

    fn sinks(&self) -> &Sinks {
        &self.sinks
    }

    async fn run(
        &self,
        request: &Request<AmiBackupFields>,
        _: &Invocation,
    ) -> Result<Report, Error> {
        let region = self.region();
        let mut report = Report::new(
            Self::NAME,
            request.plan.clone(),
            request.slot,
            request.dry_run,
        );
        let images = ec2::list_images(&self.ec2, Some(request.plan.as_str())).await?;
        let slot = request.slot.to_string();
        let done: BTreeMap<&str, &str> = images
            .iter()
            // A failed image must not stop a retry of its slot.
            .filter(|(image, label)| {
                let failed = image.state().is_some_and(|s| {
                    matches!(s.as_str(), "failed" | "error" | "invalid" | "deregistered")
                });
                label.scheduled_time == slot && !failed
            })
            .map(|(image, label)| (label.source.as_str(), image.image_id().unwrap_or_default()))
            .collect();

        let (instances, missing) = ec2::select_instances(&self.ec2, &request.fields.select).await?;
        report.failed.extend(missing.into_iter().map(|id| Failed {
            kind: Kind::Ami,
            source: id.clone(),
            error: format!("no instance `{id}` in this region"),
        }));
        let mut ready = Vec::new();
        for instance in instances {
            if let Some(image) = done.get(instance.id.as_str()) {
                report.skipped.push(skipped(
                    &instance.id,
                    Some(image),
                    "this slot's image already exists".to_owned(),
                ));
                continue;
            }
            match instance.state.as_str() {
                "running" | "stopped" | "stopping" => ready.push(instance),
                "terminated" | "shutting-down" => report.failed.push(Failed {
                    kind: Kind::Ami,
                    error: format!(
                        "instance `{}` is `{}`: nothing left to image",
                        instance.id, instance.state
                    ),
                    source: instance.id,
                }),
                other => {
                    let reason = format!("instance is `{other}`; the next run images it");
                    report.skipped.push(skipped(&instance.id, None, reason));
                }
            }
        }
        if request.dry_run {
            report.created.extend(ready.iter().map(|i| {
                created(
                    &i.id,
                    image_name(&request.plan, &i.id, request.slot),
                    &region,
                )
            }));
            return Ok(report);
        }
        let made = self.create_all(request, ready, &region, &mut report).await;
        self.tag_snapshots(&images, &made, &mut report).await?;
        Ok(report)
    }
}

impl AmiBackup {
    /// Starts every image, at most `concurrency` at once; returns the new image ids with their labels.
    async fn create_all(
        &self,
        request: &Request<AmiBackupFields>,
        instances: Vec<Instance>,
        region: &str,
        report: &mut Report,
    ) -> Vec<(String, BackupLabel)> {
        let calls: Vec<_> = instances
            .into_iter()
            .map(|instance| async move {
                let name = image_name(&request.plan, &instance.id, request.slot);
                let label = BackupLabel::new(&request.plan, &instance.id, request.slot);
                let mut tags = label.tags();
                tags.push(("Name", name.clone()));
                let result = self
                    .ec2
                    .create_image()
                    .instance_id(&instance.id)
                    .name(&name)
                    .description(format!(
                        "Lifeboat plan {}: {} at {}",
                        request.plan, instance.id, request.slot
                    ))
                    .no_reboot(!request.fields.reboot)
                    .tag_specifications(ec2::tag_spec(ResourceType::Image, &tags))
                    .send()
                    .await;
                (instance, name, label, result)
            })
            .collect();
        let results: Vec<_> = stream::iter(calls)
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut made = Vec::new();
        for (instance, name, label, result) in results {
            match result {
                Ok(out) => {
                    let id = out.image_id().unwrap_or_default().to_owned();
                    tracing::info!(source = %instance.id, image = %id, %name, "image started");
                    report
                        .created
                        .push(created(&instance.id, id.clone(), region));
                    made.push((id, label));
                }
                Err(e) if e.code() == Some("InvalidAMIName.Duplicate") => {
                    report.skipped.push(skipped(
                        &instance.id,
                        Some(&name),
                        "this slot's image already exists".to_owned(),
                    ));
                }
                Err(e) => report.failed.push(Failed {
                    kind: Kind::Ami,
                    source: instance.id,
                    error: aws::summarize(&e),
                }),
            }
        }
        made
    }

    /// Tags the backing snapshots of the plan's images (older ones and the ones
    /// just made) that do not carry Lifeboat's tags yet.
    async fn tag_snapshots(
        &self,
        older: &[(Image, BackupLabel)],
        made: &[(String, BackupLabel)],
        report: &mut Report,
    ) -> Result<(), Error> {
        let mut labels: BTreeMap<String, BackupLabel> = older
            .iter()
            .map(|(image, label)| {
                (
                    image.image_id().unwrap_or_default().to_owned(),
                    label.clone(),
                )
            })
            .collect();
        labels.extend(made.iter().cloned());
        if labels.is_empty() {
            return Ok(());
        }
        // The new images' block device mappings, and the older ones' from the listing.
        let mut snapshots_of: BTreeMap<String, Vec<String>> = older
            .iter()
            .map(|(image, _)| {
                (
                    image.image_id().unwrap_or_default().to_owned(),
                    ec2::image_snapshot_ids(image),
                )
            })
            .collect();
        if !made.is_empty() {
            let fresh = self
                .ec2
                .describe_images()
                .set_image_ids(Some(made.iter().map(|(id, _)| id.clone()).collect()))
                .send()
                .await
                .map_err(|e| Error::aws("DescribeImages", e))?;
            for image in fresh.images() {
                snapshots_of.insert(
                    image.image_id().unwrap_or_default().to_owned(),
                    ec2::image_snapshot_ids(image),
                );
            }
        }
        let all: Vec<String> = snapshots_of.values().flatten().cloned().collect();
        if all.is_empty() {
            return Ok(());
        }
        let tagged: BTreeSet<String> = ec2::list_snapshots(
            &self.ec2,
            vec![
                ec2::filter("snapshot-id", all),
                ec2::filter(&format!("tag:{}", tags::MANAGED_BY), [tags::LIFEBOAT]),
            ],
        )
        .await?
        .into_iter()
        .map(|s| s.id)
        .collect();
        for (image, snapshots) in snapshots_of {
            let untagged: Vec<String> = snapshots
                .into_iter()
                .filter(|s| !tagged.contains(s))
                .collect();
            let Some(label) = labels.get(&image) else {
                continue;
            };
            if untagged.is_empty() {
                continue;
            }
            let mut tags = label.tags();
            tags.push((tags::IMAGE, image.clone()));
            let result = self
                .ec2
                .create_tags()
                .set_resources(Some(untagged.clone()))
                .set_tags(Some(ec2::ec2_tags(&tags)))
                .send()
                .await;
            match result {
                Ok(_) => {
                    tracing::info!(%image, snapshots = %untagged.join(","), "image snapshots tagged")
                }
                Err(e) => report.failed.push(Failed {
                    kind: Kind::Ami,
                    source: label.source.clone(),
                    error: format!(
                        "snapshots of {image} could not be tagged: {}",
                        aws::summarize(&e)
                    ),
                }),
            }
        }
        Ok(())
    }
}

fn created(source: &str, backup: String, region: &str) -> Created {
    Created {
        kind: Kind::Ami,
        source: source.to_owned(),
        backup,
        region: region.to_owned(),
        copy_of: None,
    }
}

fn skipped(source: &str, backup: Option<&str>, reason: String) -> Skipped {
    Skipped {
        kind: Kind::Ami,
        source: source.to_owned(),
        backup: backup.map(str::to_owned),
        reason,
    }
}
