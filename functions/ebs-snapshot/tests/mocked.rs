//! `ebs-snapshot` and the EC2 listing at the SDK level, with aws-smithy-mocks:
//! pagination, throttling, snapshot limits and dry runs, with call counts.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::retry::RetryConfig;
use aws_sdk_ec2::error::ErrorMetadata;
use aws_sdk_ec2::operation::copy_snapshot::CopySnapshotOutput;
use aws_sdk_ec2::operation::create_snapshot::{CreateSnapshotError, CreateSnapshotOutput};
use aws_sdk_ec2::operation::create_snapshots::CreateSnapshotsOutput;
use aws_sdk_ec2::operation::delete_snapshot::DeleteSnapshotOutput;
use aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput;
use aws_sdk_ec2::operation::describe_volumes::DescribeVolumesOutput;
use aws_sdk_ec2::types::{SnapshotState, Volume, VolumeState};
use aws_smithy_mocks::{MockResponse, Rule, RuleMode, mock, mock_client};
use ebs_snapshot::EbsSnapshot;
use lifeboat::alert::MemoryAlerts;
use lifeboat::metrics::MemoryMetrics;
use lifeboat::runtime::{Invocation, Sinks, handle};
use lifeboat::{Error, Report};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn volume(id: &str) -> Volume {
    Volume::builder()
        .volume_id(id)
        .state(VolumeState::InUse)
        .build()
}

/// DescribeVolumes answering `pages`, one page per element, chained by NextToken.
fn volume_pages(pages: &[&[&str]]) -> Vec<Rule> {
    pages
        .iter()
        .enumerate()
        .map(|(i, ids)| {
            let volumes: Vec<Volume> = ids.iter().map(|id| volume(id)).collect();
            let token = (i > 0).then(|| format!("page-{i}"));
            let next = (i + 1 < pages.len()).then(|| format!("page-{}", i + 1));
            mock!(Client::describe_volumes)
                .match_requests(move |r| r.next_token().map(str::to_owned) == token)
                .then_output(move || {
                    DescribeVolumesOutput::builder()
                        .set_volumes(Some(volumes.clone()))
                        .set_next_token(next.clone())
                        .build()
                })
        })
        .collect()
}

fn no_snapshots() -> Rule {
    mock!(Client::describe_snapshots).then_output(|| DescribeSnapshotsOutput::builder().build())
}

fn created_ok() -> Rule {
    mock!(Client::create_snapshot).then_compute_output(|r| {
        CreateSnapshotOutput::builder()
            .snapshot_id(format!("snap-{}", r.volume_id().unwrap_or_default()))
            .volume_id(r.volume_id().unwrap_or_default())
            .state(SnapshotState::Pending)
            .build()
    })
}

fn function(rules: &[&Rule]) -> (EbsSnapshot, Arc<MemoryAlerts>, Arc<MemoryMetrics>) {
    let client = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, rules, |c| c.retry_config(
        RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(1))
    ));
    let alerts = Arc::new(MemoryAlerts::default());
    let metrics = Arc::new(MemoryMetrics::default());
    let sinks = Sinks {
        alerts: alerts.clone(),
        metrics: metrics.clone(),
    };
    (
        EbsSnapshot::new(client, sinks, lifeboat::fanout::FanOut::new(4)),
        alerts,
        metrics,
    )
}

fn payload(extra: serde_json::Value) -> serde_json::Value {
    let mut p = json!({ "plan": "nightly", "scheduled_time": "2026-11-20T02:00:00Z", "select": { "tags": { "backup": "nightly" } } });
    if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
        p.extend(extra.clone());
    }
    p
}

fn sources(report: &Report) -> Vec<&str> {
    report.created.iter().map(|c| c.source.as_str()).collect()
}

#[tokio::test]
async fn volumes_on_every_page_are_snapshotted() {
    let pages = volume_pages(&[&["vol-a", "vol-b"], &["vol-c"], &["vol-d"]]);
    let (snaps, create) = (no_snapshots(), created_ok());
    let rules: Vec<&Rule> = pages.iter().chain([&snaps, &create]).collect();
    let (function, _, _) = function(&rules);

    let report = handle(&function, payload(json!({})), Invocation::now())
        .await
        .expect("run");

    assert_eq!(sources(&report), vec!["vol-a", "vol-b", "vol-c", "vol-d"]);
    assert_eq!(
        pages.iter().map(Rule::num_calls).collect::<Vec<_>>(),
        vec![1, 1, 1]
    );
    assert_eq!(create.num_calls(), 4);
    assert_eq!(
        snaps.num_calls(),
        2,
        "one listing of the slot before, one after creating"
    );
}

