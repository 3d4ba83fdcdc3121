//! `pg-dump` against real PostgreSQL servers (Debian's 15 and the newest
//! major from `make setup`) and the emulator's S3 and Secrets Manager: dumps
//! restore exactly, failures leave nothing behind and alert once, the
//! password is never written anywhere, and a too-old pg_dump says so.

use crate::pg_dump_common::{
    BUCKET, PARTS, Setup, assert_nothing_left, assert_nothing_left_but, conninfo, payload,
    pg_dump_of, restore_into,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use lifeboat::postgres::restore::Target;
use lifeboat::runtime::{Invocation, handle};
use lifeboat_tests::TempDir;
use lifeboat_tests::postgres::{PgServer, TestCa, generate, newest_bin, pg15_bin};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Dumps a generated database of about 50 MiB through the function, fetches
/// the archive, checks it against its manifest, restores it with `lifeboat
/// restore`'s library into a fresh database of the same server (with the
/// newest pg_restore), and compares every table and large object.
async fn dump_and_restore(server_bin: PathBuf, compression: Option<&str>) {
    let setup = Setup::new().await;
    let server = PgServer::start(&server_bin);
    generate(&server, "shop", 50);
    let before = server.fingerprint("shop");
    let arn = setup.secret("shop", &server.password).await;
    let wire = WireHeaders::default();
    let function = setup.function(&pg_dump_of(&newest_bin()), setup.s3_with(wire.clone()));
    let mut event = payload("nightly", server.port, "shop", &arn);
    if let Some(compression) = compression {
        event["databases"][0]["compression"] = json!(compression);
    }

    let report = handle(&function, event.clone(), Invocation::now())
        .await
        .unwrap_or_else(|e| panic!("dump of PostgreSQL {}: {e}", server.version()));
    assert_eq!(report.created.len(), 1, "{report:?}");
    let key = report.created[0].backup.clone();
    assert_eq!(
        key,
        "pg/orders/2026/11/20/orders-nightly-20261120T0200Z.dump"
    );

    let dump = setup.get(&key).await;
    let manifest: Value =
        serde_json::from_slice(&setup.get(&format!("{key}.manifest.json")).await).expect("json");
    assert_eq!(manifest["size_bytes"], json!(dump.len()));
    let sha: String = Sha256::digest(&dump)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(manifest["sha256"], json!(sha));
    let recorded = manifest["archive"]["server_version"]
        .as_str()
        .unwrap_or_default();
    assert!(recorded.starts_with(&server.version()), "{recorded}");
    assert!(manifest["parts"].as_i64().unwrap_or(0) > 1, "{manifest}");
    // Every part and the manifest went up unsigned, each with a CRC32 that S3 checks.
    let sent: Vec<_> = wire
        .0
        .lock()
        .expect("wire")
        .iter()
        .filter(|(_, path, ..)| path.ends_with(".dump") || path.ends_with(".manifest.json"))
        .map(|(op, _, payload_hash, checksum)| (op.clone(), payload_hash.clone(), checksum.clone()))
        .collect();
    let parts = sent.iter().filter(|(op, ..)| op == "UploadPart").count() as i64;
    assert_eq!(Some(parts), manifest["parts"].as_i64(), "{sent:?}");
    assert!(sent.iter().any(|(op, ..)| op == "PutObject"), "{sent:?}");
    for (op, payload_hash, checksum) in sent
        .iter()
        .filter(|(op, ..)| op == "UploadPart" || op == "PutObject")
    {
        assert_eq!(payload_hash, "UNSIGNED-PAYLOAD", "{op}: {sent:?}");
        assert!(checksum.is_some(), "{op} without a checksum: {sent:?}");
    }
    // The upload was created for CRC32 parts, and its completion lists the
    // CRC32 each part was sent with (retries send the same).
    let carried = |name: &str| {
        sent.iter()
            .find(|(op, ..)| op == name)
            .and_then(|(.., checksum)| checksum.clone())
    };
    assert_eq!(
        carried("CreateMultipartUpload").as_deref(),
        Some("CRC32"),
        "{sent:?}"
    );
    let mut of_parts: Vec<String> = sent
        .iter()
        .filter(|(op, ..)| op == "UploadPart")
        .filter_map(|(.., checksum)| checksum.clone())
        .collect();
    of_parts.sort();
    of_parts.dedup();
    assert_eq!(of_parts.len() as i64, parts, "{sent:?}");
    assert_eq!(
        carried("CompleteMultipartUpload"),
        Some(of_parts.join(" ")),
        "{sent:?}"
    );
    let method = compression.unwrap_or("zstd").split(':').next();
    assert_eq!(manifest["archive"]["compression"].as_str(), method);
    // The fingerprint: every table's rows, counted in the decompressed data, as the database has them.
    let counted = &manifest["archive"]["fingerprint"];
    for table in ["sales.orders", "audit.events", "audit.documents"] {
        let rows: u64 = server
            .sql("shop", &format!("SELECT count(*) FROM {table}"))
            .parse()
            .expect("count");
        assert_eq!(counted["tables"][table], json!(rows), "{table}: {counted}");
    }
    assert_eq!(counted["large_objects"], json!(1), "{counted}");
    assert_eq!(manifest["manifest_version"], json!(3));
    assert_eq!(
        manifest["pg_restore_needs"],
        json!(17),
        "pg_dump 18 writes archive version 1.16"
    );
    assert!(
        dump.len() > 5 << 20,
        "a multipart-sized dump: {}",
        dump.len()
    );

    let dir = TempDir::new("restore");
    let file = dir.path.join("shop.dump");
    std::fs::write(&file, &dump).expect("write dump");
    let list = server
        .client_with(&newest_bin(), "pg_restore")
        .arg("--list")
        .arg(&file)
        .output()
        .expect("pg_restore --list");
    let listing = String::from_utf8_lossy(&list.stdout);
    let toc = format!("TOC Entries: {}", manifest["archive"]["toc_entries"]);
    assert!(listing.contains(&toc), "{toc} not in:\n{listing}");

    // `lifeboat restore` into a fresh database of the same server: for
    // PostgreSQL 15, with the newest pg_restore, which writes a setting that
    // 15 does not know.
    server.sql("postgres", "CREATE DATABASE shop_restored");
    let target = if server_bin == newest_bin() {
        Target::Conninfo(conninfo(&server, "shop_restored"))
    } else {
        let mut entry = event["databases"][0].clone();
        entry["dbname"] = json!("shop_restored");
        Target::Entry(serde_json::from_value(entry).expect("a databases entry"))
    };
    let restored = restore_into(&setup, &key, &target).await.expect("restored");
    assert_eq!(restored.mismatches, Vec::<String>::new());
    assert_eq!(restored.verified.sha256, sha);
    assert_eq!(restored.tables.len(), 3, "{:?}", restored.tables);
    assert_eq!(restored.large_objects, 1);
    assert_eq!(server.fingerprint("shop_restored"), before);
    assert!(before.len() >= 4, "tables and large objects: {before:?}");

    let tags = setup
        .s3
        .get_object_tagging()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .expect("tags")
        .tag_set;
    let tags: Vec<(String, String)> = tags.into_iter().map(|t| (t.key, t.value)).collect();
    for expected in [
        ("managed-by", "lifeboat"),
        ("lifeboat:plan", "nightly"),
        ("lifeboat:source", "orders"),
        ("lifeboat:scheduled-time", "2026-11-20T02:00:00Z"),
    ] {
        assert!(
            tags.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} not in {tags:?}"
        );
    }

    // The same slot again: skipped, nothing new written.
    let again = handle(&function, event, Invocation::now())
        .await
        .expect("second run");
    assert!(again.created.is_empty(), "{again:?}");
    assert_eq!(again.skipped.len(), 1);
    assert_eq!(setup.keys().await.len(), 2);
    assert!(
        setup.inbox.drain().await.is_empty(),
        "no alert for a good run"
    );
}

