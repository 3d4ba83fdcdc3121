//! Benchmark of `pg-dump`: wall time against `pg_dump -Fc > /dev/null` (the
//! limit) and against the seeds' pipeline (`pg_dump -Fc > file`, then an
//! upload of the file with boto3's transfer manager, the one `aws s3 cp`
//! uses), all in the same run, and the peak RSS of the `lifeboat` process
//! at several database sizes.
//!
//! ```text
//! cargo build --release -p lifeboat-cli
//! cargo run -p lifeboat-tests --example pg_dump_bench -- [SIZES_MIB] [COMPARE_MIB] [RUNS]
//! ```
//!
//! Defaults: sizes `100,1024,4096`, comparison at 1024 MiB, best of 3 runs.
//! Everything runs on 127.0.0.1: a moto server, a PostgreSQL 18 cluster.

use lifeboat_tests::postgres::{PgServer, generate, newest_bin};
use lifeboat_tests::{Emulator, TempDir, repo_root};
use serde_json::json;
use std::process::Command;
use std::time::Instant;

const BUCKET: &str = "lifeboat-bench";

/// Wall seconds and peak RSS (KiB) of a command, as GNU time measures them.
fn timed(command: Command) -> (f64, u64) {
    let out_file = std::env::temp_dir().join(format!("lifeboat-bench-time-{}", std::process::id()));
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped
        .arg("-f")
        .arg("%e %M")
        .arg("-o")
        .arg(&out_file)
        .arg(program)
        .args(args);
    for (k, v) in command.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    let out = wrapped.output().expect("run /usr/bin/time");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        command.get_program(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&out_file).expect("time output");
    let mut parts = text.split_whitespace();
    let wall = parts.next().and_then(|s| s.parse().ok()).expect("wall time");
    let rss = parts.next().and_then(|s| s.parse().ok()).expect("max RSS");
    (wall, rss)
}

/// `bash -c script` with `$PG_DUMP` (the newest pg_dump) and the server's login in its environment.
fn shell(script: &str, server: &PgServer) -> Command {
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg(script)
        .env("PG_DUMP", newest_bin().join("pg_dump"))
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", server.port.to_string())
        .env("PGUSER", "postgres")
        .env("PGPASSWORD", &server.password);
    c
}

struct Run {
    wall: f64,
    rss_kib: u64,
}

