//! `ami-backup`: one AMI per selected instance per slot, with the four
//! Lifeboat tags on the image and on its backing snapshots.
//!
//! The AMI name derives from plan, instance and slot, and AMI names are unique
//! per account and region, so a second run (or a second delivery racing the
//! first, which AWS answers with `InvalidAMIName.Duplicate`) finds the image
//! and skips.
//!
//! CreateImage tags the image and its backing snapshots as it makes them (a
//! `snapshot` tag specification), so no snapshot is ever untagged and the
//! role needs no right to tag snapshots afterwards.

pub mod fields;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::ResourceType;
use fields::AmiBackupFields;
use lifeboat::aws::ec2::{self, Source};
use lifeboat::fanout::FanOut;
use lifeboat::model::tag as tags;
use lifeboat::report::{Failed, Report, Skipped};
use lifeboat::rules::naming::image_name;
use lifeboat::rules::planner;
use lifeboat::runtime::{BackupFunction, Invocation, Sinks};
use lifeboat::{BackupLabel, Error, ItemError, Kind, Request};

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
        self.create_all(request, create, &region, &mut report).await;
        Ok(report)
    }
}

impl AmiBackup {
    /// Starts every image, through the fan-out. The image and its snapshots
    /// are tagged by CreateImage itself: the snapshots carry the label and
    /// `lifeboat:image` (the image's name, its id being unknown until then),
    /// so they are never mistaken for EBS backups and `prune` deletes them
    /// with their image.
    async fn create_all(
        &self,
        request: &Request<AmiBackupFields>,
        instances: Vec<Source>,
        region: &str,
        report: &mut Report,
    ) {
        let calls = instances
            .into_iter()
            .map(|instance| async move {
                let name = image_name(&request.plan, &instance.id, request.slot);
                let label = BackupLabel::new(&request.plan, &instance.id, request.slot);
                let mut image_tags = label.tags();
                image_tags.push(("Name", name.clone()));
                let mut snapshot_tags = label.tags();
                snapshot_tags.push((tags::IMAGE, name.clone()));
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
                    .tag_specifications(ec2::tag_spec(ResourceType::Image, &image_tags))
                    .tag_specifications(ec2::tag_spec(ResourceType::Snapshot, &snapshot_tags))
                    .send()
                    .await;
                (instance, name, result)
            })
            .collect();
        for (instance, name, result) in self.fan_out.run(calls).await {
            match result {
                Ok(out) => {
                    let id = out.image_id().unwrap_or_default().to_owned();
                    tracing::info!(source = %instance.id, image = %id, %name, "image started");
                    report.created(Kind::Ami, &instance.id, id, region, None);
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
    }
}
