//! `pg-dump`: `pg_dump` of PostgreSQL databases streamed straight into S3, in
//! one pass, and checked while it streams.
//!
//! For each database: skip it if its slot's manifest exists (idempotency);
//! read its login from Secrets Manager; run `pg_dump` with the password in its
//! environment only; stream its output into a multipart upload while hashing
//! it and reading the archive's structure; then, only if `pg_dump` succeeded
//! and the archive is whole, complete the upload and write the manifest last.
//! Any failure aborts the upload: a dump without a manifest never counts.
//!
//! A scheduled run hands a dump it cannot finish before Lambda's deadline to
//! pg-dump's ECS Fargate task instead ([`task`]): the same code, run as
//! `lifeboat run pg-dump` with that one database, making the same dump.

pub mod directory;
pub mod fields;
pub mod manifest;
pub mod task;
pub mod upload;

#[cfg(test)]
mod claim_tests;
#[cfg(test)]
mod record_tests;
#[cfg(test)]
mod test_support;

use crate::manifest::Manifest;
use crate::task::{Choice, Dispatched, History, TaskRecord, TaskSettings};
use crate::upload::{PartPlan, StreamingUpload, Target, UploadError, Written};
use chrono::Utc;
use fields::{Database, DumpFormat, PgDumpFields};
use lifeboat::postgres::archive::{
    ArchiveError, ArchiveSummary, CustomArchiveCheck, PlainDumpCheck,
};
use lifeboat::postgres::database::Runner;
use lifeboat::postgres::secret;
use lifeboat::postgres::tool::{self, PG_DUMP, PgTool};
use lifeboat::report::{Failed, Handed, Notice, Report, Skipped};
use lifeboat::rules::naming;
use lifeboat::runtime::{BackupFunction, Invocation, Sinks};
use lifeboat::{BackupLabel, Error, ItemError, Kind, Request};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::AsyncReadExt;

/// Time kept back before Lambda's deadline to abort the upload, alert and report.
const DEADLINE_MARGIN: Duration = Duration::from_secs(30);
/// How often a long dump logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// A run with no deadline (`lifeboat run`) takes multipart uploads older
/// than this for a dead Lambda run's (Lambda runs 15 minutes at most); a
/// Lambda run, uploads older than its own timeout and this margin.
const STALE_UPLOAD: chrono::Duration = chrono::Duration::minutes(20);
const STALE_MARGIN: chrono::Duration = chrono::Duration::minutes(5);
/// A run with no deadline marks its slot with `<key>.live.<run>` while it
/// works, so that no other run takes its upload, however old, for a dead one's.
/// The mark of a run that was killed stays: tagged `lifeboat:record=live`,
/// the bucket's lifecycle rule expires it (and aborts the upload after a day).
const LIVE_MARK: &str = ".live.";
/// Beside a dump's key: the record of a Lambda run the deadline cut off, and
/// of the task a slot was handed to. Both carry `lifeboat:record` for the
/// bucket's lifecycle rule.
const CUT_SUFFIX: &str = ".cut.json";
const TASK_SUFFIX: &str = ".task.json";
/// Beside a parallel dump's key while a run writes its files: the run that
/// holds the slot (its files are many objects, so no one of them can be
/// the claim that a single stream's object is).
const CLAIM_SUFFIX: &str = ".claim.json";
/// How often a parallel dump writes its claim again.
const CLAIM_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// How soon after a failed renewal it tries again (at most).
const CLAIM_RETRY: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a parallel dump goes on while its claim cannot be renewed,
/// from the moment its last write was sent: a minute less than the least
/// any run waits before it takes a claim for a dead run's (a Lambda run,
/// its timeout and [`STALE_MARGIN`], 5 minutes; a run without a deadline,
/// [`STALE_UPLOAD`], 20), so that two runs never dump one slot at once.
const CLAIM_LAPSE: std::time::Duration = std::time::Duration::from_secs(4 * 60);
const _: () = assert!(CLAIM_LAPSE.as_secs() as i64 + 60 <= STALE_MARGIN.num_seconds());
/// Claims a run tries (each a dead run's version removed, or a race lost).
const CLAIM_ATTEMPTS: usize = 100;

/// A parallel dump's claim of its slot: every version of it written, the
/// ETag of the last (each renewal goes only over this run's last), and
/// when the last was written (sent, for this run's own writes: S3's time
/// of it is later).
struct Claim {
    versions: std::sync::Mutex<Vec<Option<String>>>,
    e_tag: std::sync::Mutex<Option<String>>,
    written: std::sync::Mutex<tokio::time::Instant>,
}

/// What one renewal of a claim found.
enum Renewal {
    /// Written over this run's last write.
    Renewed,
    /// A write of this run's that it did not know of (its answer lost) is
    /// the claim: now known, and renewed over next.
    Adopted,
    /// Not written, for a reason that may pass: tried again.
    Failed(String),
    /// Another run's, or gone: the dump must stop.
    Lost(DumpError),
}

impl Claim {
    fn new(version: Option<String>, e_tag: Option<String>, written: tokio::time::Instant) -> Self {
        Claim {
            versions: std::sync::Mutex::new(vec![version]),
            e_tag: std::sync::Mutex::new(e_tag),
            written: std::sync::Mutex::new(written),
        }
    }

    /// Records a write of this run's: its version, its ETag (kept as it
    /// was if S3 gave none) and when it was written.
    fn add(&self, version: Option<String>, e_tag: Option<String>, written: tokio::time::Instant) {
        self.versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(version);
        if e_tag.is_some() {
            *self.e_tag.lock().unwrap_or_else(|e| e.into_inner()) = e_tag;
        }
        *self.written.lock().unwrap_or_else(|e| e.into_inner()) = written;
    }

    /// When the claim was last written.
    fn written(&self) -> tokio::time::Instant {
        *self.written.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long since the claim was last written.
    fn age(&self) -> std::time::Duration {
        self.written().elapsed()
    }

    /// Whether the run that ended with `outcome` still holds the slot: no
    /// other run took the claim, and it has not gone unrenewed for the
    /// lapse, after which another run may soon take it. Until when, if so.
    fn held_after(&self, outcome: &Result<Manifest, DumpError>) -> Option<tokio::time::Instant> {
        let until = self.written() + CLAIM_LAPSE;
        let taken = matches!(outcome, Err(DumpError::Taken(_)));
        (!taken && tokio::time::Instant::now() < until).then_some(until)
    }

    fn e_tag(&self) -> Option<String> {
        self.e_tag.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether `version` is one this run wrote and knows of.
    fn knows(&self, version: &Option<String>) -> bool {
        version.is_some()
            && self
                .versions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(version)
    }
}

/// The function's configuration, read once from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `pg_dump` to run (`PG_DUMP_PATH`, else the layer's, else the one on `PATH`).
    pub pg_dump: PathBuf,
    /// The default bucket (`LIFEBOAT_BUCKET`).
    pub bucket: Option<String>,
    /// The KMS key for SSE-KMS (`LIFEBOAT_KMS_KEY_ID`); the bucket's default encryption otherwise.
    pub kms_key_id: Option<String>,
    /// Part size and parallelism of the upload (`LIFEBOAT_PART_SIZE_MIB`, `LIFEBOAT_PARTS_IN_FLIGHT`).
    pub parts: PartPlan,
    /// The ECS task long dumps are handed to (`LIFEBOAT_TASK_*`), if there is one.
    pub task: Option<TaskSettings>,
}

impl Settings {
    /// Reads the environment; a malformed value is an error that names the variable.
    pub fn from_env() -> Result<Self, Error> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let number = |name: &str, default: usize, range: std::ops::RangeInclusive<usize>| {
            var(name).map_or(Ok(default), |text| {
                text.parse::<usize>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "{name} must be a whole number from {} to {}, not `{text}`",
                            range.start(),
                            range.end()
                        ))
                    })
            })
        };
        let min_mib = upload::MIN_PART_SIZE >> 20;
        let max_mib = upload::MAX_PART_SIZE >> 20;
        Ok(Settings {
            pg_dump: tool::locate(
                PG_DUMP,
                var(PG_DUMP.setting).map(PathBuf::from),
                std::env::var_os("PATH"),
            )
            .map_err(Error::Config)?,
            bucket: var("LIFEBOAT_BUCKET"),
            kms_key_id: var("LIFEBOAT_KMS_KEY_ID"),
            parts: PartPlan {
                part_size: number("LIFEBOAT_PART_SIZE_MIB", 8, min_mib..=max_mib)? << 20,
                parts_in_flight: number("LIFEBOAT_PARTS_IN_FLIGHT", 4, 1..=16)?,
            },
            task: TaskSettings::from_vars(var).map_err(Error::Config)?,
        })
    }
}

