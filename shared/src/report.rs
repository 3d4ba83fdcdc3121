//! The JSON report every function returns: what it made, skipped and failed.

use crate::payload::Plan;
use crate::slot::Slot;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The kinds of backup Lifeboat makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A manual RDS DB instance snapshot.
    Rds,
    /// A manual Aurora DB cluster snapshot.
    RdsCluster,
    /// An EBS snapshot.
    Ebs,
    /// An AMI with its snapshots.
    Ami,
    /// A `pg_dump` archive in S3 with its manifest.
    PgDump,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Rds => "rds",
            Kind::RdsCluster => "rds-cluster",
            Kind::Ebs => "ebs",
            Kind::Ami => "ami",
            Kind::PgDump => "pg-dump",
        })
    }
}

/// A backup that was made (or, in a dry run, would be made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Created {
    /// What kind of backup.
    pub kind: Kind,
    /// The source resource id.
    pub source: String,
    /// The backup's id (snapshot identifier, AMI id, object key).
    pub backup: String,
    /// The region it lives in.
    pub region: String,
    /// For a cross-region copy: the backup it was copied from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_of: Option<String>,
}

/// A source left alone this run, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// What kind of backup.
    pub kind: Kind,
    /// The source resource id.
    pub source: String,
    /// The backup it concerns, when there is one (the slot's existing backup).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// Why, in words.
    pub reason: String,
}

/// A source that could not be backed up; an operator should look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failed {
    /// What kind of backup.
    pub kind: Kind,
    /// The source resource id.
    pub source: String,
    /// What went wrong, with AWS's code where there is one.
    pub error: String,
}

/// A backup that was deleted (or, in a dry run, would be).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deleted {
    /// What kind of backup.
    pub kind: Kind,
    /// The source it was a backup of.
    pub source: String,
    /// The backup's id; for an AMI or a snapshot set, every part.
    pub backup: String,
    /// Its slot.
    pub scheduled_time: String,
}

/// A backup that retention keeps, with the rules that keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kept {
    /// What kind of backup.
    pub kind: Kind,
    /// The source it is a backup of.
    pub source: String,
    /// The backup's id.
    pub backup: String,
    /// Its slot.
    pub scheduled_time: String,
    /// The rules that keep it (`daily`, `weekly`, `within 7d`, `incomplete …`).
    pub reasons: Vec<String>,
}

/// Whether a protected resource has a fresh backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Freshness {
    /// Its newest complete backup is younger than the threshold.
    Ok,
    /// Its newest complete backup is older than the threshold.
    Stale,
    /// It has no complete backup at all.
    Unprotected,
}

impl fmt::Display for Freshness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Freshness::Ok => "ok",
            Freshness::Stale => "stale",
            Freshness::Unprotected => "unprotected",
        })
    }
}

/// The result of one freshness check of one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// The kind of backup that protects it.
    pub kind: Kind,
    /// The resource (or database name).
    pub source: String,
    /// Its newest complete backup, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest: Option<String>,
    /// That backup's slot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest_time: Option<String>,
    /// Its age in hours at the time of the check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_hours: Option<f64>,
    /// The threshold.
    pub max_age_hours: f64,
    /// The verdict.
    pub state: Freshness,
}

/// The result of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The function that ran.
    pub function: String,
    /// The plan the run belongs to.
    pub plan: Plan,
    /// The schedule slot.
    pub slot: Slot,
    /// Whether nothing was changed on purpose.
    pub dry_run: bool,
    /// Backups made.
    pub created: Vec<Created>,
    /// Sources left alone, with the reason.
    pub skipped: Vec<Skipped>,
    /// Backups deleted (prune).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<Deleted>,
    /// Backups kept, with reasons (prune).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<Kept>,
    /// Freshness checks, one per protected resource (freshness).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    /// Sources that failed.
    pub failed: Vec<Failed>,
}

impl Report {
    /// An empty report for a run of `function`.
    pub fn new(function: &str, plan: Plan, slot: Slot, dry_run: bool) -> Self {
        Report {
            function: function.to_owned(),
            plan,
            slot,
            dry_run,
            created: Vec::new(),
            skipped: Vec::new(),
            deleted: Vec::new(),
            kept: Vec::new(),
            checks: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// Puts every list in a stable order (kind, source, backup), whatever order the work finished in.
    pub fn sort(&mut self) {
        self.created.sort_by(|a, b| {
            (a.kind, &a.source, &a.region, &a.backup)
                .cmp(&(b.kind, &b.source, &b.region, &b.backup))
        });
        self.skipped
            .sort_by(|a, b| (a.kind, &a.source, &a.backup).cmp(&(b.kind, &b.source, &b.backup)));
        self.failed
            .sort_by(|a, b| (a.kind, &a.source).cmp(&(b.kind, &b.source)));
    }

    /// The failures on one line: `rds db-1: error; rds db-2: error`.
    pub fn failure_summary(&self) -> String {
        self.failed
            .iter()
            .map(|f| format!("{} {}: {}", f.kind, f.source, f.error))
            .collect::<Vec<_>>()
            .join("; ")
    }
}
