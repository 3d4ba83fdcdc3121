//! Reliability at test size (issue 8): duplicate deliveries, 20 % injected
//! faults on every AWS call, prune and freshness under faults, hostile
//! payloads. Each scenario runs against its own moto server behind the fault
//! proxy; `cargo run -p lifeboat-tests --example reliability` runs the same
//! scenarios at full size and prints the figures of `docs/reliability.md`.
//!
//! `LIFEBOAT_SEED` changes the seed (default 7); the figures print with `--nocapture`.

mod fuzz;
mod scenarios;

use lifeboat::runtime::{Invocation, handle};
use lifeboat_tests::faults::FaultConfig;
use lifeboat_tests::recorded::Recorded;
use scenarios::{Sizes, Subject, World};
use serde_json::{Value, json};

fn seed() -> u64 {
    std::env::var("LIFEBOAT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
}

fn assert_held(scenario: &str, figures: &dyn std::fmt::Debug, broken: &[String]) {
    println!("{scenario}: {figures:#?}");
    assert!(
        broken.is_empty(),
        "{scenario} (seed {}): {} broken promise(s):\n{}",
        seed(),
        broken.len(),
        broken.join("\n")
    );
}

async fn duplicates(subject: Subject) {
    let (figures, broken) = scenarios::duplicates_scenario(subject, &Sizes::test(), seed()).await;
    assert_eq!(figures.deliveries, 100);
    assert!(figures.sources > 0 && figures.backups >= figures.sources);
    assert_held("duplicate delivery", &figures, &broken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_snapshot_delivered_100_times_makes_one_snapshot_per_source() {
    duplicates(Subject::Rds).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ebs_snapshot_delivered_100_times_makes_one_snapshot_per_volume() {
    duplicates(Subject::Ebs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ami_backup_delivered_100_times_makes_one_image_per_instance() {
    duplicates(Subject::Ami).await;
}

/// 20 % of requests faulted; at 40 % (a storm) runs fail outright, which
/// proves that the failure paths (report, alert, rerun) were taken.
async fn faults(subject: Subject, rate: f64) {
    let config = FaultConfig::mixed(seed(), rate);
    let (figures, broken) = scenarios::faults_scenario(subject, &Sizes::test(), config).await;
    // The faults did happen, or the scenario proves nothing.
    assert!(
        figures.faults > 0 && figures.faults_after > 0,
        "{figures:?}"
    );
    if rate >= 0.4 {
        assert!(figures.runs > figures.slots, "no run failed: {figures:?}");
        assert!(figures.alerts + figures.alerts_lost > 0, "{figures:?}");
    }
    assert_held(&format!("{:.0} % faults", rate * 100.0), &figures, &broken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_snapshot_under_20_percent_faults_backs_up_or_alerts_and_reruns_finish() {
    faults(Subject::Rds, 0.2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ebs_snapshot_under_20_percent_faults_backs_up_or_alerts_and_reruns_finish() {
    faults(Subject::Ebs, 0.2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ami_backup_under_20_percent_faults_backs_up_or_alerts_and_reruns_finish() {
    faults(Subject::Ami, 0.2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_snapshot_in_a_40_percent_storm_fails_loudly_and_reruns_finish() {
    faults(Subject::Rds, 0.4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ebs_snapshot_in_a_40_percent_storm_fails_loudly_and_reruns_finish() {
    faults(Subject::Ebs, 0.4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ami_backup_in_a_40_percent_storm_fails_loudly_and_reruns_finish() {
    faults(Subject::Ami, 0.4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_under_faults_deletes_only_its_plan_within_the_cap_and_reports_the_truth() {
    let config = FaultConfig::mixed(seed(), 0.2);
    let (figures, broken) = scenarios::prune_scenario(&Sizes::test(), config).await;
    assert!(figures.planned > figures.max_deletions, "{figures:?}");
    assert!(figures.faults_after > 0, "{figures:?}");
    assert_held("prune under faults", &figures, &broken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_in_a_40_percent_storm_still_deletes_only_its_plan_and_reports_the_truth() {
    let config = FaultConfig::mixed(seed(), 0.4);
    let (figures, broken) = scenarios::prune_scenario(&Sizes::test(), config).await;
    // Deletions whose first attempt AWS did and whose response was lost.
    assert!(figures.faults_after > 0, "{figures:?}");
    assert_held("prune in a storm", &figures, &broken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_under_faults_never_reports_a_check_that_could_not_run_as_fresh() {
    let config = FaultConfig::mixed(seed(), 0.2);
    let (figures, broken) = scenarios::freshness_scenario(&Sizes::test(), config).await;
    assert!(
        figures.runs_reported > 0 && figures.runs_failed > 0,
        "{figures:?}"
    );
    assert_held("freshness under faults", &figures, &broken);
}

/// Payloads that every function must refuse: not an object, a bad plan, an
/// unknown field, a slot in the future, a wrong type, an empty selection.
fn invalid_payloads(valid: &Value) -> Vec<Value> {
    let with = |key: &str, value: Value| {
        let mut p = valid.clone();
        p[key] = value;
        p
    };
    vec![
        json!([]),
        json!("nightly"),
        with("plan", json!("Nightly Backups")),
        with("plan", json!(7)),
        with("surprise", json!(true)),
        with("scheduled_time", json!("2999-01-01T00:00:00Z")),
        with("scheduled_time", json!("yesterday")),
        with("dry_run", json!("no")),
        {
            let mut p = valid.clone();
            p.as_object_mut().expect("object").remove("plan");
            p
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_payload_makes_no_aws_call() {
    let world = World::start(seed()).await;
    let aws = &world.faulty;
    let sinks = |function| world.inbox.sinks(function, aws);
    let catalog = |function| {
        lifeboat::aws::catalog::Catalog::new(
            aws_sdk_rds::Client::new(aws).recorded(function),
            aws_sdk_ec2::Client::new(aws).recorded(function),
            lifeboat::aws::s3_client(aws).recorded(function),
            Some("lifeboat-dumps".to_owned()),
        )
    };
    let rds = rds_snapshot::RdsSnapshot::new(
        aws_sdk_rds::Client::new(aws).recorded("rds-snapshot"),
        sinks("rds-snapshot"),
        lifeboat::fanout::FanOut::new(4),
    );
    let ebs = ebs_snapshot::EbsSnapshot::new(
        aws_sdk_ec2::Client::new(aws).recorded("ebs-snapshot"),
        sinks("ebs-snapshot"),
        lifeboat::fanout::FanOut::new(4),
    );
    let ami = ami_backup::AmiBackup::new(
        aws_sdk_ec2::Client::new(aws).recorded("ami-backup"),
        sinks("ami-backup"),
        lifeboat::fanout::FanOut::new(4),
    );
    let prune = prune::Prune::new(
        catalog("prune"),
        sinks("prune"),
        lifeboat::fanout::FanOut::DEFAULT,
    );
    let freshness = freshness::Freshness::new(
        catalog("freshness"),
        aws_sdk_rds::Client::new(aws).recorded("freshness"),
        aws_sdk_ec2::Client::new(aws).recorded("freshness"),
        sinks("freshness"),
        lifeboat::fanout::FanOut::DEFAULT,
    );
    let pg_dump = pg_dump::PgDump::new(
        lifeboat::aws::s3_client(aws).recorded("pg-dump"),
        aws_sdk_secretsmanager::Client::new(aws).recorded("pg-dump"),
        aws_sdk_ecs::Client::new(aws).recorded("pg-dump"),
        pg_dump::Settings::from_env().expect("pg-dump settings"),
        sinks("pg-dump"),
    );
    let mut refused = 0;
    macro_rules! refuse_all {
        ($function:expr, $event:expr, $extra:expr) => {{
            let valid = lifeboat_tests::event($event);
            let mut payloads = invalid_payloads(&valid);
            payloads.extend($extra);
            for payload in payloads {
                let result = handle(&$function, payload.clone(), Invocation::now()).await;
                assert!(
                    matches!(result, Err(lifeboat::Error::InvalidPayload(_))),
                    "{} accepted {payload}: {result:?}",
                    $event
                );
                refused += 1;
            }
        }};
    }
    refuse_all!(
        rds,
        "rds-snapshot.json",
        [
            json!({ "plan": "nightly", "select": {} }),
            json!({ "plan": "nightly", "select": { "ids": [] } }),
            json!({ "plan": "nightly", "select": { "ids": ["a"] }, "copy_to": [{ "region": "moon-1" }] }),
        ]
    );
    refuse_all!(
        ebs,
        "ebs-snapshot.json",
        [
            json!({ "plan": "nightly" }),
            json!({ "plan": "nightly", "select": { "tags": {} } }),
        ]
    );
    refuse_all!(
        ami,
        "ami-backup.json",
        [json!({ "plan": "weekly", "select": { "ids": ["i-1"] }, "reboot": "yes" })]
    );
    refuse_all!(
        prune,
        "prune.json",
        [
            json!({ "plan": "nightly", "kinds": ["ebs"], "keep": {} }),
            json!({ "plan": "nightly", "kinds": [], "keep": { "last": 1 } }),
            json!({ "plan": "nightly", "kinds": ["tape"], "keep": { "last": 1 } }),
            json!({ "plan": "nightly", "kinds": ["ebs"], "keep": { "last": 1 }, "max_deletions": -1 }),
        ]
    );
    refuse_all!(
        freshness,
        "freshness.json",
        [
            json!({ "plan": "nightly", "checks": [] }),
            json!({ "plan": "nightly", "checks": [{ "kind": "ebs", "max_age_hours": 26 }] }),
        ]
    );
    refuse_all!(
        pg_dump,
        "pg-dump.json",
        [
            json!({ "plan": "nightly", "databases": [] }),
            json!({ "plan": "nightly", "databases": [{ "name": "orders", "host": "db", "dbname": "orders", "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x", "password": "hunter2" }] }),
            json!({ "plan": "nightly", "databases": [{ "name": "orders", "host": "db", "dbname": "orders" }] }),
        ]
    );
    let stats = world.proxy.stats();
    assert!(refused >= 60, "{refused}");
    assert_eq!(
        stats.requests, 0,
        "{refused} invalid payloads, yet AWS was called: {:?}",
        stats.operations
    );
    assert!(
        world.inbox.drain().await.is_empty(),
        "a refused payload sends no alert"
    );
    println!(
        "invalid payloads: {refused} refused, {} AWS requests",
        stats.requests
    );
}
