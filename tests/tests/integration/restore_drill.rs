//! `restore-drill`'s dump drills against real PostgreSQL servers (15 and 18
//! as sources; the drill's own throwaway server is the newest) and the
//! emulator's S3: a drill that passes and is recorded beside the dump, a
//! dump changed in S3 and a manifest whose row count differs each failing
//! the run with one alert, and `every` leaving a recently drilled source alone;
//! a parallel (directory) dump drilled as a single stream's is.

use crate::pg_dump_common::{BUCKET, Setup, payload, pg_dump_of};
use lifeboat::report::DrillOutcome;
use lifeboat::runtime::{Invocation, handle};
use lifeboat_tests::postgres::{PgServer, generate, newest_bin, pg15_bin};
use lifeboat_tests::recorded::Recorded;
use restore_drill::{RestoreDrill, Settings};
use serde_json::{Value, json};
use std::path::Path;

/// A database of about 2 MiB on a server of `bin`, dumped once by pg-dump; the dump's key.
async fn dumped(setup: &Setup, bin: &Path) -> (PgServer, String) {
    dumped_with(setup, bin, 0).await
}

/// As [`dumped`], with `objects` more large objects in the database.
async fn dumped_with(setup: &Setup, bin: &Path, objects: u32) -> (PgServer, String) {
    dumped_in(setup, bin, objects, 1).await
}

/// As [`dumped_with`], by `jobs` parallel jobs (more than one: a directory dump).
async fn dumped_in(setup: &Setup, bin: &Path, objects: u32, jobs: u16) -> (PgServer, String) {
    let server = PgServer::start(bin);
    generate(&server, "shop", 2);
    if objects > 0 {
        server.sql(
            "shop",
            &format!("SELECT count(lo_from_bytea(0, convert_to('object ' || i, 'UTF8'))) FROM generate_series(1, {objects}) i"),
        );
    }
    let arn = setup.secret("shop", &server.password).await;
    let function = setup.function(&pg_dump_of(&newest_bin()), setup.s3.clone());
    let mut event = payload("nightly", server.port, "shop", &arn);
    event["databases"][0]["jobs"] = json!(jobs);
    let report = handle(&function, event, Invocation::now())
        .await
        .expect("dump");
    (server, report.created[0].backup.clone())
}

fn drill_function(setup: &Setup) -> RestoreDrill {
    let settings = Settings {
        pg_restore: Some(newest_bin().join("pg_restore")),
        bucket: Some(BUCKET.into()),
        scratch: std::env::temp_dir(),
    };
    RestoreDrill::new(
        aws_sdk_ec2::Client::new(&setup.aws).recorded("restore-drill"),
        aws_sdk_rds::Client::new(&setup.aws).recorded("restore-drill"),
        setup.s3.clone().recorded("restore-drill"),
        aws_sdk_secretsmanager::Client::new(&setup.aws),
        settings,
        setup.inbox.sinks("restore-drill", &setup.aws),
    )
}

fn drill_payload(every: Option<&str>) -> Value {
    let mut event = json!({
        "plan": "monthly-drill",
        "rto_minutes": 60,
        "dumps": {"databases": ["orders"], "prefix": "pg/", "backup_plan": "nightly"}
    });
    if let Some(every) = every {
        event["every"] = json!(every);
    }
    event
}

async fn record(setup: &Setup, key: &str) -> Value {
    serde_json::from_slice(&setup.get(&format!("{key}.drill.json")).await).expect("a drill record")
}

async fn a_dump_drill_passes_and_is_recorded(source: &Path, objects: u32) {
    a_dump_drill_by_jobs_passes_and_is_recorded(source, objects, 1).await;
}

