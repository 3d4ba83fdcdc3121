//! How fast the fingerprint reads a zstd-compressed table: `COPY` text
//! decompressed and its rows counted ([`lifeboat::postgres::fingerprint`]),
//! the bulk of `pg-dump`'s own CPU. Builds about 320 MB of `COPY` text like
//! an orders table's (the same every run), compresses it with zstd at level
//! 3 (pg_dump's default), then feeds it to the fingerprint in 128 KiB chunks
//! and prints the best of 5 runs. To compare two builds, run it in each:
//!
//! ```text
//! cargo run --release -p lifeboat --example zstd_decode
//! ```

use lifeboat::postgres::fingerprint::Stream;
use std::time::Instant;

const ROWS: u64 = 3_000_000;

/// `ROWS` rows of `COPY` text: id, customer, time, amount, status, a note.
fn copy_text() -> Vec<u8> {
    const STATUS: [&str; 6] = [
        "pending",
        "paid",
        "shipped",
        "delivered",
        "cancelled",
        "refunded",
    ];
    const WORDS: [&str; 12] = [
        "lorem",
        "ipsum",
        "dolor",
        "sit",
        "amet",
        "consectetur",
        "adipiscing",
        "elit",
        "sed",
        "do",
        "eiusmod",
        "tempor",
    ];
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    let mut text = Vec::with_capacity(330 << 20);
    for id in 1..=ROWS {
        let note: Vec<&str> = (0..3 + next(10))
            .map(|_| WORDS[next(12) as usize])
            .collect();
        let line = format!(
            "{id}\t{}\t2026-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00\t{}.{:02}\t{}\t{}\n",
            1 + next(200_000),
            1 + next(12),
            1 + next(28),
            next(24),
            next(60),
            next(60),
            next(1_000_000),
            1 + next(9_999),
            next(100),
            STATUS[next(6) as usize],
            note.join(" ")
        );
        text.extend_from_slice(line.as_bytes());
    }
    text.extend_from_slice(b"\\.\n");
    text
}

fn main() {
    let text = copy_text();
    let compressed = zstd::bulk::compress(&text, 3).expect("compress");
    println!(
        "{} MB of COPY text, {} MB compressed (zstd level 3)",
        text.len() / 1_000_000,
        compressed.len() / 1_000_000
    );
    let mut best = f64::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        let mut stream = Stream::new("zstd").expect("zstd");
        for chunk in compressed.chunks(128 << 10) {
            stream.feed(chunk).expect("decodes");
        }
        let rows = stream.finish().expect("whole");
        assert_eq!(rows, ROWS, "every row counted");
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "fingerprint: best of 5 {best:.3} s, {:.0} MB/s of COPY text",
        text.len() as f64 / best / 1e6
    );
}
