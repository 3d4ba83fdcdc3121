//! `ebs-snapshot` and `ami-backup` against the emulator, through the handlers,
//! with the payloads in `events/`.

use ami_backup::AmiBackup;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, Filter, ResourceType, Tag, TagSpecification,
};
use ebs_snapshot::EbsSnapshot;
use lifeboat::Error;
use lifeboat::runtime::{Invocation, handle};
use lifeboat_tests::recorded::Recorded;
use lifeboat_tests::{AlertInbox, Emulator, event, managed_snapshots};
use std::collections::BTreeMap;

const REGION: &str = "us-east-1";

fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect()
}

fn spec(resource: ResourceType, pairs: &[(&str, &str)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(tags(pairs)))
        .build()
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Four volumes (three tagged `backup=nightly`, one of them named) and two
/// instances with two volumes each, tagged for snapshot sets and AMIs.
/// Returns the tagged volume ids and the instance ids.
async fn seed(ec2: &Client) -> (Vec<String>, Vec<String>) {
    let mut tagged = Vec::new();
    for (i, pairs) in [
        &[("backup", "nightly"), ("Name", "orders-data")][..],
        &[("backup", "nightly")][..],
        &[("backup", "nightly")][..],
        &[("team", "lab")][..],
    ]
    .into_iter()
    .enumerate()
    {
        let volume = ec2
            .create_volume()
            .availability_zone("us-east-1a")
            .size(1 + i as i32)
            .tag_specifications(spec(ResourceType::Volume, pairs))
            .send()
            .await
            .expect("create volume");
        if pairs.contains(&("backup", "nightly")) {
            tagged.push(volume.volume_id.expect("volume id"));
        }
    }
    let run = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .min_count(2)
        .max_count(2)
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/sdf")
                .ebs(EbsBlockDevice::builder().volume_size(5).build())
                .build(),
        )
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/sdg")
                .ebs(EbsBlockDevice::builder().volume_size(6).build())
                .build(),
        )
        .tag_specifications(spec(
            ResourceType::Instance,
            &[("backup-set", "nightly"), ("ami", "weekly")],
        ))
        .send()
        .await
        .expect("run instances");
    let instances = run
        .instances()
        .iter()
        .map(|i| i.instance_id().unwrap_or_default().to_owned())
        .collect();
    (tagged, instances)
}

#[tokio::test]
async fn volume_snapshots_are_made_once_per_slot_with_their_tags() {
    let emulator = Emulator::start();
    let aws = emulator.sdk_config(REGION).await;
    let ec2 = Client::new(&aws);
    let (tagged, _) = seed(&ec2).await;
    let inbox = AlertInbox::create(&aws).await;
    let function = EbsSnapshot::new(
        ec2.clone().recorded("ebs-snapshot"),
        inbox.sinks("ebs-snapshot", &aws),
        lifeboat::fanout::FanOut::new(4),
    );

    let first = handle(&function, event("ebs-snapshot.json"), Invocation::now())
        .await
        .expect("first run");
    let second = handle(&function, event("ebs-snapshot.json"), Invocation::now())
        .await
        .expect("second run");

    let mut sources: Vec<&str> = first.created.iter().map(|c| c.source.as_str()).collect();
    sources.sort();
    let mut expected: Vec<&str> = tagged.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(sources, expected, "one snapshot per tagged volume");
    assert!(second.created.is_empty(), "{:?}", second.created);
    assert_eq!(second.skipped.len(), 3);

    let snapshots = managed_snapshots(&ec2).await;
    assert_eq!(
        snapshots.len(),
        3,
        "no duplicates, untagged volume untouched"
    );
    for s in &snapshots {
        let t = tag_map(s.tags());
        let volume = s.volume_id().expect("volume");
        assert!(tagged.iter().any(|v| v == volume));
        assert_eq!(t["lifeboat:source"], volume);
        assert_eq!(t["lifeboat:plan"], "nightly");
        assert_eq!(t["lifeboat:scheduled-time"], "2026-11-20T02:00:00Z");
        assert!(
            s.description()
                .is_some_and(|d| d.contains(volume) && d.contains("nightly"))
        );
        if volume == tagged[0] {
            assert_eq!(
                t.get("Name").map(String::as_str),
                Some("orders-data"),
                "the volume's Name is kept"
            );
        }
    }
    assert!(inbox.drain().await.is_empty());
}

