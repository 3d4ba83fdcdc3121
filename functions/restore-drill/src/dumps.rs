//! Dump drills: a database's dump restored into a throwaway PostgreSQL
//! server, checked against its manifest (size and SHA-256 before the commit,
//! every table's rows after), timed against the RTO, and recorded beside the
//! dump as `<key>.drill.json`: the newest drill of each dump, whose time is
//! what the next run measures `every` from.

use crate::Settings;
use crate::fields::DumpDrills;
use crate::fields::RestoreDrillFields;
use chrono::{DateTime, Utc};
use lifeboat::postgres::restore::{self, Options, Tools};
use lifeboat::postgres::server::ScratchServer;
use lifeboat::postgres::verify::Recorded;
use lifeboat::report::{Drill, DrillOutcome, Failed, Metric, Report, Skipped, Unit};
use lifeboat::rules::{drill, naming};
use lifeboat::runtime::Invocation;
use lifeboat::{Error, ItemError, Kind, Request, Slot};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

/// The schema of a `.drill.json` record.
pub const RECORD_VERSION: u32 = 1;

/// What a run keeps before its deadline, after a restore, to stop the
/// server and write the record.
pub const RECORD_MARGIN: Duration = Duration::from_secs(60);
/// Less time than this left: no restore is started (the next run does it).
pub const LEAST_TO_START: Duration = Duration::from_secs(60);

/// How long a drill that starts now may restore for, given the run's
/// deadline (`None`: no deadline, as under `lifeboat run`); `Err` with the
/// time left when that is too little to start one.
pub fn budget(deadline: Option<SystemTime>, now: SystemTime) -> Result<Option<Duration>, Duration> {
    let Some(deadline) = deadline else {
        return Ok(None);
    };
    let left = deadline.duration_since(now).unwrap_or_default();
    let restore = left.saturating_sub(RECORD_MARGIN);
    if restore < LEAST_TO_START {
        return Err(left);
    }
    Ok(Some(restore))
}

/// Drills the dumps of one bucket.
pub struct Driller<'a> {
    /// The dump bucket's client.
    pub s3: &'a aws_sdk_s3::Client,
    /// Secrets Manager, for targets named by a secret.
    pub secrets: &'a aws_sdk_secretsmanager::Client,
    /// Where the programs and the scratch space are.
    pub settings: &'a Settings,
    /// The dump bucket.
    pub bucket: &'a str,
}

/// A database's recorded dumps (key and slot) and when it was last drilled.
struct Listed {
    dumps: Vec<(String, Slot)>,
    last_drill: Option<DateTime<Utc>>,
}

