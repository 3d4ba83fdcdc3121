//! `restore-drill`'s own payload fields: which backups to drill, how often,
//! and the restore time to beat.

use lifeboat::request::Fields;
use lifeboat::rules::drill::Pick;
use lifeboat::rules::retention::Span;
use lifeboat::rules::selection::Selection;
use lifeboat::{PayloadError, Plan};
use serde::Deserialize;

/// `restore-drill`'s own fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreDrillFields {
    /// Dumps to drill: each database's dump is restored into a throwaway
    /// PostgreSQL server and checked row by row against its manifest.
    pub dumps: Option<DumpDrills>,
    /// EBS volumes to drill: a volume is created from the source's snapshot
    /// in the source's zone, waited for until `available`, and deleted.
    pub ebs: Option<VolumeDrills>,
    /// AMIs to drill: the image must be available and every snapshot it
    /// refers to exist and be completed.
    pub amis: Option<ImageDrills>,
    /// RDS DB instances and Aurora clusters to drill: the snapshot is
    /// restored into a temporary instance (or cluster with one instance),
    /// checked against the snapshot when available, and deleted.
    pub rds: Option<DatabaseDrills>,
    /// A drill's temporary resource older than this many hours is deleted by
    /// every run, and its drill failed (default 24).
    pub max_age_hours: Option<u32>,
    /// The least time between two drills of one source, in restic's syntax
    /// (`1m`, `30d`); without it, every run drills every source.
    pub every: Option<String>,
    /// The restore time to beat, in minutes: a drill that takes longer fails.
    pub rto_minutes: u64,
    /// Which backup of a source: `newest` (default) or `random` (any one still
    /// kept, so that older backups are proven too).
    #[serde(default)]
    pub pick: Pick,
}

/// The dumps to drill.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DumpDrills {
    /// The databases, by their `name` in pg-dump's payload.
    pub databases: Vec<String>,
    /// The dump bucket (default: `LIFEBOAT_BUCKET`).
    pub bucket: Option<String>,
    /// pg-dump's key prefix (`pg/`); empty by default. A missing final `/` is added.
    pub prefix: Option<String>,
    /// Only dumps made by this plan (default: any plan's).
    pub backup_plan: Option<String>,
}

/// The EBS volumes whose snapshots to drill.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeDrills {
    /// The source volumes, as ebs-snapshot selects them.
    pub select: Selection,
    /// Only snapshots made by this plan (default: any plan's).
    pub backup_plan: Option<String>,
}

/// The instances whose AMIs to drill.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageDrills {
    /// The source instances, as ami-backup selects them.
    pub select: Selection,
    /// Only images made by this plan (default: any plan's).
    pub backup_plan: Option<String>,
}

/// The DB instances and clusters whose snapshots to drill, and where the
/// temporary restores go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseDrills {
    /// DB instances, as rds-snapshot's `select` picks them.
    pub instances: Option<Selection>,
    /// Aurora DB clusters, as rds-snapshot's `clusters` picks them.
    pub clusters: Option<Selection>,
    /// Only snapshots made by this plan (default: any plan's).
    pub backup_plan: Option<String>,
    /// The temporary DB instance's class (`db.t4g.medium`; for a cluster, its instance's).
    pub instance_class: String,
    /// The DB subnet group the temporary instance or cluster is restored into.
    pub subnet_group: String,
    /// Its VPC security groups (`sg-…`), at least one.
    pub security_groups: Vec<String>,
    /// A query run on the restored database once it is available, whose one
    /// number must be at least `at_least` (the application's own check).
    pub query: Option<DrillQuery>,
}

/// A query on a restored database: one row, one number, at least `at_least`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillQuery {
    /// The Secrets Manager secret with the login (`username`, `password`: the
    /// RDS format); a restore keeps the source's master login, so the
    /// source's secret works.
    pub secret_arn: String,
    /// The database to connect to.
    pub dbname: String,
    /// The query (`SELECT count(*) FROM orders`).
    pub sql: String,
    /// The least its number may be.
    pub at_least: i64,
    /// libpq's `sslmode` (default `require`; `verify-full` checks the
    /// certificate against the layer's CA bundle).
    pub sslmode: Option<lifeboat::postgres::database::SslMode>,
}