#[tokio::test]
async fn instance_sets_cover_every_volume_once_per_slot() {
    let emulator = Emulator::start();
    let aws = emulator.sdk_config(REGION).await;
    let ec2 = Client::new(&aws);
    let (_, instances) = seed(&ec2).await;
    let inbox = AlertInbox::create(&aws).await;
    let function = EbsSnapshot::new(
        ec2.clone().recorded("ebs-snapshot"),
        inbox.sinks("ebs-snapshot", &aws),
        lifeboat::fanout::FanOut::new(4),
    );

    let first = handle(
        &function,
        event("ebs-snapshot-instances.json"),
        Invocation::now(),
    )
    .await
    .expect("first run");
    let second = handle(
        &function,
        event("ebs-snapshot-instances.json"),
        Invocation::now(),
    )
    .await
    .expect("second run");

    assert_eq!(
        first.created.len(),
        2,
        "one set per instance: {:?}",
        first.created
    );
    assert!(second.created.is_empty());
    let snapshots = managed_snapshots(&ec2).await;
    for instance in &instances {
        let attached = ec2
            .describe_volumes()
            .filters(
                Filter::builder()
                    .name("attachment.instance-id")
                    .values(instance)
                    .build(),
            )
            .send()
            .await
            .expect("volumes")
            .volumes
            .unwrap_or_default();
        let mut covered: Vec<&str> = snapshots
            .iter()
            .filter(|s| tag_map(s.tags()).get("lifeboat:source") == Some(instance))
            .filter_map(|s| s.volume_id())
            .collect();
        covered.sort();
        let mut expected: Vec<&str> = attached.iter().filter_map(|v| v.volume_id()).collect();
        expected.sort();
        assert!(
            expected.len() >= 2,
            "each instance has two volumes or more: {expected:?}"
        );
        assert_eq!(covered, expected, "every volume of {instance} once");
    }
}

#[tokio::test]
async fn images_are_made_once_per_slot_with_their_snapshots_tagged() {
    let emulator = Emulator::start();
    let aws = emulator.sdk_config(REGION).await;
    let ec2 = Client::new(&aws);
    let (_, instances) = seed(&ec2).await;
    // A stopped instance is imaged as well.
    ec2.stop_instances()
        .instance_ids(&instances[1])
        .send()
        .await
        .expect("stop");
    let inbox = AlertInbox::create(&aws).await;
    let function = AmiBackup::new(
        ec2.clone().recorded("ami-backup"),
        inbox.sinks("ami-backup", &aws),
        lifeboat::fanout::FanOut::new(4),
    );

    let first = handle(&function, event("ami-backup.json"), Invocation::now())
        .await
        .expect("first run");
    let second = handle(&function, event("ami-backup.json"), Invocation::now())
        .await
        .expect("second run");

    assert_eq!(first.created.len(), 2);
    assert!(second.created.is_empty());
    assert_eq!(second.skipped.len(), 2);
    let images = ec2
        .describe_images()
        .owners("self")
        .send()
        .await
        .expect("images")
        .images
        .unwrap_or_default();
    assert_eq!(images.len(), 2, "no duplicate images");
    for image in &images {
        let t = tag_map(image.tags());
        let source = &t["lifeboat:source"];
        assert!(instances.contains(source));
        assert_eq!(
            image.name(),
            Some(
                lifeboat::rules::naming::image_name(
                    &lifeboat::Plan::new("weekly").expect("plan"),
                    source,
                    lifeboat::Slot::parse("2026-11-22T03:00:00Z", chrono_now()).expect("slot")
                )
                .as_str()
            )
        );
        assert_eq!(t["managed-by"], "lifeboat");
        let snapshot_ids: Vec<&str> = image
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()))
            .collect();
        assert!(!snapshot_ids.is_empty());
        let snapshots = ec2
            .describe_snapshots()
            .set_snapshot_ids(Some(snapshot_ids.iter().map(|s| (*s).to_owned()).collect()))
            .send()
            .await
            .expect("image snapshots")
            .snapshots
            .unwrap_or_default();
        for s in snapshots {
            let st = tag_map(s.tags());
            assert_eq!(
                st.get("managed-by").map(String::as_str),
                Some("lifeboat"),
                "{:?}",
                s.snapshot_id()
            );
            // Tagged by CreateImage itself, before the image had an id: by its name.
            assert_eq!(st.get("lifeboat:image").map(String::as_str), image.name());
            assert_eq!(st.get("lifeboat:source"), Some(source));
        }
    }
}

