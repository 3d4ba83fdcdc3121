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
fn timed(command: Command) -> Run {
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
    let wall = parts
        .next()
        .and_then(|s| s.parse().ok())
        .expect("wall time");
    let rss_kib = parts.next().and_then(|s| s.parse().ok()).expect("max RSS");
    Run { wall, rss_kib }
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

/// What every `lifeboat run pg-dump` of the benchmark needs.
struct Bench {
    lifeboat: std::path::PathBuf,
    dir: std::path::PathBuf,
    endpoint: String,
    topic: String,
    secret: String,
    port: u16,
}

impl Bench {
    /// Runs `lifeboat run pg-dump` on `dbname` under a plan of its own (so no run is skipped).
    fn lifeboat(&self, dbname: &str, plan: &str, compression: Option<&str>) -> Run {
        let event = self.dir.join(format!("{plan}.json"));
        let mut database = json!({"name": dbname, "host": "127.0.0.1", "port": self.port,
                                  "dbname": dbname, "secret_arn": self.secret});
        if let Some(c) = compression {
            database["compression"] = json!(c);
        }
        std::fs::write(
            &event,
            json!({"plan": plan, "databases": [database]}).to_string(),
        )
        .expect("event");
        let mut c = Command::new(&self.lifeboat);
        c.args(["run", "pg-dump", "--event"])
            .arg(&event)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("LIFEBOAT_SNS_TOPIC_ARN", &self.topic)
            .env("LIFEBOAT_BUCKET", BUCKET)
            .env("PG_DUMP_PATH", newest_bin().join("pg_dump"))
            .env("RUST_LOG", "warn");
        timed(c)
    }
}

struct Run {
    wall: f64,
    rss_kib: u64,
}

/// The fastest of `runs` runs, with the highest peak RSS among them.
fn best(runs: usize, mut once: impl FnMut() -> Run) -> Run {
    fastest((0..runs).map(|_| once()).collect())
}

fn fastest(mut all: Vec<Run>) -> Run {
    all.sort_by(|a, b| a.wall.total_cmp(&b.wall));
    let peak = all.iter().map(|r| r.rss_kib).max().unwrap_or(0);
    Run {
        wall: all.first().map_or(f64::NAN, |r| r.wall),
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
    let bench = Bench {
        lifeboat,
        dir: dir.path.clone(),
        endpoint: emulator.endpoint.clone(),
        topic,
        secret,
        port: server.port,
    };

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
            bench.lifeboat(&dbname, &format!("bench-{i}-{n}"), None)
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
            comparison = Some(dbname.clone());
        }
    }

    let Some(dbname) = comparison else {
        return;
    };
    // Rounds of all four, so that a busy moment of the machine hits them alike.
    let file = dir.path.join("seed.dump");
    let mut rounds: [Vec<Run>; 4] = Default::default();
    // The emulator's CPU during each kind of run: on 2 cores it competes with pg_dump.
    let mut moto_cpu = [0.0f64; 4];
    for round in 0..runs {
        let limit = shell(
            &format!("\"$PG_DUMP\" -Fc -d {dbname} > /dev/null"),
            &server,
        );
        let before = emulator.cpu_seconds();
        rounds[0].push(timed(limit));
        moto_cpu[0] += emulator.cpu_seconds() - before;
        let seeds = shell(
            &format!(
                "\"$PG_DUMP\" -Fc -d {dbname} > {file} && {python} -c 'import boto3,sys; boto3.client(\"s3\", endpoint_url=sys.argv[1], region_name=\"us-east-1\", aws_access_key_id=\"testing\", aws_secret_access_key=\"testing\").upload_file(sys.argv[2], \"{BUCKET}\", \"seeds/{dbname}.dump\")' {} {file}",
                emulator.endpoint,
                file = file.display(),
                python = python.display(),
            ),
            &server,
        );
        let before = emulator.cpu_seconds();
        rounds[1].push(timed(seeds));
        moto_cpu[1] += emulator.cpu_seconds() - before;
        let _ = std::fs::remove_file(&file);
        let before = emulator.cpu_seconds();
        rounds[2].push(bench.lifeboat(&dbname, &format!("gzip-{round}"), Some("gzip")));
        moto_cpu[2] += emulator.cpu_seconds() - before;
        let before = emulator.cpu_seconds();
        rounds[3].push(bench.lifeboat(&dbname, &format!("zstd-{round}"), None));
        moto_cpu[3] += emulator.cpu_seconds() - before;
    }
    let [limit, seeds, gzip, zstd] = rounds.map(fastest);
    println!();
    println!(
        "at {dbname}, wall seconds (best of {runs}, in rounds), and the emulator's mean CPU seconds per run:"
    );
    let rows = [
        ("pg_dump -Fc > /dev/null (the limit)", &limit),
        ("pg_dump -Fc > file && upload (the seeds)", &seeds),
        ("lifeboat pg-dump, compression gzip (as -Fc)", &gzip),
        ("lifeboat pg-dump, default (zstd)", &zstd),
    ];
    for ((what, run), cpu) in rows.into_iter().zip(moto_cpu) {
        println!(
            "  {what:<46} {:>8.2}   moto CPU {:>6.1}",
            run.wall,
            cpu / runs as f64
        );
    }
    println!(
        "  gzip, the same work as the limit: {:.2}x the limit's speed (target >= 0.95), {:.2}x the seeds' pipeline (target >= 1.5)",
        limit.wall / gzip.wall,
        seeds.wall / gzip.wall
    );
    println!(
        "  zstd, the default:                {:.2}x the limit's speed, {:.2}x the seeds' pipeline",
        limit.wall / zstd.wall,
        seeds.wall / zstd.wall
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
