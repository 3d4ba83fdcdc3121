//! `prune` at the SDK level: a listing across pages, a deletion failing
//! half-way, and a dry run that makes no mutating call.

use aws_sdk_ec2::operation::delete_snapshot::{DeleteSnapshotError, DeleteSnapshotOutput};
use aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput;
use aws_sdk_ec2::types::{Snapshot, SnapshotState, Tag};
use aws_smithy_mocks::{MockResponse, Rule, RuleMode, mock, mock_client};
use lifeboat::Error;
use lifeboat::alert::MemoryAlerts;
use lifeboat::aws::catalog::Catalog;
use lifeboat::metrics::MemoryMetrics;
use lifeboat::runtime::{Invocation, Sinks, handle};
use prune::Prune;
use serde_json::json;
use std::sync::Arc;

/// A managed snapshot of `vol-a` for day `day` of November 2026.
fn snapshot(day: u32) -> Snapshot {
    let tags = [
        ("managed-by", "lifeboat".to_owned()),
        ("lifeboat:plan", "nightly".to_owned()),
        ("lifeboat:source", "vol-a".to_owned()),
        (
            "lifeboat:scheduled-time",
            format!("2026-11-{day:02}T02:00:00Z"),
        ),
    ];
    Snapshot::builder()
        .snapshot_id(format!("snap-{day:02}"))
        .volume_id("vol-a")
        .state(SnapshotState::Completed)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(*k).value(v).build())
                .collect(),
        ))
        .build()
}

/// DescribeSnapshots answering days 1–12 on three pages of four.
fn pages() -> Vec<Rule> {
    (0..3)
        .map(|page| {
            let token = (page > 0).then(|| format!("page-{page}"));
            let next = (page < 2).then(|| format!("page-{}", page + 1));
            mock!(aws_sdk_ec2::Client::describe_snapshots)
                .match_requests(move |r| r.next_token().map(str::to_owned) == token)
                .then_output(move || {
                    DescribeSnapshotsOutput::builder()
                        .set_snapshots(Some((1..=4).map(|i| snapshot(page * 4 + i)).collect()))
                        .set_next_token(next.clone())
                        .build()
                })
        })
        .collect()
}

fn prune(ec2_rules: &[&Rule]) -> (Prune, Arc<MemoryAlerts>) {
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, ec2_rules);
    let rds = mock_client!(aws_sdk_rds, RuleMode::MatchAny, &[] as &[&Rule]);
    let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &[] as &[&Rule]);
    let alerts = Arc::new(MemoryAlerts::default());
    let sinks = Sinks {
        alerts: alerts.clone(),
        metrics: Arc::new(MemoryMetrics::default()),
    };
    (
        Prune::new(
            Catalog::new(rds, ec2, s3, None),
            sinks,
            lifeboat::fanout::FanOut::DEFAULT,
        ),
        alerts,
    )
}

fn payload(dry_run: bool) -> serde_json::Value {
    json!({ "plan": "nightly", "kinds": ["ebs"], "keep": { "last": 5 }, "dry_run": dry_run })
}

#[tokio::test]
async fn every_page_is_planned_and_a_dry_run_deletes_nothing() {
    let pages = pages();
    let delete = mock!(aws_sdk_ec2::Client::delete_snapshot)
        .then_output(|| DeleteSnapshotOutput::builder().build());
    let deregister = mock!(aws_sdk_ec2::Client::deregister_image).then_output(|| {
        aws_sdk_ec2::operation::deregister_image::DeregisterImageOutput::builder().build()
    });
    let rules: Vec<&Rule> = pages.iter().chain([&delete, &deregister]).collect();
    let (prune, alerts) = prune(&rules);

    let report = handle(&prune, payload(true), Invocation::now())
        .await
        .expect("dry run");

    assert_eq!(
        pages.iter().map(Rule::num_calls).collect::<Vec<_>>(),
        [1, 1, 1],
        "one listing, three pages"
    );
    let doomed: Vec<&str> = report.deleted.iter().map(|d| d.backup.as_str()).collect();
    assert_eq!(
        doomed,
        [
            "snap-01", "snap-02", "snap-03", "snap-04", "snap-05", "snap-06", "snap-07"
        ]
    );
    assert_eq!(report.kept.len(), 5);
    assert_eq!(
        delete.num_calls() + deregister.num_calls(),
        0,
        "a dry run makes no mutating call"
    );
    assert!(alerts.sent().is_empty());
}

