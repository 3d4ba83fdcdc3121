//! `pg-dump` handing long dumps to its ECS Fargate task, against the
//! emulator's ECS, S3 and Secrets Manager and real PostgreSQL servers.
//!
//! The emulator records `RunTask` but runs no container (and ignores
//! `clientToken`, whose replays the SDK-level tests cover): each test plays
//! ECS's part, reading the task's command back with `DescribeTasks` and
//! running it as the task would, through the function's own handler.

use crate::pg_dump_common::{BUCKET, PARTS, Setup, conninfo, payload, pg_dump_of, restore_into};
use lifeboat::postgres::restore::Target;
use lifeboat::runtime::{Invocation, handle};
use lifeboat_tests::ecs::{CONTAINER, DumpTask, tasks};
use lifeboat_tests::postgres::{PgServer, generate, newest_bin, pg15_bin};
use pg_dump::task::TaskSettings;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// pg-dump's task as Terraform makes it, in the function's settings.
async fn task_settings(setup: &Setup) -> TaskSettings {
    let task = DumpTask::create(&setup.aws, &[]).await;
    TaskSettings {
        cluster: task.cluster,
        task_definition: task.task_definition,
        container: CONTAINER.into(),
        subnets: vec![task.subnet],
        security_groups: vec![task.security_group],
    }
}

fn function_with_task(setup: &Setup, task: Option<TaskSettings>) -> pg_dump::PgDump {
    let settings = pg_dump::Settings {
        pg_dump: pg_dump_of(&newest_bin()),
        bucket: Some(BUCKET.into()),
        kms_key_id: None,
        parts: PARTS,
        task,
    };
    setup.function_with(settings, setup.s3.clone())
}

/// A Lambda run of `seconds`: its deadline that far from now.
fn lambda_run(seconds: u64) -> Invocation {
    let deadline = SystemTime::now() + Duration::from_secs(seconds);
    Invocation::with_deadline_ms(
        deadline
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64,
    )
}

/// The key of the `orders` dump of `event`'s slot moved by `days`.
fn dump_key(event: &Value, days: i64) -> String {
    let slot = lifeboat::Request::<pg_dump::fields::PgDumpFields>::parse(
        event.clone(),
        chrono::Utc::now(),
    )
    .expect("payload")
    .slot;
    let moved = slot.time() + chrono::Duration::days(days);
    let slot = lifeboat::Slot::from_stamp(&moved.format("%Y%m%dT%H%MZ").to_string()).expect("slot");
    lifeboat::rules::naming::dump_key(
        "pg/",
        "orders",
        &lifeboat::Plan::new("nightly").expect("plan"),
        slot,
        "dump",
    )
}

/// The slot's task record beside the dump's `key`.
async fn task_record(setup: &Setup, key: &str) -> Value {
    let body = setup
        .s3
        .get_object()
        .bucket(BUCKET)
        .key(format!("{key}.task.json"))
        .send()
        .await
        .expect("task record")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    serde_json::from_slice(&body).expect("json")
}

/// Plays ECS's part: runs the task's command (`lifeboat run pg-dump
/// --payload …`) through the function's handler, as the container would,
/// without a deadline.
async fn run_as_the_task(setup: &Setup, task: &aws_sdk_ecs::types::Task) -> lifeboat::Report {
    let overrides = task.overrides().expect("overrides");
    let command = overrides.container_overrides()[0].command();
    assert_eq!(overrides.container_overrides()[0].name(), Some("pg-dump"));
    assert_eq!(&command[..3], ["run", "pg-dump", "--payload"]);
    let payload: Value = serde_json::from_str(&command[3]).expect("the payload is JSON");
    handle(&function_with_task(setup, None), payload, Invocation::now())
        .await
        .expect("the task's run")
}

/// Stops the task `arn` as the emulator stops its tasks: after a few looks.
async fn stop_by_looking(setup: &Setup, settings: &TaskSettings, arn: &str) {
    let ecs = aws_sdk_ecs::Client::new(&setup.aws);
    for _ in 0..4 {
        ecs.describe_tasks()
            .cluster(&settings.cluster)
            .tasks(arn)
            .send()
            .await
            .expect("describe");
    }
}