fn best(runs: usize, mut once: impl FnMut() -> Run) -> Run {
    let mut all: Vec<Run> = (0..runs).map(|_| once()).collect();
    all.sort_by(|a, b| a.wall.total_cmp(&b.wall));
    let peak = all.iter().map(|r| r.rss_kib).max().unwrap_or(0);
    Run {
        wall: all[0].wall,
        rss_kib: peak,
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sizes: Vec<u32> = args
        .first()
        .map_or("100,1024,4096", String::as_str)
        .split(',')
        .map(|s| s.parse().expect("sizes in MiB, comma-separated"))
        .collect();
    let compare_at: u32 = args.get(1).map_or(1024, |s| s.parse().expect("MiB"));
    let runs: usize = args.get(2).map_or(3, |s| s.parse().expect("runs"));
    let lifeboat = repo_root().join("target/release/lifeboat");
    assert!(
        lifeboat.exists(),
        "build it first: cargo build --release -p lifeboat-cli"
    );
    let python = repo_root().join(".venv/bin/python");

    let emulator = Emulator::start();
    let aws = emulator.sdk_config("us-east-1").await;
    lifeboat::aws::s3_client(&aws)
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("bucket");
    let topic = aws_sdk_sns::Client::new(&aws)
        .create_topic()
        .name("bench")
        .send()
        .await
        .expect("topic")
        .topic_arn
        .unwrap_or_default();
    let server = PgServer::start(&newest_bin());
    let secret = aws_sdk_secretsmanager_arn(&aws, &server.password).await;
    let dir = TempDir::new("bench");

    println!(
        "pg-dump benchmark: PostgreSQL {} on 127.0.0.1, moto S3 at {}, best of {runs}",
        server.version(),
        emulator.endpoint
    );
    println!(
        "{:>9} {:>11} {:>10} {:>9} {:>9}",
        "db MiB", "dump MiB", "lifeboat s", "MB/s", "RSS MiB"
    );
    let mut comparison = None;
    for (i, size) in sizes.iter().enumerate() {
        let dbname = format!("bench_{size}");
        let started = Instant::now();
        generate(&server, &dbname, *size);
        let db_bytes: u64 = server
            .sql(&dbname, &format!("SELECT pg_database_size('{dbname}')"))
            .parse()
            .unwrap_or(0);
        eprintln!(
            "generated {dbname}: {} MiB in {:.0} s",
            db_bytes >> 20,
            started.elapsed().as_secs_f64()
        );
        let mut n = 0;
        let lifeboat_run = best(runs, || {
            n += 1;
            let plan = format!("bench-{i}-{n}");
            let event = dir.path.join(format!("{plan}.json"));
            let payload = json!({
                "plan": plan,
                "databases": [{"name": dbname, "host": "127.0.0.1", "port": server.port,
                               "dbname": dbname, "secret_arn": secret}],
            });
            std::fs::write(&event, payload.to_string()).expect("event");
            let mut c = Command::new(&lifeboat);
            c.args(["run", "pg-dump", "--event"])
                .arg(&event)
                .env("AWS_ENDPOINT_URL", &emulator.endpoint)
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_REGION", "us-east-1")
                .env("LIFEBOAT_SNS_TOPIC_ARN", &topic)
                .env("LIFEBOAT_BUCKET", BUCKET)
                .env("PG_DUMP_PATH", newest_bin().join("pg_dump"))
                .env("RUST_LOG", "warn");
            let (wall, rss_kib) = timed(c);
            Run { wall, rss_kib }
        });
        let dump_bytes = object_size(&aws, &dbname).await;
        println!(
            "{:>9} {:>11.1} {:>10.2} {:>9.1} {:>9.1}",
            db_bytes >> 20,
            dump_bytes as f64 / 1048576.0,
            lifeboat_run.wall,
            dump_bytes as f64 / 1e6 / lifeboat_run.wall,
            lifeboat_run.rss_kib as f64 / 1024.0,
        );
        if *size == compare_at {
            comparison = Some((dbname.clone(), lifeboat_run.wall));
        }
    }

    let Some((dbname, lifeboat_wall)) = comparison else {
        return;
    };
    let limit = best(runs, || {
        let (wall, rss_kib) = timed(shell(
            &format!("\"$PG_DUMP\" -Fc -d {dbname} > /dev/null"),
            &server,
        ));
        Run { wall, rss_kib }
    });
    let file = dir.path.join("seed.dump");
    let seeds = best(runs, || {
        let script = format!(
            "\"$PG_DUMP\" -Fc -d {dbname} > {file} && {python} -c 'import boto3,sys; boto3.client(\"s3\", endpoint_url=sys.argv[1], region_name=\"us-east-1\", aws_access_key_id=\"testing\", aws_secret_access_key=\"testing\").upload_file(sys.argv[2], \"{BUCKET}\", \"seeds/{dbname}.dump\")' {} {file}",
            emulator.endpoint,
            file = file.display(),
            python = python.display(),
        );
        let (wall, rss_kib) = timed(shell(&script, &server));
        let _ = std::fs::remove_file(&file);
        Run { wall, rss_kib }
    });
    println!();
    println!("at {dbname}, wall seconds (best of {runs}):");
    println!("  pg_dump -Fc > /dev/null (the limit)        {:>8.2}", limit.wall);
    println!("  pg_dump -Fc > file && upload (the seeds)   {:>8.2}", seeds.wall);
    println!("  lifeboat pg-dump (stream, hash, check, S3) {:>8.2}", lifeboat_wall);
    println!(
        "  speed vs the limit: {:.2}x (target >= 0.95); vs the seeds' pipeline: {:.2}x (target >= 1.5)",
        limit.wall / lifeboat_wall,
        seeds.wall / lifeboat_wall
    );
}

async fn aws_sdk_secretsmanager_arn(aws: &aws_config::SdkConfig, password: &str) -> String {
    aws_sdk_secretsmanager::Client::new(aws)
        .create_secret()
        .name("bench")
        .secret_string(json!({"username": "postgres", "password": password}).to_string())
        .send()
        .await
        .expect("secret")
        .arn
        .unwrap_or_default()
}

/// The size of the newest dump of `database` in the bucket.
async fn object_size(aws: &aws_config::SdkConfig, database: &str) -> u64 {
    let listed = lifeboat::aws::s3_client(aws)
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(format!("{database}/"))
        .send()
        .await
        .expect("list");
    listed
        .contents
        .unwrap_or_default()
        .iter()
        .filter(|o| o.key().is_some_and(|k| k.ends_with(".dump")))
        .filter_map(|o| o.size)
        .max()
        .unwrap_or(0) as u64
}