impl Driller<'_> {
    /// Drills every database of `drills` that is due, one after another, into `report`.
    pub async fn run(
        &self,
        request: &Request<RestoreDrillFields>,
        drills: &DumpDrills,
        invocation: &Invocation,
        report: &mut Report,
    ) -> Result<(), Error> {
        let fields = &request.fields;
        let every = fields.every();
        let prefix = drills.key_prefix();
        let mut tools = None;
        for database in &drills.databases {
            let failed = |error: ItemError| Failed::new(Kind::PgDump, database, error);
            let listed = match self.list(&prefix, database, drills).await {
                Ok(listed) => listed,
                Err(e) => {
                    report.failed.push(failed(e));
                    continue;
                }
            };
            if !drill::due(listed.last_drill, every.as_ref(), invocation.now) {
                report.skipped.push(crate::not_due(
                    Kind::PgDump,
                    database,
                    listed.last_drill,
                    fields,
                ));
                continue;
            }
            let slots: Vec<Slot> = listed.dumps.iter().map(|(_, slot)| *slot).collect();
            let Some(chosen) = drill::choose(&slots, fields.pick, crate::seed()) else {
                report.failed.push(failed(ItemError::new(format!(
                    "no recorded dump of {database} to drill in s3://{}/{prefix}{database}/",
                    self.bucket
                ))));
                continue;
            };
            let (key, slot) = &listed.dumps[chosen];
            if request.dry_run {
                report.skipped.push(Skipped::new(
                    Kind::PgDump,
                    database,
                    Some(key.clone()),
                    "dry run: would restore it into a throwaway server and check it",
                ));
                continue;
            }
            let tools = match &tools {
                Some(tools) => tools,
                None => tools.insert(
                    Tools::find(self.settings.pg_restore.clone())
                        .await
                        .map_err(Error::Config)?,
                ),
            };
            let budget = match budget(invocation.deadline, SystemTime::now()) {
                Ok(budget) => budget,
                Err(left) => {
                    // Nothing started, nothing recorded: still due next run.
                    report.skipped.push(Skipped::new(
                        Kind::PgDump,
                        database,
                        Some(key.clone()),
                        format!(
                            "only {} s left in this run, too little to start a restore: the next run drills it",
                            left.as_secs()
                        ),
                    ));
                    continue;
                }
            };
            let rto_seconds = fields.rto_minutes * 60;
            let mut done = self
                .drill(database, key, *slot, tools, rto_seconds, budget)
                .await;
            if let Err(e) = self.record(request, invocation.now, &done).await {
                done.checks.push(format!("not recorded: {}", e.message));
                report
                    .failed
                    .push(failed(e.context(format!("recording the drill of {key}"))));
            }
            if let Some(seconds) = done.restore_seconds {
                report.metrics.push(Metric {
                    name: "RestoreSeconds",
                    dimensions: vec![
                        ("Kind", Kind::PgDump.to_string()),
                        ("Source", database.clone()),
                    ],
                    value: seconds,
                    unit: Unit::Seconds,
                });
            }
            if let (Some(step), Some(reason)) = (&done.failed_step, &done.reason) {
                report.failed.push(failed(ItemError::new(format!(
                    "the drill of {key} failed at {step}: {reason}"
                ))));
            }
            report.drills.push(done);
        }
        Ok(())
    }

    /// The database's complete dumps (those with a manifest), of the plan
    /// if one is named, and the time of its newest drill record.
    async fn list(
        &self,
        prefix: &str,
        database: &str,
        drills: &DumpDrills,
    ) -> Result<Listed, ItemError> {
        let folder = format!("{prefix}{database}/");
        let pages = self
            .s3
            .list_objects_v2()
            .bucket(self.bucket)
            .prefix(&folder)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| {
                ItemError::aws(&e).context(format!("listing s3://{}/{folder}", self.bucket))
            })?;
        let objects: Vec<_> = pages.iter().flat_map(|p| p.contents()).collect();
        let keys: BTreeSet<&str> = objects.iter().filter_map(|o| o.key()).collect();
        let plan = drills.backup_plan();
        // By their manifests: a dump counts only with one, and a directory
        // dump's key is a prefix, not an object.
        let dumps = keys
            .iter()
            .filter_map(|key| key.strip_suffix(naming::MANIFEST_SUFFIX))
            .filter_map(|key| Some((naming::parse_dump_key(key)?, key)))
            .filter(|(dump, _)| {
                dump.database == database && plan.as_ref().is_none_or(|p| dump.plan == *p)
            })
            .map(|(dump, key)| (key.to_owned(), dump.slot))
            .collect();
        let last_drill = objects
            .iter()
            .filter(|o| {
                o.key()
                    .and_then(|k| k.strip_suffix(naming::DRILL_SUFFIX))
                    .and_then(naming::parse_dump_key)
                    .is_some_and(|dump| dump.database == database)
            })
            .filter_map(|o| o.last_modified())
            .filter_map(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()))
            .max();
        Ok(Listed { dumps, last_drill })
    }

    /// Restores `key` into a throwaway server, checks and times it; a
    /// restore still running after `budget` is stopped and fails the drill,
    /// so that it is recorded before the run's deadline.
    async fn drill(
        &self,
        database: &str,
        key: &str,
        slot: Slot,
        tools: &Tools,
        rto_seconds: u64,
        budget: Option<Duration>,
    ) -> Drill {
        let mut drill = Drill {
            kind: Kind::PgDump,
            source: database.to_owned(),
            backup: key.to_owned(),
            backup_slot: Some(slot),
            size_bytes: None,
            restored_into: "a throwaway PostgreSQL server".to_owned(),
            restore_seconds: None,
            rto_seconds,
            checks: Vec::new(),
            outcome: DrillOutcome::Failed,
            failed_step: None,
            reason: None,
        };
        let fail = |mut drill: Drill, step: &str, reason: String| {
            drill.failed_step = Some(step.to_owned());
            drill.reason = Some(reason);
            drill
        };
        let bin = tools
            .pg_restore
            .path()
            .parent()
            .unwrap_or(std::path::Path::new("."));
        let recorded = match Recorded::read(self.s3, self.bucket, key).await {
            Ok(recorded) => recorded,
            Err(e) => return fail(drill, "restore", e),
        };
        let server = match ScratchServer::start(bin, &self.settings.scratch, recorded.locks()).await
        {
            Ok(server) => server,
            Err(e) => return fail(drill, "start", e),
        };
        drill.restored_into = format!("a throwaway PostgreSQL {} server", server.version);
        tracing::info!(key, into = drill.restored_into, "drilling");
        // Boxed: the restore's future is deep, and the run loop's deeper still.
        let target = server.target("postgres");
        let restoring = Box::pin(restore::restore_recorded(
            self.s3,
            self.secrets,
            (self.bucket, key),
            &recorded,
            &target,
            tools,
            Options::default(),
        ));
        let restored = match budget {
            None => Some(restoring.await),
            // A timeout drops the restore: its pg_restore is killed with it.
            Some(budget) => tokio::time::timeout(budget, restoring).await.ok(),
        };
        server.stop().await;
        let restored = match restored {
            Some(Ok(restored)) => restored,
            Some(Err(e)) => return fail(drill, "restore", e),
            None => {
                // No restore time: it never finished.
                let seconds = budget.unwrap_or_default().as_secs();
                return fail(
                    drill,
                    "restore",
                    format!(
                        "not finished in the {seconds} s this run had left before its deadline: stopped, so that \
                         the drill is recorded; a dump that takes longer to restore than a Lambda run needs \
                         `lifeboat run restore-drill` where there is no deadline"
                    ),
                );
            }
        };
        let verified = &restored.verified;
        drill.size_bytes = Some(verified.size_bytes);
        drill.restore_seconds = Some(restored.seconds);
        drill.checks.push(format!(
            "{}: {} bytes and SHA-256 {} as recorded",
            verified.read(),
            verified.size_bytes,
            verified.sha256
        ));
        if !restored.mismatches.is_empty() {
            return fail(drill, "check", restored.mismatches.join("; "));
        }
        drill.checks.push(match &verified.fingerprint {
            Some(_) => format!(
                "{} tables, {} rows, {} large objects as recorded",
                restored.tables.len(),
                restored.tables.values().sum::<u64>(),
                restored.large_objects
            ),
            None => "the manifest has no fingerprint: rows not compared".to_owned(),
        });
        if let Some(missed) = drill::over_rto(restored.seconds, rto_seconds / 60) {
            return fail(drill, "rto", missed);
        }
        drill.outcome = DrillOutcome::Passed;
        drill
    }

    /// Writes `<key>.drill.json`: the drill as reported, when and by which plan.
    async fn record(
        &self,
        request: &Request<RestoreDrillFields>,
        now: DateTime<Utc>,
        done: &Drill,
    ) -> Result<(), ItemError> {
        let mut record = serde_json::to_value(done).unwrap_or_default();
        record["record_version"] = RECORD_VERSION.into();
        record["drilled_at"] = now.to_rfc3339().into();
        record["plan"] = request.plan.to_string().into();
        let key = naming::drill_key(&done.backup);
        self.s3
            .put_object()
            .bucket(self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(record.to_string().into_bytes().into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| ItemError::aws(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_may_take_what_the_run_has_left_but_its_record_margin() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |seconds: u64| Some(now + Duration::from_secs(seconds));
        assert_eq!(budget(None, now), Ok(None), "no deadline: no limit");
        assert_eq!(
            budget(at(900), now),
            Ok(Some(Duration::from_secs(840))),
            "a fresh Lambda run: all of it but the margin"
        );
        assert_eq!(budget(at(120), now), Ok(Some(Duration::from_secs(60))));
        assert_eq!(
            budget(at(119), now),
            Err(Duration::from_secs(119)),
            "too little to start"
        );
        assert_eq!(
            budget(Some(now - Duration::from_secs(5)), now),
            Err(Duration::ZERO),
            "past the deadline"
        );
    }
}
