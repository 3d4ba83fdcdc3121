//! `pg-dump`'s own payload fields: the databases to dump and where to.

use lifeboat::PayloadError;
pub use lifeboat::postgres::database::{Database, DumpFormat, SslMode};
use lifeboat::request::Fields;
use serde::Deserialize;

/// `pg-dump`'s own fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgDumpFields {
    /// The databases to dump, one archive each.
    pub databases: Vec<Database>,
    /// The bucket to write to (default: `LIFEBOAT_BUCKET`).
    pub bucket: Option<String>,
    /// The key prefix the dumps go under (`pg/`); empty by default. A missing final `/` is added.
    pub prefix: Option<String>,
}

impl PgDumpFields {
    /// The prefix as keys use it: empty, or ending in `/`.
    pub fn key_prefix(&self) -> String {
        match self.prefix.as_deref() {
            None | Some("") => String::new(),
            Some(p) if p.ends_with('/') => p.to_owned(),
            Some(p) => format!("{p}/"),
        }
    }
}

impl Fields for PgDumpFields {
    fn validate(&self) -> Result<(), PayloadError> {
        if self.databases.is_empty() {
            return Err(PayloadError::new(
                "databases",
                "is empty: give at least one database",
            ));
        }
        for (i, db) in self.databases.iter().enumerate() {
            let field = |name: &str| format!("databases[{i}].{name}");
            if !is_source_name(&db.name) {
                return Err(PayloadError::new(
                    field("name"),
                    format!(
                        "`{}` is not a dump name: 1 to 63 characters of letters, digits, `-` and `_`, starting with a letter or digit",
                        db.name
                    ),
                ));
            }
            if self.databases[..i].iter().any(|d| d.name == db.name) {
                return Err(PayloadError::new(
                    field("name"),
                    format!("`{}` is listed twice", db.name),
                ));
            }
            for (name, value) in [("host", &db.host), ("dbname", &db.dbname)] {
                if value.trim().is_empty() || value.chars().any(char::is_control) {
                    return Err(PayloadError::new(field(name), "is empty"));
                }
            }
            if let Some(spec) = &db.compression {
                check_compression(spec).map_err(|m| PayloadError::new(field("compression"), m))?;
                if db.format == DumpFormat::Plain && spec != "none" {
                    return Err(PayloadError::new(
                        field("compression"),
                        "plain dumps are written as SQL text; use the custom format to compress",
                    ));
                }
            }
            if !(1..=MAX_JOBS).contains(&db.jobs) {
                return Err(PayloadError::new(
                    field("jobs"),
                    format!(
                        "must be 1 (one stream) to {MAX_JOBS} (parallel jobs), not {}",
                        db.jobs
                    ),
                ));
            }
            if db.jobs > 1 && db.format == DumpFormat::Plain {
                return Err(PayloadError::new(
                    field("jobs"),
                    "parallel jobs write pg_dump's directory format: leave out `\"format\": \"plain\"`, or dump with one job",
                ));
            }
            if let Some(methods) = &db.require_auth {
                check_require_auth(methods)
                    .map_err(|m| PayloadError::new(field("require_auth"), m))?;
            }
            if db.port == 0 {
                return Err(PayloadError::new(field("port"), "must be 1 to 65535"));
            }
            if !db.secret_arn.starts_with("arn:") || !db.secret_arn.contains(":secretsmanager:") {
                return Err(PayloadError::new(
                    field("secret_arn"),
                    "must be the ARN of a Secrets Manager secret (arn:aws:secretsmanager:…)",
                ));
            }
        }
        if self.bucket.as_deref().is_some_and(|b| b.trim().is_empty()) {
            return Err(PayloadError::new(
                "bucket",
                "must not be empty; leave it out to use LIFEBOAT_BUCKET",
            ));
        }
        let prefix = self.key_prefix();
        if prefix.starts_with('/') || prefix.contains("//") || prefix.chars().any(char::is_control)
        {
            return Err(PayloadError::new(
                "prefix",
                "must not start with `/` or hold empty path parts",
            ));
        }
        Ok(())
    }
}

