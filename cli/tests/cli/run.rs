//! `lifeboat run`'s exit status, which pg-dump's task's stop rule reads
//! (terraform/task.tf): 0 done, 1 failed and alerted, 2 payload refused,
//! 3 failed with no alert sent. Against the emulator, with a dump that fails
//! because its database does not answer.

use lifeboat_tests::faults::{FaultConfig, FaultProxy};
use lifeboat_tests::postgres::{PgServer, closed_port, generate, newest_bin};
use lifeboat_tests::{AlertInbox, Emulator, TempDir, event};
use serde_json::json;
use std::process::{Command, Output};
use std::time::Duration;

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

/// A run without a deadline that is told to stop (SIGTERM: what ECS sends a
/// task it stops, 30 seconds before SIGKILL) while its upload is under way
/// stops pg_dump, aborts the upload, leaves nothing of the dump, says so in
/// one alert, and exits 1.
#[tokio::test]
async fn sigterm_mid_upload_aborts_the_dump_and_alerts_once() {
    let emulator = Emulator::start();
    let aws = emulator.sdk_config("us-east-1").await;
    let s3 = lifeboat_tests::dump_bucket(&aws, BUCKET).await;
    let inbox = AlertInbox::create(&aws).await;
    let server = PgServer::start(&newest_bin());
    generate(&server, "ledger", 24);
    let secret = lifeboat_tests::login_secret(&aws, "ledger", &server.password).await;
    let dir = TempDir::new("run-sigterm");
    let mut payload = event("pg-dump.json");
    payload["databases"][0]["host"] = json!("127.0.0.1");
    payload["databases"][0]["port"] = json!(server.port);
    payload["databases"][0]["dbname"] = json!("ledger");
    payload["databases"][0]["secret_arn"] = json!(secret);
    let file = dir.path.join("ledger.json");
    std::fs::write(&file, payload.to_string()).expect("payload");
    // S3 through a proxy that slows every request (up to 400 ms), so that
    // the upload is seen under way before it can finish.
    let slow = FaultConfig {
        latency: 1.0,
        max_latency: Duration::from_millis(400),
        ..FaultConfig::none(11)
    };
    let proxy = FaultProxy::start(&emulator.endpoint, slow).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["run", "pg-dump", "--event"])
        .arg(&file)
        .env_clear()
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("LIFEBOAT_BUCKET", BUCKET)
        .env("LIFEBOAT_PART_SIZE_MIB", "5")
        .env("LIFEBOAT_SNS_TOPIC_ARN", &inbox.topic_arn)
        .env("PG_DUMP_PATH", newest_bin().join("pg_dump"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("lifeboat run");
    let mut waited = Duration::ZERO;
    while !proxy
        .stats()
        .operations
        .keys()
        .any(|op| op.contains("partNumber"))
    {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended before its upload was seen"
        );
        assert!(waited < Duration::from_secs(120), "no upload under way");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("the run");
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the report");
    let error = report["failed"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("stopped by SIGTERM after") && error.contains("the upload aborted"),
        "{report}"
    );
    assert_eq!(inbox.drain().await.len(), 1, "one alert");
    let uploads = s3
        .list_multipart_uploads()
        .bucket(BUCKET)
        .send()
        .await
        .expect("uploads");
    assert_eq!(uploads.uploads().len(), 0, "the upload was aborted");
    let keys = lifeboat_tests::keys(&s3, BUCKET).await;
    assert_eq!(keys, Vec::<String>::new(), "nothing of the dump");
}
