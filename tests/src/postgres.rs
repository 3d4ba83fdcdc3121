//! Real PostgreSQL servers for the tests: a throwaway cluster per test on a
//! free loopback port, with password (SCRAM) authentication, from Debian's
//! PostgreSQL 15 or the newest major that `make setup` unpacks into `.state/`.

use crate::{TempDir, free_port, repo_root};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Debian's PostgreSQL 15 server binaries.
pub fn pg15_bin() -> PathBuf {
    PathBuf::from("/usr/lib/postgresql/15/bin")
}

/// The newest PostgreSQL's binaries (`.state/postgresql-<version>/bin`, from
/// `make setup`, or where that links to).
pub fn newest_bin() -> PathBuf {
    let state = repo_root().join(".state");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&state)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("postgresql-"))
                && p.join("bin/pg_dump").exists()
        })
        .collect();
    found.sort();
    let dir = found
        .pop()
        .expect("the newest PostgreSQL in .state/: run `make setup` first");
    // Where `make setup` put it outside a checkout that `postgres` cannot enter,
    // .state/ holds a link: the server runs from the link's target.
    std::fs::canonicalize(&dir).unwrap_or(dir).join("bin")
}

/// A test server keeps little WAL: only what crash recovery of a server
/// that no replica follows needs, recycled past 64 MB (the large-schema test
/// alone wrote 650 MB of it with the defaults, on a disk that CI shares).
const LEAN_WAL: &str =
    "-c wal_level=minimal -c max_wal_senders=0 -c max_wal_size=64MB -c min_wal_size=32MB";

/// A running PostgreSQL cluster, stopped and removed when dropped.
pub struct PgServer {
    /// Its binaries.
    pub bin: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The superuser `postgres`'s password.
    pub password: String,
    dir: TempDir,
}

