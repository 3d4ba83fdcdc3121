//! The reliability scenarios of issue 8, shared by the `reliability` test
//! (small sizes, in `make test`) and `examples/reliability.rs` (full size,
//! prints the figures of `docs/reliability.md`).
//!
//! Each scenario starts its own moto server with a fault proxy in front of it.
//! The estate is seeded and the truth read back directly from the emulator;
//! only the functions (and their alerts and metrics) go through the proxy.
//! A scenario returns its figures and the list of broken promises, empty when
//! every promise held: the test asserts it is empty, the example prints it.

#![allow(dead_code)]

use ami_backup::AmiBackup;
use aws_config::SdkConfig;
use aws_sdk_ec2::types::{BlockDeviceMapping, EbsBlockDevice, ResourceType, Tag, TagSpecification};
use chrono::{DateTime, Duration, TimeZone, Utc};
use ebs_snapshot::EbsSnapshot;
use freshness::Freshness;
use lifeboat::Kind;
use lifeboat::aws::catalog::Catalog;
use lifeboat::report::Freshness as State;
use lifeboat::runtime::{Invocation, handle};
use lifeboat::{Error, Report};
use lifeboat_tests::faults::{FaultConfig, FaultProxy, Stats};
use lifeboat_tests::recorded::Recorded;
use lifeboat_tests::{AlertInbox, Emulator};
use prune::Prune;
use rds_snapshot::RdsSnapshot;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// The home region of every scenario.
pub const REGION: &str = "us-east-1";
const BUCKET: &str = "lifeboat-dumps";

/// How big a scenario is.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Deliveries of one payload in the duplicates scenario.
    pub deliveries: usize,
    /// How many of them arrive at once.
    pub wave: usize,
    /// DB instances (and half as many Aurora clusters, at least one).
    pub databases: usize,
    /// Tagged volumes.
    pub volumes: usize,
    /// Instances (two data volumes each), for snapshot sets and AMIs.
    pub instances: usize,
    /// Slots run under faults, one after another.
    pub slots: usize,
    /// Runs of a slot under faults before the scenario gives up on it.
    pub max_reruns: usize,
    /// Days of daily backups per source in the prune scenario.
    pub days: usize,
    /// `max_deletions` of each prune run.
    pub max_deletions: usize,
    /// Freshness runs under faults.
    pub freshness_runs: usize,
    /// Go on (up to four times as long) until at least one run has failed,
    /// so that a small test takes the failure paths whatever the seed.
    pub until_failure: bool,
}

impl Sizes {
    /// What `make test` runs.
    pub fn test() -> Self {
        Sizes {
            deliveries: 100,
            wave: 10,
            databases: 3,
            volumes: 4,
            instances: 2,
            slots: 3,
            max_reruns: 12,
            days: 21,
            max_deletions: 10,
            freshness_runs: 15,
            until_failure: true,
        }
    }

    /// What the figures in `docs/reliability.md` come from.
    pub fn full() -> Self {
        Sizes {
            deliveries: 100,
            wave: 20,
            databases: 20,
            volumes: 40,
            instances: 10,
            slots: 10,
            max_reruns: 10,
            days: 40,
            max_deletions: 100,
            freshness_runs: 100,
            until_failure: false,
        }
    }
}

/// A moto server, a fault proxy in front of it, and the alert inbox.
pub struct World {
    emulator: Emulator,
    /// The proxy the functions talk through.
    pub proxy: FaultProxy,
    /// Straight to the emulator: seeding and reading the truth back.
    pub direct: SdkConfig,
    /// Through the proxy: what the functions use.
    pub faulty: SdkConfig,
    /// The alert topic, read back through SQS (directly).
    pub inbox: AlertInbox,
}

impl World {
    /// A fresh emulator behind a proxy that injects nothing yet.
    pub async fn start(seed: u64) -> Self {
        let emulator = Emulator::start();
        let proxy = FaultProxy::start(&emulator.endpoint, FaultConfig::none(seed)).await;
        let direct = emulator.sdk_config(REGION).await;
        let faulty = proxy.sdk_config(REGION).await;
        let inbox = AlertInbox::create(&direct).await;
        World {
            emulator,
            proxy,
            direct,
            faulty,
            inbox,
        }
    }

    fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.direct)
    }

    fn rds(&self) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.direct)
    }

    /// `function`'s catalog over `aws` (direct or faulty), its calls recorded.
    fn catalog(&self, function: &str, aws: &SdkConfig) -> Catalog {
        Catalog::new(
            aws_sdk_rds::Client::new(aws).recorded(function),
            aws_sdk_ec2::Client::new(aws).recorded(function),
            lifeboat::aws::s3_client(aws).recorded(function),
            Some(BUCKET.to_owned()),
        )
    }
}

/// What one delivery came to.
#[derive(Debug)]
pub enum Outcome {
    /// The run succeeded.
    Ok(Report),
    /// The run finished with failures in its report (and alerted).
    Failed(Report),
    /// The run could not proceed (a listing failed) and alerted; no report.
    Refused(String),
}

impl Outcome {
    fn from(result: Result<Report, Error>) -> Self {
        match result {
            Ok(report) => Outcome::Ok(report),
            Err(Error::RunFailed { report }) => Outcome::Failed(*report),
            Err(e) => Outcome::Refused(lifeboat::aws::describe(&e)),
        }
    }

    fn report(&self) -> Option<&Report> {
        match self {
            Outcome::Ok(r) | Outcome::Failed(r) => Some(r),
            Outcome::Refused(_) => None,
        }
    }

    fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok(_))
    }
}

/// The snapshot functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// `rds-snapshot`: instances and clusters.
    Rds,
    /// `ebs-snapshot`: volumes and instance sets.
    Ebs,
    /// `ami-backup`.
    Ami,
}

