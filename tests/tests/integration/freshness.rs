//! `freshness` against the emulator: fresh, stale and unprotected volumes and
//! databases, one alert read back through SNS→SQS, and the ages in CloudWatch.

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use chrono::{Duration, Utc};
use freshness::Freshness;
use lifeboat::aws::catalog::Catalog;
use lifeboat::runtime::{Invocation, handle};
use lifeboat_tests::recorded::Recorded;
use lifeboat_tests::{AlertInbox, Emulator};
use serde_json::json;

const REGION: &str = "us-east-1";
const BUCKET: &str = "lifeboat-dumps";

fn slot(hours_ago: i64) -> String {
    (Utc::now() - Duration::hours(hours_ago))
        .format("%Y-%m-%dT%H:%M:00Z")
        .to_string()
}

fn spec(resource: ResourceType, pairs: &[(&str, &str)]) -> TagSpecification {
    let tags = pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect();
    TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(tags))
        .build()
}

struct Estate {
    fresh: String,
    stale: String,
    none: String,
}

/// Three tagged volumes: a managed backup 2 h old, one 30 h old, none; and
/// two databases: `orders` with a complete dump 2 h old, `billing` with a dump but no manifest.
async fn seed(aws: &aws_config::SdkConfig) -> Estate {
    let ec2 = aws_sdk_ec2::Client::new(aws);
    let mut ids = Vec::new();
    for hours in [Some(2), Some(30), None] {
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
        if let Some(hours) = hours {
            let time = slot(hours);
            let label = [
                ("managed-by", "lifeboat"),
                ("lifeboat:plan", "nightly"),
                ("lifeboat:source", volume.as_str()),
                ("lifeboat:scheduled-time", time.as_str()),
            ];
            ec2.create_snapshot()
                .volume_id(&volume)
                .tag_specifications(spec(ResourceType::Snapshot, &label))
                .send()
                .await
                .expect("snapshot");
        }
        ids.push(volume);
    }
    let s3 = lifeboat::aws::s3_client(aws);
    s3.create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("bucket");
    let plan = lifeboat::Plan::new("nightly").expect("plan");
    for (db, manifest) in [("orders", true), ("billing", false)] {
        let slot = lifeboat::Slot::parse(&slot(2), Utc::now()).expect("slot");
        let key = lifeboat::rules::naming::dump_key("pg/", db, &plan, slot, "dump");
        let mut keys = vec![key.clone()];
        if manifest {
            keys.push(format!("{key}.manifest.json"));
        }
        for key in keys {
            s3.put_object()
                .bucket(BUCKET)
                .key(key)
                .body(b"x".to_vec().into())
                .send()
                .await
                .expect("put");
        }
    }
    Estate {
        fresh: ids[0].clone(),
        stale: ids[1].clone(),
        none: ids[2].clone(),
    }
}

async fn function(aws: &aws_config::SdkConfig, inbox: &AlertInbox) -> Freshness {
    let rds = aws_sdk_rds::Client::new(aws).recorded("freshness");
    let ec2 = aws_sdk_ec2::Client::new(aws).recorded("freshness");
    let catalog = Catalog::new(
        rds.clone(),
        ec2.clone(),
        lifeboat::aws::s3_client(aws).recorded("freshness"),
        Some(BUCKET.to_owned()),
    );
    Freshness::new(
        catalog,
        rds,
        ec2,
        inbox.sinks("freshness", aws),
        lifeboat::fanout::FanOut::DEFAULT,
    )
}

