//! pg-dump's parallel `jobs` (`pg_dump -Fd -j N`, each file uploaded as
//! pg_dump writes it) against real PostgreSQL 15 and 18 and the emulator's
//! S3: the dump is a prefix of objects plus a manifest that lists every file
//! with its size and SHA-256 and holds the same fingerprint as a single
//! stream's; `lifeboat verify` reads it whole and `lifeboat restore`
//! restores it with `pg_restore -j 2`, every row as dumped; a file changed
//! in S3 is found and nothing is restored.

use crate::pg_dump_common::{
    BUCKET, PARTS, Setup, assert_nothing_left, conninfo, payload, pg_dump_of, restore_into,
};
use lifeboat::postgres::restore::Target;
use lifeboat::runtime::{Invocation, handle};
use lifeboat_tests::postgres::{PgServer, generate, newest_bin, pg15_bin};
use serde_json::{Value, json};

/// A server's database `shop` of about 3 MiB with three more large objects,
/// dumped by `bin`'s pg_dump with `jobs: 2` as `name`; the dump's key and manifest.
async fn dumped_in_parallel(
    setup: &Setup,
    server: &PgServer,
    bin: &std::path::Path,
    name: &str,
) -> (String, Value) {
    generate(server, "shop", 3);
    server.sql(
        "shop",
        "SELECT count(lo_from_bytea(0, convert_to('object ' || i, 'UTF8'))) FROM generate_series(1, 3) i",
    );
    let arn = setup.secret(name, &server.password).await;
    let mut event = payload("nightly", server.port, "shop", &arn);
    event["databases"][0]["name"] = json!(name);
    event["databases"][0]["jobs"] = json!(2);
    if bin == pg15_bin() {
        // pg_dump 15's libpq has no require_auth.
        event["databases"][0]["require_auth"] = json!("any");
    }
    let function = setup.function(&pg_dump_of(bin), setup.s3.clone());
    let report = handle(&function, event, Invocation::now())
        .await
        .expect("a parallel dump");
    let key = report.created[0].backup.clone();
    let manifest: Value = serde_json::from_slice(&setup.get(&format!("{key}.manifest.json")).await)
        .expect("a manifest");
    (key, manifest)
}

#[tokio::test]
async fn a_parallel_dump_of_postgres_15_and_18_verifies_and_restores_with_two_jobs() {
    let setup = Setup::new().await;
    // pg_dump 15 writes gzip files (`.gz`), pg_dump 18 zstd ones (`.zst`).
    for (bin, name, ending) in [
        (pg15_bin(), "shop15", ".gz"),
        (newest_bin(), "shop18", ".zst"),
    ] {
        let server = PgServer::start(&bin);
        let (key, manifest) = dumped_in_parallel(&setup, &server, &bin, name).await;
        assert!(key.ends_with(".dir"), "{key}");
        assert_eq!(manifest["format"], "directory");
        assert_eq!(manifest["jobs"], 2);

        // Every file listed is an object under the key, as listed; nothing else is there.
        let files = manifest["files"].as_array().expect("files").clone();
        let names: Vec<&str> = files.iter().filter_map(|f| f["name"].as_str()).collect();
        assert!(names.contains(&"toc.dat"), "{names:?}");
        assert!(
            names.iter().any(|n| n.ends_with(&format!(".dat{ending}"))),
            "data files end in {ending}: {names:?}"
        );
        let mut expected: Vec<String> = names.iter().map(|n| format!("{key}/{n}")).collect();
        expected.push(format!("{key}.manifest.json"));
        expected.sort();
        let mut stored: Vec<String> = setup
            .keys()
            .await
            .into_iter()
            .filter(|k| k.starts_with(&key))
            .collect();
        stored.sort();
        assert_eq!(
            stored, expected,
            "the files and the manifest, no claim left"
        );
        let mut total = 0;
        for file in &files {
            let name = file["name"].as_str().expect("name");
            let body = setup.get(&format!("{key}/{name}")).await;
            assert_eq!(
                file["size_bytes"].as_u64(),
                Some(body.len() as u64),
                "{name}"
            );
            assert_eq!(
                file["sha256"].as_str(),
                Some(
                    lifeboat::postgres::directory::hex(&<sha2::Sha256 as sha2::Digest>::digest(
                        &body
                    ))
                    .as_str()
                ),
                "{name}"
            );
            total += body.len() as u64;
        }
        assert_eq!(manifest["size_bytes"].as_u64(), Some(total));

        // The fingerprint is the database's: rows per table, its large objects.
        let fingerprint = &manifest["archive"]["fingerprint"];
        assert_eq!(
            fingerprint["large_objects"].to_string(),
            server.sql("shop", "SELECT count(*) FROM pg_largeobject_metadata")
        );
        let rows = server.sql("shop", "SELECT count(*) FROM sales.orders");
        assert_eq!(
            fingerprint["tables"]["sales.orders"].to_string(),
            rows,
            "{fingerprint}"
        );

        let verified = lifeboat::postgres::verify::verify(&setup.s3, BUCKET, &key)
            .await
            .expect("verified");
        assert_eq!(verified.mismatches, Vec::<String>::new());
        assert_eq!(
            verified.sha256,
            manifest["sha256"].as_str().unwrap_or_default()
        );

        let before = server.fingerprint("shop");
        server.sql("postgres", "CREATE DATABASE shop_restored");
        let target = Target::Conninfo(conninfo(&server, "shop_restored"));
        let restored = restore_into(&setup, &key, &target).await.expect("restored");
        assert_eq!(restored.mismatches, Vec::<String>::new());
        assert_eq!(server.fingerprint("shop_restored"), before, "{name}");
    }
}

