//! Checks a stored dump against its manifest, as `lifeboat verify` does
//! before anyone relies on it: the exact object version the manifest names
//! is streamed from S3 (never held whole), its size and SHA-256 compared,
//! and the archive read again as at dump time, its table of contents and the
//! rows of every table compared with the manifest's fingerprint.

use crate::archive::{CustomArchiveCheck, PlainDumpCheck};
use crate::fields::DumpFormat;
use crate::fingerprint::Fingerprint;
use aws_sdk_s3::Client;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What a verification found: the manifest's claims and what the object holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The dump's key.
    pub key: String,
    /// The object version read.
    pub version_id: Option<String>,
    /// Its size.
    pub size_bytes: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// Its rows per table and large objects, when the manifest has a fingerprint.
    pub fingerprint: Option<Fingerprint>,
    /// Every way the object differs from its manifest; empty when it is the dump the manifest describes.
    pub mismatches: Vec<String>,
}

/// Reads `key`'s manifest, then the object version it names, and compares them.
/// An error means the check could not be made (no manifest, S3 refused); a
/// dump that differs is `Ok`, with its mismatches.
pub async fn verify(s3: &Client, bucket: &str, key: &str) -> Result<Verified, String> {
    let manifest_key = lifeboat::rules::naming::manifest_key(key);
    let manifest = get(s3, bucket, &manifest_key, None).await?;
    let manifest = manifest
        .collect()
        .await
        .map_err(|e| format!("reading {manifest_key}: {e}"))?
        .into_bytes();
    let manifest: Value = serde_json::from_slice(&manifest)
        .map_err(|e| format!("{manifest_key} is not a manifest: {e}"))?;
    let version_id = manifest["version_id"].as_str().map(str::to_owned);
    let format = match manifest["format"].as_str() {
        Some("plain") => DumpFormat::Plain,
        _ => DumpFormat::Custom,
    };
    let mut body = get(s3, bucket, key, version_id.as_deref()).await?;
    let (mut custom, mut plain) = (CustomArchiveCheck::new(), PlainDumpCheck::new());
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut mismatches = Vec::new();
    let mut readable = true;
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| format!("reading {key}: {e}"))?
    {
        hasher.update(&chunk);
        size += chunk.len() as u64;
        match format {
            DumpFormat::Custom if readable => {
                if let Err(e) = custom.feed(&chunk) {
                    mismatches.push(format!("the archive does not read: {e}"));
                    readable = false;
                }
            }
            DumpFormat::Custom => {}
            DumpFormat::Plain => plain.feed(&chunk),
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
        DumpFormat::Custom => Ok(Default::default()),
        DumpFormat::Plain => plain.finish(),
    };
    let mut fingerprint = None;
    match summary {
        Err(e) => mismatches.push(format!("the archive does not read: {e}")),
        Ok(summary) if readable => {
            let recorded = &manifest["archive"];
            if recorded["toc_entries"].as_u64() != summary.toc_entries {
                mismatches.push(format!(
                    "table of contents: the manifest says {} entries, the archive has {:?}",
                    recorded["toc_entries"], summary.toc_entries
                ));
            }
            if !recorded["fingerprint"].is_null() {
                let found = serde_json::to_value(&summary.fingerprint).unwrap_or_default();
                mismatches.extend(compare(&recorded["fingerprint"], &found));
            }
            fingerprint = summary.fingerprint;
        }
        Ok(_) => {}
    }
    Ok(Verified {
        key: key.to_owned(),
        version_id,
        size_bytes: size,
        sha256,
        fingerprint,
        mismatches,
    })
}

/// The tables whose rows (and the large objects whose number) differ.
fn compare(recorded: &Value, found: &Value) -> Vec<String> {
    let mut differ = Vec::new();
    let tables = |v: &Value| v["tables"].as_object().cloned().unwrap_or_default();
    let (want, have) = (tables(recorded), tables(found));
    for (table, rows) in &want {
        if have.get(table) != Some(rows) {
            let had = have.get(table).map_or("none".to_owned(), Value::to_string);
            differ.push(format!(
                "table {table}: the manifest says {rows} rows, the archive has {had}"
            ));
        }
    }
    for table in have.keys().filter(|t| !want.contains_key(*t)) {
        differ.push(format!(
            "table {table} is in the archive but not in the manifest"
        ));
    }
    if recorded["large_objects"] != found["large_objects"] {
        differ.push(format!(
            "large objects: the manifest says {}, the archive has {}",
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
        .map_err(|e| format!("GetObject {key}: {}", lifeboat::aws::summarize(&e)))
}
