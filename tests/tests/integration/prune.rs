//! `prune` against the emulator: 60 days of daily managed backups, a
//! daily 7 / weekly 4 / monthly 3 policy, and exactly the expected set left
//! (with the backup whose restore drill passed last).

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use chrono::{Duration, TimeZone, Utc};
use lifeboat::aws::catalog::Catalog;
use lifeboat::rules::{naming, retention};
use lifeboat::runtime::{Invocation, handle};
use lifeboat_tests::recorded::Recorded;
use lifeboat_tests::{AlertInbox, Emulator, event};
use prune::Prune;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

const REGION: &str = "us-east-1";
const BUCKET: &str = "lifeboat-dumps";

/// The 60 daily slots, 2026-09-22 to 2026-11-20 at 02:00.
fn slots() -> Vec<String> {
    let last = Utc
        .with_ymd_and_hms(2026, 11, 20, 2, 0, 0)
        .single()
        .expect("time");
    (0..60)
        .map(|d| {
            (last - Duration::days(d))
                .format("%Y-%m-%dT%H:%M:00Z")
                .to_string()
        })
        .collect()
}

/// What daily 7 / weekly 4 / monthly 3 keeps of them: seven days, the newest of
/// ISO weeks 45 and 44 (and of 46 and 47, already kept), the newest of October
/// and September (and of November, already kept).
fn expected_days() -> BTreeSet<String> {
    [
        "2026-11-20",
        "2026-11-19",
        "2026-11-18",
        "2026-11-17",
        "2026-11-16",
        "2026-11-15",
        "2026-11-14",
        "2026-11-08",
        "2026-11-01",
        "2026-10-31",
        "2026-09-30",
    ]
    .iter()
    .map(|d| format!("{d}T02:00:00Z"))
    .collect()
}

fn label(source: &str, slot: &str) -> Vec<Tag> {
    [
        ("managed-by", "lifeboat"),
        ("lifeboat:plan", "nightly"),
        ("lifeboat:source", source),
        ("lifeboat:scheduled-time", slot),
    ]
    .iter()
    .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
    .collect()
}

/// Restore drills of the first source, by slot: when, and the outcome.
fn drills() -> BTreeMap<&'static str, (&'static str, &'static str)> {
    BTreeMap::from([
        ("2026-10-10T02:00:00Z", ("2026-10-11T05:00:00Z", "passed")),
        ("2026-10-20T02:00:00Z", ("2026-11-11T05:00:00Z", "failed")),
    ])
}

/// A drilled backup's tags, as restore-drill writes them.
fn drilled(at: &str, outcome: &str) -> Vec<Tag> {
    [
        ("lifeboat:drilled-at", at),
        ("lifeboat:drill-outcome", outcome),
    ]
    .iter()
    .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
    .collect()
}

fn policy(kind: &str) -> serde_json::Value {
    json!({ "plan": "nightly", "kinds": [kind], "keep": { "daily": 7, "weekly": 4, "monthly": 3 }, "max_deletions": 500 })
}

async fn function(emulator: &Emulator) -> (Prune, AlertInbox, aws_config::SdkConfig) {
    let aws = emulator.sdk_config(REGION).await;
    let inbox = AlertInbox::create(&aws).await;
    let catalog = Catalog::new(
        aws_sdk_rds::Client::new(&aws).recorded("prune"),
        aws_sdk_ec2::Client::new(&aws).recorded("prune"),
        lifeboat::aws::s3_client(&aws).recorded("prune"),
        Some(BUCKET.to_owned()),
    );
    (
        Prune::new(
            catalog,
            inbox.sinks("prune", &aws),
            lifeboat::fanout::FanOut::DEFAULT,
        ),
        inbox,
        aws,
    )
}