#[tokio::test]
async fn a_postgres_15_database_restores_exactly() {
    dump_and_restore(pg15_bin(), Some("gzip:6")).await;
}

#[tokio::test]
async fn a_database_of_the_newest_major_restores_exactly() {
    dump_and_restore(newest_bin(), None).await;
}

/// What each `UploadPart` and `PutObject` carried on the wire: the operation,
/// the object's path, its `x-amz-content-sha256`, and its CRC32 checksum
/// (header or trailer); for `CreateMultipartUpload`, its checksum algorithm,
/// and for `CompleteMultipartUpload`, the CRC32s it lists, sorted.
type Sent = (String, String, String, Option<String>);

#[derive(Debug, Clone, Default)]
struct WireHeaders(std::sync::Arc<std::sync::Mutex<Vec<Sent>>>);

impl Intercept for WireHeaders {
    fn name(&self) -> &'static str {
        "WireHeaders"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = cfg
            .load::<Metadata>()
            .map(Metadata::name)
            .unwrap_or_default();
        let headers = context.request().headers();
        let checksum = match op {
            "UploadPart" | "PutObject" => headers
                .get("x-amz-checksum-crc32")
                .or_else(|| headers.get("x-amz-trailer"))
                .map(str::to_owned),
            "CreateMultipartUpload" => headers.get("x-amz-checksum-algorithm").map(str::to_owned),
            "CompleteMultipartUpload" => context.request().body().bytes().map(|body| {
                let body = String::from_utf8_lossy(body);
                let mut listed: Vec<&str> = body
                    .split("<ChecksumCRC32>")
                    .skip(1)
                    .filter_map(|rest| rest.split("</ChecksumCRC32>").next())
                    .collect();
                listed.sort_unstable();
                listed.join(" ")
            }),
            _ => return Ok(()),
        };
        let payload_hash = headers.get("x-amz-content-sha256").unwrap_or_default();
        let uri = context.request().uri();
        let path = uri.split('?').next().unwrap_or(uri).to_owned();
        self.0.lock().map_err(|_| "wire lock")?.push((
            op.to_owned(),
            path,
            payload_hash.to_owned(),
            checksum,
        ));
        Ok(())
    }
}

/// The part number of an `UploadPart` request.
fn part_number(context: &BeforeTransmitInterceptorContextRef<'_>) -> Option<u32> {
    context
        .request()
        .uri()
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("partNumber="))
        .and_then(|n| n.parse().ok())
}

/// Refuses S3 `UploadPart` calls from part `from` on, as S3 refusing parts half-way.
#[derive(Debug)]
struct RefuseParts {
    from: u32,
}

impl Intercept for RefuseParts {
    fn name(&self) -> &'static str {
        "RefuseParts"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match part_number(context) {
            Some(n) if n >= self.from => Err(format!("injected: S3 refused part {n}").into()),
            _ => Ok(()),
        }
    }
}

/// Drops pg_dump's database connection mid-stream: when the upload of part
/// `at` starts, the server terminates the backend of `lifeboat-pg-dump`.
#[derive(Debug)]
struct DropConnectionAt {
    at: u32,
    psql: std::sync::Mutex<std::process::Command>,
}