/// PostgreSQL refuses to run as root: run its server programs as `postgres` then.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn check(what: &str, out: std::io::Result<Output>) -> Output {
    let out = out.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl PgServer {
    /// Creates and starts a cluster with these binaries.
    pub fn start(bin: &Path) -> Self {
        Self::start_with(bin, None, "")
    }

    /// Creates and starts a cluster with `ssl = on`, serving this certificate.
    pub fn start_tls(bin: &Path, certificate: &Issued) -> Self {
        Self::start_with(bin, Some(certificate), "")
    }

    /// Creates and starts a cluster with these server settings (`-c name=value …`).
    pub fn start_with_settings(bin: &Path, settings: &str) -> Self {
        Self::start_with(bin, None, settings)
    }

    fn start_with(bin: &Path, tls: Option<&Issued>, settings: &str) -> Self {
        let dir = TempDir::new("pg");
        let password = format!("pw-{}-{}", std::process::id(), free_port());
        let data = dir.path.join("data");
        let pwfile = dir.path.join("pwfile");
        std::fs::write(&pwfile, &password).expect("password file");
        if is_root() {
            check(
                "chown",
                Command::new("chown")
                    .args(["-R", "postgres"])
                    .arg(&dir.path)
                    .output(),
            );
        }
        check(
            "initdb",
            as_server_user(&bin.join("initdb"))
                .args(["-U", "postgres", "--auth=scram-sha-256", "--no-sync"])
                .arg("-D")
                .arg(&data)
                .arg(format!("--pwfile={}", pwfile.display()))
                .output(),
        );
        let mut options = format!(" {settings}");
        if let Some(issued) = tls {
            for (from, to) in [(&issued.cert, "server.crt"), (&issued.key, "server.key")] {
                let path = data.join(to);
                std::fs::copy(from, &path).expect("certificate into the data directory");
                // The server refuses a key that others can read.
                std::fs::set_permissions(
                    &path,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )
                .expect("chmod");
            }
            if is_root() {
                check(
                    "chown",
                    Command::new("chown")
                        .arg("postgres")
                        .arg(data.join("server.crt"))
                        .arg(data.join("server.key"))
                        .output(),
                );
            }
            options.push_str(" -c ssl=on");
        }
        let port = free_port();
        check(
            "pg_ctl start",
            as_server_user(&bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.path.join("server.log"))
                .args(["-w", "-o"])
                .arg(format!(
                    "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c full_page_writes=off {LEAN_WAL}{options}",
                    dir.path.display()
                ))
                .arg("start")
                .output(),
        );
        PgServer {
            bin: bin.to_owned(),
            port,
            password,
            dir,
        }
    }

    /// Lets host connections in with `method` (`password`: in clear) only, from now on.
    pub fn authenticate_with(&self, method: &str) {
        let hba = self.dir.path.join("data/pg_hba.conf");
        std::fs::write(
            &hba,
            format!("local all all trust\nhost all all 127.0.0.1/32 {method}\n"),
        )
        .expect("pg_hba.conf");
        check(
            "pg_ctl reload",
            as_server_user(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.path.join("data"))
                .arg("reload")
                .output(),
        );
    }

    /// A client program of this server's version, connected as `postgres`.
    pub fn client(&self, program: &str) -> Command {
        self.client_with(&self.bin, program)
    }

    /// A client program from `bin`, connected to this server as `postgres`.
    pub fn client_with(&self, bin: &Path, program: &str) -> Command {
        let mut c = Command::new(bin.join(program));
        c.env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", "postgres")
            .env("PGPASSWORD", &self.password);
        c
    }

    /// Runs SQL in `dbname` and returns what psql printed (tuples only, unaligned).
    pub fn sql(&self, dbname: &str, sql: &str) -> String {
        let out = check(
            &format!("psql {dbname}"),
            self.client("psql")
                .args([
                    "-X",
                    "-q",
                    "-t",
                    "-A",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-d",
                    dbname,
                    "-c",
                ])
                .arg(sql)
                .output(),
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The server's version (`18.6`).
    pub fn version(&self) -> String {
        self.sql("postgres", "SHOW server_version")
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// Every user table of `dbname` with its row count and a checksum of its
    /// rows in primary-key order, and every large object with a checksum: what
    /// a restore must reproduce exactly.
    pub fn fingerprint(&self, dbname: &str) -> Vec<String> {
        let tables = self.sql(
            dbname,
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables \
             WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
        );
        let mut lines: Vec<String> = tables
            .lines()
            .map(|table| {
                let sums = self.sql(
                    dbname,
                    &format!(
                        "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text COLLATE \"C\")), '-') FROM {table} t"
                    ),
                );
                format!("{table} {sums}")
            })
            .collect();
        lines.push(self.sql(
            dbname,
            "SELECT 'large objects ' || count(*) || ' ' || coalesce(md5(string_agg(oid::text || ':' || md5(lo_get(oid)), ',' ORDER BY oid)), '-') FROM pg_largeobject_metadata",
        ));
        lines
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path.join("server.log")).unwrap_or_default()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// Fills `dbname` with a database of about `mib` MiB: two schemas, text,
/// numeric, timestamps, JSON, bytea, a large object, and an index.
pub fn generate(server: &PgServer, dbname: &str, mib: u32) {
    // About 300 bytes a row in sales.orders, 100 in audit.events; the
    // receipts are hashes, so a compressed dump stays large.
    let orders = mib * 1700;
    server.sql("postgres", &format!("CREATE DATABASE {dbname}"));
    server.sql(
        dbname,
        &format!(
            "CREATE SCHEMA sales; CREATE SCHEMA audit;
             CREATE TABLE sales.orders (id bigint PRIMARY KEY, customer text NOT NULL,
               amount numeric(12,2), placed_at timestamptz, details jsonb, receipt bytea);
             INSERT INTO sales.orders
               SELECT g, 'customer-' || (g % 977), round((g * 1.37)::numeric % 10000, 2),
                      timestamptz '2026-01-01 00:00Z' + g * interval '1 minute',
                      jsonb_build_object('items', g % 7, 'note', md5(g::text), 'tags', jsonb_build_array('a', g % 3)),
                      sha256(int8send(g)) || sha256(int8send(-g)) || sha256(int8send(g * 3)) || sha256(int8send(g * 5))
                      || sha256(int8send(g * 7)) || sha256(int8send(g * 11)) || sha256(int8send(g * 13)) || sha256(int8send(g * 17))
               FROM generate_series(1, {orders}) g;
             CREATE INDEX ON sales.orders (customer);
             CREATE TABLE audit.events (id serial PRIMARY KEY, kind text, body text, at date);
             INSERT INTO audit.events (kind, body, at)
               SELECT (ARRAY['login', 'refund', 'export'])[1 + g % 3], 'event ' || g || ' ' || md5(g::text),
                      date '2026-01-01' + g % 365
               FROM generate_series(1, {}) g;
             CREATE TABLE audit.documents (name text PRIMARY KEY, body oid);
             INSERT INTO audit.documents VALUES
               ('contract', lo_from_bytea(0, decode(repeat(md5('contract'), 4096), 'hex')));",
            orders
        ),
    );
}

/// A loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    free_port()
}

/// A certificate authority made for one test, with `openssl`.
pub struct TestCa {
    dir: TempDir,
    /// Its certificate: the bundle a client trusts.
    pub cert: PathBuf,
    key: PathBuf,
}

/// A certificate and its key, issued by a [`TestCa`].
pub struct Issued {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

fn openssl(what: &str, args: &[&str], dir: &Path) {
    check(
        what,
        Command::new("openssl").args(args).current_dir(dir).output(),
    );
}

/// `openssl req` for a new P-256 key `<key>.key` and `out` (a request, or
/// with `-x509` a self-signed certificate) for the common name `name`.
fn new_key(what: &str, dir: &Path, extra: &[&str], key: &str, out: &str, name: &str) {
    let (key, subject) = (format!("{key}.key"), format!("/CN={name}"));
    let mut args = vec!["req"];
    args.extend_from_slice(extra);
    args.extend([
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        out,
        "-subj",
        &subject,
    ]);
    openssl(what, &args, dir);
}

impl TestCa {
    /// A new self-signed CA called `name`, valid for a day.
    pub fn new(name: &str) -> Self {
        let dir = TempDir::new("ca");
        new_key(
            "CA certificate",
            &dir.path,
            &["-x509", "-days", "1"],
            "ca",
            "ca.crt",
            name,
        );
        TestCa {
            cert: dir.path.join("ca.crt"),
            key: dir.path.join("ca.key"),
            dir,
        }
    }

    /// A server certificate for the DNS name `host`, signed by this CA.
    pub fn issue(&self, host: &str) -> Issued {
        let dir = &self.dir.path;
        new_key(
            "certificate request",
            dir,
            &[],
            "server",
            "server.csr",
            host,
        );
        std::fs::write(
            dir.join("san.ext"),
            format!("subjectAltName = DNS:{host}\n"),
        )
        .expect("extensions");
        let (ca_cert, ca_key) = (
            self.cert.display().to_string(),
            self.key.display().to_string(),
        );
        openssl(
            "server certificate",
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                &ca_cert,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "1",
                "-extfile",
                "san.ext",
            ],
            dir,
        );
        Issued {
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        }
    }
}