/// pg-dump with its task, and the `postgres` database of `server` handed
/// to it (`runner: task`) by a Lambda run of the payload's slot: the task's
/// settings, the function, the payload and that run's report.
async fn handed_to_a_task(
    setup: &Setup,
    server: &PgServer,
) -> (TaskSettings, pg_dump::PgDump, Value, lifeboat::Report) {
    let settings = task_settings(setup).await;
    let arn = setup.secret("db", &server.password).await;
    let function = function_with_task(setup, Some(settings.clone()));
    let mut event = payload("nightly", server.port, "postgres", &arn);
    event["databases"][0]["runner"] = json!("task");
    let first = handle(&function, event.clone(), lambda_run(900))
        .await
        .expect("handed");
    assert!(first.tasks[0].started, "{first:?}");
    (settings, function, event, first)
}

async fn a_long_dump_goes_to_one_task_and_restores(server_bin: &Path) {
    let setup = Setup::new().await;
    // The emulator's tasks run until something stops them.
    setup.emulator.set_transition("ecs::task", 1_000);
    let settings = task_settings(&setup).await;
    let server = PgServer::start(server_bin);
    generate(&server, "shop", 4);
    let arn = setup.secret("shop", &server.password).await;
    let event = payload("nightly", server.port, "shop", &arn);
    let key = dump_key(&event, 0);
    // Yesterday's dump took 800 s: more than half of a 900 s Lambda run.
    let yesterday = dump_key(&event, -1);
    setup
        .s3
        .put_object()
        .bucket(BUCKET)
        .key(format!("{yesterday}.manifest.json"))
        .body(
            json!({"key": yesterday, "duration_seconds": 800.0})
                .to_string()
                .into_bytes()
                .into(),
        )
        .send()
        .await
        .expect("put");
    let function = function_with_task(&setup, Some(settings.clone()));

    // Ten deliveries of the slot: one task, and each report names it.
    let mut handed = Vec::new();
    for _ in 0..10 {
        let report = handle(&function, event.clone(), lambda_run(900))
            .await
            .expect("handed");
        assert_eq!(report.created, Vec::new(), "{report:?}");
        assert_eq!(report.tasks.len(), 1, "{report:?}");
        handed.push(report.tasks[0].clone());
    }
    let started: Vec<_> = handed.iter().filter(|h| h.started).collect();
    assert_eq!(started.len(), 1, "{handed:?}");
    assert!(handed[0].started, "the first delivery starts it");
    assert!(
        handed
            .iter()
            .all(|h| h.task == handed[0].task && h.backup == key)
    );
    assert_eq!(
        handed[0].reason,
        "its last dump took 800 s, more than half of the function's 900 s"
    );
    let all = tasks(&setup.aws, &settings.cluster).await;
    assert_eq!(all.len(), 1, "one task for ten deliveries");
    let task = &all[0];
    assert_eq!(task.task_arn(), Some(handed[0].task.as_str()));
    assert_eq!(
        task.started_by(),
        Some(pg_dump::task::started_by(
            &lifeboat::Plan::new("nightly").expect("plan"),
            "orders",
            lifeboat::Slot::from_stamp("20261120T0200Z").expect("slot"),
            BUCKET,
            "pg/",
        ))
        .as_deref()
    );
    assert_eq!(task.launch_type().map(|l| l.as_str()), Some("FARGATE"));
    let command = task.overrides().expect("overrides").container_overrides()[0]
        .command()
        .join(" ");
    assert!(
        !command.contains(&server.password),
        "no password in the task's command"
    );
    assert!(command.contains(&arn), "the secret's ARN: {command}");
    // The record beside the dump's key names the task and its attempt.
    let record = task_record(&setup, &key).await;
    assert_eq!(record["task_arn"], json!(handed[0].task));
    assert_eq!(record["attempt"], json!(1));

    // The task makes the same dump the Lambda run would: key, manifest, fingerprint.
    let report = run_as_the_task(&setup, task).await;
    assert_eq!(report.created.len(), 1, "{report:?}");
    assert_eq!(report.created[0].backup, key);
    server.sql("postgres", "CREATE DATABASE shop_restored");
    let restored = restore_into(
        &setup,
        &key,
        &Target::Conninfo(conninfo(&server, "shop_restored")),
    )
    .await
    .expect("restored");
    assert_eq!(restored.mismatches, Vec::<String>::new());
    assert!(
        restored.tables.values().sum::<u64>() > 1000,
        "{:?}",
        restored.tables
    );
    assert_eq!(
        server.fingerprint("shop_restored"),
        server.fingerprint("shop")
    );

    // Once the manifest is there, the slot is done, whichever runner made it.
    let report = handle(&function, event, lambda_run(900))
        .await
        .expect("done");
    assert_eq!(report.tasks, Vec::new(), "{report:?}");
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    assert_eq!(tasks(&setup.aws, &settings.cluster).await.len(), 1);
    assert_eq!(setup.inbox.drain().await, Vec::<Value>::new());
}

