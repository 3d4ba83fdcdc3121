//! `lifeboat restore`'s library against real PostgreSQL servers and the
//! emulator's S3: a dump that is not the one its manifest records restores
//! nothing, a database that is not empty is refused, rows lost on the way in
//! are found, a pg_restore too old for the archive is refused before
//! anything runs, a plain dump restores into an older server, and a restore
//! with large objects commits once (or, on a target with too few locks for
//! them, not at all).
//! (The round trip of the custom format, into PostgreSQL 15 and 18, is in
//! `pg_dump.rs`.)

use crate::pg_dump_common::{BUCKET, Setup, conninfo, payload, pg_dump_of, restore_into};
use lifeboat::postgres::restore::{Options, Target, Tools};
use lifeboat::runtime::{Invocation, handle};
use lifeboat_tests::postgres::{PgServer, generate, newest_bin, pg15_bin};
use serde_json::{Value, json};

/// A server with a generated database of about `mib` MiB, dumped once by
/// pg-dump (with these changes to its payload entry); the dump's key.
async fn dumped(setup: &Setup, server: &PgServer, mib: u32, entry: Value) -> String {
    dumped_with(setup, server, mib, entry, 0).await
}

/// As [`dumped`], with `objects` more large objects in the database.
async fn dumped_with(
    setup: &Setup,
    server: &PgServer,
    mib: u32,
    entry: Value,
    objects: u32,
) -> String {
    generate(server, "shop", mib);
    if objects > 0 {
        server.sql(
            "shop",
            &format!("SELECT count(lo_from_bytea(0, convert_to('object ' || i, 'UTF8'))) FROM generate_series(1, {objects}) i"),
        );
    }
    let arn = setup.secret("shop", &server.password).await;
    let mut event = payload("nightly", server.port, "shop", &arn);
    for (field, value) in entry.as_object().into_iter().flatten() {
        event["databases"][0][field] = value.clone();
    }
    let function = setup.function(&pg_dump_of(&newest_bin()), setup.s3.clone());
    let report = handle(&function, event, Invocation::now())
        .await
        .expect("dump");
    report.created[0].backup.clone()
}

/// The tables in `dbname`, by name.
fn tables(server: &PgServer, dbname: &str) -> String {
    server.sql(
        dbname,
        "SELECT string_agg(format('%I.%I', schemaname, tablename), ' ' ORDER BY 1) FROM pg_tables \
         WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
    )
}

#[tokio::test]
async fn a_dump_that_is_not_the_one_recorded_restores_nothing() {
    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    // Uncompressed, so that a changed digit is still a valid archive and valid rows:
    // only the size and SHA-256 can tell.
    let key = dumped(&setup, &server, 6, json!({"compression": "none"})).await;
    let mut dump = setup.get(&key).await;
    let digit = (dump.len() / 2..dump.len())
        .find(|&i| dump[i].is_ascii_digit() && dump[i] != b'9')
        .expect("a digit in the table data");
    dump[digit] += 1;
    setup.replace_recorded(&key, dump).await;

    server.sql("postgres", "CREATE DATABASE shop_restored");
    let target = Target::Conninfo(conninfo(&server, "shop_restored"));
    let refused = restore_into(&setup, &key, &target)
        .await
        .expect_err("a dump that differs from its manifest");
    assert!(
        refused.contains("is not the dump its manifest describes: SHA-256: the manifest says"),
        "{refused}"
    );
    assert!(refused.ends_with("nothing was restored (the transaction was not committed)"));
    assert_eq!(
        tables(&server, "shop_restored"),
        "",
        "nothing was committed"
    );
}

/// The transactions that made what `dbname` holds: every relation (not the
/// system's, below the first user OID), every large object and every row
/// of `sales.orders`, by the `xmin` of its row.
fn transactions(server: &PgServer, dbname: &str) -> String {
    server.sql(
        dbname,
        "SELECT count(DISTINCT x) FROM ( \
           SELECT xmin::text AS x FROM pg_class WHERE oid >= 16384 \
           UNION ALL SELECT xmin::text FROM pg_largeobject_metadata \
           UNION ALL SELECT xmin::text FROM sales.orders) AS made",
    )
}

