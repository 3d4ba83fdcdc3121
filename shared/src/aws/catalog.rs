//! The managed backups of every kind, as `prune` (and `freshness`) see them:
//! one paginated listing per kind, never one call per resource, and their
//! deletion. Only backups that carry `managed-by=lifeboat` (or, for dumps, sit
//! at a Lifeboat dump key) are ever listed, so nothing else is ever deleted.

use super::ec2;
use crate::error::Error;
use crate::fanout::FanOut;
use crate::model::{Backup, BackupLabel, Kind, Plan, tag as tags};
use crate::report::ItemError;
use crate::rules::naming;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use std::collections::{BTreeMap, BTreeSet};

/// Added to a failed deletion's error when the look afterwards failed too:
/// the delete call may have done its work before its response was lost.
pub const UNCHECKED: &str =
    " (whether it is gone could not be checked: the next run's listing will tell)";

/// DeleteObjects takes at most this many keys a call.
const DELETE_BATCH: usize = 1000;

/// What became of one deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    /// Gone.
    Deleted,
    /// AWS kept it for a reason that is not a fault (in use by an AMI, Object Lock): reported, not fatal.
    Refused(String),
    /// An error: a failure of the run.
    Failed(ItemError),
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

    /// A catalog over clients from `aws`, with the dump bucket from `LIFEBOAT_BUCKET`.
    pub fn from_env(aws: &aws_config::SdkConfig) -> Self {
        let bucket = std::env::var("LIFEBOAT_BUCKET")
            .ok()
            .filter(|b| !b.is_empty());
        Catalog::new(
            aws_sdk_rds::Client::new(aws),
            aws_sdk_ec2::Client::new(aws),
            super::s3_client(aws),
            bucket,
        )
    }

    /// Every managed backup of `kind` (of `plan` only, if given).
    pub async fn list(&self, kind: Kind, plan: Option<&Plan>) -> Result<Vec<Backup>, Error> {
        let mut backups = match kind {
            Kind::Rds | Kind::RdsCluster => self.list_rds(kind).await?,
            Kind::Ebs => self.list_ebs(plan).await?,
            Kind::Ami => self.list_amis(plan).await?,
            Kind::PgDump => self.list_dumps().await?,
        };
        backups.retain(|b| plan.is_none_or(|p| b.label.plan == *p));
        Ok(backups)
    }

    async fn list_rds(&self, kind: Kind) -> Result<Vec<Backup>, Error> {
        // RDS cannot filter snapshots by tag: one listing of the manual ones, filtered by label here.
        let listed = super::rds::list_manual(&self.rds, kind).await?;
        Ok(listed
            .into_iter()
            .filter_map(|s| {
                let complete = s.status == "available";
                let proven =
                    crate::model::proven_at(s.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                let mut backup = Backup::new(kind, s.label?, s.id.clone(), vec![s.id], complete);
                backup.proven = proven;
                Some(backup)
            })
            .collect())
    }

    async fn list_ebs(&self, plan: Option<&Plan>) -> Result<Vec<Backup>, Error> {
        let filters = ec2::managed_filters(plan);
        let snapshots = ec2::list_snapshots(&self.ec2, filters).await?;
        // An instance set is one backup of several snapshots; an AMI's snapshots belong to the AMI.
        let mut sets: BTreeMap<BackupLabel, Set> = BTreeMap::new();
        for s in snapshots {
            let Some(label) = s.label.filter(|_| !s.tags.contains_key(tags::IMAGE)) else {
                continue;
            };
            let entry = sets.entry(label).or_insert_with(|| Set {
                parts: Vec::new(),
                volumes: Vec::new(),
                complete: true,
                proven: None,
            });
            let proven =
                crate::model::proven_at(s.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            entry.proven = entry.proven.max(proven);
            entry.parts.push(s.id);
            entry.volumes.push(s.volume_id);
            entry.complete &= s.state == "completed";
        }
        Ok(sets
            .into_iter()
            .map(|(label, mut set)| {
                set.parts.sort();
                let id = set.parts.join(",");
                let mut backup = Backup::new(Kind::Ebs, label, id, set.parts, set.complete);
                backup.covers.extend(set.volumes);
                backup.proven = set.proven;
                backup
            })
            .collect())
    }

    /// The snapshots of `plan`'s images whose image is gone, one backup per
    /// former image: a deregistration whose snapshot deletions then failed
    /// left them, and nothing else would ever find them again. Snapshots are
    /// listed before images, so an image made meanwhile is never taken for gone.
    pub async fn leftover_image_snapshots(&self, plan: &Plan) -> Result<Vec<Backup>, Error> {
        let snapshots = ec2::list_snapshots(&self.ec2, ec2::managed_filters(Some(plan))).await?;
        // A snapshot names its image by id (tagged after the image was made)
        // or by name (tagged by CreateImage itself, before the id existed).
        let images: BTreeSet<String> = ec2::list_images(&self.ec2, None)
            .await?
            .into_iter()
            .flat_map(|(image, _)| [image.image_id, image.name].into_iter().flatten())
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
            .map(|(image, (label, snapshots))| {
                let parts = std::iter::once(image.clone()).chain(snapshots).collect();
                Backup::new(Kind::Ami, label, image, parts, true)
            })
            .collect())
    }

    async fn list_amis(&self, plan: Option<&Plan>) -> Result<Vec<Backup>, Error> {
        let images = ec2::list_images(&self.ec2, plan).await?;
        Ok(images
            .into_iter()
            .map(|(image, label)| {
                let id = image.image_id().unwrap_or_default().to_owned();
                let parts = std::iter::once(id.clone())
                    .chain(ec2::image_snapshot_ids(&image))
                    .collect();
                let available = image.state().is_some_and(|s| s.as_str() == "available");
                let tags = ec2::tag_map(image.tags());
                let mut backup = Backup::new(Kind::Ami, label, id, parts, available);
                backup.proven =
                    crate::model::proven_at(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                backup
            })
            .collect())
    }

    async fn list_dumps(&self) -> Result<Vec<Backup>, Error> {
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
        // A directory dump is the objects under its key (`<key>/<file>`).
        let mut files: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for key in &keys {
            if let Some((dir, _)) = key.rsplit_once('/')
                && dir.ends_with(".dir")
                && naming::parse_dump_key(dir).is_some()
            {
                files.entry(dir).or_default().push(key.clone());
            }
        }
        let singles = keys.iter().map(|k| (k.as_str(), vec![k.clone()]));
        Ok(singles
            .chain(files)
            .filter_map(|(key, objects)| {
                let dump = naming::parse_dump_key(key)?;
                let manifest = naming::manifest_key(key);
                let complete = keys.contains(&manifest);
                let scope = naming::dump_key_prefix(key, &dump.database).to_owned();
                let label = BackupLabel {
                    plan: dump.plan,
                    source: dump.database,
                    slot: dump.slot,
                };
                // A dump (its object, or a directory dump's files, first)
                // goes with its manifest and its newest drill record.
                let drill = naming::drill_key(key);
                let key = key.to_owned();
                let mut parts = objects;
                parts.extend(complete.then_some(manifest));
                parts.extend(keys.contains(&drill).then_some(drill));
                let mut backup = Backup::new(Kind::PgDump, label, key.clone(), parts, complete);
                backup.scope = scope;
                Some(backup)
            })
            .collect())
    }

    /// Reads the drill record of every dump among `backups` that has one,
    /// and sets `proven` on those whose drill passed (one small `GetObject`
    /// each; the listing alone cannot tell a passed drill from a failed one).
    /// A record deleted since the listing (prune) proves nothing; a record
    /// that cannot be read (or is not JSON) is returned with why, its dump left unproven, and
    /// the others read on.
    pub async fn prove_dumps(
        &self,
        backups: &mut [Backup],
    ) -> Result<Vec<(String, String)>, Error> {
        let bucket = self.bucket()?;
        let mut unread = Vec::new();
        for backup in backups.iter_mut().filter(|b| b.kind == Kind::PgDump) {
            let record = naming::drill_key(&backup.id);
            if !backup.parts.contains(&record) {
                continue;
            }
            let got = match self
                .s3
                .get_object()
                .bucket(bucket)
                .key(&record)
                .send()
                .await
            {
                Ok(got) => got,
                Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => continue,
                Err(e) => {
                    unread.push((record, crate::aws::describe(&e)));
                    continue;
                }
            };
            let body = match got.body.collect().await {
                Ok(body) => body.into_bytes(),
                Err(e) => {
                    unread.push((record, e.to_string()));
                    continue;
                }
            };
            let read: serde_json::Value = match serde_json::from_slice(&body) {
                Ok(read) => read,
                Err(e) => {
                    unread.push((record, format!("not JSON: {e}")));
                    continue;
                }
            };
            if read["outcome"] == "passed" {
                backup.proven = read["drilled_at"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&chrono::Utc));
            }
        }
        Ok(unread)
    }

    fn bucket(&self) -> Result<&str, Error> {
        self.bucket.as_deref().ok_or_else(|| {
            Error::Config("LIFEBOAT_BUCKET is not set: the dump bucket is unknown".into())
        })
    }

    /// Deletes `backups` (dumps in batches, the rest one by one, through the
    /// fan-out) and says what became of each.
    pub async fn delete(&self, backups: Vec<Backup>, fan_out: FanOut) -> Vec<(Backup, Deletion)> {
        let (dumps, others): (Vec<_>, Vec<_>) =
            backups.into_iter().partition(|b| b.kind == Kind::PgDump);
        let calls = others
            .into_iter()
            .map(|backup| async move {
                let outcome = self.delete_one(&backup).await;
                (backup, outcome)
            })
            .collect();
        let mut outcomes = fan_out.run(calls).await;
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
                None => error.message.push_str(UNCHECKED),
            }
        }
        outcomes
    }

    /// Whether `backup` is gone; `None` when the look itself failed.
    async fn is_gone(&self, backup: &Backup) -> Option<bool> {
        let id = &backup.id;
        match backup.kind {
            Kind::Rds => gone(
                self.rds
                    .describe_db_snapshots()
                    .db_snapshot_identifier(id)
                    .send()
                    .await,
                |out| out.db_snapshots().is_empty(),
                |e| e.is_db_snapshot_not_found_fault(),
            ),
            Kind::RdsCluster => gone(
                self.rds
                    .describe_db_cluster_snapshots()
                    .db_cluster_snapshot_identifier(id)
                    .send()
                    .await,
                |out| out.db_cluster_snapshots().is_empty(),
                |e| e.is_db_cluster_snapshot_not_found_fault(),
            ),
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
                .filters(ec2::filter("image-id", [id.clone()]))
                .send()
                .await
                .ok()
                .map(|out| out.images().is_empty()),
            Kind::PgDump => gone(
                self.s3
                    .head_object()
                    .bucket(self.bucket().ok()?)
                    .key(id)
                    .send()
                    .await,
                |_| false,
                |e| e.is_not_found(),
            ),
        }
    }

    async fn delete_one(&self, backup: &Backup) -> Deletion {
        let id = &backup.id;
        match backup.kind {
            Kind::Rds => deletion(
                self.rds
                    .delete_db_snapshot()
                    .db_snapshot_identifier(id)
                    .send()
                    .await,
                |e| e.is_db_snapshot_not_found_fault(),
            ),
            Kind::RdsCluster => deletion(
                self.rds
                    .delete_db_cluster_snapshot()
                    .db_cluster_snapshot_identifier(id)
                    .send()
                    .await,
                |e| e.is_db_cluster_snapshot_not_found_fault(),
            ),
            Kind::Ebs => self.delete_snapshots(&backup.parts).await,
            // What a deregistration left names its former image, by name
            // perhaps: no image to deregister, only its snapshots.
            Kind::Ami if !backup.id.starts_with("ami-") => {
                self.delete_snapshots(&backup.parts[1..]).await
            }
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
                        return Deletion::Failed(ItemError::aws(&e).context("DeregisterImage"));
                    }
                }
                self.delete_snapshots(&backup.parts[1..]).await
            }
            Kind::PgDump => Deletion::Failed(ItemError::new("dumps are deleted in batches")),
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
                    return Deletion::Failed(
                        ItemError::aws(&e).context(format!("DeleteSnapshot {id}")),
                    );
                }
            }
        }
        if refused.is_empty() {
            Deletion::Deleted
        } else {
            Deletion::Refused(refused.join("; "))
        }
    }

    async fn delete_dumps(&self, dumps: Vec<Backup>) -> Vec<(Backup, Deletion)> {
        let bucket = match self.bucket() {
            Ok(bucket) => bucket.to_owned(),
            Err(e) => {
                return dumps
                    .into_iter()
                    .map(|d| (d, Deletion::Failed(ItemError::new(e.to_string()))))
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
                // The dump's object, or a directory dump's first file.
                .key(dump.parts.first().unwrap_or(&dump.id))
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
                    Deletion::Failed(ItemError::aws(&e).context("GetObjectTagging")),
                )),
            }
        }
        // Batches of whole backups: a dump and its manifest always travel together.
        let mut batch: Vec<Backup> = Vec::new();
        let mut keys = 0;
        for dump in ours {
            if dump.parts.len() > DELETE_BATCH {
                // A directory dump of more files than one call deletes.
                outcomes.push(self.delete_large(&bucket, dump).await);
                continue;
            }
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

    /// Deletes a directory dump of more objects than one call takes: its
    /// manifest and drill record first (from then on it never counts),
    /// then its files, a batch at a time; the first failure is its outcome
    /// (files left without a manifest never count and harm nothing, but no
    /// prune deletes an incomplete dump: they stay until removed by hand,
    /// and the failure says so).
    async fn delete_large(&self, bucket: &str, dump: Backup) -> (Backup, Deletion) {
        let under = format!("{}/", dump.id);
        let (files, records): (Vec<String>, Vec<String>) = dump
            .parts
            .iter()
            .cloned()
            .partition(|k| k.starts_with(&under));
        let mut outcome = Deletion::Deleted;
        for (i, chunk) in std::iter::once(records)
            .chain(files.chunks(DELETE_BATCH).map(<[String]>::to_vec))
            .enumerate()
        {
            let part = Backup {
                parts: chunk,
                ..dump.clone()
            };
            let done = self.delete_batch(bucket, vec![part]).await;
            if let Some((_, Deletion::Failed(mut error))) = done.into_iter().next() {
                if i > 0 {
                    error.message = format!(
                        "{}; its manifest is deleted, and what is left under {under} never counts and is deleted by no prune: remove it by hand",
                        error.message
                    );
                }
                outcome = Deletion::Failed(error);
                break;
            }
        }
        (dump, outcome)
    }

    async fn delete_batch(&self, bucket: &str, batch: Vec<Backup>) -> Vec<(Backup, Deletion)> {
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
                .map_err(|e| ItemError::aws(&e)),
            Err(e) => Err(ItemError::new(e.to_string())),
        };
        let errors: BTreeMap<String, (String, String)> = match result {
            Err(error) => {
                let error = error.context("DeleteObjects");
                return batch
                    .into_iter()
                    .map(|b| (b, Deletion::Failed(error.clone())))
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
                    Some((code, message)) => Deletion::Failed(ItemError {
                        code: Some(code.clone()),
                        message: format!("DeleteObjects: {code}: {message}"),
                    }),
                };
                (backup, outcome)
            })
            .collect()
    }
}

/// What a look says about a backup being gone: an answer, a definite "not
/// found", or `None` when the look itself failed.
fn gone<T, E, R>(
    look: Result<T, aws_sdk_s3::error::SdkError<E, R>>,
    empty: impl FnOnce(&T) -> bool,
    not_found: impl FnOnce(&E) -> bool,
) -> Option<bool> {
    match look {
        Ok(out) => Some(empty(&out)),
        Err(e) => e.as_service_error().is_some_and(not_found).then_some(true),
    }
}

/// A delete call's outcome; "not found" is a retried call whose first attempt AWS had done.
fn deletion<T, E, R>(
    result: Result<T, aws_sdk_s3::error::SdkError<E, R>>,
    not_found: impl FnOnce(&E) -> bool,
) -> Deletion
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Deletion::Deleted,
        Err(e) if e.as_service_error().is_some_and(not_found) => Deletion::Deleted,
        Err(e) => Deletion::Failed(ItemError::aws(&e)),
    }
}

/// The snapshots of one EBS backup: one for a volume, several for an instance set.
struct Set {
    parts: Vec<String>,
    volumes: Vec<String>,
    complete: bool,
    proven: Option<chrono::DateTime<chrono::Utc>>,
}