#[tokio::test]
async fn throttling_is_retried_until_it_succeeds() {
    let pages = volume_pages(&[&["vol-a"]]);
    let snaps = no_snapshots();
    let create = mock!(Client::create_snapshot)
        .sequence()
        .error(|| {
            CreateSnapshotError::generic(
                ErrorMetadata::builder()
                    .code("RequestLimitExceeded")
                    .message("Request limit exceeded.")
                    .build(),
            )
        })
        .times(2)
        .output(|| {
            CreateSnapshotOutput::builder()
                .snapshot_id("snap-1")
                .volume_id("vol-a")
                .build()
        })
        .build();
    let (function, alerts, _) = function(&[&pages[0], &snaps, &create]);

    let report = handle(&function, payload(json!({})), Invocation::now())
        .await
        .expect("run");

    assert_eq!(sources(&report), vec!["vol-a"]);
    assert_eq!(create.num_calls(), 3);
    assert!(alerts.sent().is_empty());
}

#[tokio::test]
async fn a_snapshot_limit_fails_one_source_and_the_others_go_on() {
    let pages = volume_pages(&[&["vol-a", "vol-b", "vol-c"]]);
    let snaps = no_snapshots();
    let create = mock!(Client::create_snapshot).then_compute_response(|r| {
        if r.volume_id() == Some("vol-b") {
            MockResponse::Error(CreateSnapshotError::generic(
                ErrorMetadata::builder()
                    .code("ConcurrentSnapshotLimitExceeded")
                    .message("Maximum allowed in-progress snapshots for a single volume exceeded.")
                    .build(),
            ))
        } else {
            MockResponse::Output(
                CreateSnapshotOutput::builder()
                    .snapshot_id("snap-x")
                    .volume_id(r.volume_id().unwrap_or_default())
                    .build(),
            )
        }
    });
    let (function, alerts, _) = function(&[&pages[0], &snaps, &create]);

    let Err(Error::RunFailed { report }) =
        handle(&function, payload(json!({})), Invocation::now()).await
    else {
        panic!("a failed source fails the run");
    };

    assert_eq!(sources(&report), vec!["vol-a", "vol-c"]);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].source, "vol-b");
    assert!(
        report.failed[0]
            .error
            .contains("EC2 snapshot limit reached"),
        "{}",
        report.failed[0].error
    );
    assert_eq!(
        create.num_calls(),
        3,
        "a limit is not retried as throttling"
    );
    assert_eq!(alerts.sent().len(), 1);
}

#[tokio::test]
async fn a_dry_run_makes_no_mutating_call() {
    let pages = volume_pages(&[&["vol-a", "vol-b"]]);
    let snaps = no_snapshots();
    let create = created_ok();
    let sets =
        mock!(Client::create_snapshots).then_output(|| CreateSnapshotsOutput::builder().build());
    let copy = mock!(Client::copy_snapshot).then_output(|| CopySnapshotOutput::builder().build());
    let delete =
        mock!(Client::delete_snapshot).then_output(|| DeleteSnapshotOutput::builder().build());
    let (function, alerts, metrics) =
        function(&[&pages[0], &snaps, &create, &sets, &copy, &delete]);

    let report = handle(
        &function,
        payload(json!({ "dry_run": true, "copy_to": [{ "region": "eu-west-1" }] })),
        Invocation::now(),
    )
    .await
    .expect("dry run");

    assert_eq!(sources(&report), vec!["vol-a", "vol-b"]);
    assert_eq!(
        create.num_calls() + sets.num_calls() + copy.num_calls() + delete.num_calls(),
        0
    );
    assert!(alerts.sent().is_empty() && metrics.sent().is_empty());
}

#[tokio::test]
async fn an_invalid_payload_makes_no_call_at_all() {
    let pages = volume_pages(&[&["vol-a"]]);
    let snaps = no_snapshots();
    let (function, _, _) = function(&[&pages[0], &snaps]);

    let err = handle(
        &function,
        payload(json!({ "instances": { "tags": {} } })),
        Invocation::now(),
    )
    .await
    .expect_err("empty selection");

    assert!(
        matches!(&err, Error::InvalidPayload(e) if e.field == "instances"),
        "{err}"
    );
    assert_eq!(pages[0].num_calls() + snaps.num_calls(), 0);
}