/// The `pg-dump` function with its clients.
pub struct PgDump {
    s3: aws_sdk_s3::Client,
    secrets: aws_sdk_secretsmanager::Client,
    ecs: aws_sdk_ecs::Client,
    settings: Settings,
    sinks: Sinks,
}

/// Why one database's dump failed.
#[derive(Debug, thiserror::Error)]
enum DumpError {
    #[error("{0}")]
    Secret(String),
    #[error("cannot start pg_dump: {0}")]
    Spawn(std::io::Error),
    #[error("reading pg_dump's output: {0}")]
    Read(std::io::Error),
    #[error("{0}")]
    PgDump(String),
    #[error("the dump would not restore: {0}")]
    Archive(#[from] ArchiveError),
    #[error("S3 {0}")]
    Upload(#[from] UploadError),
    #[error("stopped {margin} s before the Lambda deadline after {0} bytes; the upload was aborted", margin = DEADLINE_MARGIN.as_secs())]
    Deadline(u64),
    /// A run without a deadline was told to stop (the task by ECS: StopTask,
    /// a retirement; a person with Ctrl-C).
    #[error(
        "stopped by {0} after {1} bytes, before the dump was made: pg_dump was stopped and the upload aborted, so nothing of it is left; the slot has no dump"
    )]
    Stopped(&'static str, u64),
    /// Another run of the slot holds the key: not a failure, this run stands aside.
    #[error("{0}")]
    Taken(String),
    /// A parallel dump's files did not all reach S3 whole.
    #[error("{0}")]
    Files(#[from] directory::FilesError),
}

/// The first SIGTERM or SIGINT from now on: what ECS sends a task it stops
/// (30 seconds before SIGKILL), and Ctrl-C. Pending forever if the signals
/// cannot be watched (the run then ends as it would have).
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        _ => std::future::pending().await,
    }
}

impl PgDump {
    /// The function over these clients, settings and sinks (its S3 client's
    /// uploads unsigned: [`upload::unsigned_uploads`]).
    pub fn new(
        s3: aws_sdk_s3::Client,
        secrets: aws_sdk_secretsmanager::Client,
        ecs: aws_sdk_ecs::Client,
        settings: Settings,
        sinks: Sinks,
    ) -> Self {
        PgDump {
            s3: upload::unsigned_uploads(&s3),
            secrets,
            ecs,
            settings,
            sinks,
        }
    }

    /// The function as configured by the environment.
    pub fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, Error> {
        Ok(Self::new(
            lifeboat::aws::s3_client(aws),
            aws_sdk_secretsmanager::Client::new(aws),
            aws_sdk_ecs::Client::new(aws),
            Settings::from_env()?,
            Sinks::from_env(aws)?,
        ))
    }

