//! Benchmark of the retention engine: plan 100,000 backups across 1,000
//! sources (100 each, hourly to yearly spread) with the seeds' policy, and
//! compare with the least any planner must do: sort the same backups by time.
//!
//!     cargo run -p lifeboat --example retention_bench [-- BACKUPS SOURCES]

use chrono::{Duration, TimeZone, Utc};
use lifeboat::rules::retention::{KeepPolicy, Point, apply};
use std::time::Instant;

/// The backups in a scrambled order, as a listing may return them (a fixed xorshift, so runs compare).
fn shuffled(mut group: Vec<Point>) -> Vec<Point> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ group.len() as u64;
    for i in (1..group.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        group.swap(i, (state % (i as u64 + 1)) as usize);
    }
    group
}

fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let sources: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let per_source = total / sources;
    let now = Utc
        .with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
        .single()
        .expect("time");
    // Each source: backups 7 hours apart, so they cross hours, days, weeks, months and years.
    let groups: Vec<Vec<Point>> = (0..sources)
        .map(|s| {
            (0..per_source)
                .map(|i| Point {
                    id: format!("src{s:04}-{i:05}"),
                    time: now - Duration::hours(7 * i as i64 + s as i64 % 7),
                    complete: i % 50 != 7,
                })
                .collect()
        })
        .map(shuffled)
        .collect();
    let policy: KeepPolicy = serde_json::from_str(
        r#"{"last": 3, "daily": 7, "weekly": 4, "monthly": 12, "yearly": 7, "within": "2d"}"#,
    )
    .expect("policy");

    let mut best_plan = f64::MAX;
    let mut best_sort = f64::MAX;
    let mut kept = 0;
    for _ in 0..5 {
        let input = groups.clone();
        let started = Instant::now();
        kept = input
            .into_iter()
            .map(|group| apply(&policy, group, now).keep.len())
            .sum::<usize>();
        best_plan = best_plan.min(started.elapsed().as_secs_f64() * 1e3);

        let mut input = groups.clone();
        let started = Instant::now();
        for group in &mut input {
            group.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.id.cmp(&b.id)));
        }
        best_sort = best_sort.min(started.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "planned {total} backups across {sources} sources: {best_plan:.1} ms (best of 5); {kept} kept"
    );
    println!(
        "baseline, sorting the same backups by time: {best_sort:.1} ms; plan/sort = {:.2}",
        best_plan / best_sort
    );
    println!(
        "target <= 50 ms: {}",
        if best_plan <= 50.0 { "met" } else { "NOT met" }
    );
}
