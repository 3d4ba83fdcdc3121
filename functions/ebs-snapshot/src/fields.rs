//! `ebs-snapshot`'s own payload fields.

use lifeboat::PayloadError;
use lifeboat::request::Fields;
use lifeboat::rules::copy::{CopyTarget, validate_copy_to};
use lifeboat::rules::selection::Selection;
use serde::Deserialize;

/// `ebs-snapshot`'s own fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EbsSnapshotFields {
    /// Volumes to snapshot, one snapshot each.
    pub select: Option<Selection>,
    /// Instances to snapshot as crash-consistent multi-volume sets.
    pub instances: Option<Selection>,
    /// Leave each instance's root volume out of its set.
    #[serde(default)]
    pub exclude_root: bool,
    /// Regions to copy each snapshot to.
    #[serde(default)]
    pub copy_to: Vec<CopyTarget>,
}

impl Fields for EbsSnapshotFields {
    fn validate(&self) -> Result<(), PayloadError> {
        if self.select.is_none() && self.instances.is_none() {
            return Err(PayloadError::new(
                "select",
                "missing: give `select` (volumes) and/or `instances` (multi-volume sets)",
            ));
        }
        if let Some(select) = &self.select {
            select.validate("select")?;
        }
        if let Some(instances) = &self.instances {
            instances.validate("instances")?;
        } else if self.exclude_root {
            return Err(PayloadError::new(
                "exclude_root",
                "applies to `instances` only, and none are selected",
            ));
        }
        validate_copy_to(&self.copy_to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use lifeboat::Request;
    use serde_json::{Value, json};

    #[test]
    fn ec2_payloads_name_their_fields() {
        let ebs = |p: Value| Request::<EbsSnapshotFields>::parse(p, Utc::now());
        assert!(
            ebs(json!({"plan": "p", "instances": {"ids": ["i-1"]}, "exclude_root": true})).is_ok()
        );
        assert_eq!(
            ebs(json!({"plan": "p"})).expect_err("nothing").field,
            "select"
        );
        assert_eq!(
            ebs(json!({"plan": "p", "instances": {}}))
                .expect_err("empty")
                .field,
            "instances"
        );
        assert_eq!(
            ebs(json!({"plan": "p", "select": {"ids": ["v"]}, "exclude_root": true}))
                .expect_err("no set")
                .field,
            "exclude_root"
        );
        assert_eq!(
            ebs(json!({"plan": "p", "select": {"ids": ["v"]}, "reboot": true}))
                .expect_err("unknown")
                .field,
            "reboot"
        );
    }
}