/// The most parallel jobs: a Fargate task has at most 16 vCPUs, and each
/// job is one more connection to the database.
pub const MAX_JOBS: u16 = 32;

/// `zstd`, `zstd:19`, `gzip:9`, `lz4`, `none`, with each method's level range.
fn check_compression(spec: &str) -> Result<(), String> {
    let (method, level) = match spec.split_once(':') {
        Some((m, l)) => (m, Some(l)),
        None => (spec, None),
    };
    let range = match method {
        "zstd" => 1..=22,
        "gzip" => 1..=9,
        "lz4" => 1..=12,
        "none" if level.is_none() => return Ok(()),
        _ => {
            return Err(format!(
                "`{spec}` is not a compression: zstd, gzip, lz4 or none, with an optional :level"
            ));
        }
    };
    match level.map(str::parse::<u8>) {
        None => Ok(()),
        Some(Ok(l)) if range.contains(&l) => Ok(()),
        Some(_) => Err(format!(
            "`{spec}`: a {method} level is {} to {}",
            range.start(),
            range.end()
        )),
    }
}

/// `any`, or libpq's `require_auth`: a comma-separated list of methods, all
/// of them negated with `!` or none.
fn check_require_auth(spec: &str) -> Result<(), String> {
    const METHODS: [&str; 7] = [
        "password",
        "md5",
        "gss",
        "sspi",
        "scram-sha-256",
        "oauth",
        "none",
    ];
    if spec == "any" {
        return Ok(());
    }
    let methods: Vec<&str> = spec.split(',').map(str::trim).collect();
    let negated = methods.iter().filter(|m| m.starts_with('!')).count();
    if negated != 0 && negated != methods.len() {
        return Err(format!(
            "`{spec}` mixes negated and plain methods, which libpq refuses"
        ));
    }
    match methods
        .iter()
        .find(|m| !METHODS.contains(&m.trim_start_matches('!')))
    {
        Some(bad) => Err(format!(
            "`{bad}` is not an authentication method: any, or a list of {}",
            METHODS.join(", ")
        )),
        None => Ok(()),
    }
}

