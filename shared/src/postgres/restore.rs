//! Restores a stored dump into a database, as `lifeboat restore` does on the
//! day it matters. The exact object version its manifest names is streamed
//! from S3 through `pg_restore` into `psql` (never to disk), in one
//! transaction that commits only when the stream's size and SHA-256 are the
//! manifest's, its archive reads whole and every statement succeeded (the
//! transaction pg_dump writes around each block of large objects is taken
//! out of the script, see `OneTransaction`); then
//! every table's rows and the large objects are counted in the database and
//! compared with the manifest's fingerprint.
//!
//! `pg_restore` writes the restore as a script (`--file=-`) and `psql` runs it,
//! so that a server older than `pg_restore` gets the script without the one
//! fixed setting it does not know (`SET transaction_timeout = 0;`, written by
//! pg_restore 17 and later, refused by PostgreSQL 16 and older). A plain dump
//! is such a script already and goes the same way without `pg_restore`.

use crate::postgres::database::{Database, DumpFormat};
use crate::postgres::tool::{self, PG_RESTORE, PgTool};
use crate::postgres::verify::{self, Recorded, StreamError, Verified};
use aws_sdk_s3::Client;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::Command;

/// Where to restore to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A libpq connection string or URL, given to `psql` as it is; libpq's
    /// environment (`PGPASSWORD`, `PGSSLROOTCERT`, `~/.pgpass`) applies.
    Conninfo(String),
    /// A database in the form of an entry of pg-dump's `databases` (host,
    /// port, dbname, the secret holding the login, sslmode, require_auth),
    /// connected to as pg-dump connects.
    Entry(Database),
}

impl Target {
    /// A connection string or URL, or a JSON object in the form of a
    /// `databases` entry (its `name` may be left out).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("--to is empty: give a connection URL (postgresql://host/dbname) or a databases entry ({\"host\": …, \"dbname\": …, \"secret_arn\": …})".into());
        }
        if !text.starts_with('{') {
            return Ok(Target::Conninfo(text.to_owned()));
        }
        let mut entry: Value =
            serde_json::from_str(text).map_err(|e| format!("--to is not JSON: {e}"))?;
        entry
            .as_object_mut()
            .ok_or("--to must be a JSON object")?
            .entry("name")
            .or_insert_with(|| json!("restore-target"));
        serde_json::from_value(entry)
            .map(Target::Entry)
            .map_err(|e| format!("--to: {e}"))
    }

    /// The target for messages, without its password.
    pub fn describe(&self) -> String {
        match self {
            Target::Entry(db) => format!("{}:{}/{}", db.host, db.port, db.dbname),
            Target::Conninfo(text) => redact(text),
        }
    }
}

/// A connection string with its password replaced by `***`.
fn redact(text: &str) -> String {
    if let Some((scheme, rest)) = text.split_once("://") {
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            return format!("{scheme}://{}:***{}", &rest[..colon], &rest[at..]);
        }
        return text.to_owned();
    }
    text.split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some(("password", _)) => "password=***".to_owned(),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// How the restore treats ownership and privileges (pg_restore's own options).
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `--no-owner`: the objects belong to the role that restores them.
    pub no_owner: bool,
    /// `--no-privileges`: no GRANT or REVOKE is restored.
    pub no_privileges: bool,
    /// `pg_restore --jobs` for a directory dump (default: the jobs that dumped it).
    pub jobs: Option<u16>,
}

/// The `pg_restore` and `psql` a restore runs.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `pg_restore`.
    pub pg_restore: PgTool,
    /// The `psql` beside it.
    pub psql: PgTool,
}

impl Tools {
    /// `pg_restore` as `given` (`PG_RESTORE_PATH`), else the layer's, else the
    /// one on `PATH`, and the `psql` beside it.
    pub async fn find(given: Option<PathBuf>) -> Result<Self, String> {
        let path = tool::locate(PG_RESTORE, given, std::env::var_os("PATH"))?;
        let pg_restore = PgTool::probe(PG_RESTORE, &path).await?;
        let psql = pg_restore.sibling("psql").await?;
        Ok(Tools { pg_restore, psql })
    }
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    /// The dump as streamed: its version, size and SHA-256, all as recorded.
    pub verified: Verified,
    /// Where it went, without a password.
    pub target: String,
    /// The target server's version (`server_version_num`, `150018`).
    pub server_version_num: u32,
    /// From the first byte read to the commit.
    pub seconds: f64,
    /// Rows per table of the manifest's fingerprint, counted in the restored database.
    pub tables: BTreeMap<String, u64>,
    /// Large objects in the restored database.
    pub large_objects: u64,
    /// Every way the restored database differs from the fingerprint; empty when it holds what was dumped.
    pub mismatches: Vec<String>,
}

/// Restores the dump at `key` into `target`, which must be an empty
/// database. An error means nothing was restored and says why; a restore
/// whose row counts then differ from the manifest is `Ok`, with its mismatches.
pub async fn restore(
    s3: &Client,
    secrets: &aws_sdk_secretsmanager::Client,
    location: (&str, &str),
    target: &Target,
    tools: &Tools,
    options: Options,
) -> Result<Restored, String> {
    let recorded = Recorded::read(s3, location.0, location.1).await?;
    restore_recorded(s3, secrets, location, &recorded, target, tools, options).await
}

