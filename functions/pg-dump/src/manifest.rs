//! The manifest written beside each dump, last: its presence is what makes a
//! dump complete, and it says what a restore can check the dump against.

use crate::fields::DumpFormat;
use chrono::{DateTime, Utc};
use lifeboat::postgres::archive::ArchiveSummary;
use lifeboat::postgres::directory::DumpFile;
use serde::Serialize;

/// The manifest's schema: 2 adds the version and ETag of the dump object,
/// the fingerprint, and the pg_restore the archive needs; 3 adds directory
/// dumps (`format: directory`, `jobs`, `files`).
pub const MANIFEST_VERSION: u32 = 3;

/// `<key>.manifest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// The schema of this manifest ([`MANIFEST_VERSION`]).
    pub manifest_version: u32,
    /// The oldest `pg_restore` that reads the archive (`17`), for the custom format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pg_restore_needs: Option<u32>,
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
    /// `custom`, `plain` or `directory`.
    pub format: DumpFormat,
    /// pg_dump's parallel jobs, for a directory dump.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs: Option<u16>,
    /// A directory dump's files (objects `<key>/<name>`), in name order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<DumpFile>>,
    /// The dump's size (a directory dump's: its files' together).
    pub size_bytes: u64,
    /// SHA-256 of the dump's bytes, hex; of a directory dump, SHA-256 of
    /// its files' listing in `sha256sum`'s form (`<hex>  <name>` lines).
    pub sha256: String,
    /// How many parts it was uploaded in (a directory dump: how many files).
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

/// The oldest `pg_restore` major that reads a custom archive of this format
/// version: each version is read by the release that introduced it and later
/// ones (1.16 by 17, 1.15 by 16, 1.14 by 12, 1.13 by 11, 1.12 by 9.0).
pub fn pg_restore_needs(archive_version: &str) -> Option<u32> {
    let mut parts = archive_version.split('.');
    let (major, minor) = (parts.next()?, parts.next()?);
    match (major, minor.parse::<u32>().ok()?) {
        ("1", 16..) => Some(17),
        ("1", 15) => Some(16),
        ("1", 14) => Some(12),
        ("1", 13) => Some(11),
        ("1", 12) => Some(9),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pg_restore_an_archive_needs() {
        assert_eq!(pg_restore_needs("1.16.0"), Some(17));
        assert_eq!(pg_restore_needs("1.15.0"), Some(16));
        assert_eq!(pg_restore_needs("1.14.0"), Some(12));
        assert_eq!(pg_restore_needs("1.12.0"), Some(9));
        assert_eq!(pg_restore_needs("2.0.0"), None);
        assert_eq!(pg_restore_needs("garbage"), None);
    }
}
