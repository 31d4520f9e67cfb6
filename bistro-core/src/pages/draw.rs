//! Distinct, uniform draws from `[0, n)`: a partial Fisher–Yates shuffle of
//! the virtual array `0, 1, ..., n-1`, holding only the swapped entries.
//! See `docs/pages.md`, "Distinct draws".

use std::collections::HashMap;

use super::stream::WordStream;

/// Up to this many draws keep their swaps in a small vector (linear search);
/// more use a hash map.
const SMALL_DRAW: usize = 32;

/// The swapped entries of the virtual array.
enum Swaps {
    Small(Vec<(u64, u64)>),
    Large(HashMap<u64, u64>),
}

impl Swaps {
    fn with_capacity(count: usize) -> Self {
        if count <= SMALL_DRAW {
            Swaps::Small(Vec::with_capacity(count))
        } else {
            Swaps::Large(HashMap::with_capacity(count))
        }
    }

    /// The value at index `i` (the index itself if never swapped).
    fn get(&self, i: u64) -> u64 {
        match self {
            Swaps::Small(v) => v
                .iter()
                .rev()
                .find(|(k, _)| *k == i)
                .map_or(i, |(_, value)| *value),
            Swaps::Large(m) => m.get(&i).copied().unwrap_or(i),
        }
    }

    fn set(&mut self, i: u64, value: u64) {
        match self {
            Swaps::Small(v) => match v.iter_mut().find(|(k, _)| *k == i) {
                Some(entry) => entry.1 = value,
                None => v.push((i, value)),
            },
            Swaps::Large(m) => {
                m.insert(i, value);
            }
        }
    }
}

/// Calls `out` with `count` distinct values from `[0, n)`, in draw order.
/// Step `i` draws `j = i + below(n - i)`, outputs the value at `j`, and moves
/// the value at `i` to `j`. The first `k` outputs do not depend on `count`.
/// Callers check `count <= n` and bound `count`.
pub(crate) fn distinct(stream: &mut WordStream, n: u64, count: usize, mut out: impl FnMut(u64)) {
    let mut swaps = Swaps::with_capacity(count);
    for i in 0..count as u64 {
        let j = i + stream.below(n - i);
        let value_j = swaps.get(j);
        if j != i {
            let value_i = swaps.get(i);
            swaps.set(j, value_i);
        }
        out(value_j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(seed: &[u8], n: u64, count: usize) -> Vec<u64> {
        let mut v = Vec::new();
        distinct(&mut WordStream::new(seed), n, count, |x| v.push(x));
        v
    }

    /// The textbook algorithm on a materialized array.
    fn naive(seed: &[u8], n: u64, count: usize) -> Vec<u64> {
        let mut stream = WordStream::new(seed);
        let mut a: Vec<u64> = (0..n).collect();
        (0..count)
            .map(|i| {
                let j = i + stream.below(n - i as u64) as usize;
                a.swap(i, j);
                a[i]
            })
            .collect()
    }

    #[test]
    fn matches_the_materialized_shuffle() {
        for (n, count) in [(1, 1), (2, 2), (10, 10), (100, 7), (100, 40), (1000, 300)] {
            for seed in 0..20u8 {
                assert_eq!(draw(&[seed], n, count), naive(&[seed], n, count), "n={n}");
            }
        }
    }

    #[test]
    fn draws_are_distinct_and_prefix_consistent() {
        let all = draw(b"x", 50, 50);
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_eq!(draw(b"x", 50, 5), all[..5]);
        assert_eq!(draw(b"x", 50, 40), all[..40]);
    }
}