#[tokio::test]
async fn a_file_of_a_parallel_dump_changed_in_s3_is_found_and_nothing_is_restored() {
    let setup = Setup::new().await;
    let bin = newest_bin();
    let server = PgServer::start(&bin);
    let (key, manifest) = dumped_in_parallel(&setup, &server, &bin, "shop").await;
    // The largest data file, replaced by another version that the manifest names.
    let files = manifest["files"].as_array().expect("files");
    let (at, largest) = files
        .iter()
        .enumerate()
        .filter(|(_, f)| f["name"].as_str().is_some_and(|n| n.ends_with(".dat.zst")))
        .max_by_key(|(_, f)| f["size_bytes"].as_u64())
        .expect("a data file");
    let name = largest["name"].as_str().expect("name").to_owned();
    let mut body = setup.get(&format!("{key}/{name}")).await;
    let middle = body.len() / 2;
    body[middle] ^= 0x40;
    let version = setup.put(&format!("{key}/{name}"), body).await;
    setup
        .edit_manifest(&key, |m| m["files"][at]["version_id"] = json!(version))
        .await;

    let verified = lifeboat::postgres::verify::verify(&setup.s3, BUCKET, &key)
        .await
        .expect("checked");
    assert!(
        verified
            .mismatches
            .iter()
            .any(|m| m.starts_with(&format!("{name}: the manifest says SHA-256"))),
        "{:?}",
        verified.mismatches
    );

    server.sql("postgres", "CREATE DATABASE shop_restored");
    let target = Target::Conninfo(conninfo(&server, "shop_restored"));
    let refused = restore_into(&setup, &key, &target)
        .await
        .expect_err("a changed file");
    assert!(
        refused.contains("is not the dump its manifest describes")
            && refused.ends_with("nothing was restored"),
        "{refused}"
    );
    assert_eq!(
        server.sql(
            "shop_restored",
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ),
        "0",
        "nothing was restored"
    );
}

