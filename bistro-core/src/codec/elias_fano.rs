//! Elias–Fano coding of the strictly increasing indices of a top-k tensor:
//! about `log2(n/k) + 2` bits an index (see `docs/delta-format.md`).

use super::encoding::EfGeometry;

/// Builds the two bit arrays from indices given in increasing order.
pub(crate) struct EfBuilder {
    geometry: EfGeometry,
    upper: Vec<u64>,
    lower: Vec<u64>,
    count: u64,
}

impl EfBuilder {
    /// A builder for `k` indices below `n` (`k <= n`, both within the limits,
    /// so the word counts fit in memory the caller already planned for).
    pub(crate) fn new(n: u64, k: u64) -> Self {
        let geometry = EfGeometry::new(n, k);
        EfBuilder {
            geometry,
            upper: vec![0; geometry.upper_words() as usize],
            lower: vec![0; geometry.lower_words() as usize],
            count: 0,
        }
    }

    /// Adds the next index (greater than the previous one, below `n`).
    pub(crate) fn push(&mut self, index: u64) {
        let l = self.geometry.low_bits;
        let high = index >> l;
        let pos = high + self.count;
        if let Some(w) = self.upper.get_mut((pos / 64) as usize) {
            *w |= 1 << (pos % 64);
        }
        if l > 0 {
            let low = index & ((1u64 << l) - 1);
            let bit = self.count * u64::from(l);
            let (word, off) = ((bit / 64) as usize, bit % 64);
            if let Some(w) = self.lower.get_mut(word) {
                *w |= low << off;
            }
            if off + u64::from(l) > 64
                && let Some(w) = self.lower.get_mut(word + 1)
            {
                *w |= low >> (64 - off);
            }
        }
        self.count += 1;
    }

    /// How many indices were pushed.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// The upper then lower arrays as little-endian bytes.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        for w in self.upper.iter().chain(&self.lower) {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }
}

/// Little-endian u64 word `i` of `words`, or 0 past the end.
#[inline]
fn word(words: &[[u8; 8]], i: usize) -> u64 {
    words.get(i).map_or(0, |w| u64::from_le_bytes(*w))
}

/// Reads the Elias–Fano arrays of one top-k payload.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EliasFano<'a> {
    upper: &'a [[u8; 8]],
    lower: &'a [[u8; 8]],
    geometry: EfGeometry,
    n: u64,
    k: u64,
}

impl<'a> EliasFano<'a> {
    /// Splits `index_bytes` (exactly `geometry.index_bytes()` long) into the arrays.
    pub(crate) fn new(index_bytes: &'a [u8], n: u64, k: u64) -> Self {
        let geometry = EfGeometry::new(n, k);
        let (words, _) = index_bytes.as_chunks::<8>();
        let split = (geometry.upper_words() as usize).min(words.len());
        let (upper, lower) = words.split_at(split);
        EliasFano {
            upper,
            lower,
            geometry,
            n,
            k,
        }
    }

    /// All indices, in order.
    pub(crate) fn iter(&self) -> EfIter<'a> {
        self.iter_from(0, 0, self.k)
    }

    /// `count` indices starting with the first set upper bit in word
    /// `upper_word`, which is index number `rank`.
    pub(crate) fn iter_from(&self, upper_word: usize, rank: u64, count: u64) -> EfIter<'a> {
        EfIter {
            upper: self.upper,
            lower: self.lower,
            low_bits: self.geometry.low_bits,
            word_index: upper_word,
            current: word(self.upper, upper_word),
            rank,
            remaining: count,
        }
    }

    /// Cuts the indices into about `parts` runs that start at upper-word
    /// boundaries: `(first upper word, rank of its first index, count)`.
    /// Used to decode one tensor on several threads.
    pub(crate) fn runs(&self, parts: usize) -> Vec<(usize, u64, u64)> {
        let words = self.upper.len();
        let per_part = words.div_ceil(parts.max(1)).max(1);
        let mut runs = Vec::with_capacity(parts.max(1));
        let mut rank = 0u64;
        for start in (0..words).step_by(per_part) {
            let end = (start + per_part).min(words);
            let ones: u64 = self.upper[start..end]
                .iter()
                .map(|w| u64::from(u64::from_le_bytes(*w).count_ones()))
                .sum();
            if ones > 0 {
                runs.push((start, rank, ones));
            }
            rank += ones;
        }
        runs
    }

    /// Checks the arrays: exactly `k` set upper bits, no bits past the ends,
    /// indices strictly increasing and below `n`. Returns a description of
    /// the first problem.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let g = &self.geometry;
        let ones: u64 = self
            .upper
            .iter()
            .map(|w| u64::from(u64::from_le_bytes(*w).count_ones()))
            .sum();
        if ones != self.k {
            return Err(format!(
                "upper index bits have {ones} bits set, expected k = {}",
                self.k
            ));
        }
        check_tail(self.upper, g.upper_bits, "upper")?;
        check_tail(self.lower, g.lower_bits, "lower")?;
        let mut previous: Option<u64> = None;
        for (i, x) in self.iter().enumerate() {
            if previous.is_some_and(|p| x <= p) {
                return Err(format!(
                    "index {i} is {x}, not greater than the previous index {}",
                    previous.unwrap_or(0)
                ));
            }
            if x >= self.n {
                return Err(format!(
                    "index {i} is {x}, out of range for {} elements",
                    self.n
                ));
            }
            previous = Some(x);
        }
        Ok(())
    }
}