#[tokio::test]
async fn ebs_snapshots_keep_exactly_the_policy_and_never_the_unmanaged() {
    let emulator = Emulator::start();
    let (prune, inbox, aws) = function(&emulator).await;
    let ec2 = aws_sdk_ec2::Client::new(&aws);
    let mut volumes = Vec::new();
    for _ in 0..2 {
        let v = ec2
            .create_volume()
            .availability_zone("us-east-1a")
            .size(1)
            .send()
            .await
            .expect("volume");
        volumes.push(v.volume_id.expect("id"));
    }
    for volume in &volumes {
        for slot in slots() {
            let mut tags = label(volume, &slot);
            // The first volume's restore drills: one passed on a backup the
            // policy would delete, a later one failed on another.
            if volume == &volumes[0]
                && let Some((at, outcome)) = drills().get(slot.as_str())
            {
                tags.extend(drilled(at, outcome));
            }
            ec2.create_snapshot()
                .volume_id(volume)
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::Snapshot)
                        .set_tags(Some(tags))
                        .build(),
                )
                .send()
                .await
                .expect("managed snapshot");
        }
        for _ in 0..3 {
            ec2.create_snapshot()
                .volume_id(volume)
                .description("someone else's")
                .send()
                .await
                .expect("unmanaged snapshot");
        }
    }

    let dry = handle(&prune, with_dry_run(policy("ebs")), Invocation::now())
        .await
        .expect("dry run");
    assert_eq!(dry.deleted.len(), 97, "the plan, in full");
    assert_eq!(
        all_snapshots(&ec2).await.len(),
        126,
        "a dry run deletes nothing"
    );

    let report = handle(&prune, policy("ebs"), Invocation::now())
        .await
        .expect("prune");
    assert_eq!(report.deleted.len(), 97);
    assert_eq!(report.kept.len(), 23);
    assert!(report.kept.iter().all(|k| !k.reasons.is_empty()));
    let proven: Vec<_> = report
        .kept
        .iter()
        .filter(|k| k.reasons == [retention::LAST_PROVEN])
        .map(|k| (k.source.as_str(), k.scheduled_time.to_string()))
        .collect();
    assert_eq!(
        proven,
        [(volumes[0].as_str(), "2026-10-10T02:00:00Z".to_owned())]
    );

    let left = all_snapshots(&ec2).await;
    assert_eq!(
        left.len(),
        23 + 6,
        "23 kept managed snapshots and the 6 unmanaged ones"
    );
    for volume in &volumes {
        let kept: BTreeSet<String> = left
            .iter()
            .filter(|s| s.volume_id() == Some(volume))
            .filter_map(|s| {
                s.tags()
                    .iter()
                    .find(|t| t.key() == Some("lifeboat:scheduled-time"))
                    .and_then(|t| t.value())
                    .map(str::to_owned)
            })
            .collect();
        let mut expected = expected_days();
        if volume == &volumes[0] {
            expected.insert("2026-10-10T02:00:00Z".to_owned());
        }
        assert_eq!(kept, expected, "for {volume}");
    }
    assert!(inbox.drain().await.is_empty());

    let again = handle(&prune, policy("ebs"), Invocation::now())
        .await
        .expect("second prune");
    assert!(
        again.deleted.is_empty(),
        "a second run finds nothing more to delete"
    );
}

fn with_dry_run(mut payload: serde_json::Value) -> serde_json::Value {
    payload["dry_run"] = json!(true);
    payload
}

async fn all_snapshots(ec2: &aws_sdk_ec2::Client) -> Vec<aws_sdk_ec2::types::Snapshot> {
    ec2.describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .expect("snapshots")
        .snapshots
        .unwrap_or_default()
}

