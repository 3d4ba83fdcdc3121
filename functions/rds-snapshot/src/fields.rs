//! `rds-snapshot`'s own payload fields.

use lifeboat::PayloadError;
use lifeboat::aws::rds::Source;
use lifeboat::request::Fields;
use lifeboat::rules::copy::{CopyTarget, validate_copy_to};
use lifeboat::rules::selection::Selection;
use serde::Deserialize;

/// `rds-snapshot`'s own fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RdsSnapshotFields {
    /// DB instances to snapshot.
    pub select: Option<Selection>,
    /// Aurora DB clusters to snapshot.
    pub clusters: Option<Selection>,
    /// Regions to copy each snapshot to.
    #[serde(default)]
    pub copy_to: Vec<CopyTarget>,
}

impl Fields for RdsSnapshotFields {
    fn validate(&self) -> Result<(), PayloadError> {
        if self.select.is_none() && self.clusters.is_none() {
            return Err(PayloadError::new(
                "select",
                "missing: give `select` (DB instances) and/or `clusters` (Aurora clusters)",
            ));
        }
        if let Some(select) = &self.select {
            select.validate("select")?;
        }
        if let Some(clusters) = &self.clusters {
            clusters.validate("clusters")?;
        }
        validate_copy_to(&self.copy_to)
    }
}

/// Refuses a `copy_to` target without `kms_key_id` when a selected source is
/// encrypted: RDS copies an encrypted snapshot to another region only with a
/// KMS key of that region. Checked on the listing, before any snapshot is made.
pub fn refuse_unkeyed_copies<'a>(
    targets: &[CopyTarget],
    sources: impl IntoIterator<Item = &'a Source>,
) -> Result<(), PayloadError> {
    let Some((i, target)) = targets
        .iter()
        .enumerate()
        .find(|(_, t)| t.kms_key_id.is_none())
    else {
        return Ok(());
    };
    match sources.into_iter().find(|s| s.encrypted) {
        Some(source) => Err(PayloadError::new(
            format!("copy_to[{i}].kms_key_id"),
            format!(
                "missing: `{}` is encrypted, and RDS copies an encrypted snapshot to {} only with a KMS key there (its ARN or alias); the function's role also needs that key and the source snapshots' keys",
                source.id, target.region
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use lifeboat::{PayloadError, Request};
    use serde_json::{Value, json};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-20T02:03:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    fn parse(payload: Value) -> Result<Request<RdsSnapshotFields>, PayloadError> {
        Request::parse(payload, now())
    }

    /// The field a refused payload names.
    fn refused(payload: Value) -> PayloadError {
        parse(payload).expect_err("must be refused")
    }

    #[test]
    fn a_full_payload_parses() {
        let r = parse(json!({
            "plan": "nightly", "scheduled_time": "2026-11-20T02:00:00Z", "dry_run": true,
            "select": {"tags": {"backup": "nightly"}, "ids": ["db-1"]},
            "clusters": {"ids": ["aurora-1"]},
            "copy_to": [{"region": "eu-west-1", "kms_key_id": "alias/backups"}]
        }))
        .expect("valid");
        assert_eq!(r.plan.as_str(), "nightly");
        assert_eq!(r.slot.to_string(), "2026-11-20T02:00:00Z");
        assert!(r.dry_run);
        assert_eq!(
            r.fields.copy_to[0].kms_key_id.as_deref(),
            Some("alias/backups")
        );
    }

    #[test]
    fn the_slot_defaults_to_the_current_minute_and_dry_run_to_false() {
        let r = parse(json!({"plan": "p", "select": {"ids": ["db-1"]}})).expect("valid");
        assert_eq!(r.slot.to_string(), "2026-11-20T02:03:00Z");
        assert!(!r.dry_run);
    }

    #[test]
    fn every_bad_input_names_its_field() {
        let cases = [
            (
                json!({"plan": "p", "select": {"ids": ["a"]}, "copy_to": [{}]}),
                "copy_to[0].region",
            ),
            (json!([1]), "."),
            (json!({"select": {"ids": ["a"]}}), "plan"),
            (json!({"plan": 7, "select": {"ids": ["a"]}}), "plan"),
            (json!({"plan": "Nightly", "select": {"ids": ["a"]}}), "plan"),
            (json!({"plan": "-x", "select": {"ids": ["a"]}}), "plan"),
            (
                json!({"plan": "a".repeat(32), "select": {"ids": ["a"]}}),
                "plan",
            ),
            (
                json!({"plan": "p", "select": {"ids": ["a"]}, "scheduled_time": "tomorrow"}),
                "scheduled_time",
            ),
            (
                json!({"plan": "p", "select": {"ids": ["a"]}, "scheduled_time": "2026-11-20T02:09:00Z"}),
                "scheduled_time",
            ),
            (
                json!({"plan": "p", "select": {"ids": ["a"]}, "dry_run": "yes"}),
                "dry_run",
            ),
            (json!({"plan": "p"}), "select"),
            (json!({"plan": "p", "select": {}}), "select"),
            (
                json!({"plan": "p", "select": {"tags": {}, "ids": []}}),
                "select",
            ),
            (
                json!({"plan": "p", "select": {"ids": ["a"]}, "clusters": {}}),
                "clusters",
            ),
            (
                json!({"plan": "p", "select": {"ids": [""]}}),
                "select.ids[0]",
            ),
            (
                json!({"plan": "p", "select": {"ids": "db-1"}}),
                "select.ids",
            ),
            (
                json!({"plan": "p", "select": {"tag": {"a": "b"}}}),
                "select.tag",
            ),
            (
                json!({"plan": "p", "select": {"tags": {"a": 1}}}),
                "select.tags.a",
            ),
            (json!({"plan": "p", "selct": {"ids": ["a"]}}), "selct"),
            (
                json!({"plan": "p", "select": {"ids": ["a"]}, "copy_to": [{"region": "Mars"}]}),
                "copy_to[0].region",
            ),
            (
                json!({"plan": "p", "select": {"ids": ["a"]}, "copy_to": [{"region": "eu-west-1"}, {"region": "eu-west-1"}]}),
                "copy_to[1].region",
            ),
            (
                json!({"plan": "p", "select": {"ids": ["a"]}, "copy_to": [{"region": "eu-west-1", "kms_key_id": ""}]}),
                "copy_to[0].kms_key_id",
            ),
            (
                json!({"plan": "p", "select": {"ids": ["a"]}, "copy_to": [{"region": "eu-west-1", "kms": "k"}]}),
                "copy_to[0].kms",
            ),
        ];
        for (payload, field) in cases {
            let err = refused(payload.clone());
            assert_eq!(err.field, field, "{payload} gave {err}");
            assert!(!err.message.is_empty());
        }
    }

    #[test]
    fn unknown_fields_are_named_in_the_message() {
        let err = refused(json!({"plan": "p", "selct": {"ids": ["a"]}}));
        assert!(err.message.contains("unknown field `selct`"), "{err}");
        let err = refused(json!({"plan": "p", "select": {"ids": ["a"], "tgs": {}}}));
        assert_eq!(err.field, "select.tgs");
        assert!(err.message.contains("expected `tags` or `ids`"), "{err}");
    }
}