/// [`restore`], with the manifest already read (the drill reads it first,
/// to size its server).
pub async fn restore_recorded(
    s3: &Client,
    secrets: &aws_sdk_secretsmanager::Client,
    location: (&str, &str),
    recorded: &Recorded,
    target: &Target,
    tools: &Tools,
    options: Options,
) -> Result<Restored, String> {
    let (bucket, key) = location;
    check_tools(recorded, tools, options)?;
    let session = Session::open(target, &tools.psql, secrets).await?;
    let server = session.probe().await?;
    if server.relations > 0 || server.large_objects > 0 {
        return Err(format!(
            "{} is not empty ({} tables, views or sequences, {} large objects): restore into a new database (createdb); nothing was restored",
            target.describe(),
            server.relations,
            server.large_objects
        ));
    }
    tracing::info!(key, target = target.describe(), "restoring");
    let started = Instant::now();
    let verified = if recorded.format == DumpFormat::Directory {
        let jobs = options
            .jobs
            .or_else(|| {
                recorded.manifest["jobs"]
                    .as_u64()
                    .and_then(|j| u16::try_from(j).ok())
            })
            .unwrap_or(1);
        session
            .restore_directory(
                s3,
                (bucket, key),
                recorded,
                tools,
                options,
                (jobs, server.version_num),
                target,
            )
            .await?
    } else {
        session
            .run_script(
                s3,
                (bucket, key),
                recorded,
                tools,
                options,
                server.version_num,
            )
            .await
            .map_err(|why| {
                format!("{why}; nothing was restored (the transaction was not committed)")
            })?
    };
    let seconds = started.elapsed().as_secs_f64();
    let (mut tables, large_objects) = session.count().await?;
    let mut mismatches = Vec::new();
    if let Some(want) = recorded.fingerprint() {
        let recorded_tables = want["tables"].as_object();
        tables.retain(|t, _| recorded_tables.is_some_and(|r| r.contains_key(t)));
        let found = json!({"tables": tables, "large_objects": large_objects});
        mismatches = verify::compare(want, &found, "the restored database");
    }
    Ok(Restored {
        verified,
        target: target.describe(),
        server_version_num: server.version_num,
        seconds,
        tables,
        large_objects,
        mismatches,
    })
}

/// Refuses a restore that this `pg_restore` cannot make, before anything runs.
fn check_tools(recorded: &Recorded, tools: &Tools, options: Options) -> Result<(), String> {
    let pg_restore = &tools.pg_restore;
    match recorded.format {
        DumpFormat::Custom | DumpFormat::Directory => match recorded.pg_restore_needs() {
            Some(needs) if u64::from(pg_restore.major) < needs => Err(format!(
                "the dump needs pg_restore {needs} or later, and {} is pg_restore {}: install PostgreSQL {needs}'s client programs or point {} at them; nothing was restored",
                pg_restore.path().display(),
                pg_restore.version,
                PG_RESTORE.setting
            )),
            _ => Ok(()),
        },
        DumpFormat::Plain if options.no_owner || options.no_privileges => Err(
            "--no-owner and --no-privileges are pg_restore's, for custom-format dumps; a plain dump restores as it was written; nothing was restored".into(),
        ),
        DumpFormat::Plain => Ok(()),
    }
}

/// What the target holds before the restore.
struct Server {
    version_num: u32,
    relations: u64,
    large_objects: u64,
}

/// The one number that `sql` gives on `target` (a drill's own check of a
/// restored database, `SELECT count(*) FROM orders`), or why not.
pub async fn query_number(
    target: &Target,
    psql: &PgTool,
    secrets: &aws_sdk_secretsmanager::Client,
    sql: &str,
) -> Result<i64, String> {
    let session = Session::open(target, psql, secrets).await?;
    let values = session.query(&[sql]).await?;
    match values.as_slice() {
        [one] => one
            .trim()
            .parse()
            .map_err(|_| format!("it gave `{one}`, not a whole number")),
        _ => Err(format!(
            "it gave {} values, not one number: {values:?}",
            values.len()
        )),
    }
}

/// The connection to the target: `psql`'s arguments and environment.
struct Session {
    psql: PgTool,
    args: Vec<OsString>,
    env: Vec<(&'static str, OsString)>,
    /// The environment starts empty (a payload entry names everything).
    clean: bool,
}

impl Session {
    async fn open(
        target: &Target,
        psql: &PgTool,
        secrets: &aws_sdk_secretsmanager::Client,
    ) -> Result<Self, String> {
        let psql = psql.clone();
        Ok(match target {
            Target::Conninfo(text) => Session {
                psql,
                args: vec!["-d".into(), text.into()],
                env: vec![("PGAPPNAME", "lifeboat-restore".into())],
                clean: false,
            },
            Target::Entry(db) => {
                let login = crate::postgres::secret::credentials(secrets, &db.secret_arn).await?;
                let mut env = tool::connection(db, &login, "lifeboat-restore");
                env.extend(psql.security(db)?);
                Session {
                    psql,
                    args: Vec::new(),
                    env,
                    clean: true,
                }
            }
        })
    }

