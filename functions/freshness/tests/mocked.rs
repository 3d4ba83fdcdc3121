//! `freshness` at the SDK level: a snapshot listing across pages, more
//! metrics than one PutMetricData call takes, an API error failing the run,
//! and a drill record that cannot be read failing only that dump's proof.

use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataOutput;
use aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput;
use aws_sdk_ec2::operation::describe_volumes::DescribeVolumesOutput;
use aws_sdk_ec2::types::{Snapshot, SnapshotState, Tag, Volume, VolumeState};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use chrono::Utc;
use freshness::Freshness;
use lifeboat::Error;
use lifeboat::alert::MemoryAlerts;
use lifeboat::aws::catalog::Catalog;
use lifeboat::metrics::{CloudWatchMetrics, Metrics};
use lifeboat::runtime::{Invocation, Sinks, handle};
use serde_json::json;
use std::sync::Arc;

fn volumes(n: usize) -> Rule {
    mock!(aws_sdk_ec2::Client::describe_volumes).then_output(move || {
        DescribeVolumesOutput::builder()
            .set_volumes(Some(
                (0..n)
                    .map(|i| {
                        Volume::builder()
                            .volume_id(format!("vol-{i:04}"))
                            .state(VolumeState::InUse)
                            .build()
                    })
                    .collect(),
            ))
            .build()
    })
}

/// The clock of every run here, fixed so that no slot lands in the future at a minute boundary.
fn now() -> chrono::DateTime<Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-20T12:00:00Z")
        .expect("now")
        .with_timezone(&Utc)
}

fn invocation() -> Invocation {
    Invocation {
        now: now(),
        deadline: None,
    }
}

fn snapshot(volume: &str) -> Snapshot {
    let time = (now() - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:00Z")
        .to_string();
    let tags = [
        ("managed-by", "lifeboat"),
        ("lifeboat:plan", "nightly"),
        ("lifeboat:source", volume),
        ("lifeboat:scheduled-time", time.as_str()),
    ];
    Snapshot::builder()
        .snapshot_id(format!("snap-{volume}"))
        .volume_id(volume)
        .state(SnapshotState::Completed)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .build()
}

/// DescribeSnapshots with a backup of every volume, `per_page` a page.
fn snapshot_pages(n: usize, per_page: usize) -> Vec<Rule> {
    let pages = n.div_ceil(per_page);
    (0..pages)
        .map(|page| {
            let token = (page > 0).then(|| format!("page-{page}"));
            let next = (page + 1 < pages).then(|| format!("page-{}", page + 1));
            mock!(aws_sdk_ec2::Client::describe_snapshots)
                .match_requests(move |r| r.next_token().map(str::to_owned) == token)
                .then_output(move || {
                    let snapshots = (page * per_page..((page + 1) * per_page).min(n))
                        .map(|i| snapshot(&format!("vol-{i:04}")));
                    DescribeSnapshotsOutput::builder()
                        .set_snapshots(Some(snapshots.collect()))
                        .set_next_token(next.clone())
                        .build()
                })
        })
        .collect()
}

fn function(ec2_rules: &[&Rule], metrics: Arc<dyn Metrics>) -> (Freshness, Arc<MemoryAlerts>) {
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, ec2_rules);
    let rds = mock_client!(aws_sdk_rds, RuleMode::MatchAny, &[] as &[&Rule]);
    let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &[] as &[&Rule]);
    let alerts = Arc::new(MemoryAlerts::default());
    let sinks = Sinks {
        alerts: alerts.clone(),
        metrics,
    };
    (
        Freshness::new(
            Catalog::new(rds.clone(), ec2.clone(), s3, None),
            rds,
            ec2,
            sinks,
            lifeboat::fanout::FanOut::DEFAULT,
        ),
        alerts,
    )
}

fn payload() -> serde_json::Value {
    json!({ "plan": "nightly", "checks": [{ "kind": "ebs", "select": { "tags": { "backup": "nightly" } }, "max_age_hours": 26 }] })
}

#[tokio::test]
async fn backups_on_every_page_count_and_metrics_go_out_in_batches() {
    let listing = volumes(600);
    let pages = snapshot_pages(600, 250);
    let put = mock!(aws_sdk_cloudwatch::Client::put_metric_data)
        .match_requests(|r| r.metric_data().len() <= 500)
        .then_output(|| PutMetricDataOutput::builder().build());
    let cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&put]);
    let rules: Vec<&Rule> = pages.iter().chain([&listing]).collect();
    let (function, alerts) = function(
        &rules,
        Arc::new(CloudWatchMetrics::new(cloudwatch, "Lifeboat")),
    );

    let report = handle(&function, payload(), invocation())
        .await
        .expect("run");

    assert_eq!(
        pages.iter().map(Rule::num_calls).collect::<Vec<_>>(),
        [1, 1, 1],
        "one listing of three pages"
    );
    assert_eq!(report.checks.len(), 600);
    assert!(report.checks.iter().all(|c| c.state.to_string() == "ok"));
    // 600 ages + 3 per-plan figures: two calls, none over the limit (the matcher refuses bigger ones).
    // The run's own outcome metrics go in one more call.
    assert_eq!(put.num_calls(), 3);
    assert!(alerts.sent().is_empty());
}