#[tokio::test]
async fn amis_go_with_their_snapshots() {
    let emulator = Emulator::start();
    let (prune, _inbox, aws) = function(&emulator).await;
    let ec2 = aws_sdk_ec2::Client::new(&aws);
    let run = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .expect("instance");
    let instance = run.instances()[0].instance_id().expect("id").to_owned();
    for slot in slots() {
        ec2.create_image()
            .instance_id(&instance)
            .name(format!(
                "lifeboat-nightly-{instance}-{}",
                slot.replace([':', '-'], "")
            ))
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Image)
                    .set_tags(Some(label(&instance, &slot)))
                    .build(),
            )
            .send()
            .await
            .expect("image");
    }
    let images_before = ec2
        .describe_images()
        .owners("self")
        .send()
        .await
        .expect("images")
        .images
        .unwrap_or_default();
    let snapshots_of = |image: &aws_sdk_ec2::types::Image| -> Vec<String> {
        image
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_owned))
            .collect()
    };

    let report = handle(&prune, policy("ami"), Invocation::now())
        .await
        .expect("prune");
    assert_eq!(report.deleted.len(), 49);

    let images = ec2
        .describe_images()
        .owners("self")
        .send()
        .await
        .expect("images")
        .images
        .unwrap_or_default();
    let kept: BTreeSet<String> = images
        .iter()
        .filter_map(|i| {
            i.tags()
                .iter()
                .find(|t| t.key() == Some("lifeboat:scheduled-time"))
                .and_then(|t| t.value())
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(kept, expected_days());
    let remaining: BTreeSet<String> = all_snapshots(&ec2)
        .await
        .into_iter()
        .filter_map(|s| s.snapshot_id)
        .collect();
    let kept_ids: BTreeSet<&str> = images.iter().filter_map(|i| i.image_id()).collect();
    for image in &images_before {
        let alive = kept_ids.contains(image.image_id().unwrap_or_default());
        for snapshot in snapshots_of(image) {
            assert_eq!(
                remaining.contains(&snapshot),
                alive,
                "snapshot {snapshot} of {:?}",
                image.image_id()
            );
        }
    }
}

#[tokio::test]
async fn dumps_go_with_their_manifests_and_drill_records_and_incomplete_ones_stay() {
    let emulator = Emulator::start();
    let (prune, _inbox, aws) = function(&emulator).await;
    let s3 = lifeboat::aws::s3_client(&aws);
    s3.create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("bucket");
    let plan = lifeboat::Plan::new("nightly").expect("plan");
    let put = |key: String| {
        let s3 = s3.clone();
        async move {
            // As pg-dump writes them: Lifeboat's tags on every dump and manifest.
            s3.put_object()
                .bucket(BUCKET)
                .key(key)
                .body(b"x".to_vec().into())
                .tagging("managed-by=lifeboat&lifeboat%3Aplan=nightly")
                .send()
                .await
                .expect("put")
        }
    };
    for slot in slots() {
        let slot = lifeboat::Slot::parse(&slot, Utc::now()).expect("slot");
        let key = lifeboat::rules::naming::dump_key("pg/", "orders", &plan, slot, "dump");
        put(format!("{key}.manifest.json")).await;
        // As restore-drill writes it: untagged, beside the dump.
        let record = match drills().get(slot.to_string().as_str()) {
            Some((at, outcome)) => json!({"drilled_at": at, "outcome": outcome}),
            None => json!({"outcome": "failed"}),
        };
        s3.put_object()
            .bucket(BUCKET)
            .key(format!("{key}.drill.json"))
            .body(record.to_string().into_bytes().into())
            .send()
            .await
            .expect("put");
        put(key).await;
    }
    // An old dump whose run died before its manifest, and an object that is not a dump.
    let old = lifeboat::Slot::parse("2026-01-05T02:00:00Z", Utc::now()).expect("slot");
    let incomplete = lifeboat::rules::naming::dump_key("pg/", "orders", &plan, old, "dump");
    put(incomplete.clone()).await;
    put("pg/README.txt".to_owned()).await;
    // Someone's copy at a Lifeboat-looking key, complete but untagged: never deleted.
    let copied = lifeboat::Slot::parse("2026-02-05T02:00:00Z", Utc::now()).expect("slot");
    let foreign = lifeboat::rules::naming::dump_key("pg/", "orders", &plan, copied, "dump");
    for key in [format!("{foreign}.manifest.json"), foreign.clone()] {
        s3.put_object()
            .bucket(BUCKET)
            .key(key)
            .body(b"x".to_vec().into())
            .send()
            .await
            .expect("put");
    }

    let report = handle(&prune, policy("pg-dump"), Invocation::now())
        .await
        .expect("prune");
    assert_eq!(report.deleted.len(), 48);
    let proven = naming::dump_key(
        "pg/",
        "orders",
        &plan,
        lifeboat::Slot::parse("2026-10-10T02:00:00Z", Utc::now()).expect("slot"),
        "dump",
    );
    assert!(
        report
            .kept
            .iter()
            .any(|k| k.backup == proven && k.reasons == [retention::LAST_PROVEN]),
        "{:?}",
        report.kept
    );

    let keys: BTreeSet<String> = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .expect("list")
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    let dumps: BTreeSet<String> = keys
        .iter()
        .filter(|k| k.ends_with(".dump"))
        .cloned()
        .collect();
    let manifests = keys
        .iter()
        .filter(|k| k.ends_with(".manifest.json"))
        .count();
    assert_eq!(
        dumps.len(),
        12 + 2,
        "the 12 kept dumps (11 by the policy, one proven), the incomplete one and the untagged one"
    );
    assert_eq!(
        manifests, 13,
        "every kept dump keeps its manifest; deleted ones took theirs along"
    );
    let drills = keys.iter().filter(|k| k.ends_with(".drill.json")).count();
    assert_eq!(drills, 12, "and their drill records");
    assert!(
        keys.contains(&incomplete) && keys.contains("pg/README.txt") && keys.contains(&foreign)
    );
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.backup.as_deref() == Some(foreign.as_str())
                && s.reason.contains("not tagged"))
    );
    assert!(
        report
            .kept
            .iter()
            .any(|k| k.backup == incomplete && k.reasons[0].starts_with("incomplete"))
    );
}