impl Intercept for DropConnectionAt {
    fn name(&self) -> &'static str {
        "DropConnectionAt"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if part_number(context) == Some(self.at) {
            let out = self
                .psql
                .lock()
                .map_err(|_| "psql lock")?
                .output()
                .map_err(|e| format!("psql: {e}"))?;
            let killed = String::from_utf8_lossy(&out.stdout);
            assert!(
                killed.contains('t'),
                "no pg_dump backend to terminate: {killed}"
            );
        }
        Ok(())
    }
}

/// Loses S3's answer to `CompleteMultipartUpload`: S3 made the object, the
/// function sees an error.
#[derive(Debug)]
struct LoseCompleteAnswer;

impl Intercept for LoseCompleteAnswer {
    fn name(&self) -> &'static str {
        "LoseCompleteAnswer"
    }

    fn read_after_transmit(
        &self,
        _: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match cfg.load::<Metadata>().map(Metadata::name) {
            Some("CompleteMultipartUpload") => Err("injected: the answer was lost".into()),
            _ => Ok(()),
        }
    }
}

/// The manifest's PutObject lands but its answer is lost, and every look at
/// the manifest after that fails: the function cannot tell whether the dump
/// is recorded.
#[derive(Debug, Default)]
struct LoseManifestAnswerAndLook {
    written: std::sync::atomic::AtomicBool,
    answered: std::sync::atomic::AtomicBool,
}

impl Intercept for LoseManifestAnswerAndLook {
    fn name(&self) -> &'static str {
        "LoseManifestAnswerAndLook"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        use std::sync::atomic::Ordering::SeqCst;
        let manifest = context.request().uri().contains(".manifest.json");
        match cfg.load::<Metadata>().map(Metadata::name) {
            Some("PutObject") if manifest => self.written.store(true, SeqCst),
            Some("HeadObject") if manifest && self.written.load(SeqCst) => {
                return Err("injected: the look at the manifest failed".into());
            }
            _ => {}
        }
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match cfg.load::<Metadata>().map(Metadata::name) {
            Some("PutObject")
                if self.written.load(std::sync::atomic::Ordering::SeqCst)
                    && !self
                        .answered
                        .swap(true, std::sync::atomic::Ordering::SeqCst) =>
            {
                Err("injected: the manifest's answer was lost".into())
            }
            _ => Ok(()),
        }
    }
}

/// A stand-in `pg_dump`: a shell script that answers `--version` as the
/// real one and otherwise runs `real` through `pipeline` (the function
/// starts it with an empty environment, hence the full paths).
fn wrapped_pg_dump(dir: &Path, name: &str, real: &Path, pipeline: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let real = real.display();
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then exec {real} --version; fi\n{real} \"$@\" | {pipeline}\n"
        ),
    )
    .expect("write wrapper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// A seeded generator for the kill points; the seed is printed, so a run repeats.
fn kill_points(size: u64, n: usize) -> Vec<u64> {
    let seed = std::env::var("LIFEBOAT_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("kill points: LIFEBOAT_TEST_SEED={seed}");
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            1 + state % (size - 1)
        })
        .collect()
}

