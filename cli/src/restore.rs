//! `lifeboat restore`: a stored dump streamed from S3 into an empty database,
//! checked byte by byte as it passes and row by row when it is in (a
//! directory dump's files are read and checked first, then restored by
//! `pg_restore --jobs`).

use crate::verify::{Which, locate};
use lifeboat::postgres::restore::{Options, Target, Tools};
use std::path::PathBuf;
use std::process::ExitCode;

/// The dump to restore and where to.
#[derive(Debug, clap::Args)]
pub struct Restore {
    #[command(flatten)]
    which: Which,
    /// The empty database to restore into: a libpq URL or connection string
    /// (`postgresql://user@host/dbname`; libpq's `PGPASSWORD` or `~/.pgpass`
    /// gives the password), or a JSON object in the form of an entry of
    /// pg-dump's `databases` (`{"host": …, "dbname": …, "secret_arn": …}`).
    #[arg(long)]
    to: String,
    /// The objects belong to the role that restores them (pg_restore's `--no-owner`).
    #[arg(long)]
    no_owner: bool,
    /// No GRANT or REVOKE is restored (pg_restore's `--no-privileges`).
    #[arg(long)]
    no_privileges: bool,
    /// `pg_restore --jobs` for a directory dump (made with `jobs`): its
    /// files are read and checked first, then restored in parallel
    /// (default: as many jobs as dumped it).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=32))]
    jobs: Option<u16>,
    /// The `pg_restore` to run (`psql` is the one beside it); default
    /// `PG_RESTORE_PATH`, else the layer's, else the one on `PATH`.
    #[arg(long)]
    pg_restore: Option<PathBuf>,
}

/// Runs the restore and prints what it did. Exits 0 when the database holds
/// what the manifest records, 1 when nothing was restored or the rows
/// differ, 2 on bad options.
pub async fn command(restore: Restore) -> ExitCode {
    let target = match Target::parse(&restore.to) {
        Ok(target) => target,
        Err(message) => {
            eprintln!("lifeboat restore: {message}");
            return ExitCode::from(2);
        }
    };
    let aws = lifeboat::aws::load().await;
    let s3 = lifeboat::aws::s3_client(&aws);
    let (bucket, key) = match locate(&s3, &restore.which).await {
        Ok(found) => found,
        Err((code, message)) => {
            eprintln!("lifeboat restore: {message}");
            return ExitCode::from(code);
        }
    };
    let given = restore.pg_restore.or_else(|| {
        std::env::var_os("PG_RESTORE_PATH")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    });
    let tools = match Tools::find(given).await {
        Ok(tools) => tools,
        Err(message) => {
            eprintln!("lifeboat restore: {message}");
            return ExitCode::FAILURE;
        }
    };
    let options = Options {
        no_owner: restore.no_owner,
        no_privileges: restore.no_privileges,
        jobs: restore.jobs,
    };
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let restored = lifeboat::postgres::restore::restore(
        &s3,
        &secrets,
        (&bucket, &key),
        &target,
        &tools,
        options,
    )
    .await;
    let restored = match restored {
        Ok(restored) => restored,
        Err(message) => {
            eprintln!(
                "lifeboat restore: s3://{bucket}/{key} into {}: {message}",
                target.describe()
            );
            return ExitCode::FAILURE;
        }
    };
    let verified = &restored.verified;
    let read = verified.read();
    println!(
        "restored s3://{bucket}/{key} ({read}) into {} in {:.1} s: {} bytes and SHA-256 {} as recorded",
        restored.target, restored.seconds, verified.size_bytes, verified.sha256
    );
    if verified.fingerprint.is_none() {
        println!("the manifest has no fingerprint: the rows were not compared");
        return ExitCode::SUCCESS;
    }
    if !restored.mismatches.is_empty() {
        eprintln!("lifeboat restore: the restored database differs from the manifest:");
        for mismatch in &restored.mismatches {
            eprintln!("  - {mismatch}");
        }
        return ExitCode::FAILURE;
    }
    println!(
        "the restored database holds what was dumped: {} tables, {} rows, {} large objects, as the manifest records",
        restored.tables.len(),
        restored.tables.values().sum::<u64>(),
        restored.large_objects
    );
    ExitCode::SUCCESS
}