    async fn manifest_exists(&self, bucket: &str, key: &str) -> Result<bool, String> {
        match self.s3.head_object().bucket(bucket).key(key).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
            Err(e) => Err(format!(
                "HeadObject {key}: {}",
                lifeboat::aws::summarize(&e)
            )),
        }
    }

    /// Aborts the slot's multipart uploads left by runs that died: older than
    /// `stale`, and no run without a deadline marks the slot as live.
    async fn abort_stale_uploads(&self, bucket: &str, key: &str, stale: chrono::Duration) {
        let uploads = match upload::uploads_under(&self.s3, bucket, key).await {
            Ok(uploads) => uploads,
            Err(error) => {
                tracing::warn!(key, %error, "cannot list earlier uploads");
                return;
            }
        };
        let stale_before = SystemTime::from(Utc::now() - stale);
        let stale: Vec<_> = uploads
            .into_iter()
            .filter(|upload| {
                let initiated = upload
                    .initiated
                    .and_then(|t| SystemTime::try_from(t).ok())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                upload.key.as_deref() == Some(key) && initiated <= stale_before
            })
            .collect();
        if stale.is_empty() {
            return;
        }
        let live = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(format!("{key}{LIVE_MARK}"))
            .send()
            .await;
        match live {
            Ok(out) if out.contents().is_empty() => {}
            Ok(_) => {
                tracing::info!(
                    key,
                    "a run without a deadline works on this slot: its uploads are left to it"
                );
                return;
            }
            Err(e) => {
                tracing::warn!(key, error = %lifeboat::aws::summarize(&e), "cannot tell whether a run without a deadline works on this slot; its uploads are left alone");
                return;
            }
        }
        tracing::info!(
            key,
            uploads = stale.len(),
            "aborting uploads left by earlier runs"
        );
        for upload in stale {
            let id = upload.upload_id.unwrap_or_default();
            upload::abort_upload(&self.s3, bucket, key, &id).await;
        }
    }

    /// Deletes this run's dump object when it has no manifest (a dump made
    /// whole but not recorded), so that no torn dump is left behind. Returns
    /// whether the dump was torn. Left alone: a dump whose manifest exists,
    /// one whose manifest could not be looked for (a dump without a manifest
    /// harms nothing: it never counts, and a later run replaces it; a manifest
    /// without its dump does), and any object another run wrote.
    async fn remove_torn_dump(&self, target: &Target) -> bool {
        let manifest = naming::manifest_key(&target.key);
        match self.manifest_exists(&target.bucket, &manifest).await {
            Ok(true) => return false,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(key = %target.key, error = %e, "whether the dump has a manifest is unknown: the dump is left in place");
                return true;
            }
        }
        let version = match self.object(&target.bucket, &target.key).await {
            Ok(Some(object)) if object.run == target.run => object.version_id,
            Ok(_) => return true,
            Err(e) => {
                tracing::warn!(key = %target.key, error = %e, "the torn dump could not be looked at; it never counts as a backup");
                return true;
            }
        };
        match self
            .delete_version(&target.bucket, &target.key, version)
            .await
        {
            Ok(()) => {
                tracing::info!(key = %target.key, "removed this run's dump, which has no manifest")
            }
            Err(error) => tracing::error!(
                key = %target.key,
                %error,
                "a dump without a manifest could not be removed; it never counts as a backup"
            ),
        }
        true
    }

    /// Deletes exactly `version` of `key` (the only deletion pg-dump makes:
    /// its role may delete versions, never whatever is newest at a key).
    async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<String>,
    ) -> Result<(), String> {
        self.s3
            .delete_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("DeleteObject {key}: {}", lifeboat::aws::summarize(&e)))
    }

    /// The object at `key`, if there is one: its version, age and writing run.
    async fn object(&self, bucket: &str, key: &str) -> Result<Option<Stored>, String> {
        match self.s3.head_object().bucket(bucket).key(key).send().await {
            Ok(out) => Ok(Some(Stored {
                run: out
                    .metadata()
                    .and_then(|m| m.get(upload::RUN_METADATA))
                    .cloned()
                    .unwrap_or_default(),
                written: out
                    .last_modified()
                    .and_then(|t| SystemTime::try_from(*t).ok())
                    .unwrap_or(SystemTime::UNIX_EPOCH),
                version_id: out.version_id,
                e_tag: out.e_tag,
            })),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(e) => Err(format!(
                "HeadObject {key}: {}",
                lifeboat::aws::summarize(&e)
            )),
        }
    }

    /// Makes sure the slot's key is free before a dump starts: a dump there
    /// without a manifest is another run's that is writing its manifest now
    /// (this run stands aside), or, older than any run lasts, a dead run's,
    /// whose version is deleted.
    async fn claim(&self, target: &Target, stale: chrono::Duration) -> Result<(), DumpError> {
        let Some(found) = self
            .object(&target.bucket, &target.key)
            .await
            .map_err(DumpError::PgDump)?
        else {
            return Ok(());
        };
        let stale_before = SystemTime::from(Utc::now() - stale);
        if found.written > stale_before {
            return Err(DumpError::Taken(format!(
                "another run wrote this slot's dump moments ago (run {}) and is writing its manifest; if that run died, a run {} minutes later replaces its dump",
                found.run,
                stale.num_minutes()
            )));
        }
        self.delete_version(&target.bucket, &target.key, found.version_id)
            .await
            .map_err(|e| {
                DumpError::PgDump(format!(
                    "a dead run's dump without a manifest could not be removed: {e}"
                ))
            })?;
        tracing::info!(key = %target.key, run = %found.run, "removed a dead run's dump without a manifest");
        Ok(())
    }

    /// Writes the manifest of the dump at `target`, last, only if its key
    /// is free. `Ok(Err(_))`: the write failed, and may have landed with its
    /// answer lost (the caller looks); `Err(Taken)`: another run's is there.
    async fn put_manifest(
        &self,
        target: &Target,
        manifest: &Manifest,
    ) -> Result<Result<(), UploadError>, DumpError> {
        let manifest_target = Target {
            key: naming::manifest_key(&target.key),
            ..target.clone()
        };
        let body = serde_json::to_vec_pretty(manifest).unwrap_or_default();
        match upload::put_object(&self.s3, &manifest_target, body.into()).await {
            Ok(_) => Ok(Ok(())),
            // Only this run's dump can be at the key, so only this run's manifest
            // can be there too: a retried write whose first attempt S3 had done.
            Err(e) if e.key_taken() => self.own_or_taken(&manifest_target, e).await.map(|_| Ok(())),
            Err(e) => Ok(Err(e)),
        }
    }

    /// After S3 refused this run's write because the key is taken: whether
    /// the object there is this run's own (a retried call whose first attempt
    /// S3 had done), or another run's, which this run leaves to it.
    async fn own_or_taken(
        &self,
        target: &Target,
        error: UploadError,
    ) -> Result<Written, DumpError> {
        match self.object(&target.bucket, &target.key).await {
            Ok(Some(found)) if found.run == target.run => Ok(Written {
                version_id: found.version_id,
                e_tag: found.e_tag,
            }),
            Ok(Some(found)) => Err(DumpError::Taken(format!(
                "another run of this slot (run {}) wrote {} first; this run's copy was discarded",
                found.run, target.key
            ))),
            Ok(None) | Err(_) => Err(error.into()),
        }
    }

    /// Dumps one database into `target`, then writes its manifest; with no
    /// deadline, marks the slot as live while it works. A parallel dump ends,
    /// while its claim holds, by aborting what is open under its key.
    async fn dump(
        &self,
        db: &Database,
        tool: &PgTool,
        target: Target,
        request: &Request<PgDumpFields>,
        limits: Limits,
        history: &History,
    ) -> Result<Manifest, DumpError> {
        let security = tool.security(db).map_err(DumpError::PgDump)?;
        if let Some(at) = limits.stop_at {
            Self::refuse_if_too_long(history, at)?;
        }
        let login = secret::credentials(&self.secrets, &db.secret_arn)
            .await
            .map_err(DumpError::Secret)?;
        self.abort_stale_uploads(&target.bucket, &target.key, limits.stale)
            .await;
        let claim = if db.dump_format() == DumpFormat::Directory {
            Some(self.claim_parallel(&target, limits.stale).await?)
        } else {
            self.claim(&target, limits.stale).await?;
            None
        };
        let live = format!("{}{LIVE_MARK}{}", target.key, target.run);
        let mut mark = None;
        if limits.stop_at.is_none() {
            let tagging = format!(
                "{}&{}",
                target.tagging,
                upload::tagging(&[("lifeboat:record", "live".to_owned())])
            );
            let marked = self
                .s3
                .put_object()
                .bucket(&target.bucket)
                .key(&live)
                .tagging(tagging)
                .body(Vec::new().into())
                .send()
                .await;
            match marked {
                Ok(out) => mark = Some(out.version_id),
                Err(e) => {
                    tracing::warn!(key = %live, error = %lifeboat::aws::summarize(&e), "the slot could not be marked live: a Lambda run may take this run's upload for a dead one's");
                }
            }
        }
        let outcome = match &claim {
            Some(claim) => {
                Box::pin(self.dump_parallel(
                    db,
                    tool,
                    &target,
                    request,
                    limits.stop_at,
                    login,
                    security,
                    claim,
                ))
                .await
            }
            None => {
                self.dump_streamed(db, tool, &target, request, limits.stop_at, login, security)
                    .await
            }
        };
        if let Some(claim) = claim {
            if let Some(until) = claim.held_after(&outcome) {
                // The slot is still this run's: any upload open under the key
                // is an orphan, this run's (begun, its answer lost) or a dead
                // run's. Aborted while the claim holds, and in a Lambda run
                // within half the margin it keeps for its clean-up.
                let until = limits
                    .stop_at
                    .map_or(until, |at| until.min(at + DEADLINE_MARGIN / 2));
                let files = format!("{}/", target.key);
                let sweep = upload::abort_all_under(&self.s3, &target.bucket, &files);
                if tokio::time::timeout_at(until, sweep).await.is_err() {
                    tracing::warn!(key = %target.key, "the uploads left open under the key were not all aborted in time: the bucket's lifecycle rule removes them");
                }
            }
            self.drop_claim(&target, claim).await;
        }
        if let Some(version) = mark {
            // The exact version: in a versioned bucket nothing of the mark remains.
            if let Err(error) = self.delete_version(&target.bucket, &live, version).await {
                tracing::warn!(key = %live, %error, "the live mark could not be removed: the slot's uploads are left to the bucket's lifecycle rule");
            }
        }
        outcome
    }

    /// Records beside the dump's key that the deadline cut this run off:
    /// what sends the next run of an `auto` database to the task.
    async fn record_cut(&self, target: &Target, bytes: u64) {
        let cut = serde_json::json!({"run": target.run, "bytes": bytes, "at": Utc::now()});
        if let Err(error) = self.put_record(target, CUT_SUFFIX, &cut, None).await {
            tracing::warn!(key = %target.key, %error, "the cut-off run could not be recorded: an `auto` database's next run stays in Lambda");
        }
    }

    /// Refuses to start a dump that its last run shows cannot finish before
    /// the deadline: the newest manifest of the database before this slot
    /// records how long that dump took.
    fn refuse_if_too_long(
        history: &History,
        stop_at: tokio::time::Instant,
    ) -> Result<(), DumpError> {
        let Some((key, took)) = &history.last_dump else {
            return Ok(());
        };
        let left = stop_at.saturating_duration_since(tokio::time::Instant::now());
        if *took <= left.as_secs_f64() {
            return Ok(());
        }
        Err(DumpError::PgDump(format!(
            "not started: its last dump ({key}) took {took:.0} s, and this run has {} s before the Lambda deadline, so it would be cut off; give it `\"runner\": \"task\"` (or `auto`) with pg_dump.task in Terraform, or dump it where no deadline stops it (lifeboat run pg-dump)",
            left.as_secs()
        )))
    }

    /// What the database's runs before `slot` left (this month's and last
    /// month's): its newest dump and how long that took, and whether a Lambda
    /// run was cut off by the deadline since. Unknown history is none.
    async fn history(&self, target: &Target, slot: lifeboat::Slot) -> Result<History, String> {
        // `<prefix><name>/<yyyy>/<mm>/<dd>/<file>`: this month's and last month's folders.
        let Some(database) = target.key.rsplitn(5, '/').nth(4) else {
            return Ok(History::default());
        };
        let time = slot.time();
        let Some(last_month) = time.checked_sub_months(chrono::Months::new(1)) else {
            return Ok(History::default());
        };
        let plan = naming::parse_dump_key(&target.key).map(|k| k.plan);
        let mut dumps = Vec::new();
        let mut cuts = Vec::new();
        let mut handed = false;
        let mut tasks = Vec::new();
        for month in [last_month, time] {
            let prefix = format!("{database}/{}/", month.format("%Y/%m"));
            let listed = self
                .s3
                .list_objects_v2()
                .bucket(&target.bucket)
                .prefix(&prefix)
                .into_paginator()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await;
            let pages = match listed {
                Ok(pages) => pages,
                Err(e) => {
                    return Err(format!(
                        "its earlier runs are unknown (ListObjectsV2 {prefix}: {})",
                        lifeboat::aws::summarize(&e)
                    ));
                }
            };
            for key in pages
                .iter()
                .flat_map(|p| p.contents())
                .filter_map(|o| o.key())
            {
                if key == format!("{}{TASK_SUFFIX}", target.key) {
                    handed = true;
                    continue;
                }
                if let Some(dump) = key.strip_suffix(TASK_SUFFIX)
                    && let Some(earlier) = naming::parse_dump_key(dump)
                    && earlier.slot < slot
                    && Some(&earlier.plan) == plan.as_ref()
                {
                    tasks.push((earlier.slot, dump.to_owned()));
                    continue;
                }
                // A cut of this very slot counts: its rerun would be cut again.
                let (dump, list, this_slot) =
                    if let Some(dump) = key.strip_suffix(naming::MANIFEST_SUFFIX) {
                        (dump, &mut dumps, false)
                    } else if let Some(dump) = key.strip_suffix(CUT_SUFFIX) {
                        (dump, &mut cuts, true)
                    } else {
                        continue;
                    };
                if let Some(at) = naming::parse_dump_key(dump).map(|k| k.slot)
                    && (at < slot || (this_slot && at == slot))
                {
                    list.push((at, dump.to_owned()));
                }
            }
        }
        // Every earlier slot handed to a task that has no dump, newest first.
        tasks.sort_unstable_by(|a, b| b.cmp(a));
        let unfinished = tasks
            .into_iter()
            .map(|(_, dump)| dump)
            .filter(|dump| !dumps.iter().any(|(_, done)| done == dump))
            .collect();
        let newest = dumps.into_iter().max();
        let cut = cuts
            .iter()
            .any(|(at, _)| newest.as_ref().is_none_or(|(dumped, _)| at > dumped));
        let last_dump = match newest {
            Some((_, dump)) => self
                .read_json::<serde_json::Value>(&target.bucket, &naming::manifest_key(&dump))
                .await
                .ok()
                .flatten()
                .and_then(|m| m["duration_seconds"].as_f64())
                .map(|took| (dump, took)),
            None => None,
        };
        Ok(History {
            last_dump,
            cut,
            handed,
            unfinished,
        })
    }

    /// A run without a deadline (the task, or a rerun by hand) whose dump of
    /// a slot handed to the task failed says so on the slot's task record:
    /// this run's own alert tells of it (or, if that cannot be sent, the
    /// task's stop rule, on its exit 3), so later runs' look back need not.
    async fn record_told_failure(&self, target: &Target, error: &str) {
        let key = format!("{}{TASK_SUFFIX}", target.key);
        let read = self.read_json_tagged::<TaskRecord>(&target.bucket, &key);
        let (record, e_tag) = match read.await {
            Ok(Some((record, e_tag))) if record.stopped.is_none() => (record, e_tag),
            Ok(_) => return,
            Err(why) => {
                tracing::warn!(record = %key, %why, "the slot's task record could not be read: a later run may tell of this failure again");
                return;
            }
        };
        let why = format!("its run failed, and said so: {error}");
        match self.record_stop(target, record, e_tag, why).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(record = %key, "a later run recorded the task's end first and told of it, or the record changed hands or is gone");
            }
            Err(why) => {
                tracing::warn!(record = %key, %why, "the failure could not be recorded: a later run may tell of it again");
            }
        }
    }

    /// Records on a slot's task record, as read (`e_tag`), that its task
    /// stopped (`why`), so that one run tells of it: written only over that
    /// read (`If-Match`), and once more over a newer read that still names
    /// the task as running (a write that S3 refused as conflicting, 409).
    /// Whether this run recorded it; not when another run did first, the
    /// slot was handed to a task again, or the record is gone. An error
    /// (the record unreadable after a refusal, or refused twice) leaves the
    /// telling to the caller: told twice rather than by no one.
    async fn record_stop(
        &self,
        target: &Target,
        mut record: TaskRecord,
        mut e_tag: Option<String>,
        why: String,
    ) -> Result<bool, String> {
        let key = format!("{}{TASK_SUFFIX}", target.key);
        for _ in 0..2 {
            record.stopped = Some(why.clone());
            match self
                .put_record(target, TASK_SUFFIX, &record, e_tag.as_deref())
                .await
            {
                Ok(_) => return Ok(true),
                Err(error) if error.key_taken() => {}
                Err(error) => return Err(error.to_string()),
            }
            match self
                .read_json_tagged::<TaskRecord>(&target.bucket, &key)
                .await?
            {
                Some((now, tag)) if now.stopped.is_none() && now.task_arn == record.task_arn => {
                    (record, e_tag) = (now, tag);
                }
                _ => return Ok(false),
            }
        }
        Err("the record changed under each write".into())
    }

    /// Where `run` writes the dump of `label` at `key` (and its records):
    /// tagged as the backup, encrypted with the configured key.
    fn target(&self, bucket: &str, key: &str, label: &BackupLabel, run: String) -> Target {
        Target {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            tagging: upload::tagging(&label.tags()),
            kms_key_id: self.settings.kms_key_id.clone(),
            run,
        }
    }

    /// Looks back at an earlier slot's task that has no dump (`dump`, the
    /// key it was to write): a notice if it still runs, or, once, if it
    /// stopped without its dump (recorded on its task record, so that later
    /// runs tell it no more, nor a run at once: [`Self::record_stop`]). The
    /// EventBridge rule on the task's stop tells of the stop when it happens;
    /// this tells that the slot has no dump, and catches what the rule could
    /// not deliver. A look that fails is logged: it is no failure of this
    /// run's dump.
    async fn look_back(
        &self,
        tasks: &task::Tasks<'_>,
        bucket: &str,
        dump: &str,
        now: chrono::DateTime<Utc>,
    ) -> Option<Notice> {
        let record_key = format!("{dump}{TASK_SUFFIX}");
        let looked = async {
            let (record, read): (TaskRecord, _) = self
                .read_json_tagged(bucket, &record_key)
                .await?
                .ok_or("it is gone")?;
            if record.stopped.is_some() {
                return Ok((record, read, Vec::new()));
            }
            let seen = tasks
                .describe(vec![record.task_arn.clone()])
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((record, read, seen))
        };
        let (record, read, seen) = match looked.await {
            Ok(found) => found,
            Err(why) => {
                tracing::warn!(record = %record_key, %why, "the earlier slot's task could not be looked at");
                return None;
            }
        };
        let earlier = naming::parse_dump_key(dump)?;
        let what = format!(
            "pg-dump's task of {} for slot {} ({})",
            earlier.database, earlier.slot, record.task_arn
        );
        match task::previous(&record, seen.first(), now)? {
            task::Previous::Running => Some(Notice {
                subject: format!(
                    "Lifeboat pg-dump: {}'s dump of slot {} still runs at the next slot",
                    earlier.database, earlier.slot
                ),
                body: format!(
                    "{what} was handed its dump at {} and still runs. This run goes on with its own slot; \
                     if a dump takes longer than the schedule's interval, give the task more cpu, or dump less often.\n",
                    record
                        .dispatched_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
                attributes: Vec::new(),
            }),
            task::Previous::Stopped(why) => {
                let label = BackupLabel::new(&earlier.plan, &earlier.database, earlier.slot);
                let target = self.target(bucket, dump, &label, lifeboat::runtime::run_token());
                match self.record_stop(&target, record, read, why.clone()).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::info!(record = %record_key, "since this run read the record, another run recorded the task's end (the task's own run its failure, or a duplicate of this run its look), handed the slot to a task again, or removed the record: this run does not tell of it");
                        return None;
                    }
                    Err(error) => {
                        tracing::warn!(record = %record_key, %error, "told of a stopped task, but not recorded: a later run tells it again");
                    }
                }
                Some(Notice {
                    subject: format!(
                        "Lifeboat pg-dump: no dump of {} for slot {}: its task stopped",
                        earlier.database, earlier.slot
                    ),
                    body: format!(
                        "{what} stopped without writing its dump ({dump}): {why}.\n\n\
                         That slot has no dump; this run dumps {} at its own slot. \
                         The task's log is in its log group (/ecs/<prefix>pg-dump).\n",
                        earlier.database
                    ),
                    attributes: Vec::new(),
                })
            }
        }
    }

    /// The JSON object at `key`; none if there is none.
    async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<T>, String> {
        Ok(self
            .read_json_tagged(bucket, key)
            .await?
            .map(|(value, _)| value))
    }

    /// [`Self::read_json`], with the object's ETag: to write it again only
    /// over what was read (`If-Match`).
    async fn read_json_tagged<T: serde::de::DeserializeOwned>(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(T, Option<String>)>, String> {
        let out = match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(format!("GetObject {key}: {}", lifeboat::aws::summarize(&e))),
        };
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| format!("GetObject {key}: {e}"))?
            .into_bytes();
        serde_json::from_slice(&body)
            .map(|value| Some((value, out.e_tag)))
            .map_err(|e| format!("{key} is not the record pg-dump writes: {e}"))
    }

    /// Writes a small record beside a dump (`<key><suffix>`), tagged as the
    /// dump is and with `lifeboat:record`, replacing an earlier one; with
    /// `if_match`, only the one of that ETag (S3: 412 `PreconditionFailed`
    /// for another, 404 `NoSuchKey` for none).
    async fn put_record(
        &self,
        target: &Target,
        suffix: &str,
        record: &impl serde::Serialize,
        if_match: Option<&str>,
    ) -> Result<upload::Written, UploadError> {
        let key = format!("{}{suffix}", target.key);
        let kind = suffix.trim_start_matches('.').trim_end_matches(".json");
        let tagging = format!(
            "{}&{}",
            target.tagging,
            upload::tagging(&[("lifeboat:record", kind.to_owned())])
        );
        let mut request = self
            .s3
            .put_object()
            .bucket(&target.bucket)
            .key(&key)
            .tagging(tagging)
            .metadata(upload::RUN_METADATA, &target.run)
            .content_type("application/json")
            .set_if_match(if_match.map(str::to_owned))
            .body(
                serde_json::to_vec_pretty(record)
                    .map_err(|e| {
                        UploadError::new("PutObject", format!("the record of {key}: {e}"))
                    })?
                    .into(),
            );
        if let Some(kms) = &target.kms_key_id {
            request = request
                .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms);
        }
        match request.send().await {
            Ok(out) => Ok(upload::Written {
                version_id: out.version_id,
                e_tag: out.e_tag,
            }),
            Err(e) => {
                let error = UploadError::aws("PutObject", &e);
                Err(UploadError {
                    message: format!("{key}: {}", error.message),
                    ..error
                })
            }
        }
    }

    /// Hands the slot's dump of `db` to the task: starts it, unless one of
    /// the slot is running, and records it beside the dump's key.
    async fn hand_to_task(
        &self,
        db: &Database,
        target: &Target,
        request: &Request<PgDumpFields>,
        prefix: &str,
        now: chrono::DateTime<Utc>,
    ) -> Result<Dispatched, ItemError> {
        let Some(settings) = &self.settings.task else {
            return Err(ItemError::new(
                "this pg-dump has no task (LIFEBOAT_TASK_CLUSTER)",
            ));
        };
        let tasks = task::Tasks::new(&self.ecs, settings);
        let name = task::started_by(
            &request.plan,
            &db.name,
            request.slot,
            &target.bucket,
            prefix,
        );
        let last: Option<TaskRecord> = self
            .read_json(&target.bucket, &format!("{}{TASK_SUFFIX}", target.key))
            .await
            .map_err(ItemError::new)?;
        let payload = task::task_payload(&request.plan, request.slot, db, &target.bucket, prefix);
        let command = ["run", "pg-dump", "--payload", &payload.to_string()]
            .map(str::to_owned)
            .to_vec();
        let dispatched = tasks.dispatch(&name, command, last.as_ref(), now).await?;
        if let Dispatched::Started(record) = &dispatched
            && let Err(error) = self.put_record(target, TASK_SUFFIX, record, None).await
        {
            // The task runs all the same; a rerun replays its start by its token.
            tracing::warn!(key = %target.key, %error, "the slot's task record could not be written");
        }
        Ok(dispatched)
    }

    /// Streams `pg_dump` of `db` into `target`, checks it, then writes the manifest.
    #[allow(clippy::too_many_arguments)]
    async fn dump_streamed(
        &self,
        db: &Database,
        tool: &PgTool,
        target: &Target,
        request: &Request<PgDumpFields>,
        stop_at: Option<tokio::time::Instant>,
        login: secret::Credentials,
        security: Vec<(&'static str, std::ffi::OsString)>,
    ) -> Result<Manifest, DumpError> {
        let target = target.clone();
        let started = Utc::now();
        let clock = Instant::now();
        tracing::info!(database = %db.name, host = %db.host, dbname = %db.dbname, key = %target.key, pg_dump = %tool.version, "dump started");
        let mut child = tool
            .command(db, &login, security)
            .spawn()
            .map_err(DumpError::Spawn)?;
        drop(login);
        let stdout = child.stdout.take();
        let stderr = child
            .stderr
            .take()
            .map(|s| tokio::spawn(tool::read_tail(s)));
        let mut upload = StreamingUpload::new(self.s3.clone(), target.clone(), self.settings.parts);
        let mut streamed = Streamed::new(db.format);
        let work = async {
            if let Some(mut stdout) = stdout {
                streamed.pump(&mut stdout, &mut upload, &db.name).await?;
            }
            let status = child.wait().await.map_err(DumpError::Read)?;
            let stderr = match stderr {
                Some(task) => task.await.unwrap_or_default(),
                None => String::new(),
            };
            if !status.success() {
                return Err(DumpError::PgDump(tool.explain(status, &stderr)));
            }
            let summary = streamed.check.finish()?;
            let written = match upload.finish().await {
                Ok(written) => written,
                Err(e) if e.key_taken() => (upload.parts(), self.own_or_taken(&target, e).await?),
                Err(e) => return Err(e.into()),
            };
            Ok((summary, written))
        };
        let outcome = match stop_at {
            Some(at) => tokio::time::timeout_at(at, work)
                .await
                .unwrap_or(Err(DumpError::Deadline(streamed.size))),
            // A run without a deadline ends when it is told to, cleanly.
            None => tokio::select! {
                outcome = work => outcome,
                signal = stop_signal() => Err(DumpError::Stopped(signal, streamed.size)),
            },
        };
        let (summary, (parts, written)) = match outcome {
            Ok(done) => done,
            Err(e) => {
                let _ = child.start_kill();
                // The cut first: the clean-up may outlast the margin.
                if let DumpError::Deadline(bytes) = &e {
                    self.record_cut(&target, *bytes).await;
                }
                upload.abort().await;
                if upload.completion_sent() && !matches!(e, DumpError::Taken(_)) {
                    // S3 may have made the object even though we saw no answer.
                    self.remove_torn_dump(&target).await;
                }
                return Err(e);
            }
        };
        let finished = Utc::now();
        let manifest = Manifest {
            manifest_version: manifest::MANIFEST_VERSION,
            pg_restore_needs: summary
                .archive_version
                .as_deref()
                .and_then(manifest::pg_restore_needs),
            key: target.key.clone(),
            version_id: written.version_id.clone(),
            e_tag: written.e_tag.clone(),
            bucket: target.bucket.clone(),
            database: db.name.clone(),
            host: db.host.clone(),
            dbname: db.dbname.clone(),
            plan: request.plan.to_string(),
            scheduled_time: request.slot.to_string(),
            format: db.format,
            jobs: None,
            files: None,
            size_bytes: streamed.size,
            sha256: hex(&streamed.hasher.finalize()),
            parts,
            pg_dump_version: tool.version.clone(),
            archive: summary,
            started_at: started,
            finished_at: finished,
            duration_seconds: clock.elapsed().as_secs_f64(),
        };
        if let Err(e) = self.put_manifest(&target, &manifest).await? {
            // The write may have landed with its answer lost: then the dump is complete.
            if self.remove_torn_dump(&target).await {
                return Err(e.into());
            }
            tracing::warn!(key = %target.key, error = %e, "the manifest was written after all");
        }
        tracing::info!(
            database = %db.name,
            key = %target.key,
            bytes = manifest.size_bytes,
            sha256 = %manifest.sha256,
            seconds = manifest.duration_seconds,
            toc_entries = ?manifest.archive.toc_entries,
            "dump complete"
        );
        Ok(manifest)
    }
}