#[tokio::test]
async fn the_catalog_sees_a_parallel_dump_whole_and_prune_deletes_all_of_it() {
    let setup = Setup::new().await;
    let bin = newest_bin();
    let server = PgServer::start(&bin);
    let (key, manifest) = dumped_in_parallel(&setup, &server, &bin, "shop").await;
    let catalog = lifeboat::aws::catalog::Catalog::new(
        aws_sdk_rds::Client::new(&setup.aws),
        aws_sdk_ec2::Client::new(&setup.aws),
        setup.s3.clone(),
        Some(BUCKET.to_owned()),
    );
    let listed = catalog
        .list(lifeboat::Kind::PgDump, None)
        .await
        .expect("listed");
    assert_eq!(listed.len(), 1, "one dump, not one per file: {listed:?}");
    let dump = &listed[0];
    assert_eq!((dump.id.as_str(), dump.complete), (key.as_str(), true));
    assert_eq!(dump.label.source, "shop");
    let files = manifest["files"].as_array().expect("files").len();
    assert_eq!(dump.parts.len(), files + 1, "every file and the manifest");

    let deleted = catalog
        .delete(listed, lifeboat::fanout::FanOut::DEFAULT)
        .await;
    assert!(
        matches!(deleted[0].1, lifeboat::aws::catalog::Deletion::Deleted),
        "{deleted:?}"
    );
    let left: Vec<String> = setup
        .keys()
        .await
        .into_iter()
        .filter(|k| k.starts_with(&key))
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

/// The key of the sample payload's parallel dump (`orders`, slot 2026-11-20 02:00).
const KEY: &str = "pg/orders/2026/11/20/orders-nightly-20261120T0200Z.dir";

/// The sample payload for `shop` on `server`, with `jobs: 2`.
async fn parallel_payload(setup: &Setup, server: &PgServer) -> Value {
    let arn = setup.secret("shop", &server.password).await;
    let mut event = payload("nightly", server.port, "shop", &arn);
    event["databases"][0]["jobs"] = json!(2);
    event
}

/// A newest-PostgreSQL server with the generated `shop` of about `mib` MiB,
/// and the sample payload for it with `jobs: 2`.
async fn shop_of(mib: u32) -> (Setup, std::path::PathBuf, PgServer, Value) {
    let setup = Setup::new().await;
    let bin = newest_bin();
    let server = PgServer::start(&bin);
    generate(&server, "shop", mib);
    let event = parallel_payload(&setup, &server).await;
    (setup, bin, server, event)
}

/// Waits until `sql` (a count) gives more than zero in `dbname`.
fn until_some(server: &PgServer, dbname: &str, sql: &str, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while server.sql(dbname, sql) == "0" {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_asked_for_during_a_parallel_dump_fails_it_with_the_advice_and_leaves_nothing() {
    let setup = Setup::new().await;
    let bin = newest_bin();
    let server = PgServer::start(&bin);
    server.sql("postgres", "CREATE DATABASE shop");
    // pg_dump's leader locks the tables in the order of their oids: `first`, then `second`.
    server.sql(
        "shop",
        "CREATE TABLE first (id int); INSERT INTO first SELECT generate_series(1, 1000); \
         CREATE TABLE second (id int); INSERT INTO second SELECT generate_series(1, 1000)",
    );
    // A session holds `second`: the leader, `first` locked already, waits for it.
    let session = |name: &str, sql: &str| {
        server
            .client("psql")
            .env("PGAPPNAME", name)
            .args(["-X", "-q", "-d", "shop", "-c", sql])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("psql")
    };
    let mut holder = session(
        "holder",
        "BEGIN; LOCK TABLE second IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT;",
    );
    until_some(
        &server,
        "shop",
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'holder' AND l.granted AND l.relation = 'second'::regclass",
        "the holder locks `second`",
    );
    let event = parallel_payload(&setup, &server).await;
    let function = setup.function(&pg_dump_of(&bin), setup.s3.clone());
    let dump = tokio::spawn(async move { handle(&function, event, Invocation::now()).await });

    until_some(
        &server,
        "shop",
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'lifeboat-pg-dump' AND NOT l.granted AND l.relation = 'second'::regclass",
        "pg_dump's leader waits for `second`, holding `first`",
    );
    // Someone asks for `first` exclusively: the request queues behind the leader's lock.
    let mut asker = session(
        "asker",
        "BEGIN; LOCK TABLE first IN ACCESS EXCLUSIVE MODE; COMMIT;",
    );
    until_some(
        &server,
        "shop",
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'asker' AND NOT l.granted AND l.relation = 'first'::regclass",
        "the asker waits for `first`",
    );
    // The holder goes: the leader has its locks and starts its workers, whose
    // NOWAIT lock of `first` meets the asker's queued request.
    server.sql(
        "shop",
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'holder'",
    );
    let outcome = dump.await.expect("the dump's task");
    let _ = holder.wait();
    let _ = asker.wait();
    assert_nothing_left(
        &setup,
        outcome,
        "pg_dump's workers take their locks with NOWAIT",
    )
    .await;
}

#[tokio::test]
async fn two_parallel_runs_of_one_slot_make_one_dump() {
    let (setup, bin, _server, event) = shop_of(2).await;
    let (one, two) = (
        setup.function(&pg_dump_of(&bin), setup.s3.clone()),
        setup.function(&pg_dump_of(&bin), setup.s3.clone()),
    );
    let (a, b) = tokio::join!(
        handle(&one, event.clone(), Invocation::now()),
        handle(&two, event, Invocation::now())
    );
    let (a, b) = (a.expect("first delivery"), b.expect("second delivery"));
    let created: Vec<_> = a.created.iter().chain(&b.created).collect();
    assert_eq!(created.len(), 1, "{a:?} {b:?}");
    let key = created[0].backup.clone();
    let skipped: Vec<_> = a.skipped.iter().chain(&b.skipped).collect();
    assert_eq!(skipped.len(), 1, "{a:?} {b:?}");
    assert!(
        skipped[0].reason.starts_with("another run")
            || skipped[0]
                .reason
                .starts_with("already dumped for this slot"),
        "{:?}",
        skipped[0]
    );
    let verified = lifeboat::postgres::verify::verify(&setup.s3, BUCKET, &key)
        .await
        .expect("verified");
    assert_eq!(verified.mismatches, Vec::<String>::new());
    // The dump's files and its manifest, nothing of the other run's.
    let stored = setup.keys().await;
    assert_eq!(
        stored.len(),
        verified.files.expect("files") + 1,
        "{stored:?}"
    );
    assert!(stored.iter().all(|k| k.starts_with(&key)), "{stored:?}");
}

#[tokio::test]
async fn a_parallel_dump_stands_aside_while_another_run_claims_its_slot() {
    let (setup, bin, _server, event) = shop_of(1).await;
    let key = KEY;
    // Another run's claim, written moments ago (as that run renews it while it works).
    setup
        .s3
        .put_object()
        .bucket(BUCKET)
        .key(format!("{key}.claim.json"))
        .metadata("lifeboat-run", "the-other-run")
        .body(b"{}".to_vec().into())
        .send()
        .await
        .expect("a claim");
    let function = setup.function(&pg_dump_of(&bin), setup.s3.clone());
    let report = handle(&function, event, Invocation::now())
        .await
        .expect("standing aside is no failure");
    assert!(report.created.is_empty(), "{report:?}");
    assert!(
        report.skipped[0]
            .reason
            .starts_with("another run (run the-other-run) is dumping this slot"),
        "{:?}",
        report.skipped
    );
    assert_eq!(
        setup.keys().await,
        vec![format!("{key}.claim.json")],
        "nothing of this run's, and the other's claim left alone"
    );
}

#[tokio::test]
async fn a_dead_runs_files_without_a_claim_are_cleared_and_the_slot_dumped() {
    let (setup, bin, _server, event) = shop_of(1).await;
    let key = KEY;
    // What a killed run left: files, its claim gone with the lifecycle rule.
    for name in ["toc.dat", "9999.dat.zst"] {
        setup.put(&format!("{key}/{name}"), b"left".to_vec()).await;
    }
    let function = setup.function(&pg_dump_of(&bin), setup.s3.clone());
    let report = handle(&function, event, Invocation::now())
        .await
        .expect("dumped");
    assert_eq!(report.created.len(), 1, "{report:?}");
    let verified = lifeboat::postgres::verify::verify(&setup.s3, BUCKET, key)
        .await
        .expect("verified");
    assert_eq!(verified.mismatches, Vec::<String>::new());
    let stored = setup.keys().await;
    assert!(
        !stored.contains(&format!("{key}/9999.dat.zst")),
        "the dead run's file is gone: {stored:?}"
    );
    assert_eq!(
        stored.len(),
        verified.files.expect("files") + 1,
        "{stored:?}"
    );
}

/// A parallel dump's uploads without pg_dump: the test writes the files
/// into `dir`, as pg_dump would, and `files` uploads them to the emulator
/// through `proxy`, which counts the requests.
struct Uploading {
    setup: Setup,
    proxy: lifeboat_tests::faults::FaultProxy,
    _scratch: lifeboat_tests::TempDir,
    dir: std::path::PathBuf,
    watch: pg_dump::directory::Watch,
    files: pg_dump::directory::Files,
}

impl Uploading {
    /// Two files at once, under the key `pg-dump/nightly/orders/<name>`.
    async fn new(name: &str) -> Self {
        use lifeboat_tests::faults::{FaultConfig, FaultProxy};
        let setup = Setup::new().await;
        let proxy = FaultProxy::start(&setup.emulator.endpoint, FaultConfig::none(17)).await;
        let s3 = lifeboat::aws::s3_client(&proxy.sdk_config("us-east-1").await);
        let scratch = lifeboat_tests::TempDir::new(name);
        let dir = scratch.path.join("dump");
        std::fs::create_dir(&dir).expect("dump dir");
        let watch = pg_dump::directory::Watch::new(&dir).expect("watch");
        let target = pg_dump::upload::Target {
            bucket: BUCKET.into(),
            key: format!("pg-dump/nightly/orders/{name}"),
            tagging: "lifeboat%3Aplan=nightly".into(),
            kms_key_id: None,
            run: format!("the-{name}-run"),
        };
        let files = pg_dump::directory::Files::new(s3, target, PARTS, dir.clone(), 2);
        Uploading {
            setup,
            proxy,
            _scratch: scratch,
            dir,
            watch,
            files,
        }
    }
}

/// Waits until `proxy` has seen `n` parts sent (`UploadPart`), up to a minute.
async fn until_parts(proxy: &lifeboat_tests::faults::FaultProxy, n: usize) {
    let since = std::time::Instant::now();
    while proxy.stats().operation(UPLOAD_PART).requests < n {
        assert!(
            since.elapsed() < std::time::Duration::from_secs(60),
            "waited a minute for {n} parts: {:?}",
            proxy.stats()
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

const UPLOAD_PART: &str = "s3:PUT ?partNumber&uploadId";
const COMPLETE: &str = "s3:POST ?uploadId";

/// A table's data, `parts` parts of it in rows (a few bytes short).
fn rows(parts: usize) -> Vec<u8> {
    b"a row of the table\n".repeat(parts * PARTS.part_size / 19)
}

/// How COPY ends a table's data: with `rows(3)`, exactly three parts.
const COPY_END: &[u8] = b"\\.\n";

/// No file was completed in S3, and [`Files::remove`] leaves nothing:
/// neither an upload open nor an object.
///
/// [`Files::remove`]: pg_dump::directory::Files::remove
async fn never_completed_and_removed(
    setup: &Setup,
    proxy: &lifeboat_tests::faults::FaultProxy,
    files: &mut pg_dump::directory::Files,
) {
    assert_eq!(
        proxy.stats().operation(COMPLETE).requests,
        0,
        "never completed"
    );
    files.remove().await;
    assert_eq!(setup.open_uploads().await, 0, "the clean-up aborts it");
    assert!(setup.keys().await.is_empty(), "{:?}", setup.keys().await);
}

/// A table's file is uploaded as pg_dump writes it, not only once pg_dump
/// has closed it: the largest table's upload overlaps its dump, and what is
/// read of it no longer takes local storage.
#[tokio::test]
async fn a_parallel_dumps_file_uploads_while_pg_dump_writes_it() {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    let Uploading {
        setup,
        proxy,
        dir,
        mut watch,
        mut files,
        _scratch,
    } = Uploading::new("growing").await;
    let dumping = async {
        let mut table = std::fs::File::create(dir.join("4242.dat")).expect("a table's file");
        table.write_all(&rows(3)).expect("rows");
        // Still open: its first parts go up while pg_dump writes on.
        until_parts(&proxy, 2).await;
        // What the upload has read goes back to local storage.
        let on_disk = table.metadata().expect("the file's size");
        assert!(
            on_disk.blocks() * 512 < on_disk.len() - PARTS.part_size as u64,
            "{} of {} bytes still take local storage",
            on_disk.blocks() * 512,
            on_disk.len()
        );
        table.write_all(&rows(2)).expect("rows");
        table.write_all(COPY_END).expect("the end of COPY");
        Ok::<_, ()>(())
    };
    files
        .run(&mut watch, dumping, Result::is_ok, "orders")
        .await
        .expect("the file uploads")
        .expect("the dump ends");
    let [(file, _)] = &files.done[..] else {
        panic!("one file uploaded: {:?}", files.done);
    };
    let whole = [rows(3), rows(2), COPY_END.to_vec()].concat();
    assert_eq!(file.size_bytes, whole.len() as u64);
    assert_eq!(
        setup.get("pg-dump/nightly/orders/growing/4242.dat").await,
        whole,
        "the object is the file as pg_dump closed it"
    );
}

/// A file the dump left unfinished is never completed in S3, and nothing of
/// it is left: pg_dump failed half-way through it; another file failed its
/// upload while pg_dump still wrote it (the dump ends at once, not when
/// pg_dump does); or it ends shorter than was read.
#[tokio::test]
async fn a_file_a_parallel_dump_left_unfinished_leaves_nothing() {
    use std::io::Write;
    // pg_dump fails half-way through a file, still open.
    let Uploading {
        setup,
        proxy,
        dir,
        mut watch,
        mut files,
        _scratch,
    } = Uploading::new("cut-short").await;
    let mut table = std::fs::File::create(dir.join("4243.dat")).expect("a table's file");
    let dumping = async {
        table.write_all(&rows(3)).expect("rows");
        until_parts(&proxy, 1).await;
        Err::<(), _>("pg_dump failed")
    };
    let ended = files
        .run(&mut watch, dumping, Result::is_ok, "orders")
        .await
        .expect("the uploads end");
    drop(table);
    assert_eq!(ended, Err("pg_dump failed"));
    assert!(files.done.is_empty(), "{:?}", files.done);
    never_completed_and_removed(&setup, &proxy, &mut files).await;

    // Another file fails its check while pg_dump writes on, never to end.
    let Uploading {
        setup,
        proxy,
        dir,
        mut watch,
        mut files,
        _scratch,
    } = Uploading::new("failed-beside").await;
    let mut growing = std::fs::File::create(dir.join("4244.dat")).expect("a table's file");
    let dumping = async {
        growing.write_all(&rows(2)).expect("rows");
        until_parts(&proxy, 1).await;
        std::fs::write(dir.join("4245.dat"), rows(1)).expect("a file without COPY's end");
        std::future::pending::<Result<(), ()>>().await
    };
    let error = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        files.run(&mut watch, dumping, Result::is_ok, "orders"),
    )
    .await
    .expect("the dump ends when a file fails")
    .expect_err("a file failed");
    drop(growing);
    assert!(error.to_string().contains("4245.dat"), "{error}");
    never_completed_and_removed(&setup, &proxy, &mut files).await;

    // A file that ends shorter than was read fails the dump.
    let Uploading {
        setup,
        proxy,
        dir,
        mut watch,
        mut files,
        _scratch,
    } = Uploading::new("shrunk").await;
    let dumping = async {
        let mut table = std::fs::File::create(dir.join("4246.dat")).expect("a table's file");
        table.write_all(&rows(3)).expect("rows");
        table.write_all(COPY_END).expect("the end of COPY");
        // Its third part is full only once the file is read to its end.
        until_parts(&proxy, 3).await;
        table.set_len(10).expect("cut");
        Ok::<_, ()>(())
    };
    let error = files
        .run(&mut watch, dumping, Result::is_ok, "orders")
        .await
        .expect_err("a file changed while read");
    assert!(
        error.to_string().contains("changed while it was read"),
        "{error}"
    );
    never_completed_and_removed(&setup, &proxy, &mut files).await;
}

/// A parallel dump that is stopped while a file uploads (the deadline, a
/// signal or a lost claim drops the uploads under way) leaves no multipart
/// upload open: the clean-up aborts what the dropped uploads had started,
/// as it deletes the files they had finished.
#[tokio::test]
async fn a_parallel_dump_stopped_while_a_file_uploads_leaves_no_upload_open() {
    let Uploading {
        setup,
        proxy,
        dir,
        mut watch,
        mut files,
        _scratch,
    } = Uploading::new("stopped").await;
    // A table's data file of twelve parts, closed; then pg_dump goes on.
    let dumping = async {
        std::fs::write(dir.join("4242.dat"), vec![b'x'; 12 * PARTS.part_size]).expect("file");
        std::future::pending::<Result<(), ()>>().await
    };
    // Stopped once a part is in S3: its upload was started, and is known.
    tokio::select! {
        outcome = files.run(&mut watch, dumping, Result::is_ok, "orders") => {
            panic!("the dump ended: {outcome:?}")
        }
        () = until_parts(&proxy, 1) => {}
    }
    assert_eq!(
        setup.open_uploads().await,
        1,
        "the dropped upload is left open in S3"
    );
    never_completed_and_removed(&setup, &proxy, &mut files).await;
    // Stopped half-way: aborted once.
    let stats = proxy.stats();
    assert_eq!(
        stats.operation("s3:DELETE ?uploadId").requests,
        1,
        "{stats:?}"
    );
}

/// A multipart upload that S3 began but whose answer was lost (the
/// connection dropped after S3 had done the work, and the SDK began
/// another) is known to no one; once the parallel dump ends, with the
/// slot still its own, every upload open under the key is aborted.
#[tokio::test]
async fn an_upload_begun_but_never_answered_is_aborted_when_the_parallel_dump_ends() {
    use lifeboat_tests::faults::{FaultConfig, FaultProxy};
    // sales.orders' file is larger than a part: a multipart upload.
    let (setup, bin, _server, event) = shop_of(16).await;
    let lost_answer = FaultConfig {
        reset: 1.0,
        after_share: 1.0,
        only: Some(("s3:POST ?uploads", 1)),
        ..FaultConfig::none(23)
    };
    let proxy = FaultProxy::start(&setup.emulator.endpoint, lost_answer).await;
    let s3 = lifeboat::aws::s3_client(&proxy.sdk_config("us-east-1").await);
    let function = setup.function(&pg_dump_of(&bin), s3);
    let report = handle(&function, event, Invocation::now())
        .await
        .expect("dumped");
    assert_eq!(report.created.len(), 1, "{report:?}");
    let creates = proxy.stats().operation("s3:POST ?uploads");
    assert_eq!(
        (creates.reached, creates.faulted),
        (2, 1),
        "one upload begun twice, the first answer lost: {creates:?}"
    );
    assert_eq!(
        setup.open_uploads().await,
        0,
        "the unseen upload is aborted"
    );
    let verified = lifeboat::postgres::verify::verify(&setup.s3, BUCKET, KEY)
        .await
        .expect("verified");
    assert_eq!(verified.mismatches, Vec::<String>::new());
}
