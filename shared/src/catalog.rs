//! The managed backups of every kind, as `prune` (and `freshness`) see them:
//! one paginated listing per kind, never one call per resource, and their
//! deletion. Only backups that carry `managed-by=lifeboat` (or, for dumps, sit
//! at a Lifeboat dump key) are ever listed, so nothing else is ever deleted.

use crate::dumps::{self, MANIFEST_SUFFIX};
use crate::ec2;
use crate::error::Error;
use crate::report::Kind;
use crate::tags::{self, BackupLabel};
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// Added to a failed deletion's error when the look afterwards failed too:
/// the delete call may have done its work before its response was lost.
pub const UNCHECKED: &str =
    " (whether it is gone could not be checked: the next run's listing will tell)";

/// DeleteObjects takes at most this many keys a call.
const DELETE_BATCH: usize = 1000;

/// One backup as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedBackup {
    /// Its kind.
    pub kind: Kind,
    /// The source it is a backup of.
    pub source: String,
    /// The plan that made it.
    pub plan: String,
    /// Its slot.
    pub slot: DateTime<Utc>,
    /// Its id for people: a snapshot id, an AMI id, a dump key; the parts joined for an instance set.
    pub id: String,
    /// What deleting it removes: the snapshots of a set or an AMI, a dump and its manifest.
    pub parts: Vec<String>,
    /// Whether it is complete (available, completed, with a manifest).
    pub complete: bool,
    /// The resources it protects: the source, and for EBS the volumes it holds
    /// (an instance set protects each of its volumes).
    pub covers: Vec<String>,
    /// What else tells its group apart: for a dump, the key prefix (two
    /// databases of one name under different prefixes are different sources).
    pub scope: String,
}

/// What became of one deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    /// Gone.
    Deleted,
    /// AWS kept it for a reason that is not a fault (in use by an AMI, Object Lock): reported, not fatal.
    Refused(String),
    /// An error: a failure of the run.
    Failed(String),
}

/// The clients the catalog lists and deletes with.
#[derive(Debug, Clone)]
pub struct Catalog {
    rds: aws_sdk_rds::Client,
    ec2: aws_sdk_ec2::Client,
    s3: aws_sdk_s3::Client,
    bucket: Option<String>,
}

impl Catalog {
    /// A catalog over these clients; `bucket` holds the dumps (`LIFEBOAT_BUCKET`).
    pub fn new(
        rds: aws_sdk_rds::Client,
        ec2: aws_sdk_ec2::Client,
        s3: aws_sdk_s3::Client,
        bucket: Option<String>,
    ) -> Self {
        Catalog {
            rds,
            ec2,
            s3,
            bucket,
        }
    }

    /// Every managed backup of `kind` (of `plan` only, if given).
    pub async fn list(&self, kind: Kind, plan: Option<&str>) -> Result<Vec<ManagedBackup>, Error> {
        let mut backups = match kind {
            Kind::Rds | Kind::RdsCluster => self.list_rds(kind).await?,
            Kind::Ebs => self.list_ebs(plan).await?,
            Kind::Ami => self.list_amis(plan).await?,
            Kind::PgDump => self.list_dumps().await?,
        };
        backups.retain(|b| plan.is_none_or(|p| b.plan == p));
        Ok(backups)
    }

    async fn list_rds(&self, kind: Kind) -> Result<Vec<ManagedBackup>, Error> {
        // RDS cannot filter snapshots by tag: one listing of the manual ones, filtered by label here.
        let listed = crate::rds::list_manual(&self.rds, kind).await?;
        Ok(listed
            .into_iter()
            .filter_map(|s| {
                let label = s.label?;
                managed(
                    kind,
                    &label,
                    s.id.clone(),
                    vec![s.id],
                    s.status == "available",
                )
            })
            .collect())
    }

    async fn list_ebs(&self, plan: Option<&str>) -> Result<Vec<ManagedBackup>, Error> {
        let filters = ec2::managed_filters(plan);
        let snapshots = ec2::list_snapshots(&self.ec2, filters).await?;
        // An instance set is one backup of several snapshots; an AMI's snapshots belong to the AMI.
        let mut sets: BTreeMap<(String, String, String), Set> = BTreeMap::new();
        for s in snapshots {
            let Some(label) = s.label.filter(|_| !s.tags.contains_key(crate::tags::IMAGE)) else {
                continue;
            };
            let entry = sets
                .entry((
                    label.plan.clone(),
                    label.source.clone(),
                    label.scheduled_time.clone(),
                ))
                .or_insert_with(|| Set {
                    label,
                    parts: Vec::new(),
                    volumes: Vec::new(),
                    complete: true,
                });
            entry.parts.push(s.id);
            entry.volumes.push(s.volume_id);
            entry.complete &= s.state == "completed";
        }
        Ok(sets
            .into_values()
            .filter_map(|mut set| {
                set.parts.sort();
                let mut backup = managed(
                    Kind::Ebs,
                    &set.label,
                    set.parts.join(","),
                    set.parts,
                    set.complete,
                )?;
                backup.covers.extend(set.volumes);
                Some(backup)
            })
            .collect())
    }