/// [`a_dump_drill_passes_and_is_recorded`], of a dump made by `jobs` jobs.
async fn a_dump_drill_by_jobs_passes_and_is_recorded(source: &Path, objects: u32, jobs: u16) {
    let setup = Setup::new().await;
    let (server, key) = dumped_in(&setup, source, objects, jobs).await;
    assert_eq!(key.ends_with(".dir"), jobs > 1, "{key}");
    let function = drill_function(&setup);

    let report = handle(&function, drill_payload(Some("30d")), Invocation::now())
        .await
        .expect("a drill that passes");
    assert_eq!(report.drills.len(), 1, "{report:?}");
    let drill = &report.drills[0];
    assert_eq!(drill.outcome, DrillOutcome::Passed, "{drill:?}");
    assert_eq!(drill.backup, key);
    assert!(drill.restore_seconds.is_some_and(|s| s > 0.0), "{drill:?}");
    assert!(
        drill
            .restored_into
            .starts_with("a throwaway PostgreSQL 18."),
        "{drill:?}"
    );
    let orders: u64 = server
        .sql("shop", "SELECT count(*) FROM sales.orders")
        .parse()
        .expect("count");
    let events: u64 = server
        .sql("shop", "SELECT count(*) FROM audit.events")
        .parse()
        .expect("count");
    assert_eq!(
        drill.checks[1],
        format!(
            "3 tables, {} rows, {} large objects as recorded",
            orders + events + 1,
            objects + 1
        ),
        "{drill:?}"
    );
    let recorded = record(&setup, &key).await;
    assert_eq!(recorded["outcome"], json!("passed"));
    assert_eq!(recorded["plan"], json!("monthly-drill"));
    let manifest: Value = serde_json::from_slice(&setup.get(&format!("{key}.manifest.json")).await)
        .expect("manifest");
    assert_eq!(recorded["size_bytes"], manifest["size_bytes"]);
    if jobs == 1 {
        assert_eq!(recorded["size_bytes"], json!(setup.get(&key).await.len()));
    }
    assert!(
        setup.inbox.drain().await.is_empty(),
        "no alert for a drill that passed"
    );

    // Within `every` of that drill: left alone.
    let again = handle(&function, drill_payload(Some("30d")), Invocation::now())
        .await
        .expect("nothing due");
    assert!(again.drills.is_empty(), "{again:?}");
    assert!(
        again.skipped[0].reason.starts_with("last drilled at "),
        "{:?}",
        again.skipped
    );
    // Without `every`, every run drills.
    let third = handle(&function, drill_payload(None), Invocation::now())
        .await
        .expect("drilled again");
    assert_eq!(third.drills.len(), 1);
}

#[tokio::test]
async fn a_drill_of_a_parallel_dump_passes_and_is_recorded() {
    // A directory dump (jobs 2), restored by pg_restore --jobs 2 into the
    // drill's own PostgreSQL 18 server.
    a_dump_drill_by_jobs_passes_and_is_recorded(&newest_bin(), 3, 2).await;
}

#[tokio::test]
async fn a_drill_of_a_postgres_15_dump_passes_and_is_recorded() {
    a_dump_drill_passes_and_is_recorded(&pg15_bin(), 0).await;
}

#[tokio::test]
async fn a_drill_of_a_postgres_18_dump_passes_and_is_recorded() {
    // More large objects than a server's default lock table holds (64 ×
    // about 120): the drill's own server is made for the dump it restores.
    a_dump_drill_passes_and_is_recorded(&newest_bin(), 20_000).await;
}

/// Runs a drill that must fail: the run fails, one alert names the backup,
/// the step and `reason`, and the record says failed.
async fn drill_fails(setup: &Setup, key: &str, step: &str, reason: &str) {
    let function = drill_function(setup);
    let outcome = handle(&function, drill_payload(None), Invocation::now()).await;
    let report = match outcome {
        Err(lifeboat::Error::RunFailed { report }) => report,
        other => panic!("expected a failed drill, got {other:?}"),
    };
    assert_eq!(report.drills[0].outcome, DrillOutcome::Failed);
    assert_eq!(report.drills[0].failed_step.as_deref(), Some(step));
    let error = &report.failed[0].error;
    assert!(
        error.starts_with(&format!("the drill of {key} failed at {step}: "))
            && error.contains(reason),
        "{error}"
    );
    let alerts = setup.inbox.drain().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let message = alerts[0]["Message"].as_str().unwrap_or_default();
    assert!(
        message.contains(key) && message.contains(reason),
        "{message}"
    );
    assert_eq!(record(setup, key).await["outcome"], json!("failed"));
}

#[tokio::test]
async fn a_drill_of_a_dump_changed_in_s3_fails_the_run_with_one_alert() {
    let setup = Setup::new().await;
    let (_server, key) = dumped(&setup, &newest_bin()).await;
    // A byte of the dump changed, and the manifest pointed at that version.
    let mut dump = setup.get(&key).await;
    let middle = dump.len() / 2;
    dump[middle] ^= 0x01;
    setup.replace_recorded(&key, dump).await;
    drill_fails(&setup, &key, "restore", "nothing was restored").await;
}