impl Subject {
    /// All three.
    pub const ALL: [Subject; 3] = [Subject::Rds, Subject::Ebs, Subject::Ami];

    /// The function's name.
    pub fn name(self) -> &'static str {
        match self {
            Subject::Rds => "rds-snapshot",
            Subject::Ebs => "ebs-snapshot",
            Subject::Ami => "ami-backup",
        }
    }

    /// The payload of `slot`, selecting the seeded estate by its tags.
    fn payload(self, slot: &str) -> Value {
        match self {
            Subject::Rds => json!({
                "plan": "nightly", "scheduled_time": slot,
                "select": { "tags": { "backup": "nightly" } },
                "clusters": { "tags": { "backup": "nightly" } }
            }),
            Subject::Ebs => json!({
                "plan": "nightly", "scheduled_time": slot,
                "select": { "tags": { "backup": "nightly" } },
                "instances": { "tags": { "backup-set": "nightly" } }
            }),
            Subject::Ami => json!({
                "plan": "weekly", "scheduled_time": slot,
                "select": { "tags": { "ami": "weekly" } }
            }),
        }
    }
}

/// A snapshot function built over the proxied configuration.
enum Function {
    Rds(RdsSnapshot),
    Ebs(EbsSnapshot),
    Ami(AmiBackup),
}

impl Function {
    fn new(subject: Subject, world: &World) -> Self {
        let sinks = |function| world.inbox.sinks(function, &world.faulty);
        let ec2 = |function| aws_sdk_ec2::Client::new(&world.faulty).recorded(function);
        match subject {
            Subject::Rds => Function::Rds(RdsSnapshot::new(
                aws_sdk_rds::Client::new(&world.faulty).recorded("rds-snapshot"),
                sinks("rds-snapshot"),
                lifeboat::fanout::FanOut::new(4),
            )),
            Subject::Ebs => Function::Ebs(EbsSnapshot::new(
                ec2("ebs-snapshot"),
                sinks("ebs-snapshot"),
                lifeboat::fanout::FanOut::new(8),
            )),
            Subject::Ami => Function::Ami(AmiBackup::new(
                ec2("ami-backup"),
                sinks("ami-backup"),
                lifeboat::fanout::FanOut::new(8),
            )),
        }
    }

    async fn deliver(&self, payload: Value) -> Outcome {
        let now = Invocation::now();
        Outcome::from(match self {
            Function::Rds(f) => handle(f, payload, now).await,
            Function::Ebs(f) => handle(f, payload, now).await,
            Function::Ami(f) => handle(f, payload, now).await,
        })
    }
}

fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect()
}

fn rds_tag(key: &str, value: &str) -> aws_sdk_rds::types::Tag {
    aws_sdk_rds::types::Tag::builder()
        .key(key)
        .value(value)
        .build()
}

/// The same tags, as RDS takes them.
fn rds_tags(tags: Vec<Tag>) -> Vec<aws_sdk_rds::types::Tag> {
    tags.into_iter()
        .map(|t| {
            aws_sdk_rds::types::Tag::builder()
                .set_key(t.key)
                .set_value(t.value)
                .build()
        })
        .collect()
}

fn spec(resource: ResourceType, pairs: &[(&str, &str)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(tags(pairs)))
        .build()
}

/// The sources a subject's payload selects, seeded directly in the emulator.
async fn seed(subject: Subject, world: &World, sizes: &Sizes) -> BTreeSet<String> {
    let mut sources = BTreeSet::new();
    match subject {
        Subject::Rds => {
            let rds = world.rds();
            for i in 0..sizes.databases {
                let id = format!("db-{i:03}");
                rds.create_db_instance()
                    .db_instance_identifier(&id)
                    .db_instance_class("db.t3.micro")
                    .engine("postgres")
                    .allocated_storage(20)
                    .master_username("admin")
                    .master_user_password("not-a-secret-1")
                    .tags(rds_tag("backup", "nightly"))
                    .send()
                    .await
                    .expect("create instance");
                sources.insert(id);
            }
            for i in 0..(sizes.databases / 2).max(1) {
                let id = format!("aurora-{i:03}");
                rds.create_db_cluster()
                    .db_cluster_identifier(&id)
                    .engine("aurora-postgresql")
                    .master_username("admin")
                    .master_user_password("not-a-secret-1")
                    .tags(rds_tag("backup", "nightly"))
                    .send()
                    .await
                    .expect("create cluster");
                sources.insert(id);
            }
        }
        Subject::Ebs => {
            let ec2 = world.ec2();
            for _ in 0..sizes.volumes {
                let volume = ec2
                    .create_volume()
                    .availability_zone("us-east-1a")
                    .size(1)
                    .tag_specifications(spec(ResourceType::Volume, &[("backup", "nightly")]))
                    .send()
                    .await
                    .expect("create volume");
                sources.insert(volume.volume_id.expect("volume id"));
            }
            sources.extend(run_instances(world, sizes.instances).await);
        }
        Subject::Ami => sources.extend(run_instances(world, sizes.instances).await),
    }
    sources
}

/// Instances with two data volumes each, tagged for snapshot sets and AMIs.
async fn run_instances(world: &World, count: usize) -> Vec<String> {
    if count == 0 {
        return Vec::new();
    }
    let device = |name: &str, size: i32| {
        BlockDeviceMapping::builder()
            .device_name(name)
            .ebs(EbsBlockDevice::builder().volume_size(size).build())
            .build()
    };
    let run = world
        .ec2()
        .run_instances()
        .image_id("ami-12c6146b")
        .min_count(count as i32)
        .max_count(count as i32)
        .block_device_mappings(device("/dev/sdf", 5))
        .block_device_mappings(device("/dev/sdg", 6))
        .tag_specifications(spec(
            ResourceType::Instance,
            &[("backup-set", "nightly"), ("ami", "weekly")],
        ))
        .send()
        .await
        .expect("run instances");
    run.instances()
        .iter()
        .map(|i| i.instance_id().unwrap_or_default().to_owned())
        .collect()
}