    /// `psql` connected to the target, reading no `.psqlrc` and stopping at the first error.
    fn psql(&self) -> Command {
        let mut command = self.psql.run(self.clean);
        command
            .args(["-X", "-v", "ON_ERROR_STOP=1"])
            .args(&self.args)
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null());
        command
    }

    /// The values a query prints, `\0`-separated, or psql's reason in words.
    async fn query(&self, sql: &[&str]) -> Result<Vec<String>, String> {
        let mut command = self.psql();
        command.args(["-q", "-A", "-t", "-z", "-0"]);
        for statement in sql {
            command.arg("-c").arg(statement);
        }
        let out = command
            .output()
            .await
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if !out.status.success() {
            return Err(self
                .psql
                .failure(out.status, &String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .split('\0')
            .map(|v| v.trim_start_matches('\n').to_owned())
            .filter(|v| !v.is_empty())
            .collect())
    }

    async fn probe(&self) -> Result<Server, String> {
        let values = self.query(&[PROBE]).await?;
        let number = |i: usize| values.get(i).and_then(|v| v.parse::<u64>().ok());
        match (number(0), number(1), number(2)) {
            (Some(version), Some(relations), Some(large_objects)) => Ok(Server {
                version_num: u32::try_from(version).unwrap_or(u32::MAX),
                relations,
                large_objects,
            }),
            _ => Err(format!(
                "the target answered the server check with {values:?}"
            )),
        }
    }

    /// Rows per table (`schema.table`, as the fingerprint names them) and large objects.
    async fn count(&self) -> Result<(BTreeMap<String, u64>, u64), String> {
        let values = self
            .query(&["SET row_security = off", LARGE_OBJECTS, ROWS])
            .await
            .map_err(|e| format!("counting the restored rows: {e}"))?;
        let number = |v: &String| {
            v.parse::<u64>()
                .map_err(|_| format!("counting the restored rows: `{v}` is not a count"))
        };
        let (first, rest) = values
            .split_first()
            .ok_or("counting the restored rows: psql printed nothing")?;
        let mut tables = BTreeMap::new();
        for pair in rest.chunks(2) {
            let [table, rows] = pair else {
                return Err(format!("counting the restored rows: {pair:?} has no count"));
            };
            tables.insert(table.clone(), number(rows)?);
        }
        Ok((tables, number(first)?))
    }

    /// `psql` running the script on its input in one transaction.
    fn one_transaction(&self) -> Result<PsqlTransaction, String> {
        let mut psql = self
            .psql()
            .args(["-q", "--single-transaction", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start psql: {e}"))?;
        let errors = psql.stderr.take().map(|s| tokio::spawn(tool::read_tail(s)));
        let script = psql.stdin.take().ok_or("psql has no input")?;
        Ok(PsqlTransaction {
            psql,
            script,
            errors,
        })
    }

    /// Streams the dump through `pg_restore` (custom) or straight (plain)
    /// into `psql`, which runs it in one transaction. psql's input is closed,
    /// and the transaction so committed, only when everything else succeeded.
    async fn run_script(
        &self,
        s3: &Client,
        (bucket, key): (&str, &str),
        recorded: &Recorded,
        tools: &Tools,
        options: Options,
        server_version_num: u32,
    ) -> Result<Verified, String> {
        let PsqlTransaction {
            mut psql,
            mut script,
            errors: mut psql_errors,
        } = self.one_transaction()?;
        let preamble = Preamble::new(server_version_num < 170_000);
        let stream = |mut into: Box<dyn AsyncWrite + Unpin + Send>| async move {
            let streamed = verify::stream(s3, bucket, key, recorded, &mut into).await;
            let _ = into.shutdown().await;
            streamed
        };
        let (streamed, forwarded, pg_restore) = match recorded.format {
            DumpFormat::Custom => {
                let mut child = script_of(tools, options)
                    .stdin(Stdio::piped())
                    .spawn()
                    .map_err(|e| format!("cannot start pg_restore: {e}"))?;
                let errors = child
                    .stderr
                    .take()
                    .map(|s| tokio::spawn(tool::read_tail(s)));
                let (into, from) = (child.stdin.take(), child.stdout.take());
                let (into, from) = into.zip(from).ok_or("pg_restore has no pipes")?;
                let (streamed, forwarded) =
                    tokio::join!(stream(Box::new(into)), forward(from, &mut script, preamble));
                let status = child.wait().await;
                let said = match errors {
                    Some(task) => task.await.unwrap_or_default(),
                    None => String::new(),
                };
                let failed = match status {
                    Ok(status) if status.success() => None,
                    Ok(status) => Some(tools.pg_restore.failure(status, &said)),
                    Err(e) => Some(format!("pg_restore: {e}")),
                };
                (streamed, forwarded, failed)
            }
            DumpFormat::Plain | DumpFormat::Directory => {
                let (into, from) = tokio::io::duplex(PIPE);
                let (streamed, forwarded) =
                    tokio::join!(stream(Box::new(into)), forward(from, &mut script, preamble));
                (streamed, forwarded, None)
            }
        };
        let mut early = psql.try_wait().ok().flatten();
        // A pipe that broke (pg_restore's SIGPIPE, a write psql stopped
        // reading) is psql's doing when psql failed: give it the moment it
        // takes to exit, on a busy machine, so that its reason is the one told.
        if early.is_none() && (pg_restore.is_some() || forwarded.is_err()) {
            early = tokio::time::timeout(PSQL_EXIT, psql.wait())
                .await
                .ok()
                .and_then(Result::ok)
                .filter(|status| !status.success());
        }
        // The first cause: S3, the dump itself, then psql, pg_restore and the pipes between.
        let failure = match (&streamed, early, pg_restore, &forwarded) {
            (Err(StreamError::Read(e)), ..) => Some(e.clone()),
            (Ok(verified), ..) if !verified.mismatches.is_empty() => Some(format!(
                "s3://{bucket}/{key} is not the dump its manifest describes: {}",
                verified.mismatches.join("; ")
            )),
            (_, Some(status), ..) => Some(psql_failed(
                &self.psql,
                status,
                &tail(psql_errors.take()).await,
                recorded,
            )),
            (_, _, Some(pg_restore), _) => Some(pg_restore),
            (Err(StreamError::Write(e)), ..) => Some(format!("the dump stopped being read: {e}")),
            (_, _, _, Err(e)) => Some(format!("psql stopped reading the script: {e}")),
            _ => None,
        };
        if let Some(failure) = failure {
            let _ = psql.kill().await;
            return Err(failure);
        }
        drop(script);
        let status = psql
            .wait()
            .await
            .map_err(|e| format!("waiting for psql: {e}"))?;
        if !status.success() {
            let said = tail(psql_errors.take()).await;
            return Err(psql_failed(&self.psql, status, &said, recorded));
        }
        streamed.map_err(|_| "the dump was not read".to_owned())
    }
}

impl Session {
    /// Reads a directory dump's files into a local directory, each checked
    /// against the manifest, and only when all of them are the dump's runs
    /// `pg_restore --jobs` into the target (no single transaction: a
    /// parallel restore commits table by table). Its local copy is removed
    /// afterwards, whatever happened.
    #[allow(clippy::too_many_arguments)]
    async fn restore_directory(
        &self,
        s3: &Client,
        (bucket, key): (&str, &str),
        recorded: &Recorded,
        tools: &Tools,
        options: Options,
        (jobs, server_version_num): (u16, u32),
        target: &Target,
    ) -> Result<Verified, String> {
        let local = LocalCopy::new().map_err(|e| {
            format!("cannot make a local directory for the dump: {e}; nothing was restored")
        })?;
        let verified = verify::fetch_directory(s3, bucket, key, recorded, Some(local.path()))
            .await
            .map_err(|e| {
                let why = match e {
                    StreamError::Read(e) => e,
                    StreamError::Write(e) => format!(
                        "writing the dump into {}: {e} (TMPDIR names where it goes)",
                        local.path().display()
                    ),
                };
                format!("{why}; nothing was restored")
            })?;
        if !verified.mismatches.is_empty() {
            return Err(format!(
                "s3://{bucket}/{key} is not the dump its manifest describes: {}; nothing was restored",
                verified.mismatches.join("; ")
            ));
        }
        if server_version_num < 170_000 && tools.pg_restore.major >= 17 {
            // pg_restore 17 and later set transaction_timeout, which older
            // servers refuse: the restore goes as a script through psql
            // without that line, in one transaction, as a single stream's does.
            tracing::info!(
                key,
                "the server is older than PostgreSQL 17: restoring through psql in one transaction, not in parallel"
            );
            return self
                .restore_directory_script(local.path(), tools, options, server_version_num)
                .await
                .map(|()| verified)
                .map_err(|why| {
                    format!("{why}; nothing was restored (the transaction was not committed)")
                });
        }
        let database = match target {
            Target::Conninfo(text) => text.clone(),
            Target::Entry(db) => format!("dbname={}", conninfo_value(&db.dbname)),
        };
        tracing::info!(
            key,
            jobs,
            "the dump's files are as recorded: running pg_restore"
        );
        let out = tools
            .pg_restore
            .run(self.clean)
            .args(["--exit-on-error", "--no-password"])
            .arg(format!("--jobs={jobs}"))
            .args(options.no_owner.then_some("--no-owner"))
            .args(options.no_privileges.then_some("--no-privileges"))
            .arg("--dbname")
            .arg(&database)
            .arg(local.path())
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .await
            .map_err(|e| format!("cannot start pg_restore: {e}; nothing was restored"))?;
        if !out.status.success() {
            return Err(format!(
                "{}; a parallel restore commits table by table, so {} holds part of the dump: drop it and create it empty again before the next restore",
                tools
                    .pg_restore
                    .failure(out.status, &String::from_utf8_lossy(&out.stderr)),
                target.describe()
            ));
        }
        Ok(verified)
    }
}

impl Session {
    /// `pg_restore --file=-` of a local directory dump into psql, in one
    /// transaction, without the line an older server refuses.
    async fn restore_directory_script(
        &self,
        dir: &std::path::Path,
        tools: &Tools,
        options: Options,
        server_version_num: u32,
    ) -> Result<(), String> {
        let PsqlTransaction {
            mut psql,
            mut script,
            errors: psql_errors,
        } = self.one_transaction()?;
        let mut child = script_of(tools, options)
            .arg(dir)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start pg_restore: {e}"))?;
        let errors = child
            .stderr
            .take()
            .map(|s| tokio::spawn(tool::read_tail(s)));
        let from = child.stdout.take().ok_or("pg_restore has no output")?;
        let preamble = Preamble::new(server_version_num < 170_000);
        let forwarded = forward(from, &mut script, preamble).await;
        let status = child.wait().await;
        let said = tail(errors).await;
        let failed = match status {
            Ok(status) if status.success() => None,
            Ok(status) => Some(tools.pg_restore.failure(status, &said)),
            Err(e) => Some(format!("pg_restore: {e}")),
        };
        if let Some(failed) = failed.or_else(|| {
            forwarded
                .err()
                .map(|e| format!("psql stopped reading the script: {e}"))
        }) {
            let _ = psql.kill().await;
            let said = tail(psql_errors).await;
            return Err(if said.trim().is_empty() {
                failed
            } else {
                format!("{failed}; psql: {}", said.trim())
            });
        }
        drop(script);
        let status = psql
            .wait()
            .await
            .map_err(|e| format!("waiting for psql: {e}"))?;
        if !status.success() {
            return Err(self.psql.failure(status, &tail(psql_errors).await));
        }
        Ok(())
    }
}

/// `psql` running a script from its input in one transaction.
struct PsqlTransaction {
    psql: tokio::process::Child,
    /// The script's way in: closing it, with everything else done, commits.
    script: tokio::process::ChildStdin,
    /// The last lines of psql's errors, when it ends.
    errors: Option<tokio::task::JoinHandle<String>>,
}

/// `pg_restore` writing the restore as a script to its output (`--file=-`),
/// with the restore's options, its output and errors piped.
fn script_of(tools: &Tools, options: Options) -> Command {
    let mut command = tools.pg_restore.run(false);
    command
        .arg("--file=-")
        .args(options.no_owner.then_some("--no-owner"))
        .args(options.no_privileges.then_some("--no-privileges"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A value in a libpq connection string: quoted, `\` and `'` escaped.
fn conninfo_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A directory of its own under the temporary directory, removed when dropped.
struct LocalCopy(PathBuf);

impl LocalCopy {
    fn new() -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "lifeboat-restore-{}-{}",
            std::process::id(),
            crate::runtime::run_token()
        ));
        std::fs::create_dir(&path)?;
        Ok(LocalCopy(path))
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for LocalCopy {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(path = %self.0.display(), error = %e, "the dump's local copy could not be removed");
        }
    }
}

/// How long a restore waits for psql to exit after the pipe into it broke.
const PSQL_EXIT: std::time::Duration = std::time::Duration::from_secs(10);

/// psql's failure in words; when the target ran out of locks, why a
/// restore takes so many and what to change.
fn psql_failed(
    psql: &PgTool,
    status: std::process::ExitStatus,
    said: &str,
    recorded: &Recorded,
) -> String {
    let failure = psql.failure(status, said);
    if !said.contains("max_locks_per_transaction") {
        return failure;
    }
    let figures = recorded.fingerprint().map_or_else(String::new, |f| {
        let tables = f["tables"].as_object().map_or(0, |t| t.len());
        let objects = f["large_objects"].as_u64().unwrap_or(0);
        format!(": this dump has {tables} tables and {objects} large objects")
    });
    format!(
        "{}. A restore runs in one transaction, so that a failed one leaves nothing, and holds a lock on every table, index, sequence and large object it creates until it commits{figures}. Raise max_locks_per_transaction on the target until max_locks_per_transaction × max_connections exceeds what the dump creates, restart it and restore again",
        failure.trim_end_matches('.')
    )
}

async fn tail(task: Option<tokio::task::JoinHandle<String>>) -> String {
    match task {
        Some(task) => task.await.unwrap_or_default(),
        None => String::new(),
    }
}

/// The server's version, and whether the database holds anything already.
const PROBE: &str = "SELECT current_setting('server_version_num'), \
     (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') \
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
      AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'), \
     (SELECT count(*) FROM pg_largeobject_metadata)";

const LARGE_OBJECTS: &str = "SELECT count(*) FROM pg_largeobject_metadata";

/// Every table's own rows (`ONLY`: a parent's COPY holds none of its
/// children's), named as the fingerprint names them, counted in one query.
const ROWS: &str = "SELECT format('%s.%s', n.nspname, c.relname), \
     (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM ONLY %I.%I', n.nspname, c.relname), false, true, '')))[1]::text \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1";

/// The pipe buffer between the dump and psql.
const PIPE: usize = 256 << 10;

/// Copies the script into psql, without the line an older server refuses
/// and without the transaction of each block of large objects.
async fn forward(
    mut from: impl AsyncRead + Unpin,
    to: &mut (impl AsyncWrite + Unpin),
    mut preamble: Preamble,
) -> std::io::Result<()> {
    let mut buffer = vec![0; PIPE];
    let mut one = OneTransaction::default();
    loop {
        let n = from.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        to.write_all(&one.filter(&preamble.filter(&buffer[..n])))
            .await?;
    }
    let mut rest = one.filter(&preamble.finish());
    rest.extend(one.finish());
    to.write_all(&rest).await?;
    to.flush().await
}

/// pg_dump and pg_restore write each block of large-object data inside its
/// own `BEGIN;` … `COMMIT;` (pg_restore's script and a plain dump alike):
/// that `COMMIT;` would commit psql's one transaction half-way, everything
/// before it restored before the dump's SHA-256 is known, and everything
/// after it outside any transaction. Only those two lines are dropped: a
/// `BEGIN;` right after the block's header comment (`-- Data for Name: …;
/// Type: BLOBS; …`), and the first `COMMIT;` after it, which ends the
/// block (the lines between are its `SELECT pg_catalog.lo_…` calls). Rows of a
/// `COPY` are data, never looked at; lines are passed on as they come, so
/// memory stays that of one short line whatever the script holds.
#[derive(Debug, Default)]
struct OneTransaction {
    section: Section,
    /// The current line's first bytes: all of it while it is short.
    head: Vec<u8>,
    /// A long line's last bytes.
    tail: Vec<u8>,
    /// The current line outgrew its head and is being passed on as it comes.
    long: bool,
}

/// Where a line of the script stands.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Section {
    /// Statements.
    #[default]
    Statements,
    /// A `COPY … FROM stdin;`'s rows, up to `\.`.
    Rows,
    /// After a block of large objects' header comment, before its `BEGIN;`.
    ObjectsHead,
    /// Inside a block of large objects, up to its `COMMIT;`.
    Objects,
}

/// A line longer than this is passed on as it comes (and is never dropped).
const LINE_HEAD: usize = 512;

/// The end of a long line that is kept: enough for ` FROM stdin;`.
const LINE_TAIL: usize = 16;

impl OneTransaction {
    /// The bytes to pass on for the next `bytes` of the script.
    fn filter(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        let mut rest = bytes;
        while !rest.is_empty() {
            let end = memchr::memchr(b'\n', rest);
            let part = &rest[..end.unwrap_or(rest.len())];
            self.take(part, &mut out);
            rest = &rest[part.len()..];
            if end.is_some() {
                rest = &rest[1..];
                self.end_line(&mut out);
            }
        }
        out
    }

    /// What is left at the end of the script: a last line without its newline.
    fn finish(&mut self) -> Vec<u8> {
        if self.long {
            Vec::new()
        } else {
            std::mem::take(&mut self.head)
        }
    }

    fn take(&mut self, part: &[u8], out: &mut Vec<u8>) {
        if !self.long && self.head.len() + part.len() <= LINE_HEAD {
            self.head.extend_from_slice(part);
            return;
        }
        if !self.long {
            self.long = true;
            out.extend_from_slice(&self.head);
            self.tail = self.head.clone();
            let room = LINE_HEAD - self.head.len();
            self.head.extend_from_slice(&part[..room.min(part.len())]);
        }
        out.extend_from_slice(part);
        self.tail.extend_from_slice(part);
        let excess = self.tail.len().saturating_sub(LINE_TAIL);
        self.tail.drain(..excess);
    }

    fn end_line(&mut self, out: &mut Vec<u8>) {
        let head = std::mem::take(&mut self.head);
        let tail = std::mem::take(&mut self.tail);
        let whole = !self.long;
        let pass = self.step(&head, if whole { &head } else { &tail }, whole);
        if pass && whole {
            out.extend_from_slice(&head);
        }
        if pass {
            out.push(b'\n');
        }
        self.long = false;
        self.head = head;
        self.head.clear();
    }

    /// Moves to the section after a line that begins with `head` and ends
    /// with `tail` (`whole`: `head` is all of it); whether it is passed on.
    fn step(&mut self, head: &[u8], tail: &[u8], whole: bool) -> bool {
        let is = |text: &[u8]| whole && head == text;
        match self.section {
            Section::Rows => {
                if is(b"\\.") {
                    self.section = Section::Statements;
                }
                return true;
            }
            Section::ObjectsHead if is(b"BEGIN;") => {
                self.section = Section::Objects;
                return false;
            }
            Section::ObjectsHead if head.is_empty() || head.starts_with(b"--") => return true,
            Section::Objects if is(b"COMMIT;") => {
                self.section = Section::Statements;
                return false;
            }
            Section::Objects => return true,
            _ => {}
        }
        self.section = if head.starts_with(b"COPY ") && tail.ends_with(b" FROM stdin;") {
            Section::Rows
        } else if head.starts_with(b"-- Data for Name: ")
            && memchr::memmem::find(head, b"; Type: BLOBS;").is_some()
        {
            Section::ObjectsHead
        } else {
            Section::Statements
        };
        true
    }
}

/// The fixed settings at the head of a script, where pg_dump and pg_restore
/// 17 and later write `SET transaction_timeout = 0;`. For a server older
/// than 17 that one line is dropped; nothing after the head (no data) is
/// looked at.
#[derive(Debug)]
struct Preamble {
    pending: Vec<u8>,
    done: bool,
}

/// The line a server older than PostgreSQL 17 refuses.
const TRANSACTION_TIMEOUT: &[u8] = b"SET transaction_timeout = 0;";

/// A head line longer than this ends the head.
const HEAD_LINE: usize = 4096;

impl Preamble {
    fn new(strip: bool) -> Self {
        Preamble {
            pending: Vec::new(),
            done: !strip,
        }
    }

    /// The bytes to pass on for the next `bytes` of the script.
    fn filter<'a>(&mut self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        if self.done {
            return Cow::Borrowed(bytes);
        }
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::with_capacity(self.pending.len());
        let mut start = 0;
        while let Some(end) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line = &self.pending[start..start + end];
            start += end + 1;
            if line == TRANSACTION_TIMEOUT {
                self.done = true;
                break;
            }
            out.extend_from_slice(line);
            out.push(b'\n');
            if !is_setting(line) {
                self.done = true;
                break;
            }
        }
        if self.done || self.pending.len() - start > HEAD_LINE {
            self.done = true;
            out.extend_from_slice(&self.pending[start..]);
            self.pending = Vec::new();
        } else {
            self.pending.drain(..start);
        }
        Cow::Owned(out)
    }

