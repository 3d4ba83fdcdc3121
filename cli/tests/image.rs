//! pg-dump's container image (`scripts/image.sh build`), run as its ECS
//! task runs it. `lifeboat run pg-dump --timeout 900` hands a database to the
//! task in the emulator's ECS, which records the task but runs no container:
//! the test plays ECS's part. It unpacks the image as a runtime would
//! (`skopeo copy` to an OCI layout, `umoci unpack`), and runs the task's
//! command with the image's entrypoint in a `chroot` of its root file system,
//! in a mount namespace with only a runtime's mounts (`/dev`'s four devices,
//! `/proc`, the ephemeral storage at `/tmp`), with only the environment the
//! image config and the task definition declare, and the task role's
//! credentials served as ECS serves them (a credentials endpoint): nothing of
//! the host's. The dump it makes must verify against its manifest.

use lifeboat_tests::ecs::{CONTAINER, DumpTask, tasks};
use lifeboat_tests::postgres::{PgServer, generate, newest_bin};
use lifeboat_tests::{AlertInbox, Emulator, TempDir, event, repo_root};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BUCKET: &str = "lifeboat-dumps";
const IMAGE: &str = "lifeboat-pg-dump";

/// What a container runtime sets up before it runs the entrypoint, and no
/// more: `$1` the root file system, `$2` the image's user, then the command.
const AS_A_RUNTIME: &str = r#"
root=$1 user=$2; shift 2
/usr/bin/mkdir -p "$root/dev" "$root/proc"
/usr/bin/mount -t tmpfs -o mode=755 tmpfs "$root/dev"
for device in null zero random urandom; do
  /usr/bin/touch "$root/dev/$device"
  /usr/bin/mount --bind "/dev/$device" "$root/dev/$device"
done
/usr/bin/mount -t proc proc "$root/proc"
/usr/bin/mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
exec /usr/sbin/chroot --userspec="$user" "$root" "$@"
"#;

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (make setup installs it)"));
    assert!(out.status.success(), "{program} {args:?}: {}", said(&out));
    out
}

