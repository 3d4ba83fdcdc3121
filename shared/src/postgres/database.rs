//! A PostgreSQL database as a payload names it (host, port, dbname, the
//! secret holding the login, TLS and authentication), and the formats of
//! Lifeboat's dumps.

use serde::{Deserialize, Serialize};

/// One database: an entry of pg-dump's `databases`, or a restore target in
/// that form (which ignores `runner`). Written back as JSON, it is the entry
/// pg-dump hands to its task: the secret's ARN, never its value.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// The backup's source name: tagged, and the first part of the dump's key.
    pub name: String,
    /// The server's host name or address.
    pub host: String,
    /// The server's port (default 5432).
    #[serde(default = "default_pg_port")]
    pub port: u16,
    /// The database to dump on that server.
    pub dbname: String,
    /// The Secrets Manager secret holding `username` and `password` (the RDS format).
    pub secret_arn: String,
    /// The archive format (default `custom`).
    #[serde(default)]
    pub format: DumpFormat,
    /// libpq's `sslmode` (default `require`, or `prefer` for a loopback host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sslmode: Option<SslMode>,
    /// pg_dump's `--compress`: `zstd`, `gzip`, `lz4` or `none`, with an
    /// optional `:level` (default: `zstd` for the custom format, `none` for plain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// libpq's `require_auth`: the authentication methods the server may ask
    /// for (default `scram-sha-256`), or `any` to accept whatever it asks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_auth: Option<String>,
    /// Where a scheduled (Lambda) run dumps it (default `auto`).
    #[serde(default)]
    pub runner: Runner,
    /// pg_dump's parallel jobs (default 1: one stream). More than one dumps
    /// in the directory format (`pg_dump -Fd -j N`) into local storage,
    /// each file uploaded as pg_dump writes it.
    #[serde(default = "one_job", skip_serializing_if = "is_one_job")]
    pub jobs: u16,
}

fn one_job() -> u16 {
    1
}

fn is_one_job(jobs: &u16) -> bool {
    *jobs == 1
}

/// Where pg-dump's scheduled run makes a database's dump. A run without a
/// deadline (`lifeboat run pg-dump`, and the task itself) dumps where it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runner {
    /// In the Lambda run, always; a dump its last run shows cannot finish in time is not started.
    Lambda,
    /// In pg-dump's ECS Fargate task, started by the Lambda run.
    Task,
    /// In the Lambda run, unless the last dump took more than half the
    /// function's timeout or the last run was cut off by the deadline: then in the task.
    #[default]
    Auto,
}

fn default_pg_port() -> u16 {
    5432
}

impl Database {
    /// The format the dump is written in: the directory format for more
    /// than one job (the custom format's single stream cannot be shared).
    pub fn dump_format(&self) -> DumpFormat {
        match self.format {
            DumpFormat::Custom if self.jobs > 1 => DumpFormat::Directory,
            format => format,
        }
    }

    /// The compression given, or the format's default: `zstd` (faster than
    /// gzip and smaller; archives of pg_dump 18 need pg_restore 17 or later
    /// anyway, and those read zstd), `none` for plain SQL.
    pub fn compression(&self) -> &str {
        match (&self.compression, self.format) {
            (Some(c), _) => c,
            (None, DumpFormat::Custom | DumpFormat::Directory) => "zstd",
            (None, DumpFormat::Plain) => "none",
        }
    }

    /// libpq's `require_auth` in force: as given (none for `any`), else SCRAM.
    pub fn require_auth(&self) -> Option<&str> {
        match self.require_auth.as_deref() {
            Some("any") => None,
            Some(methods) => Some(methods),
            None => Some("scram-sha-256"),
        }
    }

    /// The `sslmode` in force: as given, else `require` off this machine and `prefer` on loopback.
    pub fn sslmode(&self) -> SslMode {
        self.sslmode.unwrap_or(if is_loopback(&self.host) {
            SslMode::Prefer
        } else {
            SslMode::Require
        })
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `pg_dump`'s archive formats that Lifeboat writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DumpFormat {
    /// `pg_dump -Fc`: compressed, restorable selectively with `pg_restore`; its table of contents is checked.
    #[default]
    Custom,
    /// `pg_dump -Fp`: an SQL script for `psql`.
    Plain,
    /// `pg_dump -Fd`: a table of contents and one compressed file per
    /// table's data (and large object), written by parallel jobs and
    /// stored as objects under the dump's key; restored with `pg_restore -j`.
    Directory,
}

impl DumpFormat {
    /// The file ending of a dump in this format.
    pub fn extension(self) -> &'static str {
        match self {
            DumpFormat::Custom => "dump",
            DumpFormat::Plain => "sql",
            DumpFormat::Directory => "dir",
        }
    }
}

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS if the server insists.
    Allow,
    /// TLS if the server offers it.
    Prefer,
    /// TLS always, the certificate unchecked.
    Require,
    /// TLS, the certificate checked against a CA.
    VerifyCa,
    /// TLS, the certificate and the host name checked.
    VerifyFull,
}

impl SslMode {
    /// The value as libpq spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}
