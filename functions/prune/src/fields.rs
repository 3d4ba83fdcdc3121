//! `prune`'s own payload fields.

use lifeboat::request::Fields;
use lifeboat::rules::retention::KeepPolicy;
use lifeboat::{Kind, PayloadError};
use serde::Deserialize;

/// `prune`'s own fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneFields {
    /// The kinds of backup to prune.
    pub kinds: Vec<Kind>,
    /// The retention policy.
    pub keep: KeepPolicy,
    /// The most deletions one run makes; the oldest surplus goes first.
    #[serde(default = "default_max_deletions")]
    pub max_deletions: usize,
}

fn default_max_deletions() -> usize {
    100
}

impl Fields for PruneFields {
    fn validate(&self) -> Result<(), PayloadError> {
        if self.kinds.is_empty() {
            return Err(PayloadError::new(
                "kinds",
                "is empty: name the kinds to prune (rds, rds-cluster, ebs, ami, pg-dump)",
            ));
        }
        for (i, kind) in self.kinds.iter().enumerate() {
            if self.kinds[..i].contains(kind) {
                return Err(PayloadError::new(
                    format!("kinds[{i}]"),
                    format!("`{kind}` is listed twice"),
                ));
            }
        }
        self.keep.validate().map_err(|(rule, message)| {
            let field = if rule.is_empty() {
                "keep".to_owned()
            } else {
                format!("keep.{rule}")
            };
            PayloadError::new(field, message)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use lifeboat::Request;
    use serde_json::{Value, json};

    #[test]
    fn prune_payloads_name_their_fields() {
        let prune = |p: Value| Request::<PruneFields>::parse(p, Utc::now());
        let ok = prune(json!({"plan": "p", "kinds": ["ebs", "pg-dump"], "keep": {"daily": 7}}))
            .expect("valid");
        assert_eq!(ok.fields.max_deletions, 100);
        for (payload, field) in [
            (
                json!({"plan": "p", "kinds": [], "keep": {"daily": 7}}),
                "kinds",
            ),
            (
                json!({"plan": "p", "kinds": ["ebs", "ebs"], "keep": {"daily": 7}}),
                "kinds[1]",
            ),
            (
                json!({"plan": "p", "kinds": ["s3"], "keep": {"daily": 7}}),
                "kinds[0]",
            ),
            (json!({"plan": "p", "kinds": ["ebs"]}), "keep"),
            (json!({"plan": "p", "kinds": ["ebs"], "keep": {}}), "keep"),
            (
                json!({"plan": "p", "kinds": ["ebs"], "keep": {"daily": -5}}),
                "keep.daily",
            ),
            (
                json!({"plan": "p", "kinds": ["ebs"], "keep": {"dayly": 7}}),
                "keep.dayly",
            ),
            (
                json!({"plan": "p", "kinds": ["ebs"], "keep": {"within": "a week"}}),
                "keep.within",
            ),
            (
                json!({"plan": "p", "kinds": ["ebs"], "keep": {"daily": 7}, "max_deletions": -1}),
                "max_deletions",
            ),
        ] {
            let err = prune(payload.clone()).expect_err("refused");
            assert_eq!(err.field, field, "{payload} gave {err}");
        }
    }
}
