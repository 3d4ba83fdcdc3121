//! Scale benchmark of `ebs-snapshot`: N tagged volumes in a private emulator,
//! one invocation, then a second one of the same slot. Prints wall time, AWS
//! calls by operation, peak in-flight requests, and the duplicates found.
//!
//!     cargo run -p lifeboat-tests --example ebs_scale -- [VOLUMES] [CONCURRENCY]

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use ebs_snapshot::EbsSnapshot;
use futures::stream::{self, StreamExt};
use lifeboat::alert::MemoryAlerts;
use lifeboat::metrics::MemoryMetrics;
use lifeboat::runtime::{Invocation, Sinks, handle};
use lifeboat_tests::Emulator;
use lifeboat_tests::calls::CallCounter;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let volumes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);
    let emulator = Emulator::start();
    let aws = emulator.sdk_config("us-east-1").await;
    let plain = Client::new(&aws);

    let started = Instant::now();
    let creates: Vec<_> = (0..volumes)
        .map(|i| {
            let ec2 = plain.clone();
            async move {
                let tags = TagSpecification::builder()
                    .resource_type(ResourceType::Volume)
                    .tags(Tag::builder().key("backup").value("nightly").build())
                    .tags(
                        Tag::builder()
                            .key("Name")
                            .value(format!("data-{i}"))
                            .build(),
                    )
                    .build();
                ec2.create_volume()
                    .availability_zone("us-east-1a")
                    .size(1)
                    .tag_specifications(tags)
                    .send()
                    .await
                    .expect("create volume");
            }
        })
        .collect();
    stream::iter(creates)
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    println!(
        "seeded {volumes} tagged volumes in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let counter = CallCounter::default();
    let counted = Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&aws)
            .interceptor(counter.clone())
            .build(),
    );
    let sinks = Sinks {
        alerts: Arc::new(MemoryAlerts::default()),
        metrics: Arc::new(MemoryMetrics::default()),
    };
    let function = EbsSnapshot::new(counted, sinks, lifeboat::fanout::FanOut::new(concurrency));
    let payload = serde_json::json!({ "plan": "nightly", "scheduled_time": "2026-11-20T02:00:00Z", "select": { "tags": { "backup": "nightly" } } });

    for run in ["first", "second"] {
        counter.reset();
        let started = Instant::now();
        let report = handle(&function, payload.clone(), Invocation::now())
            .await
            .expect("run");
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{run} run: {:.1} s wall, created {}, skipped {}, failed {}; {} AWS calls ({} HTTP attempts), peak in flight {}",
            seconds,
            report.created.len(),
            report.skipped.len(),
            report.failed.len(),
            counter.operations().values().sum::<usize>(),
            counter.attempts(),
            counter.peak_in_flight()
        );
        for (operation, n) in counter.operations() {
            println!("    {operation:<20} {n}");
        }
    }

    let snapshots = lifeboat_tests::managed_snapshots(&plain).await;
    let mut per_volume: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &snapshots {
        *per_volume
            .entry(s.volume_id().unwrap_or_default())
            .or_default() += 1;
    }
    let duplicates: usize = per_volume.values().map(|n| n - 1).sum();
    println!(
        "{} snapshots for {} volumes: {duplicates} duplicates",
        snapshots.len(),
        per_volume.len()
    );
    assert_eq!(duplicates, 0, "duplicates found");
    assert_eq!(per_volume.len(), volumes, "every volume backed up");
}
