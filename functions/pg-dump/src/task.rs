//! Dumps that outgrow a Lambda run, handed to pg-dump's ECS Fargate task:
//! which runner makes a database's dump, the task's name for a slot, and the
//! ECS calls that start it exactly once.
//!
//! The rules are pure ([`choose`], [`started_by`], [`client_token`],
//! [`task_payload`]); [`Tasks`] is the edge, over ECS. A slot's task is named
//! by `startedBy` (`lifeboat/<plan>/<source>/<slot>`), started with a
//! `clientToken` derived from that name and the attempt, and recorded beside
//! the dump's key (`<key>.task.json`) with its attempt, so a duplicate
//! delivery replays the same `RunTask` (ECS honours a token for 24 hours per
//! cluster) and a rerun after a stopped task starts the next attempt.

use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::operation::run_task::RunTaskError;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, LaunchType, NetworkConfiguration,
    TaskOverride,
};
use chrono::{DateTime, Utc};
use lifeboat::postgres::database::{Database, Runner};
use lifeboat::{ItemError, Plan, Slot};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// What the runner decision knows of a database's earlier runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Its newest dump before this slot, and how long that took (its manifest's `duration_seconds`).
    pub last_dump: Option<(String, f64)>,
    /// Whether a Lambda run was cut off by the deadline since that dump (this slot's included).
    pub cut: bool,
    /// Whether this slot was handed to a task already (its task record exists).
    pub handed: bool,
    /// The dump keys of the earlier slots of this plan that were handed to
    /// a task and have no dump (a task record, no manifest), newest first:
    /// the tasks the run looks back at ([`previous`]).
    pub unfinished: Vec<String>,
}

/// Where this run makes a database's dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Here, in this run.
    Here,
    /// In the task, for this reason.
    Task(String),
}

/// Chooses the runner of one database's dump. `timeout` is the Lambda run's
/// (none for a run without a deadline, which dumps where it runs); `task`
/// says whether this pg-dump has a task to hand dumps to.
pub fn choose(
    runner: Runner,
    history: &History,
    timeout: Option<Duration>,
    task: bool,
) -> Result<Choice, String> {
    let Some(timeout) = timeout else {
        return Ok(Choice::Here);
    };
    match runner {
        Runner::Lambda => Ok(Choice::Here),
        Runner::Task if task => Ok(Choice::Task("its runner is `task`".into())),
        Runner::Task => Err(
            "is `task`, but this pg-dump has no task to hand dumps to (LIFEBOAT_TASK_CLUSTER is not set: turn on pg_dump.task in Terraform)"
                .into(),
        ),
        Runner::Auto if !task => Ok(Choice::Here),
        Runner::Auto if history.handed => Ok(Choice::Task(
            "the slot was handed to the task already".into(),
        )),
        Runner::Auto if history.cut => Ok(Choice::Task(
            "its last Lambda run was cut off by the deadline".into(),
        )),
        Runner::Auto => match history.last_dump {
            Some((_, took)) if took > timeout.as_secs_f64() / 2.0 => Ok(Choice::Task(format!(
                "its last dump took {took:.0} s, more than half of the function's {:.0} s",
                timeout.as_secs_f64()
            ))),
            _ => Ok(Choice::Here),
        },
    }
}

