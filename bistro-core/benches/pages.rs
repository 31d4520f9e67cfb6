//! Page-selection throughput, in page ids per second, against a baseline
//! measured in the same run: reading raw `u64` words from a BLAKE3 XOF (the
//! least any selection built on that stream can cost per id).
//!
//! Run: `cargo bench -p bistro-core --bench pages`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

use std::hint::black_box;
use std::time::Instant;

use bistro_core::Digest;
use bistro_core::pages::{DatasetParams, global_pages, local_pages, window};

/// Runs `f` (which returns how many ids it produced) until about half a
/// second has passed; returns ids per second.
fn rate(mut f: impl FnMut(u64) -> u64) -> f64 {
    let start = Instant::now();
    let mut ids = 0u64;
    let mut i = 0u64;
    while start.elapsed().as_secs_f64() < 0.5 {
        ids += f(i);
        i += 1;
    }
    ids as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let params = DatasetParams {
        dataset_id: Digest::of(b"bench"),
        num_pages: 9_680_000,
        window_pages: 100,
        epoch_blocks: 360,
        reveal_delay_blocks: 2,
    };
    let big_window = DatasetParams {
        window_pages: 1_000_000,
        ..params
    };

    let baseline = rate(|i| {
        let mut reader = blake3::Hasher::new()
            .update(&i.to_le_bytes())
            .finalize_xof();
        let mut buf = [0u8; 8192];
        reader.fill(&mut buf);
        let mut acc = 0u64;
        for c in buf.chunks_exact(8) {
            acc ^= u64::from_le_bytes(c.try_into().unwrap());
        }
        black_box(acc);
        1024
    });

    let rows: Vec<(&str, f64)> = vec![
        (
            "window iteration (W = 1e6, N = 9.68e6)",
            rate(|i| {
                let w = window(&big_window, (i % 256) as u16, i).unwrap();
                let mut acc = 0u64;
                for page in w.iter() {
                    acc ^= page;
                }
                black_box(acc);
                w.len()
            }),
        ),
        (
            "local_pages, count 2 (W = 100)",
            rate(|i| {
                black_box(local_pages(&params, (i % 256) as u16, i, &[1; 32], 2).unwrap());
                2
            }),
        ),
        (
            "local_pages, count 10 000 (W = 1e6)",
            rate(|i| {
                black_box(local_pages(&big_window, (i % 256) as u16, i, &[1; 32], 10_000).unwrap());
                10_000
            }),
        ),
        (
            "global_pages, count 2",
            rate(|i| {
                black_box(global_pages(&params, i, &[1; 32], 2).unwrap());
                2
            }),
        ),
        (
            "global_pages, count 100 000",
            rate(|i| {
                black_box(global_pages(&params, i, &[1; 32], 100_000).unwrap());
                100_000
            }),
        ),
    ];

    println!(
        "baseline: raw BLAKE3 XOF words        {:>12.0} words/s",
        baseline
    );
    for (name, ids_per_s) in rows {
        println!(
            "{name:<42} {ids_per_s:>12.0} ids/s  ({:.3}x baseline)",
            ids_per_s / baseline
        );
    }
}
