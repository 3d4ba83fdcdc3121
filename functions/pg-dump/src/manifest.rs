//! The manifest written beside each dump, last: its presence is what makes a
//! dump complete, and it says what a restore can check the dump against.

use crate::archive::ArchiveSummary;
use crate::fields::DumpFormat;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// `<key>.manifest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// The dump's key.
    pub key: String,
    /// The dump object's version: the one this manifest describes (`None`
    /// in a bucket without versioning).
    pub version_id: Option<String>,
    /// The dump object's ETag.
    pub e_tag: Option<String>,
    /// Its bucket.
    pub bucket: String,
    /// The database's name in the payload (the backup's source).
    pub database: String,
    /// The server it was dumped from.
    pub host: String,
    /// The database on that server.
    pub dbname: String,
    /// The plan that made it.
    pub plan: String,
    /// Its slot.
    pub scheduled_time: String,
    /// `custom` or `plain`.
    pub format: DumpFormat,
    /// The dump's size.
    pub size_bytes: u64,
    /// SHA-256 of the dump's bytes, hex.
    pub sha256: String,
    /// How many parts it was uploaded in.
    pub parts: i32,
    /// The `pg_dump` that made it.
    pub pg_dump_version: String,
    /// What the archive itself records: server version, TOC entries, data blocks.
    pub archive: ArchiveSummary,
    /// When `pg_dump` started.
    pub started_at: DateTime<Utc>,
    /// When the upload completed.
    pub finished_at: DateTime<Utc>,
    /// The difference, in seconds.
    pub duration_seconds: f64,
}
