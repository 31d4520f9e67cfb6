//! Choosing the `k` elements of largest magnitude (ties to the lower index)
//! in two parallel histogram passes over the bits of `|x|`, without sorting.

use rayon::prelude::*;

/// Elements per histogram task.
const TASK: usize = 1 << 18;
const BUCKETS: usize = 1 << 16;

/// `|x|` as an integer key that orders like `|x|` for finite `x`.
#[inline(always)]
fn key(x: f32) -> u32 {
    x.to_bits() & 0x7fff_ffff
}

/// Histogram of `bucket(key)` over keys that `select` accepts.
fn histogram(
    src: &[f32],
    select: impl Fn(u32) -> bool + Sync,
    bucket: impl Fn(u32) -> usize + Sync,
) -> Vec<u64> {
    src.par_chunks(TASK)
        .fold(
            || vec![0u64; BUCKETS],
            |mut h, chunk| {
                for &x in chunk {
                    let k = key(x);
                    if select(k)
                        && let Some(c) = h.get_mut(bucket(k) & (BUCKETS - 1))
                    {
                        *c += 1;
                    }
                }
                h
            },
        )
        .reduce(
            || vec![0u64; BUCKETS],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
                a
            },
        )
}

/// The highest bucket `b` such that the counts above it are fewer than
/// `need`, and how many are still needed from `b` itself.
fn find_bucket(hist: &[u64], need: u64) -> (usize, u64) {
    let mut above = 0u64;
    for (b, &count) in hist.iter().enumerate().rev() {
        if above + count >= need {
            return (b, need - above);
        }
        above += count;
    }
    (0, need.saturating_sub(above))
}

/// Inputs up to this size are selected directly (the histograms cost more).
const SMALL: usize = 4096;

/// The same selection for small inputs: find the k-th largest
/// (key, lower index first) and keep everything before it in that order.
fn small_top_k(src: &[f32], k: usize, mut keep: impl FnMut(u64)) {
    // Order: larger key first, then lower index.
    let mut order: Vec<(std::cmp::Reverse<u32>, u32)> = src
        .iter()
        .enumerate()
        .map(|(i, &x)| (std::cmp::Reverse(key(x)), i as u32))
        .collect();
    let Some(k_minus_1) = k.checked_sub(1) else {
        return;
    };
    let (_, &mut last, _) = order.select_nth_unstable(k_minus_1);
    for (i, &x) in src.iter().enumerate() {
        if (std::cmp::Reverse(key(x)), i as u32) <= last {
            keep(i as u64);
        }
    }
}

/// Calls `keep` with the indices of the `k` largest-magnitude elements of
/// `src` (finite values), in increasing order. `k <= src.len()`.
pub(crate) fn for_each_top_k(src: &[f32], k: u64, mut keep: impl FnMut(u64)) {
    if k == 0 {
        return;
    }
    if k >= src.len() as u64 {
        (0..src.len() as u64).for_each(keep);
        return;
    }
    if src.len() <= SMALL {
        return small_top_k(src, k as usize, keep);
    }
    let high = histogram(src, |_| true, |k| (k >> 16) as usize);
    let (b1, need) = find_bucket(&high, k);
    let b1 = b1 as u32;
    let low = histogram(src, |k| k >> 16 == b1, |k| (k & 0xffff) as usize);
    let (b2, mut ties) = find_bucket(&low, need);
    let threshold = (b1 << 16) | b2 as u32;
    for (i, &x) in src.iter().enumerate() {
        let kx = key(x);
        if kx > threshold {
            keep(i as u64);
        } else if kx == threshold && ties > 0 {
            ties -= 1;
            keep(i as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The obvious way: sort indices by (|x| descending, index ascending).
    fn naive(src: &[f32], k: usize) -> Vec<u64> {
        let mut order: Vec<usize> = (0..src.len()).collect();
        order.sort_by(|&a, &b| {
            src[b]
                .abs()
                .partial_cmp(&src[a].abs())
                .unwrap()
                .then(a.cmp(&b))
        });
        let mut kept: Vec<u64> = order[..k].iter().map(|&i| i as u64).collect();
        kept.sort();
        kept
    }

    #[test]
    fn matches_sorting_with_ties_and_signs() {
        let mut src: Vec<f32> = (0..5000)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 64.0)
            .collect();
        src[17] = -0.0;
        // Above and below the size where the direct selection takes over.
        for len in [5000, 4096, 100] {
            let src = &src[..len];
            for k in [0usize, 1, 2, 10, 99, 100, 999, 1000, 4095, 4999, 5000] {
                let k = k.min(len);
                let mut got = Vec::new();
                for_each_top_k(src, k as u64, |i| got.push(i));
                assert_eq!(got, naive(src, k), "len {len} k = {k}");
            }
        }
        let equal = vec![1.5f32; 300];
        let mut got = Vec::new();
        for_each_top_k(&equal, 7, |i| got.push(i));
        assert_eq!(got, (0..7).collect::<Vec<_>>());
    }
}