#[tokio::test]
async fn a_drill_whose_rows_differ_from_the_manifest_fails_the_run() {
    let setup = Setup::new().await;
    let (_server, key) = dumped(&setup, &newest_bin()).await;
    let mut rows = 0;
    setup
        .edit_manifest(&key, |m| {
            let events = &mut m["archive"]["fingerprint"]["tables"]["audit.events"];
            rows = events.as_u64().expect("rows");
            *events = json!(rows + 1);
        })
        .await;
    drill_fails(
        &setup,
        &key,
        "restore",
        &format!("table audit.events: the manifest says {} rows", rows + 1),
    )
    .await;
}

/// A volume tagged `backup=nightly` with one completed Lifeboat snapshot of plan `nightly`.
async fn volume_with_a_snapshot(ec2: &aws_sdk_ec2::Client) -> (String, String) {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let spec = |resource: ResourceType, tags: &[(&str, &str)]| {
        TagSpecification::builder()
            .resource_type(resource)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                    .collect(),
            ))
            .build()
    };
    let volume = ec2
        .create_volume()
        .availability_zone("us-east-1a")
        .size(1)
        .tag_specifications(spec(ResourceType::Volume, &[("backup", "nightly")]))
        .send()
        .await
        .expect("volume")
        .volume_id
        .expect("id");
    let snapshot = ec2
        .create_snapshot()
        .volume_id(&volume)
        .tag_specifications(spec(
            ResourceType::Snapshot,
            &[
                ("managed-by", "lifeboat"),
                ("lifeboat:plan", "nightly"),
                ("lifeboat:source", &volume),
                ("lifeboat:scheduled-time", "2026-11-20T02:00:00Z"),
            ],
        ))
        .send()
        .await
        .expect("snapshot")
        .snapshot_id
        .expect("id");
    (volume, snapshot)
}

async fn volume_ids(ec2: &aws_sdk_ec2::Client) -> Vec<String> {
    let mut ids: Vec<String> = ec2
        .describe_volumes()
        .send()
        .await
        .expect("volumes")
        .volumes()
        .iter()
        .filter_map(|v| v.volume_id().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

fn ebs_payload() -> Value {
    json!({
        "plan": "monthly-drill",
        "rto_minutes": 60,
        "every": "30d",
        "ebs": {"select": {"tags": {"backup": "nightly"}}, "backup_plan": "nightly"}
    })
}

#[tokio::test]
async fn an_ebs_drill_restores_a_volume_records_it_and_deletes_it() {
    let setup = Setup::new().await;
    let ec2 = aws_sdk_ec2::Client::new(&setup.aws);
    let (volume, snapshot) = volume_with_a_snapshot(&ec2).await;
    let function = drill_function(&setup);

    let report = handle(&function, ebs_payload(), Invocation::now())
        .await
        .expect("a drill that passes");
    assert_eq!(report.drills.len(), 1, "{report:?}");
    let drill = &report.drills[0];
    assert_eq!(drill.outcome, DrillOutcome::Passed, "{drill:?}");
    assert_eq!(
        (drill.source.as_str(), drill.backup.as_str()),
        (volume.as_str(), snapshot.as_str())
    );
    assert!(drill.restored_into.ends_with(" in us-east-1a"), "{drill:?}");
    assert!(
        drill.checks.iter().any(|c| c.ends_with(" deleted")),
        "{drill:?}"
    );
    assert_eq!(
        volume_ids(&ec2).await,
        vec![volume.clone()],
        "the drill volume is gone"
    );
    let tags: std::collections::BTreeMap<String, String> = ec2
        .describe_snapshots()
        .snapshot_ids(&snapshot)
        .send()
        .await
        .expect("snapshot")
        .snapshots()[0]
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
        .collect();
    assert_eq!(
        tags.get("lifeboat:drill-outcome").map(String::as_str),
        Some("passed"),
        "{tags:?}"
    );
    assert!(tags.contains_key("lifeboat:drilled-at"), "{tags:?}");
    assert!(setup.inbox.drain().await.is_empty());

    let again = handle(&function, ebs_payload(), Invocation::now())
        .await
        .expect("nothing due");
    assert!(again.drills.is_empty(), "{again:?}");
    assert!(
        again.skipped[0].reason.starts_with("last drilled at "),
        "{again:?}"
    );
}

#[tokio::test]
async fn the_sweep_deletes_a_stale_drill_volume_and_never_an_untagged_one() {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let setup = Setup::new().await;
    let ec2 = aws_sdk_ec2::Client::new(&setup.aws);
    let (volume, snapshot) = volume_with_a_snapshot(&ec2).await;
    let two_days_ago = (chrono::Utc::now() - chrono::Duration::hours(48)).to_rfc3339();
    let stale = ec2
        .create_volume()
        .availability_zone("us-east-1a")
        .snapshot_id(&snapshot)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Volume)
                .set_tags(Some(
                    [
                        ("managed-by", "lifeboat"),
                        ("lifeboat:drill", snapshot.as_str()),
                        ("lifeboat:drill-source", volume.as_str()),
                        ("lifeboat:drill-started", two_days_ago.as_str()),
                    ]
                    .iter()
                    .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                    .collect(),
                ))
                .build(),
        )
        .send()
        .await
        .expect("a crashed drill's volume")
        .volume_id
        .expect("id");
    let untagged = ec2
        .create_volume()
        .availability_zone("us-east-1a")
        .size(1)
        .send()
        .await
        .expect("someone's volume")
        .volume_id
        .expect("id");

    let outcome = handle(&drill_function(&setup), ebs_payload(), Invocation::now()).await;
    let report = match outcome {
        Err(lifeboat::Error::RunFailed { report }) => report,
        other => panic!("a swept drill fails the run: {other:?}"),
    };
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(
        report.failed[0].error.contains(&format!(
            "its volume {stale} was older than 24 h (max_age_hours) and was deleted"
        )),
        "{:?}",
        report.failed
    );
    let mut left = vec![volume, untagged];
    left.sort();
    assert_eq!(
        volume_ids(&ec2).await,
        left,
        "the stale drill volume alone was deleted"
    );
    assert_eq!(setup.inbox.drain().await.len(), 1);
}