    /// What is left at the end of the script.
    fn finish(&mut self) -> Vec<u8> {
        self.done = true;
        std::mem::take(&mut self.pending)
    }
}

/// A line of a script's head: blank, a comment, a setting, or psql's `\restrict`.
fn is_setting(line: &[u8]) -> bool {
    line.is_empty()
        || line.starts_with(b"--")
        || line.starts_with(b"SET ")
        || line.starts_with(b"SELECT pg_catalog.set_config(")
        || line.starts_with(b"\\restrict ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\nSET statement_timeout = 0;\nSET lock_timeout = 0;\nSET transaction_timeout = 0;\nSET client_encoding = 'UTF8';\nSELECT pg_catalog.set_config('search_path', '', false);\n\nCREATE TABLE public.t (v text);\n\nCOPY public.t (v) FROM stdin;\nSET transaction_timeout = 0;\n\\.\n";

    /// The script through a preamble fed `step` bytes at a time.
    fn through(strip: bool, script: &str, step: usize) -> String {
        let mut preamble = Preamble::new(strip);
        let mut out = Vec::new();
        for chunk in script.as_bytes().chunks(step) {
            out.extend_from_slice(&preamble.filter(chunk));
        }
        out.extend(preamble.finish());
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn an_older_server_gets_the_script_without_transaction_timeout_and_nothing_else_changes() {
        let without = HEAD.replacen("SET transaction_timeout = 0;\n", "", 1);
        for step in [1, 2, 7, 64, 4096] {
            assert_eq!(through(true, HEAD, step), without, "step {step}");
            assert_eq!(through(false, HEAD, step), HEAD, "step {step}");
        }
        // The same line as a row of data, after the head, is data.
        assert!(without.contains("FROM stdin;\nSET transaction_timeout = 0;\n"));
    }

    #[test]
    fn a_script_without_the_setting_passes_unchanged() {
        let script =
            "--\nSET lock_timeout = 0;\nCREATE TABLE t (v text);\nSET transaction_timeout = 0;\n";
        assert_eq!(through(true, script, 3), script);
        let long = format!(
            "--{}\nSET transaction_timeout = 0;\n",
            "x".repeat(HEAD_LINE * 2)
        );
        assert_eq!(through(true, &long, 1000), long);
        assert_eq!(
            through(true, "SET lock_timeout = 0;", 5),
            "SET lock_timeout = 0;"
        );
    }

    /// The script through [`OneTransaction`] fed `step` bytes at a time.
    fn in_one(script: &str, step: usize) -> String {
        let mut one = OneTransaction::default();
        let mut out = Vec::new();
        for chunk in script.as_bytes().chunks(step) {
            out.extend(one.filter(chunk));
        }
        out.extend(one.finish());
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn a_block_of_large_objects_loses_its_own_transaction_and_nothing_else_changes() {
        let long_write = format!("SELECT pg_catalog.lowrite(0, '\\x{}');", "ab".repeat(5000));
        let long_copy = format!(
            "COPY public.wide ({}) FROM stdin;",
            (0..200)
                .map(|i| format!("c{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        // What pg_restore 18 writes (PostgreSQL 17 and later name the block
        // by its objects' range; older ones `BLOBS`), with the lines that
        // must stay: a procedure's COMMIT, and rows that look like statements.
        let script = format!(
            "SET lock_timeout = 0;\n\nCREATE PROCEDURE public.p() LANGUAGE plpgsql AS $$\nBEGIN\nCOMMIT;\nEND $$;\n\n\
             COPY public.t (v) FROM stdin;\nBEGIN;\n-- Data for Name: x; Type: BLOBS; Schema: -; Owner: -\nBEGIN;\nCOMMIT;\n\\.\n\n\
             {long_copy}\nBEGIN;\nCOMMIT;\n\\.\n\n\
             --\n-- Data for Name: 16389..16390; Type: BLOBS; Schema: -; Owner: pgt\n--\n\nBEGIN;\n\n\
             SELECT pg_catalog.lo_open('16389', 131072);\n{long_write}\nSELECT pg_catalog.lo_close(0);\n\nCOMMIT;\n\n\
             --\n-- Data for Name: BLOBS; Type: BLOBS; Schema: -; Owner: -\n--\n\nBEGIN;\n\nSELECT pg_catalog.lo_open('16390', 131072);\nSELECT pg_catalog.lo_close(0);\n\nCOMMIT;\n\n\
             CREATE INDEX i ON public.t (v);\nCOMMIT;\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc"
        );
        let expected = script.replacen("--\n\nBEGIN;\n", "--\n\n", 2).replacen(
            "lo_close(0);\n\nCOMMIT;\n",
            "lo_close(0);\n\n",
            2,
        );
        assert_eq!(expected.len(), script.len() - 2 * "BEGIN;\nCOMMIT;\n".len());
        for step in [1, 2, 5, 64, 511, 512, 513, 4096, 1 << 20] {
            assert_eq!(in_one(&script, step), expected, "step {step}");
        }
        // Never one of the pair without the other: the block ends at its first COMMIT.
        let odd = "-- Data for Name: BLOBS; Type: BLOBS; Schema: -; Owner: -\nBEGIN;\nSELECT 1;\nCOMMIT;\nCOMMIT;\n";
        assert_eq!(
            in_one(odd, 3),
            "-- Data for Name: BLOBS; Type: BLOBS; Schema: -; Owner: -\nSELECT 1;\nCOMMIT;\n"
        );
        let unopened = "-- Data for Name: BLOBS; Type: BLOBS; Schema: -; Owner: -\nSELECT 1;\nBEGIN;\nCOMMIT;\n";
        assert_eq!(
            in_one(unopened, 4),
            unopened,
            "a block without its BEGIN keeps what it has"
        );
        let plain = "CREATE TABLE t (v text);\nBEGIN;\nCOMMIT;\n";
        assert_eq!(in_one(plain, 7), plain);
        // A COPY line just longer than what is kept of a line's head: its rows stay rows.
        for length in LINE_HEAD + 1..LINE_HEAD + 16 {
            let columns = "c".repeat(length - "COPY t () FROM stdin;".len());
            let copy = format!(
                "COPY t ({columns}) FROM stdin;\n-- Data for Name: x; Type: BLOBS; Schema: -; Owner: -\nBEGIN;\nCOMMIT;\n\\.\n"
            );
            assert_eq!(copy.find('\n'), Some(length));
            for step in [3, 5, 7, 511, length - 4] {
                assert_eq!(in_one(&copy, step), copy, "length {length}, step {step}");
            }
        }
    }

    #[test]
    fn targets_parse_and_never_show_a_password() {
        let url = Target::parse(
            "postgresql://restorer:s3cr3t@db.internal:5433/shop_restored?sslmode=verify-full",
        )
        .expect("a URL");
        assert_eq!(
            url.describe(),
            "postgresql://restorer:***@db.internal:5433/shop_restored?sslmode=verify-full"
        );
        let conninfo = Target::parse("host=db dbname=shop password=s3cr3t").expect("conninfo");
        assert_eq!(conninfo.describe(), "host=db dbname=shop password=***");
        assert_eq!(
            Target::parse("postgresql:///shop")
                .expect("local")
                .describe(),
            "postgresql:///shop"
        );
        let entry = Target::parse(
            r#"{"host": "db.internal", "dbname": "shop_restored", "secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:restore"}"#,
        )
        .expect("an entry");
        assert_eq!(entry.describe(), "db.internal:5432/shop_restored");
        for (text, says) in [
            ("", "--to is empty"),
            ("{", "--to is not JSON"),
            (r#"{"host": 1}"#, "invalid type"),
            (r#"{"host": "db"}"#, "missing field `dbname`"),
            (
                r#"{"host": "db", "dbname": "x", "secret_arn": "a", "sslmode": "maybe"}"#,
                "unknown variant `maybe`",
            ),
        ] {
            let err = Target::parse(text).expect_err(text);
            assert!(err.contains(says), "{text}: {err}");
        }
    }
}
