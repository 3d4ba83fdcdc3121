//! Invocation payloads: the common fields every function takes, and each
//! function's own fields. Unknown fields are refused, and every refusal names
//! the field, because a typo must never silently widen or narrow a backup.

use crate::error::PayloadError;
use crate::selection::Selection;
use crate::slot::Slot;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// A backup plan's name: `^[a-z0-9][a-z0-9-]{0,30}$`. Tagged on every backup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Plan(String);

impl Plan {
    /// Checks `name` against the plan pattern.
    pub fn new(name: &str) -> Result<Self, String> {
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if first_ok && rest_ok && name.len() <= 31 {
            Ok(Plan(name.to_owned()))
        } else {
            Err(format!(
                "`{name}` is not a plan name: 1 to 31 characters of a-z, 0-9 and `-`, starting with a letter or digit"
            ))
        }
    }

    /// The plan's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A function's own payload fields: parsed by serde (unknown fields denied),
/// then checked as a whole.
pub trait Fields: DeserializeOwned {
    /// Checks what serde cannot: empty selections, ranges, combinations.
    fn validate(&self) -> Result<(), PayloadError>;
}

/// A parsed and validated invocation.
#[derive(Debug, Clone)]
pub struct Request<F> {
    /// The backup plan this run belongs to.
    pub plan: Plan,
    /// The schedule slot (from `scheduled_time`, or the current minute).
    pub slot: Slot,
    /// Report what would be done; make no change.
    pub dry_run: bool,
    /// The function's own fields.
    pub fields: F,
}

impl<F: Fields> Request<F> {
    /// Parses and validates a payload, with `now` as the clock for the slot.
    pub fn parse(event: Value, now: DateTime<Utc>) -> Result<Self, PayloadError> {
        let Value::Object(mut map) = event else {
            return Err(PayloadError::new(".", "the payload must be a JSON object"));
        };
        let plan = take_string(&mut map, "plan")?
            .ok_or_else(|| PayloadError::new("plan", "missing; every run belongs to a plan"))?;
        let plan = Plan::new(&plan).map_err(|m| PayloadError::new("plan", m))?;
        let slot = match take_string(&mut map, "scheduled_time")? {
            Some(text) => {
                Slot::parse(&text, now).map_err(|m| PayloadError::new("scheduled_time", m))?
            }
            None => Slot::containing(now),
        };
        let dry_run = match map.remove("dry_run") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(other) => {
                return Err(PayloadError::new(
                    "dry_run",
                    format!("must be true or false, not {other}"),
                ));
            }
        };
        let fields: F = serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            // serde names a missing field only in its message; name it in the path too.
            let missing = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.strip_suffix('`'));
            let field = match missing {
                Some(name) if path == "." => name.to_owned(),
                Some(name) => format!("{path}.{name}"),
                None => path,
            };
            PayloadError::new(field, message)
        })?;
        fields.validate()?;
        Ok(Request {
            plan,
            slot,
            dry_run,
            fields,
        })
    }
}

fn take_string(map: &mut Map<String, Value>, field: &str) -> Result<Option<String>, PayloadError> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(PayloadError::new(
            field,
            format!("must be a string, not {other}"),
        )),
    }
}

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

/// `prune`'s own fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneFields {
    /// The kinds of backup to prune.
    pub kinds: Vec<crate::report::Kind>,
    /// The retention policy.
    pub keep: crate::retention::KeepPolicy,
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

/// `pg-dump`'s own fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgDumpFields {
    /// The databases to dump, one archive each.
    pub databases: Vec<Database>,
    /// The bucket to write to (default: `LIFEBOAT_BUCKET`).
    pub bucket: Option<String>,
    /// The key prefix the dumps go under (`pg/`); empty by default. A missing final `/` is added.
    pub prefix: Option<String>,
}