#[tokio::test]
async fn an_ami_drill_checks_the_image_and_its_snapshots() {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let setup = Setup::new().await;
    let ec2 = aws_sdk_ec2::Client::new(&setup.aws);
    let instance = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("ami").value("weekly").build())
                .build(),
        )
        .send()
        .await
        .expect("instance")
        .instances()[0]
        .instance_id()
        .expect("id")
        .to_owned();
    let ami_backup = ami_backup::AmiBackup::new(
        ec2.clone(),
        setup.inbox.sinks("ami-backup", &setup.aws),
        lifeboat::fanout::FanOut::new(1),
    );
    let made = handle(
        &ami_backup,
        lifeboat_tests::event("ami-backup.json"),
        Invocation::now(),
    )
    .await
    .expect("an image");
    let image = made.created[0].backup.clone();
    let payload = json!({
        "plan": "monthly-drill",
        "rto_minutes": 60,
        "amis": {"select": {"tags": {"ami": "weekly"}}, "backup_plan": "weekly"}
    });
    let function = drill_function(&setup);

    let report = handle(&function, payload.clone(), Invocation::now())
        .await
        .expect("a drill that passes");
    let drill = &report.drills[0];
    assert_eq!(
        (drill.source.as_str(), drill.backup.as_str()),
        (instance.as_str(), image.as_str())
    );
    assert_eq!(drill.outcome, DrillOutcome::Passed, "{drill:?}");
    assert!(
        drill.checks[1].contains("snapshots exist and are completed"),
        "{drill:?}"
    );

    assert_eq!(report.failed, vec![]);
    let described = ec2
        .describe_images()
        .image_ids(&image)
        .send()
        .await
        .expect("image");
    let recorded = lifeboat::aws::ec2::tag_map(described.images()[0].tags());
    assert_eq!(
        recorded.get("lifeboat:drill-outcome").map(String::as_str),
        Some("passed"),
        "{recorded:?}"
    );
    // A missing or unfinished snapshot (which the emulator, like AWS, will
    // not produce for an image in use) is the unit table in images.rs.
}

/// An RDS tag.
fn rds_tag(key: &str, value: &str) -> aws_sdk_rds::types::Tag {
    aws_sdk_rds::types::Tag::builder()
        .key(key)
        .value(value)
        .build()
}

/// Lifeboat's four tags on a snapshot of `source` made by plan `nightly`.
fn lifeboat_tags(source: &str) -> Vec<aws_sdk_rds::types::Tag> {
    vec![
        rds_tag("managed-by", "lifeboat"),
        rds_tag("lifeboat:plan", "nightly"),
        rds_tag("lifeboat:source", source),
        rds_tag("lifeboat:scheduled-time", "2026-11-20T02:00:00Z"),
    ]
}

