//! A throwaway PostgreSQL server for a restore drill: a cluster made with
//! `initdb` in a temporary directory, reachable only through its Unix socket
//! in that directory (no TCP listener), its superuser admitted without a
//! password over that socket alone, tuned for a load that is thrown away
//! (no fsync, minimal WAL). Stopped and removed by [`ScratchServer::stop`],
//! or on drop.
//!
//! Lambda runs a function as a uid that has no passwd entry, and `initdb` and
//! `postgres` refuse a user they cannot look up: then the server's programs
//! run under nss_wrapper (the layer's `lib/libnss_wrapper.so`), with a passwd
//! and a group file in the server's directory that name that uid `postgres`.

use crate::postgres::restore::Target;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

/// PostgreSQL refuses to run as root: as root (a workstation's root shell, a
/// container), the server runs as this user.
const SERVER_USER: &str = "postgres";

/// The socket's port number: only its name, as nothing listens on TCP.
const PORT: u16 = 5432;

/// nss_wrapper's library, in the layer's `lib/` beside `bin/`.
const NSS_WRAPPER: &str = "libnss_wrapper.so";

/// A running throwaway server.
#[derive(Debug)]
pub struct ScratchServer {
    bin: PathBuf,
    dir: PathBuf,
    as_other: bool,
    /// The environment that gives the server's uid a passwd entry (nss_wrapper), when it has none.
    identity: Vec<(&'static str, OsString)>,
    stopped: bool,
    /// `postgres --version`'s version (`18.6`).
    pub version: String,
}

/// Connections a drill's server accepts: the restore and its checks need two.
const CONNECTIONS: u64 = 10;

impl ScratchServer {
    /// Makes and starts a cluster with the server programs in `bin`
    /// (`initdb`, `pg_ctl`, `postgres`) under `parent`. The error says which
    /// step failed and what the program said. Its lock table holds at
    /// least `locks` (a restore holds one per object it creates until it
    /// commits): see [`Recorded::locks`](crate::postgres::verify::Recorded::locks).
    pub async fn start(bin: &Path, parent: &Path, locks: u64) -> Result<Self, String> {
        for program in ["initdb", "pg_ctl", "postgres"] {
            if !bin.join(program).is_file() {
                return Err(format!(
                    "no {program} in {}: a drill restores into a PostgreSQL server it starts itself, from the programs beside pg_restore",
                    bin.display()
                ));
            }
        }
        let dir = parent.join(format!("lifeboat-drill-{}", crate::runtime::run_token()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
        let as_other = is_root();
        let mut server = ScratchServer {
            bin: bin.to_owned(),
            dir,
            as_other,
            identity: Vec::new(),
            stopped: false,
            version: String::new(),
        };
        if as_other {
            let chown = Command::new("chown")
                .arg(SERVER_USER)
                .arg(&server.dir)
                .output()
                .await;
            check("chown", chown)?;
        } else {
            server.identity = identity(bin, &server.dir)?;
        }
        let data = server.dir.join("data");
        let initdb = server
            .program("initdb")
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .arg("-D")
            .arg(&data)
            .output()
            .await;
        check("initdb", initdb).map_err(|e| match server.missing_identity() {
            Some(hint) => format!("{e} ({hint})"),
            None => e,
        })?;
        // Lambda has no usable /dev/shm: dynamic shared memory in files of the data directory.
        // The lock table is max_locks_per_transaction × (max_connections and
        // the server's own processes, about twenty more): twice `locks` at least.
        let per_connection = (locks / CONNECTIONS + 64).max(64);
        let options = format!(
            "-c listen_addresses='' -k {} -p {PORT} -c dynamic_shared_memory_type=mmap -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c wal_level=minimal -c max_wal_senders=0 -c max_connections={CONNECTIONS} -c max_locks_per_transaction={per_connection}",
            server.dir.display()
        );
        let started = server
            .program("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(server.dir.join("server.log"))
            .args(["-w", "-t", "120", "-o", &options, "start"])
            .output()
            .await;
        check("pg_ctl start", started).map_err(|e| format!("{e}; {}", server.log_tail()))?;
        let version = server.program("postgres").arg("--version").output().await;
        server.version = check("postgres --version", version)?
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_owned();
        Ok(server)
    }

    /// The database `dbname` of this server, as a restore target.
    pub fn target(&self, dbname: &str) -> Target {
        Target::Conninfo(format!(
            "host={} port={PORT} user=postgres dbname={dbname}",
            self.dir.display()
        ))
    }

    /// Stops the server at once (its data is thrown away) and removes its directory.
    pub async fn stop(mut self) {
        let data = self.dir.join("data");
        let _ = self
            .program("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        let _ = std::fs::remove_dir_all(&self.dir);
        self.stopped = true;
    }

    fn program(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        let mut command = if self.as_other {
            let mut c = Command::new("runuser");
            c.args(["-u", SERVER_USER, "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        command.kill_on_drop(true);
        command.envs(self.environment());
        command
    }

    /// `LD_LIBRARY_PATH` to the libraries beside `bin/`, and nss_wrapper's settings when needed.
    fn environment(&self) -> Vec<(&'static str, OsString)> {
        let mut env = self.identity.clone();
        if let Some(lib) = library_dir(&self.bin) {
            env.push(("LD_LIBRARY_PATH", lib.into_os_string()));
        }
        env
    }

    /// Why initdb may have refused this uid: it has no passwd entry, and no nss_wrapper gives it one.
    fn missing_identity(&self) -> Option<String> {
        let (uid, _) = ids();
        (!self.as_other && self.identity.is_empty() && !has_passwd_entry(uid)).then(|| {
            format!(
                "uid {uid} has no passwd entry and there is no {NSS_WRAPPER} in {} to give it one",
                library_dir(&self.bin)
                    .unwrap_or_else(|| self.bin.join("../lib"))
                    .display()
            )
        })
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        format!(
            "the server's log ends: {}",
            lines[lines.len().saturating_sub(3)..].join(" / ")
        )
    }
}

impl Drop for ScratchServer {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        let path = self.bin.join("pg_ctl");
        let mut command = if self.as_other {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", SERVER_USER, "--"]).arg(path);
            c
        } else {
            std::process::Command::new(path)
        };
        let _ = command
            .envs(self.environment())
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    ids().0 == 0
}

/// This process's effective uid and gid (the owner of `/proc/self`), as no libc call is at hand.
fn ids() -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or((u32::MAX, u32::MAX), |m| (m.uid(), m.gid()))
}

/// `lib/` beside `bin/`, where the layer keeps the programs' libraries.
fn library_dir(bin: &Path) -> Option<PathBuf> {
    bin.parent().map(|p| p.join("lib")).filter(|l| l.is_dir())
}

/// Whether `/etc/passwd` has an entry for `uid`. (Only the file: Lambda's
/// system has no other name service. A uid that only another service knows
/// gets nss_wrapper's entry, which is as good for the server.)
fn has_passwd_entry(uid: u32) -> bool {
    passwd_has(
        &std::fs::read_to_string("/etc/passwd").unwrap_or_default(),
        uid,
    )
}

fn passwd_has(passwd: &str, uid: u32) -> bool {
    passwd
        .lines()
        .any(|line| line.split(':').nth(2) == Some(uid.to_string().as_str()))
}

/// For a uid without a passwd entry: nss_wrapper's settings, with its passwd
/// and group files written in `dir`; none when the uid has an entry, or when
/// there is no nss_wrapper beside `bin` (initdb's refusal then says so).
fn identity(bin: &Path, dir: &Path) -> Result<Vec<(&'static str, OsString)>, String> {
    let (uid, gid) = ids();
    if has_passwd_entry(uid) {
        return Ok(Vec::new());
    }
    let Some(wrapper) = library_dir(bin)
        .map(|lib| lib.join(NSS_WRAPPER))
        .filter(|w| w.is_file())
    else {
        return Ok(Vec::new());
    };
    let passwd = dir.join("passwd");
    let group = dir.join("group");
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write(
        &passwd,
        format!(
            "postgres:x:{uid}:{gid}:PostgreSQL:{}:/bin/false\n",
            dir.display()
        ),
    )?;
    write(&group, format!("postgres:x:{gid}:\n"))?;
    Ok(vec![
        ("LD_PRELOAD", wrapper.into_os_string()),
        ("NSS_WRAPPER_PASSWD", passwd.into_os_string()),
        ("NSS_WRAPPER_GROUP", group.into_os_string()),
    ])
}

/// The program's standard output, or what it said on failing.
fn check(what: &str, out: std::io::Result<std::process::Output>) -> Result<String, String> {
    let out = out.map_err(|e| format!("cannot run {what}: {e}"))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
        return Err(format!(
            "{what} failed: {}",
            lines[lines.len().saturating_sub(3)..].join(" / ")
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passwd_entry_is_found_by_its_uid_field_only() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\npostgres:x:105:111::/var/lib/postgresql:/bin/bash\n";
        assert!(passwd_has(passwd, 0));
        assert!(passwd_has(passwd, 105));
        // 111 is a gid there, 993 nowhere: neither is a uid with an entry.
        assert!(!passwd_has(passwd, 111));
        assert!(!passwd_has(passwd, 993));
        assert!(!passwd_has("", 0));
    }
}