#[tokio::test]
async fn failures_leave_nothing_behind_and_alert_once() {
    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    generate(&server, "shop", 40);
    let newest = pg_dump_of(&newest_bin());
    let function = setup.function(&newest, setup.s3.clone());
    let good = setup.secret("good", &server.password).await;
    let bad = setup.secret("bad", "not-the-password").await;

    let wrong_password = payload("wrong-password", server.port, "shop", &bad);
    let outcome = handle(&function, wrong_password, Invocation::now()).await;
    assert_nothing_left(&setup, outcome, "password authentication failed").await;

    let closed_port = lifeboat_tests::postgres::closed_port();
    let unreachable = payload("unreachable", closed_port, "shop", &good);
    let outcome = handle(&function, unreachable, Invocation::now()).await;
    assert_nothing_left(&setup, outcome, "Connection refused").await;

    let missing = payload("missing-db", server.port, "no_such_db", &good);
    let outcome = handle(&function, missing, Invocation::now()).await;
    assert_nothing_left(&setup, outcome, "does not exist").await;

    // S3 refuses the third part and every part after it.
    let function_s3_fails = setup.function(&newest, setup.s3_with(RefuseParts { from: 3 }));
    let outcome = handle(
        &function_s3_fails,
        payload("s3-fails", server.port, "shop", &good),
        Invocation::now(),
    )
    .await;
    assert_nothing_left(&setup, outcome, "S3 UploadPart").await;

    // S3 completed the upload but its answer was lost: the object is removed again.
    let outcome = handle(
        &setup.function(&newest, setup.s3_with(LoseCompleteAnswer)),
        payload("answer-lost", server.port, "shop", &good),
        Invocation::now(),
    )
    .await;
    assert_nothing_left(&setup, outcome, "the answer was lost").await;

    // The database connection dropped mid-stream, while part 2 goes up.
    let mut psql = server.client("psql");
    psql.args(["-X", "-t", "-A", "-d", "postgres", "-c"]).arg(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lifeboat-pg-dump'",
    );
    let dropping = setup.s3_with(DropConnectionAt {
        at: 2,
        psql: std::sync::Mutex::new(psql),
    });
    let function_connection_drops = setup.function(&newest, dropping);
    let outcome = handle(
        &function_connection_drops,
        payload("connection-drops", server.port, "shop", &good),
        Invocation::now(),
    )
    .await;
    assert_nothing_left(&setup, outcome, "pg_dump exited with status 1").await;

    // pg_dump killed at random bytes of its output.
    // pg_dump killed at random bytes of its output, and pg_dump's output cut
    // short at random bytes while it exits 0: the archive check catches that.
    let size = server
        .client_with(&newest_bin(), "pg_dump")
        .args(["-Fc", "--compress=zstd", "-d", "shop"])
        .output()
        .expect("pg_dump")
        .stdout
        .len() as u64;
    assert!(size > 2 * PARTS.part_size as u64, "dump of {size} bytes");
    let dir = TempDir::new("killed");
    // Ten kills (issue 8's scenario), then four cuts.
    let points = kill_points(size, 14);
    for (i, bytes) in points.into_iter().enumerate() {
        let (pipeline, expect) = if i < 10 {
            (
                format!("/usr/bin/head -c {bytes}\nkill -KILL $$"),
                "killed by signal 9",
            )
        } else {
            (
                format!("/usr/bin/head -c {bytes}\nexit 0"),
                "the archive is incomplete",
            )
        };
        let wrapper = wrapped_pg_dump(&dir.path, &format!("pg_dump-{i}"), &newest, &pipeline);
        let outcome = handle(
            &setup.function(&wrapper, setup.s3.clone()),
            payload("killed", server.port, "shop", &good),
            Invocation::now(),
        )
        .await;
        assert_nothing_left(&setup, outcome, expect).await;
    }

    // Lambda's deadline comes near while pg_dump stalls after two parts' worth of output.
    let stalling = wrapped_pg_dump(
        &dir.path,
        "pg_dump-stalling",
        &newest,
        "{ /usr/bin/head -c 12000000; /usr/bin/sleep 6; /usr/bin/cat; }",
    );
    let near_deadline = Invocation {
        now: chrono::Utc::now(),
        // The function stops 30 s before the deadline: here, after 3 s.
        deadline: Some(std::time::SystemTime::now() + std::time::Duration::from_secs(33)),
    };
    let cut_off = payload("deadline", server.port, "shop", &good);
    let outcome = handle(
        &setup.function(&stalling, setup.s3.clone()),
        cut_off.clone(),
        near_deadline,
    )
    .await;
    // Only the record of the cut, which sends the database's next run to the task.
    let cut = format!("{}.cut.json", dump_key_of(&cut_off, "deadline", 0));
    assert_nothing_left_but(&setup, outcome, "before the Lambda deadline", &[cut]).await;

    // And after all that, the same function dumps the database.
    let report = handle(
        &function,
        payload("killed", server.port, "shop", &good),
        Invocation::now(),
    )
    .await
    .expect("a good run");
    assert_eq!(report.created.len(), 1);
}

#[tokio::test]
async fn a_pg_dump_older_than_the_server_says_both_versions() {
    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    let arn = setup.secret("db", &server.password).await;
    let function = setup.function(&pg_dump_of(&pg15_bin()), setup.s3.clone());
    let mut event = payload("nightly", server.port, "postgres", &arn);
    // libpq 15 cannot enforce require_auth; the payload accepts that here.
    event["databases"][0]["require_auth"] = json!("any");
    let outcome = handle(&function, event, Invocation::now()).await;
    let version = server.version();
    assert_nothing_left(
        &setup,
        outcome,
        &format!("PostgreSQL {version}, newer than pg_dump 15."),
    )
    .await;
}

#[tokio::test]
async fn a_dry_run_writes_nothing() {
    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    let arn = setup.secret("db", &server.password).await;
    let function = setup.function(&pg_dump_of(&newest_bin()), setup.s3.clone());
    let mut event = payload("nightly", server.port, "postgres", &arn);
    event["dry_run"] = json!(true);
    let report = handle(&function, event, Invocation::now())
        .await
        .expect("dry run");
    assert_eq!(report.created.len(), 1);
    assert!(setup.keys().await.is_empty());
    assert_eq!(setup.open_uploads().await, 0);
}

#[tokio::test]
async fn a_configured_kms_key_encrypts_the_dump_and_its_manifest() {
    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    let arn = setup.secret("db", &server.password).await;
    let key = "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    let settings = pg_dump::Settings {
        pg_dump: pg_dump_of(&newest_bin()),
        bucket: Some(BUCKET.into()),
        kms_key_id: Some(key.into()),
        parts: PARTS,
        task: None,
    };
    let function = setup.function_with(settings, setup.s3.clone());
    // An empty database: a dump smaller than one part, written with one PutObject.
    let report = handle(
        &function,
        payload("nightly", server.port, "postgres", &arn),
        Invocation::now(),
    )
    .await
    .expect("dump");
    let dump = report.created[0].backup.clone();
    for object in [dump.clone(), format!("{dump}.manifest.json")] {
        let head = setup
            .s3
            .head_object()
            .bucket(BUCKET)
            .key(&object)
            .send()
            .await
            .expect("head");
        assert_eq!(
            head.server_side_encryption(),
            Some(&aws_sdk_s3::types::ServerSideEncryption::AwsKms),
            "{object}"
        );
        assert_eq!(head.ssekms_key_id(), Some(key), "{object}");
    }
    let manifest: Value =
        serde_json::from_slice(&setup.get(&format!("{dump}.manifest.json")).await).expect("json");
    assert_eq!(manifest["parts"], json!(1));
}