/// A backup as the emulator holds it: kind, source, slot, and the volume for EBS sets.
type Key = (Kind, String, String, String);

/// Every managed backup of the subject's plan in the emulator, counted by key.
async fn backups(subject: Subject, world: &World) -> BTreeMap<Key, usize> {
    let mut counts: BTreeMap<Key, usize> = BTreeMap::new();
    match subject {
        Subject::Rds => {
            for kind in [Kind::Rds, Kind::RdsCluster] {
                let listed = lifeboat::aws::rds::list_manual(&world.rds(), kind)
                    .await
                    .expect("list RDS snapshots");
                for s in listed {
                    if let Some(l) = s.label.filter(|l| l.plan.as_str() == "nightly") {
                        *counts
                            .entry((kind, l.source, l.slot.to_string(), String::new()))
                            .or_default() += 1;
                    }
                }
            }
        }
        Subject::Ebs => {
            for s in lifeboat_tests::managed_snapshots(&world.ec2()).await {
                let t = lifeboat::aws::ec2::tag_map(s.tags());
                if t.contains_key("lifeboat:image")
                    || t.get("lifeboat:plan").map(String::as_str) != Some("nightly")
                {
                    continue;
                }
                let (Some(source), Some(slot)) =
                    (t.get("lifeboat:source"), t.get("lifeboat:scheduled-time"))
                else {
                    continue;
                };
                let volume = s.volume_id().unwrap_or_default().to_owned();
                *counts
                    .entry((Kind::Ebs, source.clone(), slot.clone(), volume))
                    .or_default() += 1;
            }
        }
        Subject::Ami => {
            let images = lifeboat::aws::ec2::list_images(
                &world.ec2(),
                Some(&lifeboat::Plan::new("weekly").expect("plan")),
            )
            .await
            .expect("list images");
            for (image, l) in images {
                let failed = image.state().is_some_and(|s| {
                    matches!(s.as_str(), "failed" | "error" | "invalid" | "deregistered")
                });
                if !failed {
                    *counts
                        .entry((Kind::Ami, l.source, l.slot.to_string(), String::new()))
                        .or_default() += 1;
                }
            }
        }
    }
    counts
}

/// Sources with at least one backup of `slot`.
fn backed_up(counts: &BTreeMap<Key, usize>, slot: &str) -> BTreeSet<String> {
    counts
        .keys()
        .filter(|k| k.2 == slot)
        .map(|k| k.1.clone())
        .collect()
}

/// Backups beyond the first per key.
fn duplicates(counts: &BTreeMap<Key, usize>) -> usize {
    counts.values().map(|n| n.saturating_sub(1)).sum()
}

/// What the alerts of one run came to, against what the proxy saw of its `Publish` calls.
struct AlertCheck {
    delivered: usize,
    /// The run failed and every `Publish` attempt was lost before reaching SNS.
    lost: bool,
}

async fn alerts_of_run(
    world: &World,
    outcome: &Outcome,
    before: &Stats,
) -> (AlertCheck, Option<String>) {
    let delivered = world.inbox.drain().await.len();
    let published = world
        .proxy
        .stats()
        .since(before)
        .operation("sns:Publish")
        .reached;
    let failed = !outcome.is_ok();
    let lost = failed && published == 0;
    let broken = if failed && delivered == 0 && published > 0 {
        Some("a failed run's alert reached SNS but not the inbox".to_owned())
    } else if failed && delivered == 0 && !lost {
        Some("a failed run sent no alert".to_owned())
    } else if !failed && delivered > 0 {
        Some(format!("a successful run sent {delivered} alert(s)"))
    } else {
        None
    };
    (AlertCheck { delivered, lost }, broken)
}

/// The figures of the duplicate-delivery scenario for one function.
#[derive(Debug, Clone, Default)]
pub struct DuplicateFigures {
    /// The function.
    pub function: &'static str,
    /// Deliveries of the same payload.
    pub deliveries: usize,
    /// How many at once.
    pub wave: usize,
    /// Sources selected.
    pub sources: usize,
    /// Backups in the emulator afterwards (EBS sets: one per volume).
    pub backups: usize,
    /// Backups beyond one per (plan, source, slot[, volume]).
    pub duplicates: usize,
    /// `created` entries over all reports.
    pub created: usize,
    /// `skipped` entries over all reports.
    pub skipped: usize,
    /// Runs that did not succeed.
    pub failed_runs: usize,
    /// Alerts delivered.
    pub alerts: usize,
    /// HTTP requests the functions made.
    pub requests: usize,
    /// Wall time.
    pub seconds: f64,
}

