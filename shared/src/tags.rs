//! The four tags every Lifeboat backup carries, and how to read them back.

use crate::payload::Plan;
use crate::slot::Slot;

/// Tag key marking a backup as Lifeboat's; only such backups are ever pruned.
pub const MANAGED_BY: &str = "managed-by";
/// Value of [`MANAGED_BY`] on Lifeboat's backups.
pub const LIFEBOAT: &str = "lifeboat";
/// Tag key holding the plan.
pub const PLAN: &str = "lifeboat:plan";
/// Tag key holding the source resource id (database name for pg-dump).
pub const SOURCE: &str = "lifeboat:source";
/// Tag key holding the slot, RFC 3339 UTC to the minute.
pub const SCHEDULED_TIME: &str = "lifeboat:scheduled-time";
/// Tag key on an AMI's backing snapshots naming the image: they belong to it, not to `ebs` retention.
pub const IMAGE: &str = "lifeboat:image";
/// Tag key naming the run that made an EBS snapshot: the snapshots of one
/// instance set share it, so a race between two runs is settled set by set.
pub const RUN: &str = "lifeboat:run";
/// Tag key on a cross-region copy naming the backup it was copied from.
pub const COPY_OF: &str = "lifeboat:copy-of";

/// The four tags of a backup of `source` for `slot` of `plan`, in a fixed order.
pub fn backup_tags(plan: &Plan, source: &str, slot: Slot) -> Vec<(&'static str, String)> {
    BackupLabel::new(plan, source, slot).tags()
}

/// What the tags of an existing backup say about it, if it is Lifeboat's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupLabel {
    /// The plan that made it.
    pub plan: String,
    /// The source it is a backup of.
    pub source: String,
    /// Its slot, as tagged.
    pub scheduled_time: String,
}

impl BackupLabel {
    /// The label of `source`'s backup for `slot` of `plan`.
    pub fn new(plan: &Plan, source: &str, slot: Slot) -> Self {
        BackupLabel {
            plan: plan.to_string(),
            source: source.to_owned(),
            scheduled_time: slot.to_string(),
        }
    }

    /// The four tags that say this label.
    pub fn tags(&self) -> Vec<(&'static str, String)> {
        vec![
            (MANAGED_BY, LIFEBOAT.to_owned()),
            (PLAN, self.plan.clone()),
            (SOURCE, self.source.clone()),
            (SCHEDULED_TIME, self.scheduled_time.clone()),
        ]
    }

    /// Reads the label from a backup's tags; `None` unless it is managed by Lifeboat and fully labelled.
    pub fn from_tags<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Self> {
        let (mut managed, mut plan, mut source, mut time) = (false, None, None, None);
        for (key, value) in tags {
            match key {
                MANAGED_BY => managed = value == LIFEBOAT,
                PLAN => plan = Some(value.to_owned()),
                SOURCE => source = Some(value.to_owned()),
                SCHEDULED_TIME => time = Some(value.to_owned()),
                _ => {}
            }
        }
        if !managed {
            return None;
        }
        Some(BackupLabel {
            plan: plan?,
            source: source?,
            scheduled_time: time?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn tags_round_trip_through_the_label() {
        let plan = Plan::new("nightly").expect("plan");
        let slot = Slot::containing(
            Utc.with_ymd_and_hms(2026, 11, 20, 2, 0, 30)
                .single()
                .expect("time"),
        );
        let tags = backup_tags(&plan, "orders-db", slot);
        assert_eq!(tags[3], (SCHEDULED_TIME, "2026-11-20T02:00:00Z".to_owned()));
        let label =
            BackupLabel::from_tags(tags.iter().map(|(k, v)| (*k, v.as_str()))).expect("managed");
        assert_eq!(label.source, "orders-db");
        assert_eq!(label.plan, "nightly");
    }

    #[test]
    fn unmanaged_or_half_labelled_backups_are_not_ours() {
        assert_eq!(
            BackupLabel::from_tags([(PLAN, "nightly"), (SOURCE, "db"), (SCHEDULED_TIME, "t")]),
            None
        );
        assert_eq!(
            BackupLabel::from_tags([
                (MANAGED_BY, "someone-else"),
                (PLAN, "p"),
                (SOURCE, "s"),
                (SCHEDULED_TIME, "t")
            ]),
            None
        );
        assert_eq!(
            BackupLabel::from_tags([(MANAGED_BY, LIFEBOAT), (PLAN, "nightly")]),
            None
        );
    }
}
