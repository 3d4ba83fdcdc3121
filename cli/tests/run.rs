//! `lifeboat run`'s exit status, which pg-dump's task's stop rule reads
//! (terraform/task.tf): 0 done, 1 failed and alerted, 2 payload refused,
//! 3 failed with no alert sent. Against the emulator, with a dump that fails
//! because its database does not answer.

use lifeboat_tests::postgres::{closed_port, newest_bin};
use lifeboat_tests::{AlertInbox, Emulator, TempDir, event};
use serde_json::json;
use std::process::{Command, Output};

const BUCKET: &str = "lifeboat-dumps";

fn lifeboat_run(emulator: &Emulator, event_file: &std::path::Path, topic: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
    command
        .args(["run", "pg-dump", "--event"])
        .arg(event_file)
        .env_clear()
        .env("AWS_ENDPOINT_URL", &emulator.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("LIFEBOAT_BUCKET", BUCKET)
        .env("PG_DUMP_PATH", newest_bin().join("pg_dump"));
    if let Some(topic) = topic {
        command.env("LIFEBOAT_SNS_TOPIC_ARN", topic);
    }
    command.output().expect("lifeboat run")
}

fn said(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn a_failure_that_was_alerted_exits_1_and_one_that_was_not_exits_3() {
    let emulator = Emulator::start();
    let aws = emulator.sdk_config("us-east-1").await;
    lifeboat::aws::s3_client(&aws)
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("bucket");
    let inbox = AlertInbox::create(&aws).await;
    let secret = lifeboat_tests::login_secret(&aws, "gone", "x").await;
    let dir = TempDir::new("run-exit");
    let mut payload = event("pg-dump.json");
    payload["databases"][0]["host"] = json!("127.0.0.1");
    payload["databases"][0]["port"] = json!(closed_port());
    payload["databases"][0]["secret_arn"] = json!(secret);
    let failing = dir.path.join("failing.json");
    std::fs::write(&failing, payload.to_string()).expect("payload");

    // The dump fails, and the alert says so: 1.
    let told = lifeboat_run(&emulator, &failing, Some(&inbox.topic_arn));
    assert_eq!(told.status.code(), Some(1), "{}", said(&told));
    assert_eq!(inbox.drain().await.len(), 1, "one alert");

    // The same failure, with a topic that does not exist: no alert, 3.
    let missing = inbox.topic_arn.replace("lifeboat-alerts", "no-such-topic");
    let untold = lifeboat_run(&emulator, &failing, Some(&missing));
    assert_eq!(untold.status.code(), Some(3), "{}", said(&untold));
    assert!(
        said(&untold).contains("no alert about this failure could be sent"),
        "{}",
        said(&untold)
    );

    // Without a topic the function cannot start, and tells no one: 3.
    let unconfigured = lifeboat_run(&emulator, &failing, None);
    assert_eq!(
        unconfigured.status.code(),
        Some(3),
        "{}",
        said(&unconfigured)
    );
    assert!(
        said(&unconfigured).contains("LIFEBOAT_SNS_TOPIC_ARN"),
        "{}",
        said(&unconfigured)
    );

    // A refused payload changes nothing and is no alert of the run's: 2.
    payload["databases"][0]["colour"] = json!("blue");
    let refused_file = dir.path.join("refused.json");
    std::fs::write(&refused_file, payload.to_string()).expect("payload");
    let refused = lifeboat_run(&emulator, &refused_file, Some(&inbox.topic_arn));
    assert_eq!(refused.status.code(), Some(2), "{}", said(&refused));
    assert_eq!(inbox.drain().await.len(), 0);
}