#[tokio::test]
async fn a_missing_volume_fails_alone_and_alerts_once() {
    let emulator = Emulator::start();
    let aws = emulator.sdk_config(REGION).await;
    let ec2 = Client::new(&aws);
    let (tagged, _) = seed(&ec2).await;
    let inbox = AlertInbox::create(&aws).await;
    let function = EbsSnapshot::new(
        ec2.clone().recorded("ebs-snapshot"),
        inbox.sinks("ebs-snapshot", &aws),
        lifeboat::fanout::FanOut::new(4),
    );
    let payload = serde_json::json!({ "plan": "adhoc", "select": { "ids": [tagged[0], "vol-0123456789abcdef0"] } });

    let Err(Error::RunFailed { report }) = handle(&function, payload, Invocation::now()).await
    else {
        panic!("a missing volume fails the run");
    };
    assert_eq!(report.created.len(), 1);
    assert_eq!(report.failed[0].source, "vol-0123456789abcdef0");
    let alerts = inbox.drain().await;
    assert_eq!(alerts.len(), 1);
    assert!(
        alerts[0]["Message"]
            .as_str()
            .is_some_and(|m| m.contains("vol-0123456789abcdef0"))
    );
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

#[tokio::test]
async fn completed_snapshots_are_copied_to_other_regions_once() {
    let emulator = Emulator::start();
    let aws = emulator.sdk_config(REGION).await;
    let ec2 = Client::new(&aws);
    let (tagged, _) = seed(&ec2).await;
    let inbox = AlertInbox::create(&aws).await;
    let function = EbsSnapshot::new(
        ec2.clone().recorded("ebs-snapshot"),
        inbox.sinks("ebs-snapshot", &aws),
        lifeboat::fanout::FanOut::new(4),
    );
    let payload = serde_json::json!({
        "plan": "nightly",
        "scheduled_time": "2026-11-20T02:00:00Z",
        "select": { "ids": [tagged[0]] },
        "copy_to": [{ "region": "eu-west-1" }]
    });

    let first = handle(&function, payload.clone(), Invocation::now())
        .await
        .expect("first run");
    let again = handle(&function, payload, Invocation::now())
        .await
        .expect("second run");

    let copies: Vec<&str> = first
        .created
        .iter()
        .filter(|c| c.region == "eu-west-1")
        .filter_map(|c| c.copy_of.as_deref())
        .collect();
    assert_eq!(copies.len(), 1, "{:?}", first.created);
    assert!(
        again.created.is_empty(),
        "nothing copied twice: {:?}",
        again.created
    );
    let eu = Client::new(&emulator.sdk_config("eu-west-1").await);
    let there = managed_snapshots(&eu).await;
    assert_eq!(there.len(), 1);
    let t = tag_map(there[0].tags());
    assert_eq!(t["lifeboat:source"], tagged[0]);
    assert_eq!(t["lifeboat:copy-of"], copies[0]);
    assert_eq!(t.get("Name").map(String::as_str), Some("orders-data"));
}