/// The same payload delivered `sizes.deliveries` times, `sizes.wave` at once.
pub async fn duplicates_scenario(
    subject: Subject,
    sizes: &Sizes,
    seed: u64,
) -> (DuplicateFigures, Vec<String>) {
    let world = World::start(seed).await;
    let sources = seed_estate(subject, &world, sizes).await;
    let function = Function::new(subject, &world);
    let payload = subject.payload("2026-11-20T02:00:00Z");
    let started = Instant::now();
    let mut outcomes = Vec::new();
    let mut delivered = 0;
    while delivered < sizes.deliveries {
        let n = sizes.wave.min(sizes.deliveries - delivered);
        let wave = (0..n).map(|_| function.deliver(payload.clone()));
        outcomes.extend(futures::future::join_all(wave).await);
        delivered += n;
    }
    let seconds = started.elapsed().as_secs_f64();
    let counts = backups(subject, &world).await;
    let alerts = world.inbox.drain().await.len();
    let reports: Vec<&Report> = outcomes.iter().filter_map(Outcome::report).collect();
    let figures = DuplicateFigures {
        function: subject.name(),
        deliveries: sizes.deliveries,
        wave: sizes.wave,
        sources: sources.len(),
        backups: counts.values().sum(),
        duplicates: duplicates(&counts),
        created: reports.iter().map(|r| r.created.len()).sum(),
        skipped: reports.iter().map(|r| r.skipped.len()).sum(),
        failed_runs: outcomes.iter().filter(|o| !o.is_ok()).count(),
        alerts,
        requests: world.proxy.stats().requests,
        seconds,
    };
    let mut broken = Vec::new();
    if figures.duplicates > 0 {
        broken.push(format!(
            "{} duplicate backups: {counts:?}",
            figures.duplicates
        ));
    }
    let missing: Vec<&String> = sources
        .iter()
        .filter(|s| !backed_up(&counts, "2026-11-20T02:00:00Z").contains(*s))
        .collect();
    if !missing.is_empty() {
        broken.push(format!("never backed up: {missing:?}"));
    }
    for o in outcomes.iter().filter(|o| !o.is_ok()) {
        broken.push(format!("a duplicate delivery failed: {o:?}"));
    }
    if alerts > 0 {
        broken.push(format!("{alerts} alerts for duplicate deliveries"));
    }
    (figures, broken)
}

async fn seed_estate(subject: Subject, world: &World, sizes: &Sizes) -> BTreeSet<String> {
    seed(subject, world, sizes).await
}

/// The figures of the 20 %-faults scenario for one function.
#[derive(Debug, Clone, Default)]
pub struct FaultFigures {
    /// The function.
    pub function: &'static str,
    /// Slots run.
    pub slots: usize,
    /// Selected sources per slot.
    pub sources: usize,
    /// Runs in all (first runs and reruns).
    pub runs: usize,
    /// First runs of a slot that succeeded outright.
    pub first_runs_ok: usize,
    /// Sources backed up by the first run of their slot.
    pub first_run_backed_up: usize,
    /// Sources the first run reported `failed`.
    pub first_run_failed: usize,
    /// First runs that could not proceed at all (a listing failed), alerted.
    pub first_runs_refused: usize,
    /// The most runs a slot needed to be complete.
    pub most_runs_per_slot: usize,
    /// Alerts delivered for failed runs.
    pub alerts: usize,
    /// Failed runs whose every `Publish` failed too (the `Errors` alarm still fires).
    pub alerts_lost: usize,
    /// Backups beyond one per key at the end.
    pub duplicates: usize,
    /// What the proxy injected and counted.
    pub proxy: String,
    /// Faults injected.
    pub faults: usize,
    /// Of them, after the emulator did the work.
    pub faults_after: usize,
    /// Wall time.
    pub seconds: f64,
}

/// Slots run one after another under `faults`, each rerun until complete.
pub async fn faults_scenario(
    subject: Subject,
    sizes: &Sizes,
    faults: FaultConfig,
) -> (FaultFigures, Vec<String>) {
    let world = World::start(faults.seed).await;
    let sources = seed_estate(subject, &world, sizes).await;
    let function = Function::new(subject, &world);
    world.proxy.set_config(faults);
    let started = Instant::now();
    let mut figures = FaultFigures {
        function: subject.name(),
        slots: sizes.slots,
        sources: sources.len(),
        ..FaultFigures::default()
    };
    let mut broken = Vec::new();
    let first = Utc
        .with_ymd_and_hms(2026, 11, 1, 2, 0, 0)
        .single()
        .expect("time");
    let mut s = 0;
    // Every slot so far done by one run each: nothing has failed yet.
    while s < sizes.slots || (sizes.until_failure && figures.runs == s && s < sizes.slots * 4) {
        let slot = (first + Duration::days(s as i64))
            .format("%Y-%m-%dT%H:%M:00Z")
            .to_string();
        s += 1;
        figures.slots = s;
        let mut runs = 0;
        loop {
            runs += 1;
            let before = world.proxy.stats();
            let outcome = function.deliver(subject.payload(&slot)).await;
            figures.runs += 1;
            let counts = backups(subject, &world).await;
            let done = backed_up(&counts, &slot);
            let (alerts, alert_broken) = alerts_of_run(&world, &outcome, &before).await;
            figures.alerts += alerts.delivered;
            figures.alerts_lost += usize::from(alerts.lost);
            broken.extend(alert_broken.map(|b| format!("{slot} run {runs}: {b}")));
            if let Some(report) = outcome.report() {
                let failed: BTreeSet<&str> =
                    report.failed.iter().map(|f| f.source.as_str()).collect();
                for source in &sources {
                    if !done.contains(source) && !failed.contains(source.as_str()) {
                        broken.push(format!("{slot} run {runs}: {source} neither backed up nor reported failed ({outcome:?})"));
                    }
                }
                for c in &report.created {
                    if !done.contains(&c.source) {
                        broken.push(format!(
                            "{slot} run {runs}: reported created but absent: {c:?}"
                        ));
                    }
                }
            }
            if runs == 1 {
                figures.first_runs_ok += usize::from(outcome.is_ok());
                figures.first_runs_refused += usize::from(matches!(outcome, Outcome::Refused(_)));
                figures.first_run_backed_up += sources.iter().filter(|s| done.contains(*s)).count();
                figures.first_run_failed += outcome.report().map_or(0, |r| r.failed.len());
            }
            let complete = sources.iter().all(|s| done.contains(s));
            if outcome.is_ok() && complete {
                break;
            }
            if runs >= sizes.max_reruns {
                broken.push(format!(
                    "{slot}: not complete after {runs} runs under faults"
                ));
                break;
            }
        }
        figures.most_runs_per_slot = figures.most_runs_per_slot.max(runs);
    }
    figures.seconds = started.elapsed().as_secs_f64();
    let stats = world.proxy.stats();
    figures.proxy = stats.to_string();
    figures.faults = stats.faults();
    figures.faults_after = stats.faults_after();
    // Without faults, a last delivery of every slot finds nothing left to do.
    world.proxy.set_config(FaultConfig::none(faults.seed));
    for s in 0..figures.slots {
        let slot = (first + Duration::days(s as i64))
            .format("%Y-%m-%dT%H:%M:00Z")
            .to_string();
        match function.deliver(subject.payload(&slot)).await {
            Outcome::Ok(r) if r.created.is_empty() => {}
            other => broken.push(format!(
                "{slot}: a fault-free rerun still had work or failed: {other:?}"
            )),
        }
    }
    let counts = backups(subject, &world).await;
    figures.duplicates = duplicates(&counts);
    if figures.duplicates > 0 {
        let dup: Vec<&Key> = counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, _)| k)
            .collect();
        broken.push(format!("{} duplicate backups: {dup:?}", figures.duplicates));
    }
    (figures, broken)
}

