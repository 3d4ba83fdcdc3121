//! Benchmark of `pg-dump`: wall time against `pg_dump -Fc > /dev/null` (the
//! limit with gzip) and `pg_dump -Fc --compress=zstd > /dev/null` (the limit
//! of the default, zstd), against the seeds' pipeline (`pg_dump -Fc > file`,
//! then an upload of the file with boto3's transfer manager, the one `aws s3
//! cp` uses), all in the same run; the peak RSS of the `lifeboat` process at
//! several database sizes; and the CPU time of the `lifeboat` process alone
//! against that of the `pg_dump` it runs.
//!
//! ```text
//! cargo build --release -p lifeboat-cli
//! cargo run -p lifeboat-tests --example pg_dump_bench -- [SIZES_MIB] [COMPARE_MIB] [RUNS] [--s3s-fs PATH] [--baseline PATH] [--jobs N [--s3-latency MS]]
//! ```
//!
//! `--baseline PATH` runs another build of `lifeboat` (an earlier commit's,
//! say) with the default settings in the same rounds, S3 on s3s-fs when
//! given, else on moto: a change's cost or gain, measured in one run.
//!
//! Defaults: sizes `100,1024,4096`, comparison at 1024 MiB, best of 3 runs.
//!
//! With `--jobs N`, the comparison is of parallel dumps instead, on the
//! comparison size's database (its tables dumped side by side): `pg_dump -Fd
//! -j N --compress=zstd -f DIR` to local disk (the raw directory dump),
//! Lifeboat's single stream (the default, zstd) and Lifeboat with `jobs: N`,
//! in the same rounds (and `--baseline`'s with `jobs: N`, when given); the
//! per-size runs are skipped. `--s3-latency MS` (with `--s3s-fs`) puts a
//! proxy before s3s-fs for Lifeboat's runs there that holds each request
//! for up to MS milliseconds (evenly drawn), as a far S3 answers later than
//! one on this machine. Its database is of
//! several large tables: the generated one at a quarter of the size, with
//! three copies of its orders table; with `--as-generated`, the generated
//! one as it is (one table of four fifths of it: what parallel jobs cannot
//! split). The parallel rows also give the most local storage the dump's
//! files took at once (their allocated blocks, sampled every 20 ms).
//! Everything runs on 127.0.0.1: a moto server, a PostgreSQL 18 cluster and,
//! with `--s3s-fs`, that S3 server (`cargo install s3s-fs --features binary`),
//! which takes far less CPU than moto: at the comparison size Lifeboat's
//! default then runs once more with S3 there (the rest stays on moto).
//!
//! CPU accounting: every `pg_dump` runs through a wrapper that records its
//! user and system time (GNU time on it alone: it starts no children), and
//! every measured command runs under GNU time, which counts the command and
//! all the children it waited for. A `lifeboat` run's own CPU is the second
//! less the first: the `lifeboat` process, fingerprint included, and the
//! wrapper's GNU time (about a millisecond); not pg_dump, not PostgreSQL,
//! not the S3 server.

use lifeboat_tests::faults::{FaultConfig, FaultProxy};
use lifeboat_tests::postgres::{PgServer, generate, newest_bin};
use lifeboat_tests::{Emulator, TempDir, cpu_seconds_of, repo_root, sdk_config_at, start_server};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Instant;

const BUCKET: &str = "lifeboat-bench";

/// One measured command.
struct Run {
    /// Wall seconds.
    wall: f64,
    /// Peak RSS in KiB (the largest of the process and the children it waited for).
    rss_kib: u64,
    /// User and system seconds of the process and all the children it waited for.
    cpu: f64,
    /// User and system seconds of the `pg_dump` runs among those children.
    pg_dump_cpu: f64,
    /// The most local storage its files took at once, in KiB, where sampled.
    local_kib: u64,
}

impl Run {
    /// CPU seconds of the command less its `pg_dump`s.
    fn own_cpu(&self) -> f64 {
        self.cpu - self.pg_dump_cpu
    }
}

/// `pg_dump` behind a wrapper that appends its user and system seconds to a file.
struct PgDumpMeter {
    /// The wrapper, to run in place of `pg_dump`.
    program: PathBuf,
    times: PathBuf,
}

