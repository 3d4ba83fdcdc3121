//! The sources: DB instances and Aurora clusters, listed once per run with
//! paginators, and the selection applied to them.

use aws_sdk_rds::Client;
use lifeboat::Error;
use lifeboat::rds::pairs;
use lifeboat::report::{Failed, Kind, Skipped};
use lifeboat::selection::Selection;
use std::collections::BTreeSet;

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
    /// Its tags.
    pub tags: Vec<(String, String)>,
}

/// What a source's status allows this run to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// It can be snapshotted now.
    Ready,
    /// Leave it for now (a passing state, or an instance RDS cannot snapshot alone); the reason says why.
    Skip(String),
    /// It needs an operator (storage full, lost KMS key, failed): a failure of that source.
    Fail(String),
}

impl Source {
    /// Whether a snapshot can be taken now. RDS can snapshot available and
    /// stopped instances; passing states are left to the next run (and
    /// `freshness` notices if they last), broken ones need a person.
    pub fn readiness(&self) -> Readiness {
        if let Some(cluster) = &self.cluster {
            return Readiness::Skip(format!(
                "instance of DB cluster `{cluster}`: RDS snapshots the cluster, not its instances; select the cluster under `clusters`"
            ));
        }
        let status = self.status.as_str();
        match status {
            "available" | "stopped" | "storage-optimization" => Readiness::Ready,
            "failed"
            | "storage-full"
            | "restore-error"
            | "insufficient-capacity"
            | "inaccessible-encryption-credentials"
            | "inaccessible-encryption-credentials-recoverable" => Readiness::Fail(format!(
                "{} `{}` is `{status}` and cannot be snapshotted until an operator repairs it",
                noun(self.kind),
                self.id
            )),
            s if s.starts_with("incompatible-") => Readiness::Fail(format!(
                "{} `{}` is `{s}` and cannot be snapshotted until an operator repairs it",
                noun(self.kind),
                self.id
            )),
            _ => Readiness::Skip(format!(
                "{} is `{status}`; the next run snapshots it",
                noun(self.kind)
            )),
        }
    }
}

fn noun(kind: Kind) -> &'static str {
    if kind == Kind::RdsCluster {
        "DB cluster"
    } else {
        "DB instance"
    }
}

/// Every DB instance in the region.
pub async fn list_instances(rds: &Client) -> Result<Vec<Source>, Error> {
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
            kind: Kind::Rds,
            id: db.db_instance_identifier().unwrap_or_default().to_owned(),
            status: db.db_instance_status().unwrap_or_default().to_owned(),
            cluster: db.db_cluster_identifier().map(str::to_owned),
            tags: pairs(db.tag_list()),
        })
        .collect())
}

/// Every DB cluster in the region.
pub async fn list_clusters(rds: &Client) -> Result<Vec<Source>, Error> {
    let clusters = rds
        .describe_db_clusters()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| Error::aws("DescribeDBClusters", e))?;
    Ok(clusters
        .into_iter()
        .map(|c| Source {
            kind: Kind::RdsCluster,
            id: c.db_cluster_identifier().unwrap_or_default().to_owned(),
            status: c.status().unwrap_or_default().to_owned(),
            cluster: None,
            tags: pairs(c.tag_list()),
        })
        .collect())
}

/// The sources a selection picks, and a failure for each listed id that does not exist.
pub fn select(
    selection: &Selection,
    kind: Kind,
    listed: Vec<Source>,
) -> (Vec<Source>, Vec<Failed>) {
    let found: BTreeSet<&str> = listed.iter().map(|s| s.id.as_str()).collect();
    let failed = selection
        .missing_ids(&found)
        .into_iter()
        .map(|id| Failed {
            kind,
            source: id.to_owned(),
            error: format!("no {} with identifier `{id}` in this region", noun(kind)),
        })
        .collect();
    let chosen = listed
        .into_iter()
        .filter(|s| selection.matches(&s.id, s.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
        .collect();
    (chosen, failed)
}

/// A skipped item for a source that is not ready now.
pub fn not_now(source: &Source, reason: String) -> Skipped {
    Skipped {
        kind: source.kind,
        source: source.id.clone(),
        backup: None,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(status: &str, cluster: Option<&str>) -> Source {
        Source {
            kind: Kind::Rds,
            id: "db-1".into(),
            status: status.into(),
            cluster: cluster.map(str::to_owned),
            tags: vec![],
        }
    }

    #[test]
    fn statuses_sort_into_ready_passing_and_broken() {
        assert_eq!(source("available", None).readiness(), Readiness::Ready);
        assert_eq!(source("stopped", None).readiness(), Readiness::Ready);
        assert!(
            matches!(source("backing-up", None).readiness(), Readiness::Skip(r) if r.contains("`backing-up`"))
        );
        assert!(matches!(
            source("modifying", None).readiness(),
            Readiness::Skip(_)
        ));
        assert!(
            matches!(source("storage-full", None).readiness(), Readiness::Fail(r) if r.contains("operator"))
        );
        assert!(matches!(
            source("incompatible-parameters", None).readiness(),
            Readiness::Fail(_)
        ));
    }

    #[test]
    fn cluster_members_point_at_the_cluster() {
        let r = source("available", Some("aurora-1")).readiness();
        assert!(
            matches!(r, Readiness::Skip(reason) if reason.contains("aurora-1") && reason.contains("clusters"))
        );
    }
}
