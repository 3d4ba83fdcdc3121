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

pub mod fields;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{Image, ResourceType};
use fields::AmiBackupFields;
use lifeboat::aws::ec2::{self, Source};
use lifeboat::fanout::FanOut;
use lifeboat::model::tag as tags;
use lifeboat::report::{Failed, Report, Skipped};
use lifeboat::rules::naming::image_name;
use lifeboat::rules::planner;
use lifeboat::runtime::{BackupFunction, Invocation, Sinks};
use lifeboat::{BackupLabel, Error, ItemError, Kind, Request};
use std::collections::{BTreeMap, BTreeSet};

/// The `ami-backup` function with its clients.
pub struct AmiBackup {
    ec2: Client,
    sinks: Sinks,
    fan_out: FanOut,
}

impl AmiBackup {
    /// The function over an EC2 client, its sinks, and how many calls run at once.
    pub fn new(ec2: Client, sinks: Sinks, fan_out: FanOut) -> Self {
        AmiBackup {
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
        let region = lifeboat::aws::region_name(self.ec2.config().region());
        let mut report = request.report(Self::NAME);
        let images = ec2::list_images(&self.ec2, Some(&request.plan)).await?;
        let done = planner::done(
            images
                .iter()
                // A failed image must not stop a retry of its slot.
                .filter(|(image, label)| {
                    let failed = image.state().is_some_and(|s| {
                        matches!(s.as_str(), "failed" | "error" | "invalid" | "deregistered")
                    });
                    label.slot == request.slot && !failed
                })
                .map(|(image, label)| {
                    (label.source.as_str(), image.image_id().unwrap_or_default())
                }),
        );
        let (instances, missing) = ec2::select_instances(&self.ec2, &request.fields.select).await?;
        report
            .failed
            .extend(planner::missing(Kind::Ami, "instance", missing));
        let create = planner::plan(Kind::Ami, instances, &done).into_report(&mut report);
        if request.dry_run {
            for i in &create {
                let name = image_name(&request.plan, &i.id, request.slot);
                report.created(Kind::Ami, &i.id, name, &region, None);
            }
            return Ok(report);
        }
        let made = self.create_all(request, create, &region, &mut report).await;
        self.tag_snapshots(&images, &made, &mut report).await?;
        Ok(report)
    }
}

impl AmiBackup {
    /// Starts every image, through the fan-out; returns the new image ids with their labels.
    async fn create_all(
        &self,
        request: &Request<AmiBackupFields>,
        instances: Vec<Source>,
        region: &str,
        report: &mut Report,
    ) -> Vec<(String, BackupLabel)> {
        let calls = instances
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
        let mut made = Vec::new();
        for (instance, name, label, result) in self.fan_out.run(calls).await {
            match result {
                Ok(out) => {
                    let id = out.image_id().unwrap_or_default().to_owned();
                    tracing::info!(source = %instance.id, image = %id, %name, "image started");
                    report.created(Kind::Ami, &instance.id, id.clone(), region, None);
                    made.push((id, label));
                }
                Err(e) if e.code() == Some("InvalidAMIName.Duplicate") => {
                    report.skipped.push(Skipped::new(
                        Kind::Ami,
                        &instance.id,
                        Some(name),
                        "this slot's backup already exists",
                    ));
                }
                Err(e) => {
                    report
                        .failed
                        .push(Failed::new(Kind::Ami, &instance.id, ItemError::aws(&e)))
                }
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
                Err(e) => {
                    let error = ItemError::aws(&e)
                        .context(format!("snapshots of {image} could not be tagged"));
                    report
                        .failed
                        .push(Failed::new(Kind::Ami, &label.source, error));
                }
            }
        }
        Ok(())
    }
}
