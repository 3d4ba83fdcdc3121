//! pg-dump's container image (`scripts/image.sh build`), run as its ECS
//! task runs it. `lifeboat run pg-dump --timeout 900` hands a database to the
//! task in the emulator's ECS, which records the task but runs no container:
//! the test plays ECS's part. It unpacks the image as a runtime would
//! (`scripts/image.sh unpack`: skopeo to an OCI layout, umoci), and runs the
//! task's command with the image's entrypoint as a runtime would
//! (`scripts/image.sh run`: a chroot of its root file system, in a mount
//! namespace with only a runtime's mounts, with only the environment the
//! image config and the task definition declare), with the task role's
//! credentials served as ECS serves them (a credentials endpoint): nothing of
//! the host's. The dump it makes must verify against its manifest; a task
//! killed in the middle of its dump must leave none, and the next slot's run
//! must tell of it.

use lifeboat_tests::ecs::{CONTAINER, DumpTask, tasks};
use lifeboat_tests::faults::{FaultConfig, FaultProxy};
use lifeboat_tests::postgres::{PgServer, generate, newest_bin};
use lifeboat_tests::{AlertInbox, Emulator, TempDir, event, repo_root};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BUCKET: &str = "lifeboat-dumps";
const IMAGE: &str = "lifeboat-pg-dump";

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether this test can run the image in a chroot, which needs root: CI
/// runs as root, and there a test that cannot run fails.
fn runs_as_root() -> bool {
    let id = Command::new("id").arg("-u").output().expect("id");
    if String::from_utf8_lossy(&id.stdout).trim() == "0" {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI runs as root: running the image in a chroot needs it"
    );
    eprintln!("SKIP: running the image in a chroot needs root (make test runs as root in CI)");
    false
}

/// ECS's credentials endpoint for the task role
/// (`AWS_CONTAINER_CREDENTIALS_FULL_URI`): answers every request with the
/// same temporary keys; counts the requests.
async fn credentials_endpoint() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/v2/credentials/task-role",
        listener.local_addr().expect("address")
    );
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            if request.starts_with(b"GET /v2/credentials/task-role ") {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            let body = json!({
                "AccessKeyId": "ASIATASKROLE0000000",
                "SecretAccessKey": "task-role-secret",
                "Token": "task-role-session",
                "Expiration": "2099-01-01T00:00:00Z",
                "RoleArn": "arn:aws:iam::123456789012:role/lifeboat-pg-dump-task",
            })
            .to_string();
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    (url, asked)
}

/// The image, built into `dir` as `make image` builds it, from this build's
/// binary: the script and the archive.
fn build_image(dir: &TempDir) -> (PathBuf, PathBuf) {
    let archive = dir.path.join(format!("{IMAGE}.tar"));
    let image = repo_root().join("scripts/image.sh");
    let built = Command::new(&image)
        .arg("build")
        .env("IMAGE_BINARY", env!("CARGO_BIN_EXE_lifeboat"))
        .env("IMAGE_OUT", &archive)
        .output()
        .expect("scripts/image.sh");
    assert!(built.status.success(), "make image: {}", said(&built));
    (image, archive)
}

/// The image built and unpacked, the emulator with the dump bucket, an alert
/// inbox, a PostgreSQL server, its login's secret, and pg-dump's task.
struct Stage {
    dir: TempDir,
    image: PathBuf,
    unpacked: PathBuf,
    emulator: Emulator,
    aws: aws_config::SdkConfig,
    inbox: AlertInbox,
    server: PgServer,
    secret: String,
    task: DumpTask,
}

impl Stage {
    async fn new() -> Self {
        let dir = TempDir::new("image");
        let (image, archive) = build_image(&dir);
        // Unpacked as a runtime unpacks it.
        let unpacked = dir.path.join("unpacked");
        let out = Command::new(&image)
            .arg("unpack")
            .arg(&unpacked)
            .env("IMAGE_OUT", &archive)
            .output()
            .expect("scripts/image.sh unpack");
        assert!(out.status.success(), "unpack: {}", said(&out));

        let emulator = Emulator::start();
        let aws = emulator.sdk_config("us-east-1").await;
        lifeboat_tests::dump_bucket(&aws, BUCKET).await;
        let inbox = AlertInbox::create(&aws).await;
        let server = PgServer::start(&newest_bin());
        let secret = lifeboat_tests::login_secret(&aws, "shop", &server.password).await;
        // The task's environment, as Terraform declares it (a dump's settings).
        let task = DumpTask::create(&aws, &Self::dump_settings(&inbox)).await;
        Stage {
            dir,
            image,
            unpacked,
            emulator,
            aws,
            inbox,
            server,
            secret,
            task,
        }
    }