impl PgDumpMeter {
    fn new(dir: &Path) -> Self {
        let program = dir.join("pg_dump");
        let times = dir.join("pg_dump.times");
        // `lifeboat` runs pg_dump in an empty environment: every path is written out.
        std::fs::write(
            &program,
            format!(
                "#!/bin/sh\nexec /usr/bin/time -a -o '{}' -f '%U %S' '{}' \"$@\"\n",
                times.display(),
                newest_bin().join("pg_dump").display()
            ),
        )
        .expect("pg_dump wrapper");
        std::fs::set_permissions(
            &program,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        PgDumpMeter { program, times }
    }

    /// The CPU seconds of the pg_dump runs since the last call (`--version` included).
    fn take(&self) -> f64 {
        let text = std::fs::read_to_string(&self.times).unwrap_or_default();
        let _ = std::fs::remove_file(&self.times);
        // A failed run adds a line "Command exited with non-zero status N" before its times.
        text.lines()
            .filter_map(|line| {
                let (user, system) = line.split_once(' ')?;
                Some(user.parse::<f64>().ok()? + system.parse::<f64>().ok()?)
            })
            .sum()
    }
}

/// Wall seconds, peak RSS and CPU seconds of a command, as GNU time measures them.
fn timed(command: Command, meter: &PgDumpMeter) -> Run {
    let out_file = std::env::temp_dir().join(format!("lifeboat-bench-time-{}", std::process::id()));
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped
        .arg("-f")
        .arg("%e %M %U %S")
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
    meter.take();
    let out = wrapped.output().expect("run /usr/bin/time");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        command.get_program(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&out_file).expect("time output");
    let fields: Vec<f64> = text
        .split_whitespace()
        .map(|s| s.parse().expect("a figure of GNU time"))
        .collect();
    let [wall, rss_kib, user, system] = fields[..] else {
        panic!("GNU time printed {text:?}");
    };
    Run {
        wall,
        rss_kib: rss_kib as u64,
        cpu: user + system,
        pg_dump_cpu: meter.take(),
        local_kib: 0,
    }
}

/// `run`, with the most local storage (allocated blocks, holes not
/// counted) that the files under `dir` took at once, sampled every 20 ms.
fn sampled(dir: &Path, run: impl FnOnce() -> Run) -> Run {
    fn allocated_under(dir: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .filter_map(Result::ok)
            .map(|entry| match entry.metadata() {
                Ok(m) if m.is_dir() => allocated_under(&entry.path()),
                Ok(m) => m.blocks() * 512,
                Err(_) => 0,
            })
            .sum()
    }
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                peak = peak.max(allocated_under(dir));
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            peak
        });
        let mut measured = run();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        measured.local_kib = sampler.join().expect("the sampler") >> 10;
        measured
    })
}

/// `bash -c script` with `$PG_DUMP` (the newest pg_dump, metered) and the server's login in its environment.
fn shell(script: &str, server: &PgServer, meter: &PgDumpMeter) -> Command {
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg(script)
        .env("PG_DUMP", &meter.program)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", server.port.to_string())
        .env("PGUSER", "postgres")
        .env("PGPASSWORD", &server.password);
    c
}

/// `s3s-fs`, an S3 server in Rust over a folder, on a free loopback port; stopped when dropped.
struct S3sFs {
    child: Child,
    endpoint: String,
    _root: TempDir,
}

