//! `rds-snapshot` at the SDK level, with aws-smithy-mocks: what the emulator
//! cannot show (pagination, throttling, quotas, snapshots still `creating`)
//! and proof of how many calls were made.

use aws_sdk_rds::Client;
use aws_sdk_rds::config::retry::RetryConfig;
use aws_sdk_rds::error::ErrorMetadata;
use aws_sdk_rds::operation::copy_db_snapshot::CopyDbSnapshotOutput;
use aws_sdk_rds::operation::create_db_snapshot::{CreateDBSnapshotError, CreateDbSnapshotOutput};
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
use aws_sdk_rds::types::error::SnapshotQuotaExceededFault;
use aws_sdk_rds::types::{DbInstance, DbSnapshot, Tag};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use lifeboat::alert::MemoryAlerts;
use lifeboat::metrics::MemoryMetrics;
use lifeboat::runtime::{Invocation, Sinks, handle};
use lifeboat::{Error, Report};
use rds_snapshot::RdsSnapshot;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn instance(id: &str) -> DbInstance {
    DbInstance::builder()
        .db_instance_identifier(id)
        .db_instance_status("available")
        .tag_list(Tag::builder().key("backup").value("nightly").build())
        .build()
}

/// DescribeDBInstances answering `ids`, one page per element.
fn instance_pages(pages: &[&[&str]]) -> Vec<Rule> {
    pages
        .iter()
        .enumerate()
        .map(|(i, ids)| {
            let ids: Vec<DbInstance> = ids.iter().map(|id| instance(id)).collect();
            let marker = (i > 0).then(|| format!("page-{i}"));
            let next = (i + 1 < pages.len()).then(|| format!("page-{}", i + 1));
            mock!(Client::describe_db_instances)
                .match_requests(move |r| r.marker().map(str::to_owned) == marker)
                .then_output(move || {
                    DescribeDbInstancesOutput::builder()
                        .set_db_instances(Some(ids.clone()))
                        .set_marker(next.clone())
                        .build()
                })
        })
        .collect()
}

/// db-a's snapshot of yesterday's slot, available: one a copy can be made of.
fn yesterdays_snapshot() -> DbSnapshot {
    DbSnapshot::builder()
        .db_snapshot_identifier("lb-nightly-202611190200-db-a")
        .db_snapshot_arn("arn:aws:rds:us-east-1:123456789012:snapshot:lb-nightly-202611190200-db-a")
        .status("available")
        .tag_list(Tag::builder().key("managed-by").value("lifeboat").build())
        .tag_list(Tag::builder().key("lifeboat:plan").value("nightly").build())
        .tag_list(Tag::builder().key("lifeboat:source").value("db-a").build())
        .tag_list(
            Tag::builder()
                .key("lifeboat:scheduled-time")
                .value("2026-11-19T02:00:00Z")
                .build(),
        )
        .build()
}

fn no_snapshots() -> Rule {
    mock!(Client::describe_db_snapshots)
        .then_output(|| DescribeDbSnapshotsOutput::builder().build())
}

fn created_ok() -> Rule {
    mock!(Client::create_db_snapshot).then_compute_output(|r| {
        CreateDbSnapshotOutput::builder()
            .db_snapshot(
                DbSnapshot::builder()
                    .db_snapshot_identifier(r.db_snapshot_identifier().unwrap_or_default())
                    .db_snapshot_arn(format!(
                        "arn:aws:rds:us-east-1:123456789012:snapshot:{}",
                        r.db_snapshot_identifier().unwrap_or_default()
                    ))
                    .status("creating")
                    .build(),
            )
            .build()
    })
}

