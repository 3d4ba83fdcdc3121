//! `freshness`'s own payload fields.

use lifeboat::request::Fields;
use lifeboat::rules::selection::Selection;
use lifeboat::{Kind, PayloadError, Plan};
use serde::Deserialize;

/// One `freshness` check: the resources it protects and the age their newest backup may reach.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshnessCheck {
    /// The kind of backup that protects them.
    pub kind: Kind,
    /// For `rds`, `rds-cluster`, `ebs`, `ami`: the resources (instances, clusters, volumes, instances).
    pub select: Option<Selection>,
    /// For `pg-dump`: the database names (a name or a list of names).
    pub database: Option<OneOrMany>,
    /// The recovery point objective: a newest complete backup older than this is stale.
    pub max_age_hours: f64,
    /// Count only backups of these plans (default: a backup of any plan counts).
    pub plans: Option<Vec<String>>,
    /// A restore drill of one of its backups must have passed within this
    /// many days (e.g. 35 for a monthly drill); unset: the last proven
    /// restore is shown, never alerted on.
    pub proven_within_days: Option<u32>,
}

impl FreshnessCheck {
    /// The plans a backup must be of to count, if the check narrows them (validated as plan names).
    pub fn plans(&self) -> Option<Vec<Plan>> {
        self.plans
            .as_ref()
            .map(|plans| plans.iter().filter_map(|p| Plan::new(p).ok()).collect())
    }
}

/// A string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values.
    pub fn values(&self) -> Vec<String> {
        match self {
            OneOrMany::One(v) => vec![v.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// `freshness`'s own fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshnessFields {
    /// The checks to run.
    pub checks: Vec<FreshnessCheck>,
}

impl Fields for FreshnessFields {
    fn validate(&self) -> Result<(), PayloadError> {
        if self.checks.is_empty() {
            return Err(PayloadError::new(
                "checks",
                "is empty: give at least one check",
            ));
        }
        for (i, check) in self.checks.iter().enumerate() {
            let field = |name: &str| format!("checks[{i}].{name}");
            if !(check.max_age_hours > 0.0 && check.max_age_hours <= 24.0 * 366.0) {
                return Err(PayloadError::new(
                    field("max_age_hours"),
                    "must be more than 0 and at most 8784 (a year)",
                ));
            }
            match (check.kind, &check.select, &check.database) {
                (Kind::PgDump, None, Some(names)) => {
                    if names.values().is_empty()
                        || names.values().iter().any(|n| n.trim().is_empty())
                    {
                        return Err(PayloadError::new(
                            field("database"),
                            "give one or more database names",
                        ));
                    }
                }
                (Kind::PgDump, _, _) => {
                    return Err(PayloadError::new(
                        field("database"),
                        "a pg-dump check names its databases in `database` (and has no `select`)",
                    ));
                }
                (_, Some(select), None) => select.validate(&field("select"))?,
                (_, _, _) => {
                    return Err(PayloadError::new(
                        field("select"),
                        format!(
                            "a `{}` check selects its resources in `select` (and has no `database`)",
                            check.kind
                        ),
                    ));
                }
            }
            if check
                .proven_within_days
                .is_some_and(|days| !(1..=366).contains(&days))
            {
                return Err(PayloadError::new(
                    field("proven_within_days"),
                    "must be 1 to 366 days (e.g. 35 for a monthly drill)",
                ));
            }
            if check.plans.as_ref().is_some_and(Vec::is_empty) {
                return Err(PayloadError::new(
                    field("plans"),
                    "is empty: leave it out to count backups of any plan",
                ));
            }
            let plans = check.plans.as_deref().unwrap_or_default();
            if let Some(bad) = plans.iter().find(|p| Plan::new(p).is_err()) {
                return Err(PayloadError::new(
                    field("plans"),
                    format!("`{bad}` is not a plan name"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use lifeboat::Request;
    use serde_json::{Value, json};

    #[test]
    fn freshness_payloads_name_their_fields() {
        let parse = |p: Value| Request::<FreshnessFields>::parse(p, Utc::now());
        assert!(parse(json!({"plan": "p", "checks": [
            {"kind": "ebs", "select": {"tags": {"backup": "nightly"}}, "max_age_hours": 26},
            {"kind": "pg-dump", "database": "orders", "max_age_hours": 26, "plans": ["nightly"]},
            {"kind": "pg-dump", "database": ["a", "b"], "max_age_hours": 1.5, "proven_within_days": 35}
        ]})).is_ok());
        for (payload, field) in [
            (json!({"plan": "p", "checks": []}), "checks"),
            (
                json!({"plan": "p", "checks": [{"kind": "ebs", "select": {"ids": ["v"]}, "max_age_hours": 0}]}),
                "checks[0].max_age_hours",
            ),
            (
                json!({"plan": "p", "checks": [{"kind": "ebs", "select": {"ids": ["v"]}}]}),
                "checks[0].max_age_hours",
            ),
            (
                json!({"plan": "p", "checks": [{"kind": "ebs", "database": "x", "max_age_hours": 1}]}),
                "checks[0].select",
            ),
            (
                json!({"plan": "p", "checks": [{"kind": "pg-dump", "select": {"ids": ["v"]}, "max_age_hours": 1}]}),
                "checks[0].database",
            ),
            (
                json!({"plan": "p", "checks": [{"kind": "pg-dump", "database": [], "max_age_hours": 1}]}),
                "checks[0].database",
            ),
            (
                json!({"plan": "p", "checks": [{"kind": "ami", "select": {}, "max_age_hours": 1}]}),
                "checks[0].select",
            ),
            (
                json!({"plan": "p", "checks": [{"kind": "ebs", "select": {"ids": ["v"]}, "max_age_hours": 1, "plans": ["Bad"]}]}),
                "checks[0].plans",
            ),
            (
                json!({"plan": "p", "checks": [{"kind": "ebs", "select": {"ids": ["v"]}, "max_age_hours": 1, "rpo": 1}]}),
                "checks[0].rpo",
            ),
            (
                json!({"plan": "p", "checks": [{"kind": "ebs", "select": {"ids": ["v"]}, "max_age_hours": 1, "proven_within_days": 0}]}),
                "checks[0].proven_within_days",
            ),
            (
                json!({"plan": "p", "checks": [{"kind": "ebs", "select": {"ids": ["v"]}, "max_age_hours": 1, "proven_within_days": 400}]}),
                "checks[0].proven_within_days",
            ),
        ] {
            let err = parse(payload.clone()).expect_err("refused");
            assert_eq!(err.field, field, "{payload} gave {err}");
        }
    }
}