impl DatabaseDrills {
    fn validate(&self) -> Result<(), PayloadError> {
        match (&self.instances, &self.clusters) {
            (None, None) => {
                return Err(PayloadError::new(
                    "rds",
                    "selects nothing: give `instances` and/or `clusters`",
                ));
            }
            (instances, clusters) => {
                if let Some(s) = instances {
                    s.validate("rds.instances")?;
                }
                if let Some(s) = clusters {
                    s.validate("rds.clusters")?;
                }
            }
        }
        if let Some(plan) = &self.backup_plan {
            Plan::new(plan).map_err(|e| PayloadError::new("rds.backup_plan", e.to_string()))?;
        }
        if !self.instance_class.starts_with("db.") {
            return Err(PayloadError::new(
                "rds.instance_class",
                format!(
                    "`{}` is not a DB instance class (`db.t4g.medium`)",
                    self.instance_class
                ),
            ));
        }
        if self.subnet_group.trim().is_empty() {
            return Err(PayloadError::new(
                "rds.subnet_group",
                "is empty: name the DB subnet group drills restore into",
            ));
        }
        if self.security_groups.is_empty() {
            return Err(PayloadError::new(
                "rds.security_groups",
                "is empty: name at least one VPC security group (`sg-…`)",
            ));
        }
        for (i, group) in self.security_groups.iter().enumerate() {
            if !group.starts_with("sg-") {
                return Err(PayloadError::new(
                    format!("rds.security_groups[{i}]"),
                    format!("`{group}` is not a security group id (`sg-…`)"),
                ));
            }
        }
        if let Some(query) = &self.query {
            if !(query.secret_arn.starts_with("arn:")
                && query.secret_arn.contains(":secretsmanager:"))
            {
                return Err(PayloadError::new(
                    "rds.query.secret_arn",
                    "is not a Secrets Manager secret ARN (arn:aws:secretsmanager:…)",
                ));
            }
            if query.dbname.trim().is_empty() {
                return Err(PayloadError::new(
                    "rds.query.dbname",
                    "is empty: name the database to query",
                ));
            }
            if query.sql.trim().is_empty() {
                return Err(PayloadError::new(
                    "rds.query.sql",
                    "is empty: give a query that gives one number",
                ));
            }
        }
        Ok(())
    }
}

impl DumpDrills {
    /// The prefix as keys use it: empty, or ending in `/`.
    pub fn key_prefix(&self) -> String {
        match self.prefix.as_deref() {
            None | Some("") => String::new(),
            Some(p) if p.ends_with('/') => p.to_owned(),
            Some(p) => format!("{p}/"),
        }
    }

    /// The plan whose dumps are drilled, if one is named.
    pub fn backup_plan(&self) -> Option<Plan> {
        self.backup_plan.as_deref().and_then(|p| Plan::new(p).ok())
    }
}

/// How long a drill's temporary resource may live by default, in hours.
pub const DEFAULT_MAX_AGE_HOURS: u32 = 24;

impl RestoreDrillFields {
    /// How long a drill's temporary resource may live.
    pub fn max_age(&self) -> chrono::Duration {
        chrono::Duration::hours(i64::from(
            self.max_age_hours.unwrap_or(DEFAULT_MAX_AGE_HOURS),
        ))
    }

    /// `every` as a span (checked by `validate`).
    pub fn every(&self) -> Option<Span> {
        self.every.as_deref().and_then(|e| Span::parse(e).ok())
    }
}

impl Fields for RestoreDrillFields {
    fn validate(&self) -> Result<(), PayloadError> {
        if let Some(ebs) = &self.ebs {
            ebs.select.validate("ebs.select")?;
            if let Some(plan) = &ebs.backup_plan {
                Plan::new(plan).map_err(|e| PayloadError::new("ebs.backup_plan", e.to_string()))?;
            }
        }
        if let Some(amis) = &self.amis {
            amis.select.validate("amis.select")?;
            if let Some(plan) = &amis.backup_plan {
                Plan::new(plan)
                    .map_err(|e| PayloadError::new("amis.backup_plan", e.to_string()))?;
            }
        }
        if let Some(rds) = &self.rds {
            rds.validate()?;
        }
        if self.max_age_hours == Some(0) {
            return Err(PayloadError::new("max_age_hours", "must be at least 1"));
        }
        let Some(dumps) = &self.dumps else {
            return if self.ebs.is_some() || self.amis.is_some() || self.rds.is_some() {
                self.validate_common()
            } else {
                Err(PayloadError::new(
                    "dumps",
                    "missing: name the backups to drill (`dumps`, `ebs`, `amis`, `rds`)",
                ))
            };
        };
        if dumps.databases.is_empty() {
            return Err(PayloadError::new("dumps.databases", "is empty"));
        }
        for (i, name) in dumps.databases.iter().enumerate() {
            if name.is_empty() || name.contains('/') {
                return Err(PayloadError::new(
                    format!("dumps.databases[{i}]"),
                    format!("`{name}` is not a database name of pg-dump's payload"),
                ));
            }
        }
        if let Some(plan) = &dumps.backup_plan {
            Plan::new(plan).map_err(|e| PayloadError::new("dumps.backup_plan", e.to_string()))?;
        }
        self.validate_common()
    }
}