#[tokio::test]
async fn a_listing_that_fails_fails_the_run_and_is_never_fresh() {
    let listing = volumes(2);
    let broken = mock!(aws_sdk_ec2::Client::describe_snapshots).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(403).expect("status"),
            aws_smithy_types::body::SdkBody::from("<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>no</Message></Error></Errors></Response>"),
        )
    });
    let metrics = Arc::new(lifeboat::metrics::MemoryMetrics::default());
    let (function, alerts) = function(&[&listing, &broken], metrics.clone());

    let err = handle(&function, payload(), invocation())
        .await
        .expect_err("the check could not run");

    assert!(
        matches!(
            err,
            Error::Aws {
                operation: "DescribeSnapshots",
                ..
            }
        ),
        "{err}"
    );
    let sent = alerts.sent();
    assert_eq!(sent.len(), 1, "one alert");
    assert!(
        sent[0].body.contains("DescribeSnapshots"),
        "{}",
        sent[0].body
    );
    assert!(
        metrics.sent().iter().all(|m| m.name != "Heartbeat"),
        "no heartbeat from a check that did not run"
    );
}

#[tokio::test]
async fn a_drill_record_that_cannot_be_read_fails_that_proof_alone() {
    use aws_sdk_s3::operation::get_object::GetObjectOutput;
    use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
    use aws_sdk_s3::types::Object;
    let slot = (now() - chrono::Duration::hours(2))
        .format("%Y%m%dT%H%MZ")
        .to_string();
    let day = (now() - chrono::Duration::hours(2))
        .format("%Y/%m/%d")
        .to_string();
    let dump = |db: &str| format!("pg/{db}/{day}/{db}-nightly-{slot}.dump");
    let keys: Vec<String> = ["orders", "billing"]
        .iter()
        .flat_map(|db| {
            let key = dump(db);
            [
                format!("{key}.manifest.json"),
                format!("{key}.drill.json"),
                key,
            ]
        })
        .collect();
    let list = mock!(aws_sdk_s3::Client::list_objects_v2).then_output(move || {
        ListObjectsV2Output::builder()
            .set_contents(Some(
                keys.iter()
                    .map(|k| Object::builder().key(k).build())
                    .collect(),
            ))
            .build()
    });
    let orders_record = format!("{}.drill.json", dump("orders"));
    let denied = mock!(aws_sdk_s3::Client::get_object)
        .match_requests(move |r| r.key() == Some(orders_record.as_str()))
        .then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(403).expect("status"),
                aws_smithy_types::body::SdkBody::from(
                    "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
                ),
            )
        });
    let drilled = (now() - chrono::Duration::days(3)).to_rfc3339();
    let passed = mock!(aws_sdk_s3::Client::get_object).then_output(move || {
        GetObjectOutput::builder()
            .body(
                json!({"outcome": "passed", "drilled_at": drilled})
                    .to_string()
                    .into_bytes()
                    .into(),
            )
            .build()
    });
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, &[] as &[&Rule]);
    let rds = mock_client!(aws_sdk_rds, RuleMode::MatchAny, &[] as &[&Rule]);
    let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&list, &denied, &passed]);
    let alerts = Arc::new(MemoryAlerts::default());
    let metrics = Arc::new(lifeboat::metrics::MemoryMetrics::default());
    let sinks = Sinks {
        alerts: alerts.clone(),
        metrics: metrics.clone(),
    };
    let function = Freshness::new(
        Catalog::new(rds.clone(), ec2.clone(), s3, Some("dumps".to_owned())),
        rds,
        ec2,
        sinks,
        lifeboat::fanout::FanOut::DEFAULT,
    );
    let payload = json!({ "plan": "nightly", "checks": [
        { "kind": "pg-dump", "database": ["orders", "billing"], "max_age_hours": 26, "proven_within_days": 35 }
    ]});

    let outcome = handle(&function, payload, invocation()).await;

    let report = match outcome {
        Err(Error::RunFailed { report }) => report,
        other => panic!("an unread record fails the run: {other:?}"),
    };
    let check = |db: &str| {
        report
            .checks
            .iter()
            .find(|c| c.source == db)
            .expect("checked")
    };
    assert_eq!(
        (
            check("billing").state.to_string(),
            check("billing").unproven
        ),
        ("ok".to_owned(), false),
        "the other dump's record was read: proven 3 days ago"
    );
    assert_eq!(
        (check("orders").state.to_string(), check("orders").unproven),
        ("ok".to_owned(), true),
        "fresh, its proof unknown"
    );
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    assert!(
        report.failed[0]
            .error
            .contains("its restore drill record could not be read")
            && report.failed[0].source.contains("pg/orders/"),
        "{:?}",
        report.failed
    );
    assert!(
        metrics.sent().iter().any(|m| m.name == "Heartbeat"),
        "the other checks went out"
    );
    assert_eq!(
        alerts.sent().len(),
        2,
        "the findings notice and the failure alert"
    );
}
