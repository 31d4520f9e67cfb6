//! Properties of page selection: determinism, distinctness, uniformity
//! (chi-square with fixed seeds), window overlap, rotation, and errors.

use std::collections::HashSet;

use super::*;
use crate::{Digest, Error};

fn params(num_pages: u64, window_pages: u64) -> DatasetParams {
    DatasetParams {
        dataset_id: Digest::of(b"bistro test dataset"),
        num_pages,
        window_pages,
        epoch_blocks: 100,
        reveal_delay_blocks: 2,
    }
}

fn hash_of(block: u64) -> [u8; 32] {
    Digest::of(&block.to_le_bytes()).0
}

/// Pearson's chi-square statistic of `counts` against a uniform expectation.
fn chi_square(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum()
}

// Critical values of the chi-square distribution at p = 0.001 (so a correct
// sampler fails one fixed seed in a thousand; the seeds below are fixed).
const CHI2_CRIT_49_DF: f64 = 85.35;
const CHI2_CRIT_19_DF: f64 = 43.82;

#[test]
fn global_draws_are_uniform() {
    let p = params(50, 10);
    let mut counts = vec![0u64; 50];
    let mut first = vec![0u64; 50];
    for block in 0..20_000u64 {
        let pages = global_pages(&p, block, &hash_of(block), 5).unwrap();
        first[pages[0] as usize] += 1;
        for page in pages {
            counts[page as usize] += 1;
        }
    }
    let all = chi_square(&counts);
    let firsts = chi_square(&first);
    assert!(all < CHI2_CRIT_49_DF, "chi2 of all draws {all}");
    assert!(firsts < CHI2_CRIT_49_DF, "chi2 of first draws {firsts}");
}

#[test]
fn local_draws_are_uniform_over_the_window() {
    let p = params(1000, 20);
    let w = window(&p, 7, 0).unwrap();
    let mut counts = vec![0u64; 20];
    for block in 0..20_000u64 {
        // Stay in epoch 0 by varying the hash, not the epoch.
        let pages = local_pages(&p, 7, block % 100, &hash_of(block), 3).unwrap();
        for page in pages {
            let j = w.position_of(page).expect("local page outside the window");
            counts[j as usize] += 1;
        }
    }
    let stat = chi_square(&counts);
    assert!(stat < CHI2_CRIT_19_DF, "chi2 {stat}");
}

#[test]
fn chi_square_detects_a_skewed_sampler() {
    // Control for the two tests above: a sampler that uses only the top four
    // bits of each word (so 16 values, reduced mod 50) must be rejected.
    let mut stream = stream::WordStream::new(b"skewed");
    let mut counts = vec![0u64; 50];
    for _ in 0..100_000 {
        counts[((stream.next_u64() >> 60) % 50) as usize] += 1;
    }
    assert!(chi_square(&counts) > CHI2_CRIT_49_DF);
}

#[test]
fn draws_are_distinct() {
    for (n, w, count) in [(1, 1, 1), (7, 7, 7), (100, 10, 10), (10_000, 500, 200)] {
        let p = params(n, w);
        for block in 0..50 {
            let local = local_pages(&p, 3, block, &hash_of(block), count).unwrap();
            let global = global_pages(&p, block, &hash_of(block), count).unwrap();
            for pages in [&local, &global] {
                assert_eq!(pages.len(), count);
                assert_eq!(pages.iter().collect::<HashSet<_>>().len(), count);
                assert!(pages.iter().all(|&page| page < n));
            }
        }
    }
}

#[test]
fn deterministic_across_threads() {
    let p = params(9_680_000, 100);
    let compute = move || {
        (0..200u64)
            .map(|i| {
                let uid = (i * 37 % 256) as u16;
                let block = 1_000_000 + i * 13;
                let mut v = local_pages(&p, uid, block, &hash_of(block), 4).unwrap();
                v.extend(global_pages(&p, block, &hash_of(block), 4).unwrap());
                v.extend(window(&p, uid, p.epoch_of(block)).unwrap().iter().take(5));
                v
            })
            .collect::<Vec<_>>()
    };
    let expected = compute();
    let handles: Vec<_> = (0..8).map(|_| std::thread::spawn(compute)).collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), expected);
    }
}

#[test]
fn local_pages_lie_in_the_window_of_the_blocks_epoch() {
    let p = params(100_000, 64);
    for block in [0u64, 99, 100, 12_345] {
        let w = window(&p, 11, p.epoch_of(block)).unwrap();
        let local = local_pages(&p, 11, block, &hash_of(block), 16).unwrap();
        assert!(local.iter().all(|&page| w.contains(page)));
    }
    // A different reveal hash gives different pages.
    let a = local_pages(&p, 11, 5, &[1; 32], 8).unwrap();
    let b = local_pages(&p, 11, 5, &[2; 32], 8).unwrap();
    assert_ne!(a, b);
}

