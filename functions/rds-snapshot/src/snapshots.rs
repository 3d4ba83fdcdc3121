//! Manual snapshots: created, and copied to other regions (the copier's seam
//! for RDS). Instance and cluster snapshots differ only in the API calls.

use lifeboat::aws::rds::{Snapshot, list_manual, rds_tags, snapshot};
use lifeboat::copier::{CopySeam, Copyable};
use lifeboat::rules::copy::CopyTarget;
use lifeboat::{BackupLabel, Error, ItemError, Kind, Plan};
use std::collections::BTreeSet;

/// What a create call came to, when it did not fail.
#[derive(Debug)]
pub enum Created {
    /// The snapshot was started.
    New(Snapshot),
    /// It exists already: another delivery of this event made it.
    AlreadyExists,
}

/// The snapshots of one kind (instance or cluster) in the home region.
pub struct Snapshots<'a> {
    rds: &'a aws_sdk_rds::Client,
    /// `Rds` or `RdsCluster`.
    pub kind: Kind,
}

impl<'a> Snapshots<'a> {
    /// The snapshots of `kind` through `rds`.
    pub fn new(rds: &'a aws_sdk_rds::Client, kind: Kind) -> Self {
        Snapshots { rds, kind }
    }

    /// A client for another region, sharing everything else (credentials, endpoint, retries).
    fn client_in(&self, region: &str) -> aws_sdk_rds::Client {
        let config = self
            .rds
            .config()
            .to_builder()
            .region(aws_config::Region::new(region.to_owned()))
            .build();
        aws_sdk_rds::Client::from_conf(config)
    }

    /// Creates the snapshot `id` of `source`, tagged with `label`.
    pub async fn create(
        &self,
        source: &str,
        id: &str,
        label: &BackupLabel,
    ) -> Result<Created, ItemError> {
        let tags = rds_tags(&label.tags());
        if self.kind == Kind::RdsCluster {
            let result = self
                .rds
                .create_db_cluster_snapshot()
                .db_cluster_identifier(source)
                .db_cluster_snapshot_identifier(id)
                .set_tags(Some(tags))
                .send()
                .await;
            match result {
                Ok(out) => {
                    let s = out.db_cluster_snapshot();
                    Ok(Created::New(snapshot(
                        Some(id),
                        s.and_then(|s| s.db_cluster_snapshot_arn()),
                        s.and_then(|s| s.status()),
                        s.map(|s| s.tag_list()).unwrap_or_default(),
                    )))
                }
                Err(e) => refusal(&e, |s| s.is_db_cluster_snapshot_already_exists_fault()),
            }
        } else {
            let result = self
                .rds
                .create_db_snapshot()
                .db_instance_identifier(source)
                .db_snapshot_identifier(id)
                .set_tags(Some(tags))
                .send()
                .await;
            match result {
                Ok(out) => {
                    let s = out.db_snapshot();
                    Ok(Created::New(snapshot(
                        Some(id),
                        s.and_then(|s| s.db_snapshot_arn()),
                        s.and_then(|s| s.status()),
                        s.map(|s| s.tag_list()).unwrap_or_default(),
                    )))
                }
                Err(e) => refusal(&e, |s| s.is_db_snapshot_already_exists_fault()),
            }
        }
    }
}

impl CopySeam for Snapshots<'_> {
    fn kind(&self) -> Kind {
        self.kind
    }

    /// A copy keeps its snapshot's identifier: the ids the destination holds.
    async fn copied_to(&self, region: &str, _: &Plan) -> Result<BTreeSet<String>, Error> {
        let there = list_manual(&self.client_in(region), self.kind).await?;
        Ok(there.into_iter().map(|s| s.id).collect())
    }

    async fn copy(
        &self,
        from: &Copyable,
        target: &CopyTarget,
    ) -> Result<Option<String>, ItemError> {
        let dest = self.client_in(&target.region);
        let tags = Some(rds_tags(&from.copy_tags()));
        let kms = target.kms_key_id.clone();
        // No PreSignedUrl: RDS needs one only in the GovCloud regions.
        let outcome = if self.kind == Kind::RdsCluster {
            match dest
                .copy_db_cluster_snapshot()
                .source_db_cluster_snapshot_identifier(&from.reference)
                .target_db_cluster_snapshot_identifier(&from.id)
                .set_kms_key_id(kms)
                .set_tags(tags)
                .send()
                .await
            {
                Ok(_) => None,
                Err(e) => Some(refusal(&e, |s| {
                    s.is_db_cluster_snapshot_already_exists_fault()
                })?),
            }
        } else {
            match dest
                .copy_db_snapshot()
                .source_db_snapshot_identifier(&from.reference)
                .target_db_snapshot_identifier(&from.id)
                .set_kms_key_id(kms)
                .set_tags(tags)
                .send()
                .await
            {
                Ok(_) => None,
                Err(e) => Some(refusal(&e, |s| s.is_db_snapshot_already_exists_fault())?),
            }
        };
        // A copy keeps the identifier; one that exists already is another delivery's.
        Ok(outcome.is_none().then(|| from.id.clone()))
    }
}

/// Sorts a failed create or copy: "already exists" is another delivery's
/// work, the quota gets advice, anything else fails that source.
fn refusal<E, R>(
    error: &aws_sdk_rds::error::SdkError<E, R>,
    already_exists: impl Fn(&E) -> bool,
) -> Result<Created, ItemError>
where
    E: aws_sdk_rds::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if error.as_service_error().is_some_and(already_exists) {
        return Ok(Created::AlreadyExists);
    }
    let item = ItemError::aws(error);
    if item.code.as_deref() == Some("SnapshotQuotaExceeded") {
        return Err(ItemError {
            message: format!(
                "manual snapshot quota exceeded in this region ({}): let `prune` delete old snapshots or ask AWS for a higher quota",
                item.message
            ),
            ..item
        });
    }
    Err(item)
}
