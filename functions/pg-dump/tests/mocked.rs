//! Handing a slot to the task, at the SDK level with aws-smithy-mocks: what
//! the emulator cannot show (it ignores `clientToken`, and its reads never
//! lag its writes). A duplicate delivery that ECS does not yet show the
//! first one's task to; a token refused as used with other parameters; a
//! rerun after a stopped task; stopped tasks that `ListTasks` still lists,
//! over several pages; a start ECS refuses.

use aws_sdk_ecs::Client;
use aws_sdk_ecs::error::ErrorMetadata;
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
use aws_sdk_ecs::operation::run_task::{RunTaskError, RunTaskOutput};
use aws_sdk_ecs::types::{Failure, Task, TaskStopCode};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use chrono::{Duration, Utc};
use pg_dump::task::{Dispatched, TaskRecord, TaskSettings, Tasks, client_token};

const NAME: &str = "lifeboat/nightly/orders/20261120T0200Z/0a1b2c3d";

fn settings() -> TaskSettings {
    TaskSettings {
        cluster: "arn:aws:ecs:us-east-1:123456789012:cluster/lifeboat".into(),
        task_definition: "arn:aws:ecs:us-east-1:123456789012:task-definition/lifeboat-pg-dump:1"
            .into(),
        container: "pg-dump".into(),
        subnets: vec!["subnet-1".into()],
        security_groups: vec!["sg-1".into()],
    }
}

fn task(arn: &str, status: &str) -> Task {
    let mut task = Task::builder().task_arn(arn).last_status(status);
    if status == "STOPPED" {
        task = task
            .stop_code(TaskStopCode::EssentialContainerExited)
            .stopped_reason("Essential container in task exited");
    }
    task.build()
}

/// One page of `ListTasks`, matched only when `startedBy` is its only filter.
fn listed(arns: &[&str]) -> Rule {
    let arns: Vec<String> = arns.iter().map(|a| (*a).to_owned()).collect();
    mock!(Client::list_tasks)
        .match_requests(|r| {
            r.started_by() == Some(NAME)
                && r.desired_status().is_none()
                && r.family().is_none()
                && r.service_name().is_none()
                && r.container_instance().is_none()
                && r.launch_type().is_none()
        })
        .then_output(move || {
            ListTasksOutput::builder()
                .set_task_arns(Some(arns.clone()))
                .build()
        })
}

fn described(tasks: Vec<Task>) -> Rule {
    mock!(Client::describe_tasks).then_output(move || {
        DescribeTasksOutput::builder()
            .set_tasks(Some(tasks.clone()))
            .build()
    })
}

fn started(attempt: u32, arn: &'static str) -> Rule {
    mock!(Client::run_task)
        .match_requests(move |r| {
            r.client_token() == Some(client_token(NAME, attempt).as_str())
                && r.started_by() == Some(NAME)
                && r.network_configuration()
                    .and_then(|n| n.awsvpc_configuration())
                    .and_then(|c| c.assign_public_ip())
                    .map(|a| a.as_str())
                    == Some("DISABLED")
        })
        .then_output(move || {
            RunTaskOutput::builder()
                .tasks(task(arn, "PROVISIONING"))
                .build()
        })
}

fn command() -> Vec<String> {
    ["run", "pg-dump", "--payload", "{}"]
        .map(str::to_owned)
        .to_vec()
}

fn record(arn: &str, attempt: u32, age: Duration) -> TaskRecord {
    TaskRecord {
        task_arn: arn.into(),
        cluster: settings().cluster,
        started_by: NAME.into(),
        attempt,
        dispatched_at: Utc::now() - age,
        stopped: None,
    }
}