    fn dump_settings(inbox: &AlertInbox) -> [(&'static str, &str); 4] {
        [
            ("LIFEBOAT_BUCKET", BUCKET),
            ("LIFEBOAT_SNS_TOPIC_ARN", inbox.topic_arn.as_str()),
            ("LIFEBOAT_PART_SIZE_MIB", "5"),
            ("RUST_LOG", "info"),
        ]
    }

    /// A scheduled (Lambda) run of `database` (`dbname` on the server) at
    /// `slot`, with `runner: task`: `lifeboat run pg-dump --timeout 900`.
    fn hand_over(&self, database: &str, dbname: &str, slot: &str) -> Value {
        let mut payload = event("pg-dump.json");
        payload["scheduled_time"] = json!(slot);
        let db = &mut payload["databases"][0];
        db["name"] = json!(database);
        db["host"] = json!("127.0.0.1");
        db["port"] = json!(self.server.port);
        db["dbname"] = json!(dbname);
        db["secret_arn"] = json!(self.secret);
        db["runner"] = json!("task");
        let event_file = self.dir.path.join(format!("{database}-{slot}.json"));
        std::fs::write(&event_file, payload.to_string()).expect("payload");
        let handed = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args(["run", "pg-dump", "--timeout", "900", "--event"])
            .arg(&event_file)
            .env_clear()
            .env("AWS_ENDPOINT_URL", &self.emulator.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("PG_DUMP_PATH", newest_bin().join("pg_dump"))
            .envs(Self::dump_settings(&self.inbox))
            .envs(self.task.environment())
            .output()
            .expect("lifeboat run");
        assert!(handed.status.success(), "the hand-over: {}", said(&handed));
        serde_json::from_slice(&handed.stdout).expect("the report")
    }

    /// ECS's part for the task `arn`: its command from its overrides, run
    /// from the image with the task definition's environment and the task
    /// role's `credentials` endpoint, against AWS at `endpoint` (the one
    /// departure from Fargate: AWS is the emulator).
    async fn as_ecs(&self, arn: &str, credentials: &str, endpoint: &str) -> Command {
        let started = tasks(&self.aws, &self.task.cluster).await;
        let task = started
            .iter()
            .find(|t| t.task_arn() == Some(arn))
            .unwrap_or_else(|| panic!("no task {arn} in {started:?}"));
        let overrides = &task.overrides().expect("overrides").container_overrides()[0];
        assert_eq!(overrides.name(), Some(CONTAINER));
        let mut environment = self.task.container_environment(&self.aws).await;
        environment.extend(
            [
                ("AWS_REGION", "us-east-1"),
                ("AWS_CONTAINER_CREDENTIALS_FULL_URI", credentials),
                ("AWS_ENDPOINT_URL", endpoint),
            ]
            .map(|(name, value)| (name.to_owned(), value.to_owned())),
        );
        let mut container = Command::new(&self.image);
        container
            .arg("run")
            .arg(&self.unpacked)
            .args(
                environment
                    .iter()
                    .map(|(name, value)| format!("{name}={value}")),
            )
            .arg("--")
            .args(overrides.command());
        container
    }

    async fn keys(&self) -> Vec<String> {
        lifeboat_tests::keys(&lifeboat::aws::s3_client(&self.aws), BUCKET).await
    }
}

#[tokio::test]
async fn the_image_makes_the_tasks_dump_with_nothing_from_the_host() {
    if !runs_as_root() {
        return;
    }
    let stage = Stage::new().await;
    let config: Value = serde_json::from_slice(
        &std::fs::read(stage.unpacked.join("config.json")).expect("the image's config"),
    )
    .expect("JSON");
    assert_eq!(config["Entrypoint"], json!(["/lifeboat"]));
    assert_eq!(config["User"], json!("65532:65532"), "not root");
    let rootfs = stage.unpacked.join("rootfs");
    let top: BTreeSet<String> = std::fs::read_dir(&rootfs)
        .expect("rootfs")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        top,
        ["etc", "lib", "lib64", "lifeboat", "opt", "tmp"]
            .map(String::from)
            .into(),
        "the entrypoint, pg_dump, their libraries, the roots and the user; nothing else"
    );
    for shell in ["bin/sh", "bin/bash", "usr/bin/env"] {
        assert!(!rootfs.join(shell).exists(), "no {shell} in the image");
    }

    // A scheduled run hands the database to the task.
    generate(&stage.server, "shop", 2);
    let handed = stage.hand_over("orders", "shop", "2026-11-20T02:00:00Z");
    assert_eq!(handed["created"], json!([]), "{handed}");
    assert_eq!(handed["tasks"][0]["started"], json!(true), "{handed}");
    let backup = handed["tasks"][0]["backup"].as_str().expect("its key");
    let arn = handed["tasks"][0]["task"].as_str().expect("its task");
    assert_eq!(tasks(&stage.aws, &stage.task.cluster).await.len(), 1);

    // ECS's part: the task's command, from the image.
    let (credentials, asked) = credentials_endpoint().await;
    let mut container = stage
        .as_ecs(arn, &credentials, &stage.emulator.endpoint)
        .await;
    let ran = tokio::task::spawn_blocking(move || container.output())
        .await
        .expect("join")
        .expect("the container");
    assert!(
        ran.status.success(),
        "the task's run in the image: {}",
        said(&ran)
    );
    let report: Value = serde_json::from_slice(&ran.stdout).expect("the task's report");
    assert_eq!(report["created"][0]["backup"], json!(backup), "{report}");
    assert_eq!(report["failed"], json!([]), "{report}");
    assert!(
        asked.load(Ordering::SeqCst) >= 1,
        "the task's AWS calls used the task role's credentials"
    );
    assert_eq!(stage.inbox.drain().await, Vec::<Value>::new(), "no alert");

    // The dump it made is the one its manifest describes, row by row.
    let verified = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("verify")
        .arg(format!("s3://{BUCKET}/{backup}"))
        .env_clear()
        .env("AWS_ENDPOINT_URL", &stage.emulator.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("lifeboat verify");
    assert!(verified.status.success(), "verify: {}", said(&verified));
    assert!(
        said(&verified).contains(&format!("verified s3://{BUCKET}/{backup}")),
        "{}",
        said(&verified)
    );
}

/// The task killed (SIGKILL, as for running out of memory) while its
/// multipart upload is under way leaves no dump and no manifest, and says
/// nothing itself (the stop rule's pattern matches exit 137:
/// tests/tests/integration/terraform.rs); the next slot's run tells of it once.
#[tokio::test]
async fn a_task_killed_mid_dump_leaves_no_dump_and_the_next_run_tells_of_it() {
    if !runs_as_root() {
        return;
    }
    let stage = Stage::new().await;
    generate(&stage.server, "ledger", 24);
    let handed = stage.hand_over("ledger", "ledger", "2026-11-20T02:00:00Z");
    let arn = handed["tasks"][0]["task"].as_str().expect("its task");
    let backup = handed["tasks"][0]["backup"].as_str().expect("its key");
    // The task's S3 goes through a proxy that slows every request (up to
    // 400 ms), so that its upload is seen under way before it can finish.
    let slow = FaultConfig {
        latency: 1.0,
        max_latency: Duration::from_millis(400),
        ..FaultConfig::none(7)
    };
    let proxy = FaultProxy::start(&stage.emulator.endpoint, slow).await;
    let (credentials, _) = credentials_endpoint().await;
    let mut container = stage.as_ecs(arn, &credentials, &proxy.endpoint).await;
    std::os::unix::process::CommandExt::process_group(&mut container, 0);
    let mut child = container
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the container");
    let uploading = |stats: &lifeboat_tests::faults::Stats| {
        stats.operations.keys().any(|op| op.contains("partNumber"))
    };
    let mut waited = Duration::ZERO;
    while !uploading(&proxy.stats()) {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the task ended before its upload was seen: {:?}",
            proxy.stats().operations
        );
        assert!(waited < Duration::from_secs(120), "no upload under way");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    // Killed, as the kernel kills a task out of memory: every process of it.
    let killed = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(!status.success(), "{status:?}");
    let completed = proxy
        .stats()
        .operations
        .keys()
        .filter(|op| op.starts_with("s3:POST ?uploadId"))
        .count();
    assert_eq!(completed, 0, "the upload was never completed");

    // ECS's part: the task it ran has stopped.
    aws_sdk_ecs::Client::new(&stage.aws)
        .stop_task()
        .cluster(&stage.task.cluster)
        .task(arn)
        .reason("OutOfMemoryError: Container killed due to memory usage")
        .send()
        .await
        .expect("stop task");

    // Nothing visible: no dump, no manifest; only the slot's task record,
    // and the killed run's live mark, which the lifecycle rule expires.
    let keys = stage.keys().await;
    assert!(
        !keys
            .iter()
            .any(|k| k == backup || k.ends_with(".manifest.json")),
        "{keys:?}"
    );
    assert!(keys.contains(&format!("{backup}.task.json")), "{keys:?}");
    let marks: Vec<&String> = keys.iter().filter(|k| k.contains(".live.")).collect();
    assert_eq!(marks.len(), 1, "{keys:?}");
    let tags = lifeboat::aws::s3_client(&stage.aws)
        .get_object_tagging()
        .bucket(BUCKET)
        .key(marks[0])
        .send()
        .await
        .expect("tags");
    assert!(
        tags.tag_set()
            .iter()
            .any(|t| t.key() == "lifeboat:record" && t.value() == "live"),
        "{tags:?}"
    );
    assert_eq!(
        stage.inbox.drain().await,
        Vec::<Value>::new(),
        "the task said nothing"
    );

    // The next slot's run tells of it, once, and hands its own slot over.
    let next = stage.hand_over("ledger", "ledger", "2026-11-21T02:00:00Z");
    assert_eq!(next["tasks"][0]["started"], json!(true), "{next}");
    let told = stage.inbox.drain().await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0]["Subject"]
            .as_str()
            .is_some_and(|s| s.contains("no dump of ledger for slot 2026-11-20T02:00")),
        "{told:?}"
    );
    let again = stage.hand_over("ledger", "ledger", "2026-11-21T02:00:00Z");
    assert_eq!(again["tasks"][0]["started"], json!(false), "{again}");
    assert_eq!(stage.inbox.drain().await, Vec::<Value>::new(), "told once");
}

