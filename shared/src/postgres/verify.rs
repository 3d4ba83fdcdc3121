//! Checks a stored dump against its manifest, as `lifeboat verify` does
//! before anyone relies on it: the exact object version the manifest names
//! is streamed from S3 (never held whole), its size and SHA-256 compared,
//! and the archive read again as at dump time, its table of contents and the
//! rows of every table compared with the manifest's fingerprint. A
//! directory dump's files are read the same way, each against its line of
//! the manifest, a few at once ([`fetch_directory`]), into a local directory
//! for `pg_restore -j` or nowhere.

use crate::postgres::archive::{
    ArchiveError, CustomArchiveCheck, DirectoryCheck, FileCheck, FileRead, PlainDumpCheck,
};
use crate::postgres::database::DumpFormat;
use crate::postgres::directory::{DumpFile, file_key, hex, listing_sha256};
use crate::postgres::fingerprint::Fingerprint;
use aws_sdk_s3::Client;
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// A progress line in the log every 2^30 bytes streamed.
const PROGRESS_EVERY: u32 = 30;
const GIB: f64 = (1u64 << 30) as f64;

/// What a verification found: the manifest's claims and what the object holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The dump's key.
    pub key: String,
    /// The object version read.
    pub version_id: Option<String>,
    /// A directory dump's files read, each at its recorded version.
    pub files: Option<usize>,
    /// Its size.
    pub size_bytes: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// Its rows per table and large objects, when the manifest has a fingerprint.
    pub fingerprint: Option<Fingerprint>,
    /// Every way the object differs from its manifest; empty when it is the dump the manifest describes.
    pub mismatches: Vec<String>,
}

impl Verified {
    /// What was read, for a person: `version …` of the one object, or the
    /// number of a directory dump's files.
    pub fn read(&self) -> String {
        match self.files {
            Some(files) => format!("{files} files, each at its recorded version"),
            None => format!(
                "version {}",
                self.version_id.as_deref().unwrap_or("unversioned")
            ),
        }
    }
}

/// A dump's manifest, read before the object it describes.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The manifest as written.
    pub manifest: Value,
    /// The object version it names.
    pub version_id: Option<String>,
    /// The dump's format.
    pub format: DumpFormat,
}

impl Recorded {
    /// Reads `<key>.manifest.json`.
    pub async fn read(s3: &Client, bucket: &str, key: &str) -> Result<Self, String> {
        let manifest_key = crate::rules::naming::manifest_key(key);
        let manifest = get(s3, bucket, &manifest_key, None)
            .await?
            .collect()
            .await
            .map_err(|e| format!("reading {manifest_key}: {e}"))?
            .into_bytes();
        let manifest: Value = serde_json::from_slice(&manifest)
            .map_err(|e| format!("{manifest_key} is not a manifest: {e}"))?;
        Ok(Recorded {
            version_id: manifest["version_id"].as_str().map(str::to_owned),
            format: match manifest["format"].as_str() {
                Some("plain") => DumpFormat::Plain,
                Some("directory") => DumpFormat::Directory,
                _ => DumpFormat::Custom,
            },
            manifest,
        })
    }

    /// The oldest `pg_restore` major that reads the archive, as recorded.
    pub fn pg_restore_needs(&self) -> Option<u64> {
        self.manifest["pg_restore_needs"].as_u64()
    }

    /// The recorded rows per table and large objects, if the manifest has them.
    pub fn fingerprint(&self) -> Option<&Value> {
        Some(&self.manifest["archive"]["fingerprint"]).filter(|f| !f.is_null())
    }

    /// About how many locks a restore of this dump holds in its one
    /// transaction: one per object of its table of contents, per table (its
    /// TOAST table) and per large object.
    /// A plain dump's manifest counts none of them: [`PLAIN_LOCKS`].
    /// (A directory dump restores with `pg_restore -j`, not in one transaction.)
    pub fn locks(&self) -> u64 {
        if self.format == DumpFormat::Plain {
            return PLAIN_LOCKS;
        }
        let fingerprint = self.fingerprint();
        let count = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
        count(Some(&self.manifest["archive"]["toc_entries"]))
            + fingerprint
                .and_then(|f| f["tables"].as_object())
                .map_or(0, |t| t.len() as u64)
            + count(fingerprint.map(|f| &f["large_objects"]))
    }
}

