//! Manual snapshots: created, and copied to other regions. Instance and
//! cluster snapshots differ only in the API calls.

use aws_sdk_rds::Client;
use aws_sdk_rds::types::Tag;
use lifeboat::aws;
use lifeboat::rds::snapshot;
pub use lifeboat::rds::{Snapshot, list_manual};
use lifeboat::report::Kind;

/// What went wrong with a create or copy call, sorted by what the run does about it.
#[derive(Debug)]
pub enum Refusal {
    /// The snapshot already exists: another delivery of this event made it.
    AlreadyExists,
    /// Anything else: a failure of that source, worded for the report.
    Failed(String),
}

/// RDS tags from key/value pairs.
pub fn rds_tags(tags: &[(&str, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(*k).value(v).build())
        .collect()
}

/// Creates the snapshot `id` of `source`, tagged with `tags`.
pub async fn create(
    rds: &Client,
    kind: Kind,
    source: &str,
    id: &str,
    tags: Vec<Tag>,
) -> Result<Snapshot, Refusal> {
    if kind == Kind::RdsCluster {
        let out = rds
            .create_db_cluster_snapshot()
            .db_cluster_identifier(source)
            .db_cluster_snapshot_identifier(id)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| {
                let service = e.as_service_error();
                refusal(
                    service.is_some_and(|s| s.is_db_cluster_snapshot_already_exists_fault()),
                    service.is_some_and(|s| s.is_snapshot_quota_exceeded_fault()),
                    &e,
                )
            })?;
        let s = out.db_cluster_snapshot();
        Ok(snapshot(
            Some(id),
            s.and_then(|s| s.db_cluster_snapshot_arn()),
            s.and_then(|s| s.status()),
            s.map(|s| s.tag_list()).unwrap_or_default(),
        ))
    } else {
        let out = rds
            .create_db_snapshot()
            .db_instance_identifier(source)
            .db_snapshot_identifier(id)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| {
                let service = e.as_service_error();
                refusal(
                    service.is_some_and(|s| s.is_db_snapshot_already_exists_fault()),
                    service.is_some_and(|s| s.is_snapshot_quota_exceeded_fault()),
                    &e,
                )
            })?;
        let s = out.db_snapshot();
        Ok(snapshot(
            Some(id),
            s.and_then(|s| s.db_snapshot_arn()),
            s.and_then(|s| s.status()),
            s.map(|s| s.tag_list()).unwrap_or_default(),
        ))
    }
}

/// Copies `from` (in another region) into the client's region under the same
/// identifier, tagged with `tags` and encrypted with `kms_key_id` if given.
pub async fn copy(
    rds: &Client,
    kind: Kind,
    from: &Snapshot,
    kms_key_id: Option<&str>,
    tags: Vec<Tag>,
) -> Result<(), Refusal> {
    // No PreSignedUrl: RDS needs one only in the GovCloud regions.
    if kind == Kind::RdsCluster {
        rds.copy_db_cluster_snapshot()
            .source_db_cluster_snapshot_identifier(&from.arn)
            .target_db_cluster_snapshot_identifier(&from.id)
            .set_kms_key_id(kms_key_id.map(str::to_owned))
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| {
                let service = e.as_service_error();
                refusal(
                    service.is_some_and(|s| s.is_db_cluster_snapshot_already_exists_fault()),
                    service.is_some_and(|s| s.is_snapshot_quota_exceeded_fault()),
                    &e,
                )
            })?;
    } else {
        rds.copy_db_snapshot()
            .source_db_snapshot_identifier(&from.arn)
            .target_db_snapshot_identifier(&from.id)
            .set_kms_key_id(kms_key_id.map(str::to_owned))
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| {
                let service = e.as_service_error();
                refusal(
                    service.is_some_and(|s| s.is_db_snapshot_already_exists_fault()),
                    service.is_some_and(|s| s.is_snapshot_quota_exceeded_fault()),
                    &e,
                )
            })?;
    }
    Ok(())
}

fn refusal<E>(already_exists: bool, quota: bool, error: &E) -> Refusal
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    if already_exists {
        Refusal::AlreadyExists
    } else if quota {
        Refusal::Failed(format!(
            "manual snapshot quota exceeded in this region ({}): let `prune` delete old snapshots or ask AWS for a higher quota",
            aws::summarize(error)
        ))
    } else {
        Refusal::Failed(aws::summarize(error))
    }
}