/// A managed backup of the prune scenario: kind, source, slot.
type BackupId = (Kind, String, String);

/// The figures of the prune-under-faults scenario.
#[derive(Debug, Clone, Default)]
pub struct PruneFigures {
    /// Managed backups of the plan before.
    pub backups: usize,
    /// What the policy deletes (a fault-free dry run).
    pub planned: usize,
    /// `max_deletions` per run.
    pub max_deletions: usize,
    /// Runs until the plan was carried out.
    pub runs: usize,
    /// Runs that succeeded.
    pub runs_ok: usize,
    /// Deletions reported `failed` (and retried by a later run).
    pub failed_deletions: usize,
    /// Runs that could not proceed at all.
    pub runs_refused: usize,
    /// Backups deleted that were not in the plan.
    pub outside_plan: usize,
    /// Runs whose report did not match what was really gone.
    pub report_mismatches: usize,
    /// Failed deletions that said they could not check whether the backup was gone.
    pub unchecked: usize,
    /// The most deleted by one run.
    pub most_deleted_in_a_run: usize,
    /// Backups of other plans and unmanaged snapshots that went missing.
    pub bystanders_lost: usize,
    /// What the proxy injected and counted.
    pub proxy: String,
    /// Faults injected.
    pub faults: usize,
    /// Of them, after the emulator did the work.
    pub faults_after: usize,
    /// Wall time.
    pub seconds: f64,
}

/// Everything the prune scenario watches: the plan's backups, and the bystanders.
async fn prune_truth(world: &World) -> (BTreeSet<BackupId>, usize) {
    let mut ours = BTreeSet::new();
    let mut bystanders = 0;
    let ec2 = world.ec2();
    let snapshots = ec2
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .expect("snapshots")
        .snapshots
        .unwrap_or_default();
    for s in snapshots {
        let t = lifeboat::aws::ec2::tag_map(s.tags());
        match (
            t.get("managed-by").map(String::as_str),
            t.get("lifeboat:plan").map(String::as_str),
        ) {
            (Some("lifeboat"), Some("nightly")) if !t.contains_key("lifeboat:image") => {
                ours.insert((
                    Kind::Ebs,
                    t["lifeboat:source"].clone(),
                    t["lifeboat:scheduled-time"].clone(),
                ));
            }
            (Some("lifeboat"), Some("nightly")) => {}
            _ => bystanders += 1,
        }
    }
    for (image, l) in lifeboat::aws::ec2::list_images(&ec2, None)
        .await
        .expect("images")
    {
        if l.plan.as_str() == "nightly" && image.state().is_none_or(|s| s.as_str() == "available") {
            ours.insert((Kind::Ami, l.source, l.slot.to_string()));
        } else {
            bystanders += 1;
        }
    }
    for s in lifeboat::aws::rds::list_manual(&world.rds(), Kind::Rds)
        .await
        .expect("rds")
    {
        match s.label {
            Some(l) if l.plan.as_str() == "nightly" => {
                ours.insert((Kind::Rds, l.source, l.slot.to_string()));
            }
            _ => bystanders += 1,
        }
    }
    (ours, bystanders)
}

/// The AMI backups whose image is gone but some of whose snapshots are left
/// (a deregistration whose snapshot deletions failed), by kind, source and slot.
async fn leftovers(world: &World) -> BTreeSet<BackupId> {
    let ec2 = world.ec2();
    let images: BTreeSet<String> = ec2
        .describe_images()
        .owners("self")
        .send()
        .await
        .expect("images")
        .images
        .unwrap_or_default()
        .into_iter()
        // A snapshot names its image by id or, tagged by CreateImage, by name.
        .flat_map(|i| [i.image_id, i.name].into_iter().flatten())
        .collect();
    lifeboat_tests::managed_snapshots(&ec2)
        .await
        .iter()
        .map(|s| lifeboat::aws::ec2::tag_map(s.tags()))
        .filter(|t| t.get("lifeboat:image").is_some_and(|i| !images.contains(i)))
        .map(|t| {
            (
                Kind::Ami,
                t["lifeboat:source"].clone(),
                t["lifeboat:scheduled-time"].clone(),
            )
        })
        .collect()
}