    /// The snapshots of `plan`'s images whose image is gone, one backup per
    /// former image: a deregistration whose snapshot deletions then failed
    /// left them, and nothing else would ever find them again. Snapshots are
    /// listed before images, so an image made meanwhile is never taken for gone.
    pub async fn leftover_image_snapshots(&self, plan: &str) -> Result<Vec<ManagedBackup>, Error> {
        let snapshots = ec2::list_snapshots(&self.ec2, ec2::managed_filters(Some(plan))).await?;
        let images: BTreeSet<String> = ec2::list_images(&self.ec2, None)
            .await?
            .into_iter()
            .filter_map(|(image, _)| image.image_id)
            .collect();
        let mut left: BTreeMap<String, (BackupLabel, Vec<String>)> = BTreeMap::new();
        for s in snapshots {
            let (Some(label), Some(image)) = (s.label, s.tags.get(tags::IMAGE)) else {
                continue;
            };
            if !images.contains(image) {
                left.entry(image.clone())
                    .or_insert_with(|| (label, Vec::new()))
                    .1
                    .push(s.id);
            }
        }
        Ok(left
            .into_iter()
            .filter_map(|(image, (label, snapshots))| {
                let parts = std::iter::once(image.clone()).chain(snapshots).collect();
                managed(Kind::Ami, &label, image, parts, true)
            })
            .collect())
    }

    async fn list_amis(&self, plan: Option<&str>) -> Result<Vec<ManagedBackup>, Error> {
        let images = ec2::list_images(&self.ec2, plan).await?;
        Ok(images
            .into_iter()
            .filter_map(|(image, label)| {
                let id = image.image_id().unwrap_or_default().to_owned();
                let parts = std::iter::once(id.clone())
                    .chain(ec2::image_snapshot_ids(&image))
                    .collect();
                let available = image.state().is_some_and(|s| s.as_str() == "available");
                managed(Kind::Ami, &label, id, parts, available)
            })
            .collect())
    }