/// The locks assumed for a restore of a plain dump, whose objects its
/// manifest does not count: a database of some tens of thousands of tables,
/// indexes and large objects.
pub const PLAIN_LOCKS: u64 = 50_000;

/// Why a dump could not be streamed to its end.
#[derive(Debug)]
pub enum StreamError {
    /// S3 refused or broke off the read.
    Read(String),
    /// What the dump was streamed into stopped taking it.
    Write(std::io::Error),
}

/// Reads `key`'s manifest, then the object version it names, and compares them.
/// An error means the check could not be made (no manifest, S3 refused); a
/// dump that differs is `Ok`, with its mismatches.
pub async fn verify(s3: &Client, bucket: &str, key: &str) -> Result<Verified, String> {
    let recorded = Recorded::read(s3, bucket, key).await?;
    let read = match recorded.format {
        DumpFormat::Directory => fetch_directory(s3, bucket, key, &recorded, None).await,
        _ => stream(s3, bucket, key, &recorded, &mut tokio::io::sink()).await,
    };
    read.map_err(|e| match e {
        StreamError::Read(e) => e,
        StreamError::Write(e) => e.to_string(),
    })
}

/// Streams the version of `key` that `recorded` names into `out`, checking it
/// as it passes, and compares it with the manifest. `out` gets every byte,
/// whatever the comparison finds: what it has read is to be used only when the
/// result has no mismatches.
pub async fn stream(
    s3: &Client,
    bucket: &str,
    key: &str,
    recorded: &Recorded,
    out: &mut (impl AsyncWrite + Unpin),
) -> Result<Verified, StreamError> {
    let manifest = &recorded.manifest;
    let format = recorded.format;
    if format == DumpFormat::Directory {
        return Err(StreamError::Read(format!(
            "{key} is a directory dump: it is read file by file, not as one stream"
        )));
    }
    let version_id = recorded.version_id.clone();
    let mut body = get(s3, bucket, key, version_id.as_deref())
        .await
        .map_err(StreamError::Read)?;
    let (mut custom, mut plain) = (CustomArchiveCheck::new(), PlainDumpCheck::new());
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut mismatches = Vec::new();
    let mut readable = true;
    let expected = manifest["size_bytes"].as_u64().unwrap_or_default();
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| StreamError::Read(format!("reading {key}: {e}")))?
    {
        hasher.update(&chunk);
        match format {
            DumpFormat::Custom if readable => {
                if let Err(e) = custom.feed(&chunk) {
                    mismatches.push(format!("the archive does not read: {e}"));
                    readable = false;
                }
            }
            DumpFormat::Custom | DumpFormat::Directory => {}
            DumpFormat::Plain => plain.feed(&chunk),
        }
        out.write_all(&chunk).await.map_err(StreamError::Write)?;
        let before = size;
        size += chunk.len() as u64;
        if size >> PROGRESS_EVERY != before >> PROGRESS_EVERY {
            tracing::info!(
                key,
                read_gib = size as f64 / GIB,
                of_gib = expected as f64 / GIB,
                "streaming the dump"
            );
        }
    }
    let sha256: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if manifest["size_bytes"].as_u64() != Some(size) {
        mismatches.push(format!(
            "size: the manifest says {}, the object has {size} bytes",
            manifest["size_bytes"]
        ));
    }
    if manifest["sha256"].as_str() != Some(sha256.as_str()) {
        mismatches.push(format!(
            "SHA-256: the manifest says {}, the object's is {sha256}",
            manifest["sha256"]
        ));
    }
    let summary = match format {
        DumpFormat::Custom if readable => custom.finish(),
        DumpFormat::Custom | DumpFormat::Directory => Ok(Default::default()),
        DumpFormat::Plain => plain.finish(),
    };
    let mut fingerprint = None;
    match summary {
        Err(e) => mismatches.push(format!("the archive does not read: {e}")),
        Ok(summary) if readable => {
            let archive = &manifest["archive"];
            if archive["toc_entries"].as_u64() != summary.toc_entries {
                mismatches.push(format!(
                    "table of contents: the manifest says {} entries, the archive has {:?}",
                    archive["toc_entries"], summary.toc_entries
                ));
            }
            if let Some(want) = recorded.fingerprint() {
                let found = serde_json::to_value(&summary.fingerprint).unwrap_or_default();
                mismatches.extend(compare(want, &found, "the archive"));
            }
            fingerprint = summary.fingerprint;
        }
        Ok(_) => {}
    }
    out.flush().await.map_err(StreamError::Write)?;
    Ok(Verified {
        key: key.to_owned(),
        version_id,
        files: None,
        size_bytes: size,
        sha256,
        fingerprint,
        mismatches,
    })
}