/// pg_dump writes each block of large objects inside its own BEGIN and
/// COMMIT: a restore takes them out, or that COMMIT would commit the schema
/// and rows before the dump's SHA-256 is known and run the rest (the
/// indexes, constraints, anything after the objects) outside the transaction.
#[tokio::test]
async fn a_restore_with_large_objects_commits_once() {
    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    // Two blocks of large objects (pg_dump 17 and later write one per thousand).
    let key = &dumped_with(&setup, &server, 1, json!({}), 1500).await;
    assert_ne!(
        transactions(&server, "shop"),
        "1",
        "the source was made in many"
    );

    server.sql("postgres", "CREATE DATABASE shop_restored");
    let target = Target::Conninfo(conninfo(&server, "shop_restored"));
    let restored = restore_into(&setup, key, &target).await.expect("restored");
    assert_eq!(restored.mismatches, Vec::<String>::new());
    assert_eq!(restored.large_objects, 1501);
    assert_eq!(transactions(&server, "shop_restored"), "1");
    assert_eq!(
        server.fingerprint("shop_restored"),
        server.fingerprint("shop")
    );
}

/// A restore holds a lock per large object until it commits: a target whose
/// lock table is too small for them refuses the restore, which leaves
/// nothing behind and says what to change.
#[tokio::test]
async fn a_target_with_too_few_locks_for_the_large_objects_restores_nothing_and_says_what_to_raise()
{
    let setup = Setup::new().await;
    // 10 × (100 connections and the server's own processes): about 1,200 locks.
    let server = PgServer::start_with_settings(&newest_bin(), "-c max_locks_per_transaction=10");
    let key = dumped_with(&setup, &server, 1, json!({}), 5000).await;

    server.sql("postgres", "CREATE DATABASE shop_restored");
    let target = Target::Conninfo(conninfo(&server, "shop_restored"));
    let refused = restore_into(&setup, &key, &target)
        .await
        .expect_err("too few locks");
    assert!(refused.contains("out of shared memory"), "{refused}");
    assert!(
        refused.contains("this dump has 3 tables and 5001 large objects. Raise max_locks_per_transaction on the target"),
        "{refused}"
    );
    assert!(refused.ends_with("nothing was restored (the transaction was not committed)"));
    assert_eq!(tables(&server, "shop_restored"), "");
    assert_eq!(
        server.sql(
            "shop_restored",
            "SELECT count(*) FROM pg_largeobject_metadata"
        ),
        "0"
    );
}

#[tokio::test]
async fn a_database_that_is_not_empty_is_refused_and_left_as_it_was() {
    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    let key = dumped(&setup, &server, 1, json!({})).await;
    server.sql("postgres", "CREATE DATABASE busy");
    server.sql(
        "busy",
        "CREATE TABLE keep (v int); INSERT INTO keep VALUES (1)",
    );

    let target = Target::Conninfo(conninfo(&server, "busy"));
    let refused = restore_into(&setup, &key, &target)
        .await
        .expect_err("not empty");
    assert!(
        refused.contains("is not empty (1 tables, views or sequences, 0 large objects): restore into a new database"),
        "{refused}"
    );
    assert!(!refused.contains(&server.password), "{refused}");
    assert_eq!(tables(&server, "busy"), "public.keep");
    assert_eq!(server.sql("busy", "SELECT count(*) FROM keep"), "1");

    let missing = Target::Conninfo(conninfo(&server, "nowhere"));
    let refused = restore_into(&setup, &key, &missing)
        .await
        .expect_err("no such database");
    assert!(
        refused.contains("psql exited with status 2")
            && refused.contains("database \"nowhere\" does not exist"),
        "{refused}"
    );
}

