//! Test harness: a private moto server per test, SDK configuration pointing at
//! it, an alert topic read back through SNS→SQS, and the payloads in `events/`.

pub mod calls;
pub mod ecs;
pub mod faults;
pub mod postgres;
pub mod recorded;

use aws_sdk_sqs::config::Credentials;
use lifeboat::runtime::Sinks;
use lifeboat::{alert::SnsAlerts, metrics::CloudWatchMetrics};
use recorded::Recorded;
use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lies in the repository")
        .to_path_buf()
}

/// A payload from `events/`, as the tests and `cargo lambda invoke --data-file` share them.
pub fn event(name: &str) -> Value {
    let path = repo_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A moto server of this test's own on a free loopback port, stopped when dropped.
///
/// One server per test keeps tests independent (moto's state is global to a
/// server) and lets them run in parallel; a server starts in about a second.
pub struct Emulator {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    _dir: TempDir,
}

impl Emulator {
    /// CPU seconds (user and system) the server has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(self.child.id())
    }

    /// Starts a server and waits until it listens.
    pub fn start() -> Self {
        let dir = TempDir::new("moto");
        // An empty AMI catalogue: moto ignores `Owners=self`, so its default
        // public AMIs and their snapshots would look like the account's own.
        let amis = dir.path.join("amis.json");
        std::fs::write(&amis, "[]").expect("write AMI list");
        let (child, port) = start_server("moto_server", &dir.path.join("moto.log"), |port| {
            let mut command = Command::new(moto_server());
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_AMIS_PATH", &amis)
                // tests/moto/sitecustomize.py: AMI names unique, as on AWS.
                .env("PYTHONPATH", repo_root().join("tests/moto"));
            command
        });
        Emulator {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// SDK configuration for `region` of the emulator, with dummy credentials.
    pub async fn sdk_config(&self, region: &str) -> aws_config::SdkConfig {
        sdk_config_at(&self.endpoint, region).await
    }

    /// How the emulator moves a model's states on: `ecs::task` goes one
    /// step (`RUNNING` … `STOPPED`) every `describes` DescribeTasks.
    pub fn set_transition(&self, model: &str, describes: u32) {
        use std::io::{Read, Write};
        let body = serde_json::json!({
            "model_name": model,
            "transition": {"progression": "manual", "times": describes},
        })
        .to_string();
        let address = self.endpoint.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).expect("connect to moto");
        write!(
            stream,
            "POST /moto-api/state-manager/set-transition HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("answer");
        let status = answer.lines().next().unwrap_or_default();
        assert!(
            status.contains(" 201"),
            "moto refused the transition: {answer}"
        );
    }
}

/// CPU seconds (user and system, all threads, not its children) that the
/// running process `pid` has used so far, from `/proc` (clock ticks of 1/100 s,
/// as Linux reports them on x86_64); 0 once it is gone.
pub fn cpu_seconds_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's `(name)`: utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// SDK configuration for `region` at `endpoint` (the emulator, or a proxy in
/// front of it), with dummy credentials and the SDK's default retries.
pub async fn sdk_config_at(endpoint: &str, region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "lifeboat-tests",
        ))
        .load()
        .await
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_server() -> PathBuf {
    if let Some(path) = std::env::var_os("LIFEBOAT_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let venv = repo_root().join(".venv/bin/moto_server");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("moto_server")
    }
}

/// A dump bucket as Terraform makes it: versioned, so that manifests name
/// object versions. Returns the emulator's S3 client.
pub async fn dump_bucket(aws: &aws_config::SdkConfig, bucket: &str) -> aws_sdk_s3::Client {
    let s3 = lifeboat::aws::s3_client(aws);
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("bucket");
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("versioning");
    s3
}

/// The keys in `bucket`, as one ListObjectsV2 page gives them (the tests'
/// buckets hold a few).
pub async fn keys(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    s3.list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("list")
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// A VPC of `cidr` in the emulator; its id.
pub async fn vpc(ec2: &aws_sdk_ec2::Client, cidr: &str) -> String {
    ec2.create_vpc()
        .cidr_block(cidr)
        .send()
        .await
        .expect("vpc")
        .vpc
        .and_then(|v| v.vpc_id)
        .expect("vpc id")
}

/// A Secrets Manager secret in the RDS format for the `postgres` user's
/// `password`; returns its ARN.
pub async fn login_secret(aws: &aws_config::SdkConfig, name: &str, password: &str) -> String {
    aws_sdk_secretsmanager::Client::new(aws)
        .create_secret()
        .name(name)
        .secret_string(
            serde_json::json!({"engine": "postgres", "username": "postgres", "password": password})
                .to_string(),
        )
        .send()
        .await
        .expect("secret")
        .arn
        .expect("arn")
}

/// A loopback port that nothing listened on when asked.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts the server that `command` makes for a free loopback port, with its
/// output in `log`, and waits until that server itself listens there; the
/// server and its port.
///
/// Another test's server can take a port between [`free_port`] and this
/// server's bind. This one then exits, and a plain connect would reach the
/// other one: a test would run against another test's emulator, and fail
/// when that one stops. So a server counts as started only when its own
/// process holds the listening socket, and one that exits first is started
/// again on another port.
pub fn start_server(what: &str, log: &Path, command: impl Fn(u16) -> Command) -> (Child, u16) {
    start_server_on(std::iter::repeat_with(free_port), what, log, command)
}

/// [`start_server`] on the first of `ports` that the server gets.
fn start_server_on(
    ports: impl IntoIterator<Item = u16>,
    what: &str,
    log: &Path,
    command: impl Fn(u16) -> Command,
) -> (Child, u16) {
    const ATTEMPTS: usize = 5;
    for port in ports.into_iter().take(ATTEMPTS) {
        let output = std::fs::File::create(log).expect("create the server's log");
        let mut child = command(port)
            .stdout(output.try_clone().expect("the server's log"))
            .stderr(output)
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e} (run `make setup` first)"));
        let started = Instant::now();
        loop {
            if listens_on(child.id(), port) {
                return (child, port);
            }
            if child.try_wait().expect("the server's status").is_some() {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{what} did not listen on port {port} within 60 s:\n{}",
                    tail(log)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!(
        "{what} exited before it listened, {ATTEMPTS} times on as many ports; the last time:\n{}",
        tail(log)
    )
}

/// Whether process `pid` holds a socket listening on `127.0.0.1:port`
/// (`/proc/net/tcp`: the socket's inode, among the process's descriptors).
/// IPv4 loopback only, where every server of the tests binds; a server
/// started through a wrapper must `exec` it, so that it is `pid` itself.
fn listens_on(pid: u32, port: u16) -> bool {
    const LISTEN: &str = "0A";
    let local = format!("0100007F:{port:04X}");
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let sockets: Vec<String> = table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|fields| fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&LISTEN))
        .filter_map(|fields| fields.get(9).map(|inode| format!("socket:[{inode}]")))
        .collect();
    let Ok(descriptors) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    descriptors.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| sockets.iter().any(|s| target.as_os_str() == s.as_str()))
    })
}

