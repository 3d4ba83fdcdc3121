//! `ami-backup` at the SDK level: dry runs make no mutating call, and the
//! snapshots of an earlier image that were not tagged yet are tagged later.

use ami_backup::AmiBackup;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::operation::create_image::CreateImageOutput;
use aws_sdk_ec2::operation::create_tags::CreateTagsOutput;
use aws_sdk_ec2::operation::describe_images::DescribeImagesOutput;
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput;
use aws_sdk_ec2::types::{Instance, InstanceState, InstanceStateName, Reservation, ResourceType};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use lifeboat::alert::MemoryAlerts;
use lifeboat::metrics::MemoryMetrics;
use lifeboat::runtime::{Invocation, Sinks, handle};
use serde_json::json;
use std::sync::Arc;

fn instances(ids: &'static [&'static str]) -> Rule {
    mock!(Client::describe_instances).then_output(move || {
        let instances = ids.iter().map(|id| {
            Instance::builder()
                .instance_id(*id)
                .state(
                    InstanceState::builder()
                        .name(InstanceStateName::Running)
                        .build(),
                )
                .build()
        });
        DescribeInstancesOutput::builder()
            .reservations(
                Reservation::builder()
                    .set_instances(Some(instances.collect()))
                    .build(),
            )
            .build()
    })
}

fn function(rules: &[&Rule]) -> AmiBackup {
    let client = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, rules);
    let sinks = Sinks {
        alerts: Arc::new(MemoryAlerts::default()),
        metrics: Arc::new(MemoryMetrics::default()),
    };
    AmiBackup::new(client, sinks, lifeboat::fanout::FanOut::new(4))
}

fn payload(extra: serde_json::Value) -> serde_json::Value {
    let mut p = json!({ "plan": "weekly", "scheduled_time": "2026-11-22T03:00:00Z", "select": { "tags": { "ami": "weekly" } } });
    if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
        p.extend(extra.clone());
    }
    p
}

#[tokio::test]
async fn a_dry_run_makes_no_mutating_call() {
    let list = instances(&["i-a", "i-b"]);
    let images =
        mock!(Client::describe_images).then_output(|| DescribeImagesOutput::builder().build());
    let create = mock!(Client::create_image)
        .then_output(|| CreateImageOutput::builder().image_id("ami-1").build());
    let tag = mock!(Client::create_tags).then_output(|| CreateTagsOutput::builder().build());
    let function = function(&[&list, &images, &create, &tag]);

    let report = handle(
        &function,
        payload(json!({ "dry_run": true })),
        Invocation::now(),
    )
    .await
    .expect("dry run");

    let names: Vec<&str> = report.created.iter().map(|c| c.backup.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "lifeboat-weekly-i-a-202611220300",
            "lifeboat-weekly-i-b-202611220300"
        ]
    );
    assert_eq!(create.num_calls() + tag.num_calls(), 0);
}

#[tokio::test]
async fn create_image_tags_the_image_and_its_snapshots_and_nothing_is_tagged_afterwards() {
    let list = instances(&["i-a"]);
    let images =
        mock!(Client::describe_images).then_output(|| DescribeImagesOutput::builder().build());
    let snapshots = mock!(Client::describe_snapshots)
        .then_output(|| DescribeSnapshotsOutput::builder().build());
    let name = "lifeboat-weekly-i-a-202611220300";
    let create = mock!(Client::create_image)
        .match_requests(move |r| {
            let spec = |kind: ResourceType| {
                r.tag_specifications()
                    .iter()
                    .find(|s| s.resource_type() == Some(&kind))
                    .map(|s| {
                        s.tags()
                            .iter()
                            .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            };
            let (image, snapshot) = (spec(ResourceType::Image), spec(ResourceType::Snapshot));
            let label = [
                ("managed-by", "lifeboat"),
                ("lifeboat:plan", "weekly"),
                ("lifeboat:source", "i-a"),
                ("lifeboat:scheduled-time", "2026-11-22T03:00:00Z"),
            ];
            label
                .iter()
                .all(|t| image.contains(t) && snapshot.contains(t))
                && snapshot.contains(&("lifeboat:image", name))
                && image.contains(&("Name", name))
        })
        .then_output(|| CreateImageOutput::builder().image_id("ami-new").build());
    let tag = mock!(Client::create_tags).then_output(|| CreateTagsOutput::builder().build());
    let function = function(&[&list, &images, &snapshots, &create, &tag]);

    let report = handle(&function, payload(json!({})), Invocation::now())
        .await
        .expect("run");

    assert_eq!(report.created.len(), 1, "{report:?}");
    assert_eq!(
        create.num_calls(),
        1,
        "one CreateImage with both tag specifications"
    );
    assert_eq!(
        tag.num_calls(),
        0,
        "no CreateTags: the role may tag only within CreateImage"
    );
}