impl S3sFs {
    fn start(program: &Path) -> Self {
        let root = TempDir::new("s3s-fs");
        let log = root.path.join("s3s-fs.log");
        let buckets = root.path.join("buckets");
        std::fs::create_dir(&buckets).expect("the buckets' folder");
        let (child, port) = start_server(&program.display().to_string(), &log, |port| {
            let mut command = Command::new(program);
            command
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                // The credentials every client of the benchmark signs with.
                .args(["--access-key", "testing", "--secret-key", "testing"])
                .arg(&buckets);
            command
        });
        S3sFs {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            _root: root,
        }
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What every `lifeboat run pg-dump` of the benchmark needs.
struct Bench {
    lifeboat: PathBuf,
    dir: PathBuf,
    /// The `lifeboat` runs' `TMPDIR`: a parallel dump's local storage.
    tmp: PathBuf,
    endpoint: String,
    topic: String,
    secret: String,
    port: u16,
    meter: PgDumpMeter,
}

impl Bench {
    /// Runs `lifeboat run pg-dump` on `dbname` under a plan of its own (so no
    /// run is skipped), with S3 at `s3_endpoint` if given, else on moto.
    fn lifeboat(
        &self,
        dbname: &str,
        plan: &str,
        compression: Option<&str>,
        jobs: Option<u16>,
        s3_endpoint: Option<&str>,
    ) -> Run {
        let event = self.event(dbname, plan, compression, jobs);
        timed(
            self.command(&self.lifeboat, &event, s3_endpoint),
            &self.meter,
        )
    }

    /// The same run of the default settings (and `jobs`) by another `lifeboat` binary.
    fn lifeboat_of(
        &self,
        program: &Path,
        dbname: &str,
        plan: &str,
        jobs: Option<u16>,
        s3_endpoint: Option<&str>,
    ) -> Run {
        let event = self.event(dbname, plan, None, jobs);
        timed(self.command(program, &event, s3_endpoint), &self.meter)
    }

    /// The payload of a run of `dbname` under `plan`, written to a file.
    fn event(
        &self,
        dbname: &str,
        plan: &str,
        compression: Option<&str>,
        jobs: Option<u16>,
    ) -> PathBuf {
        let event = self.dir.join(format!("{plan}.json"));
        let mut database = json!({"name": dbname, "host": "127.0.0.1", "port": self.port,
                                  "dbname": dbname, "secret_arn": self.secret});
        if let Some(c) = compression {
            database["compression"] = json!(c);
        }
        if let Some(jobs) = jobs {
            database["jobs"] = json!(jobs);
        }
        std::fs::write(
            &event,
            json!({"plan": plan, "databases": [database]}).to_string(),
        )
        .expect("event");
        event
    }

    /// `program run pg-dump --event EVENT`, S3 at `s3_endpoint` if given, else on moto.
    fn command(&self, program: &Path, event: &Path, s3_endpoint: Option<&str>) -> Command {
        let mut c = Command::new(program);
        c.args(["run", "pg-dump", "--event"])
            .arg(event)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("LIFEBOAT_SNS_TOPIC_ARN", &self.topic)
            .env("LIFEBOAT_BUCKET", BUCKET)
            .env("PG_DUMP_PATH", &self.meter.program)
            .env("TMPDIR", &self.tmp)
            .env("RUST_LOG", "warn");
        // The SDK's service-specific endpoint: S3 there, the rest on moto.
        match s3_endpoint {
            Some(url) => c.env("AWS_ENDPOINT_URL_S3", url),
            None => c.env_remove("AWS_ENDPOINT_URL_S3"),
        };
        c
    }
}

/// Runs of one kind: the fastest wall time, the highest peak RSS, mean CPU.
struct Summary {
    wall: f64,
    rss_kib: u64,
    own_cpu: f64,
    pg_dump_cpu: f64,
    local_kib: u64,
}

fn summarize(all: &[Run]) -> Summary {
    let n = all.len().max(1) as f64;
    Summary {
        wall: all.iter().map(|r| r.wall).fold(f64::INFINITY, f64::min),
        rss_kib: all.iter().map(|r| r.rss_kib).max().unwrap_or(0),
        own_cpu: all.iter().map(Run::own_cpu).sum::<f64>() / n,
        pg_dump_cpu: all.iter().map(|r| r.pg_dump_cpu).sum::<f64>() / n,
        local_kib: all.iter().map(|r| r.local_kib).max().unwrap_or(0),
    }
}

/// One line of the comparison: its runs, and the S3 servers' CPU seconds during them.
struct Row {
    what: &'static str,
    runs: Vec<Run>,
    moto_cpu: f64,
    s3s_cpu: f64,
}

impl Row {
    fn new(what: &'static str) -> Self {
        Row {
            what,
            runs: Vec::new(),
            moto_cpu: 0.0,
            s3s_cpu: 0.0,
        }
    }

    /// Runs `once`, counting what the S3 servers spend meanwhile.
    fn measure(&mut self, emulator: &Emulator, s3s: Option<&S3sFs>, once: impl FnOnce() -> Run) {
        let s3s_cpu = || s3s.map_or(0.0, |s| cpu_seconds_of(s.child.id()));
        let (moto_before, s3s_before) = (emulator.cpu_seconds(), s3s_cpu());
        self.runs.push(once());
        self.moto_cpu += emulator.cpu_seconds() - moto_before;
        self.s3s_cpu += s3s_cpu() - s3s_before;
    }
}

#[tokio::main]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let s3s_program = args.iter().position(|a| a == "--s3s-fs").map(|i| {
        let path = args.get(i + 1).cloned().expect("--s3s-fs PATH");
        args.drain(i..=i + 1);
        PathBuf::from(path)
    });
    // Another build of `lifeboat`, run beside the default in the same rounds.
    let baseline = args.iter().position(|a| a == "--baseline").map(|i| {
        let path = PathBuf::from(args.get(i + 1).cloned().expect("--baseline PATH"));
        args.drain(i..=i + 1);
        assert!(path.exists(), "no lifeboat binary at {}", path.display());
        path
    });
    let jobs: Option<u16> = args.iter().position(|a| a == "--jobs").map(|i| {
        let n = args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .expect("--jobs N");
        args.drain(i..=i + 1);
        n
    });
    let as_generated = match args.iter().position(|a| a == "--as-generated") {
        Some(i) => {
            args.remove(i);
            assert!(
                jobs.is_some(),
                "--as-generated is for the comparison of --jobs N"
            );
            true
        }
        None => false,
    };
    let latency = args.iter().position(|a| a == "--s3-latency").map(|i| {
        let ms: u64 = args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .expect("--s3-latency MS");
        args.drain(i..=i + 1);
        std::time::Duration::from_millis(ms)
    });
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
    let s3s = s3s_program.as_deref().map(S3sFs::start);
    if let Some(s3s) = &s3s {
        lifeboat::aws::s3_client(&sdk_config_at(&s3s.endpoint, "us-east-1").await)
            .create_bucket()
            .bucket(BUCKET)
            .send()
            .await
            .expect("bucket on s3s-fs");
    }
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
    let tmp = dir.path.join("tmp");
    std::fs::create_dir_all(&tmp).expect("the runs' TMPDIR");
    let bench = Bench {
        lifeboat,
        dir: dir.path.clone(),
        tmp,
        endpoint: emulator.endpoint.clone(),
        topic,
        secret,
        port: server.port,
        meter: PgDumpMeter::new(&dir.path),
    };

    println!(
        "pg-dump benchmark: PostgreSQL {} on 127.0.0.1, moto S3 at {}{}, best of {runs}",
        server.version(),
        emulator.endpoint,
        s3s.as_ref()
            .map_or(String::new(), |s| format!(", s3s-fs S3 at {}", s.endpoint)),
    );
    println!(
        "CPU: mean seconds per run; lifeboat = the lifeboat process alone, pg_dump = the pg_dump it ran"
    );
    println!(
        "{:>9} {:>11} {:>10} {:>9} {:>9} {:>12} {:>11} {:>9}",
        "db MiB",
        "dump MiB",
        "lifeboat s",
        "MB/s",
        "RSS MiB",
        "lifeboat CPU",
        "pg_dump CPU",
        "ratio"
    );
    let mut comparison = None;
    for (i, size) in sizes.iter().enumerate() {
        let dbname = format!("bench_{size}");
        let started = Instant::now();
        if jobs.is_some() && !as_generated {
            // Several large tables, as parallel jobs want them: the generated
            // orders table at a quarter of the size, and three copies of it.
            generate(&server, &dbname, *size / 4);
            for n in 2..=4 {
                server.sql(
                    &dbname,
                    &format!("CREATE TABLE sales.orders_{n} AS TABLE sales.orders"),
                );
            }
        } else {
            generate(&server, &dbname, *size);
        }
        let db_bytes: u64 = server
            .sql(&dbname, &format!("SELECT pg_database_size('{dbname}')"))
            .parse()
            .unwrap_or(0);
        eprintln!(
            "generated {dbname}: {} MiB in {:.0} s",
            db_bytes >> 20,
            started.elapsed().as_secs_f64()
        );
        if jobs.is_some() {
            if *size == compare_at {
                comparison = Some((dbname.clone(), 0));
            }
            continue;
        }
        let all: Vec<Run> = (1..=runs)
            .map(|n| bench.lifeboat(&dbname, &format!("bench-{i}-{n}"), None, None, None))
            .collect();
        let run = summarize(&all);
        let dump_bytes = object_size(&aws, &dbname).await;
        println!(
            "{:>9} {:>11.1} {:>10.2} {:>9.1} {:>9.1} {:>12.2} {:>11.2} {:>8.1}%",
            db_bytes >> 20,
            dump_bytes as f64 / 1048576.0,
            run.wall,
            dump_bytes as f64 / 1e6 / run.wall,
            run.rss_kib as f64 / 1024.0,
            run.own_cpu,
            run.pg_dump_cpu,
            100.0 * run.own_cpu / run.pg_dump_cpu,
        );
        if *size == compare_at {
            comparison = Some((dbname.clone(), dump_bytes));
        }
    }

    assert!(
        latency.is_none() || jobs.is_some(),
        "--s3-latency is for the comparison of --jobs N"
    );
    let Some((dbname, zstd_bytes)) = comparison else {
        return;
    };
    if let Some(jobs) = jobs {
        let far = match (latency, &s3s) {
            (Some(max_latency), Some(s3s)) => {
                let held = FaultConfig {
                    latency: 1.0,
                    max_latency,
                    ..FaultConfig::none(1)
                };
                Some(FaultProxy::start(&s3s.endpoint, held).await)
            }
            (Some(_), None) => panic!("--s3-latency holds requests to s3s-fs: give --s3s-fs"),
            (None, _) => None,
        };
        compare_jobs(
            &bench,
            (
                &emulator,
                s3s.as_ref(),
                far.as_ref()
                    .map(|p| (p.endpoint.as_str(), latency.unwrap_or_default())),
            ),
            &server,
            &dbname,
            (jobs, baseline.as_deref()),
            runs,
        );
        return;
    }
    // Rounds of all kinds, so that a busy moment of the machine hits them alike.
    let file = dir.path.join("seed.dump");
    let mut limit = Row::new("pg_dump -Fc > /dev/null (the gzip limit)");
    let mut seeds = Row::new("pg_dump -Fc > file && upload (the seeds)");
    let mut gzip = Row::new("lifeboat pg-dump, gzip (as -Fc), moto");
    let mut zstd_limit = Row::new("pg_dump -Fc --compress=zstd > /dev/null");
    let mut zstd = Row::new("lifeboat pg-dump, default (zstd), moto");
    let mut zstd_s3s = Row::new("lifeboat pg-dump, default (zstd), s3s-fs");
    let mut zstd_baseline = Row::new("--baseline's lifeboat, default (zstd), s3s-fs or moto");
    for round in 0..runs {
        let s3s = s3s.as_ref();
        limit.measure(&emulator, s3s, || {
            let script = format!("\"$PG_DUMP\" -Fc -d {dbname} > /dev/null");
            timed(shell(&script, &server, &bench.meter), &bench.meter)
        });
        seeds.measure(&emulator, s3s, || {
            let script = format!(
                "\"$PG_DUMP\" -Fc -d {dbname} > {file} && {python} -c 'import boto3,sys; boto3.client(\"s3\", endpoint_url=sys.argv[1], region_name=\"us-east-1\", aws_access_key_id=\"testing\", aws_secret_access_key=\"testing\").upload_file(sys.argv[2], \"{BUCKET}\", \"seeds/{dbname}.dump\")' {} {file}",
                emulator.endpoint,
                file = file.display(),
                python = python.display(),
            );
            timed(shell(&script, &server, &bench.meter), &bench.meter)
        });
        let _ = std::fs::remove_file(&file);
        gzip.measure(&emulator, s3s, || {
            bench.lifeboat(&dbname, &format!("gzip-{round}"), Some("gzip"), None, None)
        });
        zstd_limit.measure(&emulator, s3s, || {
            let script = format!("\"$PG_DUMP\" -Fc --compress=zstd -d {dbname} > /dev/null");
            timed(shell(&script, &server, &bench.meter), &bench.meter)
        });
        zstd.measure(&emulator, s3s, || {
            bench.lifeboat(&dbname, &format!("zstd-{round}"), None, None, None)
        });
        if let Some(s3s) = s3s {
            zstd_s3s.measure(&emulator, Some(s3s), || {
                let plan = format!("zstd-s3s-{round}");
                bench.lifeboat(&dbname, &plan, None, None, Some(&s3s.endpoint))
            });
        }
        if let Some(program) = &baseline {
            zstd_baseline.measure(&emulator, s3s, || {
                let plan = format!("zstd-baseline-{round}");
                let endpoint = s3s.map(|s| s.endpoint.as_str());
                bench.lifeboat_of(program, &dbname, &plan, None, endpoint)
            });
        }
    }
    if let Some(s3s) = &s3s {
        let on_s3s = object_size(&sdk_config_at(&s3s.endpoint, "us-east-1").await, &dbname).await;
        // Proof that `AWS_ENDPOINT_URL_S3` sent the dumps there.
        assert!(on_s3s > 0, "no dump of {dbname} on s3s-fs");
        eprintln!("the default's dump on s3s-fs: {on_s3s} bytes, on moto: {zstd_bytes} bytes");
    }

    println!();
    println!(
        "at {dbname}, wall seconds (best of {runs}, in rounds); CPU seconds, mean per run: of the command less its pg_dump, of pg_dump, of each S3 server:"
    );
    println!(
        "  {:<46} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "", "wall", "RSS MiB", "own CPU", "pg_dump", "moto", "s3s-fs", "local MiB"
    );
    let rows = [
        &limit,
        &seeds,
        &gzip,
        &zstd_limit,
        &zstd,
        &zstd_s3s,
        &zstd_baseline,
    ];
    for row in rows.into_iter().filter(|r| !r.runs.is_empty()) {
        let s = summarize(&row.runs);
        let n = row.runs.len() as f64;
        println!(
            "  {:<46} {:>8.2} {:>8.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            row.what,
            s.wall,
            s.rss_kib as f64 / 1024.0,
            s.own_cpu,
            s.pg_dump_cpu,
            row.moto_cpu / n,
            row.s3s_cpu / n,
        );
    }
    let [limit, seeds, gzip, zstd_limit, zstd] =
        [&limit, &seeds, &gzip, &zstd_limit, &zstd].map(|r| summarize(&r.runs));
    println!(
        "  gzip, the same work as the limit: {:.2}x the limit's speed (target >= 0.95), {:.2}x the seeds' pipeline (target >= 1.5)",
        limit.wall / gzip.wall,
        seeds.wall / gzip.wall
    );
    let gib = zstd_bytes as f64 / (1u64 << 30) as f64;
    let mut defaults = vec![("moto", zstd)];
    if !zstd_s3s.runs.is_empty() {
        defaults.push(("s3s-fs", summarize(&zstd_s3s.runs)));
    }
    if !zstd_baseline.runs.is_empty() {
        let on = if s3s.is_some() {
            "s3s-fs (--baseline's lifeboat)"
        } else {
            "moto (--baseline's lifeboat)"
        };
        defaults.push((on, summarize(&zstd_baseline.runs)));
    }
    for (s3, run) in defaults {
        println!(
            "  zstd, the default, S3 on {s3:<7} {:.2}x zstd's limit (target >= 0.9 on s3s-fs), {:.2}x the gzip limit (target >= 2), {:.2}x the seeds' pipeline",
            zstd_limit.wall / run.wall,
            limit.wall / run.wall,
            seeds.wall / run.wall
        );
        println!(
            "    CPU per GiB dumped ({gib:.3} GiB): lifeboat {:.2} s, pg_dump {:.2} s: {:.1}% (target <= 15%)",
            run.own_cpu / gib,
            run.pg_dump_cpu / gib,
            100.0 * run.own_cpu / run.pg_dump_cpu
        );
    }
}