/// The last lines of a log, for a failure message.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A folder removed when dropped.
pub struct TempDir {
    /// Its path.
    pub path: PathBuf,
}

impl TempDir {
    /// A new empty folder under the system's temp folder.
    pub fn new(prefix: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("lifeboat-{prefix}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The alert topic, subscribed by an SQS queue so a test can read what was sent.
pub struct AlertInbox {
    /// The topic's ARN, for `LIFEBOAT_SNS_TOPIC_ARN`.
    pub topic_arn: String,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

impl AlertInbox {
    /// Creates the topic and the subscribed queue.
    pub async fn create(aws: &aws_config::SdkConfig) -> Self {
        let sns = aws_sdk_sns::Client::new(aws);
        let sqs = aws_sdk_sqs::Client::new(aws);
        let topic_arn = sns
            .create_topic()
            .name("lifeboat-alerts")
            .send()
            .await
            .expect("create topic")
            .topic_arn
            .expect("topic arn");
        let queue_url = sqs
            .create_queue()
            .queue_name("lifeboat-alerts-inbox")
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue url");
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .expect("queue arn");
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .expect("subscribe queue");
        AlertInbox {
            topic_arn,
            queue_url,
            sqs,
        }
    }

    /// `function`'s sinks: they publish to this topic and to the emulator's
    /// CloudWatch, and their calls are recorded as that function's.
    pub fn sinks(&self, function: &str, aws: &aws_config::SdkConfig) -> Sinks {
        Sinks {
            alerts: Arc::new(SnsAlerts::new(
                aws_sdk_sns::Client::new(aws).recorded(function),
                &self.topic_arn,
            )),
            metrics: Arc::new(CloudWatchMetrics::new(
                aws_sdk_cloudwatch::Client::new(aws).recorded(function),
                "Lifeboat",
            )),
        }
    }

    /// Every alert delivered so far, as SNS notifications (`Subject`, `Message`, `MessageAttributes`).
    pub async fn drain(&self) -> Vec<Value> {
        let mut alerts = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive alerts");
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return alerts;
            }
            for message in messages {
                let body = message.body.as_deref().unwrap_or("{}");
                alerts.push(serde_json::from_str(body).expect("SNS notification JSON"));
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(message.receipt_handle.unwrap_or_default())
                    .send()
                    .await
                    .expect("delete alert");
            }
        }
    }
}

/// Lifeboat's EBS snapshots in the client's region (tagged `managed-by=lifeboat`).
pub async fn managed_snapshots(ec2: &aws_sdk_ec2::Client) -> Vec<aws_sdk_ec2::types::Snapshot> {
    let managed = aws_sdk_ec2::types::Filter::builder()
        .name("tag:managed-by")
        .values("lifeboat")
        .build();
    ec2.describe_snapshots()
        .owner_ids("self")
        .filters(managed)
        .send()
        .await
        .expect("list snapshots")
        .snapshots
        .unwrap_or_default()
}

/// The datapoints of a `Lifeboat` metric with these dimensions over the last
/// hour, one hour-long period, with its sum and maximum.
pub async fn metric(
    aws: &aws_config::SdkConfig,
    name: &str,
    dimensions: &[(&str, &str)],
) -> Vec<aws_sdk_cloudwatch::types::Datapoint> {
    use aws_sdk_cloudwatch::types::{Dimension, Statistic};
    let now = std::time::SystemTime::now();
    let mut request = aws_sdk_cloudwatch::Client::new(aws)
        .get_metric_statistics()
        .namespace("Lifeboat")
        .metric_name(name)
        .start_time((now - Duration::from_secs(3600)).into())
        .end_time((now + Duration::from_secs(60)).into())
        .period(3600)
        .statistics(Statistic::Sum)
        .statistics(Statistic::Maximum);
    for (k, v) in dimensions {
        request = request.dimensions(Dimension::builder().name(*k).value(*v).build());
    }
    request
        .send()
        .await
        .expect("metric statistics")
        .datapoints
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real HTTP server on `port` (Python's), as a test's server would be.
    fn http_server(port: u16) -> Command {
        let mut command = Command::new("python3");
        command.args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ]);
        command
    }

    /// A port that another process took first is given up, and the server
    /// that lost it is started again on the next port, where it listens
    /// itself.
    #[test]
    fn a_server_that_loses_its_port_starts_again_on_another() {
        let dir = TempDir::new("start-server");
        let taken = TcpListener::bind("127.0.0.1:0").expect("a listener");
        let taken_port = taken.local_addr().expect("its address").port();
        // Then free ports, as `start_server` takes them: one picked here
        // could itself be taken before the server binds it.
        let ports = std::iter::once(taken_port).chain(std::iter::repeat_with(free_port));
        let (mut child, port) =
            start_server_on(ports, "http.server", &dir.path.join("log"), http_server);
        assert_ne!(port, taken_port);
        assert!(listens_on(child.id(), port));
        // The port still answers, but not from the child: a connect alone
        // would have taken the other listener for the server.
        assert!(std::net::TcpStream::connect(("127.0.0.1", taken_port)).is_ok());
        assert!(!listens_on(child.id(), taken_port));
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Every port lost: the failure names the server and shows its log.
    #[test]
    fn a_server_that_never_gets_a_port_fails_with_its_log() {
        let dir = TempDir::new("start-server");
        let taken = TcpListener::bind("127.0.0.1:0").expect("a listener");
        let taken_port = taken.local_addr().expect("its address").port();
        let failed = std::panic::catch_unwind(|| {
            start_server_on(
                std::iter::repeat(taken_port),
                "http.server",
                &dir.path.join("log"),
                http_server,
            )
        })
        .expect_err("no port was free");
        let message = failed
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert!(
            message.contains("http.server exited before it listened, 5 times")
                && message.contains("Address already in use"),
            "{message}"
        );
    }
}