#[tokio::test]
async fn a_deletion_failing_half_way_is_reported_and_the_rest_goes_on() {
    let pages = pages();
    let delete = mock!(aws_sdk_ec2::Client::delete_snapshot).then_compute_response(|r| {
        if r.snapshot_id() == Some("snap-04") {
            MockResponse::Error(DeleteSnapshotError::generic(
                aws_sdk_ec2::error::ErrorMetadata::builder()
                    .code("UnauthorizedOperation")
                    .message("not allowed")
                    .build(),
            ))
        } else {
            MockResponse::Output(DeleteSnapshotOutput::builder().build())
        }
    });
    let rules: Vec<&Rule> = pages.iter().chain([&delete]).collect();
    let (prune, alerts) = prune(&rules);

    let Err(Error::RunFailed { report }) = handle(&prune, payload(false), Invocation::now()).await
    else {
        panic!("a failed deletion fails the run");
    };

    assert_eq!(delete.num_calls(), 7, "every planned deletion was tried");
    assert_eq!(report.deleted.len(), 6);
    assert_eq!(report.failed.len(), 1);
    assert!(
        report.failed[0].error.contains("snap-04")
            && report.failed[0].error.contains("UnauthorizedOperation")
    );
    assert!(
        !report.deleted.iter().any(|d| d.backup == "snap-04"),
        "the report says only what is really gone"
    );
    assert_eq!(alerts.sent().len(), 1);
}

/// DeleteSnapshot of `snap-04` fails every time, the others succeed.
fn delete_failing_on_day_4() -> Rule {
    mock!(aws_sdk_ec2::Client::delete_snapshot).then_compute_response(|r| {
        if r.snapshot_id() == Some("snap-04") {
            MockResponse::Error(DeleteSnapshotError::generic(
                aws_sdk_ec2::error::ErrorMetadata::builder()
                    .code("ServiceUnavailable")
                    .message("the response was lost")
                    .build(),
            ))
        } else {
            MockResponse::Output(DeleteSnapshotOutput::builder().build())
        }
    })
}

/// Whether a DescribeSnapshots request is the look at one snapshot by id.
fn looks_by_id(r: &aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsInput) -> bool {
    r.filters().iter().any(|f| f.name() == Some("snapshot-id"))
}

#[tokio::test]
async fn a_failed_delete_that_had_done_its_work_is_reported_deleted() {
    let look = mock!(aws_sdk_ec2::Client::describe_snapshots)
        .match_requests(looks_by_id)
        .then_output(|| DescribeSnapshotsOutput::builder().build());
    let pages = pages();
    let delete = delete_failing_on_day_4();
    let rules: Vec<&Rule> = [&look]
        .into_iter()
        .chain(pages.iter())
        .chain([&delete])
        .collect();
    let (prune, alerts) = prune(&rules);

    let report = handle(&prune, payload(false), Invocation::now())
        .await
        .expect("nothing failed: snap-04 is gone");

    assert_eq!(look.num_calls(), 1, "one look, at the failed deletion only");
    assert_eq!(report.deleted.len(), 7);
    assert!(report.deleted.iter().any(|d| d.backup == "snap-04"));
    assert!(alerts.sent().is_empty());
}

#[tokio::test]
async fn a_failed_delete_whose_look_fails_too_says_it_could_not_check() {
    let look = mock!(aws_sdk_ec2::Client::describe_snapshots)
        .match_requests(looks_by_id)
        .then_error(|| {
            aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsError::generic(
                aws_sdk_ec2::error::ErrorMetadata::builder()
                    .code("UnauthorizedOperation")
                    .build(),
            )
        });
    let pages = pages();
    let delete = delete_failing_on_day_4();
    let rules: Vec<&Rule> = [&look]
        .into_iter()
        .chain(pages.iter())
        .chain([&delete])
        .collect();
    let (prune, alerts) = prune(&rules);

    let Err(Error::RunFailed { report }) = handle(&prune, payload(false), Invocation::now()).await
    else {
        panic!("an unverified failed deletion fails the run");
    };

    assert_eq!(report.deleted.len(), 6);
    assert!(
        report.failed[0]
            .error
            .ends_with(lifeboat::aws::catalog::UNCHECKED),
        "{}",
        report.failed[0].error
    );
    assert_eq!(alerts.sent().len(), 1);
}