/// A dump's source name is its key's first part and its file name's start:
/// no `/`, nothing a shell or a URL would trip on.
fn is_source_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use lifeboat::Request;
    use serde_json::{Value, json};

    #[test]
    fn pg_dump_payloads_name_their_fields() {
        let pg = |p: Value| Request::<PgDumpFields>::parse(p, Utc::now());
        let secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:orders-AbCdEf";
        let ok = pg(json!({"plan": "p", "prefix": "pg", "databases": [
            {"name": "orders", "host": "orders.abc.rds.amazonaws.com", "dbname": "orders", "secret_arn": secret},
            {"name": "local_1", "host": "127.0.0.1", "port": 55432, "dbname": "x", "secret_arn": secret, "format": "plain"}
        ]}))
        .expect("valid");
        let [remote, local] = &ok.fields.databases[..] else {
            panic!("two databases")
        };
        assert_eq!((remote.port, remote.format), (5432, DumpFormat::Custom));
        assert_eq!(remote.sslmode(), SslMode::Require);
        assert_eq!(local.sslmode(), SslMode::Prefer);
        assert_eq!(local.format.extension(), "sql");
        assert_eq!(
            (remote.compression(), local.compression()),
            ("zstd", "none")
        );
        assert_eq!(ok.fields.key_prefix(), "pg/");
        let db = |extra: Value| {
            let mut d = json!({"name": "orders", "host": "h", "dbname": "d", "secret_arn": secret});
            for (k, v) in extra.as_object().expect("object") {
                d[k] = v.clone();
            }
            json!({"plan": "p", "databases": [d]})
        };
        assert_eq!(
            pg(db(json!({"sslmode": "verify-full"})))
                .expect("valid")
                .fields
                .databases[0]
                .sslmode(),
            SslMode::VerifyFull
        );
        assert_eq!(
            remote.require_auth(),
            Some("scram-sha-256"),
            "SCRAM by default"
        );
        for (given, in_force) in [
            ("any", None),
            ("scram-sha-256,md5", Some("scram-sha-256,md5")),
            ("!password,!none", Some("!password,!none")),
        ] {
            let r = pg(db(json!({"require_auth": given}))).expect(given);
            assert_eq!(r.fields.databases[0].require_auth(), in_force);
        }
        for bad in ["scram", "md5,!password", ""] {
            let err = pg(db(json!({"require_auth": bad}))).expect_err(bad);
            assert_eq!(err.field, "databases[0].require_auth", "{bad}: {err}");
        }
        // More than one job writes the directory format, under a `.dir` key.
        let parallel = pg(db(json!({"jobs": 4}))).expect("jobs 4");
        let parallel = &parallel.fields.databases[0];
        assert_eq!(
            (parallel.dump_format(), parallel.dump_format().extension()),
            (DumpFormat::Directory, "dir")
        );
        assert_eq!(
            remote.dump_format(),
            DumpFormat::Custom,
            "one job: one stream"
        );
        for good in ["zstd:19", "gzip", "gzip:9", "lz4:1", "none"] {
            let r = pg(db(json!({"compression": good}))).expect(good);
            assert_eq!(r.fields.databases[0].compression(), good);
        }
        for (payload, field) in [
            (json!({"plan": "p"}), "databases"),
            (json!({"plan": "p", "databases": []}), "databases"),
            (db(json!({"name": "a/b"})), "databases[0].name"),
            (db(json!({"name": ""})), "databases[0].name"),
            (db(json!({"host": " "})), "databases[0].host"),
            (db(json!({"dbname": ""})), "databases[0].dbname"),
            (db(json!({"port": 0})), "databases[0].port"),
            (db(json!({"port": 70000})), "databases[0].port"),
            (
                db(json!({"secret_arn": "orders-password"})),
                "databases[0].secret_arn",
            ),
            (db(json!({"format": "tar"})), "databases[0].format"),
            (db(json!({"sslmode": "always"})), "databases[0].sslmode"),
            (
                db(json!({"compression": "brotli"})),
                "databases[0].compression",
            ),
            (
                db(json!({"compression": "gzip:10"})),
                "databases[0].compression",
            ),
            (
                db(json!({"compression": "none:1"})),
                "databases[0].compression",
            ),
            (
                db(json!({"compression": "gzip", "format": "plain"})),
                "databases[0].compression",
            ),
            (db(json!({"password": "hunter2"})), "databases[0].password"),
            (db(json!({"jobs": 0})), "databases[0].jobs"),
            (db(json!({"jobs": 33})), "databases[0].jobs"),
            (db(json!({"jobs": -1})), "databases[0].jobs"),
            (
                db(json!({"jobs": 2, "format": "plain"})),
                "databases[0].jobs",
            ),
            (
                json!({"plan": "p", "databases": [{"name": "orders", "host": "h", "secret_arn": secret}]}),
                "databases[0].dbname",
            ),
            (
                json!({"plan": "p", "bucket": "", "databases": db(json!({}))["databases"]}),
                "bucket",
            ),
            (
                json!({"plan": "p", "prefix": "/pg", "databases": db(json!({}))["databases"]}),
                "prefix",
            ),
            (
                json!({"plan": "p", "databases": [db(json!({}))["databases"][0], db(json!({}))["databases"][0]]}),
                "databases[1].name",
            ),
        ] {
            let err = pg(payload.clone()).expect_err("refused");
            assert_eq!(err.field, field, "{payload} gave {err}");
        }
    }
}