#[tokio::test]
async fn auto_hands_a_long_dump_to_one_task_whose_dump_restores_newest() {
    a_long_dump_goes_to_one_task_and_restores(&newest_bin()).await;
}

#[tokio::test]
async fn auto_hands_a_long_dump_to_one_task_whose_dump_restores_pg15() {
    a_long_dump_goes_to_one_task_and_restores(&pg15_bin()).await;
}

#[tokio::test]
async fn a_run_cut_off_by_the_deadline_sends_the_next_slot_to_the_task() {
    let setup = Setup::new().await;
    let settings = task_settings(&setup).await;
    let server = PgServer::start(&newest_bin());
    let arn = setup.secret("db", &server.password).await;
    let function = function_with_task(&setup, Some(settings.clone()));
    let event = payload("nightly", server.port, "postgres", &arn);

    // A Lambda run with less left than pg-dump keeps back for its clean-up:
    // cut off at once, and recorded as cut.
    let outcome = handle(&function, event.clone(), lambda_run(20)).await;
    let Err(lifeboat::Error::RunFailed { report }) = outcome else {
        panic!("the deadline cuts the dump off: {outcome:?}");
    };
    assert!(
        report.failed[0]
            .error
            .contains("before the Lambda deadline"),
        "{report:?}"
    );
    let cut = format!("{}.cut.json", dump_key(&event, 0));
    assert_eq!(
        setup.keys().await,
        vec![cut.clone()],
        "only the record of the cut"
    );
    let tags = setup
        .s3
        .get_object_tagging()
        .bucket(BUCKET)
        .key(&cut)
        .send()
        .await
        .expect("tags");
    let tag = |key: &str| {
        tags.tag_set()
            .iter()
            .find(|t| t.key() == key)
            .map(|t| t.value().to_owned())
    };
    assert_eq!(tag("lifeboat:record").as_deref(), Some("cut"));
    assert_eq!(tag("lifeboat:source").as_deref(), Some("orders"));
    assert_eq!(setup.inbox.drain().await.len(), 1, "one alert for the cut");

    // The next slot goes to the task.
    let mut next = event.clone();
    next["scheduled_time"] = json!("2026-11-21T02:00:00Z");
    let report = handle(&function, next.clone(), lambda_run(900))
        .await
        .expect("handed");
    assert_eq!(report.tasks.len(), 1, "{report:?}");
    assert_eq!(
        report.tasks[0].reason,
        "its last Lambda run was cut off by the deadline"
    );
    // A `lambda` runner stays in Lambda all the same.
    let mut lambda = next.clone();
    lambda["plan"] = json!("weekly");
    lambda["databases"][0]["runner"] = json!("lambda");
    let report = handle(&function, lambda, lambda_run(900))
        .await
        .expect("dumped");
    assert_eq!(
        (report.created.len(), report.tasks.len()),
        (1, 0),
        "{report:?}"
    );
}

