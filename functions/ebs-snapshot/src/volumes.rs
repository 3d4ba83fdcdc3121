//! The volumes a selection picks, listed server-side with tag and id filters.

use aws_sdk_ec2::Client;
use lifeboat::Error;
use lifeboat::ec2;
use lifeboat::selection::Selection;
use std::collections::{BTreeMap, BTreeSet};

/// An EBS volume as the listing showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// `vol-…`
    pub id: String,
    /// `available`, `in-use`, `creating`, `error`, …
    pub state: String,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

/// The selected volumes (each once) and the listed ids that do not exist.
pub async fn select(
    ec2: &Client,
    selection: &Selection,
) -> Result<(Vec<Volume>, Vec<String>), Error> {
    let mut found: BTreeMap<String, Volume> = BTreeMap::new();
    for filters in ec2::selection_queries(selection, "volume-id") {
        let volumes = ec2
            .describe_volumes()
            .set_filters(Some(filters))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| Error::aws("DescribeVolumes", e))?;
        for v in volumes {
            let id = v.volume_id().unwrap_or_default().to_owned();
            let state = v.state().map(|s| s.as_str().to_owned()).unwrap_or_default();
            found.insert(
                id.clone(),
                Volume {
                    id,
                    state,
                    tags: ec2::tag_map(v.tags()),
                },
            );
        }
    }
    let ids: BTreeSet<&str> = found.keys().map(String::as_str).collect();
    let missing = selection
        .missing_ids(&ids)
        .into_iter()
        .map(str::to_owned)
        .collect();
    Ok((found.into_values().collect(), missing))
}