/// A DB subnet group over two subnets, and a security group: where drills restore into.
async fn drill_network(setup: &Setup) -> (String, String) {
    let ec2 = aws_sdk_ec2::Client::new(&setup.aws);
    let vpc = lifeboat_tests::vpc(&ec2, "10.9.0.0/16").await;
    let mut subnets = Vec::new();
    for (cidr, zone) in [("10.9.1.0/24", "us-east-1a"), ("10.9.2.0/24", "us-east-1b")] {
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(cidr)
            .availability_zone(zone)
            .send()
            .await
            .expect("subnet")
            .subnet
            .and_then(|s| s.subnet_id)
            .expect("subnet id");
        subnets.push(subnet);
    }
    let group = ec2
        .create_security_group()
        .group_name("lifeboat-drill")
        .description("restore drills")
        .vpc_id(&vpc)
        .send()
        .await
        .expect("security group")
        .group_id
        .expect("group id");
    aws_sdk_rds::Client::new(&setup.aws)
        .create_db_subnet_group()
        .db_subnet_group_name("lifeboat-drill")
        .db_subnet_group_description("restore drills")
        .set_subnet_ids(Some(subnets))
        .send()
        .await
        .expect("subnet group");
    ("lifeboat-drill".to_owned(), group)
}

fn rds_payload(group: &str, which: &str) -> Value {
    json!({
        "plan": "monthly-drill",
        "rto_minutes": 60,
        "every": "30d",
        "rds": {
            which: {"tags": {"backup": "nightly"}},
            "backup_plan": "nightly",
            "instance_class": "db.t4g.medium",
            "subnet_group": "lifeboat-drill",
            "security_groups": [group]
        }
    })
}

/// A DB instance tagged `backup=nightly` and its Lifeboat snapshot; the snapshot's ARN.
async fn instance_with_a_snapshot(rds: &aws_sdk_rds::Client, id: &str) -> String {
    rds.create_db_instance()
        .db_instance_identifier(id)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .allocated_storage(20)
        .master_username("admin")
        .master_user_password("not-a-secret-1")
        .tags(rds_tag("backup", "nightly"))
        .send()
        .await
        .expect("instance");
    rds.create_db_snapshot()
        .db_instance_identifier(id)
        .db_snapshot_identifier(format!("lb-nightly-202611200200-{id}"))
        .set_tags(Some(lifeboat_tags(id)))
        .send()
        .await
        .expect("snapshot")
        .db_snapshot
        .and_then(|s| s.db_snapshot_arn)
        .expect("arn")
}