/// The `startedBy` of a slot's task:
/// `lifeboat/<plan>/<source>/<20261120T0200Z>/<where>`, `<where>` 8
/// hexadecimal digits of the dump's bucket and prefix, so that two
/// deployments sharing a cluster never take each other's task for their own.
/// ECS allows up to 128 of `[A-Za-z0-9_/-]`; plans (31 of `[a-z0-9-]`) and
/// dump names (63 of `[A-Za-z0-9_-]`) keep it within both.
pub fn started_by(plan: &Plan, source: &str, slot: Slot, bucket: &str, prefix: &str) -> String {
    let place = Sha256::digest(format!("{bucket}/{prefix}"));
    let place: String = place[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("lifeboat/{plan}/{source}/{}/{place}", slot.stamp())
}

/// The `clientToken` of the `attempt`th `RunTask` of the task named
/// `started_by`: 64 hexadecimal digits (ECS allows 64 of ASCII 33 to 126).
pub fn client_token(started_by: &str, attempt: u32) -> String {
    let digest = Sha256::digest(format!("{started_by}#{attempt}"));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The payload the task runs with: this one database of the run's, its
/// plan, slot, bucket and prefix. Only the secret's ARN travels, never its value.
pub fn task_payload(plan: &Plan, slot: Slot, db: &Database, bucket: &str, prefix: &str) -> Value {
    json!({
        "plan": plan,
        "scheduled_time": slot,
        "bucket": bucket,
        "prefix": prefix,
        "databases": [db],
    })
}

/// Tokens one dispatch tries before it gives up (each a stopped task's replay or a conflict).
const MAX_TOKENS: u32 = 3;
/// ECS's limit on a `RunTask`'s overrides, JSON included.
const OVERRIDES_LIMIT: usize = 8192;
/// A task record younger than this whose task ECS does not show yet is taken
/// for one that is starting (ECS's reads lag its writes).
const JUST_STARTED: chrono::Duration = chrono::Duration::minutes(10);

/// pg-dump's task, as Terraform configures it (`LIFEBOAT_TASK_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSettings {
    /// The cluster's ARN or name (`LIFEBOAT_TASK_CLUSTER`).
    pub cluster: String,
    /// The task definition's ARN (`LIFEBOAT_TASK_DEFINITION`).
    pub task_definition: String,
    /// The container that runs `lifeboat` (`LIFEBOAT_TASK_CONTAINER`, default `pg-dump`).
    pub container: String,
    /// The task's subnets (`LIFEBOAT_TASK_SUBNETS`, comma-separated).
    pub subnets: Vec<String>,
    /// The task's security groups (`LIFEBOAT_TASK_SECURITY_GROUPS`, comma-separated).
    pub security_groups: Vec<String>,
}

impl TaskSettings {
    /// The task named by `var`, none when `LIFEBOAT_TASK_CLUSTER` is unset;
    /// a cluster without its definition or subnets is an error naming the variable.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let Some(cluster) = var("LIFEBOAT_TASK_CLUSTER") else {
            return Ok(None);
        };
        let needed = |name: &str| {
            var(name).ok_or_else(|| format!("LIFEBOAT_TASK_CLUSTER is set, so {name} must be too"))
        };
        let list = |text: String| -> Vec<String> {
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let subnets = list(needed("LIFEBOAT_TASK_SUBNETS")?);
        if subnets.is_empty() {
            return Err("LIFEBOAT_TASK_SUBNETS names no subnet".into());
        }
        Ok(Some(TaskSettings {
            cluster,
            task_definition: needed("LIFEBOAT_TASK_DEFINITION")?,
            container: var("LIFEBOAT_TASK_CONTAINER").unwrap_or_else(|| "pg-dump".into()),
            subnets,
            security_groups: var("LIFEBOAT_TASK_SECURITY_GROUPS")
                .map(list)
                .unwrap_or_default(),
        }))
    }
}

/// What pg-dump records beside a dump's key when it hands the slot to a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The task's ARN.
    pub task_arn: String,
    /// Its cluster.
    pub cluster: String,
    /// Its `startedBy`.
    pub started_by: String,
    /// Which `RunTask` of the slot started it (1 for the first).
    pub attempt: u32,
    /// When it was handed the dump.
    pub dispatched_at: DateTime<Utc>,
    /// Why the task stopped without its dump, once a later run found it so
    /// and told of it (so that it is told once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// An earlier slot's task, as a later run finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Previous {
    /// Still running.
    Running,
    /// Stopped without its dump, for this reason.
    Stopped(String),
}

/// What a later run makes of `record`'s task, without its dump, as ECS
/// describes it now (`seen`; none if ECS does not know it, which it says of
/// a task stopped more than about an hour ago, or of one so new that its
/// reads lag). None once a run has told of its stop.
pub fn previous(
    record: &TaskRecord,
    seen: Option<&TaskState>,
    now: DateTime<Utc>,
) -> Option<Previous> {
    if record.stopped.is_some() {
        return None;
    }
    Some(match seen.map(|task| &task.stopped) {
        Some(None) => Previous::Running,
        Some(Some(why)) => Previous::Stopped(why.clone()),
        None if now - record.dispatched_at < JUST_STARTED => Previous::Running,
        None => {
            Previous::Stopped("it stopped long enough ago that ECS no longer describes it".into())
        }
    })
}