impl PgDump {
    /// Claims a parallel dump's slot for this run (`<key>.claim.json`,
    /// written only if free). Another run's claim renewed within `stale`
    /// makes this run stand aside; an older one is a dead run's, and its
    /// versions are deleted, oldest first, until the key is free. Once the
    /// slot is this run's: a manifest written meanwhile (another run
    /// finished) makes it stand aside; otherwise whatever a dead run left
    /// under the key is deleted.
    async fn claim_parallel(
        &self,
        target: &Target,
        stale: chrono::Duration,
    ) -> Result<Claim, DumpError> {
        let claim = self.claim_target(target);
        let body = serde_json::json!({"run": target.run, "at": Utc::now()}).to_string();
        let mut held = None;
        for _ in 0..CLAIM_ATTEMPTS {
            let sent = tokio::time::Instant::now();
            match upload::put_object(&self.s3, &claim, body.clone().into()).await {
                Ok(written) => {
                    held = Some(Claim::new(written.version_id, written.e_tag, sent));
                    break;
                }
                Err(e) if e.key_taken() => {}
                Err(e) => return Err(e.into()),
            }
            let found = self
                .object(&target.bucket, &claim.key)
                .await
                .map_err(DumpError::PgDump)?;
            let Some(found) = found else { continue };
            if found.run == target.run {
                // This run's own write, its answer lost and the retry refused.
                held = Some(Claim::new(
                    found.version_id,
                    found.e_tag,
                    instant_of(found.written),
                ));
                break;
            }
            if found.written > SystemTime::from(Utc::now() - stale) {
                return Err(DumpError::Taken(format!(
                    "another run (run {}) is dumping this slot; if that run died, a run {} minutes after its last sign of life takes the slot",
                    found.run,
                    stale.num_minutes()
                )));
            }
            // A dead run's: its newest version goes, and an older one of its
            // renewals (older still) is looked at next.
            self.delete_version(&target.bucket, &claim.key, found.version_id)
                .await
                .map_err(DumpError::PgDump)?;
            tracing::info!(key = %target.key, run = %found.run, "removed a dead run's claim");
        }
        let Some(held) = held else {
            return Err(DumpError::Taken(
                "other runs kept claiming this slot; this run stands aside".into(),
            ));
        };
        // Held: no other run writes under the key from now on.
        let manifest = naming::manifest_key(&target.key);
        match self.manifest_exists(&target.bucket, &manifest).await {
            Ok(false) => {}
            done => {
                self.drop_claim(target, held).await;
                return Err(match done {
                    Ok(_) => {
                        DumpError::Taken("another run finished this slot's dump moments ago".into())
                    }
                    Err(e) => DumpError::PgDump(e),
                });
            }
        }
        if let Err(e) = self.remove_leftovers(target).await {
            self.drop_claim(target, held).await;
            return Err(e);
        }
        Ok(held)
    }

