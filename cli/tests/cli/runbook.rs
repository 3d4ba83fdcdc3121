//! docs/restore.md's dump section, run as written: a database on a real
//! PostgreSQL 15 server is dumped by `lifeboat run pg-dump` into the
//! emulator's S3, then the section's shell blocks run word for word in bash,
//! with the test's own values in place of the settings block's, and the
//! restored database must hold exactly what was dumped.

use lifeboat_tests::postgres::{PgServer, generate, newest_bin, pg15_bin};
use lifeboat_tests::{AlertInbox, Emulator, TempDir, event, repo_root};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

const SECTION: &str = "## A PostgreSQL database, from a Lifeboat dump";
const BUCKET: &str = "lifeboat-dumps";

/// The `sh` blocks of the dump section, in order.
fn section_blocks() -> Vec<String> {
    let doc =
        std::fs::read_to_string(repo_root().join("docs/restore.md")).expect("docs/restore.md");
    let start = doc.find(SECTION).expect("the dump section");
    let body = &doc[start + SECTION.len()..];
    let body = &body[..body.find("\n## ").unwrap_or(body.len())];
    let mut blocks = Vec::new();
    let mut rest = body;
    while let Some(open) = rest.find("```sh\n") {
        let after = &rest[open + "```sh\n".len()..];
        let close = after.find("```").expect("a closed block");
        blocks.push(after[..close].to_owned());
        rest = &after[close..][3..];
    }
    blocks
}

/// The variables a settings block exports (`export A=x B=y  # comment`).
fn exported(block: &str) -> Vec<String> {
    block
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty())
        .flat_map(|line| {
            let names = line
                .strip_prefix("export ")
                .unwrap_or_else(|| panic!("the settings block only exports: `{line}`"));
            names
                .split_whitespace()
                .map(|pair| pair.split('=').next().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn bash(script: &str, env: &BTreeMap<&str, String>) -> Output {
    Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .envs(env)
        .output()
        .expect("bash")
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn the_dump_section_of_the_restore_runbook_restores_a_dump_exactly() {
    let blocks = section_blocks();
    assert_eq!(blocks.len(), 2, "a settings block and the commands");
    let emulator = Emulator::start();
    let aws = emulator.sdk_config("us-east-1").await;
    lifeboat_tests::dump_bucket(&aws, BUCKET).await;
    let server = PgServer::start(&pg15_bin());
    generate(&server, "shop", 2);
    let secret = lifeboat_tests::login_secret(&aws, "shop", &server.password).await;

    let lifeboat = Path::new(env!("CARGO_BIN_EXE_lifeboat"));
    let path = std::env::join_paths(
        [lifeboat.parent().expect("bin dir"), &newest_bin()]
            .into_iter()
            .map(Path::to_owned)
            .chain(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            )),
    )
    .expect("PATH");
    let mut env: BTreeMap<&str, String> = BTreeMap::from([
        ("PATH", path.to_string_lossy().into_owned()),
        ("AWS_ENDPOINT_URL", emulator.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("LIFEBOAT_BUCKET", BUCKET.into()),
    ]);

    // The night before: pg-dump, as the CLI runs it.
    let dir = TempDir::new("runbook");
    let mut payload = event("pg-dump.json");
    let db = &mut payload["databases"][0];
    db["host"] = json!("127.0.0.1");
    db["port"] = json!(server.port);
    db["dbname"] = json!("shop");
    db["secret_arn"] = json!(secret);
    let event_file = dir.path.join("pg-dump.json");
    std::fs::write(&event_file, payload.to_string()).expect("payload");
    let mut dump_env = env.clone();
    let inbox = AlertInbox::create(&aws).await;
    dump_env.insert("LIFEBOAT_SNS_TOPIC_ARN", inbox.topic_arn.clone());
    dump_env.insert(
        "PG_DUMP_PATH",
        newest_bin().join("pg_dump").display().to_string(),
    );
    let dumped = bash(
        &format!("lifeboat run pg-dump --event {}", event_file.display()),
        &dump_env,
    );
    assert!(dumped.status.success(), "pg-dump: {}", said(&dumped));
    assert!(inbox.drain().await.is_empty(), "no alert for a good dump");

    // The day: the section's settings, with this test's values.
    let values = [
        ("PREFIX", "pg".to_owned()),
        ("DATABASE", "orders".to_owned()),
        ("PLAN", "nightly".to_owned()),
        ("PGHOST", "127.0.0.1".to_owned()),
        ("PGPORT", server.port.to_string()),
        ("PGUSER", "postgres".to_owned()),
        ("PGPASSWORD", server.password.clone()),
        (
            "PG_RESTORE_PATH",
            newest_bin().join("pg_restore").display().to_string(),
        ),
        ("TARGET_DB", "orders_restored".to_owned()),
    ];
    let mut names = exported(&blocks[0]);
    names.sort();
    let mut given: Vec<String> = values
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .chain(["LIFEBOAT_BUCKET".to_owned()])
        .collect();
    given.sort();
    assert_eq!(
        names, given,
        "the settings block and this test name the same variables"
    );
    env.extend(values);

    let restored = bash(&blocks[1], &env);
    let output = said(&restored);
    assert!(
        restored.status.success(),
        "the runbook's commands: {output}"
    );
    assert!(
        output.contains("verified s3://lifeboat-dumps/pg/orders/"),
        "{output}"
    );
    assert!(
        output.contains("the restored database holds what was dumped: 3 tables"),
        "{output}"
    );
    assert_eq!(
        server.fingerprint("orders_restored"),
        server.fingerprint("shop")
    );

    // Run again, the database is no longer empty: refused, exit 1, nothing changed.
    let again = bash(&blocks[1].replace("createdb \"$TARGET_DB\"\n", ""), &env);
    assert_eq!(again.status.code(), Some(1), "{}", said(&again));
    assert!(said(&again).contains("is not empty"), "{}", said(&again));
    assert_eq!(
        server.fingerprint("orders_restored"),
        server.fingerprint("shop")
    );
}