/// Checks that no bit at or after `bits` is set in `words`.
fn check_tail(words: &[[u8; 8]], bits: u64, which: &str) -> Result<(), String> {
    let used = bits % 64;
    if used == 0 {
        return Ok(());
    }
    let last = word(words, words.len().saturating_sub(1));
    if last >> used != 0 {
        return Err(format!("{which} index bits past bit {bits} are not zero"));
    }
    Ok(())
}

/// Iterates over indices (see [`EliasFano::iter_from`]).
pub(crate) struct EfIter<'a> {
    upper: &'a [[u8; 8]],
    lower: &'a [[u8; 8]],
    low_bits: u32,
    word_index: usize,
    current: u64,
    rank: u64,
    remaining: u64,
}

impl EfIter<'_> {
    #[inline]
    fn low(&self) -> u64 {
        let l = self.low_bits;
        if l == 0 {
            return 0;
        }
        // rank < k and k * l fits in u64 (the geometry was computed with it).
        let bit = self.rank.wrapping_mul(u64::from(l));
        let (w, off) = ((bit / 64) as usize, (bit % 64) as u32);
        let mut v = word(self.lower, w) >> off;
        if off + l > 64 {
            v |= word(self.lower, w + 1) << (64 - off);
        }
        v & ((1u64 << l) - 1)
    }
}

impl Iterator for EfIter<'_> {
    type Item = u64;

    #[inline]
    fn next(&mut self) -> Option<u64> {
        if self.remaining == 0 {
            return None;
        }
        while self.current == 0 {
            self.word_index += 1;
            if self.word_index >= self.upper.len() {
                self.remaining = 0;
                return None;
            }
            self.current = word(self.upper, self.word_index);
        }
        let pos = (self.word_index as u64) * 64 + u64::from(self.current.trailing_zeros());
        self.current &= self.current - 1;
        // The rank-th set bit is at a position >= rank, so this does not wrap
        // for valid arrays; for invalid ones `validate` reports the result.
        let high = pos.wrapping_sub(self.rank);
        let index = (high << self.low_bits) | self.low();
        self.rank += 1;
        self.remaining -= 1;
        Some(index)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, usize::try_from(self.remaining).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(n: u64, indices: &[u64]) -> Vec<u8> {
        let mut b = EfBuilder::new(n, indices.len() as u64);
        for &i in indices {
            b.push(i);
        }
        let mut out = Vec::new();
        b.write_to(&mut out);
        out
    }

    #[test]
    fn round_trips_various_densities() {
        for (n, step) in [
            (5u64, 2u64),
            (1000, 1),
            (1000, 7),
            (1 << 20, 1000),
            (70, 69),
        ] {
            let indices: Vec<u64> = (0..n).step_by(step as usize).collect();
            let bytes = encode(n, &indices);
            let ef = EliasFano::new(&bytes, n, indices.len() as u64);
            ef.validate().unwrap();
            assert_eq!(ef.iter().collect::<Vec<_>>(), indices);
            // Runs cover every index exactly once, in order.
            for parts in [1, 2, 3, 16] {
                let mut joined = Vec::new();
                for (w, r, c) in ef.runs(parts) {
                    joined.extend(ef.iter_from(w, r, c));
                }
                assert_eq!(joined, indices, "n {n} step {step} parts {parts}");
            }
        }
    }

    #[test]
    fn spec_example_bits() {
        // n = 5, indices 1 and 3: l = 1; upper bits 0 and 2; low bits 1, 1.
        let bytes = encode(5, &[1, 3]);
        assert_eq!(u64::from_le_bytes(bytes[..8].try_into().unwrap()), 0b101);
        assert_eq!(u64::from_le_bytes(bytes[8..16].try_into().unwrap()), 0b11);
    }

    #[test]
    fn validation_rejects_bad_arrays() {
        let good = encode(100, &[3, 50, 99]);
        let check = |bytes: &[u8], k: u64| EliasFano::new(bytes, 100, k).validate();
        assert!(check(&good, 3).is_ok());
        // One bit too many in the upper array.
        let mut extra = good.clone();
        extra[7] |= 0x80;
        assert!(check(&extra, 3).unwrap_err().contains("bits set"));
        // Equal indices: upper bits for (3, 3) would be positions 0 and 1 (l = 5).
        let dup = encode(100, &[3, 3]);
        assert!(check(&dup, 2).unwrap_err().contains("not greater"));
        // An index past n: 99 with n = 98 reinterpreted.
        assert!(
            EliasFano::new(&encode(100, &[99]), 99, 1)
                .validate()
                .is_err()
        );
        // A stray low bit past k * l.
        let mut stray = good.clone();
        let last = stray.len() - 1;
        stray[last] |= 0x80;
        assert!(check(&stray, 3).unwrap_err().contains("lower"));
    }
}
