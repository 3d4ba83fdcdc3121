//! `ami-backup`'s own payload fields.

use lifeboat::PayloadError;
use lifeboat::request::Fields;
use lifeboat::rules::selection::Selection;
use serde::Deserialize;

/// `ami-backup`'s own fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmiBackupFields {
    /// Instances to image.
    pub select: Selection,
    /// Reboot each instance for a file-system-consistent image (default: no reboot).
    #[serde(default)]
    pub reboot: bool,
}

impl Fields for AmiBackupFields {
    fn validate(&self) -> Result<(), PayloadError> {
        self.select.validate("select")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use lifeboat::Request;
    use serde_json::{Value, json};

    #[test]
    fn ami_payloads_name_their_fields() {
        let ami = |p: Value| Request::<AmiBackupFields>::parse(p, Utc::now());
        assert!(
            ami(json!({"plan": "p", "select": {"tags": {"ami": "weekly"}}, "reboot": true}))
                .is_ok()
        );
        assert_eq!(
            ami(json!({"plan": "p"})).expect_err("missing").field,
            "select"
        );
        assert_eq!(
            ami(json!({"plan": "p", "select": {"ids": ["i"]}, "reboot": "no"}))
                .expect_err("type")
                .field,
            "reboot"
        );
        assert_eq!(
            ami(json!({"plan": "p", "select": {"ids": ["i"]}, "copy_to": []}))
                .expect_err("unknown")
                .field,
            "copy_to"
        );
    }
}
