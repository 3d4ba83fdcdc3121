//! `restore-drill`: proves on a schedule that backups restore, and how long
//! it takes. Each run lists every drilled source's backups and its last
//! drill (list), decides which sources are due and which backup each drills
//! (plan, pure: `lifeboat::rules::drill`), restores, checks and times it
//! (execute), records the result beside the backup and reports it (report).
//!
//! A dump is restored into a throwaway PostgreSQL server that the function
//! starts in its temporary storage, from the exact object version its
//! manifest names, and checked as `lifeboat restore` checks it: size and
//! SHA-256 before the commit, every table's rows after. A failed drill (the
//! restore failed, a check did not hold, the RTO was exceeded) is a failure
//! of the run: one alert names the backup, the step and the reason.

pub mod databases;
pub mod dumps;
pub mod fields;
pub mod images;
pub mod volumes;

use chrono::{DateTime, Utc};
use fields::RestoreDrillFields;
use lifeboat::model::tag as tags;
use lifeboat::report::{Report, Skipped};
use lifeboat::runtime::{BackupFunction, Invocation, Sinks};
use lifeboat::{Error, Kind, Request};
use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

/// Where a drill finds its programs, its dumps and its scratch space.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `pg_restore` (`PG_RESTORE_PATH`, else the layer's, else the one on
    /// `PATH`); `psql` and the server programs are the ones beside it.
    pub pg_restore: Option<PathBuf>,
    /// The dump bucket when the payload names none (`LIFEBOAT_BUCKET`).
    pub bucket: Option<String>,
    /// Where throwaway servers live (`LIFEBOAT_DRILL_DIR`, default the temporary directory).
    pub scratch: PathBuf,
}

impl Settings {
    /// Reads the environment.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Settings {
            pg_restore: var("PG_RESTORE_PATH").map(PathBuf::from),
            bucket: var("LIFEBOAT_BUCKET"),
            scratch: var("LIFEBOAT_DRILL_DIR").map_or_else(std::env::temp_dir, PathBuf::from),
        }
    }
}

/// The `restore-drill` function with its clients.
pub struct RestoreDrill {
    ec2: aws_sdk_ec2::Client,
    rds: aws_sdk_rds::Client,
    s3: aws_sdk_s3::Client,
    secrets: aws_sdk_secretsmanager::Client,
    settings: Settings,
    sinks: Sinks,
}

impl RestoreDrill {
    /// The function over these clients, settings and sinks.
    pub fn new(
        ec2: aws_sdk_ec2::Client,
        rds: aws_sdk_rds::Client,
        s3: aws_sdk_s3::Client,
        secrets: aws_sdk_secretsmanager::Client,
        settings: Settings,
        sinks: Sinks,
    ) -> Self {
        RestoreDrill {
            ec2,
            rds,
            s3,
            secrets,
            settings,
            sinks,
        }
    }

    /// The function as configured by the environment.
    pub fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, Error> {
        Ok(Self::new(
            aws_sdk_ec2::Client::new(aws),
            aws_sdk_rds::Client::new(aws),
            lifeboat::aws::s3_client(aws),
            aws_sdk_secretsmanager::Client::new(aws),
            Settings::from_env(),
            Sinks::from_env(aws)?,
        ))
    }
}

impl BackupFunction for RestoreDrill {
    const NAME: &'static str = "restore-drill";
    type Fields = RestoreDrillFields;

    fn sinks(&self) -> &Sinks {
        &self.sinks
    }

    async fn run(
        &self,
        request: &Request<RestoreDrillFields>,
        invocation: &Invocation,
    ) -> Result<Report, Error> {
        let mut report = request.report(Self::NAME);
        if let Some(drills) = &request.fields.ebs {
            let driller = volumes::VolumeDriller { ec2: &self.ec2 };
            driller
                .run(request, drills, invocation, &mut report)
                .await?;
        }
        if let Some(drills) = &request.fields.amis {
            let driller = images::ImageDriller { ec2: &self.ec2 };
            driller
                .run(request, drills, invocation, &mut report)
                .await?;
        }
        // Dumps before databases: a dump drill cannot be resumed by the next
        // run, an RDS drill can (it waits only for what this run has left).
        if let Some(drills) = &request.fields.dumps {
            let bucket = drills
                .bucket
                .clone()
                .or_else(|| self.settings.bucket.clone())
                .ok_or_else(|| {
                    Error::Config(
                        "no dump bucket: give `dumps.bucket` in the payload or set LIFEBOAT_BUCKET"
                            .into(),
                    )
                })?;
            let driller = dumps::Driller {
                s3: &self.s3,
                secrets: &self.secrets,
                settings: &self.settings,
                bucket: &bucket,
            };
            driller
                .run(request, drills, invocation, &mut report)
                .await?;
        }
        if let Some(drills) = &request.fields.rds {
            let driller = databases::DatabaseDriller {
                rds: &self.rds,
                secrets: &self.secrets,
                pg_restore: self.settings.pg_restore.clone(),
            };
            driller
                .run(request, drills, invocation, &mut report)
                .await?;
        }
        Ok(report)
    }
}

/// A different number each run: which backup `random` falls on.
fn seed() -> u64 {
    let mut hasher = DefaultHasher::new();
    lifeboat::runtime::run_token().hash(&mut hasher);
    hasher.finish()
}

/// An idempotency token for a creation that duplicate deliveries of one run
/// must make once: the same `parts` give the same token (31 characters;
/// EC2 allows 64).
fn token(parts: &[&str]) -> String {
    let mut hasher = DefaultHasher::new();
    parts.hash(&mut hasher);
    format!("lifeboat-drill-{:016x}", hasher.finish())
}

/// A source left alone: its last drill, at `last`, is younger than `every`.
fn not_due(
    kind: Kind,
    source: &str,
    last: Option<DateTime<Utc>>,
    fields: &RestoreDrillFields,
) -> Skipped {
    Skipped::new(
        kind,
        source,
        None,
        format!(
            "last drilled at {}; the next drill is due {} after it",
            last.map(|t| t.to_rfc3339()).unwrap_or_default(),
            fields.every.as_deref().unwrap_or_default()
        ),
    )
}

/// A source's newest drill, from its backups' `lifeboat:drilled-at` tags.
fn last_drilled<'a>(
    backups: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> Option<DateTime<Utc>> {
    backups
        .filter_map(|tags| tags.get(tags::DRILLED_AT))
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .max()
}