/// A layer laid out as Lambda unpacks it into /opt: `pgsql/bin/pg_dump` (the
/// newest), its `lib/`, and `ca-bundle.pem` when one is given.
fn layer(bundle: Option<&Path>) -> TempDir {
    let dir = TempDir::new("layer");
    let bin = newest_bin();
    std::fs::create_dir_all(dir.path.join("pgsql/bin")).expect("bin");
    std::os::unix::fs::symlink(bin.join("pg_dump"), dir.path.join("pgsql/bin/pg_dump"))
        .expect("pg_dump");
    std::os::unix::fs::symlink(bin.with_file_name("lib"), dir.path.join("pgsql/lib")).expect("lib");
    if let Some(bundle) = bundle {
        std::fs::copy(bundle, dir.path.join("pgsql/ca-bundle.pem")).expect("bundle");
    }
    dir
}

/// One run of `pg-dump` from `layer` against `host`, under `sslmode = verify-full`.
async fn dump_verified(
    setup: &Setup,
    layer: &TempDir,
    (host, port): (&str, u16),
    arn: &str,
    (plan, extra): (&str, Value),
) -> Result<lifeboat::Report, lifeboat::Error> {
    let function = setup.function(&layer.path.join("pgsql/bin/pg_dump"), setup.s3.clone());
    let mut event = payload(plan, port, "postgres", arn);
    event["databases"][0]["host"] = json!(host);
    event["databases"][0]["sslmode"] = json!("verify-full");
    for (k, v) in extra.as_object().expect("fields") {
        event["databases"][0][k] = v.clone();
    }
    handle(&function, event, Invocation::now()).await
}

#[tokio::test]
async fn verify_full_connects_with_the_servers_ca_and_says_what_to_do_otherwise() {
    let ca = TestCa::new("Lifeboat test CA");
    let other = TestCa::new("Some other CA");
    let server = PgServer::start_tls(&newest_bin(), &ca.issue("localhost"));
    let setup = Setup::new().await;
    let arn = setup.secret("db", &server.password).await;
    let at = ("localhost", server.port);
    let nightly = || ("nightly", json!({}));

    let none = layer(None);
    let outcome = dump_verified(&setup, &none, at, &arn, nightly()).await;
    assert_nothing_left(
        &setup,
        outcome,
        "sslmode verify-full needs the server's CA bundle, and none is configured: build the layer with it (make build CA_BUNDLE=",
    )
    .await;

    let wrong_ca = layer(Some(&other.cert));
    let outcome = dump_verified(&setup, &wrong_ca, at, &arn, nightly()).await;
    assert_nothing_left(
        &setup,
        outcome,
        "certificate verify failed. The server's certificate is not signed by a CA in the bundle",
    )
    .await;

    let right = layer(Some(&ca.cert));
    let by_address = ("127.0.0.1", server.port);
    let outcome = dump_verified(&setup, &right, by_address, &arn, nightly()).await;
    assert_nothing_left(
        &setup,
        outcome,
        "The server's certificate names another host: connect by a name the certificate holds",
    )
    .await;

    // verify-full admits no connection without TLS and the right certificate; SCRAM by default.
    let report = dump_verified(&setup, &right, at, &arn, nightly())
        .await
        .expect("verify-full with the server's CA bundle");
    assert_eq!(report.created.len(), 1, "{report:?}");

    // A password asked for in clear, even inside verified TLS: refused unless the payload allows it.
    server.authenticate_with("password");
    let weekly = |extra| ("weekly", extra);
    let Err(lifeboat::Error::RunFailed { report }) =
        dump_verified(&setup, &right, at, &arn, weekly(json!({}))).await
    else {
        panic!("a cleartext password request must be refused");
    };
    assert!(
        report.failed[0]
            .error
            .contains("The server asked for a weaker authentication than require_auth allows"),
        "{report:?}"
    );
    assert_eq!(setup.inbox.drain().await.len(), 1, "one alert");
    let allowed = json!({"require_auth": "password"});
    let report = dump_verified(&setup, &right, at, &arn, weekly(allowed))
        .await
        .expect("the payload allows a password in clear");
    assert_eq!(report.created.len(), 1, "{report:?}");
}

#[tokio::test]
async fn a_failed_look_never_deletes_a_dump_that_may_be_recorded() {
    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    generate(&server, "shop", 12);
    let arn = setup.secret("shop", &server.password).await;
    let s3 = setup.s3_with(LoseManifestAnswerAndLook::default());
    let function = setup.function(&pg_dump_of(&newest_bin()), s3);

    let outcome = handle(
        &function,
        payload("nightly", server.port, "shop", &arn),
        Invocation::now(),
    )
    .await;

    let Err(lifeboat::Error::RunFailed { report }) = outcome else {
        panic!("an unconfirmed manifest is a failure: {outcome:?}");
    };
    assert!(
        report.failed[0]
            .error
            .contains("the manifest's answer was lost"),
        "{report:?}"
    );
    let mut keys = setup.keys().await;
    keys.sort();
    assert_eq!(
        keys.len(),
        2,
        "the dump stays beside its manifest: {keys:?}"
    );
    assert!(
        keys[1].ends_with(".manifest.json") && keys[1].starts_with(&keys[0]),
        "{keys:?}"
    );
}

