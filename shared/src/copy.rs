//! Cross-region copies, as every snapshot function makes them: handed over from
//! run to run rather than waited for (a snapshot can be copied only once it is
//! complete, which can take hours), within a window of recent slots.

use crate::error::PayloadError;
use crate::payload::{CopyTarget, Plan};
use crate::slot::Slot;
use crate::tags::BackupLabel;
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeSet;

/// How far back a run looks for backups still to copy. Older ones are left
/// alone, so that a copy pruned in the destination (by a `prune` running
/// there; `prune` works in its own region only) is not copied again.
pub const COPY_WINDOW: Duration = Duration::days(7);

/// Refuses a `copy_to` entry naming the region the backups are made in.
pub fn refuse_home_region(targets: &[CopyTarget], home: &str) -> Result<(), PayloadError> {
    match targets.iter().position(|t| t.region == home) {
        Some(i) => Err(PayloadError::new(
            format!("copy_to[{i}].region"),
            format!("`{home}` is the region the backups are made in"),
        )),
        None => Ok(()),
    }
}

/// Whether a backup with this label is one this run should see copied: of its
/// plan, of a source it selected, and from a slot within [`COPY_WINDOW`] before its own.
pub fn wants_copy(label: &BackupLabel, plan: &Plan, selected: &BTreeSet<&str>, slot: Slot) -> bool {
    let in_window = DateTime::parse_from_rfc3339(&label.scheduled_time)
        .map(|t| t.with_timezone(&Utc))
        .is_ok_and(|t| t >= slot.time() - COPY_WINDOW && t <= slot.time());
    label.plan == plan.as_str() && selected.contains(label.source.as_str()) && in_window
}

/// The reason given for a copy that has to wait for its backup to complete.
pub fn waits(region: &str, state: &str) -> String {
    format!(
        "copy to {region} waits: the backup is `{state}`; a later run copies it once it is complete"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(text: &str) -> Slot {
        Slot::parse(text, Utc::now()).expect("slot")
    }

    #[test]
    fn only_recent_backups_of_this_plan_and_selection_are_copied() {
        let plan = Plan::new("nightly").expect("plan");
        let now = slot("2026-11-20T02:00:00Z");
        let selected = BTreeSet::from(["db-1"]);
        let label = |plan: &str, source: &str, time: &str| BackupLabel {
            plan: plan.into(),
            source: source.into(),
            scheduled_time: time.into(),
        };
        assert!(wants_copy(
            &label("nightly", "db-1", "2026-11-20T02:00:00Z"),
            &plan,
            &selected,
            now
        ));
        assert!(wants_copy(
            &label("nightly", "db-1", "2026-11-13T02:00:00Z"),
            &plan,
            &selected,
            now
        ));
        assert!(
            !wants_copy(
                &label("nightly", "db-1", "2026-11-13T01:59:00Z"),
                &plan,
                &selected,
                now
            ),
            "too old"
        );
        assert!(
            !wants_copy(
                &label("nightly", "db-1", "2026-11-20T02:01:00Z"),
                &plan,
                &selected,
                now
            ),
            "a later slot"
        );
        assert!(
            !wants_copy(
                &label("weekly", "db-1", "2026-11-20T02:00:00Z"),
                &plan,
                &selected,
                now
            ),
            "another plan"
        );
        assert!(
            !wants_copy(
                &label("nightly", "db-2", "2026-11-20T02:00:00Z"),
                &plan,
                &selected,
                now
            ),
            "not selected"
        );
        assert!(!wants_copy(
            &label("nightly", "db-1", "garbage"),
            &plan,
            &selected,
            now
        ));
    }

    #[test]
    fn the_home_region_is_no_copy_target() {
        let targets = [
            CopyTarget {
                region: "eu-west-1".into(),
                kms_key_id: None,
            },
            CopyTarget {
                region: "us-east-1".into(),
                kms_key_id: None,
            },
        ];
        assert_eq!(
            refuse_home_region(&targets, "us-east-1")
                .expect_err("home")
                .field,
            "copy_to[1].region"
        );
        assert!(refuse_home_region(&targets, "ap-south-1").is_ok());
    }
}