impl RestoreDrillFields {
    fn validate_common(&self) -> Result<(), PayloadError> {
        if let Some(every) = &self.every {
            let span = Span::parse(every).map_err(|e| PayloadError::new("every", e))?;
            if span.is_zero() {
                return Err(PayloadError::new(
                    "every",
                    "is zero: leave it out to drill every run",
                ));
            }
        }
        if self.rto_minutes == 0 {
            return Err(PayloadError::new("rto_minutes", "must be at least 1"));
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
    fn drill_payloads_name_their_fields() {
        let parse = |p: Value| Request::<RestoreDrillFields>::parse(p, Utc::now());
        let good = json!({"plan": "monthly-drill", "rto_minutes": 60, "every": "1m", "pick": "random",
            "dumps": {"databases": ["orders"], "prefix": "pg", "backup_plan": "nightly"}});
        let request = parse(good.clone()).expect("valid");
        assert_eq!(request.fields.pick, Pick::Random);
        assert_eq!(
            request
                .fields
                .dumps
                .as_ref()
                .map(DumpDrills::key_prefix)
                .as_deref(),
            Some("pg/")
        );
        for (change, field) in [
            (json!({"dumps": null}), "dumps"),
            (json!({"ebs": {"select": {}}}), "ebs.select"),
            (
                json!({"ebs": {"select": {"ids": ["vol-1"]}, "backup_plan": "X"}}),
                "ebs.backup_plan",
            ),
            (json!({"max_age_hours": 0}), "max_age_hours"),
            (json!({"amis": {"select": {}}}), "amis.select"),
            (json!({"dumps": {"databases": []}}), "dumps.databases"),
            (
                json!({"dumps": {"databases": ["a/b"]}}),
                "dumps.databases[0]",
            ),
            (
                json!({"dumps": {"databases": ["orders"], "backup_plan": "Nightly!"}}),
                "dumps.backup_plan",
            ),
            (json!({"every": "monthly"}), "every"),
            (json!({"every": "0d"}), "every"),
            (json!({"rto_minutes": 0}), "rto_minutes"),
            (json!({"pick": "oldest"}), "pick"),
            (
                json!({"rds": {"instance_class": "db.t4g.micro", "subnet_group": "g", "security_groups": ["sg-1"]}}),
                "rds",
            ),
            (
                json!({"rds": {"instances": {"ids": ["db-a"]}, "instance_class": "t4g.micro", "subnet_group": "g", "security_groups": ["sg-1"]}}),
                "rds.instance_class",
            ),
            (
                json!({"rds": {"clusters": {"ids": ["c"]}, "instance_class": "db.r6g.large", "subnet_group": " ", "security_groups": ["sg-1"]}}),
                "rds.subnet_group",
            ),
            (
                json!({"rds": {"instances": {"ids": ["db-a"]}, "instance_class": "db.t4g.micro", "subnet_group": "g", "security_groups": []}}),
                "rds.security_groups",
            ),
            (
                json!({"rds": {"instances": {"ids": ["db-a"]}, "instance_class": "db.t4g.micro", "subnet_group": "g", "security_groups": ["default"]}}),
                "rds.security_groups[0]",
            ),
            (
                json!({"rds": {"instances": {"ids": ["db-a"]}, "instance_class": "db.t4g.micro", "subnet_group": "g", "security_groups": ["sg-1"],
                    "query": {"secret_arn": "orders-login", "dbname": "orders", "sql": "SELECT 1", "at_least": 1}}}),
                "rds.query.secret_arn",
            ),
            (
                json!({"rds": {"instances": {"ids": ["db-a"]}, "instance_class": "db.t4g.micro", "subnet_group": "g", "security_groups": ["sg-1"],
                    "query": {"secret_arn": "arn:aws:secretsmanager:us-east-1:1:secret:x", "dbname": "orders", "sql": " ", "at_least": 1}}}),
                "rds.query.sql",
            ),
            (
                json!({"rds": {"instances": {"ids": ["db-a"]}, "instance_class": "db.t4g.micro", "subnet_group": "g", "security_groups": ["sg-1"],
                    "query": {"secret_arn": "arn:aws:secretsmanager:us-east-1:1:secret:x", "dbname": "", "sql": "SELECT 1", "at_least": 1}}}),
                "rds.query.dbname",
            ),
            (
                json!({"rds": {"instances": {"tags": {}}, "instance_class": "db.t4g.micro", "subnet_group": "g", "security_groups": ["sg-1"]}}),
                "rds.instances",
            ),
            (
                json!({"dumps": {"databases": ["orders"], "bucket_name": "x"}}),
                "dumps",
            ),
        ] {
            let mut payload = good.clone();
            for (k, v) in change.as_object().expect("object") {
                payload[k] = v.clone();
            }
            let err = parse(payload).expect_err(field);
            assert!(err.to_string().contains(field), "{field}: {err}");
        }
    }
}