impl PgDumpFields {
    /// The prefix as keys use it: empty, or ending in `/`.
    pub fn key_prefix(&self) -> String {
        match self.prefix.as_deref() {
            None | Some("") => String::new(),
            Some(p) if p.ends_with('/') => p.to_owned(),
            Some(p) => format!("{p}/"),
        }
    }
}

/// One database to dump.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// The backup's source name: tagged, and the first part of the dump's key.
    pub name: String,
    /// The server's host name or address.
    pub host: String,
    /// The server's port (default 5432).
    #[serde(default = "default_pg_port")]
    pub port: u16,
    /// The database to dump on that server.
    pub dbname: String,
    /// The Secrets Manager secret holding `username` and `password` (the RDS format).
    pub secret_arn: String,
    /// The archive format (default `custom`).
    #[serde(default)]
    pub format: DumpFormat,
    /// libpq's `sslmode` (default `require`, or `prefer` for a loopback host).
    pub sslmode: Option<SslMode>,
    /// pg_dump's `--compress`: `zstd`, `gzip`, `lz4` or `none`, with an
    /// optional `:level` (default: `zstd` for the custom format, `none` for plain).
    pub compression: Option<String>,
}

fn default_pg_port() -> u16 {
    5432
}

impl Database {
    /// The compression given, or the format's default: `zstd` (faster than
    /// gzip and smaller; archives of pg_dump 18 need pg_restore 17 or later
    /// anyway, and those read zstd), `none` for plain SQL.
    pub fn compression(&self) -> &str {
        match (&self.compression, self.format) {
            (Some(c), _) => c,
            (None, DumpFormat::Custom) => "zstd",
            (None, DumpFormat::Plain) => "none",
        }
    }

    /// The `sslmode` in force: as given, else `require` off this machine and `prefer` on loopback.
    pub fn sslmode(&self) -> SslMode {
        self.sslmode.unwrap_or(if is_loopback(&self.host) {
            SslMode::Prefer
        } else {
            SslMode::Require
        })
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `pg_dump`'s archive formats that Lifeboat writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DumpFormat {
    /// `pg_dump -Fc`: compressed, restorable selectively with `pg_restore`; its table of contents is checked.
    #[default]
    Custom,
    /// `pg_dump -Fp`: an SQL script for `psql`.
    Plain,
}

impl DumpFormat {
    /// The file ending of a dump in this format.
    pub fn extension(self) -> &'static str {
        match self {
            DumpFormat::Custom => "dump",
            DumpFormat::Plain => "sql",
        }
    }
}

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS if the server insists.
    Allow,
    /// TLS if the server offers it.
    Prefer,
    /// TLS always, the certificate unchecked.
    Require,
    /// TLS, the certificate checked against a CA.
    VerifyCa,
    /// TLS, the certificate and the host name checked.
    VerifyFull,
}

impl SslMode {
    /// The value as libpq spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl Fields for PgDumpFields {
    fn validate(&self) -> Result<(), PayloadError> {
        if self.databases.is_empty() {
            return Err(PayloadError::new(
                "databases",
                "is empty: give at least one database",
            ));
        }
        for (i, db) in self.databases.iter().enumerate() {
            let field = |name: &str| format!("databases[{i}].{name}");
            if !is_source_name(&db.name) {
                return Err(PayloadError::new(
                    field("name"),
                    format!(
                        "`{}` is not a dump name: 1 to 63 characters of letters, digits, `-` and `_`, starting with a letter or digit",
                        db.name
                    ),
                ));
            }
            if self.databases[..i].iter().any(|d| d.name == db.name) {
                return Err(PayloadError::new(
                    field("name"),
                    format!("`{}` is listed twice", db.name),
                ));
            }
            for (name, value) in [("host", &db.host), ("dbname", &db.dbname)] {
                if value.trim().is_empty() || value.chars().any(char::is_control) {
                    return Err(PayloadError::new(field(name), "is empty"));
                }
            }
            if let Some(spec) = &db.compression {
                check_compression(spec).map_err(|m| PayloadError::new(field("compression"), m))?;
                if db.format == DumpFormat::Plain && spec != "none" {
                    return Err(PayloadError::new(
                        field("compression"),
                        "plain dumps are written as SQL text; use the custom format to compress",
                    ));
                }
            }
            if db.port == 0 {
                return Err(PayloadError::new(field("port"), "must be 1 to 65535"));
            }
            if !db.secret_arn.starts_with("arn:") || !db.secret_arn.contains(":secretsmanager:") {
                return Err(PayloadError::new(
                    field("secret_arn"),
                    "must be the ARN of a Secrets Manager secret (arn:aws:secretsmanager:…)",
                ));
            }
        }
        if self.bucket.as_deref().is_some_and(|b| b.trim().is_empty()) {
            return Err(PayloadError::new(
                "bucket",
                "must not be empty; leave it out to use LIFEBOAT_BUCKET",
            ));
        }
        let prefix = self.key_prefix();
        if prefix.starts_with('/') || prefix.contains("//") || prefix.chars().any(char::is_control)
        {
            return Err(PayloadError::new(
                "prefix",
                "must not start with `/` or hold empty path parts",
            ));
        }
        Ok(())
    }
}