/// `make push` against a real registry (the CNCF distribution server,
/// Debian's docker-registry, on the loopback without TLS: the emulator's ECR
/// has no registry endpoint), logging in with ECR's token from the emulator:
/// the image arrives by the digest its archive has, the one Terraform is
/// given, under a tag of that digest, and a second push changes nothing.
#[tokio::test]
async fn make_push_pushes_the_image_by_the_digest_terraform_is_given() {
    let dir = TempDir::new("push");
    let (image, archive) = build_image(&dir);
    let config = dir.path.join("registry.yml");
    let (mut registry, port) = lifeboat_tests::start_server(
        "docker-registry (make setup installs it)",
        &dir.path.join("registry.log"),
        |port| {
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                    dir.path.join("registry").display()
                ),
            )
            .expect("registry config");
            let mut command = Command::new("docker-registry");
            command.arg("serve").arg(&config);
            command
        },
    );
    let emulator = Emulator::start();
    let repository = format!("127.0.0.1:{port}/{IMAGE}");
    let push = || {
        Command::new(&image)
            .arg("push")
            .env("IMAGE_OUT", &archive)
            .env("IMAGE_REPOSITORY", &repository)
            .env("IMAGE_PUSH_TLS_VERIFY", "false")
            .env("AWS_ENDPOINT_URL", &emulator.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .output()
            .expect("scripts/image.sh push")
    };
    let pushed = push();
    let digest = String::from_utf8(
        Command::new("skopeo")
            .args(["inspect", "--format", "{{.Digest}}"])
            .arg(format!("oci-archive:{}", archive.display()))
            .output()
            .expect("skopeo")
            .stdout,
    )
    .expect("text")
    .trim()
    .to_owned();
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert!(pushed.status.success(), "push: {}", said(&pushed));
    assert!(
        said(&pushed).contains(&format!("pushed {repository}@{digest}"))
            && said(&pushed).contains(&format!("image_digest = \"{digest}\"")),
        "{}",
        said(&pushed)
    );
    assert!(
        !said(&pushed).contains("testing") && !said(&pushed).contains("AWS:"),
        "no login in what push says: {}",
        said(&pushed)
    );
    // The registry holds the image by that digest, and the tag names it.
    for reference in [
        format!("{repository}@{digest}"),
        format!("{repository}:sha256-{}", &digest["sha256:".len()..]),
    ] {
        let seen = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
            .arg(format!("docker://{reference}"))
            .output()
            .expect("skopeo inspect");
        assert!(seen.status.success(), "{reference}: {}", said(&seen));
        assert_eq!(String::from_utf8_lossy(&seen.stdout).trim(), digest);
    }
    // A second push, as to an immutable repository: nothing to push.
    let again = push();
    assert!(again.status.success(), "a second push: {}", said(&again));
    assert!(
        said(&again).contains(&format!("already there: {repository}@{digest}")),
        "{}",
        said(&again)
    );
    // The same inputs make the same image: a second build, the same digest.
    let rebuilt = TempDir::new("push-again");
    let (_, second) = build_image(&rebuilt);
    let digest_of = |archive: &PathBuf| {
        let out = Command::new("skopeo")
            .args(["inspect", "--format", "{{.Digest}}"])
            .arg(format!("oci-archive:{}", archive.display()))
            .output()
            .expect("skopeo");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(digest_of(&second), digest, "a reproducible build");
    let _ = registry.kill();
    let _ = registry.wait();
}