#[tokio::test]
async fn two_runs_of_one_slot_at_once_leave_one_dump_and_its_manifest() {
    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    generate(&server, "shop", 12);
    let arn = setup.secret("shop", &server.password).await;
    let function = setup.function(&pg_dump_of(&newest_bin()), setup.s3.clone());
    // A multipart dump (shop, 12 MiB in 5 MiB parts) and a one-PutObject dump
    // (postgres, empty), raced in turn.
    for round in 0..8 {
        let dbname = if round % 2 == 0 { "shop" } else { "postgres" };
        let plan = format!("race-{round}");
        let event = payload(&plan, server.port, dbname, &arn);
        let (a, b) = tokio::join!(
            handle(&function, event.clone(), Invocation::now()),
            handle(&function, event, Invocation::now())
        );
        let reports = [a.expect("run a"), b.expect("run b")];
        let created: usize = reports.iter().map(|r| r.created.len()).sum();
        assert_eq!(
            created, 1,
            "round {round}: one run made the dump: {reports:?}"
        );
        let mut keys: Vec<String> = setup
            .keys()
            .await
            .into_iter()
            .filter(|k| k.contains(&format!("-{plan}-")))
            .collect();
        keys.sort();
        assert_eq!(
            keys.len(),
            2,
            "round {round}: one dump and one manifest: {keys:?}"
        );
        let (dump, manifest) = (&keys[0], &keys[1]);
        assert_eq!(manifest, &format!("{dump}.manifest.json"));
        let manifest: Value = serde_json::from_slice(&setup.get(manifest).await).expect("json");
        let bytes = setup.get(dump).await;
        assert_eq!(manifest["size_bytes"], json!(bytes.len()), "round {round}");
        assert_eq!(
            manifest["sha256"],
            json!(
                Sha256::digest(&bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            ),
            "round {round}: the manifest describes the dump that is there"
        );
        assert_eq!(setup.open_uploads().await, 0, "round {round}");
        let versions = setup
            .s3
            .list_object_versions()
            .bucket(BUCKET)
            .send()
            .await
            .expect("versions");
        let ours = |key: Option<&str>| key.is_some_and(|k| k.contains(&format!("-{plan}-")));
        let kept: Vec<_> = versions
            .versions()
            .iter()
            .filter(|v| ours(v.key()))
            .collect();
        assert_eq!(kept.len(), 2, "round {round}: no other version: {kept:?}");
        assert_eq!(
            manifest["version_id"].as_str(),
            kept.iter()
                .find(|v| v.key() == Some(dump.as_str()))
                .and_then(|v| v.version_id()),
            "round {round}: the manifest names the dump's version"
        );
        assert!(
            !versions.delete_markers().iter().any(|m| ours(m.key())),
            "round {round}: nothing deleted"
        );
    }
    assert_eq!(
        setup.inbox.drain().await.len(),
        0,
        "standing aside for another run is not a failure"
    );
}

#[tokio::test]
async fn a_fresh_dump_without_its_manifest_is_left_to_the_run_writing_it() {
    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    let arn = setup.secret("db", &server.password).await;
    let function = setup.function(&pg_dump_of(&newest_bin()), setup.s3.clone());
    let event = payload("nightly", server.port, "postgres", &arn);
    let key = lifeboat::rules::naming::dump_key(
        "pg/",
        "orders",
        &lifeboat::Plan::new("nightly").expect("plan"),
        lifeboat::Request::<pg_dump::fields::PgDumpFields>::parse(
            event.clone(),
            chrono::Utc::now(),
        )
        .expect("payload")
        .slot,
        "dump",
    );
    // Another run's dump, completed a moment ago, its manifest not yet written.
    setup
        .s3
        .put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(b"another run's dump".to_vec().into())
        .send()
        .await
        .expect("put");

    let report = handle(&function, event, Invocation::now())
        .await
        .expect("standing aside is not a failure");

    assert!(report.created.is_empty(), "{report:?}");
    assert!(
        report.skipped[0]
            .reason
            .contains("another run wrote this slot's dump moments ago"),
        "{report:?}"
    );
    assert_eq!(
        setup.keys().await,
        vec![key.clone()],
        "the other run's dump is untouched"
    );
    assert_eq!(setup.get(&key).await, b"another run's dump");
    assert!(setup.inbox.drain().await.is_empty());
}

/// The key of this payload's dump of `orders` for `plan`, at its slot or `days` before it.
fn dump_key_of(event: &Value, plan: &str, days: i64) -> String {
    let slot = lifeboat::Request::<pg_dump::fields::PgDumpFields>::parse(
        event.clone(),
        chrono::Utc::now(),
    )
    .expect("payload")
    .slot;
    let slot = lifeboat::Slot::from_stamp(
        &(slot.time() - chrono::Duration::days(days))
            .format("%Y%m%dT%H%MZ")
            .to_string(),
    )
    .expect("slot");
    lifeboat::rules::naming::dump_key(
        "pg/",
        "orders",
        &lifeboat::Plan::new(plan).expect("plan"),
        slot,
        "dump",
    )
}

#[tokio::test]
async fn a_dump_that_took_longer_than_the_time_left_is_not_started() {
    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    let arn = setup.secret("db", &server.password).await;
    let function = setup.function(&pg_dump_of(&newest_bin()), setup.s3.clone());
    let event = payload("nightly", server.port, "postgres", &arn);
    // Yesterday's dump of the database took 800 s.
    let yesterday = dump_key_of(&event, "nightly", 1);
    let manifest = json!({ "key": yesterday, "duration_seconds": 800.0 });
    setup
        .s3
        .put_object()
        .bucket(BUCKET)
        .key(format!("{yesterday}.manifest.json"))
        .body(manifest.to_string().into_bytes().into())
        .send()
        .await
        .expect("put");
    let in_ms = |seconds: u64| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock");
        (now + std::time::Duration::from_secs(seconds)).as_millis() as u64
    };

    let Err(lifeboat::Error::RunFailed { report }) = handle(
        &function,
        event.clone(),
        Invocation::with_deadline_ms(in_ms(600)),
    )
    .await
    else {
        panic!("a dump that cannot finish must not start");
    };
    assert!(
        report.failed[0]
            .error
            .contains("not started: its last dump (pg/orders/"),
        "{report:?}"
    );
    assert!(report.failed[0].error.contains("took 800 s"), "{report:?}");
    assert_eq!(
        setup.keys().await.len(),
        1,
        "nothing written but the old manifest"
    );
    assert_eq!(setup.open_uploads().await, 0);
    setup.inbox.drain().await;

    // With time enough, it runs.
    let report = handle(&function, event, Invocation::with_deadline_ms(in_ms(900)))
        .await
        .expect("time enough");
    assert_eq!(report.created.len(), 1, "{report:?}");
}