#[tokio::test]
async fn rows_lost_on_the_way_in_are_found() {
    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    let key = dumped(&setup, &server, 1, json!({})).await;
    server.sql("postgres", "CREATE DATABASE shop_restored");
    // A target whose event trigger gives audit.events a trigger that drops every row.
    server.sql(
        "shop_restored",
        "CREATE FUNCTION public.drop_rows() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
         CREATE FUNCTION public.lose_rows() RETURNS event_trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF EXISTS (SELECT FROM pg_event_trigger_ddl_commands()
                      WHERE command_tag = 'CREATE TABLE' AND object_identity = 'audit.events') THEN
             CREATE TRIGGER lose BEFORE INSERT ON audit.events FOR EACH ROW EXECUTE FUNCTION public.drop_rows();
           END IF;
         END $$;
         CREATE EVENT TRIGGER lose ON ddl_command_end EXECUTE FUNCTION public.lose_rows();",
    );

    let target = Target::Conninfo(conninfo(&server, "shop_restored"));
    let restored = restore_into(&setup, &key, &target).await.expect("restored");
    let events: u64 = server
        .sql("shop", "SELECT count(*) FROM audit.events")
        .parse()
        .expect("count");
    assert_eq!(
        restored.mismatches,
        vec![format!(
            "table audit.events: the manifest says {events} rows, the restored database has 0"
        )]
    );
    assert_eq!(restored.tables["audit.events"], 0);
    assert_eq!(restored.tables["sales.orders"], 1700);
}

#[tokio::test]
async fn a_pg_restore_too_old_for_the_archive_is_refused_before_anything_runs() {
    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    let key = dumped(&setup, &server, 1, json!({})).await;
    let tools = Tools::find(Some(pg15_bin().join("pg_restore")))
        .await
        .expect("pg_restore 15 and its psql");
    let secrets = aws_sdk_secretsmanager::Client::new(&setup.aws);
    let target = Target::Conninfo(conninfo(&server, "never_made"));
    let refused = lifeboat::postgres::restore::restore(
        &setup.s3,
        &secrets,
        (BUCKET, &key),
        &target,
        &tools,
        Options::default(),
    )
    .await
    .expect_err("pg_restore 15 cannot read archive 1.16");
    assert!(
        refused.starts_with("the dump needs pg_restore 17 or later, and /usr/lib/postgresql/15/bin/pg_restore is pg_restore 15."),
        "{refused}"
    );
    assert!(refused.contains("PG_RESTORE_PATH"), "{refused}");
}

#[tokio::test]
async fn a_plain_dump_restores_into_an_older_server() {
    let setup = Setup::new().await;
    let server = PgServer::start(&pg15_bin());
    let key = dumped(&setup, &server, 2, json!({"format": "plain"})).await;
    assert!(key.ends_with(".sql"), "{key}");
    let before = server.fingerprint("shop");
    server.sql("postgres", "CREATE DATABASE shop_restored");

    let target = Target::Conninfo(conninfo(&server, "shop_restored"));
    let restored = restore_into(&setup, &key, &target).await.expect("restored");
    assert_eq!(restored.mismatches, Vec::<String>::new());
    assert!(restored.server_version_num < 160_000);
    assert_eq!(server.fingerprint("shop_restored"), before);
    assert_eq!(
        transactions(&server, "shop_restored"),
        "1",
        "one transaction, its large object's block included"
    );

    // pg_restore's options do not apply to a plain dump: refused, nothing run.
    let options = Options {
        no_owner: true,
        no_privileges: false,
        jobs: None,
    };
    let tools = Tools::find(Some(newest_bin().join("pg_restore")))
        .await
        .expect("tools");
    let secrets = aws_sdk_secretsmanager::Client::new(&setup.aws);
    let refused = lifeboat::postgres::restore::restore(
        &setup.s3,
        &secrets,
        (BUCKET, &key),
        &target,
        &tools,
        options,
    )
    .await
    .expect_err("--no-owner on a plain dump");
    assert!(
        refused.starts_with("--no-owner and --no-privileges are pg_restore's"),
        "{refused}"
    );
}