#[tokio::test]
async fn a_duplicate_that_ecs_does_not_show_the_task_to_yet_starts_nothing() {
    let rules = [
        listed(&[]),
        described(Vec::new()),
        started(1, "arn:task/second"),
    ];
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &rules);
    let settings = settings();
    let tasks = Tasks::new(&ecs, &settings);
    // The first delivery started its task a minute ago and recorded it; ECS lists nothing yet.
    let last = record("arn:task/first", 1, Duration::minutes(1));
    let out = tasks
        .dispatch(NAME, command(), Some(&last), Utc::now())
        .await
        .expect("dispatch");
    assert_eq!(out, Dispatched::Running("arn:task/first".into()));
    assert_eq!(rules[2].num_calls(), 0, "no second RunTask");

    // ECS describes the task already, running, but does not list it yet.
    let rules = [
        listed(&[]),
        described(vec![task("arn:task/first", "RUNNING")]),
        started(2, "arn:task/second"),
    ];
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &rules);
    let tasks = Tasks::new(&ecs, &settings);
    let last = record("arn:task/first", 1, Duration::hours(2));
    let out = tasks
        .dispatch(NAME, command(), Some(&last), Utc::now())
        .await
        .expect("dispatch");
    assert_eq!(out, Dispatched::Running("arn:task/first".into()));
    assert_eq!(rules[2].num_calls(), 0, "no second RunTask");
}

#[tokio::test]
async fn a_rerun_after_a_stopped_task_starts_the_next_attempt() {
    let stopped = task("arn:task/first", "STOPPED");
    let rules = [
        listed(&["arn:task/first"]),
        described(vec![stopped]),
        started(1, "arn:task/replayed"),
        started(2, "arn:task/second"),
    ];
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &rules);
    let settings = settings();
    let tasks = Tasks::new(&ecs, &settings);
    let last = record("arn:task/first", 1, Duration::hours(3));
    let now = Utc::now();
    let out = tasks
        .dispatch(NAME, command(), Some(&last), now)
        .await
        .expect("dispatch");
    let Dispatched::Started(second) = out else {
        panic!("a new task: {out:?}");
    };
    assert_eq!(
        (second.task_arn.as_str(), second.attempt),
        ("arn:task/second", 2)
    );
    assert_eq!((rules[2].num_calls(), rules[3].num_calls()), (0, 1));

    // A record whose task ECS no longer knows, hours old: stopped long ago.
    let rules = [
        listed(&[]),
        described(Vec::new()),
        started(4, "arn:task/fourth"),
    ];
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &rules);
    let tasks = Tasks::new(&ecs, &settings);
    let last = record("arn:task/third", 3, Duration::hours(5));
    let out = tasks
        .dispatch(NAME, command(), Some(&last), now)
        .await
        .expect("dispatch");
    assert!(matches!(out, Dispatched::Started(r) if r.attempt == 4));
}

#[tokio::test]
async fn a_token_used_with_other_parameters_moves_to_the_next() {
    let conflict = mock!(Client::run_task)
        .match_requests(|r| r.client_token() == Some(client_token(NAME, 1).as_str()))
        .then_error(|| {
            RunTaskError::generic(
                ErrorMetadata::builder()
                    .code("ConflictException")
                    .message("The request uses the same client token as a previous, but non-identical request.")
                    .build(),
            )
        });
    let rules = [listed(&[]), conflict, started(2, "arn:task/second")];
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &rules);
    let settings = settings();
    let out = Tasks::new(&ecs, &settings)
        .dispatch(NAME, command(), None, Utc::now())
        .await
        .expect("dispatch");
    assert!(
        matches!(out, Dispatched::Started(r) if r.attempt == 2 && r.task_arn == "arn:task/second")
    );
    assert_eq!((rules[1].num_calls(), rules[2].num_calls()), (1, 1));

    // A conflict over a token whose task still runs (ECS does not list it
    // yet, and its record was lost): that task is the slot's, none is started.
    let holding = mock!(Client::run_task)
        .match_requests(|r| r.client_token() == Some(client_token(NAME, 1).as_str()))
        .then_error(|| {
            RunTaskError::ConflictException(
                aws_sdk_ecs::types::error::ConflictException::builder()
                    .resource_ids("arn:task/first")
                    .message("same client token, other parameters")
                    .meta(ErrorMetadata::builder().code("ConflictException").build())
                    .build(),
            )
        });
    let rules = [
        listed(&[]),
        holding,
        described(vec![task("arn:task/first", "RUNNING")]),
        started(2, "arn:task/second"),
    ];
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &rules);
    let out = Tasks::new(&ecs, &settings)
        .dispatch(NAME, command(), None, Utc::now())
        .await
        .expect("dispatch");
    assert_eq!(out, Dispatched::Running("arn:task/first".into()));
    assert_eq!(rules[3].num_calls(), 0, "no second task");
}