    /// Where the claim of a parallel dump's slot is written.
    fn claim_target(&self, target: &Target) -> Target {
        Target {
            key: format!("{}{CLAIM_SUFFIX}", target.key),
            tagging: format!(
                "{}&{}",
                target.tagging,
                upload::tagging(&[("lifeboat:record", "claim".to_owned())])
            ),
            ..target.clone()
        }
    }

    /// Writes the claim again every `every`, for as long as it is polled;
    /// returns only when the claim is lost ([`Self::renew_claim`]), or could
    /// not be renewed for `lapse`: another run may then take it for a dead
    /// run's at any moment.
    async fn keep_claim(
        &self,
        target: &Target,
        claim: &Claim,
        (every, lapse): (std::time::Duration, std::time::Duration),
    ) -> DumpError {
        let mut wait = every.saturating_sub(claim.age());
        loop {
            tokio::time::sleep(wait).await;
            wait = match self.renew_before_lapse(target, claim, lapse).await {
                Renewal::Renewed => every,
                // At once: it may be old.
                Renewal::Adopted => std::time::Duration::ZERO,
                Renewal::Failed(error) => {
                    tracing::warn!(key = %target.key, %error, "the slot's claim could not be renewed: trying again shortly");
                    CLAIM_RETRY
                        .min(every)
                        .min(lapse.saturating_sub(claim.age()))
                }
                Renewal::Lost(lost) => return lost,
            };
        }
    }

