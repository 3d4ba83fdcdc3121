//! RDS: the paginated listings of a region's DB instances, DB clusters and
//! manual snapshots, read into plain structs, and the selection applied to
//! the sources.

use crate::error::Error;
use crate::model::{BackupLabel, Kind};
use crate::report::Quota;
use crate::rules::planner::{self, Readiness};
use crate::rules::selection::Selection;
use aws_sdk_rds::Client;
use aws_sdk_rds::types::Tag;
use std::collections::{BTreeMap, BTreeSet};

/// A DB instance or cluster as the listing showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `Rds` for an instance, `RdsCluster` for a cluster.
    pub kind: Kind,
    /// Its identifier.
    pub id: String,
    /// Its status (`available`, `stopped`, `backing-up`, …).
    pub status: String,
    /// For an instance: the cluster it belongs to, if any.
    pub cluster: Option<String>,
    /// Whether its storage is encrypted (its snapshots are too).
    pub encrypted: bool,
    /// Its tags.
    pub tags: Vec<(String, String)>,
}

impl planner::Source for Source {
    fn id(&self) -> &str {
        &self.id
    }
    fn readiness(&self) -> Readiness {
        planner::database(self.kind, &self.id, &self.status, self.cluster.as_deref())
    }
}

/// Every DB instance (`Rds`) or DB cluster (`RdsCluster`) in the region: one paginated listing.
pub async fn list_sources(rds: &Client, kind: Kind) -> Result<Vec<Source>, Error> {
    if kind == Kind::RdsCluster {
        let clusters = rds
            .describe_db_clusters()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| Error::aws("DescribeDBClusters", e))?;
        return Ok(clusters
            .into_iter()
            .map(|c| Source {
                kind,
                id: c.db_cluster_identifier().unwrap_or_default().to_owned(),
                status: c.status().unwrap_or_default().to_owned(),
                cluster: None,
                encrypted: c.storage_encrypted().unwrap_or(false),
                tags: pairs(c.tag_list()),
            })
            .collect());
    }
    let instances = rds
        .describe_db_instances()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| Error::aws("DescribeDBInstances", e))?;
    Ok(instances
        .into_iter()
        .map(|db| Source {
            kind,
            id: db.db_instance_identifier().unwrap_or_default().to_owned(),
            status: db.db_instance_status().unwrap_or_default().to_owned(),
            cluster: db.db_cluster_identifier().map(str::to_owned),
            encrypted: db.storage_encrypted().unwrap_or(false),
            tags: pairs(db.tag_list()),
        })
        .collect())
}

/// The sources of `kind` that `selection` picks, and its listed ids that do not exist.
pub async fn select(
    rds: &Client,
    kind: Kind,
    selection: &Selection,
) -> Result<(Vec<Source>, Vec<String>), Error> {
    let listed = list_sources(rds, kind).await?;
    let found: BTreeSet<&str> = listed.iter().map(|s| s.id.as_str()).collect();
    let missing = selection
        .missing_ids(&found)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let chosen = listed
        .into_iter()
        .filter(|s| selection.matches(&s.id, s.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
        .collect();
    Ok((chosen, missing))
}

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
    /// Its tags.
    pub tags: BTreeMap<String, String>,
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
        tags: tags.into_iter().collect(),
    }
}

/// RDS tags from key/value pairs.
pub fn rds_tags(tags: &[(&str, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(*k).value(v).build())
        .collect()
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
/// The region's quotas on manual snapshots (`ManualSnapshots`,
/// `ManualClusterSnapshots`) and their usage: one `DescribeAccountAttributes`.
pub async fn snapshot_quotas(rds: &Client) -> Result<Vec<Quota>, Error> {
    let out = rds
        .describe_account_attributes()
        .send()
        .await
        .map_err(|e| Error::aws("DescribeAccountAttributes", e))?;
    Ok(out
        .account_quotas()
        .iter()
        .filter_map(|q| {
            let name = q.account_quota_name()?;
            SNAPSHOT_QUOTAS.contains(&name).then(|| Quota {
                name: name.to_owned(),
                used: q.used().unwrap_or_default(),
                max: q.max().unwrap_or_default(),
            })
        })
        .collect())
}

/// The account quotas that Lifeboat's RDS and Aurora snapshots count against.
pub const SNAPSHOT_QUOTAS: [&str; 2] = ["ManualSnapshots", "ManualClusterSnapshots"];