/// Parallel dumps of `dbname` with `jobs` jobs against the single stream and
/// the raw directory dump, and against `baseline`'s `jobs` when given, in
/// rounds, Lifeboat's S3 on s3s-fs when given; prints the rows and the ratios.
fn compare_jobs(
    bench: &Bench,
    (emulator, s3s, far): (
        &Emulator,
        Option<&S3sFs>,
        Option<(&str, std::time::Duration)>,
    ),
    server: &PgServer,
    dbname: &str,
    (jobs, baseline): (u16, Option<&Path>),
    runs: usize,
) {
    let sizes = server.sql(
        dbname,
        "SELECT string_agg(format('%s %s MiB', c.oid::regclass, pg_total_relation_size(c.oid) >> 20), ', ' ORDER BY pg_total_relation_size(c.oid) DESC) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
    );
    println!("{dbname}'s tables: {sizes}");
    let local = bench.dir.join("raw-directory");
    let mut raw = Row::new("pg_dump -Fd -j N --compress=zstd -f DIR");
    let mut single = Row::new("lifeboat pg-dump, one stream (zstd)");
    let mut parallel = Row::new("lifeboat pg-dump, jobs N");
    let mut parallel_baseline = Row::new("--baseline's lifeboat, jobs N");
    let s3 = far
        .map(|(endpoint, _)| endpoint)
        .or(s3s.map(|s| s.endpoint.as_str()));
    for round in 0..runs {
        raw.measure(emulator, s3s, || {
            let _ = std::fs::remove_dir_all(&local);
            let script = format!(
                "\"$PG_DUMP\" -Fd -j {jobs} --compress=zstd -d {dbname} -f {}",
                local.display()
            );
            sampled(&local, || {
                timed(shell(&script, server, &bench.meter), &bench.meter)
            })
        });
        let _ = std::fs::remove_dir_all(&local);
        single.measure(emulator, s3s, || {
            bench.lifeboat(dbname, &format!("single-{round}"), None, None, s3)
        });
        parallel.measure(emulator, s3s, || {
            sampled(&bench.tmp, || {
                bench.lifeboat(dbname, &format!("jobs-{round}"), None, Some(jobs), s3)
            })
        });
        if let Some(program) = baseline {
            parallel_baseline.measure(emulator, s3s, || {
                let plan = format!("jobs-baseline-{round}");
                sampled(&bench.tmp, || {
                    bench.lifeboat_of(program, dbname, &plan, Some(jobs), s3)
                })
            });
        }
    }
    println!();
    println!(
        "at {dbname}, jobs {jobs}, S3 on {}{}: wall seconds (best of {runs}, in rounds); CPU seconds, mean per run; local MiB: the most local storage the dump's files took at once (sampled every 20 ms; the single stream keeps none):",
        if s3s.is_some() { "s3s-fs" } else { "moto" },
        far.map_or(String::new(), |(_, max)| format!(
            " behind a proxy that holds each request up to {} ms (its CPU, in this process, counted in no column)",
            max.as_millis()
        ))
    );
    println!(
        "  {:<46} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "", "wall", "RSS MiB", "own CPU", "pg_dump", "moto", "s3s-fs"
    );
    for row in [&raw, &single, &parallel, &parallel_baseline] {
        if row.runs.is_empty() {
            continue;
        }
        let s = summarize(&row.runs);
        let n = row.runs.len().max(1) as f64;
        println!(
            "  {:<46} {:>8.2} {:>8.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>10.1}",
            row.what.replace(" N", &format!(" {jobs}")),
            s.wall,
            s.rss_kib as f64 / 1024.0,
            s.own_cpu,
            s.pg_dump_cpu,
            row.moto_cpu / n,
            row.s3s_cpu / n,
            s.local_kib as f64 / 1024.0,
        );
    }
    let [raw, single, parallel] = [&raw, &single, &parallel].map(|r| summarize(&r.runs));
    println!(
        "  jobs {jobs}: {:.2}x the single stream's speed (target > 1), {:.2}x the raw directory dump's (target >= 0.8)",
        single.wall / parallel.wall,
        raw.wall / parallel.wall
    );
    if !parallel_baseline.runs.is_empty() {
        let before = summarize(&parallel_baseline.runs);
        println!(
            "  --baseline's jobs {jobs}: {:.2}x the single stream's speed, {:.2}x the raw directory dump's; this build {:.2}x its speed",
            single.wall / before.wall,
            raw.wall / before.wall,
            before.wall / parallel.wall
        );
    }
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
