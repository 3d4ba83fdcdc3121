//! The four tags every Lifeboat backup carries, and how to read them back.

use super::{Plan, Slot};

/// The tag keys Lifeboat writes and reads.
pub mod tag {
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
    /// Tag key on a restore drill's temporary resource, naming the backup it
    /// was restored from: the drill's IAM policy creates and deletes only
    /// resources that carry it.
    pub const DRILL: &str = "lifeboat:drill";
    /// Tag key on a drill's temporary resource naming the backup's source.
    pub const DRILL_SOURCE: &str = "lifeboat:drill-source";
    /// Tag key on a drill's temporary resource: when the restore was called, RFC 3339.
    pub const DRILL_STARTED: &str = "lifeboat:drill-started";
    /// Tag key on a drill's temporary resource: the step it is at (`restore`,
    /// or `clean-up` once checked and recorded).
    pub const DRILL_STEP: &str = "lifeboat:drill-step";
    /// Tag key on a drill's temporary resource: the last time a run saw it
    /// not yet usable, RFC 3339 (the restore took longer than up to then).
    pub const DRILL_PENDING: &str = "lifeboat:drill-pending";
    /// Tag key on a drill's temporary resource: when a run first saw it
    /// usable and left its checks to the next run, RFC 3339.
    pub const DRILL_USABLE: &str = "lifeboat:drill-usable";
    /// Tag key on a drilled backup: when its newest drill ended, RFC 3339.
    pub const DRILLED_AT: &str = "lifeboat:drilled-at";
    /// Tag key on a drilled backup: `passed` or `failed`.
    pub const DRILL_OUTCOME: &str = "lifeboat:drill-outcome";
    /// Tag key on a drilled backup: the restore's seconds, from the call to usable.
    pub const DRILL_SECONDS: &str = "lifeboat:drill-seconds";
}

/// When a restore drill of a backup last passed, from its tags
/// (`lifeboat:drilled-at` with `lifeboat:drill-outcome` = `passed`).
pub fn proven_at<'a>(
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let (mut at, mut passed) = (None, false);
    for (key, value) in tags {
        match key {
            tag::DRILLED_AT => at = chrono::DateTime::parse_from_rfc3339(value).ok(),
            tag::DRILL_OUTCOME => passed = value == "passed",
            _ => {}
        }
    }
    at.filter(|_| passed).map(|t| t.with_timezone(&chrono::Utc))
}

/// What a backup's tags say about it: which plan made it, of which source, for which slot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackupLabel {
    /// The plan that made it.
    pub plan: Plan,
    /// The source it is a backup of.
    pub source: String,
    /// Its slot.
    pub slot: Slot,
}

impl BackupLabel {
    /// The label of `source`'s backup for `slot` of `plan`.
    pub fn new(plan: &Plan, source: &str, slot: Slot) -> Self {
        BackupLabel {
            plan: plan.clone(),
            source: source.to_owned(),
            slot,
        }
    }

    /// The four tags that say this label, in a fixed order.
    pub fn tags(&self) -> Vec<(&'static str, String)> {
        vec![
            (tag::MANAGED_BY, tag::LIFEBOAT.to_owned()),
            (tag::PLAN, self.plan.to_string()),
            (tag::SOURCE, self.source.clone()),
            (tag::SCHEDULED_TIME, self.slot.to_string()),
        ]
    }

    /// Reads the label from a backup's tags; `None` unless it is managed by
    /// Lifeboat and fully labelled with a valid plan and slot (a label that
    /// does not read is not Lifeboat's to judge: it is left alone).
    pub fn from_tags<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Self> {
        let (mut managed, mut plan, mut source, mut slot) = (false, None, None, None);
        for (key, value) in tags {
            match key {
                tag::MANAGED_BY => managed = value == tag::LIFEBOAT,
                tag::PLAN => plan = Plan::new(value).ok(),
                tag::SOURCE => source = Some(value.to_owned()),
                tag::SCHEDULED_TIME => slot = Slot::from_tag(value),
                _ => {}
            }
        }
        if !managed {
            return None;
        }
        Some(BackupLabel {
            plan: plan?,
            source: source?,
            slot: slot?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::tag::*;
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
        let tags = BackupLabel::new(&plan, "orders-db", slot).tags();
        assert_eq!(tags[3], (SCHEDULED_TIME, "2026-11-20T02:00:00Z".to_owned()));
        let label =
            BackupLabel::from_tags(tags.iter().map(|(k, v)| (*k, v.as_str()))).expect("managed");
        assert_eq!(label.source, "orders-db");
        assert_eq!(label.plan, plan);
        assert_eq!(label.slot, slot);
    }

    #[test]
    fn unmanaged_or_half_labelled_backups_are_not_ours() {
        let t = "2026-11-20T02:00:00Z";
        assert_eq!(
            BackupLabel::from_tags([(PLAN, "nightly"), (SOURCE, "db"), (SCHEDULED_TIME, t)]),
            None
        );
        assert_eq!(
            BackupLabel::from_tags([
                (MANAGED_BY, "someone-else"),
                (PLAN, "p"),
                (SOURCE, "s"),
                (SCHEDULED_TIME, t)
            ]),
            None
        );
        assert_eq!(
            BackupLabel::from_tags([(MANAGED_BY, LIFEBOAT), (PLAN, "nightly")]),
            None
        );
        for (plan, time) in [("Nightly", t), ("nightly", "garbage")] {
            assert_eq!(
                BackupLabel::from_tags([
                    (MANAGED_BY, LIFEBOAT),
                    (PLAN, plan),
                    (SOURCE, "db"),
                    (SCHEDULED_TIME, time)
                ]),
                None,
                "{plan} {time}"
            );
        }
    }
}
