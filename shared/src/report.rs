//! The JSON report every function returns: what it made, skipped and failed.

use crate::model::{Backup, Kind, Plan, Slot};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;

/// Why one item of a run failed: AWS's error code, when there is one, kept
/// beside the words until the report shows both.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ItemError {
    /// AWS's error code (`SnapshotQuotaExceeded`), or `None` for a failure Lifeboat found itself.
    pub code: Option<String>,
    /// What went wrong, for a person.
    pub message: String,
}

impl ItemError {
    /// A failure Lifeboat found itself (a resource in a broken state), with no AWS code.
    pub fn new(message: impl Into<String>) -> Self {
        ItemError {
            code: None,
            message: message.into(),
        }
    }

    /// An SDK error: its code, and `Code: message` as the words.
    pub fn aws<E>(error: &E) -> Self
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    {
        ItemError {
            code: error.code().map(str::to_owned),
            message: crate::aws::summarize(error),
        }
    }

    /// The same error, its words led by what was being done (`copy of snap-1 to eu-west-1`).
    pub fn context(self, doing: impl std::fmt::Display) -> Self {
        ItemError {
            message: format!("{doing}: {}", self.message),
            ..self
        }
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
    /// AWS's error code alone, when the failure came from AWS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl Failed {
    /// `source` of `kind` failed with `error`.
    pub fn new(kind: Kind, source: impl Into<String>, error: ItemError) -> Self {
        Failed {
            kind,
            source: source.into(),
            error: error.message,
            code: error.code,
        }
    }
}

impl Skipped {
    /// `source` of `kind` left alone for `reason`, about `backup` if there is one.
    pub fn new(
        kind: Kind,
        source: impl Into<String>,
        backup: Option<String>,
        reason: impl Into<String>,
    ) -> Self {
        Skipped {
            kind,
            source: source.into(),
            backup,
            reason: reason.into(),
        }
    }
}

/// A dump handed to pg-dump's ECS task: the task makes it, and its manifest
/// is the proof, as for a dump made in the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handed {
    /// The database's `name`.
    pub source: String,
    /// The key the dump will have.
    pub backup: String,
    /// The task's ARN.
    pub task: String,
    /// Whether this run started it (else a task of the slot was running already).
    pub started: bool,
    /// Why the task makes it rather than the run.
    pub reason: String,
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
    pub scheduled_time: Slot,
}

impl Deleted {
    /// The report line of a deleted `backup`: every part it consisted of.
    pub fn of(backup: &Backup) -> Self {
        Deleted {
            kind: backup.kind,
            source: backup.label.source.clone(),
            backup: backup.parts.join(","),
            scheduled_time: backup.label.slot,
        }
    }
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
    pub scheduled_time: Slot,
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
    pub newest_time: Option<Slot>,
    /// Its age in hours at the time of the check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_hours: Option<f64>,
    /// The threshold.
    pub max_age_hours: f64,
    /// The verdict.
    pub state: Freshness,
    /// When a restore drill of one of its backups last passed, if one did
    /// (of a backup still kept: a pruned backup takes its record with it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_proven: Option<DateTime<Utc>>,
    /// How recent that must be, when the check asks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proven_within_days: Option<u32>,
    /// The check asks for a proven restore and the newest is older, or there is none.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unproven: bool,
}

/// An account quota and how much of it is used (RDS's manual snapshots).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quota {
    /// AWS's name for it (`ManualSnapshots`).
    pub name: String,
    /// How many are used.
    pub used: i64,
    /// How many are allowed.
    pub max: i64,
}

impl Quota {
    /// The share used, in percent (100 for a quota of zero).
    pub fn percent(&self) -> f64 {
        if self.max > 0 {
            self.used as f64 * 100.0 / self.max as f64
        } else {
            100.0
        }
    }

    /// Whether it is used to 80 % or more, where the quota alarm fires.
    pub fn is_near(&self) -> bool {
        self.percent() >= 80.0
    }
}

/// How a restore drill ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DrillOutcome {
    /// Restored, every check held, within the RTO.
    Passed,
    /// A step failed, a check did not hold, or the restore took longer than the RTO.
    Failed,
    /// Started or moved on, not finished yet: a later run goes on with it.
    InProgress,
}