/// `zstd`, `zstd:19`, `gzip:9`, `lz4`, `none`, with each method's level range.
fn check_compression(spec: &str) -> Result<(), String> {
    let (method, level) = match spec.split_once(':') {
        Some((m, l)) => (m, Some(l)),
        None => (spec, None),
    };
    let range = match method {
        "zstd" => 1..=22,
        "gzip" => 1..=9,
        "lz4" => 1..=12,
        "none" if level.is_none() => return Ok(()),
        _ => {
            return Err(format!(
                "`{spec}` is not a compression: zstd, gzip, lz4 or none, with an optional :level"
            ));
        }
    };
    match level.map(str::parse::<u8>) {
        None => Ok(()),
        Some(Ok(l)) if range.contains(&l) => Ok(()),
        Some(_) => Err(format!(
            "`{spec}`: a {method} level is {} to {}",
            range.start(),
            range.end()
        )),
    }
}

/// A dump's source name is its key's first part and its file name's start:
/// no `/`, nothing a shell or a URL would trip on.
fn is_source_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.len() <= 63
}

/// One `freshness` check: the resources it protects and the age their newest backup may reach.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshnessCheck {
    /// The kind of backup that protects them.
    pub kind: crate::report::Kind,
    /// For `rds`, `rds-cluster`, `ebs`, `ami`: the resources (instances, clusters, volumes, instances).
    pub select: Option<Selection>,
    /// For `pg-dump`: the database names (a name or a list of names).
    pub database: Option<OneOrMany>,
    /// The recovery point objective: a newest complete backup older than this is stale.
    pub max_age_hours: f64,
    /// Count only backups of these plans (default: a backup of any plan counts).
    pub plans: Option<Vec<String>>,
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
        use crate::report::Kind;
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
    use serde_json::json;

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

    #[test]
    fn ec2_payloads_name_their_fields() {
        let ebs = |p: Value| Request::<EbsSnapshotFields>::parse(p, now());
        let ami = |p: Value| Request::<AmiBackupFields>::parse(p, now());
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

    #[test]
    fn prune_payloads_name_their_fields() {
        let prune = |p: Value| Request::<PruneFields>::parse(p, now());
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

    #[test]
    fn freshness_payloads_name_their_fields() {
        let parse = |p: Value| Request::<FreshnessFields>::parse(p, now());
        assert!(parse(json!({"plan": "p", "checks": [
            {"kind": "ebs", "select": {"tags": {"backup": "nightly"}}, "max_age_hours": 26},
            {"kind": "pg-dump", "database": "orders", "max_age_hours": 26, "plans": ["nightly"]},
            {"kind": "pg-dump", "database": ["a", "b"], "max_age_hours": 1.5}
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
        ] {
            let err = parse(payload.clone()).expect_err("refused");
            assert_eq!(err.field, field, "{payload} gave {err}");
        }
    }

    #[test]
    fn pg_dump_payloads_name_their_fields() {
        let pg = |p: Value| Request::<PgDumpFields>::parse(p, now());
        let secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:orders-AbCdEf";
        let ok = pg(json!({"plan": "p", "prefix": "pg", "databases": [
            {"name": "orders", "host": "orders.abc.rds.amazonaws.com", "dbname": "orders", "secret_arn": secret},
            {"name": "local_1", "host": "127.0.0.1", "port": 55432, "dbname": "x", "secret_arn": secret, "format": "plain"}
        ]}))
        .expect("valid");
        let [remote, local] = &ok.fields.databases[..] else {
            panic!("two databases")
        };
        assert_eq!((remote.port, remote.format), (5432, DumpFormat::Custom));
        assert_eq!(remote.sslmode(), SslMode::Require);
        assert_eq!(local.sslmode(), SslMode::Prefer);
        assert_eq!(local.format.extension(), "sql");
        assert_eq!(
            (remote.compression(), local.compression()),
            ("zstd", "none")
        );
        assert_eq!(ok.fields.key_prefix(), "pg/");
        let db = |extra: Value| {
            let mut d = json!({"name": "orders", "host": "h", "dbname": "d", "secret_arn": secret});
            for (k, v) in extra.as_object().expect("object") {
                d[k] = v.clone();
            }
            json!({"plan": "p", "databases": [d]})
        };
        assert_eq!(
            pg(db(json!({"sslmode": "verify-full"})))
                .expect("valid")
                .fields
                .databases[0]
                .sslmode(),
            SslMode::VerifyFull
        );
        for good in ["zstd:19", "gzip", "gzip:9", "lz4:1", "none"] {
            let r = pg(db(json!({"compression": good}))).expect(good);
            assert_eq!(r.fields.databases[0].compression(), good);
        }
        for (payload, field) in [
            (json!({"plan": "p"}), "databases"),
            (json!({"plan": "p", "databases": []}), "databases"),
            (db(json!({"name": "a/b"})), "databases[0].name"),
            (db(json!({"name": ""})), "databases[0].name"),
            (db(json!({"host": " "})), "databases[0].host"),
            (db(json!({"dbname": ""})), "databases[0].dbname"),
            (db(json!({"port": 0})), "databases[0].port"),
            (db(json!({"port": 70000})), "databases[0].port"),
            (
                db(json!({"secret_arn": "orders-password"})),
                "databases[0].secret_arn",
            ),
            (db(json!({"format": "tar"})), "databases[0].format"),
            (db(json!({"sslmode": "always"})), "databases[0].sslmode"),
            (
                db(json!({"compression": "brotli"})),
                "databases[0].compression",
            ),
            (
                db(json!({"compression": "gzip:10"})),
                "databases[0].compression",
            ),
            (
                db(json!({"compression": "none:1"})),
                "databases[0].compression",
            ),
            (
                db(json!({"compression": "gzip", "format": "plain"})),
                "databases[0].compression",
            ),
            (db(json!({"password": "hunter2"})), "databases[0].password"),
            (
                json!({"plan": "p", "databases": [{"name": "orders", "host": "h", "secret_arn": secret}]}),
                "databases[0].dbname",
            ),
            (
                json!({"plan": "p", "bucket": "", "databases": db(json!({}))["databases"]}),
                "bucket",
            ),
            (
                json!({"plan": "p", "prefix": "/pg", "databases": db(json!({}))["databases"]}),
                "prefix",
            ),
            (
                json!({"plan": "p", "databases": [db(json!({}))["databases"][0], db(json!({}))["databases"][0]]}),
                "databases[1].name",
            ),
        ] {
            let err = pg(payload.clone()).expect_err("refused");
            assert_eq!(err.field, field, "{payload} gave {err}");
        }
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
