//! `rds-snapshot` against the emulator, through the handler, with the payloads in `events/`.

use aws_sdk_rds::Client;
use aws_sdk_rds::types::Tag;
use lifeboat::Error;
use lifeboat::runtime::{Invocation, handle};
use lifeboat_tests::recorded::Recorded;
use lifeboat_tests::{AlertInbox, Emulator, event};
use rds_snapshot::RdsSnapshot;
use std::collections::BTreeMap;

const REGION: &str = "us-east-1";

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// Three DB instances (two tagged `backup=nightly`) and one tagged Aurora cluster.
async fn seed(rds: &Client) {
    for (id, tagged) in [
        ("orders-db", true),
        ("billing-db", true),
        ("scratch-db", false),
    ] {
        let mut create = rds
            .create_db_instance()
            .db_instance_identifier(id)
            .db_instance_class("db.t3.micro")
            .engine("postgres")
            .allocated_storage(20)
            .master_username("admin")
            .master_user_password("not-a-secret-1");
        if tagged {
            create = create.tags(tag("backup", "nightly"));
        }
        create.send().await.expect("create instance");
    }
    rds.create_db_cluster()
        .db_cluster_identifier("ledger-aurora")
        .engine("aurora-postgresql")
        .master_username("admin")
        .master_user_password("not-a-secret-1")
        .tags(tag("backup", "nightly"))
        .send()
        .await
        .expect("create cluster");
}

fn tags_of(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn invocation() -> Invocation {
    Invocation::now()
}

#[tokio::test]
async fn two_runs_of_one_slot_make_one_snapshot_per_selected_source() {
    let emulator = Emulator::start();
    let aws = emulator.sdk_config(REGION).await;
    let rds = Client::new(&aws);
    seed(&rds).await;
    let inbox = AlertInbox::create(&aws).await;
    let function = RdsSnapshot::new(
        rds.clone().recorded("rds-snapshot"),
        inbox.sinks("rds-snapshot", &aws),
        lifeboat::fanout::FanOut::new(4),
    );

    let first = handle(&function, event("rds-snapshot.json"), invocation())
        .await
        .expect("first run");
    let made: Vec<(&str, &str)> = first
        .created
        .iter()
        .map(|c| (c.source.as_str(), c.backup.as_str()))
        .collect();
    assert_eq!(
        made,
        vec![
            ("billing-db", "lb-nightly-202611200200-billing-db"),
            ("orders-db", "lb-nightly-202611200200-orders-db"),
            ("ledger-aurora", "lb-nightly-202611200200-ledger-aurora"),
        ]
    );
    // The same slot delivered again, in the form EventBridge Scheduler sends it.
    let second = handle(
        &function,
        event("rds-snapshot.scheduler.json"),
        invocation(),
    )
    .await
    .expect("second run");
    assert!(second.created.is_empty(), "{:?}", second.created);
    assert_eq!(second.skipped.len(), 3);
    assert!(
        second
            .skipped
            .iter()
            .all(|s| s.reason.contains("already exists"))
    );

    let snapshots = rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .expect("list");
    let snapshots = snapshots.db_snapshots();
    assert_eq!(snapshots.len(), 2, "one snapshot per selected instance");
    for snapshot in snapshots {
        let source = snapshot.db_instance_identifier().expect("source");
        assert_ne!(source, "scratch-db", "the untagged instance is untouched");
        let arn = snapshot.db_snapshot_arn().expect("arn");
        let tags = tags_of(
            rds.list_tags_for_resource()
                .resource_name(arn)
                .send()
                .await
                .expect("tags")
                .tag_list(),
        );
        assert_eq!(tags.get("managed-by").map(String::as_str), Some("lifeboat"));
        assert_eq!(
            tags.get("lifeboat:plan").map(String::as_str),
            Some("nightly")
        );
        assert_eq!(
            tags.get("lifeboat:source").map(String::as_str),
            Some(source)
        );
        assert_eq!(
            tags.get("lifeboat:scheduled-time").map(String::as_str),
            Some("2026-11-20T02:00:00Z")
        );
    }
    let clusters = rds
        .describe_db_cluster_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .expect("list");
    let clusters = clusters.db_cluster_snapshots();
    assert_eq!(clusters.len(), 1);
    let tags = tags_of(
        rds.list_tags_for_resource()
            .resource_name(clusters[0].db_cluster_snapshot_arn().expect("arn"))
            .send()
            .await
            .expect("tags")
            .tag_list(),
    );
    assert_eq!(
        tags.get("lifeboat:source").map(String::as_str),
        Some("ledger-aurora")
    );
    assert!(inbox.drain().await.is_empty(), "a clean run sends no alert");
    assert_eq!(
        outcome_sum(&aws, "BackupsCreated").await,
        3.0,
        "job outcomes reach CloudWatch"
    );
    assert_eq!(outcome_sum(&aws, "BackupsSkipped").await, 3.0);
}

/// The sum of an outcome metric of this function and plan over the last hour.
async fn outcome_sum(aws: &aws_config::SdkConfig, metric: &str) -> f64 {
    let points = lifeboat_tests::metric(
        aws,
        metric,
        &[("Function", "rds-snapshot"), ("Plan", "nightly")],
    )
    .await;
    points.iter().filter_map(|d| d.sum()).sum()
}

#[tokio::test]
async fn a_listed_id_that_does_not_exist_fails_and_alerts_once() {
    let emulator = Emulator::start();
    let aws = emulator.sdk_config(REGION).await;
    let rds = Client::new(&aws);
    seed(&rds).await;
    let inbox = AlertInbox::create(&aws).await;
    let function = RdsSnapshot::new(
        rds.clone().recorded("rds-snapshot"),
        inbox.sinks("rds-snapshot", &aws),
        lifeboat::fanout::FanOut::new(4),
    );
    let payload = serde_json::json!({
        "plan": "nightly",
        "scheduled_time": "2026-11-20T02:00:00Z",
        "select": { "ids": ["orders-db", "ghost-db"] }
    });

    let Err(Error::RunFailed { report }) = handle(&function, payload, invocation()).await else {
        panic!("a missing id must fail the run");
    };
    assert_eq!(
        report.created.len(),
        1,
        "the existing id is still backed up"
    );
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].source, "ghost-db");
    assert!(
        report.failed[0].error.contains("no DB instance"),
        "{}",
        report.failed[0].error
    );

    let alerts = inbox.drain().await;
    assert_eq!(alerts.len(), 1, "exactly one alert: {alerts:?}");
    let message = alerts[0]["Message"].as_str().expect("message");
    assert!(message.contains("ghost-db"), "{message}");
    assert!(
        !message.contains("orders-db"),
        "the alert lists failures only: {message}"
    );
    let subject = alerts[0]["Subject"].as_str().expect("subject");
    assert!(
        subject.contains("rds-snapshot") && subject.contains("1 of 2 failed"),
        "{subject}"
    );
}