/// Daily backups of RDS instances, volumes and an instance's AMIs, with
/// bystanders; prune runs under `faults` until its plan is carried out.
pub async fn prune_scenario(sizes: &Sizes, faults: FaultConfig) -> (PruneFigures, Vec<String>) {
    let world = World::start(faults.seed).await;
    let last = Utc
        .with_ymd_and_hms(2026, 11, 20, 2, 0, 0)
        .single()
        .expect("time");
    let slots: Vec<String> = (0..sizes.days)
        .map(|d| {
            (last - Duration::days(d as i64))
                .format("%Y-%m-%dT%H:%M:00Z")
                .to_string()
        })
        .collect();
    let label = |source: &str, slot: &str, plan: &str| {
        tags(&[
            ("managed-by", "lifeboat"),
            ("lifeboat:plan", plan),
            ("lifeboat:source", source),
            ("lifeboat:scheduled-time", slot),
        ])
    };
    let ec2 = world.ec2();
    let rds = world.rds();
    for _ in 0..sizes.volumes.div_ceil(2) {
        let volume = ec2
            .create_volume()
            .availability_zone("us-east-1a")
            .size(1)
            .send()
            .await
            .expect("volume")
            .volume_id
            .expect("id");
        for slot in &slots {
            ec2.create_snapshot()
                .volume_id(&volume)
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::Snapshot)
                        .set_tags(Some(label(&volume, slot, "nightly")))
                        .build(),
                )
                .send()
                .await
                .expect("managed snapshot");
        }
        // Bystanders: someone else's snapshot, and another plan's.
        ec2.create_snapshot()
            .volume_id(&volume)
            .description("someone else's")
            .send()
            .await
            .expect("unmanaged");
        ec2.create_snapshot()
            .volume_id(&volume)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Snapshot)
                    .set_tags(Some(label(&volume, &slots[slots.len() - 1], "monthly")))
                    .build(),
            )
            .send()
            .await
            .expect("other plan");
    }
    for d in 0..sizes.databases.div_ceil(2) {
        let id = format!("db-{d:03}");
        rds.create_db_instance()
            .db_instance_identifier(&id)
            .db_instance_class("db.t3.micro")
            .engine("postgres")
            .allocated_storage(20)
            .master_username("admin")
            .master_user_password("not-a-secret-1")
            .send()
            .await
            .expect("instance");
        for slot in &slots {
            let snapshot = format!(
                "{id}-nightly-{}",
                slot.replace([':', '-'], "").to_lowercase()
            );
            rds.create_db_snapshot()
                .db_instance_identifier(&id)
                .db_snapshot_identifier(snapshot)
                .set_tags(Some(rds_tags(label(&id, slot, "nightly"))))
                .send()
                .await
                .expect("managed RDS snapshot");
        }
        rds.create_db_snapshot()
            .db_instance_identifier(&id)
            .db_snapshot_identifier(format!("{id}-by-hand"))
            .send()
            .await
            .expect("unmanaged RDS snapshot");
    }
    let instance = run_instances(&world, 1).await.remove(0);
    for slot in slots.iter().take(sizes.days.min(15)) {
        ec2.create_image()
            .instance_id(&instance)
            .name(format!(
                "lifeboat-nightly-{instance}-{}",
                slot.replace([':', '-'], "")
            ))
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Image)
                    .set_tags(Some(label(&instance, slot, "nightly")))
                    .build(),
            )
            .send()
            .await
            .expect("image");
    }
    let catalog_direct = world.catalog("prune", &world.direct);
    // AMI snapshots carry Lifeboat's tags, as ami-backup leaves them.
    for (image, l) in
        lifeboat::aws::ec2::list_images(&ec2, Some(&lifeboat::Plan::new("nightly").expect("plan")))
            .await
            .expect("images")
    {
        let ids = lifeboat::aws::ec2::image_snapshot_ids(&image);
        if ids.is_empty() {
            continue;
        }
        let mut t = l.tags();
        let image_id = image.image_id().unwrap_or_default().to_owned();
        t.push(("lifeboat:image", image_id));
        ec2.create_tags()
            .set_resources(Some(ids))
            .set_tags(Some(lifeboat::aws::ec2::ec2_tags(&t)))
            .send()
            .await
            .expect("tag image snapshots");
    }
    let policy = json!({ "plan": "nightly", "kinds": ["rds", "ebs", "ami"], "keep": { "daily": 7, "weekly": 2 }, "max_deletions": sizes.max_deletions });
    let mut dry_payload = policy.clone();
    dry_payload["dry_run"] = json!(true);
    dry_payload["max_deletions"] = json!(100_000);
    let dry = Prune::new(
        catalog_direct,
        world.inbox.sinks("prune", &world.direct),
        lifeboat::fanout::FanOut::DEFAULT,
    );
    let plan = handle(&dry, dry_payload, Invocation::now())
        .await
        .expect("fault-free dry run");
    let planned: BTreeSet<BackupId> = plan
        .deleted
        .iter()
        .map(|d| (d.kind, d.source.clone(), d.scheduled_time.to_string()))
        .collect();
    let kept: BTreeSet<BackupId> = plan
        .kept
        .iter()
        .map(|k| (k.kind, k.source.clone(), k.scheduled_time.to_string()))
        .collect();
    let (start, bystanders) = prune_truth(&world).await;
    let mut figures = PruneFigures {
        backups: start.len(),
        planned: planned.len(),
        max_deletions: sizes.max_deletions,
        ..PruneFigures::default()
    };
    let mut broken = Vec::new();
    if planned.is_empty() || planned.len() + kept.len() != start.len() {
        broken.push(format!(
            "the dry run does not cover the estate: {} planned + {} kept != {}",
            planned.len(),
            kept.len(),
            start.len()
        ));
    }

    let prune = Prune::new(
        world.catalog("prune", &world.faulty),
        world.inbox.sinks("prune", &world.faulty),
        lifeboat::fanout::FanOut::DEFAULT,
    );
    world.proxy.set_config(faults);
    let started = Instant::now();
    let max_runs = planned.len().div_ceil(sizes.max_deletions.max(1)) * 3 + 10;
    let mut before = start.clone();
    let mut left_before = leftovers(&world).await;
    loop {
        figures.runs += 1;
        let stats = world.proxy.stats();
        let outcome = Outcome::from(handle(&prune, policy.clone(), Invocation::now()).await);
        let (after, left) = prune_truth(&world).await;
        let left_after = leftovers(&world).await;
        // The rest of a backup deleted by an earlier run is reported when it goes.
        let finished: BTreeSet<BackupId> = left_before.difference(&left_after).cloned().collect();
        let (_, alert_broken) = alerts_of_run(&world, &outcome, &stats).await;
        let _ = alert_broken;
        let gone: BTreeSet<BackupId> = before.difference(&after).cloned().collect();
        let outside: Vec<&BackupId> = gone.difference(&planned).collect();
        figures.outside_plan += outside.len();
        if !outside.is_empty() {
            broken.push(format!(
                "run {}: deleted outside the plan: {outside:?}",
                figures.runs
            ));
        }
        figures.most_deleted_in_a_run = figures.most_deleted_in_a_run.max(gone.len());
        if gone.len() > sizes.max_deletions {
            broken.push(format!(
                "run {}: {} deleted, over max_deletions {}",
                figures.runs,
                gone.len(),
                sizes.max_deletions
            ));
        }
        if left != bystanders {
            figures.bystanders_lost += bystanders.saturating_sub(left);
            broken.push(format!(
                "run {}: bystanders {bystanders} -> {left}",
                figures.runs
            ));
        }
        match &outcome {
            Outcome::Refused(_) => {
                figures.runs_refused += 1;
                if !gone.is_empty() {
                    figures.report_mismatches += 1;
                    broken.push(format!(
                        "run {}: refused, yet {} gone",
                        figures.runs,
                        gone.len()
                    ));
                }
            }
            Outcome::Ok(report) | Outcome::Failed(report) => {
                figures.runs_ok += usize::from(outcome.is_ok());
                figures.failed_deletions += report.failed.len();
                let reported: BTreeSet<BackupId> = report
                    .deleted
                    .iter()
                    .map(|d| (d.kind, d.source.clone(), d.scheduled_time.to_string()))
                    .collect();
                let gone: BTreeSet<BackupId> = gone.union(&finished).cloned().collect();
                // A failure that says it could not check whether the backup is
                // gone is honest either way; anything else must match exactly.
                let unchecked: BTreeSet<(Kind, &str)> = report
                    .failed
                    .iter()
                    .filter(|f| f.error.ends_with(lifeboat::aws::catalog::UNCHECKED))
                    .map(|f| (f.kind, f.source.as_str()))
                    .collect();
                let silent: Vec<&BackupId> = gone
                    .difference(&reported)
                    .filter(|(kind, source, _)| !unchecked.contains(&(*kind, source.as_str())))
                    .collect();
                figures.unchecked += unchecked.len();
                if reported.difference(&gone).next().is_some() || !silent.is_empty() {
                    figures.report_mismatches += 1;
                    broken.push(format!(
                        "run {}: report does not match what is gone: reported but still there {:?}; gone but not reported {:?}; failed {:?}",
                        figures.runs,
                        reported.difference(&gone).collect::<Vec<_>>(),
                        gone.difference(&reported).collect::<Vec<_>>(),
                        report.failed
                    ));
                }
            }
        }
        before = after;
        left_before = left_after;
        if planned.iter().all(|p| !before.contains(p)) && left_before.is_empty() && outcome.is_ok()
        {
            break;
        }
        if figures.runs >= max_runs {
            broken.push(format!(
                "the plan was not carried out after {} runs",
                figures.runs
            ));
            break;
        }
    }
    figures.seconds = started.elapsed().as_secs_f64();
    let stats = world.proxy.stats();
    figures.proxy = stats.to_string();
    figures.faults = stats.faults();
    figures.faults_after = stats.faults_after();
    if before != kept {
        broken.push(format!(
            "what is left is not what the policy keeps: extra {:?}, missing {:?}",
            before.difference(&kept).collect::<Vec<_>>(),
            kept.difference(&before).collect::<Vec<_>>()
        ));
    }
    if !left_before.is_empty() {
        broken.push(format!(
            "snapshots of deregistered images left behind: {left_before:?}"
        ));
    }
    (figures, broken)
}

