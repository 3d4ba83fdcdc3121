//! PostgreSQL's client programs (`pg_dump`, and for restores `pg_restore` and
//! `psql`): finding them and their version, starting them with the password in
//! their environment only, and saying in words why pg_dump failed.

use crate::postgres::database::{Database, DumpFormat, SslMode};
use crate::postgres::secret::Credentials;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use tokio::io::AsyncReadExt;
use tokio::process::{ChildStderr, Command};

/// Where the Lambda layer puts PostgreSQL's programs (their libraries are in `../lib`).
pub const LAYER_BIN: &str = "/opt/pgsql/bin";

/// The layer's CA bundle, beside `bin/` (`/opt/pgsql/ca-bundle.pem`), when it was built with one.
pub const CA_BUNDLE: &str = "ca-bundle.pem";

/// How much of `pg_dump`'s standard error is kept for the report.
const STDERR_TAIL: usize = 8 << 10;

/// A PostgreSQL client program and the version it reports.
#[derive(Debug, Clone)]
pub struct PgTool {
    path: PathBuf,
    /// Its name (`pg_dump`) and the variable that names it (`PG_DUMP_PATH`).
    program: Program,
    /// Its version, as it prints it (`18.6`).
    pub version: String,
    /// Its major version (`18`).
    pub major: u32,
}

/// A client program Lifeboat runs, and the variable that can name its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Program {
    /// Its file name.
    pub name: &'static str,
    /// The environment variable that gives its path.
    pub setting: &'static str,
}

/// `pg_dump`, found by `PG_DUMP_PATH`.
pub const PG_DUMP: Program = Program {
    name: "pg_dump",
    setting: "PG_DUMP_PATH",
};

/// `pg_restore`, found by `PG_RESTORE_PATH`.
pub const PG_RESTORE: Program = Program {
    name: "pg_restore",
    setting: "PG_RESTORE_PATH",
};