#[tokio::test]
async fn copies_go_to_other_regions_with_their_tags() {
    let emulator = Emulator::start();
    let aws = emulator.sdk_config(REGION).await;
    let rds = Client::new(&aws);
    seed(&rds).await;
    let inbox = AlertInbox::create(&aws).await;
    let function = RdsSnapshot::new(
        rds.clone().recorded("rds-snapshot"),
        inbox.sinks("rds-snapshot", &aws),
        lifeboat::fanout::FanOut::new(4),
    );
    let payload = serde_json::json!({
        "plan": "nightly",
        "scheduled_time": "2026-11-20T02:00:00Z",
        "select": { "ids": ["orders-db"] },
        "copy_to": [{ "region": "eu-west-1" }]
    });

    let report = handle(&function, payload.clone(), invocation())
        .await
        .expect("run");
    let copies: Vec<&str> = report
        .created
        .iter()
        .filter(|c| c.region == "eu-west-1")
        .map(|c| c.backup.as_str())
        .collect();
    assert_eq!(copies, vec!["lb-nightly-202611200200-orders-db"]);

    let again = handle(&function, payload, invocation())
        .await
        .expect("rerun");
    assert!(
        again.created.is_empty(),
        "nothing copied twice: {:?}",
        again.created
    );

    let eu = Client::new(&emulator.sdk_config("eu-west-1").await);
    let there = eu
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .expect("list eu");
    assert_eq!(there.db_snapshots().len(), 1);
    let arn = there.db_snapshots()[0].db_snapshot_arn().expect("arn");
    let tags = tags_of(
        eu.list_tags_for_resource()
            .resource_name(arn)
            .send()
            .await
            .expect("tags")
            .tag_list(),
    );
    assert_eq!(tags.get("managed-by").map(String::as_str), Some("lifeboat"));
    assert_eq!(
        tags.get("lifeboat:source").map(String::as_str),
        Some("orders-db")
    );
    assert!(
        tags.get("lifeboat:copy-of")
            .is_some_and(|a| a.contains(REGION)),
        "{tags:?}"
    );
}

#[tokio::test]
async fn both_event_files_parse_to_the_same_request() {
    let now = chrono::Utc::now();
    let direct = lifeboat::Request::<rds_snapshot::fields::RdsSnapshotFields>::parse(
        event("rds-snapshot.json"),
        now,
    )
    .expect("direct");
    let scheduled = lifeboat::Request::<rds_snapshot::fields::RdsSnapshotFields>::parse(
        event("rds-snapshot.scheduler.json"),
        now,
    )
    .expect("scheduler");
    assert_eq!(direct.plan, scheduled.plan);
    assert_eq!(direct.slot, scheduled.slot);
    assert_eq!(direct.fields.select, scheduled.fields.select);
    assert_eq!(direct.fields.clusters, scheduled.fields.clusters);
}

#[test]
fn the_other_sample_payloads_are_valid() {
    let now = chrono::Utc::now();
    for name in ["rds-snapshot.demo.json", "rds-snapshot.missing.json"] {
        let parsed =
            lifeboat::Request::<rds_snapshot::fields::RdsSnapshotFields>::parse(event(name), now);
        assert!(parsed.is_ok(), "events/{name}: {parsed:?}");
    }
    for name in ["prune.demo.json", "prune.demo-dry-run.json"] {
        let parsed = lifeboat::Request::<prune::fields::PruneFields>::parse(event(name), now);
        assert!(parsed.is_ok(), "events/{name}");
    }
}