    /// [`Self::renew_claim`], cut off when the claim has gone unrenewed for
    /// `lapse`: then the claim is lost, as another run could soon take it
    /// for a dead run's.
    async fn renew_before_lapse(
        &self,
        target: &Target,
        claim: &Claim,
        lapse: std::time::Duration,
    ) -> Renewal {
        let renewal =
            tokio::time::timeout_at(claim.written() + lapse, self.renew_claim(target, claim))
                .await
                .unwrap_or_else(|_| Renewal::Failed("S3 did not answer in time".into()));
        match renewal {
            Renewal::Failed(error) if claim.age() >= lapse => {
                Renewal::Lost(DumpError::PgDump(format!(
                    "the slot's claim ({}{CLAIM_SUFFIX}) could not be renewed for {} s (last: {error}): another run could soon take this one for dead and dump the slot too, so this run stops and removes its files",
                    target.key,
                    claim.age().as_secs()
                )))
            }
            renewal => renewal,
        }
    }

    /// Writes the claim again, only over this run's last write (`If-Match`
    /// its ETag). A claim written over or deleted since is lost, unless the
    /// write was a renewal of this run's whose answer was lost: a version
    /// of this run's that it does not know yet. One it knows is an older
    /// renewal, current again because another run is deleting this run's
    /// claim: a run that took this one for dead (no renewal for as long as
    /// `stale`, while S3 could not be reached, say), and dumps the slot
    /// itself.
    async fn renew_claim(&self, target: &Target, claim: &Claim) -> Renewal {
        let key = format!("{}{CLAIM_SUFFIX}", target.key);
        let body = serde_json::json!({"run": target.run, "at": Utc::now()});
        let sent = tokio::time::Instant::now();
        let error = match self
            .put_record(target, CLAIM_SUFFIX, &body, claim.e_tag().as_deref())
            .await
        {
            Ok(written) => {
                claim.add(written.version_id, written.e_tag, sent);
                return Renewal::Renewed;
            }
            Err(error) => error,
        };
        if !matches!(
            error.code.as_deref(),
            Some("PreconditionFailed" | "NoSuchKey")
        ) {
            return Renewal::Failed(error.to_string());
        }
        match self.object(&target.bucket, &key).await {
            Ok(Some(found)) if found.run == target.run && !claim.knows(&found.version_id) => {
                claim.add(found.version_id, found.e_tag, instant_of(found.written));
                Renewal::Adopted
            }
            Ok(found) => {
                let by = found.map_or("deleted".to_owned(), |f| format!("now run {}'s", f.run));
                Renewal::Lost(DumpError::Taken(format!(
                    "this run's claim of the slot is {by}: another run took this one for dead and dumps the slot; this run stops and removes its files"
                )))
            }
            Err(error) => Renewal::Failed(format!(
                "the claim could not be read after a refused renewal: {error}"
            )),
        }
    }

