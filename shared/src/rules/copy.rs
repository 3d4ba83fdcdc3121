//! Cross-region copies, the rules: which `copy_to` lists are valid, and which
//! of the home region's backups a run should see copied. Copies are handed
//! over from run to run rather than waited for (a backup can be copied only
//! once it is complete, which can take hours), within a window of recent slots.
//! The one implementation that makes the copies is [`crate::copier`].

use crate::error::PayloadError;
use crate::model::{BackupLabel, Plan, Slot};
use chrono::Duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// How far back a run looks for backups still to copy. Older ones are left
/// alone, so that a copy pruned in the destination (by a `prune` running
/// there; `prune` works in its own region only) is not copied again.
pub const COPY_WINDOW: Duration = Duration::days(7);

/// A region to copy backups to, with an optional KMS key there.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CopyTarget {
    /// The destination region (`eu-west-1`).
    pub region: String,
    /// The KMS key in the destination region to encrypt the copy with (required by AWS for encrypted sources).
    pub kms_key_id: Option<String>,
}

/// Checks the `copy_to` list: region names well formed, none twice.
pub fn validate_copy_to(targets: &[CopyTarget]) -> Result<(), PayloadError> {
    for (i, target) in targets.iter().enumerate() {
        let field = format!("copy_to[{i}].region");
        if !is_region_name(&target.region) {
            return Err(PayloadError::new(
                field,
                format!(
                    "`{}` is not an AWS region name (e.g. eu-west-1)",
                    target.region
                ),
            ));
        }
        if targets[..i].iter().any(|t| t.region == target.region) {
            return Err(PayloadError::new(
                field,
                format!("region `{}` is listed twice", target.region),
            ));
        }
        if target.kms_key_id.as_deref().is_some_and(str::is_empty) {
            return Err(PayloadError::new(
                format!("copy_to[{i}].kms_key_id"),
                "must not be empty; leave it out instead",
            ));
        }
    }
    Ok(())
}

/// `eu-west-1`, `us-gov-west-1`, `ap-southeast-3`: lower-case words and a final number.
fn is_region_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

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
    let t = label.slot.time();
    let in_window = t >= slot.time() - COPY_WINDOW && t <= slot.time();
    label.plan == *plan && selected.contains(label.source.as_str()) && in_window
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
        Slot::from_tag(text).expect("slot")
    }

    #[test]
    fn only_recent_backups_of_this_plan_and_selection_are_copied() {
        let plan = Plan::new("nightly").expect("plan");
        let now = slot("2026-11-20T02:00:00Z");
        let selected = BTreeSet::from(["db-1"]);
        let label = |plan: &str, source: &str, time: &str| BackupLabel {
            plan: Plan::new(plan).expect("plan"),
            source: source.into(),
            slot: slot(time),
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

    #[test]
    fn region_names() {
        for good in ["eu-west-1", "us-gov-west-1", "ap-southeast-3"] {
            assert!(is_region_name(good), "{good}");
        }
        for bad in ["eu-west", "EU-WEST-1", "euwest1", "eu--1", "-west-1", ""] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }
}