async fn instance_ids(rds: &aws_sdk_rds::Client) -> Vec<String> {
    let mut ids: Vec<String> = rds
        .describe_db_instances()
        .send()
        .await
        .expect("instances")
        .db_instances()
        .iter()
        .filter_map(|d| d.db_instance_identifier().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

async fn tags_of(
    rds: &aws_sdk_rds::Client,
    arn: &str,
) -> std::collections::BTreeMap<String, String> {
    rds.list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .expect("tags")
        .tag_list()
        .iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
        .collect()
}

#[tokio::test]
async fn an_rds_drill_restores_an_instance_checks_records_and_deletes_it() {
    let setup = Setup::new().await;
    let rds = aws_sdk_rds::Client::new(&setup.aws);
    let (_, group) = drill_network(&setup).await;
    let snapshot = instance_with_a_snapshot(&rds, "orders-db").await;
    let function = drill_function(&setup);

    let report = handle(
        &function,
        rds_payload(&group, "instances"),
        Invocation::now(),
    )
    .await
    .expect("a drill that passes");
    assert_eq!(report.drills.len(), 1, "{report:?}");
    let drill = &report.drills[0];
    assert_eq!(drill.outcome, DrillOutcome::Passed, "{drill:?}");
    assert_eq!(
        (drill.source.as_str(), drill.backup.as_str()),
        ("orders-db", "lb-nightly-202611200200-orders-db")
    );
    for check in [
        "engine postgres ",
        "encrypted: false as the snapshot",
        "storage of at least the snapshot's 20 GiB",
        "not publicly accessible",
    ] {
        assert!(
            drill.checks.iter().any(|c| c.starts_with(check)),
            "{check} not in {:?}",
            drill.checks
        );
    }
    assert!(drill.restore_seconds.is_some(), "{drill:?}");
    assert_eq!(
        instance_ids(&rds).await,
        vec!["orders-db".to_owned()],
        "the drill instance is deleted"
    );
    let recorded = tags_of(&rds, &snapshot).await;
    assert_eq!(
        recorded.get("lifeboat:drill-outcome").map(String::as_str),
        Some("passed"),
        "{recorded:?}"
    );
    assert!(recorded.contains_key("lifeboat:drilled-at"), "{recorded:?}");
    assert!(setup.inbox.drain().await.is_empty());

    let again = handle(
        &function,
        rds_payload(&group, "instances"),
        Invocation::now(),
    )
    .await
    .expect("nothing due");
    assert!(again.drills.is_empty(), "{again:?}");
    assert!(
        again.skipped[0].reason.starts_with("last drilled at "),
        "{again:?}"
    );
}

#[tokio::test]
async fn an_aurora_drill_restores_a_cluster_with_one_instance_and_deletes_both() {
    let setup = Setup::new().await;
    let rds = aws_sdk_rds::Client::new(&setup.aws);
    let (_, group) = drill_network(&setup).await;
    rds.create_db_cluster()
        .db_cluster_identifier("ledger")
        .engine("aurora-postgresql")
        .master_username("admin")
        .master_user_password("not-a-secret-1")
        .tags(rds_tag("backup", "nightly"))
        .send()
        .await
        .expect("cluster");
    let snapshot = rds
        .create_db_cluster_snapshot()
        .db_cluster_identifier("ledger")
        .db_cluster_snapshot_identifier("lb-nightly-202611200200-ledger")
        .set_tags(Some(lifeboat_tags("ledger")))
        .send()
        .await
        .expect("cluster snapshot")
        .db_cluster_snapshot
        .and_then(|s| s.db_cluster_snapshot_arn)
        .expect("arn");
    let function = drill_function(&setup);

    let report = handle(
        &function,
        rds_payload(&group, "clusters"),
        Invocation::now(),
    )
    .await
    .expect("a drill that passes");
    assert_eq!(report.drills.len(), 1, "{report:?}");
    let drill = &report.drills[0];
    assert_eq!(drill.outcome, DrillOutcome::Passed, "{drill:?}");
    assert!(
        drill
            .checks
            .iter()
            .any(|c| c.ends_with("its instance created")),
        "{drill:?}"
    );
    assert!(
        drill
            .checks
            .iter()
            .any(|c| c.starts_with("engine aurora-postgresql ")),
        "{drill:?}"
    );
    let clusters: Vec<String> = rds
        .describe_db_clusters()
        .send()
        .await
        .expect("clusters")
        .db_clusters()
        .iter()
        .filter_map(|c| c.db_cluster_identifier().map(str::to_owned))
        .collect();
    assert_eq!(
        clusters,
        vec!["ledger".to_owned()],
        "the drill cluster is deleted"
    );
    assert_eq!(
        instance_ids(&rds).await,
        Vec::<String>::new(),
        "and its instance"
    );
    assert_eq!(
        tags_of(&rds, &snapshot)
            .await
            .get("lifeboat:drill-outcome")
            .map(String::as_str),
        Some("passed")
    );
}

#[tokio::test]
async fn duplicate_deliveries_of_one_drill_run_start_one_restore() {
    let setup = Setup::new().await;
    let rds = aws_sdk_rds::Client::new(&setup.aws);
    let (_, group) = drill_network(&setup).await;
    instance_with_a_snapshot(&rds, "orders-db").await;
    let restores = Restores::default();
    let counted = |setup: &Setup| {
        let settings = Settings {
            pg_restore: None,
            bucket: Some(BUCKET.into()),
            scratch: std::env::temp_dir(),
        };
        let rds = aws_sdk_rds::Client::from_conf(
            aws_sdk_rds::config::Builder::from(&setup.aws)
                .interceptor(restores.clone())
                .build(),
        );
        RestoreDrill::new(
            aws_sdk_ec2::Client::new(&setup.aws),
            rds,
            setup.s3.clone(),
            aws_sdk_secretsmanager::Client::new(&setup.aws),
            settings,
            setup.inbox.sinks("restore-drill", &setup.aws),
        )
    };
    let (first, second) = (counted(&setup), counted(&setup));
    let mut event = rds_payload(&group, "instances");
    event["scheduled_time"] = json!("2026-12-01T03:00:00Z");
    let (a, b) = tokio::join!(
        handle(&first, event.clone(), Invocation::now()),
        handle(&second, event, Invocation::now())
    );
    let (a, b) = (a.expect("first delivery"), b.expect("second delivery"));
    assert_eq!(
        restores.succeeded(),
        1,
        "one restore between both: {a:?} {b:?}"
    );
    let (drilled, left): (Vec<_>, Vec<_>) =
        [&a, &b].into_iter().partition(|r| !r.drills.is_empty());
    assert_eq!((drilled.len(), left.len()), (1, 1), "{a:?} {b:?}");
    assert_eq!(drilled[0].drills[0].outcome, DrillOutcome::Passed);
    // Which it says depends on when it looked: while the other's drill was
    // open, or (the emulator restores at once) after it was recorded.
    let why = &left[0].skipped[0].reason;
    assert!(
        why.starts_with("another delivery of this run started its drill (lifeboat-drill-")
            || why.starts_with("last drilled at "),
        "the other delivery says why it did nothing: {:?}",
        left[0].skipped
    );
    assert_eq!(instance_ids(&rds).await, vec!["orders-db".to_owned()]);
}

#[tokio::test]
async fn the_sweep_deletes_a_stale_drill_instance_and_never_an_untagged_one() {
    let setup = Setup::new().await;
    let rds = aws_sdk_rds::Client::new(&setup.aws);
    let (_, group) = drill_network(&setup).await;
    instance_with_a_snapshot(&rds, "orders-db").await;
    let two_days_ago = (chrono::Utc::now() - chrono::Duration::hours(48)).to_rfc3339();
    rds.restore_db_instance_from_db_snapshot()
        .db_instance_identifier("lifeboat-drill-crashed")
        .db_snapshot_identifier("lb-nightly-202611200200-orders-db")
        .set_tags(Some(vec![
            rds_tag("managed-by", "lifeboat"),
            rds_tag("lifeboat:drill", "lb-nightly-202611200200-orders-db"),
            rds_tag("lifeboat:drill-source", "orders-db"),
            rds_tag("lifeboat:drill-started", &two_days_ago),
        ]))
        .send()
        .await
        .expect("a crashed drill's instance");
    // Another plan's drill, as old: its own schedules sweep it, with their limit.
    rds.restore_db_instance_from_db_snapshot()
        .db_instance_identifier("lifeboat-drill-other-plan")
        .db_snapshot_identifier("lb-nightly-202611200200-orders-db")
        .set_tags(Some(vec![
            rds_tag("managed-by", "lifeboat"),
            rds_tag("lifeboat:plan", "weekly-drill"),
            rds_tag("lifeboat:drill", "lb-nightly-202611200200-orders-db"),
            rds_tag("lifeboat:drill-source", "orders-db"),
            rds_tag("lifeboat:drill-started", &two_days_ago),
        ]))
        .send()
        .await
        .expect("another plan's drill instance");
    // Someone's own instance, restored from the same snapshot by hand, old,
    // without the drill's tags (with tags of its own: a restore without any
    // copies the snapshot's, which would make it a source to drill).
    rds.restore_db_instance_from_db_snapshot()
        .db_instance_identifier("restored-by-hand")
        .db_snapshot_identifier("lb-nightly-202611200200-orders-db")
        .tags(rds_tag("owner", "data-team"))
        .send()
        .await
        .expect("someone's instance");

    let outcome = handle(
        &drill_function(&setup),
        rds_payload(&group, "instances"),
        Invocation::now(),
    )
    .await;
    let report = match outcome {
        Err(lifeboat::Error::RunFailed { report }) => report,
        other => panic!("a swept drill fails the run: {other:?}"),
    };
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(
        report.failed[0].error.contains(
            "its DB instance lifeboat-drill-crashed was older than 24 h (max_age_hours) and was deleted"
        ),
        "{:?}",
        report.failed
    );
    assert_eq!(
        instance_ids(&rds).await,
        ["lifeboat-drill-other-plan", "orders-db", "restored-by-hand"].map(str::to_owned),
        "this plan's stale drill instance alone was deleted, and no new drill started beside either"
    );
    assert_eq!(setup.inbox.drain().await.len(), 1);
}

/// Counts the RDS restores that succeeded, across clients.
#[derive(Debug, Clone, Default)]
struct Restores(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Restores {
    fn succeeded(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for Restores {
    fn name(&self) -> &'static str {
        "Restores"
    }

    fn read_before_deserialization(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let restore = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .is_some_and(|m| m.name().starts_with("RestoreDB"));
        if restore && context.response().status().is_success() {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_drill_query_gives_one_number_from_a_real_server_or_says_why_not() {
    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    generate(&server, "shop", 1);
    let arn = setup.secret("shop-login", &server.password).await;
    let target =
        lifeboat::postgres::restore::Target::Entry(lifeboat::postgres::database::Database {
            name: "shop".into(),
            host: "127.0.0.1".into(),
            port: server.port,
            dbname: "shop".into(),
            secret_arn: arn,
            format: Default::default(),
            sslmode: None,
            compression: None,
            require_auth: None,
            runner: Default::default(),
            jobs: 1,
        });
    let tools = lifeboat::postgres::restore::Tools::find(Some(newest_bin().join("pg_restore")))
        .await
        .expect("psql");
    let secrets = aws_sdk_secretsmanager::Client::new(&setup.aws);
    let ask = |sql: &'static str| {
        lifeboat::postgres::restore::query_number(&target, &tools.psql, &secrets, sql)
    };
    let orders: i64 = server
        .sql("shop", "SELECT count(*) FROM sales.orders")
        .parse()
        .expect("count");
    assert!(orders > 0);
    assert_eq!(ask("SELECT count(*) FROM sales.orders").await, Ok(orders));
    let words = ask("SELECT 'many'").await.expect_err("not a number");
    assert!(words.contains("gave `many`, not a whole number"), "{words}");
    let none = ask("SELECT count(*) FROM sales.no_such_table")
        .await
        .expect_err("no table");
    assert!(none.contains("no_such_table"), "psql's reason: {none}");
}

#[tokio::test]
async fn an_rds_drill_runs_its_query_on_the_restored_endpoint_and_a_failed_query_fails_it() {
    // The emulator gives the restored instance an endpoint with no server
    // behind it (its name does not even resolve): the query must be tried
    // there, with the secret's login, and its failure fail the drill at
    // `check`, recorded and the instance deleted all the same.
    let setup = Setup::new().await;
    let rds = aws_sdk_rds::Client::new(&setup.aws);
    let (_, group) = drill_network(&setup).await;
    let snapshot = instance_with_a_snapshot(&rds, "orders-db").await;
    let arn = setup.secret("orders-login", "not-a-secret-1").await;
    let mut event = rds_payload(&group, "instances");
    event["rds"]["query"] = json!({
        "secret_arn": arn, "dbname": "orders", "sql": "SELECT count(*) FROM orders", "at_least": 1
    });

    let outcome = handle(&drill_function(&setup), event, Invocation::now()).await;

    let report = match outcome {
        Err(lifeboat::Error::RunFailed { report }) => report,
        other => panic!("a failed query fails the run: {other:?}"),
    };
    let drill = &report.drills[0];
    assert_eq!(drill.outcome, DrillOutcome::Failed, "{drill:?}");
    assert_eq!(drill.failed_step.as_deref(), Some("check"));
    let reason = drill.reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("the query `SELECT count(*) FROM orders` on lifeboat-drill-")
            && reason.contains("/orders failed: "),
        "{reason}"
    );
    assert_eq!(
        instance_ids(&rds).await,
        vec!["orders-db".to_owned()],
        "deleted all the same"
    );
    assert_eq!(
        tags_of(&rds, &snapshot)
            .await
            .get("lifeboat:drill-outcome")
            .map(String::as_str),
        Some("failed")
    );
    assert_eq!(setup.inbox.drain().await.len(), 1, "one alert");
}

#[tokio::test]
async fn a_dump_drill_with_too_little_of_the_run_left_is_left_for_the_next_run() {
    let setup = Setup::new().await;
    let (_server, key) = dumped(&setup, &newest_bin()).await;
    let function = drill_function(&setup);
    // 90 s before a Lambda deadline: 60 s of them are kept for the record.
    let near = Invocation {
        now: chrono::Utc::now(),
        deadline: Some(std::time::SystemTime::now() + std::time::Duration::from_secs(90)),
    };

    let report = handle(&function, drill_payload(None), near)
        .await
        .expect("a drill left for later is no failure");

    assert!(report.drills.is_empty(), "{report:?}");
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    assert!(
        report.skipped[0]
            .reason
            .contains("s left in this run, too little to start a restore: the next run drills it"),
        "{:?}",
        report.skipped
    );
    let record = setup
        .s3
        .head_object()
        .bucket(BUCKET)
        .key(format!("{key}.drill.json"))
        .send()
        .await;
    assert!(
        record.is_err_and(|e| e.as_service_error().is_some_and(|e| e.is_not_found())),
        "nothing recorded, so the next run still finds it due"
    );
    assert!(setup.inbox.drain().await.is_empty(), "and nothing alerted");
}

#[test]
fn the_sample_payloads_are_valid() {
    for name in ["restore-drill.json", "restore-drill.demo.json"] {
        let request = lifeboat::Request::<restore_drill::fields::RestoreDrillFields>::parse(
            lifeboat_tests::event(name),
            chrono::Utc::now(),
        );
        assert!(request.is_ok(), "events/{name}: {:?}", request.err());
    }
}
