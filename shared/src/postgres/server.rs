//! A throwaway PostgreSQL server for a restore drill: a cluster made with
//! `initdb` in a temporary directory, reachable only through its Unix socket
//! in that directory (no TCP listener), its superuser admitted without a
//! password over that socket alone, tuned for a load that is thrown away
//! (no fsync, minimal WAL). Stopped and removed by [`ScratchServer::stop`],
//! or on drop.

use crate::postgres::restore::Target;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

/// PostgreSQL refuses to run as root: as root (a workstation's root shell, a
/// container), the server runs as this user.
const SERVER_USER: &str = "postgres";

/// The socket's port number: only its name, as nothing listens on TCP.
const PORT: u16 = 5432;

/// A running throwaway server.
#[derive(Debug)]
pub struct ScratchServer {
    bin: PathBuf,
    dir: PathBuf,
    as_other: bool,
    stopped: bool,
    /// `postgres --version`'s version (`18.6`).
    pub version: String,
}

impl ScratchServer {
    /// Makes and starts a cluster with the server programs in `bin`
    /// (`initdb`, `pg_ctl`, `postgres`) under `parent`. The error says which
    /// step failed and what the program said.
    pub async fn start(bin: &Path, parent: &Path) -> Result<Self, String> {
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
        check("initdb", initdb)?;
        let options = format!(
            "-c listen_addresses='' -k {} -p {PORT} -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c wal_level=minimal -c max_wal_senders=0",
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
        if let Some(lib) = self
            .bin
            .parent()
            .map(|p| p.join("lib"))
            .filter(|l| l.is_dir())
        {
            command.env("LD_LIBRARY_PATH", lib);
        }
        command
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
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
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