#[tokio::test]
async fn a_run_without_a_deadline_keeps_its_upload_from_lambda_runs() {
    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    let arn = setup.secret("db", &server.password).await;
    let function = setup.function(&pg_dump_of(&newest_bin()), setup.s3.clone());
    let event = payload("nightly", server.port, "postgres", &arn);
    let key = dump_key_of(&event, "nightly", 0);
    let deadline = std::time::SystemTime::now() + std::time::Duration::from_secs(900);
    let deadline_ms = deadline
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    // The emulator dates every multipart upload to 2010: any upload looks a dead run's.
    let upload = |live: bool| {
        let (s3, key) = (setup.s3.clone(), key.clone());
        async move {
            s3.create_multipart_upload()
                .bucket(BUCKET)
                .key(&key)
                .send()
                .await
                .expect("upload");
            if live {
                s3.put_object()
                    .bucket(BUCKET)
                    .key(format!("{key}.live.by-hand"))
                    .body(Vec::new().into())
                    .send()
                    .await
                    .expect("mark");
            }
        }
    };

    // A `lifeboat run` on a workstation is dumping this slot: its upload stays.
    upload(true).await;
    let report = handle(
        &function,
        event.clone(),
        Invocation::with_deadline_ms(deadline_ms),
    )
    .await
    .expect("run");
    assert_eq!(report.created.len(), 1, "{report:?}");
    assert_eq!(
        setup.open_uploads().await,
        1,
        "the live run's upload is left to it"
    );

    // Without the mark, an old upload is a dead run's: the next run aborts it.
    setup
        .s3
        .delete_object()
        .bucket(BUCKET)
        .key(format!("{key}.live.by-hand"))
        .send()
        .await
        .expect("unmark");
    let weekly = payload("weekly", server.port, "postgres", &arn);
    let weekly_key = dump_key_of(&weekly, "weekly", 0);
    setup
        .s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(&weekly_key)
        .send()
        .await
        .expect("upload");
    handle(&function, weekly, Invocation::with_deadline_ms(deadline_ms))
        .await
        .expect("run");
    let left: Vec<String> = setup
        .s3
        .list_multipart_uploads()
        .bucket(BUCKET)
        .send()
        .await
        .expect("uploads")
        .uploads()
        .iter()
        .filter_map(|u| u.key().map(str::to_owned))
        .collect();
    assert_eq!(
        left,
        vec![key],
        "the dead run's upload of the weekly slot was aborted"
    );

    // And a run without a deadline marks its slot while it works, then unmarks it.
    let monthly = payload("monthly", server.port, "postgres", &arn);
    handle(&function, monthly, Invocation::now())
        .await
        .expect("run");
    let versions = setup
        .s3
        .list_object_versions()
        .bucket(BUCKET)
        .send()
        .await
        .expect("versions");
    let marks = versions
        .versions()
        .iter()
        .filter_map(|v| v.key())
        .chain(versions.delete_markers().iter().filter_map(|m| m.key()))
        .filter(|k| k.contains(".live.") && !k.ends_with(".live.by-hand"))
        .count();
    assert_eq!(
        marks, 0,
        "nothing of the run's mark is left, in any version"
    );
}

#[tokio::test]
async fn a_schema_of_50_000_tables_and_300_000_large_objects_is_accepted() {
    let setup = Setup::new().await;
    // pg_dump locks every table it dumps in one transaction: the lock table
    // must hold them (max_locks_per_transaction × max_connections).
    let server = PgServer::start_with_settings(&newest_bin(), "-c max_locks_per_transaction=1024");
    server.sql("postgres", "CREATE DATABASE wide");
    // Integer columns only: a text column would give every table a TOAST
    // table and index, 400 MB of disk here for nothing the dump tests.
    server.sql(
        "wide",
        "DO $$ BEGIN FOR i IN 1..50000 LOOP \
           EXECUTE format('CREATE TABLE table_%s (id integer primary key, note integer)', i); \
           IF i % 2000 = 0 THEN COMMIT; END IF; \
         END LOOP; END $$",
    );
    server.sql("postgres", "CREATE DATABASE objects");
    server.sql(
        "objects",
        "SELECT count(lo_from_bytea(0, convert_to('object ' || i, 'UTF8'))) FROM generate_series(1, 300000) i",
    );
    let arn = setup.secret("db", &server.password).await;
    let function = setup.function(&pg_dump_of(&newest_bin()), setup.s3.clone());

    for (plan, dbname) in [("wide", "wide"), ("objects", "objects")] {
        let report = handle(
            &function,
            payload(plan, server.port, dbname, &arn),
            Invocation::now(),
        )
        .await
        .unwrap_or_else(|e| panic!("{dbname}: {e}"));
        assert_eq!(report.created.len(), 1, "{dbname}: {report:?}");
        let key = &report.created[0].backup;
        let manifest: Value =
            serde_json::from_slice(&setup.get(&format!("{key}.manifest.json")).await)
                .expect("json");
        let entries = manifest["archive"]["toc_entries"]
            .as_u64()
            .expect("entries");
        // Every table is at least its TABLE and its constraint; the objects' metadata is grouped.
        let least = if dbname == "wide" { 100_000 } else { 300 };
        assert!(entries >= least, "{dbname}: {entries} entries");
        println!(
            "{dbname}: {entries} table-of-contents entries, {} bytes",
            manifest["size_bytes"]
        );
    }
}