impl PgTool {
    /// Runs `<program> --version`; the error says what to fix.
    pub async fn probe(program: Program, path: &Path) -> Result<Self, String> {
        let out = Command::new(path)
            .arg("--version")
            .env_clear()
            .envs(library_path(path))
            .output()
            .await
            .map_err(|e| {
                format!(
                    "cannot run {} at {} ({}): {e}",
                    program.name,
                    path.display(),
                    program.setting
                )
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        let (major, version) = parse_version(program.name, &text).ok_or_else(|| {
            format!(
                "{} ({}) printed no {} version: {:?}",
                path.display(),
                program.setting,
                program.name,
                text.trim()
            )
        })?;
        Ok(PgTool {
            path: path.to_owned(),
            program,
            version,
            major,
        })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The program beside this one (`psql` beside `pg_restore`), of the same
    /// installation; the error says where it was looked for.
    pub async fn sibling(&self, name: &'static str) -> Result<Self, String> {
        let path = self.path.with_file_name(name);
        if !path.is_file() {
            return Err(format!(
                "no {name} beside {} ({}): install PostgreSQL's client programs there",
                self.path.display(),
                self.program.setting
            ));
        }
        let program = Program {
            name,
            setting: self.program.setting,
        };
        Self::probe(program, &path).await
    }

    /// The program, with the libraries beside it on its library path, in an
    /// environment that starts empty (`clean`) or is the caller's.
    pub fn run(&self, clean: bool) -> Command {
        let mut command = Command::new(&self.path);
        if clean {
            command.env_clear();
        }
        command.envs(library_path(&self.path)).kill_on_drop(true);
        command
    }

    /// What libpq is told about TLS and authentication for `db`, or why the
    /// connection cannot be made safely: `PGREQUIREAUTH` (SCRAM unless the payload
    /// says otherwise, so that a man in the middle cannot ask for the password
    /// in clear), and for `verify-ca`/`verify-full` the CA bundle in
    /// `PGSSLROOTCERT` (the environment's, else the layer's `ca-bundle.pem`).
    /// The bundle is given to those modes only: under `require`, libpq would
    /// verify against any bundle it is given, and fail servers that the
    /// payload asked only to encrypt to.
    pub fn security(&self, db: &Database) -> Result<Vec<(&'static str, OsString)>, String> {
        let mut env = Vec::new();
        if let Some(methods) = db.require_auth() {
            if self.major < 16 {
                return Err(format!(
                    "{} {} cannot refuse weaker password authentication (libpq's require_auth needs 16 or later): deploy the layer's {0}, or set require_auth to \"any\" for this database",
                    self.program.name, self.version
                ));
            }
            env.push(("PGREQUIREAUTH", OsString::from(methods)));
        }
        let mode = db.sslmode();
        if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) {
            let bundle = self.ca_bundle().ok_or_else(|| {
                format!(
                    "sslmode {} needs the server's CA bundle, and none is configured: build the layer with it (make build CA_BUNDLE=path/to/global-bundle.pem; RDS's is https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem), or set PGSSLROOTCERT",
                    mode.as_str()
                )
            })?;
            env.push(("PGSSLROOTCERT", bundle.into_os_string()));
        }
        Ok(env)
    }

    /// `PGSSLROOTCERT` if set, else the layer's `ca-bundle.pem` beside `bin/` if it is there.
    fn ca_bundle(&self) -> Option<PathBuf> {
        if let Some(root) = std::env::var_os("PGSSLROOTCERT").filter(|r| !r.is_empty()) {
            return Some(root.into());
        }
        let bundle = self.path.parent()?.parent()?.join(CA_BUNDLE);
        bundle.is_file().then_some(bundle)
    }

    /// The command that dumps `db` to standard output. Connection settings
    /// and the password go in the child's environment, which starts empty:
    /// nothing on the command line, where `ps` would show it. `security` is
    /// what [`PgTool::security`] allowed.
    pub fn command(
        &self,
        db: &Database,
        login: &Credentials,
        security: Vec<(&'static str, OsString)>,
    ) -> Command {
        let mut command = self.run(true);
        command
            .arg(match db.dump_format() {
                DumpFormat::Custom => "--format=custom",
                DumpFormat::Plain => "--format=plain",
                DumpFormat::Directory => "--format=directory",
            })
            .arg("--no-password")
            // A table locked by a long migration fails the dump with a reason,
            // rather than waiting silently until Lambda's deadline.
            .arg("--lock-wait-timeout=120s")
            .args(self.compress_flag(db))
            .envs(connection(db, login, "lifeboat-pg-dump"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .envs(security);
        command
    }

    /// `--compress=…`, unless the payload left it to a `pg_dump` older than
    /// 16, which knows only gzip levels and compresses with gzip by default.
    fn compress_flag(&self, db: &Database) -> Option<String> {
        (db.compression.is_some() || self.major >= 16)
            .then(|| format!("--compress={}", db.compression()))
    }

    /// Why a run of this `pg_dump` failed, in words: its last lines of
    /// standard error, or, when the server is newer, both versions.
    pub fn explain(&self, status: ExitStatus, stderr: &str) -> String {
        if let Some(server) = mismatched_server(stderr) {
            let major = server.split('.').next().unwrap_or(&server);
            if major.parse::<u32>().is_ok_and(|m| m <= self.major) {
                return format!(
                    "the server runs PostgreSQL {server}, older than pg_dump {} (PG_DUMP_PATH) can dump (9.2 or later): dump it with a pg_dump of its own era, or upgrade it",
                    self.version
                );
            }
            return format!(
                "the server runs PostgreSQL {server}, newer than pg_dump {} (PG_DUMP_PATH): a pg_dump can only dump servers up to its own major version; deploy the layer with pg_dump {major} or later",
                self.version
            );
        }
        let failure = self.failure(status, stderr);
        if stderr.contains("could not obtain lock on relation") {
            // A parallel worker locks each table with NOWAIT: a lock
            // request that queued behind the dump's own makes it fail.
            return format!(
                "{failure}. Another session asked for an exclusive lock on a table while this parallel dump (`jobs`) ran: pg_dump's workers take their locks with NOWAIT, so the dump stopped rather than wait. Keep migrations, VACUUM FULL, REINDEX, CLUSTER, TRUNCATE and ALTER TABLE out of the dump's hours (pg_stat_activity shows who asked), or dump this database with `jobs` 1, whose single stream waits for the lock"
            );
        }
        if local_storage_full(stderr) {
            return format!(
                "{failure}. The local storage of the dump (TMPDIR) is full: a dump in the directory format (`jobs`) keeps each file there until it is uploaded, up to the largest tables' compressed data at once. Give the task more ephemeral storage (Terraform `pg_dump.task.ephemeral_storage_gib`, up to 200) or the Lambda run more /tmp (`pg_dump.ephemeral_storage_mb`, up to 10240), or dump this database with `jobs` 1 in the custom format, whose single stream keeps nothing locally"
            );
        }
        failure
    }

    /// Why a run of this program failed, in words: how it ended, its last
    /// lines of standard error, and what to do about a refused certificate
    /// or authentication.
    pub fn failure(&self, status: ExitStatus, stderr: &str) -> String {
        let name = self.program.name;
        let how = match (status.code(), signal(status)) {
            (Some(code), _) => format!("{name} exited with status {code}"),
            (None, Some(sig)) => format!("{name} was killed by signal {sig}"),
            (None, None) => format!("{name} ended abnormally"),
        };
        let lines: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let last = &lines[lines.len().saturating_sub(3)..];
        let said = if last.is_empty() {
            how
        } else {
            format!("{how}: {}", last.join(" / "))
        };
        match tls_advice(stderr) {
            Some(advice) => format!("{said}. {advice}"),
            None => said,
        }
    }
}

/// Whether pg_dump says that a local file it writes, which only a dump in
/// the directory format does, found no space: its own error (pg_dump 15:
/// "could not write to output file: …"; 18: "could not write to file: …",
/// with lz4 "error during writing: …"), not a server's error it passes on
/// ("query failed: ERROR: …", or a FATAL or PANIC).
fn local_storage_full(stderr: &str) -> bool {
    stderr.lines().any(|line| {
        line.starts_with("pg_dump: error: ")
            && line.ends_with(": No space left on device")
            && !["ERROR:", "FATAL:", "PANIC:"]
                .iter()
                .any(|server| line.contains(server))
    })
}

/// libpq's environment for a connection to `db` as `login`: host, port,
/// database, role, password, `sslmode`, a connect timeout and the name the
/// server's activity view shows.
pub fn connection(db: &Database, login: &Credentials, app: &str) -> Vec<(&'static str, OsString)> {
    [
        ("PGHOST", db.host.clone()),
        ("PGPORT", db.port.to_string()),
        ("PGDATABASE", db.dbname.clone()),
        ("PGUSER", login.username.clone()),
        ("PGPASSWORD", login.password.clone()),
        ("PGSSLMODE", db.sslmode().as_str().to_owned()),
        ("PGCONNECT_TIMEOUT", "15".to_owned()),
        ("PGAPPNAME", app.to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name, OsString::from(value)))
    .collect()
}

/// What to do about a certificate that libpq refused, from its words.
fn tls_advice(stderr: &str) -> Option<&'static str> {
    if stderr.contains("does not match host name") {
        Some(
            "The server's certificate names another host: connect by a name the certificate holds (for RDS, the instance or cluster endpoint, not an address or a CNAME), or use sslmode verify-ca",
        )
    } else if stderr.contains("certificate verify failed") {
        Some(
            "The server's certificate is not signed by a CA in the bundle: build the layer with the bundle of the CA that signed it (make build CA_BUNDLE=…; RDS's is global-bundle.pem), or point PGSSLROOTCERT at it",
        )
    } else if stderr.contains("server requested") && stderr.contains("authentication") {
        Some(
            "The server asked for a weaker authentication than require_auth allows (SCRAM by default): set the role's password with SCRAM (password_encryption = scram-sha-256), or name the method in require_auth",
        )
    } else {
        None
    }
}

#[cfg(unix)]
fn signal(status: ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(&status)
}

#[cfg(not(unix))]
fn signal(_: ExitStatus) -> Option<i32> {
    None
}

/// The program to run: as its setting (`PG_DUMP_PATH`) gives it, else the
/// layer's if it is there, else the first on `PATH` (a workstation's `lifeboat`).
pub fn locate(
    program: Program,
    given: Option<PathBuf>,
    path: Option<OsString>,
) -> Result<PathBuf, String> {
    if let Some(given) = given {
        return Ok(given);
    }
    let layer = Path::new(LAYER_BIN).join(program.name);
    if layer.is_file() {
        return Ok(layer);
    }
    path.iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program.name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            let (name, setting) = (program.name, program.setting);
            format!(
                "no {name}: {setting} is not set, the layer's {} is not there, and no {name} is on PATH; install PostgreSQL 18's {name} or set {setting}",
                layer.display()
            )
        })
}

/// `LD_LIBRARY_PATH` for a `pg_dump` whose libraries lie in `../lib` beside it
/// (the layer's layout); libraries its own libraries need are found there too.
fn library_path(path: &Path) -> Option<(&'static str, PathBuf)> {
    let lib = path.parent()?.parent()?.join("lib");
    lib.is_dir().then_some(("LD_LIBRARY_PATH", lib))
}

/// `pg_dump (PostgreSQL) 18.6` or `… 15.18 (Debian 15.18-0+deb12u1)` → (18, "18.6").
pub fn parse_version(program: &str, text: &str) -> Option<(u32, String)> {
    let rest = text
        .trim()
        .strip_prefix(program)?
        .strip_prefix(" (PostgreSQL) ")?;
    let version = rest.split_whitespace().next()?;
    let major = version.split('.').next()?.parse().ok()?;
    Some((major, version.to_owned()))
}

/// The server version in pg_dump's "server version mismatch" refusal.
fn mismatched_server(stderr: &str) -> Option<String> {
    if !stderr.contains("server version mismatch") {
        return None;
    }
    let at = stderr.find("server version: ")? + "server version: ".len();
    let version = stderr[at..].split([';', '\n']).next()?.trim();
    Some(version.to_owned())
}

/// Reads a child's standard error to its end, keeping the last few KiB.
pub async fn read_tail(mut stderr: ChildStderr) -> String {
    let mut kept = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(n) = stderr.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buffer[..n]);
        if kept.len() > 2 * STDERR_TAIL {
            kept.drain(..kept.len() - STDERR_TAIL);
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn tool() -> PgTool {
        PgTool {
            path: PathBuf::from("/opt/pgsql/bin/pg_dump"),
            program: PG_DUMP,
            version: "15.18".into(),
            major: 15,
        }
    }

    #[test]
    fn versions_read_from_pg_dump() {
        assert_eq!(
            parse_version("pg_dump", "pg_dump (PostgreSQL) 18.6\n"),
            Some((18, "18.6".into()))
        );
        assert_eq!(
            parse_version(
                "pg_dump",
                "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
            ),
            Some((15, "15.18".into()))
        );
        assert_eq!(parse_version("pg_dump", "psql (PostgreSQL) 15.18"), None);
        assert_eq!(
            parse_version("psql", "psql (PostgreSQL) 15.18"),
            Some((15, "15.18".into()))
        );
    }

    #[test]
    fn a_newer_server_is_explained_with_both_versions() {
        let stderr = "pg_dump: error: aborting because of server version mismatch\npg_dump: detail: server version: 18.6; pg_dump version: 15.18 (Debian 15.18-0+deb12u1)\n";
        let message = tool().explain(ExitStatus::from_raw(1 << 8), stderr);
        assert!(message.contains("PostgreSQL 18.6"), "{message}");
        assert!(message.contains("pg_dump 15.18"), "{message}");
        assert!(message.contains("pg_dump 18 or later"), "{message}");
    }

    #[test]
    fn a_server_too_old_is_called_too_old() {
        let stderr = "pg_dump: error: aborting because of server version mismatch\npg_dump: detail: server version: 9.1.24; pg_dump version: 15.18\n";
        let message = tool().explain(ExitStatus::from_raw(1 << 8), stderr);
        assert!(
            message.contains("PostgreSQL 9.1.24, older than pg_dump 15.18 (PG_DUMP_PATH) can dump"),
            "{message}"
        );
    }

    #[test]
    fn a_parallel_dump_stopped_by_a_lock_request_says_so_and_what_to_do() {
        // What pg_dump 18's worker says when its NOWAIT lock fails.
        let stderr = "pg_dump: error: could not obtain lock on relation \"sales.orders\"\n\
            This usually means that someone requested an ACCESS EXCLUSIVE lock on the table after the pg_dump parent process had gotten the initial ACCESS SHARE lock on the table.\n\
            pg_dump: error: a worker process died unexpectedly\n";
        let message = tool().explain(ExitStatus::from_raw(1 << 8), stderr);
        assert!(
            message.starts_with("pg_dump exited with status 1: "),
            "{message}"
        );
        assert!(
            message.contains("could not obtain lock on relation \"sales.orders\""),
            "{message}"
        );
        assert!(
            message.contains("pg_dump's workers take their locks with NOWAIT")
                && message.contains("dump this database with `jobs` 1"),
            "{message}"
        );
        // Any other failure is told as it is.
        let other = tool().explain(
            ExitStatus::from_raw(1 << 8),
            "pg_dump: error: connection failed\n",
        );
        assert!(!other.contains("NOWAIT"), "{other}");
    }

    #[test]
    fn a_full_local_storage_says_so_and_what_to_do() {
        // What pg_dump 18.6 said, dumping with `-Fd -j 2` into a 1 MiB tmpfs
        // (zstd, gzip or none).
        let stderr = "pg_dump: error: could not write to file: No space left on device\n\
            pg_dump: error: could not write to file: No space left on device\n\
            pg_dump: error: a worker process died unexpectedly\n";
        let message = tool().explain(ExitStatus::from_raw(1 << 8), stderr);
        assert!(
            message.starts_with("pg_dump exited with status 1: ")
                && message.contains("No space left on device"),
            "{message}"
        );
        assert!(
            message.contains("local storage of the dump (TMPDIR) is full")
                && message.contains("pg_dump.task.ephemeral_storage_gib")
                && message.contains("pg_dump.ephemeral_storage_mb")
                && message.contains("`jobs` 1"),
            "{message}"
        );
        assert!(!message.contains("NOWAIT"), "{message}");
        // pg_dump 18 with lz4, and pg_dump 15, into the same full tmpfs.
        for said in [
            "pg_dump: error: error during writing: No space left on device\n",
            "pg_dump: error: could not write to output file: No space left on device\n",
        ] {
            let message = tool().explain(ExitStatus::from_raw(1 << 8), said);
            assert!(message.contains("(TMPDIR) is full"), "{message}");
        }
        // The server's own disk full is not the dump's local storage.
        let server = tool().explain(
            ExitStatus::from_raw(1 << 8),
            "pg_dump: error: query failed: ERROR:  could not write to file \"base/pgsql_tmp/pgsql_tmp42.0\": No space left on device\n",
        );
        assert!(!server.contains("TMPDIR"), "{server}");
        let panicked = tool().explain(
            ExitStatus::from_raw(1 << 8),
            "pg_dump: error: query failed: server closed the connection unexpectedly\npg_dump: error: connection to server failed: FATAL:  could not write to file \"pg_wal/xlogtemp.42\": No space left on device\n",
        );
        assert!(!panicked.contains("TMPDIR"), "{panicked}");
    }

    #[test]
    fn pg_dump_is_found_as_given_else_on_path_and_the_error_names_all_three() {
        let given = PathBuf::from("/somewhere/pg_dump");
        assert_eq!(locate(PG_DUMP, Some(given.clone()), None), Ok(given));
        if Path::new(LAYER_BIN).join("pg_dump").exists() {
            return; // a machine with the layer installed: the layer's wins
        }
        let dir = std::env::temp_dir().join(format!("lifeboat-locate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("pg_dump"), "").expect("pg_dump");
        let path = std::env::join_paths([Path::new("/nonexistent"), &dir]).expect("PATH");
        assert_eq!(locate(PG_DUMP, None, Some(path)), Ok(dir.join("pg_dump")));
        let none = locate(PG_DUMP, None, Some("/nonexistent".into())).expect_err("nothing to run");
        for named in ["PG_DUMP_PATH", "/opt/pgsql/bin/pg_dump", "PATH"] {
            assert!(none.contains(named), "{none}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn other_failures_keep_the_last_lines() {
        let stderr = "pg_dump: error: connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?\n";
        let message = tool().explain(ExitStatus::from_raw(1 << 8), stderr);
        assert!(
            message.starts_with("pg_dump exited with status 1: "),
            "{message}"
        );
        assert!(
            message.contains("Connection refused / Is the server running"),
            "{message}"
        );
        let killed = tool().explain(ExitStatus::from_raw(9), "");
        assert_eq!(killed, "pg_dump was killed by signal 9");
    }
}