/// A task as ECS describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    /// Its ARN.
    pub arn: String,
    /// Its `lastStatus` (`PROVISIONING` … `RUNNING` … `STOPPED`).
    pub last_status: String,
    /// Why it stopped, for a stopped task: its stop code and reason, and its container's exit.
    pub stopped: Option<String>,
}

/// How a dispatch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatched {
    /// This run started the task (or replayed the start of one a duplicate delivery started).
    Started(TaskRecord),
    /// A task of this slot is already running: left to it.
    Running(String),
}

/// ECS, as pg-dump uses it.
pub struct Tasks<'a> {
    ecs: &'a aws_sdk_ecs::Client,
    settings: &'a TaskSettings,
}

impl<'a> Tasks<'a> {
    /// The task `settings` names, over `ecs`.
    pub fn new(ecs: &'a aws_sdk_ecs::Client, settings: &'a TaskSettings) -> Self {
        Tasks { ecs, settings }
    }

    /// Describes the tasks `arns` of the cluster; a task ECS no longer knows is left out.
    pub async fn describe(&self, arns: Vec<String>) -> Result<Vec<TaskState>, ItemError> {
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .ecs
            .describe_tasks()
            .cluster(&self.settings.cluster)
            .set_tasks(Some(arns))
            .send()
            .await
            .map_err(|e| ItemError::aws(&e).context("DescribeTasks"))?;
        Ok(out
            .tasks()
            .iter()
            .map(|t| TaskState {
                arn: t.task_arn().unwrap_or_default().to_owned(),
                last_status: t.last_status().unwrap_or_default().to_owned(),
                stopped: (t.last_status() == Some("STOPPED")).then(|| stop_reason(t)),
            })
            .collect())
    }