#[tokio::test]
async fn stale_and_unprotected_resources_are_alerted_once_and_measured() {
    let emulator = Emulator::start();
    let aws = emulator.sdk_config(REGION).await;
    let estate = seed(&aws).await;
    let inbox = AlertInbox::create(&aws).await;
    let function = function(&aws, &inbox).await;
    let payload = json!({ "plan": "nightly", "checks": [
        { "kind": "ebs", "select": { "tags": { "backup": "nightly" } }, "max_age_hours": 26 },
        { "kind": "pg-dump", "database": ["orders", "billing"], "max_age_hours": 26 }
    ]});

    let report = handle(&function, payload, Invocation::now())
        .await
        .expect("findings are not a failure");

    let state = |source: &str| {
        report
            .checks
            .iter()
            .find(|c| c.source == source)
            .map(|c| c.state.to_string())
    };
    assert_eq!(state(&estate.fresh).as_deref(), Some("ok"));
    assert_eq!(state(&estate.stale).as_deref(), Some("stale"));
    assert_eq!(state(&estate.none).as_deref(), Some("unprotected"));
    assert_eq!(
        state("orders").as_deref(),
        Some("ok"),
        "a dump with a manifest counts"
    );
    assert_eq!(
        state("billing").as_deref(),
        Some("unprotected"),
        "a dump without a manifest does not"
    );

    let alerts = inbox.drain().await;
    assert_eq!(alerts.len(), 1, "one message per run");
    let message = alerts[0]["Message"].as_str().expect("message");
    assert!(
        message.contains(&estate.stale)
            && message.contains(&estate.none)
            && message.contains("billing"),
        "{message}"
    );
    assert!(
        !message.contains(&estate.fresh) && !message.contains("orders"),
        "fresh resources are not listed: {message}"
    );
    assert!(message.contains("26 h"), "thresholds are shown: {message}");
    assert_eq!(alerts[0]["MessageAttributes"]["unprotected"]["Value"], "2");

    let age = metric(
        &aws,
        "BackupAgeSeconds",
        &[("Kind", "ebs"), ("Source", &estate.fresh)],
    )
    .await;
    assert!(
        (7_000.0..7_300.0).contains(&age),
        "the fresh volume's backup is about 2 h old: {age}"
    );
    assert_eq!(
        metric(&aws, "StaleBackups", &[("Plan", "nightly")]).await,
        1.0
    );
    assert_eq!(
        metric(&aws, "UnprotectedResources", &[("Plan", "nightly")]).await,
        2.0
    );
    assert_eq!(metric(&aws, "Heartbeat", &[("Plan", "nightly")]).await, 1.0);
}

#[tokio::test]
async fn all_fresh_sends_no_message() {
    let emulator = Emulator::start();
    let aws = emulator.sdk_config(REGION).await;
    let estate = seed(&aws).await;
    let inbox = AlertInbox::create(&aws).await;
    let function = function(&aws, &inbox).await;
    let payload = json!({ "plan": "nightly", "checks": [
        { "kind": "ebs", "select": { "ids": [estate.fresh] }, "max_age_hours": 26 },
        { "kind": "ebs", "select": { "ids": [estate.stale] }, "max_age_hours": 48 },
        { "kind": "pg-dump", "database": "orders", "max_age_hours": 26 }
    ]});

    let report = handle(&function, payload, Invocation::now())
        .await
        .expect("run");

    assert_eq!(report.checks.len(), 3);
    assert!(
        report.checks.iter().all(|c| c.state.to_string() == "ok"),
        "{:?}",
        report.checks
    );
    assert!(
        inbox.drain().await.is_empty(),
        "no message when everything is fresh"
    );
    assert_eq!(
        metric(&aws, "Heartbeat", &[("Plan", "nightly")]).await,
        1.0,
        "the heartbeat goes out anyway"
    );
}

#[tokio::test]
async fn a_restore_not_proven_within_its_limit_is_alerted_and_a_passed_drill_is_shown() {
    let emulator = Emulator::start();
    let aws = emulator.sdk_config(REGION).await;
    let estate = seed(&aws).await;
    let ec2 = aws_sdk_ec2::Client::new(&aws);
    let s3 = lifeboat::aws::s3_client(&aws);
    let days_ago = |days: i64| (Utc::now() - Duration::days(days)).to_rfc3339();
    // The drills' records, as restore-drill writes them: on the fresh
    // volume's snapshot a drill that passed 10 days ago, on the stale one's a
    // drill that failed yesterday; beside the `orders` dump one that passed 40 days ago.
    for (volume, outcome, when) in [
        (&estate.fresh, "passed", days_ago(10)),
        (&estate.stale, "failed", days_ago(1)),
    ] {
        let snapshot = ec2
            .describe_snapshots()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("volume-id")
                    .values(volume.as_str())
                    .build(),
            )
            .send()
            .await
            .expect("snapshots")
            .snapshots()[0]
            .snapshot_id()
            .expect("id")
            .to_owned();
        ec2.create_tags()
            .resources(snapshot)
            .tags(
                Tag::builder()
                    .key("lifeboat:drilled-at")
                    .value(when)
                    .build(),
            )
            .tags(
                Tag::builder()
                    .key("lifeboat:drill-outcome")
                    .value(outcome)
                    .build(),
            )
            .send()
            .await
            .expect("drill tags");
    }
    let plan = lifeboat::Plan::new("nightly").expect("plan");
    let dump_slot = lifeboat::Slot::parse(&slot(2), Utc::now()).expect("slot");
    let dump = lifeboat::rules::naming::dump_key("pg/", "orders", &plan, dump_slot, "dump");
    s3.put_object()
        .bucket(BUCKET)
        .key(lifeboat::rules::naming::drill_key(&dump))
        .body(
            json!({"outcome": "passed", "drilled_at": days_ago(40)})
                .to_string()
                .into_bytes()
                .into(),
        )
        .send()
        .await
        .expect("drill record");
    let inbox = AlertInbox::create(&aws).await;
    let function = function(&aws, &inbox).await;
    let payload = json!({ "plan": "nightly", "checks": [
        { "kind": "ebs", "select": { "ids": [estate.fresh, estate.stale] }, "max_age_hours": 48, "proven_within_days": 35 },
        { "kind": "pg-dump", "database": "orders", "max_age_hours": 26, "proven_within_days": 35 }
    ]});

    let report = handle(&function, payload, Invocation::now())
        .await
        .expect("findings are not a failure");

    let proof = |source: &str| {
        let check = report
            .checks
            .iter()
            .find(|c| c.source == source)
            .expect("checked");
        (
            check.last_proven.map(|at| (Utc::now() - at).num_days()),
            check.unproven,
        )
    };
    assert_eq!(
        proof(&estate.fresh),
        (Some(10), false),
        "proven 10 days ago"
    );
    assert_eq!(
        proof(&estate.stale),
        (None, true),
        "a failed drill proves nothing"
    );
    assert_eq!(
        proof("orders"),
        (Some(40), true),
        "proven, but too long ago"
    );
    let alerts = inbox.drain().await;
    assert_eq!(alerts.len(), 1, "one message per run: {alerts:?}");
    let message = alerts[0]["Message"].as_str().expect("message");
    assert!(
        message.contains(&estate.stale)
            && message.contains("orders")
            && !message.contains(&estate.fresh),
        "{message}"
    );
    assert!(message.contains("never (limit 35 d)"), "{message}");
    assert_eq!(alerts[0]["MessageAttributes"]["unproven"]["Value"], "2");
    assert_eq!(
        metric(&aws, "UnprovenResources", &[("Plan", "nightly")]).await,
        2.0
    );
    let age = metric(
        &aws,
        "ProvenRestoreAgeSeconds",
        &[("Kind", "ebs"), ("Source", &estate.fresh)],
    )
    .await;
    assert!(
        (10.0 * 86_400.0 - 300.0..10.0 * 86_400.0 + 300.0).contains(&age),
        "the fresh volume's restore was proven 10 days ago: {age}"
    );
}

