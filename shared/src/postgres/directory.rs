//! A directory dump as stored: `pg_dump -Fd`'s files as objects under the
//! dump's key (`<key>/toc.dat`, `<key>/1234.dat.zst`, …), each listed in the
//! manifest with its size, SHA-256 and object version. The manifest's own
//! `sha256` is that of the listing in `sha256sum`'s form, so a person can
//! check a downloaded copy with `sha256sum -c`.
//!
//! Fetching one reads every listed object version (a few at once), checks it
//! against its line of the manifest and reads it as the dump check does, and
//! writes it into a local directory for `pg_restore -j`, or nowhere (`lifeboat
//! verify`).

use crate::postgres::archive::{DirectoryCheck, FileCheck};
use crate::postgres::verify::{Recorded, StreamError, Verified};
use aws_sdk_s3::Client;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use tokio::io::AsyncWriteExt;

/// Objects read at once.
const FETCHES: usize = 4;

/// One file of a directory dump, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpFile {
    /// Its name in the directory (`toc.dat`, `1234.dat.zst`).
    pub name: String,
    /// Its size.
    pub size_bytes: u64,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// The object version written (`None` in a bucket without versioning).
    pub version_id: Option<String>,
    /// The object's ETag.
    pub e_tag: Option<String>,
}

/// The key of the file `name` of the directory dump at `key`.
pub fn file_key(key: &str, name: &str) -> String {
    format!("{key}/{name}")
}

/// The listing of `files` in `sha256sum`'s form (`<hex>  <name>`), in name order.
pub fn listing(files: &[DumpFile]) -> String {
    let mut sorted: Vec<&DumpFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    sorted
        .iter()
        .map(|f| format!("{}  {}\n", f.sha256, f.name))
        .collect()
}

/// SHA-256 of [`listing`], hex: the manifest's `sha256` of a directory dump.
pub fn listing_sha256(files: &[DumpFile]) -> String {
    hex(&Sha256::digest(listing(files).as_bytes()))
}

/// Hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads every file the manifest lists (the exact versions), into `into`
/// when given, and compares each and the whole with the manifest. An error
/// means the check could not be made; a dump that differs is `Ok`, with its
/// mismatches (and what `into` holds is then not to be used).
pub async fn fetch(
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
                    mismatches.extend(crate::postgres::verify::compare(want, &have, "the dump"));
                }
                fingerprint = summary.fingerprint;
            }
        }
    }
    Ok(Verified {
        key: key.to_owned(),
        version_id: None,
        size_bytes: size,
        sha256,
        fingerprint,
        mismatches,
    })
}

/// One object read: what it is, and what its check found.
struct Fetched {
    file: DumpFile,
    read: Result<
        (String, crate::postgres::archive::FileRead),
        crate::postgres::archive::ArchiveError,
    >,
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
