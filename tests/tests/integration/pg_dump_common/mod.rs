//! What the `pg-dump` test binaries share: an emulator with a dump bucket,
//! secrets and an alert inbox, the function over it, and the sample payload
//! pointed at a test server.

#![allow(dead_code)]

use aws_sdk_s3::Client as S3;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use lifeboat::postgres::restore::{Options, Target, Tools};
use lifeboat_tests::postgres::{PgServer, newest_bin};
use lifeboat_tests::recorded::Recorded;
use lifeboat_tests::{AlertInbox, Emulator, event};
use pg_dump::upload::PartPlan;
use pg_dump::{PgDump, Settings};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

pub const BUCKET: &str = "lifeboat-dumps";
/// Small parts, so that a test dump of a few MiB is a real multipart upload.
pub const PARTS: PartPlan = PartPlan {
    part_size: 5 << 20,
    parts_in_flight: 2,
};

pub struct Setup {
    pub emulator: Emulator,
    pub aws: aws_config::SdkConfig,
    pub inbox: AlertInbox,
    pub s3: S3,
}

impl Setup {
    pub async fn new() -> Self {
        let emulator = Emulator::start();
        let aws = emulator.sdk_config("us-east-1").await;
        let s3 = lifeboat_tests::dump_bucket(&aws, BUCKET).await;
        let inbox = AlertInbox::create(&aws).await;
        Setup {
            emulator,
            aws,
            inbox,
            s3,
        }
    }

    /// A Secrets Manager secret in the RDS format; returns its ARN.
    pub async fn secret(&self, name: &str, password: &str) -> String {
        lifeboat_tests::login_secret(&self.aws, name, password).await
    }

    pub fn function(&self, pg_dump: &Path, s3: S3) -> PgDump {
        let settings = Settings {
            pg_dump: pg_dump.to_owned(),
            bucket: Some(BUCKET.into()),
            kms_key_id: None,
            parts: PARTS,
            task: None,
        };
        self.function_with(settings, s3)
    }

    pub fn function_with(&self, settings: Settings, s3: S3) -> PgDump {
        PgDump::new(
            s3.recorded("pg-dump"),
            aws_sdk_secretsmanager::Client::new(&self.aws).recorded("pg-dump"),
            aws_sdk_ecs::Client::new(&self.aws).recorded("pg-dump"),
            settings,
            self.inbox.sinks("pg-dump", &self.aws),
        )
    }

    /// An S3 client of the emulator with a fault-injecting interceptor.
    pub fn s3_with(&self, interceptor: impl Intercept + 'static) -> S3 {
        let config = aws_sdk_s3::config::Builder::from(&self.aws)
            .force_path_style(true)
            .interceptor(interceptor)
            .build();
        S3::from_conf(config)
    }

    pub async fn keys(&self) -> Vec<String> {
        lifeboat_tests::keys(&self.s3, BUCKET).await
    }

    pub async fn open_uploads(&self) -> usize {
        self.s3
            .list_multipart_uploads()
            .bucket(BUCKET)
            .send()
            .await
            .expect("uploads")
            .uploads
            .unwrap_or_default()
            .len()
    }

    /// Writes `body` at `key` as a new object version; returns its version id.
    pub async fn put(&self, key: &str, body: Vec<u8>) -> String {
        self.s3
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"))
            .version_id
            .expect("a versioned bucket")
    }

    /// Rewrites the manifest of the dump at `key` with `change` made to it.
    pub async fn edit_manifest(&self, key: &str, change: impl FnOnce(&mut Value)) {
        let manifest_key = format!("{key}.manifest.json");
        let mut manifest: Value =
            serde_json::from_slice(&self.get(&manifest_key).await).expect("a manifest");
        change(&mut manifest);
        self.put(&manifest_key, manifest.to_string().into_bytes())
            .await;
    }

    /// Replaces the dump at `key` by `body`, and points its manifest at the
    /// new version: a stored dump that only its size and SHA-256 tell apart.
    pub async fn replace_recorded(&self, key: &str, body: Vec<u8>) {
        let version = self.put(key, body).await;
        self.edit_manifest(key, |m| m["version_id"] = json!(version))
            .await;
    }

    pub async fn get(&self, key: &str) -> Vec<u8> {
        self.s3
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get {key}: {e:?}"))
            .body
            .collect()
            .await
            .expect("body")
            .to_vec()
    }
}

/// The sample payload from `events/`, pointed at this server and secret.
pub fn payload(plan: &str, server_port: u16, dbname: &str, secret_arn: &str) -> Value {
    let mut payload = event("pg-dump.json");
    payload["plan"] = json!(plan);
    let db = &mut payload["databases"][0];
    db["host"] = json!("127.0.0.1");
    db["port"] = json!(server_port);
    db["dbname"] = json!(dbname);
    db["secret_arn"] = json!(secret_arn);
    payload
}

/// A libpq connection string for `dbname` on this test server, password included.
pub fn conninfo(server: &PgServer, dbname: &str) -> String {
    format!(
        "host=127.0.0.1 port={} user=postgres password={} dbname={dbname}",
        server.port, server.password
    )
}

/// `lifeboat restore`'s library: the dump at `key` into `target`, with the newest pg_restore.
pub async fn restore_into(
    setup: &Setup,
    key: &str,
    target: &Target,
) -> Result<lifeboat::postgres::restore::Restored, String> {
    let tools = Tools::find(Some(newest_bin().join("pg_restore")))
        .await
        .expect("the newest pg_restore and psql");
    let secrets = aws_sdk_secretsmanager::Client::new(&setup.aws);
    lifeboat::postgres::restore::restore(
        &setup.s3,
        &secrets,
        (BUCKET, key),
        target,
        &tools,
        Options::default(),
    )
    .await
}

pub fn pg_dump_of(bin: &Path) -> PathBuf {
    bin.join("pg_dump")
}

/// After a failed run: the run failed, nothing is in the bucket, no
/// multipart upload is open, and exactly one alert went out.
pub async fn assert_nothing_left(
    setup: &Setup,
    outcome: Result<lifeboat::Report, lifeboat::Error>,
    expect: &str,
) {
    assert_nothing_left_but(setup, outcome, expect, &[]).await;
}

/// [`assert_nothing_left`], but for the records `left` of the failure.
pub async fn assert_nothing_left_but(
    setup: &Setup,
    outcome: Result<lifeboat::Report, lifeboat::Error>,
    expect: &str,
    left: &[String],
) {
    let report = match outcome {
        Err(lifeboat::Error::RunFailed { report }) => report,
        other => panic!("expected a failed run ({expect}), got {other:?}"),
    };
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(
        report.failed[0].error.contains(expect),
        "`{expect}` not in `{}`",
        report.failed[0].error
    );
    assert_eq!(setup.keys().await, left, "{expect}");
    assert_eq!(setup.open_uploads().await, 0, "{expect}");
    let alerts = setup.inbox.drain().await;
    assert_eq!(alerts.len(), 1, "{expect}: {alerts:?}");
    assert!(
        alerts[0]["Message"]
            .as_str()
            .unwrap_or_default()
            .contains("orders"),
        "{:?}",
        alerts[0]
    );
}
