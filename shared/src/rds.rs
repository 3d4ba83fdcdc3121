//! RDS pieces that more than one function needs: the one paginated listing of
//! a region's manual snapshots, read into plain structs with Lifeboat's label.

use crate::Error;
use crate::report::Kind;
use crate::tags::BackupLabel;
use aws_sdk_rds::Client;
use aws_sdk_rds::types::Tag;

/// A manual snapshot as RDS lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Its identifier.
    pub id: String,
    /// Its ARN, which a cross-region copy names as its source.
    pub arn: String,
    /// `creating`, `available`, …
    pub status: String,
    /// Lifeboat's label, if the snapshot is Lifeboat's.
    pub label: Option<BackupLabel>,
}

/// Every manual snapshot of `kind` in the client's region: one paginated listing.
pub async fn list_manual(rds: &Client, kind: Kind) -> Result<Vec<Snapshot>, Error> {
    if kind == Kind::RdsCluster {
        let listed = rds
            .describe_db_cluster_snapshots()
            .snapshot_type("manual")
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| Error::aws("DescribeDBClusterSnapshots", e))?;
        Ok(listed
            .iter()
            .map(|s| {
                snapshot(
                    s.db_cluster_snapshot_identifier(),
                    s.db_cluster_snapshot_arn(),
                    s.status(),
                    s.tag_list(),
                )
            })
            .collect())
    } else {
        let listed = rds
            .describe_db_snapshots()
            .snapshot_type("manual")
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| Error::aws("DescribeDBSnapshots", e))?;
        Ok(listed
            .iter()
            .map(|s| {
                snapshot(
                    s.db_snapshot_identifier(),
                    s.db_snapshot_arn(),
                    s.status(),
                    s.tag_list(),
                )
            })
            .collect())
    }
}

/// A snapshot from the fields RDS returns for it (in a listing or a create response).
pub fn snapshot(
    id: Option<&str>,
    arn: Option<&str>,
    status: Option<&str>,
    tags: &[Tag],
) -> Snapshot {
    let tags = pairs(tags);
    Snapshot {
        id: id.unwrap_or_default().to_owned(),
        arn: arn.unwrap_or_default().to_owned(),
        status: status.unwrap_or_default().to_owned(),
        label: BackupLabel::from_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    }
}

/// RDS tags as key/value pairs.
pub fn pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}
