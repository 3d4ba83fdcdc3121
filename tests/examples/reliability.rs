//! The reliability figures of `docs/reliability.md`: the scenarios of the
//! `reliability` test at full size, printed as Markdown tables.
//!
//! ```sh
//! cargo run -p lifeboat-tests --example reliability -- --seed 7
//! cargo run -p lifeboat-tests --example reliability -- --seed 7 --size test --only faults
//! ```
//!
//! Options: `--seed N` (default 7), `--rate R` (faults per request, default
//! 0.2), `--storm R` (the harsher rate, default 0.4), `--size full|test`,
//! `--only duplicates|faults|prune|freshness` (repeatable). Exits 1 if any
//! promise was broken, and lists them.

#[path = "../tests/integration/reliability/scenarios.rs"]
mod scenarios;

use lifeboat_tests::faults::FaultConfig;
use scenarios::{Sizes, Subject};
use std::time::Instant;

struct Options {
    seed: u64,
    rate: f64,
    storm: f64,
    sizes: Sizes,
    size: String,
    only: Vec<String>,
}

fn options() -> Options {
    let mut o = Options {
        seed: 7,
        rate: 0.2,
        storm: 0.4,
        sizes: Sizes::full(),
        size: "full".into(),
        only: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&arg));
        match arg.as_str() {
            "--seed" => o.seed = value().parse().unwrap_or_else(|_| usage("--seed")),
            "--rate" => o.rate = value().parse().unwrap_or_else(|_| usage("--rate")),
            "--storm" => o.storm = value().parse().unwrap_or_else(|_| usage("--storm")),
            "--size" => {
                o.size = value();
                o.sizes = match o.size.as_str() {
                    "full" => Sizes::full(),
                    "test" => Sizes::test(),
                    _ => usage("--size"),
                }
            }
            "--only" => o.only.push(value()),
            _ => usage(&arg),
        }
    }
    o
}

fn usage(arg: &str) -> ! {
    eprintln!(
        "reliability: bad option {arg}\nusage: reliability [--seed N] [--rate R] [--storm R] [--size full|test] [--only duplicates|faults|prune|freshness]..."
    );
    std::process::exit(2)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let o = options();
    let wanted = |name: &str| o.only.is_empty() || o.only.iter().any(|w| w == name);
    let started = Instant::now();
    let mut broken: Vec<String> = Vec::new();
    // Broken promises also go to stderr at once, so a long run that is cut short still shows them.
    let mut note = |scenario: &str, b: Vec<String>| {
        eprintln!("{scenario}: {} broken promise(s)", b.len());
        for b in &b {
            eprintln!("- {scenario}: {b}");
        }
        broken.extend(b.into_iter().map(|b| format!("{scenario}: {b}")));
    };
    println!(
        "Lifeboat reliability, seed {}, size {}, faults {:.0} % (storm {:.0} %): {:?}\n",
        o.seed,
        o.size,
        o.rate * 100.0,
        o.storm * 100.0,
        o.sizes
    );

    if wanted("duplicates") {
        println!("### Duplicate delivery\n");
        println!(
            "| function | deliveries | at once | sources | backups | duplicates | created | skipped | failed runs | alerts | requests | seconds |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for subject in Subject::ALL {
            let (f, b) = scenarios::duplicates_scenario(subject, &o.sizes, o.seed).await;
            println!(
                "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
                f.function,
                f.deliveries,
                f.wave,
                f.sources,
                f.backups,
                f.duplicates,
                f.created,
                f.skipped,
                f.failed_runs,
                f.alerts,
                f.requests,
                f.seconds
            );
            note("duplicates", b);
        }
        println!();
    }

    if wanted("faults") {
        println!("### Faults on every AWS call\n");
        println!(
            "| function | fault rate | slots × sources | runs | first runs ok | backed up by first run | reported failed by first run | first runs refused | most runs per slot | alerts | alerts lost | duplicates | faults (after) | seconds |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for rate in [o.rate, o.storm] {
            for subject in Subject::ALL {
                let config = FaultConfig::mixed(o.seed, rate);
                let (f, b) = scenarios::faults_scenario(subject, &o.sizes, config).await;
                println!(
                    "| `{}` | {:.0} % | {} × {} | {} | {} | {} of {} | {} | {} | {} | {} | {} | {} | {} ({}) | {:.1} |",
                    f.function,
                    rate * 100.0,
                    f.slots,
                    f.sources,
                    f.runs,
                    f.first_runs_ok,
                    f.first_run_backed_up,
                    f.slots * f.sources,
                    f.first_run_failed,
                    f.first_runs_refused,
                    f.most_runs_per_slot,
                    f.alerts,
                    f.alerts_lost,
                    f.duplicates,
                    f.faults,
                    f.faults_after,
                    f.seconds
                );
                note(&format!("faults {:.0} %", rate * 100.0), b);
            }
        }
        println!();
    }

    if wanted("prune") {
        println!("### `prune` under faults\n");
        println!(
            "| fault rate | backups | planned deletions | max_deletions | runs | runs ok | runs refused | failed deletions | unchecked | deleted outside plan | most deleted in a run | report mismatches | bystanders lost | faults (after) | seconds |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for rate in [o.rate, o.storm] {
            let (f, b) =
                scenarios::prune_scenario(&o.sizes, FaultConfig::mixed(o.seed, rate)).await;
            println!(
                "| {:.0} % | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} ({}) | {:.1} |",
                rate * 100.0,
                f.backups,
                f.planned,
                f.max_deletions,
                f.runs,
                f.runs_ok,
                f.runs_refused,
                f.failed_deletions,
                f.unchecked,
                f.outside_plan,
                f.most_deleted_in_a_run,
                f.report_mismatches,
                f.bystanders_lost,
                f.faults,
                f.faults_after,
                f.seconds
            );
            note(&format!("prune {:.0} %", rate * 100.0), b);
        }
        println!();
    }

    if wanted("freshness") {
        println!("### `freshness` under faults\n");
        println!(
            "| fault rate | resources | runs | runs reported | runs failed (alerted) | reported fresh but not | states unlike the truth | alerts | faults (after) | seconds |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for rate in [o.rate, o.storm] {
            let (f, b) =
                scenarios::freshness_scenario(&o.sizes, FaultConfig::mixed(o.seed, rate)).await;
            println!(
                "| {:.0} % | {} | {} | {} | {} | {} | {} | {} | {} ({}) | {:.1} |",
                rate * 100.0,
                f.resources,
                f.runs,
                f.runs_reported,
                f.runs_failed,
                f.false_fresh,
                f.wrong_states,
                f.alerts,
                f.faults,
                f.faults_after,
                f.seconds
            );
            note(&format!("freshness {:.0} %", rate * 100.0), b);
        }
        println!();
    }

    println!(
        "Broken promises: {} (in {:.0} s)",
        broken.len(),
        started.elapsed().as_secs_f64()
    );
    for b in &broken {
        println!("- {b}");
    }
    if !broken.is_empty() {
        std::process::exit(1);
    }
}