#[test]
fn window_overlap_matches_the_stated_formula() {
    // A dataset too small for disjoint windows of 100 uids.
    let p = params(1000, 30);
    let windows: Vec<HashSet<u64>> = (0..100u16)
        .map(|uid| window(&p, uid, 5).unwrap().iter().collect())
        .collect();
    for a in 0..100u16 {
        assert_eq!(
            windows[a as usize].len(),
            30,
            "pages in one window are distinct"
        );
        for b in 0..100u16 {
            let actual = windows[a as usize]
                .intersection(&windows[b as usize])
                .count() as u64;
            assert_eq!(actual, window_overlap(&p, a, b).unwrap(), "uids {a} {b}");
            if a != b && a < 33 && b < 33 {
                assert_eq!(actual, 0, "uids below N/W must be disjoint");
            }
        }
    }
}

#[test]
fn windows_are_disjoint_on_a_refinedweb_sized_dataset() {
    let p = params(9_680_000, 100);
    let mut seen = HashSet::new();
    for uid in (0..=u16::MAX).step_by(97).chain([u16::MAX]) {
        assert_eq!(
            window_overlap(&p, 0, uid).unwrap(),
            if uid == 0 { 100 } else { 0 }
        );
        for page in window(&p, uid, 42).unwrap().iter() {
            assert!(seen.insert(page), "page {page} in two windows");
        }
    }
}

#[test]
fn windows_rotate_every_epoch() {
    let p = params(1_000_000, 1000);
    let w0: HashSet<u64> = window(&p, 3, 0).unwrap().iter().collect();
    let w1: HashSet<u64> = window(&p, 3, 1).unwrap().iter().collect();
    // Independent 1000-page windows of a 1e6-page dataset share about one page.
    assert!(w0.intersection(&w1).count() < 10);
    assert_eq!(p.epoch_of(99), 0);
    assert_eq!(p.epoch_of(100), 1);
    assert_eq!(epoch_of(&p, 250), 2);
}

#[test]
fn window_positions_round_trip() {
    let p = params(12_345, 77);
    let w = window(&p, 500, 3).unwrap();
    for (j, page) in w.iter().enumerate() {
        assert_eq!(w.position_of(page), Some(j as u64));
        assert_eq!(w.get(j as u64), Some(page));
    }
    assert_eq!(w.get(77), None);
    assert_eq!(w.position_of(12_345), None);
    let outside = (0..12_345).filter(|&page| !w.contains(page)).count();
    assert_eq!(outside, 12_345 - 77);
}

#[test]
fn bad_parameters_and_counts_are_errors() {
    let good = params(100, 10);
    let bad = [
        DatasetParams {
            num_pages: 0,
            ..good
        },
        DatasetParams {
            window_pages: 0,
            ..good
        },
        DatasetParams {
            window_pages: 101,
            ..good
        },
        DatasetParams {
            epoch_blocks: 0,
            ..good
        },
        DatasetParams {
            reveal_delay_blocks: 0,
            ..good
        },
    ];
    for p in bad {
        assert!(matches!(window(&p, 0, 0), Err(Error::InvalidArgument(_))));
        assert!(matches!(
            local_pages(&p, 0, 0, &[0; 32], 1),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            global_pages(&p, 0, &[0; 32], 1),
            Err(Error::InvalidArgument(_))
        ));
    }
    assert!(matches!(
        local_pages(&good, 0, 0, &[0; 32], 11),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        global_pages(&good, 0, &[0; 32], 101),
        Err(Error::InvalidArgument(_))
    ));
    let huge = params(u64::MAX, 1 << 40);
    assert!(matches!(
        global_pages(&huge, 0, &[0; 32], MAX_DRAW + 1),
        Err(Error::LimitExceeded { .. })
    ));
    assert_eq!(
        local_pages(&good, 0, 0, &[0; 32], 0).unwrap(),
        Vec::<u64>::new()
    );
    assert_eq!(good.reveal_block(u64::MAX), None);
    assert_eq!(good.reveal_block(10), Some(12));
}

#[test]
fn extreme_sizes_work() {
    let p = params(u64::MAX, u64::MAX);
    let local = local_pages(&p, u16::MAX, u64::MAX, &[9; 32], 5).unwrap();
    let w = window(&p, u16::MAX, p.epoch_of(u64::MAX)).unwrap();
    assert!(local.iter().all(|&page| w.contains(page)));
    let one = params(1, 1);
    assert_eq!(global_pages(&one, 0, &[0; 32], 1).unwrap(), vec![0]);
    assert_eq!(window(&one, 9, 9).unwrap().to_vec(), vec![0]);
}
