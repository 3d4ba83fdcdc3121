//! The record of an earlier slot's stopped task, at the SDK level
//! (aws-smithy-mocks): what the emulator cannot interleave. The record is
//! written only over the record as read, so that of two runs that find the
//! task stopped (the task's own run recording its failure, or the next
//! slot's run looking back, or a duplicate of it) only one tells of it; a
//! write refused for a conflict is made again over a newer read that still
//! names the task as running.

use super::test_support::pg_dump;
use super::*;
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_sdk_ecs::types::{Task, TaskStopCode};
use aws_sdk_s3::error::ErrorMetadata;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::put_object::{PutObjectError, PutObjectOutput};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};

const DUMP: &str = "pg/orders/2026/11/20/orders-nightly-20261120T0200Z.dump";
const TASK_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:task/lifeboat/0a1b";

fn record_key() -> String {
    format!("{DUMP}{TASK_SUFFIX}")
}

/// The slot's task record of task `arn` as GetObject finds it, at ETag
/// `e_tag`: running, or with `stopped` told.
fn read(arn: &'static str, e_tag: &'static str, stopped: Option<&str>) -> Rule {
    let record = TaskRecord {
        task_arn: arn.into(),
        cluster: "lifeboat".into(),
        started_by: "lifeboat/nightly/orders/20261120T0200Z/0a1b2c3d".into(),
        attempt: 1,
        dispatched_at: Utc::now() - chrono::Duration::hours(20),
        stopped: stopped.map(str::to_owned),
    };
    let body = serde_json::to_vec(&record).expect("a record");
    mock!(aws_sdk_s3::Client::get_object)
        .match_requests(|r| r.key() == Some(record_key().as_str()))
        .then_output(move || {
            GetObjectOutput::builder()
                .body(body.clone().into())
                .e_tag(e_tag)
                .build()
        })
}

/// The record, told of its task's stop, written over the one of ETag
/// `over` and nothing else: answered as written, or refused with `code`.
fn write(over: &'static str, refused: Option<&'static str>) -> Rule {
    let rule = mock!(aws_sdk_s3::Client::put_object).match_requests(move |r| {
        let told = r
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice::<TaskRecord>(b).ok())
            .is_some_and(|record| record.task_arn == TASK_ARN && record.stopped.is_some());
        r.key() == Some(record_key().as_str()) && r.if_match() == Some(over) && told
    });
    match refused {
        None => rule.then_output(|| PutObjectOutput::builder().e_tag("\"written\"").build()),
        Some(code) => rule.then_error(move || {
            PutObjectError::generic(ErrorMetadata::builder().code(code).build())
        }),
    }
}

/// Looks back at the slot's task, which ECS says exited, against `s3`'s
/// rules in order; each rule's calls.
async fn look_back(s3: &[Rule]) -> (Option<Notice>, Vec<usize>) {
    let described = mock!(aws_sdk_ecs::Client::describe_tasks).then_output(|| {
        DescribeTasksOutput::builder()
            .tasks(
                Task::builder()
                    .task_arn(TASK_ARN)
                    .last_status("STOPPED")
                    .stop_code(TaskStopCode::EssentialContainerExited)
                    .stopped_reason("Essential container in task exited")
                    .build(),
            )
            .build()
    });
    let ecs = mock_client!(aws_sdk_ecs, [&described]);
    let settings = TaskSettings {
        cluster: "lifeboat".into(),
        task_definition: "lifeboat-pg-dump:1".into(),
        container: "pg-dump".into(),
        subnets: vec!["subnet-1".into()],
        security_groups: vec!["sg-1".into()],
    };
    let client = mock_client!(aws_sdk_s3, RuleMode::Sequential, s3);
    let told = pg_dump(client)
        .look_back(
            &task::Tasks::new(&ecs, &settings),
            "dumps",
            DUMP,
            Utc::now(),
        )
        .await;
    (told, s3.iter().map(Rule::num_calls).collect())
}

#[tokio::test]
async fn a_stopped_task_is_told_of_by_the_run_whose_record_of_it_s3_takes() {
    let (told, calls) = look_back(&[read(TASK_ARN, "\"r1\"", None), write("\"r1\"", None)]).await;
    let told = told.expect("the run that recorded the stop tells of it");
    assert!(told.subject.contains("its task stopped"), "{told:?}");
    assert_eq!(calls, [1, 1]);
    // Another run recorded it since: 412, and the record says so.
    let (told, calls) = look_back(&[
        read(TASK_ARN, "\"r1\"", None),
        write("\"r1\"", Some("PreconditionFailed")),
        read(TASK_ARN, "\"r2\"", Some("its run failed, and said so: …")),
    ])
    .await;
    assert_eq!(told, None, "the other run tells of it");
    assert_eq!(calls, [1, 1, 1]);
    // The slot was handed to a task again since: not this run's to tell.
    let (told, calls) = look_back(&[
        read(TASK_ARN, "\"r1\"", None),
        write("\"r1\"", Some("PreconditionFailed")),
        read(
            "arn:aws:ecs:us-east-1:123456789012:task/lifeboat/9f8e",
            "\"r2\"",
            None,
        ),
    ])
    .await;
    assert_eq!(told, None);
    assert_eq!(calls, [1, 1, 1]);
}

#[tokio::test]
async fn a_record_refused_for_a_conflict_is_written_again_over_a_newer_read() {
    let (told, calls) = look_back(&[
        read(TASK_ARN, "\"r1\"", None),
        write("\"r1\"", Some("ConditionalRequestConflict")),
        read(TASK_ARN, "\"r2\"", None),
        write("\"r2\"", None),
    ])
    .await;
    assert!(told.is_some(), "recorded at the second write, and told");
    assert_eq!(calls, [1, 1, 1, 1]);
}

#[tokio::test]
async fn a_failed_task_run_records_its_told_failure_only_over_the_record_as_read() {
    let rules = [
        read(TASK_ARN, "\"r1\"", None),
        write("\"r1\"", Some("PreconditionFailed")),
        read(
            TASK_ARN,
            "\"r2\"",
            Some("EssentialContainerExited: told by a later run"),
        ),
    ];
    let client = mock_client!(aws_sdk_s3, RuleMode::Sequential, &rules);
    let slot = lifeboat::Slot::from_tag("2026-11-20T02:00:00Z").expect("a slot");
    let label = BackupLabel::new(
        &lifeboat::Plan::new("nightly").expect("a plan"),
        "orders",
        slot,
    );
    let function = pg_dump(client);
    let target = function.target("dumps", DUMP, &label, "task-run".into());
    function
        .record_told_failure(&target, "pg_dump exited with status 1")
        .await;
    let calls: Vec<usize> = rules.iter().map(Rule::num_calls).collect();
    assert_eq!(calls, [1, 1, 1], "told by the later run: not written over");
}
