//! EC2: filters built from selections and labels, tag conversions, and the
//! paginated listings of instances, volumes, snapshots and images.

use crate::error::Error;
use crate::model::{BackupLabel, Plan, Slot, tag as tags};
use crate::rules::planner::{self, Readiness};
use crate::rules::selection::Selection;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use std::collections::{BTreeMap, BTreeSet};

/// An EC2 filter.
pub fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().map(Into::into).collect()))
        .build()
}

/// EC2 tags as a map.
pub fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// EC2 tags from key/value pairs.
pub fn ec2_tags(tags: &[(&str, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(*k).value(v).build())
        .collect()
}

/// Tags to set on a resource as it is created.
pub fn tag_spec(resource: ResourceType, tags: &[(&str, String)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(ec2_tags(tags)))
        .build()
}

/// Filters for the backups Lifeboat manages, of one plan if given.
pub fn managed_filters(plan: Option<&Plan>) -> Vec<Filter> {
    let mut filters = vec![filter(
        &format!("tag:{}", tags::MANAGED_BY),
        [tags::LIFEBOAT],
    )];
    if let Some(plan) = plan {
        filters.push(filter(&format!("tag:{}", tags::PLAN), [plan.as_str()]));
    }
    filters
}

/// Filters for the backups of `plan` (and of `slot`, if given) that Lifeboat manages.
pub fn label_filters(plan: &Plan, slot: Option<Slot>) -> Vec<Filter> {
    let mut filters = managed_filters(Some(plan));
    if let Some(slot) = slot {
        filters.push(filter(
            &format!("tag:{}", tags::SCHEDULED_TIME),
            [slot.to_string()],
        ));
    }
    filters
}

/// The account's own images that Lifeboat made (of one plan if given), with
/// their labels: one filtered, paginated listing.
pub async fn list_images(
    ec2: &Client,
    plan: Option<&Plan>,
) -> Result<Vec<(aws_sdk_ec2::types::Image, BackupLabel)>, Error> {
    let images = ec2
        .describe_images()
        .owners("self")
        .set_filters(Some(managed_filters(plan)))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| Error::aws("DescribeImages", e))?;
    Ok(images
        .into_iter()
        .filter_map(|image| {
            let tags = tag_map(image.tags());
            let label = BackupLabel::from_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
            Some((image, label))
        })
        .collect())
}

/// The snapshot ids behind an image's block device mappings.
pub fn image_snapshot_ids(image: &aws_sdk_ec2::types::Image) -> Vec<String> {
    image
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_owned))
        .collect()
}

/// The listings that resolve a selection server-side: one filtered by all its
/// tags, one by its ids (`id_filter`, e.g. `volume-id`); missing ids are not an error there.
pub fn selection_queries(selection: &Selection, id_filter: &str) -> Vec<Vec<Filter>> {
    let mut queries = Vec::new();
    if !selection.tags.is_empty() {
        queries.push(
            selection
                .tags
                .iter()
                .map(|(k, v)| filter(&format!("tag:{k}"), [v.as_str()]))
                .collect(),
        );
    }
    if !selection.ids.is_empty() {
        queries.push(vec![filter(
            id_filter,
            selection.ids.iter().map(String::as_str),
        )]);
    }
    queries
}

/// What an EC2 source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// An instance (`i-…`): an image, or a crash-consistent set of its volumes.
    Instance,
    /// An EBS volume (`vol-…`).
    Volume,
}

/// An EC2 instance or EBS volume as the listing showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Instance or volume.
    pub kind: SourceKind,
    /// `i-…`, `vol-…`
    pub id: String,
    /// `running`, `stopped`, `in-use`, `available`, `error`, …
    pub state: String,
    /// Its availability zone.
    pub zone: String,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

impl planner::Source for Source {
    fn id(&self) -> &str {
        &self.id
    }
    fn readiness(&self) -> Readiness {
        match self.kind {
            SourceKind::Instance => planner::instance(&self.id, &self.state),
            SourceKind::Volume => planner::volume(&self.id, &self.state),
        }
    }
}