/// A snapshot of `volume` in the slot, labelled for `source`, from run `run`,
/// optionally one of an AMI's.
fn labelled(
    id: &str,
    volume: &str,
    source: &str,
    run: &str,
    image: Option<&str>,
) -> aws_sdk_ec2::types::Snapshot {
    let mut tags = vec![
        ("managed-by", "lifeboat"),
        ("lifeboat:plan", "nightly"),
        ("lifeboat:source", source),
        ("lifeboat:scheduled-time", "2026-11-20T02:00:00Z"),
        ("lifeboat:run", run),
    ];
    if let Some(image) = image {
        tags.push(("lifeboat:image", image));
    }
    aws_sdk_ec2::types::Snapshot::builder()
        .snapshot_id(id)
        .volume_id(volume)
        .state(SnapshotState::Completed)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .build()
}

#[tokio::test]
async fn a_race_between_two_sets_keeps_one_whole_set_and_ignores_ami_snapshots() {
    use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
    use aws_sdk_ec2::types::{
        Instance, InstanceState, InstanceStateName, Reservation, SnapshotInfo,
    };
    let instances = mock!(Client::describe_instances).then_output(|| {
        DescribeInstancesOutput::builder()
            .reservations(
                Reservation::builder()
                    .instances(
                        Instance::builder()
                            .instance_id("i-1")
                            .state(
                                InstanceState::builder()
                                    .name(InstanceStateName::Running)
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    // Before: only the slot's AMI snapshot of i-1, which is not an EBS backup.
    // After creating: our set (run "mine"), a racing run's set whose lowest id is lower, and the AMI snapshot.
    let listing = mock!(Client::describe_snapshots)
        .sequence()
        .output(|| {
            DescribeSnapshotsOutput::builder()
                .snapshots(labelled("snap-ami", "vol-1", "i-1", "", Some("ami-1")))
                .build()
        })
        .output(|| {
            DescribeSnapshotsOutput::builder()
                .snapshots(labelled("snap-m1", "vol-1", "i-1", "mine", None))
                .snapshots(labelled("snap-m2", "vol-2", "i-1", "mine", None))
                .snapshots(labelled("snap-0r1", "vol-1", "i-1", "racer", None))
                .snapshots(labelled("snap-r2", "vol-2", "i-1", "racer", None))
                .snapshots(labelled("snap-ami", "vol-1", "i-1", "", Some("ami-1")))
                .build()
        })
        .build();
    let sets = mock!(Client::create_snapshots).then_output(|| {
        CreateSnapshotsOutput::builder()
            .snapshots(
                SnapshotInfo::builder()
                    .snapshot_id("snap-m1")
                    .volume_id("vol-1")
                    .build(),
            )
            .snapshots(
                SnapshotInfo::builder()
                    .snapshot_id("snap-m2")
                    .volume_id("vol-2")
                    .build(),
            )
            .build()
    });
    let delete = mock!(Client::delete_snapshot)
        .match_requests(|r| matches!(r.snapshot_id(), Some("snap-m1" | "snap-m2")))
        .then_output(|| DeleteSnapshotOutput::builder().build());
    let (function, alerts, _) = function(&[&instances, &listing, &sets, &delete]);
    let payload = json!({ "plan": "nightly", "scheduled_time": "2026-11-20T02:00:00Z", "instances": { "ids": ["i-1"] } });

    let report = handle(&function, payload, Invocation::now())
        .await
        .expect("run");

    assert_eq!(
        sets.num_calls(),
        1,
        "an AMI's snapshot does not count as this slot's set"
    );
    assert_eq!(
        delete.num_calls(),
        2,
        "our whole set goes, the racer's whole set stays, the AMI's is untouched"
    );
    assert_eq!(
        report.created[0].backup, "snap-0r1,snap-r2",
        "the report names the set that remains"
    );
    assert!(alerts.sent().is_empty());
}

#[tokio::test]
async fn a_duplicate_that_a_racing_delivery_already_deleted_is_no_failure() {
    let volumes = volume_pages(&[&["vol-a"]]);
    let mine = || labelled("snap-m1", "vol-a", "vol-a", "mine", None);
    let racer = || labelled("snap-0r1", "vol-a", "vol-a", "racer", None);
    let listing = mock!(Client::describe_snapshots)
        .sequence()
        .output(|| DescribeSnapshotsOutput::builder().build())
        .output(move || {
            DescribeSnapshotsOutput::builder()
                .snapshots(mine())
                .snapshots(racer())
                .build()
        })
        .build();
    let create = mock!(Client::create_snapshot).then_output(|| {
        CreateSnapshotOutput::builder()
            .snapshot_id("snap-m1")
            .volume_id("vol-a")
            .build()
    });
    // The racing delivery saw the same two snapshots and deleted ours first.
    let delete = mock!(Client::delete_snapshot).then_error(|| {
        aws_sdk_ec2::operation::delete_snapshot::DeleteSnapshotError::generic(
            ErrorMetadata::builder()
                .code("InvalidSnapshot.NotFound")
                .build(),
        )
    });
    let (function, alerts, _) = function(&[&volumes[0], &listing, &create, &delete]);

    let report = handle(&function, payload(json!({})), Invocation::now())
        .await
        .expect("a duplicate already gone is no failure");

    assert_eq!(delete.num_calls(), 1);
    assert_eq!(report.created[0].backup, "snap-0r1");
    assert!(alerts.sent().is_empty());
}

#[tokio::test]
async fn a_retried_create_that_made_two_snapshots_keeps_one() {
    let volumes = volume_pages(&[&["vol-a"]]);
    // The run's token is made inside the run: the listing echoes what was created.
    let run = Arc::new(std::sync::Mutex::new(String::new()));
    let seen = run.clone();
    let create = mock!(Client::create_snapshot).then_compute_output(move |r| {
        let token = r
            .tag_specifications()
            .iter()
            .flat_map(|s| s.tags())
            .find(|t| t.key() == Some("lifeboat:run"))
            .and_then(|t| t.value())
            .unwrap_or_default()
            .to_owned();
        *seen.lock().expect("lock") = token;
        CreateSnapshotOutput::builder()
            .snapshot_id("snap-2")
            .volume_id("vol-a")
            .build()
    });
    let listing = mock!(Client::describe_snapshots)
        .sequence()
        .output(|| DescribeSnapshotsOutput::builder().build())
        .output(move || {
            let token = run.lock().expect("lock").clone();
            // The first attempt's snapshot (its response lost) and the retry's.
            DescribeSnapshotsOutput::builder()
                .snapshots(labelled("snap-1", "vol-a", "vol-a", &token, None))
                .snapshots(labelled("snap-2", "vol-a", "vol-a", &token, None))
                .build()
        })
        .build();
    let delete = mock!(Client::delete_snapshot)
        .match_requests(|r| r.snapshot_id() == Some("snap-2"))
        .then_output(|| DeleteSnapshotOutput::builder().build());
    let (function, alerts, _) = function(&[&volumes[0], &listing, &create, &delete]);

    let report = handle(&function, payload(json!({})), Invocation::now())
        .await
        .expect("run");

    assert_eq!(delete.num_calls(), 1, "the second snapshot of vol-a goes");
    assert_eq!(report.created[0].backup, "snap-1");
    assert!(alerts.sent().is_empty());
}

#[tokio::test]
async fn a_failed_look_after_creating_fails_those_sources_not_the_whole_run() {
    use aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsError;
    let pages = volume_pages(&[&["vol-a", "vol-b"]]);
    // The first listing answers; the look for duplicates after creating fails
    // (AccessDenied is not retried).
    let listing = mock!(Client::describe_snapshots)
        .sequence()
        .output(|| DescribeSnapshotsOutput::builder().build())
        .error(|| {
            DescribeSnapshotsError::generic(
                ErrorMetadata::builder()
                    .code("UnauthorizedOperation")
                    .message("You are not authorized to perform this operation.")
                    .build(),
            )
        })
        .build();
    let create = created_ok();
    let rules: Vec<&Rule> = pages.iter().chain([&listing, &create]).collect();
    let (function, alerts, _) = function(&rules);

    let outcome = handle(&function, payload(json!({})), Invocation::now()).await;

    let Err(Error::RunFailed { report }) = outcome else {
        panic!("the run fails with its report: {outcome:?}")
    };
    assert_eq!(create.num_calls(), 2);
    assert_eq!(report.created.len(), 2, "the snapshots made are reported");
    assert_eq!(report.failed.len(), 2, "{:?}", report.failed);
    assert!(report.failed.iter().all(|f| f.error.contains("made, but")));
    let sent = alerts.sent();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].body.contains("Created: 2") && !sent[0].body.contains("before backing anything up"),
        "{}",
        sent[0].body
    );
}
