//! The password of a `pg-dump` run is never written anywhere: not in its log
//! lines (every level, every crate, the SDK's traces included), its report,
//! or its alert.
//!
//! A test binary of its own, the one test outside `integration`: tracing's
//! callsite state is per process, and beside the other tests (which reach
//! the SDK's callsites first, with no subscriber) its capture missed the
//! SDK's traces (seen in CI).

#[path = "integration/pg_dump_common/mod.rs"]
mod pg_dump_common;

use lifeboat::runtime::{Invocation, handle};
use lifeboat_tests::postgres::{PgServer, generate, newest_bin};
use pg_dump_common::{Setup, payload, pg_dump_of};
use std::sync::{Arc, Mutex};

/// Log lines of every level, from every crate, as the test's own subscriber captures them.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut all) = self.0.lock() {
            all.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_password_never_reaches_logs_or_reports() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    // The test runs on one thread, and so do the tasks it spawns.
    let _guard = tracing::subscriber::set_default(subscriber);

    let setup = Setup::new().await;
    let server = PgServer::start(&newest_bin());
    generate(&server, "shop", 6);
    let good = setup.secret("good", &server.password).await;
    let wrong = format!("{}-wrong", server.password);
    let bad = setup.secret("bad", &wrong).await;
    let function = setup.function(&pg_dump_of(&newest_bin()), setup.s3.clone());
    let ok = handle(
        &function,
        payload("nightly", server.port, "shop", &good),
        Invocation::now(),
    )
    .await
    .expect("dump");
    let failed = handle(
        &function,
        payload("other", server.port, "shop", &bad),
        Invocation::now(),
    )
    .await
    .expect_err("wrong password");
    let failed = match failed {
        lifeboat::Error::RunFailed { report } => report,
        other => panic!("{other}"),
    };

    let logs = String::from_utf8_lossy(&captured.0.lock().expect("logs")).into_owned();
    assert!(
        logs.contains("dump complete"),
        "the capture works: {}",
        &logs[..logs.len().min(2000)]
    );
    assert!(
        logs.contains("GetSecretValue"),
        "SDK traces are captured too"
    );
    let reports =
        serde_json::to_string(&ok).expect("json") + &serde_json::to_string(&failed).expect("json");
    let alerts = serde_json::to_string(&setup.inbox.drain().await).expect("json");
    for secret in [&server.password, &wrong] {
        assert!(!logs.contains(secret.as_str()), "a password is in the logs");
        assert!(
            !reports.contains(secret.as_str()),
            "a password is in a report"
        );
        assert!(
            !alerts.contains(secret.as_str()),
            "a password is in an alert"
        );
    }
}