#[tokio::test]
async fn a_replayed_token_of_a_stopped_task_moves_to_the_next() {
    // The slot's record was lost; its first task stopped and is still listed.
    let rules = [
        listed(&["arn:task/first"]),
        described(vec![task("arn:task/first", "STOPPED")]),
        started(1, "arn:task/first"),
        started(2, "arn:task/second"),
    ];
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &rules);
    let settings = settings();
    let out = Tasks::new(&ecs, &settings)
        .dispatch(NAME, command(), None, Utc::now())
        .await
        .expect("dispatch");
    assert!(
        matches!(&out, Dispatched::Started(r) if r.attempt == 2 && r.task_arn == "arn:task/second"),
        "{out:?}"
    );
    assert_eq!((rules[2].num_calls(), rules[3].num_calls()), (1, 1));
}

#[tokio::test]
async fn stopped_tasks_listed_over_pages_are_told_from_a_running_one() {
    let first_page = mock!(Client::list_tasks)
        .match_requests(|r| r.started_by() == Some(NAME) && r.next_token().is_none())
        .then_output(|| {
            ListTasksOutput::builder()
                .task_arns("arn:task/stopped")
                .next_token("page-2")
                .build()
        });
    let second_page = mock!(Client::list_tasks)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(|| {
            ListTasksOutput::builder()
                .task_arns("arn:task/running")
                .build()
        });
    let rules = [
        first_page,
        second_page,
        described(vec![
            task("arn:task/stopped", "STOPPED"),
            task("arn:task/running", "RUNNING"),
        ]),
        started(1, "arn:task/new"),
    ];
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &rules);
    let settings = settings();
    let out = Tasks::new(&ecs, &settings)
        .dispatch(NAME, command(), None, Utc::now())
        .await
        .expect("dispatch");
    assert_eq!(out, Dispatched::Running("arn:task/running".into()));
    assert_eq!(rules[1].num_calls(), 1, "the second page was read");
    assert_eq!(rules[3].num_calls(), 0);
}

#[tokio::test]
async fn a_start_ecs_refuses_is_an_error_with_its_reason() {
    let refused = mock!(Client::run_task).then_output(|| {
        RunTaskOutput::builder()
            .failures(
                Failure::builder()
                    .reason("RESOURCE:MEMORY")
                    .arn("arn:aws:ecs:us-east-1:123456789012:cluster/lifeboat")
                    .build(),
            )
            .build()
    });
    let rules = [listed(&[]), refused];
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &rules);
    let settings = settings();
    let err = Tasks::new(&ecs, &settings)
        .dispatch(NAME, command(), None, Utc::now())
        .await
        .expect_err("refused");
    assert!(
        err.message.contains("ECS started no task: RESOURCE:MEMORY"),
        "{err}"
    );

    // A payload too large for ECS's overrides is refused before any call.
    let rules = [listed(&[]), started(1, "arn:task/never")];
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &rules);
    let big = vec!["x".repeat(9000)];
    let err = Tasks::new(&ecs, &settings)
        .dispatch(NAME, big, None, Utc::now())
        .await
        .expect_err("too large");
    assert!(err.message.contains("of ECS's 8192"), "{err}");
    assert_eq!((rules[0].num_calls(), rules[1].num_calls()), (0, 0));
}