/// The function over a client that answers only from `rules` (retrying quickly), with sinks in memory.
fn function(rules: &[&Rule]) -> (RdsSnapshot, Arc<MemoryAlerts>, Arc<MemoryMetrics>) {
    let client = mock_client!(aws_sdk_rds, RuleMode::MatchAny, rules, |c| c.retry_config(
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
        RdsSnapshot::new(client, sinks, lifeboat::fanout::FanOut::new(4)),
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
async fn sources_on_every_page_of_the_listing_are_backed_up() {
    let pages = instance_pages(&[&["db-a", "db-b"], &["db-c"], &["db-d", "db-e"]]);
    let (list, snaps, create) = (&pages, no_snapshots(), created_ok());
    let rules: Vec<&Rule> = list.iter().chain([&snaps, &create]).collect();
    let (function, alerts, _) = function(&rules);

    let report = handle(&function, payload(json!({})), Invocation::now())
        .await
        .expect("run");

    assert_eq!(
        sources(&report),
        vec!["db-a", "db-b", "db-c", "db-d", "db-e"]
    );
    assert_eq!(
        list.iter().map(Rule::num_calls).collect::<Vec<_>>(),
        vec![1, 1, 1],
        "each page read once"
    );
    assert_eq!(create.num_calls(), 5);
    assert!(alerts.sent().is_empty());
}

#[tokio::test]
async fn throttling_is_retried_until_it_succeeds() {
    let pages = instance_pages(&[&["db-a"]]);
    let snaps = no_snapshots();
    let create = mock!(Client::create_db_snapshot)
        .sequence()
        .error(|| {
            CreateDBSnapshotError::generic(
                ErrorMetadata::builder()
                    .code("Throttling")
                    .message("Rate exceeded")
                    .build(),
            )
        })
        .times(2)
        .output(|| {
            CreateDbSnapshotOutput::builder()
                .db_snapshot(DbSnapshot::builder().status("creating").build())
                .build()
        })
        .build();
    let (function, alerts, _) = function(&[&pages[0], &snaps, &create]);

    let report = handle(&function, payload(json!({})), Invocation::now())
        .await
        .expect("run");

    assert_eq!(sources(&report), vec!["db-a"]);
    assert_eq!(
        create.num_calls(),
        3,
        "two throttled attempts, then success"
    );
    assert!(alerts.sent().is_empty());
}

#[tokio::test]
async fn a_dry_run_makes_no_mutating_call_and_reports_the_plan() {
    let pages = instance_pages(&[&["db-a", "db-b"]]);
    let snaps = no_snapshots();
    let create = created_ok();
    let copy =
        mock!(Client::copy_db_snapshot).then_output(|| CopyDbSnapshotOutput::builder().build());
    let (function, alerts, metrics) = function(&[&pages[0], &snaps, &create, &copy]);

    let report = handle(
        &function,
        payload(json!({ "dry_run": true, "copy_to": [{ "region": "eu-west-1" }] })),
        Invocation::now(),
    )
    .await
    .expect("dry run");

    assert!(report.dry_run);
    assert_eq!(sources(&report), vec!["db-a", "db-b"]);
    assert_eq!(create.num_calls(), 0);
    assert_eq!(copy.num_calls(), 0);
    assert!(
        alerts.sent().is_empty() && metrics.sent().is_empty(),
        "a dry run publishes nothing"
    );
}

#[tokio::test]
async fn a_full_snapshot_quota_fails_that_source_with_a_clear_message() {
    let pages = instance_pages(&[&["db-a", "db-b"]]);
    let snaps = no_snapshots();
    let create = mock!(Client::create_db_snapshot).then_compute_response(|r| {
        if r.db_instance_identifier() == Some("db-b") {
            aws_smithy_mocks::MockResponse::Error(
                CreateDBSnapshotError::SnapshotQuotaExceededFault(
                    SnapshotQuotaExceededFault::builder()
                        .message("Cannot create more than 100 manual snapshots")
                        .meta(
                            ErrorMetadata::builder()
                                .code("SnapshotQuotaExceeded")
                                .build(),
                        )
                        .build(),
                ),
            )
        } else {
            aws_smithy_mocks::MockResponse::Output(
                CreateDbSnapshotOutput::builder()
                    .db_snapshot(DbSnapshot::builder().status("creating").build())
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

    assert_eq!(
        sources(&report),
        vec!["db-a"],
        "the other source is still backed up"
    );
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].source, "db-b");
    assert!(
        report.failed[0].error.contains("quota exceeded"),
        "{}",
        report.failed[0].error
    );
    let sent = alerts.sent();
    assert_eq!(sent.len(), 1, "one alert");
    assert!(
        sent[0].body.contains("db-b") && sent[0].body.contains("quota"),
        "{}",
        sent[0].body
    );
}

#[tokio::test]
async fn a_snapshot_still_creating_is_left_for_a_later_run_to_copy() {
    let pages = instance_pages(&[&["db-a"]]);
    let snaps = no_snapshots();
    let create = created_ok();
    let copy =
        mock!(Client::copy_db_snapshot).then_output(|| CopyDbSnapshotOutput::builder().build());
    let (function, alerts, _) = function(&[&pages[0], &snaps, &create, &copy]);

    let report = handle(
        &function,
        payload(json!({ "copy_to": [{ "region": "eu-west-1", "kms_key_id": "alias/backups" }] })),
        Invocation::now(),
    )
    .await
    .expect("run");

    assert_eq!(
        copy.num_calls(),
        0,
        "a creating snapshot cannot be copied yet"
    );
    assert_eq!(sources(&report), vec!["db-a"]);
    let waiting: Vec<&str> = report.skipped.iter().map(|s| s.reason.as_str()).collect();
    assert_eq!(waiting.len(), 1);
    assert!(
        waiting[0].contains("copy to eu-west-1 waits") && waiting[0].contains("`creating`"),
        "{}",
        waiting[0]
    );
    assert!(
        alerts.sent().is_empty(),
        "waiting for a copy is not a failure"
    );
}

#[tokio::test]
async fn an_available_snapshot_from_an_earlier_run_is_copied_now() {
    let pages = instance_pages(&[&["db-a"]]);
    let earlier = yesterdays_snapshot();
    // The home region lists yesterday's snapshot; the destination lists nothing.
    let home = mock!(Client::describe_db_snapshots)
        .match_requests(|_| true)
        .sequence()
        .output(move || {
            DescribeDbSnapshotsOutput::builder()
                .db_snapshots(earlier.clone())
                .build()
        })
        .output(|| DescribeDbSnapshotsOutput::builder().build())
        .build();
    let create = created_ok();
    let copy = mock!(Client::copy_db_snapshot)
        .match_requests(|r| {
            r.target_db_snapshot_identifier() == Some("lb-nightly-202611190200-db-a")
                && r.kms_key_id() == Some("alias/backups")
                && r.tags().iter().any(|t| t.key() == Some("lifeboat:copy-of"))
        })
        .then_output(|| CopyDbSnapshotOutput::builder().build());
    let (function, _, _) = function(&[&pages[0], &home, &create, &copy]);

    let report = handle(
        &function,
        payload(json!({ "copy_to": [{ "region": "eu-west-1", "kms_key_id": "alias/backups" }] })),
        Invocation::now(),
    )
    .await
    .expect("run");

    assert_eq!(copy.num_calls(), 1);
    let copied: Vec<(&str, &str)> = report
        .created
        .iter()
        .filter(|c| c.copy_of.is_some())
        .map(|c| (c.backup.as_str(), c.region.as_str()))
        .collect();
    assert_eq!(copied, vec![("lb-nightly-202611190200-db-a", "eu-west-1")]);
}

#[tokio::test]
async fn an_invalid_payload_makes_no_call_at_all() {
    let pages = instance_pages(&[&["db-a"]]);
    let snaps = no_snapshots();
    let create = created_ok();
    let (function, alerts, _) = function(&[&pages[0], &snaps, &create]);

    let err = handle(
        &function,
        payload(json!({ "selct": {} })),
        Invocation::now(),
    )
    .await
    .expect_err("typo");

    assert!(
        matches!(&err, Error::InvalidPayload(e) if e.message.contains("unknown field `selct`")),
        "{err}"
    );
    assert_eq!(
        pages[0].num_calls() + snaps.num_calls() + create.num_calls(),
        0
    );
    assert!(alerts.sent().is_empty());
}

#[tokio::test]
async fn an_encrypted_source_without_a_key_for_its_copy_is_refused_before_any_snapshot() {
    let encrypted = mock!(Client::describe_db_instances).then_output(|| {
        DescribeDbInstancesOutput::builder()
            .db_instances(
                DbInstance::builder()
                    .db_instance_identifier("db-secret")
                    .db_instance_status("available")
                    .storage_encrypted(true)
                    .tag_list(Tag::builder().key("backup").value("nightly").build())
                    .build(),
            )
            .build()
    });
    let (snaps, create) = (no_snapshots(), created_ok());
    let (function, _, _) = function(&[&encrypted, &snaps, &create]);

    let refused = handle(
        &function,
        payload(json!({ "copy_to": [{ "region": "eu-west-1", "kms_key_id": "alias/backups" }, { "region": "eu-central-1" }] })),
        Invocation::now(),
    )
    .await;
    match refused {
        Err(Error::InvalidPayload(e)) => {
            assert_eq!(e.field, "copy_to[1].kms_key_id");
            assert!(
                e.message.contains("db-secret") && e.message.contains("eu-central-1"),
                "{e}"
            );
        }
        other => panic!("must be refused: {other:?}"),
    }
    assert_eq!(create.num_calls(), 0, "nothing is made");

    // With a key for every target, the same source is snapshotted.
    let report = handle(
        &function,
        payload(json!({ "copy_to": [{ "region": "eu-west-1", "kms_key_id": "alias/backups" }] })),
        Invocation::now(),
    )
    .await;
    assert!(create.num_calls() == 1, "{report:?}");
}

#[tokio::test]
async fn a_destination_that_cannot_be_listed_fails_its_copies_and_keeps_the_snapshots() {
    use aws_sdk_rds::operation::describe_db_snapshots::DescribeDBSnapshotsError;
    let pages = instance_pages(&[&["db-a"]]);
    let earlier = yesterdays_snapshot();
    // The home region lists yesterday's snapshot; the destination refuses its listing.
    let listing = mock!(Client::describe_db_snapshots)
        .sequence()
        .output(move || {
            DescribeDbSnapshotsOutput::builder()
                .db_snapshots(earlier.clone())
                .build()
        })
        .error(|| {
            DescribeDBSnapshotsError::generic(
                ErrorMetadata::builder()
                    .code("AccessDenied")
                    .message("not authorized in eu-west-1")
                    .build(),
            )
        })
        .build();
    let create = created_ok();
    let (function, alerts, _) = function(&[&pages[0], &listing, &create]);

    let outcome = handle(
        &function,
        payload(json!({ "copy_to": [{ "region": "eu-west-1", "kms_key_id": "alias/backups" }] })),
        Invocation::now(),
    )
    .await;

    let Err(Error::RunFailed { report }) = outcome else {
        panic!("the run fails with its report: {outcome:?}")
    };
    assert_eq!(sources(&report), vec!["db-a"], "today's snapshot is made");
    assert_eq!(report.failed.len(), 1);
    assert!(
        report.failed[0]
            .error
            .contains("copies to eu-west-1 not started"),
        "{:?}",
        report.failed
    );
    assert_eq!(alerts.sent().len(), 1);
}