/// The instances a selection picks (tag listing plus id listing, paginated,
/// each instance once) and the listed ids that do not exist.
pub async fn select_instances(
    ec2: &Client,
    selection: &Selection,
) -> Result<(Vec<Source>, Vec<String>), Error> {
    select(selection, "instance-id", |filters| async move {
        let reservations = ec2
            .describe_instances()
            .set_filters(Some(filters))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| Error::aws("DescribeInstances", e))?;
        let instances = reservations.iter().flat_map(|r| r.instances());
        Ok(instances
            .map(|i| Source {
                kind: SourceKind::Instance,
                id: i.instance_id().unwrap_or_default().to_owned(),
                state: i
                    .state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_owned())
                    .unwrap_or_default(),
                zone: i
                    .placement()
                    .and_then(|p| p.availability_zone())
                    .unwrap_or_default()
                    .to_owned(),
                tags: tag_map(i.tags()),
            })
            .collect())
    })
    .await
}

/// The volumes a selection picks (each once) and the listed ids that do not exist.
pub async fn select_volumes(
    ec2: &Client,
    selection: &Selection,
) -> Result<(Vec<Source>, Vec<String>), Error> {
    select(selection, "volume-id", |filters| async move {
        let volumes = ec2
            .describe_volumes()
            .set_filters(Some(filters))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| Error::aws("DescribeVolumes", e))?;
        Ok(volumes
            .into_iter()
            .map(|v| Source {
                kind: SourceKind::Volume,
                id: v.volume_id().unwrap_or_default().to_owned(),
                state: v.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                zone: v.availability_zone().unwrap_or_default().to_owned(),
                tags: tag_map(v.tags()),
            })
            .collect())
    })
    .await
}

/// Runs a selection's listings (see [`selection_queries`]) and resolves them.
async fn select<F, Fut>(
    selection: &Selection,
    id_filter: &str,
    list: F,
) -> Result<(Vec<Source>, Vec<String>), Error>
where
    F: Fn(Vec<Filter>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Source>, Error>>,
{
    let mut found = BTreeMap::new();
    for filters in selection_queries(selection, id_filter) {
        found.extend(list(filters).await?.into_iter().map(|s| (s.id.clone(), s)));
    }
    Ok(resolved(selection, found))
}

/// What a selection resolved to: the resources found (each once, by id) and the listed ids that do not exist.
fn resolved<T>(selection: &Selection, found: BTreeMap<String, T>) -> (Vec<T>, Vec<String>) {
    let ids: BTreeSet<&str> = found.keys().map(String::as_str).collect();
    let missing = selection
        .missing_ids(&ids)
        .into_iter()
        .map(str::to_owned)
        .collect();
    (found.into_values().collect(), missing)
}

/// An EBS snapshot as the listing showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// `snap-…`
    pub id: String,
    /// The volume it is a snapshot of.
    pub volume_id: String,
    /// `pending`, `completed`, `error`, …
    pub state: String,
    /// Lifeboat's label, if it is Lifeboat's.
    pub label: Option<BackupLabel>,
    /// All its tags.
    pub tags: BTreeMap<String, String>,
}

impl Snapshot {
    /// Whether this is an EBS backup of Lifeboat's that counts for its slot:
    /// labelled, not one of an AMI's snapshots (those belong to the AMI), and
    /// not failed (a failed snapshot must not stop a retry).
    pub fn is_ebs_backup(&self) -> bool {
        self.label.is_some() && !self.tags.contains_key(tags::IMAGE) && self.state != "error"
    }
}

/// The account's own snapshots matching `filters`: one paginated listing.
pub async fn list_snapshots(ec2: &Client, filters: Vec<Filter>) -> Result<Vec<Snapshot>, Error> {
    let snapshots = ec2
        .describe_snapshots()
        .owner_ids("self")
        .set_filters(Some(filters))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| Error::aws("DescribeSnapshots", e))?;
    Ok(snapshots
        .into_iter()
        .map(|s| {
            let tags = tag_map(s.tags());
            Snapshot {
                id: s.snapshot_id().unwrap_or_default().to_owned(),
                volume_id: s.volume_id().unwrap_or_default().to_owned(),
                state: s
                    .state()
                    .map(|st| st.as_str().to_owned())
                    .unwrap_or_default(),
                label: BackupLabel::from_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                tags,
            }
        })
        .collect())
}

/// EC2's snapshot limits, worded for the report: the source fails, the run goes on.
pub fn snapshot_limit_message(code: &str, summary: &str) -> Option<String> {
    matches!(code, "SnapshotLimitExceeded" | "ConcurrentSnapshotLimitExceeded" | "SnapshotCreationPerVolumeRateExceeded").then(|| {
        format!("EC2 snapshot limit reached ({summary}); the next run tries this source again, or raise the limit with AWS")
    })
}