#[tokio::test]
async fn a_stopped_task_is_followed_by_the_next_attempt_and_a_task_runner_needs_a_task() {
    let setup = Setup::new().await;
    let settings = task_settings(&setup).await;
    let server = PgServer::start(&newest_bin());
    let arn = setup.secret("db", &server.password).await;
    let mut event = payload("nightly", server.port, "postgres", &arn);
    event["databases"][0]["runner"] = json!("task");

    // Without a task, `runner: task` is refused, naming the field, and nothing is written.
    let outcome = handle(
        &function_with_task(&setup, None),
        event.clone(),
        lambda_run(900),
    )
    .await;
    let Err(lifeboat::Error::RunFailed { report }) = outcome else {
        panic!("no task to hand to: {outcome:?}");
    };
    assert!(
        report.failed[0]
            .error
            .starts_with("databases[0].runner is `task`"),
        "{report:?}"
    );
    assert_eq!(setup.keys().await, Vec::<String>::new());
    setup.inbox.drain().await;

    let function = function_with_task(&setup, Some(settings.clone()));
    let first = handle(&function, event.clone(), lambda_run(900))
        .await
        .expect("handed");
    assert!(first.tasks[0].started);
    // The task stops without a dump.
    stop_by_looking(&setup, &settings, &first.tasks[0].task).await;
    let stopped = tasks(&setup.aws, &settings.cluster).await;
    assert_eq!(stopped[0].last_status(), Some("STOPPED"), "{stopped:?}");

    // A rerun of the slot starts its second attempt, a new task.
    let again = handle(&function, event, lambda_run(900))
        .await
        .expect("handed");
    assert!(again.tasks[0].started, "{again:?}");
    assert_ne!(again.tasks[0].task, first.tasks[0].task);
    assert_eq!(tasks(&setup.aws, &settings.cluster).await.len(), 2);
    let key = dump_key(&payload("nightly", server.port, "postgres", &arn), 0);
    let record = task_record(&setup, &key).await;
    assert_eq!(record["attempt"], json!(2));
    assert_eq!(record["task_arn"], json!(again.tasks[0].task));
}

/// The next slot's run looks back at the slot before, handed to a task that
/// has no dump: a stopped task is told once (and the record says so), a
/// running one is reported, and neither stops the new slot's own hand-over.
#[tokio::test]
async fn the_next_run_tells_once_of_a_task_that_stopped_without_its_dump() {
    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    let (settings, function, event, first) = handed_to_a_task(&setup, &server).await;
    // The task stops without a dump.
    stop_by_looking(&setup, &settings, &first.tasks[0].task).await;
    assert_eq!(
        tasks(&setup.aws, &settings.cluster).await[0].last_status(),
        Some("STOPPED")
    );

    // Another plan's run of the database leaves the nightly slot alone.
    let mut weekly = event.clone();
    weekly["plan"] = json!("weekly");
    weekly["scheduled_time"] = json!("2026-11-21T02:00:00Z");
    let other = handle(&function, weekly, lambda_run(900))
        .await
        .expect("another plan");
    assert_eq!(other.notices, Vec::new(), "{other:?}");
    assert_eq!(
        task_record(&setup, &dump_key(&event, 0))
            .await
            .get("stopped"),
        None
    );

    let mut next = event.clone();
    next["scheduled_time"] = json!("2026-11-21T02:00:00Z");
    let report = handle(&function, next.clone(), lambda_run(900))
        .await
        .expect("the next slot");
    assert_eq!(report.notices.len(), 1, "{report:?}");
    let notice = &report.notices[0];
    assert!(
        notice
            .subject
            .contains("no dump of orders for slot 2026-11-20T02:00")
            && notice.body.contains(&first.tasks[0].task)
            && notice.body.contains(&dump_key(&event, 0)),
        "{notice:?}"
    );
    assert!(report.tasks[0].started, "the new slot has its own task");
    let alerts = setup.inbox.drain().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let record = task_record(&setup, &dump_key(&event, 0)).await;
    assert!(
        record["stopped"].as_str().is_some_and(|s| !s.is_empty()),
        "{record}"
    );

    // Told once: a second delivery of the next slot says nothing more.
    let again = handle(&function, next, lambda_run(900))
        .await
        .expect("again");
    assert_eq!(again.notices, Vec::new(), "{again:?}");
    assert_eq!(setup.inbox.drain().await, Vec::<Value>::new());
    // The first slot's, the weekly slot's and the next nightly slot's.
    assert_eq!(tasks(&setup.aws, &settings.cluster).await.len(), 3);
}