    /// Deletes every version of this run's claim: those it knows, then
    /// newer ones of its own that it does not (a renewal cut off at the
    /// lapse, or whose answer was lost, may still have landed).
    async fn drop_claim(&self, target: &Target, claim: Claim) {
        let key = format!("{}{CLAIM_SUFFIX}", target.key);
        let known = claim
            .versions
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .map(Some);
        // Oldest first: deleting the newest version of a key makes the one
        // before it current again, and an old claim looks like a dead run's.
        // Then the newest, while it is this run's by its metadata: only the
        // newest can be unseen (a renewal after an unseen one is refused,
        // and adopts it); looked at twice, for a deletion that failed once.
        for version in known.chain([None, None]) {
            let version = match version {
                Some(known) => known,
                None => match self.object(&target.bucket, &key).await {
                    Ok(Some(found)) if found.run == target.run => found.version_id,
                    Ok(_) => return,
                    Err(error) => {
                        tracing::warn!(%key, %error, "the claim could not be read after its removal: a renewal of this run's that landed unseen is left to the bucket's lifecycle rule");
                        return;
                    }
                },
            };
            if let Err(error) = self.delete_version(&target.bucket, &key, version).await {
                tracing::warn!(%key, %error, "the slot's claim could not be removed: the bucket's lifecycle rule expires it");
            }
        }
    }

    /// Deletes what dead runs left under a parallel dump's key (the slot
    /// is this run's claim, and has no manifest): every object's current
    /// version, in batches.
    async fn remove_leftovers(&self, target: &Target) -> Result<(), DumpError> {
        let left = directory::list_under(&self.s3, target, |_| false)
            .await
            .map_err(DumpError::PgDump)?;
        if left.is_empty() {
            return Ok(());
        }
        tracing::info!(key = %target.key, objects = left.len(), "removing what a dead run left");
        let left = left
            .into_iter()
            .map(|(key, version, _)| (key, version))
            .collect();
        directory::delete_versions(&self.s3, &target.bucket, left)
            .await
            .map_err(|e| DumpError::PgDump(format!("a dead run's files could not be removed: {e}")))
    }

    /// `pg_dump -Fd -j N` of `db` into local storage, each file uploaded
    /// under `target.key` as pg_dump writes it ([`directory`]), checked, then
    /// the manifest listing every file. The slot's `claim` is written again
    /// every minute, so that it is never stale while this run works, however
    /// long, and once more before the manifest; found lost, it ends the
    /// dump as the deadline does.
    #[allow(clippy::too_many_arguments)]
    async fn dump_parallel(
        &self,
        db: &Database,
        tool: &PgTool,
        target: &Target,
        request: &Request<PgDumpFields>,
        stop_at: Option<tokio::time::Instant>,
        login: secret::Credentials,
        security: Vec<(&'static str, std::ffi::OsString)>,
        claim: &Claim,
    ) -> Result<Manifest, DumpError> {
        let started = Utc::now();
        let clock = Instant::now();
        let scratch = directory::Scratch::new(&target.run).map_err(DumpError::PgDump)?;
        let dir = scratch.dir();
        let mut watch = directory::Watch::new(&dir).map_err(DumpError::PgDump)?;
        tracing::info!(database = %db.name, host = %db.host, dbname = %db.dbname, key = %target.key, jobs = db.jobs, local = %dir.display(), pg_dump = %tool.version, "parallel dump started");
        let mut command = tool.command(db, &login, security);
        command
            .arg(format!("--jobs={}", db.jobs))
            // Each file is uploaded and removed: nothing to sync to local disk.
            .arg("--no-sync")
            .arg("--file")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            // Its own process group, so that its workers are stopped with it.
            .process_group(0);
        let mut child = command.spawn().map_err(DumpError::Spawn)?;
        drop(login);
        let stderr = child
            .stderr
            .take()
            .map(|s| tokio::spawn(tool::read_tail(s)));
        let mut files = directory::Files::new(
            self.s3.clone(),
            target.clone(),
            self.settings.parts,
            dir,
            usize::from(db.jobs),
        );
        let work = async {
            let dumping = async {
                let status = child.wait().await.map_err(DumpError::Read)?;
                let stderr = match stderr {
                    Some(task) => task.await.unwrap_or_default(),
                    None => String::new(),
                };
                if !status.success() {
                    return Err(DumpError::PgDump(tool.explain(status, &stderr)));
                }
                Ok(())
            };
            let uploading = async {
                files
                    .run(&mut watch, dumping, Result::is_ok, &db.name)
                    .await??;
                Ok(files.summary()?)
            };
            tokio::select! {
                outcome = uploading => outcome,
                lost = self.keep_claim(target, claim, (CLAIM_EVERY, CLAIM_LAPSE)) => Err(lost),
            }
        };
        let outcome = match stop_at {
            Some(at) => tokio::time::timeout_at(at, work)
                .await
                .unwrap_or(Err(DumpError::Deadline(0))),
            None => tokio::select! {
                outcome = work => outcome,
                signal = stop_signal() => Err(DumpError::Stopped(signal, 0)),
            },
        };
        let summary = match outcome {
            Ok(summary) => summary,
            Err(e) => {
                directory::stop(&mut child).await;
                let e = match e {
                    DumpError::Deadline(_) => DumpError::Deadline(files.bytes()),
                    DumpError::Stopped(signal, _) => DumpError::Stopped(signal, files.bytes()),
                    e => e,
                };
                // The cut first: the clean-up of many files may outlast the margin.
                if let DumpError::Deadline(bytes) = &e {
                    self.record_cut(target, *bytes).await;
                }
                files.remove().await;
                return Err(e);
            }
        };
        drop(scratch);
        let mut listed: Vec<_> = files.done.iter().map(|(file, _)| file.clone()).collect();
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        let manifest = Manifest {
            manifest_version: manifest::MANIFEST_VERSION,
            pg_restore_needs: summary
                .archive_version
                .as_deref()
                .and_then(manifest::pg_restore_needs),
            key: target.key.clone(),
            version_id: None,
            e_tag: None,
            bucket: target.bucket.clone(),
            database: db.name.clone(),
            host: db.host.clone(),
            dbname: db.dbname.clone(),
            plan: request.plan.to_string(),
            scheduled_time: request.slot.to_string(),
            format: DumpFormat::Directory,
            jobs: Some(db.jobs),
            size_bytes: listed.iter().map(|f| f.size_bytes).sum(),
            sha256: lifeboat::postgres::directory::listing_sha256(&listed),
            parts: i32::try_from(listed.len()).unwrap_or(i32::MAX),
            files: Some(listed),
            pg_dump_version: tool.version.clone(),
            archive: summary,
            started_at: started,
            finished_at: Utc::now(),
            duration_seconds: clock.elapsed().as_secs_f64(),
        };
        // A run that lost the slot while its last files went up records nothing.
        match self.renew_before_lapse(target, claim, CLAIM_LAPSE).await {
            Renewal::Renewed | Renewal::Adopted => {}
            Renewal::Failed(error) => {
                tracing::warn!(key = %target.key, %error, "the slot's claim could not be renewed before the manifest: the manifest is written only if none is there");
            }
            Renewal::Lost(lost) => {
                files.remove().await;
                return Err(lost);
            }
        }
        if let Err(e) = self.put_manifest(target, &manifest).await? {
            let manifest_key = naming::manifest_key(&target.key);
            match self.manifest_exists(&target.bucket, &manifest_key).await {
                Ok(true) => {
                    tracing::warn!(key = %manifest_key, error = %e, "the manifest was written after all")
                }
                Ok(false) => {
                    files.remove().await;
                    return Err(e.into());
                }
                // Unknown: the files stay; without a manifest they never count.
                Err(_) => return Err(e.into()),
            }
        }
        tracing::info!(
            database = %db.name,
            key = %target.key,
            files = manifest.parts,
            bytes = manifest.size_bytes,
            sha256 = %manifest.sha256,
            seconds = manifest.duration_seconds,
            "parallel dump complete"
        );
        Ok(manifest)
    }
}

/// When a run must stop, and how old an upload must be to be a dead run's.
#[derive(Debug, Clone, Copy)]
struct Limits {
    stop_at: Option<tokio::time::Instant>,
    stale: chrono::Duration,
}

/// An object found at a key: its version, when it was written, and by which run.
struct Stored {
    version_id: Option<String>,
    e_tag: Option<String>,
    written: SystemTime,
    run: String,
}

/// The running totals of a dump as it streams: size, hash, structure check, progress.
struct Streamed {
    size: u64,
    hasher: Sha256,
    check: Check,
}

enum Check {
    Custom(Box<CustomArchiveCheck>),
    Plain(PlainDumpCheck),
}

impl Check {
    fn feed(&mut self, bytes: &[u8]) -> Result<(), ArchiveError> {
        match self {
            Check::Custom(c) => c.feed(bytes),
            Check::Plain(c) => {
                c.feed(bytes);
                Ok(())
            }
        }
    }