/// One restore drill, as the runbooks' "document the results" asks:
/// the backup, its size, the restore time against the RTO, what was checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drill {
    /// What kind of backup.
    pub kind: Kind,
    /// The source it is a backup of.
    pub source: String,
    /// The backup restored (object key, snapshot id).
    pub backup: String,
    /// The backup's slot, when known.
    pub backup_slot: Option<Slot>,
    /// Its size, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Where it was restored to.
    pub restored_into: String,
    /// From the restore call to usable, when it got that far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_seconds: Option<f64>,
    /// The restore time to beat.
    pub rto_seconds: u64,
    /// What was checked and found as recorded, in words.
    pub checks: Vec<String>,
    /// The outcome.
    pub outcome: DrillOutcome,
    /// The step that failed (`restore`, `check`, `rto`, `record`), when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Something a person should hear about that is not a failure of the run
/// (a safety rail held, a backup gone stale). The runtime sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// A short line for a mail subject.
    pub subject: String,
    /// The message, readable by a person.
    #[serde(skip)]
    pub body: String,
    /// Message attributes beyond `function`, `plan` and `severity`, for subscription filters.
    #[serde(skip)]
    pub attributes: Vec<(String, String)>,
}

/// The unit of a metric value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A number of things.
    Count,
    /// A duration or an age.
    Seconds,
    /// A share of a whole.
    Percent,
}

/// One metric datum.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Metric name (`BackupsCreated`).
    pub name: &'static str,
    /// Dimension names and values.
    pub dimensions: Vec<(&'static str, String)>,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: Unit,
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
    /// Account quotas and their usage (freshness).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quotas: Vec<Quota>,
    /// Restore drills (restore-drill).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drills: Vec<Drill>,
    /// Dumps handed to pg-dump's ECS task (pg-dump).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<Handed>,
    /// Sources that failed.
    pub failed: Vec<Failed>,
    /// What the run has to tell a person besides failures; sent by the runtime.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Notice>,
    /// Metrics an alarm watches, sent by the runtime with the outcome counts.
    #[serde(skip)]
    pub metrics: Vec<Metric>,
    /// Notices or metrics that could not be delivered: a failure of the run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub undelivered: Vec<String>,
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
            quotas: Vec::new(),
            drills: Vec::new(),
            tasks: Vec::new(),
            failed: Vec::new(),
            notices: Vec::new(),
            metrics: Vec::new(),
            undelivered: Vec::new(),
        }
    }

    /// Whether the run failed: a source failed, or something it had to send was not delivered.
    pub fn has_failed(&self) -> bool {
        !self.failed.is_empty() || !self.undelivered.is_empty()
    }

    /// A backup of `kind` of `source`, `backup` in `region`, made (or a copy started) by this run.
    pub fn created(
        &mut self,
        kind: Kind,
        source: &str,
        backup: impl Into<String>,
        region: &str,
        copy_of: Option<String>,
    ) {
        self.created.push(Created {
            kind,
            source: source.to_owned(),
            backup: backup.into(),
            region: region.to_owned(),
            copy_of,
        });
    }

    /// Puts every list of work done in a stable order (kind, source, then backup or slot), whatever order the work finished in.
    pub fn sort(&mut self) {
        self.created.sort_by(|a, b| {
            (a.kind, &a.source, &a.region, &a.backup)
                .cmp(&(b.kind, &b.source, &b.region, &b.backup))
        });
        self.skipped
            .sort_by(|a, b| (a.kind, &a.source, &a.backup).cmp(&(b.kind, &b.source, &b.backup)));
        self.failed
            .sort_by(|a, b| (a.kind, &a.source).cmp(&(b.kind, &b.source)));
        // Deletions run at once: oldest first within each source, as they were chosen.
        self.deleted.sort_by(|a, b| {
            (a.kind, &a.source, a.scheduled_time, &a.backup).cmp(&(
                b.kind,
                &b.source,
                b.scheduled_time,
                &b.backup,
            ))
        });
    }

    /// The failures on one line: `rds db-1: error; rds db-2: error; not delivered: …`.
    pub fn failure_summary(&self) -> String {
        self.failed
            .iter()
            .map(|f| format!("{} {}: {}", f.kind, f.source, f.error))
            .chain(
                self.undelivered
                    .iter()
                    .map(|u| format!("not delivered: {u}")),
            )
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_is_near_its_limit_from_80_percent() {
        let quota = |used, max| Quota {
            name: "ManualSnapshots".to_owned(),
            used,
            max,
        };
        assert!(!quota(79, 100).is_near());
        assert!(quota(80, 100).is_near());
        assert_eq!(quota(37, 100).percent(), 37.0);
        assert!(quota(0, 0).is_near(), "a quota of zero admits nothing");
    }
}