#[tokio::test]
async fn a_task_still_running_at_the_next_slot_is_reported_and_not_doubled() {
    let setup = Setup::new().await;
    setup.emulator.set_transition("ecs::task", 1_000);
    let server = PgServer::start(&newest_bin());
    let (settings, function, event, first) = handed_to_a_task(&setup, &server).await;
    let mut next = event.clone();
    next["scheduled_time"] = json!("2026-11-21T02:00:00Z");
    let report = handle(&function, next, lambda_run(900))
        .await
        .expect("the next slot");
    assert_eq!(report.notices.len(), 1, "{report:?}");
    assert!(
        report.notices[0]
            .subject
            .contains("still runs at the next slot")
            && report.notices[0].body.contains(&first.tasks[0].task),
        "{:?}",
        report.notices[0]
    );
    // The next slot has its own task; the first slot's is not started again.
    let all = tasks(&setup.aws, &settings.cluster).await;
    assert_eq!(all.len(), 2, "{all:?}");
    let mut names: Vec<_> = all.iter().filter_map(|t| t.started_by()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 2, "one task per slot: {names:?}");
    let record = task_record(&setup, &dump_key(&event, 0)).await;
    assert_eq!(record.get("stopped"), None, "{record}");

    // The first slot's task is stopped after that look: the slot after
    // next still tells of it, though it is no longer the newest handed one.
    aws_sdk_ecs::Client::new(&setup.aws)
        .stop_task()
        .cluster(&settings.cluster)
        .task(&first.tasks[0].task)
        .send()
        .await
        .expect("stop task");
    let mut third = event.clone();
    third["scheduled_time"] = json!("2026-11-22T02:00:00Z");
    let report = handle(&function, third, lambda_run(900))
        .await
        .expect("the slot after next");
    let subjects: Vec<&str> = report.notices.iter().map(|n| n.subject.as_str()).collect();
    assert!(
        subjects
            .iter()
            .any(|s| s.contains("no dump of orders for slot 2026-11-20T02:00")),
        "{subjects:?}"
    );
    assert!(
        subjects
            .iter()
            .any(|s| s.contains("2026-11-21T02:00:00Z still runs")),
        "{subjects:?}"
    );
}

/// A task whose dump failed alerts as every run does, and records it on the
/// slot's task record: the next slot's run does not tell it again.
#[tokio::test]
async fn a_task_whose_dump_failed_and_said_so_is_not_told_again() {
    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    let (settings, function, event, first) = handed_to_a_task(&setup, &server).await;
    // The login stops working before the task runs.
    let secret = event["databases"][0]["secret_arn"].as_str().expect("arn");
    aws_sdk_secretsmanager::Client::new(&setup.aws)
        .put_secret_value()
        .secret_id(secret)
        .secret_string(json!({"username": "postgres", "password": "wrong"}).to_string())
        .send()
        .await
        .expect("put secret value");
    let task = &tasks(&setup.aws, &settings.cluster).await[0];
    let command = task.overrides().expect("overrides").container_overrides()[0].command();
    let payload: Value = serde_json::from_str(&command[3]).expect("the payload");
    let outcome = handle(
        &function_with_task(&setup, None),
        payload,
        Invocation::now(),
    )
    .await;
    assert!(
        matches!(outcome, Err(lifeboat::Error::RunFailed { .. })),
        "{outcome:?}"
    );
    assert_eq!(setup.inbox.drain().await.len(), 1, "the task's own alert");
    let record = task_record(&setup, &dump_key(&event, 0)).await;
    assert!(
        record["stopped"]
            .as_str()
            .is_some_and(|s| s.starts_with("its run failed, and said so")),
        "{record}"
    );
    assert_eq!(record["task_arn"], json!(first.tasks[0].task));

    stop_by_looking(&setup, &settings, &first.tasks[0].task).await;
    let mut next = event.clone();
    next["scheduled_time"] = json!("2026-11-21T02:00:00Z");
    let report = handle(&function, next, lambda_run(900))
        .await
        .expect("the next slot");
    assert_eq!(report.notices, Vec::new(), "{report:?}");
    assert_eq!(setup.inbox.drain().await, Vec::<Value>::new());
}