    async fn list_dumps(&self) -> Result<Vec<ManagedBackup>, Error> {
        let bucket = self.bucket()?;
        let pages = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| Error::aws("ListObjectsV2", e))?;
        let keys: BTreeSet<String> = pages
            .iter()
            .flat_map(|p| p.contents())
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        Ok(keys
            .iter()
            .filter_map(|key| {
                let dump = dumps::parse_dump_key(key)?;
                let manifest = format!("{key}{MANIFEST_SUFFIX}");
                let complete = keys.contains(&manifest);
                let label = BackupLabel {
                    plan: dump.plan,
                    source: dump.database,
                    scheduled_time: dump.slot.format("%Y-%m-%dT%H:%M:00Z").to_string(),
                };
                let parts = if complete {
                    vec![key.clone(), manifest]
                } else {
                    vec![key.clone()]
                };
                let mut backup = managed(Kind::PgDump, &label, key.clone(), parts, complete)?;
                backup.scope = dumps::key_prefix(key, &backup.source).to_owned();
                Some(backup)
            })
            .collect())
    }

    fn bucket(&self) -> Result<&str, Error> {
        self.bucket.as_deref().ok_or_else(|| {
            Error::Config("LIFEBOAT_BUCKET is not set: the dump bucket is unknown".into())
        })
    }

    /// Deletes `backups` (dumps in batches, the rest one by one) and says what became of each.
    pub async fn delete(&self, backups: Vec<ManagedBackup>) -> Vec<(ManagedBackup, Deletion)> {
        let (dumps, others): (Vec<_>, Vec<_>) =
            backups.into_iter().partition(|b| b.kind == Kind::PgDump);
        let mut outcomes = Vec::new();
        for backup in others {
            let outcome = self.delete_one(&backup).await;
            outcomes.push((backup, outcome));
        }
        outcomes.extend(self.delete_dumps(dumps).await);
        // A delete call can fail after AWS did the work (a dropped response,
        // then retries that fail): look before reporting a failure, so the
        // report says what is really gone.
        for (backup, outcome) in &mut outcomes {
            let Deletion::Failed(error) = outcome else {
                continue;
            };
            match self.is_gone(backup).await {
                Some(true) => {
                    tracing::info!(kind = %backup.kind, backup = %backup.id, "the failed delete had done its work");
                    *outcome = Deletion::Deleted;
                }
                Some(false) => {}
                None => error.push_str(UNCHECKED),
            }
        }
        outcomes
    }

    /// Whether `backup` is gone; `None` when the look itself failed.
    async fn is_gone(&self, backup: &ManagedBackup) -> Option<bool> {
        match backup.kind {
            Kind::Rds => match self
                .rds
                .describe_db_snapshots()
                .db_snapshot_identifier(&backup.id)
                .send()
                .await
            {
                Ok(out) => Some(out.db_snapshots().is_empty()),
                Err(e) => e
                    .as_service_error()
                    .is_some_and(|s| s.is_db_snapshot_not_found_fault())
                    .then_some(true),
            },
            Kind::RdsCluster => match self
                .rds
                .describe_db_cluster_snapshots()
                .db_cluster_snapshot_identifier(&backup.id)
                .send()
                .await
            {
                Ok(out) => Some(out.db_cluster_snapshots().is_empty()),
                Err(e) => e
                    .as_service_error()
                    .is_some_and(|s| s.is_db_cluster_snapshot_not_found_fault())
                    .then_some(true),
            },
            Kind::Ebs => self
                .ec2
                .describe_snapshots()
                .owner_ids("self")
                .filters(ec2::filter("snapshot-id", backup.parts.clone()))
                .send()
                .await
                .ok()
                .map(|out| out.snapshots().is_empty()),
            // The image is the backup: once it is deregistered, it cannot be restored.
            Kind::Ami => self
                .ec2
                .describe_images()
                .owners("self")
                .filters(ec2::filter("image-id", [backup.id.clone()]))
                .send()
                .await
                .ok()
                .map(|out| out.images().is_empty()),
            Kind::PgDump => {
                let bucket = self.bucket().ok()?;
                match self
                    .s3
                    .head_object()
                    .bucket(bucket)
                    .key(&backup.id)
                    .send()
                    .await
                {
                    Ok(_) => Some(false),
                    Err(e) => e
                        .as_service_error()
                        .is_some_and(|s| s.is_not_found())
                        .then_some(true),
                }
            }
        }
    }

    async fn delete_one(&self, backup: &ManagedBackup) -> Deletion {
        match backup.kind {
            Kind::Rds => match self
                .rds
                .delete_db_snapshot()
                .db_snapshot_identifier(&backup.id)
                .send()
                .await
            {
                Ok(_) => Deletion::Deleted,
                // Gone already: a retried call whose first attempt AWS had done.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_db_snapshot_not_found_fault()) =>
                {
                    Deletion::Deleted
                }
                Err(e) => Deletion::Failed(crate::aws::summarize(&e)),
            },
            Kind::RdsCluster => match self
                .rds
                .delete_db_cluster_snapshot()
                .db_cluster_snapshot_identifier(&backup.id)
                .send()
                .await
            {
                Ok(_) => Deletion::Deleted,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_db_cluster_snapshot_not_found_fault()) =>
                {
                    Deletion::Deleted
                }
                Err(e) => Deletion::Failed(crate::aws::summarize(&e)),
            },
            Kind::Ebs => self.delete_snapshots(&backup.parts).await,
            Kind::Ami => {
                // Deregister first: a registered image's snapshots cannot be deleted.
                match self
                    .ec2
                    .deregister_image()
                    .image_id(&backup.id)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    // Gone already (a retried call): its snapshots are still to delete.
                    Err(e)
                        if matches!(
                            e.code(),
                            Some("InvalidAMIID.NotFound" | "InvalidAMIID.Unavailable")
                        ) => {}
                    Err(e) => {
                        return Deletion::Failed(format!(
                            "DeregisterImage: {}",
                            crate::aws::summarize(&e)
                        ));
                    }
                }
                self.delete_snapshots(&backup.parts[1..]).await
            }
            Kind::PgDump => Deletion::Failed("dumps are deleted in batches".into()),
        }
    }

    async fn delete_snapshots(&self, ids: &[String]) -> Deletion {
        let mut refused = Vec::new();
        for id in ids {
            match self.ec2.delete_snapshot().snapshot_id(id).send().await {
                Ok(_) => {}
                Err(e) if e.code() == Some("InvalidSnapshot.InUse") => {
                    refused.push(format!(
                        "{id} is in use by an AMI ({})",
                        crate::aws::summarize(&e)
                    ));
                }
                Err(e) if e.code() == Some("InvalidSnapshot.NotFound") => {}
                Err(e) => {
                    return Deletion::Failed(format!(
                        "DeleteSnapshot {id}: {}",
                        crate::aws::summarize(&e)
                    ));
                }
            }
        }
        if refused.is_empty() {
            Deletion::Deleted
        } else {
            Deletion::Refused(refused.join("; "))
        }
    }

    async fn delete_dumps(&self, dumps: Vec<ManagedBackup>) -> Vec<(ManagedBackup, Deletion)> {
        let bucket = match self.bucket() {
            Ok(bucket) => bucket.to_owned(),
            Err(e) => {
                return dumps
                    .into_iter()
                    .map(|d| (d, Deletion::Failed(e.to_string())))
                    .collect();
            }
        };
        let mut outcomes = Vec::new();
        // A key that looks like a dump is not proof: only a dump tagged as
        // Lifeboat's is deleted (one tag read per deletion, never per listing).
        let mut ours = Vec::new();
        for dump in dumps {
            match self
                .s3
                .get_object_tagging()
                .bucket(&bucket)
                .key(&dump.id)
                .send()
                .await
            {
                Ok(out)
                    if out
                        .tag_set()
                        .iter()
                        .any(|t| t.key() == tags::MANAGED_BY && t.value() == tags::LIFEBOAT) =>
                {
                    ours.push(dump)
                }
                Ok(_) => outcomes.push((
                    dump,
                    Deletion::Refused("not tagged managed-by=lifeboat: left alone".to_owned()),
                )),
                Err(e) => outcomes.push((
                    dump,
                    Deletion::Failed(format!("GetObjectTagging: {}", crate::aws::summarize(&e))),
                )),
            }
        }
        // Batches of whole backups: a dump and its manifest always travel together.
        let mut batch: Vec<ManagedBackup> = Vec::new();
        let mut keys = 0;
        for dump in ours {
            if keys + dump.parts.len() > DELETE_BATCH {
                outcomes.extend(self.delete_batch(&bucket, std::mem::take(&mut batch)).await);
                keys = 0;
            }
            keys += dump.parts.len();
            batch.push(dump);
        }
        if !batch.is_empty() {
            outcomes.extend(self.delete_batch(&bucket, batch).await);
        }
        outcomes
    }

    async fn delete_batch(
        &self,
        bucket: &str,
        batch: Vec<ManagedBackup>,
    ) -> Vec<(ManagedBackup, Deletion)> {
        let objects: Result<Vec<ObjectIdentifier>, _> = batch
            .iter()
            .flat_map(|b| &b.parts)
            .map(|key| ObjectIdentifier::builder().key(key).build())
            .collect();
        let request = objects.and_then(|objects| {
            Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
        });
        let result = match request {
            Ok(delete) => self
                .s3
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| crate::aws::summarize(&e)),
            Err(e) => Err(e.to_string()),
        };
        let errors: BTreeMap<String, (String, String)> = match result {
            Err(message) => {
                return batch
                    .into_iter()
                    .map(|b| (b, Deletion::Failed(format!("DeleteObjects: {message}"))))
                    .collect();
            }
            Ok(out) => out
                .errors()
                .iter()
                .map(|e| {
                    let key = e.key().unwrap_or_default().to_owned();
                    (
                        key,
                        (
                            e.code().unwrap_or_default().to_owned(),
                            e.message().unwrap_or_default().to_owned(),
                        ),
                    )
                })
                .collect(),
        };
        batch
            .into_iter()
            .map(|backup| {
                let failures: Vec<&(String, String)> =
                    backup.parts.iter().filter_map(|k| errors.get(k)).collect();
                let outcome = match failures.first() {
                    None => Deletion::Deleted,
                    Some((code, message)) => {
                        Deletion::Failed(format!("DeleteObjects: {code}: {message}"))
                    }
                };
                (backup, outcome)
            })
            .collect()
    }
}

/// The snapshots of one EBS backup: one for a volume, several for an instance set.
struct Set {
    label: BackupLabel,
    parts: Vec<String>,
    volumes: Vec<String>,
    complete: bool,
}

fn managed(
    kind: Kind,
    label: &BackupLabel,
    id: String,
    parts: Vec<String>,
    complete: bool,
) -> Option<ManagedBackup> {
    // A label whose slot does not parse is not Lifeboat's to judge: leave it alone.
    let slot = DateTime::parse_from_rfc3339(&label.scheduled_time)
        .ok()?
        .with_timezone(&Utc);
    Some(ManagedBackup {
        kind,
        source: label.source.clone(),
        plan: label.plan.clone(),
        slot,
        id,
        parts,
        complete,
        covers: vec![label.source.clone()],
        scope: String::new(),
    })
}
