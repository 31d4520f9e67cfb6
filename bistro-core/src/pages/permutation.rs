//! A keyed permutation of `[0, n)`: a balanced Feistel network over the
//! smallest even bit width that holds `n - 1`, with cycle walking (Black and
//! Rogaway) to stay inside `[0, n)`. See `docs/pages.md`, "Epoch permutation".

use super::stream::WordStream;

/// Feistel rounds.
pub(crate) const ROUNDS: usize = 6;

/// MurmurHash3's 64-bit finalizer: the Feistel round function's mixer.
#[inline]
pub(crate) fn fmix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// A bijection of `[0, n)` chosen by the round keys.
#[derive(Clone, Debug)]
pub(crate) struct Permutation {
    n: u64,
    half_bits: u32,
    half_mask: u64,
    keys: [u64; ROUNDS],
}

impl Permutation {
    /// The permutation of `[0, n)`, `n >= 1`, whose round keys are the first
    /// [`ROUNDS`] words of `stream`.
    pub(crate) fn new(n: u64, stream: &mut WordStream) -> Self {
        debug_assert!(n >= 1, "callers validate n");
        // Bits needed for n - 1, at least 2, rounded up to even.
        let bits = (64 - (n - 1).leading_zeros()).max(2);
        let bits = bits + (bits & 1);
        let half_bits = bits / 2;
        // half_bits <= 32, so the shift cannot overflow.
        let half_mask = (1u64 << half_bits) - 1;
        let mut keys = [0u64; ROUNDS];
        for key in &mut keys {
            *key = stream.next_u64();
        }
        Permutation {
            n,
            half_bits,
            half_mask,
            keys,
        }
    }

    /// One pass of the Feistel network over `[0, 2^(2h))`.
    #[inline]
    fn forward(&self, x: u64) -> u64 {
        let (mut left, mut right) = (x >> self.half_bits, x & self.half_mask);
        for key in self.keys {
            let next = left ^ (fmix64(right ^ key) & self.half_mask);
            left = right;
            right = next;
        }
        (left << self.half_bits) | right
    }

    /// The inverse of [`Self::forward`].
    #[inline]
    fn backward(&self, y: u64) -> u64 {
        let (mut left, mut right) = (y >> self.half_bits, y & self.half_mask);
        for key in self.keys.iter().rev() {
            let prev = right ^ (fmix64(left ^ key) & self.half_mask);
            right = left;
            left = prev;
        }
        (left << self.half_bits) | right
    }

    /// The image of `x < n`. Cycle walking always ends (the Feistel network
    /// is a bijection, so the cycle through `x` returns inside `[0, n)`);
    /// the expected number of passes is below 4 because the network's domain
    /// is under `4n`.
    #[inline]
    pub(crate) fn apply(&self, x: u64) -> u64 {
        debug_assert!(x < self.n);
        let mut y = self.forward(x);
        while y >= self.n {
            y = self.forward(y);
        }
        y
    }

    /// The preimage of `y < n`.
    #[inline]
    pub(crate) fn invert(&self, y: u64) -> u64 {
        debug_assert!(y < self.n);
        let mut x = self.backward(y);
        while x >= self.n {
            x = self.backward(x);
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permutation(n: u64, seed: &[u8]) -> Permutation {
        Permutation::new(n, &mut WordStream::new(seed))
    }

    #[test]
    fn is_a_bijection_for_small_sizes() {
        for n in 1..=300u64 {
            let p = permutation(n, &n.to_le_bytes());
            let mut seen = vec![false; n as usize];
            for x in 0..n {
                let y = p.apply(x);
                assert!(y < n);
                assert!(!seen[y as usize], "n={n}: {y} hit twice");
                seen[y as usize] = true;
                assert_eq!(p.invert(y), x);
            }
        }
    }

    #[test]
    fn inverts_at_the_top_of_the_u64_range() {
        for n in [u64::MAX, (1u64 << 63) + 5, 9_680_000] {
            let p = permutation(n, b"top");
            for x in [0, 1, n / 2, n - 2, n - 1] {
                let y = p.apply(x);
                assert!(y < n);
                assert_eq!(p.invert(y), x);
            }
        }
    }

    #[test]
    fn different_keys_give_different_permutations() {
        let a = permutation(1000, b"a");
        let b = permutation(1000, b"b");
        let differing = (0..1000).filter(|&x| a.apply(x) != b.apply(x)).count();
        assert!(differing > 900, "only {differing} of 1000 differ");
    }
}