/// The tables whose rows (and the large objects whose number) differ between
/// a fingerprint as recorded and as `place` (`the archive`) has it.
pub fn compare(recorded: &Value, found: &Value, place: &str) -> Vec<String> {
    let mut differ = Vec::new();
    let tables = |v: &Value| v["tables"].as_object().cloned().unwrap_or_default();
    let (want, have) = (tables(recorded), tables(found));
    for (table, rows) in &want {
        if have.get(table) != Some(rows) {
            let had = have.get(table).map_or("none".to_owned(), Value::to_string);
            differ.push(format!(
                "table {table}: the manifest says {rows} rows, {place} has {had}"
            ));
        }
    }
    for table in have.keys().filter(|t| !want.contains_key(*t)) {
        differ.push(format!(
            "table {table} is in {place} but not in the manifest"
        ));
    }
    if recorded["large_objects"] != found["large_objects"] {
        differ.push(format!(
            "large objects: the manifest says {}, {place} has {}",
            recorded["large_objects"], found["large_objects"]
        ));
    }
    differ
}

async fn get(
    s3: &Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Result<aws_sdk_s3::primitives::ByteStream, String> {
    s3.get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
        .map(|out| out.body)
        .map_err(|e| format!("GetObject {key}: {}", crate::aws::summarize(&e)))
}

/// Objects of a directory dump read at once.
const FETCHES: usize = 4;

/// Reads every file the manifest lists (the exact versions), into `into`
/// when given, and compares each and the whole with the manifest. An error
/// means the check could not be made; a dump that differs is `Ok`, with its
/// mismatches (and what `into` holds is then not to be used).
pub async fn fetch_directory(
    s3: &Client,
    bucket: &str,
    key: &str,
    recorded: &Recorded,
    into: Option<&Path>,
) -> Result<Verified, StreamError> {
    let files: Vec<DumpFile> =
        serde_json::from_value(recorded.manifest["files"].clone()).map_err(|e| {
            StreamError::Read(format!(
                "the manifest of {key} lists no files of a directory dump: {e}"
            ))
        })?;
    let total: u64 = files.iter().map(|f| f.size_bytes).sum();
    tracing::info!(
        key,
        files = files.len(),
        bytes = total,
        "reading the directory dump"
    );
    // Owned lines: a future over a borrowed one is not `Send` for every lifetime.
    let read: Vec<Fetched> = futures::stream::iter(files.clone())
        .map(|file| async move { fetch_one(s3, bucket, key, &file, into).await })
        .buffer_unordered(FETCHES)
        .try_collect()
        .await?;
    let mut check = DirectoryCheck::new();
    let mut mismatches = Vec::new();
    let mut found = Vec::with_capacity(read.len());
    let mut readable = true;
    for fetched in read {
        let listed = files.iter().find(|f| f.name == fetched.file.name);
        if let Some(listed) = listed {
            if listed.size_bytes != fetched.file.size_bytes {
                mismatches.push(format!(
                    "{}: the manifest says {} bytes, the object has {}",
                    listed.name, listed.size_bytes, fetched.file.size_bytes
                ));
            }
            if listed.sha256 != fetched.file.sha256 {
                mismatches.push(format!(
                    "{}: the manifest says SHA-256 {}, the object's is {}",
                    listed.name, listed.sha256, fetched.file.sha256
                ));
            }
        }
        match fetched.read {
            Ok(read) if readable => {
                if let Err(e) = check.add(read) {
                    mismatches.push(format!("the dump does not read: {e}"));
                    readable = false;
                }
            }
            Ok(_) => {}
            Err(e) => {
                mismatches.push(format!("the dump does not read: {e}"));
                readable = false;
            }
        }
        found.push(fetched.file);
    }
    let size: u64 = found.iter().map(|f| f.size_bytes).sum();
    let sha256 = listing_sha256(&found);
    if recorded.manifest["sha256"].as_str() != Some(sha256.as_str()) && mismatches.is_empty() {
        mismatches.push(format!(
            "SHA-256 of the listing: the manifest says {}, the files give {sha256}",
            recorded.manifest["sha256"]
        ));
    }
    let mut fingerprint = None;
    if readable {
        match check.finish() {
            Err(e) => mismatches.push(format!("the dump does not read: {e}")),
            Ok(summary) => {
                let archive = &recorded.manifest["archive"];
                if archive["toc_entries"].as_u64() != summary.toc_entries {
                    mismatches.push(format!(
                        "table of contents: the manifest says {} entries, the dump has {:?}",
                        archive["toc_entries"], summary.toc_entries
                    ));
                }
                if let Some(want) = recorded.fingerprint() {
                    let have = serde_json::to_value(&summary.fingerprint).unwrap_or_default();
                    mismatches.extend(compare(want, &have, "the dump"));
                }
                fingerprint = summary.fingerprint;
            }
        }
    }
    Ok(Verified {
        key: key.to_owned(),
        version_id: None,
        files: Some(found.len()),
        size_bytes: size,
        sha256,
        fingerprint,
        mismatches,
    })
}

/// One object read: what it is, and what its check found.
struct Fetched {
    file: DumpFile,
    read: Result<(String, FileRead), ArchiveError>,
}

/// Reads the listed version of one file, hashing and checking it, and
/// writes it into `into` when given.
async fn fetch_one(
    s3: &Client,
    bucket: &str,
    key: &str,
    listed: &DumpFile,
    into: Option<&Path>,
) -> Result<Fetched, StreamError> {
    let object = file_key(key, &listed.name);
    if listed.name.contains('/') || listed.name.starts_with('.') {
        return Err(StreamError::Read(format!(
            "the manifest lists `{}`, not a file name",
            listed.name
        )));
    }
    let mut body = s3
        .get_object()
        .bucket(bucket)
        .key(&object)
        .set_version_id(listed.version_id.clone())
        .send()
        .await
        .map_err(|e| {
            StreamError::Read(format!("GetObject {object}: {}", crate::aws::summarize(&e)))
        })?
        .body;
    let mut out = match into {
        Some(dir) => Some(
            tokio::fs::File::create(dir.join(&listed.name))
                .await
                .map_err(StreamError::Write)?,
        ),
        None => None,
    };
    let mut check = FileCheck::new(&listed.name);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| StreamError::Read(format!("reading {object}: {e}")))?
    {
        hasher.update(&chunk);
        size += chunk.len() as u64;
        if let Ok(c) = &mut check
            && let Err(e) = c.feed(&chunk)
        {
            check = Err(e);
        }
        if let Some(out) = &mut out {
            out.write_all(&chunk).await.map_err(StreamError::Write)?;
        }
    }
    if let Some(mut out) = out {
        out.flush().await.map_err(StreamError::Write)?;
    }
    Ok(Fetched {
        file: DumpFile {
            name: listed.name.clone(),
            size_bytes: size,
            sha256: hex(&hasher.finalize()),
            version_id: listed.version_id.clone(),
            e_tag: None,
        },
        read: check.and_then(FileCheck::finish),
    })
}