#[tokio::test]
async fn rds_snapshot_quota_usage_is_reported_and_measured() {
    let emulator = Emulator::start();
    let aws = emulator.sdk_config(REGION).await;
    let rds = aws_sdk_rds::Client::new(&aws);
    rds.create_db_instance()
        .db_instance_identifier("orders")
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("lifeboat")
        .master_user_password("not-a-secret-1")
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("backup")
                .value("nightly")
                .build(),
        )
        .send()
        .await
        .expect("instance");
    for n in 0..3 {
        rds.create_db_snapshot()
            .db_instance_identifier("orders")
            .db_snapshot_identifier(format!("by-hand-{n}"))
            .send()
            .await
            .expect("snapshot");
    }
    let inbox = AlertInbox::create(&aws).await;
    let function = function(&aws, &inbox).await;
    let payload = json!({ "plan": "nightly", "checks": [
        { "kind": "rds", "select": { "tags": { "backup": "nightly" } }, "max_age_hours": 26 }
    ]});

    let report = handle(&function, payload, Invocation::now())
        .await
        .expect("findings are not a failure");

    let quota = |name: &str| report.quotas.iter().find(|q| q.name == name).cloned();
    let instances = quota("ManualSnapshots").expect("the instance snapshot quota is read");
    assert_eq!(
        (instances.used, instances.max),
        (3, 1000),
        "moto's usage and limit"
    );
    assert_eq!(quota("ManualClusterSnapshots").map(|q| q.used), Some(0));
    let dimension = [("Quota", "ManualSnapshots")];
    assert_eq!(metric(&aws, "SnapshotQuotaUsed", &dimension).await, 3.0);
    assert_eq!(metric(&aws, "SnapshotQuotaMax", &dimension).await, 1000.0);
    assert!((metric(&aws, "SnapshotQuotaUsedPercent", &dimension).await - 0.3).abs() < 1e-9);
}

/// The maximum of a metric over the last hour.
async fn metric(aws: &aws_config::SdkConfig, name: &str, dimensions: &[(&str, &str)]) -> f64 {
    let points = lifeboat_tests::metric(aws, name, dimensions).await;
    points
        .iter()
        .filter_map(|d| d.maximum())
        .fold(f64::NAN, f64::max)
}

#[test]
fn the_sample_payloads_are_valid() {
    for name in ["freshness.json", "freshness.demo.json"] {
        let request = lifeboat::Request::<freshness::fields::FreshnessFields>::parse(
            lifeboat_tests::event(name),
            Utc::now(),
        );
        assert!(
            request.is_ok_and(|r| !r.fields.checks.is_empty()),
            "events/{name}"
        );
    }
}