fn is_root() -> bool {
    String::from_utf8_lossy(&run("id", &["-u"]).stdout).trim() == "0"
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

#[tokio::test]
async fn the_image_makes_the_tasks_dump_with_nothing_from_the_host() {
    if !is_root() {
        eprintln!("SKIP: running the image in a chroot needs root (make test runs as root in CI)");
        return;
    }
    let dir = TempDir::new("image");
    let lifeboat = env!("CARGO_BIN_EXE_lifeboat");

    // The image, built as `make image` builds it, from this build's binary.
    let archive = dir.path.join(format!("{IMAGE}.tar"));
    let built = Command::new(repo_root().join("scripts/image.sh"))
        .arg("build")
        .env("IMAGE_BINARY", lifeboat)
        .env("IMAGE_OUT", &archive)
        .output()
        .expect("scripts/image.sh");
    assert!(built.status.success(), "make image: {}", said(&built));

    // Unpacked as a runtime unpacks it.
    let layout = format!("oci:{}:{IMAGE}", dir.path.join("layout").display());
    run(
        "skopeo",
        &[
            "copy",
            "--quiet",
            &format!("oci-archive:{}", archive.display()),
            &layout,
        ],
    );
    let bundle = dir.path.join("bundle");
    run(
        "umoci",
        &[
            "unpack",
            "--image",
            &layout["oci:".len()..],
            &bundle.display().to_string(),
        ],
    );
    let config: Value =
        serde_json::from_slice(&run("skopeo", &["inspect", "--config", &layout]).stdout)
            .expect("the image's config");
    let config = &config["config"];
    assert_eq!(config["Entrypoint"], json!(["/lifeboat"]));
    let user = config["User"].as_str().expect("a user").to_owned();
    assert_eq!(user, "65532:65532", "not root");
    let rootfs = bundle.join("rootfs");
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

    // The emulator, a database, its secret, and pg-dump's task.
    let emulator = Emulator::start();
    let aws = emulator.sdk_config("us-east-1").await;
    let s3 = lifeboat::aws::s3_client(&aws);
    s3.create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("bucket");
    s3.put_bucket_versioning()
        .bucket(BUCKET)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("versioning");
    let inbox = AlertInbox::create(&aws).await;
    let server = PgServer::start(&newest_bin());
    generate(&server, "shop", 2);
    let secret = aws_sdk_secretsmanager::Client::new(&aws)
        .create_secret()
        .name("shop")
        .secret_string(json!({"username": "postgres", "password": server.password}).to_string())
        .send()
        .await
        .expect("secret")
        .arn
        .expect("arn");
    // The task's environment, as Terraform declares it (a dump's settings).
    let dump_settings = [
        ("LIFEBOAT_BUCKET", BUCKET),
        ("LIFEBOAT_SNS_TOPIC_ARN", inbox.topic_arn.as_str()),
        ("LIFEBOAT_PART_SIZE_MIB", "5"),
        ("RUST_LOG", "info"),
    ];
    let task = DumpTask::create(&aws, &dump_settings).await;

    // A scheduled run hands the database to the task.
    let mut payload = event("pg-dump.json");
    let db = &mut payload["databases"][0];
    db["host"] = json!("127.0.0.1");
    db["port"] = json!(server.port);
    db["dbname"] = json!("shop");
    db["secret_arn"] = json!(secret);
    db["runner"] = json!("task");
    let event_file = dir.path.join("pg-dump.json");
    std::fs::write(&event_file, payload.to_string()).expect("payload");
    let handed = Command::new(lifeboat)
        .args(["run", "pg-dump", "--timeout", "900", "--event"])
        .arg(&event_file)
        .env_clear()
        .env("AWS_ENDPOINT_URL", &emulator.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("PG_DUMP_PATH", newest_bin().join("pg_dump"))
        .envs(dump_settings)
        .envs(task.environment())
        .output()
        .expect("lifeboat run");
    assert!(handed.status.success(), "the hand-over: {}", said(&handed));
    let handed: Value = serde_json::from_slice(&handed.stdout).expect("the report");
    assert_eq!(handed["created"], json!([]), "{handed}");
    assert_eq!(handed["tasks"][0]["started"], json!(true), "{handed}");
    let backup = handed["tasks"][0]["backup"].as_str().expect("its key");

    // ECS's part: the task's command, its definition's environment, the
    // image's own, and the task role's credentials.
    let started = tasks(&aws, &task.cluster).await;
    assert_eq!(started.len(), 1, "{started:?}");
    let overrides = &started[0]
        .overrides()
        .expect("overrides")
        .container_overrides()[0];
    assert_eq!(overrides.name(), Some(CONTAINER));
    let command: Vec<String> = config["Entrypoint"]
        .as_array()
        .expect("entrypoint")
        .iter()
        .map(|a| a.as_str().expect("text").to_owned())
        .chain(overrides.command().iter().cloned())
        .collect();
    let (credentials, asked) = credentials_endpoint().await;
    let mut environment: Vec<(String, String)> = config["Env"]
        .as_array()
        .expect("the image's environment")
        .iter()
        .map(|pair| {
            let (name, value) = pair
                .as_str()
                .expect("NAME=value")
                .split_once('=')
                .expect("=");
            (name.to_owned(), value.to_owned())
        })
        .collect();
    environment.extend(task.container_environment(&aws).await);
    environment.extend(
        [
            ("AWS_REGION", "us-east-1"),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", credentials.as_str()),
            // The one departure from Fargate: AWS is the emulator.
            ("AWS_ENDPOINT_URL", emulator.endpoint.as_str()),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned())),
    );
    let mut container = Command::new("/usr/bin/timeout");
    container
        .args([
            "600",
            "/usr/bin/unshare",
            "--mount",
            "--propagation",
            "private",
        ])
        .args([
            "--pid",
            "--fork",
            "/bin/bash",
            "-euc",
            AS_A_RUNTIME,
            "runtime",
        ])
        .arg(&rootfs)
        .arg(&user)
        .args(&command)
        .env_clear()
        .envs(environment);
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
    assert_eq!(inbox.drain().await, Vec::<Value>::new(), "no alert");

    // The dump it made is the one its manifest describes, row by row.
    let verified = Command::new(lifeboat)
        .arg("verify")
        .arg(format!("s3://{BUCKET}/{backup}"))
        .env_clear()
        .env("AWS_ENDPOINT_URL", &emulator.endpoint)
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