#[tokio::test]
async fn a_byte_flipped_in_a_tables_compressed_data_fails_the_dump() {
    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    generate(&server, "shop", 8);
    let arn = setup.secret("shop", &server.password).await;
    let dir = TempDir::new("flip");
    // pg_dump's output with one byte flipped in its middle, inside the orders' data.
    let flip = "/usr/bin/python3 -c 'import sys; d = bytearray(sys.stdin.buffer.read()); d[len(d) // 2] ^= 0xff; sys.stdout.buffer.write(d)'";
    let wrapper = wrapped_pg_dump(&dir.path, "pg_dump-flip", &pg_dump_of(&newest_bin()), flip);
    let mut event = payload("nightly", server.port, "shop", &arn);
    // gzip's checksum catches every flipped byte (pg_dump writes zstd frames without one).
    event["databases"][0]["compression"] = json!("gzip");
    let outcome = handle(
        &setup.function(&wrapper, setup.s3.clone()),
        event,
        Invocation::now(),
    )
    .await;
    assert_nothing_left(
        &setup,
        outcome,
        "the dump would not restore: not a readable pg_dump archive: the data of table sales.orders: its gzip data does not decode",
    )
    .await;
}

#[tokio::test]
async fn an_lz4_dump_counts_the_rows_the_database_has_and_restores() {
    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    generate(&server, "shop", 2);
    let before = server.fingerprint("shop");
    let arn = setup.secret("shop", &server.password).await;
    let mut event = payload("nightly", server.port, "shop", &arn);
    event["databases"][0]["compression"] = json!("lz4");
    let report = handle(
        &setup.function(&pg_dump_of(&newest_bin()), setup.s3.clone()),
        event,
        Invocation::now(),
    )
    .await
    .expect("an lz4 dump");
    let key = &report.created[0].backup;
    let manifest: Value =
        serde_json::from_slice(&setup.get(&format!("{key}.manifest.json")).await).expect("json");
    assert_eq!(manifest["archive"]["compression"], json!("lz4"));
    let rows: serde_json::Map<String, Value> = ["audit.documents", "audit.events", "sales.orders"]
        .into_iter()
        .map(|table| {
            let count = server.sql("shop", &format!("SELECT count(*) FROM {table}"));
            (
                table.to_owned(),
                json!(count.parse::<u64>().expect("count")),
            )
        })
        .collect();
    let counted = &manifest["archive"]["fingerprint"];
    assert_eq!(counted["tables"], Value::Object(rows), "{counted}");
    assert_eq!(counted["large_objects"], json!(1), "{counted}");

    server.sql("postgres", "CREATE DATABASE shop_restored");
    let target = Target::Conninfo(conninfo(&server, "shop_restored"));
    let restored = restore_into(&setup, key, &target).await.expect("restored");
    assert_eq!(restored.mismatches, Vec::<String>::new());
    assert_eq!(server.fingerprint("shop_restored"), before);
}

#[tokio::test]
async fn verify_reads_the_recorded_version_and_finds_any_difference() {
    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    generate(&server, "shop", 6);
    let arn = setup.secret("shop", &server.password).await;
    let function = setup.function(&pg_dump_of(&newest_bin()), setup.s3.clone());
    let report = handle(
        &function,
        payload("nightly", server.port, "shop", &arn),
        Invocation::now(),
    )
    .await
    .expect("dump");
    let key = report.created[0].backup.clone();

    let verified = lifeboat::postgres::verify::verify(&setup.s3, BUCKET, &key)
        .await
        .expect("checked");
    assert_eq!(verified.mismatches, Vec::<String>::new());
    let rows = verified.fingerprint.expect("a fingerprint").tables;
    assert_eq!(rows["sales.orders"], 6 * 1700, "{rows:?}");

    // Someone writes over the key: the manifest's version is still the one read.
    let mut tampered = setup.get(&key).await;
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0xff;
    let version = setup.put(&key, tampered).await;
    let again = lifeboat::postgres::verify::verify(&setup.s3, BUCKET, &key)
        .await
        .expect("checked");
    assert_eq!(
        again.mismatches,
        Vec::<String>::new(),
        "the recorded version is read"
    );
    assert_eq!(again.sha256, verified.sha256);

    // A manifest that names the tampered version: the difference is found.
    setup
        .edit_manifest(&key, |m| m["version_id"] = json!(version))
        .await;
    let found = lifeboat::postgres::verify::verify(&setup.s3, BUCKET, &key)
        .await
        .expect("checked");
    assert!(
        found
            .mismatches
            .iter()
            .any(|m| m.starts_with("SHA-256: the manifest says")),
        "{:?}",
        found.mismatches
    );
}