/// The figures of the freshness-under-faults scenario.
#[derive(Debug, Clone, Default)]
pub struct FreshnessFigures {
    /// Checked resources.
    pub resources: usize,
    /// Runs under faults.
    pub runs: usize,
    /// Runs that reported (all of whose checks matched the fault-free truth).
    pub runs_reported: usize,
    /// Runs that could not check and failed, alerted.
    pub runs_failed: usize,
    /// Checks reported `ok` that were not fresh in truth.
    pub false_fresh: usize,
    /// Checks whose state differed from the fault-free truth.
    pub wrong_states: usize,
    /// Alerts delivered.
    pub alerts: usize,
    /// What the proxy injected and counted.
    pub proxy: String,
    /// Faults injected.
    pub faults: usize,
    /// Of them, after the emulator did the work.
    pub faults_after: usize,
    /// Wall time.
    pub seconds: f64,
}

/// Fresh, stale and unprotected volumes and databases, checked again and
/// again under `faults` and compared with a fault-free check.
pub async fn freshness_scenario(
    sizes: &Sizes,
    faults: FaultConfig,
) -> (FreshnessFigures, Vec<String>) {
    let world = World::start(faults.seed).await;
    let now = Utc::now();
    let slot = |hours: i64| {
        (now - Duration::hours(hours))
            .format("%Y-%m-%dT%H:%M:00Z")
            .to_string()
    };
    let ec2 = world.ec2();
    let rds = world.rds();
    let label = |source: &str, time: &str| {
        tags(&[
            ("managed-by", "lifeboat"),
            ("lifeboat:plan", "nightly"),
            ("lifeboat:source", source),
            ("lifeboat:scheduled-time", time),
        ])
    };
    for i in 0..sizes.volumes {
        let volume = ec2
            .create_volume()
            .availability_zone("us-east-1a")
            .size(1)
            .tag_specifications(spec(ResourceType::Volume, &[("backup", "nightly")]))
            .send()
            .await
            .expect("volume")
            .volume_id
            .expect("id");
        // Fresh, stale, unprotected in turn.
        let age = [Some(2), Some(30), None][i % 3];
        if let Some(hours) = age {
            ec2.create_snapshot()
                .volume_id(&volume)
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::Snapshot)
                        .set_tags(Some(label(&volume, &slot(hours))))
                        .build(),
                )
                .send()
                .await
                .expect("snapshot");
        }
    }
    for i in 0..sizes.databases {
        let id = format!("db-{i:03}");
        rds.create_db_instance()
            .db_instance_identifier(&id)
            .db_instance_class("db.t3.micro")
            .engine("postgres")
            .allocated_storage(20)
            .master_username("admin")
            .master_user_password("not-a-secret-1")
            .tags(rds_tag("backup", "nightly"))
            .send()
            .await
            .expect("instance");
        let age = [Some(2), Some(30), None][i % 3];
        if let Some(hours) = age {
            rds.create_db_snapshot()
                .db_instance_identifier(&id)
                .db_snapshot_identifier(format!("snap-{id}"))
                .set_tags(Some(rds_tags(label(&id, &slot(hours)))))
                .send()
                .await
                .expect("RDS snapshot");
        }
    }
    let payload = json!({ "plan": "nightly", "checks": [
        { "kind": "ebs", "select": { "tags": { "backup": "nightly" } }, "max_age_hours": 26 },
        { "kind": "rds", "select": { "tags": { "backup": "nightly" } }, "max_age_hours": 26 }
    ]});
    let truth_function = Freshness::new(
        world.catalog("freshness", &world.direct),
        world.rds().recorded("freshness"),
        world.ec2().recorded("freshness"),
        world.inbox.sinks("freshness", &world.direct),
        lifeboat::fanout::FanOut::DEFAULT,
    );
    let truth = handle(&truth_function, payload.clone(), Invocation::now())
        .await
        .expect("fault-free check");
    let truth: BTreeMap<(Kind, String), State> = truth
        .checks
        .iter()
        .map(|c| ((c.kind, c.source.clone()), c.state))
        .collect();
    world.inbox.drain().await;
    let mut figures = FreshnessFigures {
        resources: truth.len(),
        ..FreshnessFigures::default()
    };
    let mut broken = Vec::new();
    if truth.len() != sizes.volumes + sizes.databases
        || !truth.values().any(|s| *s == State::Ok)
        || !truth.values().any(|s| *s != State::Ok)
    {
        broken.push(format!(
            "the fault-free check does not see the estate: {truth:?}"
        ));
    }
    let function = Freshness::new(
        world.catalog("freshness", &world.faulty),
        aws_sdk_rds::Client::new(&world.faulty).recorded("freshness"),
        aws_sdk_ec2::Client::new(&world.faulty).recorded("freshness"),
        world.inbox.sinks("freshness", &world.faulty),
        lifeboat::fanout::FanOut::DEFAULT,
    );
    world.proxy.set_config(faults);
    let started = Instant::now();
    let mut run = 0;
    while run < sizes.freshness_runs
        || (sizes.until_failure && figures.runs_failed == 0 && run < sizes.freshness_runs * 4)
    {
        run += 1;
        figures.runs += 1;
        let stats = world.proxy.stats();
        let outcome = Outcome::from(handle(&function, payload.clone(), Invocation::now()).await);
        let alerts = world.inbox.drain().await;
        figures.alerts += alerts.len();
        let published = world
            .proxy
            .stats()
            .since(&stats)
            .operation("sns:Publish")
            .reached;
        match &outcome {
            Outcome::Ok(report) | Outcome::Failed(report) => {
                figures.runs_reported += 1;
                let seen: BTreeMap<(Kind, String), State> = report
                    .checks
                    .iter()
                    .map(|c| ((c.kind, c.source.clone()), c.state))
                    .collect();
                for (key, state) in &seen {
                    let real = truth.get(key);
                    if *state == State::Ok && real != Some(&State::Ok) {
                        figures.false_fresh += 1;
                    }
                    if real != Some(state) {
                        figures.wrong_states += 1;
                    }
                }
                if seen != truth {
                    broken.push(format!("run {run}: checks differ from the truth: {seen:?}"));
                }
                let findings = seen.values().any(|s| *s != State::Ok);
                if findings && alerts.is_empty() && published > 0 {
                    broken.push(format!(
                        "run {run}: findings reached SNS but no alert arrived"
                    ));
                }
            }
            Outcome::Refused(_) => {
                figures.runs_failed += 1;
                if alerts.is_empty() && published > 0 {
                    broken.push(format!(
                        "run {run}: a failed check's alert reached SNS but not the inbox"
                    ));
                }
            }
        }
    }
    figures.seconds = started.elapsed().as_secs_f64();
    let stats = world.proxy.stats();
    figures.proxy = stats.to_string();
    figures.faults = stats.faults();
    figures.faults_after = stats.faults_after();
    if figures.false_fresh > 0 {
        broken.push(format!(
            "{} checks reported fresh that were not",
            figures.false_fresh
        ));
    }
    (figures, broken)
}

/// When the scenario's slots lie, for payloads.
pub fn slot_of(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:00Z").to_string()
}