#[tokio::test]
async fn max_deletions_stops_the_run_oldest_first_and_alerts() {
    let emulator = Emulator::start();
    let (prune, inbox, aws) = function(&emulator).await;
    let ec2 = aws_sdk_ec2::Client::new(&aws);
    let volume = ec2
        .create_volume()
        .availability_zone("us-east-1a")
        .size(1)
        .send()
        .await
        .expect("volume")
        .volume_id
        .expect("id");
    for slot in slots().iter().take(12) {
        ec2.create_snapshot()
            .volume_id(&volume)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Snapshot)
                    .set_tags(Some(label(&volume, slot)))
                    .build(),
            )
            .send()
            .await
            .expect("snapshot");
    }
    let payload =
        json!({ "plan": "nightly", "kinds": ["ebs"], "keep": { "last": 2 }, "max_deletions": 4 });

    let report = handle(&prune, payload, Invocation::now())
        .await
        .expect("prune");

    let deleted: Vec<String> = report
        .deleted
        .iter()
        .map(|d| d.scheduled_time.to_string())
        .collect();
    assert_eq!(
        deleted,
        [
            "2026-11-09T02:00:00Z",
            "2026-11-10T02:00:00Z",
            "2026-11-11T02:00:00Z",
            "2026-11-12T02:00:00Z"
        ]
    );
    assert_eq!(report.skipped.len(), 6, "the rest is reported");
    let alerts = inbox.drain().await;
    assert_eq!(alerts.len(), 1);
    assert!(
        alerts[0]["Subject"]
            .as_str()
            .is_some_and(|s| s.contains("max_deletions"))
    );
    let left = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            Filter::builder()
                .name("tag:managed-by")
                .values("lifeboat")
                .build(),
        )
        .send()
        .await
        .expect("list")
        .snapshots
        .unwrap_or_default();
    assert_eq!(left.len(), 8);
}

#[test]
fn the_sample_payload_is_valid() {
    let request =
        lifeboat::Request::<prune::fields::PruneFields>::parse(event("prune.json"), Utc::now())
            .expect("events/prune.json");
    assert_eq!(request.fields.max_deletions, 100);
}
