//! `lifeboat verify`: a stored dump checked against its manifest, byte by
//! byte and row by row, without restoring it.

use lifeboat::rules::naming;
use std::process::ExitCode;

/// Which dump to check: an S3 URL, or the newest of a database (of a plan, at a slot).
#[derive(Debug, clap::Args)]
pub struct Which {
    /// The dump's S3 URL (`s3://bucket/key`); otherwise chosen by the options.
    url: Option<String>,
    /// The bucket (default `LIFEBOAT_BUCKET`).
    #[arg(long)]
    bucket: Option<String>,
    /// The database's name in pg-dump's payload.
    #[arg(long, required_unless_present = "url")]
    database: Option<String>,
    /// Only dumps of this plan.
    #[arg(long)]
    plan: Option<String>,
    /// The dump of this slot (RFC 3339), instead of the newest.
    #[arg(long)]
    slot: Option<String>,
    /// The payload's key prefix (`pg/`).
    #[arg(long, default_value = "")]
    prefix: String,
}

/// Runs the check and prints what it found. Exits 0 when the dump is the one
/// its manifest describes, 1 when it differs or cannot be checked, 2 on bad options.
pub async fn command(which: Which) -> ExitCode {
    let aws = lifeboat::aws::load().await;
    let s3 = lifeboat::aws::s3_client(&aws);
    let (bucket, key) = match locate(&s3, &which).await {
        Ok(found) => found,
        Err((code, message)) => {
            eprintln!("lifeboat verify: {message}");
            return ExitCode::from(code);
        }
    };
    let verified = match lifeboat::postgres::verify::verify(&s3, &bucket, &key).await {
        Ok(verified) => verified,
        Err(message) => {
            eprintln!("lifeboat verify: s3://{bucket}/{key} could not be checked: {message}");
            return ExitCode::FAILURE;
        }
    };
    let read = verified.read();
    if !verified.mismatches.is_empty() {
        eprintln!(
            "lifeboat verify: s3://{bucket}/{key} ({read}) is NOT the dump its manifest describes:"
        );
        for mismatch in &verified.mismatches {
            eprintln!("  - {mismatch}");
        }
        return ExitCode::FAILURE;
    }
    let rows = verified.fingerprint.as_ref().map_or_else(
        || "no fingerprint to compare".to_owned(),
        |f| {
            format!(
                "{} tables, {} rows, {} large objects as recorded",
                f.tables.len(),
                f.tables.values().sum::<u64>(),
                f.large_objects
            )
        },
    );
    println!(
        "verified s3://{bucket}/{key} ({read}): {} bytes and SHA-256 {} as recorded, the archive reads whole, {rows}",
        verified.size_bytes, verified.sha256
    );
    ExitCode::SUCCESS
}

/// The bucket and key of the dump to check, or the exit code and why not.
pub async fn locate(
    s3: &aws_sdk_s3::Client,
    which: &Which,
) -> Result<(String, String), (u8, String)> {
    if let Some(url) = &which.url {
        let (bucket, key) = url
            .strip_prefix("s3://")
            .and_then(|rest| rest.split_once('/'))
            .ok_or((2, format!("`{url}` is not an S3 URL (s3://bucket/key)")))?;
        let key = key.strip_suffix(".manifest.json").unwrap_or(key);
        return Ok((bucket.to_owned(), key.to_owned()));
    }
    let bucket = which
        .bucket
        .clone()
        .or_else(|| {
            std::env::var("LIFEBOAT_BUCKET")
                .ok()
                .filter(|b| !b.is_empty())
        })
        .ok_or((2, "give --bucket or set LIFEBOAT_BUCKET".to_owned()))?;
    let database = which.database.clone().unwrap_or_default();
    let plan = which
        .plan
        .as_deref()
        .map(lifeboat::Plan::new)
        .transpose()
        .map_err(|e| (2, format!("--plan: {e}")))?;
    let slot = which
        .slot
        .as_deref()
        .map(|s| lifeboat::Slot::parse(s, chrono::Utc::now()))
        .transpose()
        .map_err(|e| (2, format!("--slot: {e}")))?;
    let mut prefix = which.prefix.clone();
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    let folder = format!("{prefix}{database}/");
    let pages = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix(&folder)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| {
            (
                1,
                format!(
                    "listing s3://{bucket}/{folder}: {}",
                    lifeboat::aws::summarize(&e)
                ),
            )
        })?;
    pages
        .iter()
        .flat_map(|p| p.contents())
        .filter_map(|o| o.key()?.strip_suffix(".manifest.json"))
        .filter_map(|key| Some((naming::parse_dump_key(key)?, key)))
        .filter(|(dump, _)| dump.database == database)
        .filter(|(dump, _)| plan.as_ref().is_none_or(|p| dump.plan == *p))
        .filter(|(dump, _)| slot.is_none_or(|s| dump.slot == s))
        .max_by_key(|(dump, _)| dump.slot)
        .map(|(_, key)| (bucket.clone(), key.to_owned()))
        .ok_or((
            1,
            format!("no recorded dump of {database} in s3://{bucket}/{folder} matches"),
        ))
}
