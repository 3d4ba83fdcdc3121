//! The look back at an earlier slot's task, at the SDK level
//! (aws-smithy-mocks): what the emulator cannot interleave. The record of a
//! stopped task is written only over the record as read, so that of two
//! runs that find the task stopped (the task's own run recording its
//! failure, or a duplicate of the next slot's run looking back too) only
//! one tells of it.

use super::claim_tests::pg_dump;
use super::*;
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_sdk_ecs::types::{Task, TaskStopCode};
use aws_sdk_s3::error::ErrorMetadata;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::put_object::{PutObjectError, PutObjectOutput};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};

const DUMP: &str = "pg/orders/2026/11/20/orders-nightly-20261120T0200Z.dump";
const TASK_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:task/lifeboat/0a1b";

fn settings() -> TaskSettings {
    TaskSettings {
        cluster: "lifeboat".into(),
        task_definition: "lifeboat-pg-dump:1".into(),
        container: "pg-dump".into(),
        subnets: vec!["subnet-1".into()],
        security_groups: vec!["sg-1".into()],
    }
}

/// The slot's task record as GetObject finds it: not yet told of, ETag `r1`.
fn record_read() -> Rule {
    let record = TaskRecord {
        task_arn: TASK_ARN.into(),
        cluster: "lifeboat".into(),
        started_by: "lifeboat/nightly/orders/20261120T0200Z/0a1b2c3d".into(),
        attempt: 1,
        dispatched_at: Utc::now() - chrono::Duration::hours(20),
        stopped: None,
    };
    let body = serde_json::to_vec(&record).expect("a record");
    mock!(aws_sdk_s3::Client::get_object)
        .match_requests(|r| r.key() == Some(format!("{DUMP}{TASK_SUFFIX}").as_str()))
        .then_output(move || {
            GetObjectOutput::builder()
                .body(body.clone().into())
                .e_tag("\"r1\"")
                .build()
        })
}

/// A record written over the one read (`If-Match` its ETag) and nothing else.
fn record_written() -> aws_smithy_mocks::RuleBuilder<
    aws_sdk_s3::operation::put_object::PutObjectInput,
    PutObjectOutput,
    PutObjectError,
> {
    mock!(aws_sdk_s3::Client::put_object).match_requests(|r| {
        r.key() == Some(format!("{DUMP}{TASK_SUFFIX}").as_str()) && r.if_match() == Some("\"r1\"")
    })
}

/// Looks back at the slot's task, which ECS says exited, against `s3`.
async fn look_back(s3: &[Rule]) -> Option<Notice> {
    let ecs = mock_client!(
        aws_sdk_ecs,
        [&mock!(aws_sdk_ecs::Client::describe_tasks).then_output(|| {
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
        })]
    );
    let settings = settings();
    let s3 = mock_client!(aws_sdk_s3, RuleMode::Sequential, s3);
    pg_dump(s3)
        .look_back(
            &task::Tasks::new(&ecs, &settings),
            "dumps",
            DUMP,
            Utc::now(),
        )
        .await
}

#[tokio::test]
async fn a_stopped_task_is_told_of_by_the_run_that_records_it_first_only() {
    let recorded =
        record_written().then_output(|| PutObjectOutput::builder().e_tag("\"r2\"").build());
    let told = look_back(&[record_read(), recorded]).await;
    let told = told.expect("the run that recorded the stop tells of it");
    assert!(told.subject.contains("its task stopped"), "{told:?}");
    // Another run wrote the record since this one read it: 412.
    let refused = record_written().then_error(|| {
        PutObjectError::generic(ErrorMetadata::builder().code("PreconditionFailed").build())
    });
    let rules = [record_read(), refused];
    assert_eq!(look_back(&rules).await, None, "the other run tells of it");
    assert_eq!(rules[1].num_calls(), 1);
}