    /// The tasks of `started_by`, running and stopped. `startedBy` is the
    /// only filter (ECS allows no other beside it), so the stopped tasks it
    /// also lists for an hour or so are told apart by describing them.
    async fn listed(&self, started_by: &str) -> Result<Vec<TaskState>, ItemError> {
        let mut arns = Vec::new();
        let mut pages = self
            .ecs
            .list_tasks()
            .cluster(&self.settings.cluster)
            .started_by(started_by)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ItemError::aws(&e).context("ListTasks"))?;
            arns.extend(page.task_arns().iter().cloned());
        }
        let mut listed = Vec::new();
        // DescribeTasks takes up to 100 tasks at a time.
        for chunk in arns.chunks(100) {
            listed.extend(self.describe(chunk.to_vec()).await?);
        }
        Ok(listed)
    }

    /// Starts the slot's task with `command`, unless one is running. `last`
    /// is the slot's task record, if a run made one: the attempt after a
    /// stopped one's is the next, and a task it names that ECS does not show
    /// yet is one starting.
    pub async fn dispatch(
        &self,
        started_by: &str,
        command: Vec<String>,
        last: Option<&TaskRecord>,
        now: DateTime<Utc>,
    ) -> Result<Dispatched, ItemError> {
        let overrides = TaskOverride::builder()
            .container_overrides(
                ContainerOverride::builder()
                    .name(&self.settings.container)
                    .set_command(Some(command))
                    .build(),
            )
            .build();
        let size = overrides_size(&overrides);
        if size > OVERRIDES_LIMIT {
            return Err(ItemError::new(format!(
                "the task's payload takes {size} characters of ECS's {OVERRIDES_LIMIT} for overrides"
            )));
        }
        let listed = self.listed(started_by).await?;
        if let Some(task) = listed.iter().find(|t| t.stopped.is_none()) {
            return Ok(Dispatched::Running(task.arn.clone()));
        }
        // Tasks of the slot known to have stopped: a token's replay that
        // answers with one of them has started nothing.
        let mut stopped: Vec<String> = listed.into_iter().map(|t| t.arn).collect();
        let mut attempt = 1;
        if let Some(last) = last {
            // ListTasks may not show a task that DescribeTasks already does, or neither yet.
            let seen = self.describe(vec![last.task_arn.clone()]).await?;
            let starting = match seen.first() {
                Some(task) => task.stopped.is_none(),
                None => now - last.dispatched_at < JUST_STARTED,
            };
            if starting {
                return Ok(Dispatched::Running(last.task_arn.clone()));
            }
            stopped.push(last.task_arn.clone());
            attempt = last.attempt + 1;
        }
        let network = NetworkConfiguration::builder()
            .awsvpc_configuration(
                AwsVpcConfiguration::builder()
                    .set_subnets(Some(self.settings.subnets.clone()))
                    .set_security_groups(Some(self.settings.security_groups.clone()))
                    .assign_public_ip(AssignPublicIp::Disabled)
                    .build()
                    .map_err(|e| ItemError::new(e.to_string()))?,
            )
            .build();
        for attempt in attempt..attempt + MAX_TOKENS {
            let out = self
                .ecs
                .run_task()
                .cluster(&self.settings.cluster)
                .task_definition(&self.settings.task_definition)
                .launch_type(LaunchType::Fargate)
                .count(1)
                .started_by(started_by)
                .client_token(client_token(started_by, attempt))
                .network_configuration(network.clone())
                .overrides(overrides.clone())
                .send()
                .await;
            let out = match out {
                Ok(out) => out,
                // The token was used before with other parameters (the payload
                // or the task definition changed since): its task, if it still
                // runs, is the slot's; if it stopped, the next token is fresh.
                Err(e) if e.code() == Some("ConflictException") => {
                    let holders = match e.as_service_error() {
                        Some(RunTaskError::ConflictException(c)) => c.resource_ids().to_vec(),
                        _ => Vec::new(),
                    };
                    if let Some(task) = self
                        .describe(holders)
                        .await?
                        .into_iter()
                        .find(|t| t.stopped.is_none())
                    {
                        return Ok(Dispatched::Running(task.arn));
                    }
                    continue;
                }
                Err(e) => return Err(ItemError::aws(&e).context("RunTask")),
            };
            if let Some(task) = out.tasks().first() {
                let arn = task
                    .task_arn()
                    .ok_or_else(|| ItemError::new("RunTask answered a task without its ARN"))?;
                if stopped.iter().any(|s| s == arn) {
                    // A replay of a start whose task has stopped since.
                    continue;
                }
                return Ok(Dispatched::Started(TaskRecord {
                    task_arn: arn.to_owned(),
                    cluster: self.settings.cluster.clone(),
                    started_by: started_by.to_owned(),
                    attempt,
                    dispatched_at: now,
                    stopped: None,
                }));
            }
            let why = out
                .failures()
                .iter()
                .map(|f| {
                    format!(
                        "{} ({})",
                        f.reason().unwrap_or("no reason"),
                        f.detail().or(f.arn()).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ItemError::new(format!("ECS started no task: {why}")));
        }
        Err(ItemError::new(format!(
            "RunTask answered {MAX_TOKENS} tokens of {started_by} with tasks that had stopped or with conflicts; the slot's task record ({}) may be missing",
            "<key>.task.json"
        )))
    }
}

/// A stopped task's stop code, reason and its containers' exits, in words.
fn stop_reason(task: &aws_sdk_ecs::types::Task) -> String {
    let mut words = vec![
        task.stop_code()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_else(|| "stopped".into()),
    ];
    if let Some(reason) = task.stopped_reason() {
        words.push(reason.to_owned());
    }
    for c in task.containers() {
        match (c.exit_code(), c.reason()) {
            (Some(code), _) => {
                words.push(format!("{} exited {code}", c.name().unwrap_or("container")))
            }
            (None, Some(reason)) => {
                words.push(format!("{}: {reason}", c.name().unwrap_or("container")))
            }
            (None, None) => {}
        }
    }
    words.join(": ")
}

/// The size of `overrides` as ECS counts it: its JSON.
fn overrides_size(overrides: &TaskOverride) -> usize {
    let containers: Vec<Value> = overrides
        .container_overrides()
        .iter()
        .map(|c| json!({"name": c.name(), "command": c.command()}))
        .collect();
    json!({"containerOverrides": containers}).to_string().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot() -> Slot {
        Slot::from_stamp("20261120T0200Z").expect("slot")
    }

    #[test]
    fn the_runner_follows_the_field_the_history_and_the_deadline() {
        let minutes = |m: u64| Some(Duration::from_secs(m * 60));
        let took = |s: f64| History {
            last_dump: Some(("orders/…/orders-nightly-20261119T0200Z.dump".into(), s)),
            cut: false,
            handed: false,
            unfinished: Vec::new(),
        };
        let cut = History {
            cut: true,
            ..took(10.0)
        };
        let none = History::default();
        let task = |c: Result<Choice, String>| matches!(c, Ok(Choice::Task(_)));
        let here = |c: Result<Choice, String>| c == Ok(Choice::Here);
        // A run without a deadline dumps where it runs, whatever the field says.
        for runner in [Runner::Lambda, Runner::Task, Runner::Auto] {
            assert!(here(choose(runner, &cut, None, true)), "{runner:?}");
        }
        assert!(here(choose(Runner::Lambda, &cut, minutes(15), true)));
        assert!(task(choose(Runner::Task, &none, minutes(15), true)));
        let refused = choose(Runner::Task, &none, minutes(15), false).expect_err("no task");
        assert!(refused.contains("LIFEBOAT_TASK_CLUSTER"), "{refused}");
        // auto: more than half the timeout, or a cut, goes to the task …
        assert!(here(choose(Runner::Auto, &none, minutes(15), true)));
        assert!(here(choose(Runner::Auto, &took(450.0), minutes(15), true)));
        let long = choose(Runner::Auto, &took(451.0), minutes(15), true);
        assert_eq!(
            long,
            Ok(Choice::Task(
                "its last dump took 451 s, more than half of the function's 900 s".into()
            ))
        );
        assert!(task(choose(Runner::Auto, &took(200.0), minutes(6), true)));
        assert!(task(choose(Runner::Auto, &cut, minutes(15), true)));
        // A slot a delivery handed over stays the task's, however quick its last dump.
        let handed = History {
            handed: true,
            ..took(10.0)
        };
        assert!(task(choose(Runner::Auto, &handed, minutes(15), true)));
        // … when there is one; without a task, auto stays in Lambda.
        assert!(here(choose(Runner::Auto, &cut, minutes(15), false)));
        assert!(here(choose(Runner::Auto, &took(899.0), minutes(15), false)));
    }

    #[test]
    fn a_later_run_tells_of_an_earlier_slots_stopped_task_once() {
        let now = DateTime::parse_from_rfc3339("2026-11-21T02:00:30Z")
            .expect("time")
            .with_timezone(&Utc);
        let record = |age_minutes: i64, stopped: Option<&str>| TaskRecord {
            task_arn: "arn:aws:ecs:us-east-1:123456789012:task/lifeboat/1".into(),
            cluster: "lifeboat".into(),
            started_by: "lifeboat/nightly/orders/20261120T0200Z/6d1f0c2a".into(),
            attempt: 1,
            dispatched_at: now - chrono::Duration::minutes(age_minutes),
            stopped: stopped.map(str::to_owned),
        };
        let task = |stopped: Option<&str>| TaskState {
            arn: "arn:aws:ecs:us-east-1:123456789012:task/lifeboat/1".into(),
            last_status: if stopped.is_some() {
                "STOPPED"
            } else {
                "RUNNING"
            }
            .into(),
            stopped: stopped.map(str::to_owned),
        };
        let day = 24 * 60;
        let killed = "EssentialContainerExited: pg-dump exited 137";
        let cases: [(TaskRecord, Option<TaskState>, Option<Previous>); 6] = [
            // Still running at the next slot, and so described.
            (record(day, None), Some(task(None)), Some(Previous::Running)),
            // Stopped within the hour ECS still describes it: its reason.
            (
                record(day, None),
                Some(task(Some(killed))),
                Some(Previous::Stopped(killed.into())),
            ),
            // Stopped long ago: ECS no longer knows it.
            (
                record(day, None),
                None,
                Some(Previous::Stopped(
                    "it stopped long enough ago that ECS no longer describes it".into(),
                )),
            ),
            // Just started, and ECS's reads lag: running.
            (record(2, None), None, Some(Previous::Running)),
            // Told of already: nothing more, whatever ECS says.
            (record(day, Some(killed)), None, None),
            (record(day, Some(killed)), Some(task(Some(killed))), None),
        ];
        for (record, seen, expected) in cases {
            assert_eq!(
                previous(&record, seen.as_ref(), now),
                expected,
                "{record:?} {seen:?}"
            );
        }
    }

    #[test]
    fn a_slot_names_its_task_within_ecs_limits() {
        let plan = Plan::new("nightly").expect("plan");
        let name = started_by(&plan, "orders", slot(), "dumps", "pg/");
        assert!(
            name.starts_with("lifeboat/nightly/orders/20261120T0200Z/"),
            "{name}"
        );
        assert_ne!(name, started_by(&plan, "orders", slot(), "dumps", "other/"));
        assert_ne!(name, started_by(&plan, "orders", slot(), "other", "pg/"));
        let longest_plan = Plan::new(&format!("a{}", "-".repeat(30))).expect("31 characters");
        let longest_source = format!("Z{}", "_".repeat(62));
        let name = started_by(&longest_plan, &longest_source, slot(), "b", "");
        assert!(name.len() <= 128, "{} characters", name.len());
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_/-".contains(c)),
            "{name}"
        );
        let token = client_token(&name, 1);
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| (33..=126).contains(&b)));
        // The same slot and attempt give the same token; anything else another.
        assert_eq!(token, client_token(&name, 1));
        let other = started_by(&plan, "orders", slot(), "dumps", "pg/");
        let mut tokens = vec![
            token,
            client_token(&name, 2),
            client_token(&other, 1),
            client_token(&other, 2),
        ];
        tokens.sort();
        tokens.dedup();
        assert_eq!(tokens.len(), 4);
    }

    #[test]
    fn the_task_gets_one_database_and_no_secret() {
        let db: Database = serde_json::from_value(json!({
            "name": "orders", "host": "db.internal", "dbname": "orders",
            "secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:orders-AbCdEf",
            "runner": "task"
        }))
        .expect("entry");
        let plan = Plan::new("nightly").expect("plan");
        let payload = task_payload(&plan, slot(), &db, "dumps", "pg/");
        assert_eq!(
            payload,
            json!({
                "plan": "nightly",
                "scheduled_time": "2026-11-20T02:00:00Z",
                "bucket": "dumps",
                "prefix": "pg/",
                "databases": [{
                    "name": "orders", "host": "db.internal", "port": 5432, "dbname": "orders",
                    "secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:orders-AbCdEf",
                    "format": "custom", "runner": "task"
                }]
            })
        );
        // What the task parses is the entry it was given.
        let back: Database =
            serde_json::from_value(payload["databases"][0].clone()).expect("entry");
        assert_eq!(back, db);
    }

    #[test]
    fn the_task_settings_come_whole_or_not_at_all() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(TaskSettings::from_vars(vars(&[])), Ok(None));
        let whole = TaskSettings::from_vars(vars(&[
            (
                "LIFEBOAT_TASK_CLUSTER",
                "arn:aws:ecs:eu-west-1:1:cluster/lifeboat",
            ),
            (
                "LIFEBOAT_TASK_DEFINITION",
                "arn:aws:ecs:eu-west-1:1:task-definition/pg-dump:3",
            ),
            ("LIFEBOAT_TASK_SUBNETS", "subnet-1, subnet-2"),
            ("LIFEBOAT_TASK_SECURITY_GROUPS", "sg-1"),
        ]))
        .expect("valid")
        .expect("a task");
        assert_eq!(whole.subnets, ["subnet-1", "subnet-2"]);
        assert_eq!(whole.security_groups, ["sg-1"]);
        assert_eq!(whole.container, "pg-dump");
        for (pairs, named) in [
            (
                &[
                    ("LIFEBOAT_TASK_CLUSTER", "c"),
                    ("LIFEBOAT_TASK_SUBNETS", "s"),
                ][..],
                "LIFEBOAT_TASK_DEFINITION",
            ),
            (
                &[
                    ("LIFEBOAT_TASK_CLUSTER", "c"),
                    ("LIFEBOAT_TASK_DEFINITION", "d"),
                ][..],
                "LIFEBOAT_TASK_SUBNETS",
            ),
            (
                &[
                    ("LIFEBOAT_TASK_CLUSTER", "c"),
                    ("LIFEBOAT_TASK_DEFINITION", "d"),
                    ("LIFEBOAT_TASK_SUBNETS", " , "),
                ][..],
                "LIFEBOAT_TASK_SUBNETS",
            ),
        ] {
            let pairs: &'static [(&'static str, &'static str)] = pairs;
            let err = TaskSettings::from_vars(vars(pairs)).expect_err(named);
            assert!(err.contains(named), "{err}");
        }
    }
}