    fn finish(&mut self) -> Result<ArchiveSummary, ArchiveError> {
        // Once per dump: what is left behind is an empty check.
        match self {
            Check::Custom(c) => std::mem::take(c).finish(),
            Check::Plain(c) => std::mem::take(c).finish(),
        }
    }
}

impl Streamed {
    fn new(format: DumpFormat) -> Self {
        Streamed {
            size: 0,
            hasher: Sha256::new(),
            check: match format {
                // A directory dump is checked file by file ([`directory`]).
                DumpFormat::Custom | DumpFormat::Directory => Check::Custom(Box::default()),
                DumpFormat::Plain => Check::Plain(PlainDumpCheck::new()),
            },
        }
    }

    /// Moves `pg_dump`'s output into the upload until it ends, checking it on the way.
    async fn pump(
        &mut self,
        stdout: &mut tokio::process::ChildStdout,
        upload: &mut StreamingUpload,
        database: &str,
    ) -> Result<(), DumpError> {
        let mut buffer = vec![0u8; 256 << 10];
        let started = Instant::now();
        let mut next_report = started + PROGRESS_EVERY;
        loop {
            let n = stdout.read(&mut buffer).await.map_err(DumpError::Read)?;
            if n == 0 {
                return Ok(());
            }
            let bytes = &buffer[..n];
            self.hasher.update(bytes);
            self.check.feed(bytes)?;
            upload.write(bytes).await?;
            self.size += n as u64;
            if Instant::now() >= next_report {
                next_report += PROGRESS_EVERY;
                let seconds = started.elapsed().as_secs_f64();
                tracing::info!(
                    database,
                    bytes = self.size,
                    mb_per_s = format!("{:.1}", self.size as f64 / 1e6 / seconds),
                    "dumping"
                );
            }
        }
    }
}

/// The moment `time` (a wall-clock time in the past), on the clock that
/// measures durations here.
fn instant_of(time: SystemTime) -> tokio::time::Instant {
    let ago = SystemTime::now().duration_since(time).unwrap_or_default();
    let now = tokio::time::Instant::now();
    now.checked_sub(ago).unwrap_or(now)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl BackupFunction for PgDump {
    const NAME: &'static str = "pg-dump";
    type Fields = PgDumpFields;

    fn sinks(&self) -> &Sinks {
        &self.sinks
    }

    async fn run(
        &self,
        request: &Request<PgDumpFields>,
        invocation: &Invocation,
    ) -> Result<Report, Error> {
        let fields = &request.fields;
        let bucket = fields
            .bucket
            .clone()
            .or_else(|| self.settings.bucket.clone())
            .ok_or_else(|| {
                Error::Config(
                    "no dump bucket: give `bucket` in the payload or set LIFEBOAT_BUCKET".into(),
                )
            })?;
        let tool = PgTool::probe(PG_DUMP, &self.settings.pg_dump)
            .await
            .map_err(Error::Config)?;
        let stop_at = invocation.deadline.map(|deadline| {
            let left = deadline
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .saturating_sub(DEADLINE_MARGIN);
            tokio::time::Instant::now() + left
        });
        // A Lambda run's timeout: what its deadline was from the start. Its
        // uploads outlive it by no more than that; a run with no deadline
        // knows only that no Lambda run lasts more than 15 minutes.
        let timeout = invocation.deadline.map(|deadline| {
            deadline
                .duration_since(SystemTime::from(invocation.now))
                .unwrap_or_default()
        });
        let stale = match timeout {
            Some(timeout) => {
                chrono::Duration::from_std(timeout).unwrap_or(STALE_UPLOAD) + STALE_MARGIN
            }
            None => STALE_UPLOAD,
        };
        let limits = Limits { stop_at, stale };
        let mut report = request.report(Self::NAME);
        let run = lifeboat::runtime::run_token();
        let prefix = fields.key_prefix();
        let region = lifeboat::aws::region_name(self.s3.config().region());
        for (i, db) in fields.databases.iter().enumerate() {
            let key = naming::dump_key(
                &prefix,
                &db.name,
                &request.plan,
                request.slot,
                db.dump_format().extension(),
            );
            let failed = |error: String| Failed::new(Kind::PgDump, &db.name, ItemError::new(error));
            match self
                .manifest_exists(&bucket, &naming::manifest_key(&key))
                .await
            {
                Ok(true) => {
                    report.skipped.push(Skipped::new(
                        Kind::PgDump,
                        &db.name,
                        Some(key),
                        "already dumped for this slot (its manifest exists)",
                    ));
                    continue;
                }
                Ok(false) => {}
                Err(e) => {
                    report.failed.push(failed(e));
                    continue;
                }
            }
            if request.dry_run {
                report.created(Kind::PgDump, &db.name, key, &region, None);
                continue;
            }
            let label = BackupLabel::new(&request.plan, &db.name, request.slot);
            let target = self.target(&bucket, &key, &label, run.clone());
            // Only a run with a deadline chooses a runner or checks the time left.
            let history = match timeout {
                Some(_) => match self.history(&target, request.slot).await {
                    Ok(history) => history,
                    // With a task to hand to, an `auto` database whose past is
                    // unknown is not guessed at: it may be the task's already.
                    Err(why) if db.runner == Runner::Auto && self.settings.task.is_some() => {
                        report.failed.push(failed(why));
                        continue;
                    }
                    Err(why) => {
                        tracing::warn!(database = %db.name, %why, "dumped without its history");
                        History::default()
                    }
                },
                None => History::default(),
            };
            if let Some(settings) = &self.settings.task {
                let tasks = task::Tasks::new(&self.ecs, settings);
                for dump in &history.unfinished {
                    // Boxed: the run's future is deep enough without it inline.
                    let looked = Box::pin(self.look_back(&tasks, &bucket, dump, invocation.now));
                    if let Some(notice) = looked.await {
                        report.notices.push(notice);
                    }
                }
            }
            let choice =
                match task::choose(db.runner, &history, timeout, self.settings.task.is_some()) {
                    Ok(choice) => choice,
                    Err(why) => {
                        report
                            .failed
                            .push(failed(format!("databases[{i}].runner {why}")));
                        continue;
                    }
                };
            if let Choice::Task(reason) = choice {
                match self
                    .hand_to_task(db, &target, request, &prefix, invocation.now)
                    .await
                {
                    Ok(dispatched) => {
                        let (task, started) = match dispatched {
                            Dispatched::Started(record) => (record.task_arn, true),
                            Dispatched::Running(arn) => (arn, false),
                        };
                        tracing::info!(database = %db.name, %task, started, %reason, "handed to the task");
                        report.tasks.push(Handed {
                            source: db.name.clone(),
                            backup: key,
                            task,
                            started,
                            reason,
                        });
                    }
                    Err(e) => report.failed.push(Failed::new(
                        Kind::PgDump,
                        &db.name,
                        e.context("handing the dump to the task"),
                    )),
                }
                continue;
            }
            match self
                .dump(db, &tool, target, request, limits, &history)
                .await
            {
                Ok(_) => report.created(Kind::PgDump, &db.name, key, &region, None),
                Err(DumpError::Taken(why)) => {
                    tracing::warn!(database = %db.name, %why, "the slot's dump is another run's");
                    report
                        .skipped
                        .push(Skipped::new(Kind::PgDump, &db.name, Some(key), why));
                }
                Err(e) => {
                    tracing::error!(database = %db.name, error = %e, "dump failed");
                    if timeout.is_none() {
                        let target = self.target(&bucket, &key, &label, run.clone());
                        Box::pin(self.record_told_failure(&target, &e.to_string())).await;
                    }
                    report.failed.push(failed(e.to_string()));
                }
            }
        }
        Ok(report)
    }
}
