//! The page-selection PRNG: a BLAKE3 XOF read as little-endian `u64` words,
//! and unbiased bounded integers drawn from it (Lemire's method with
//! rejection). See `docs/pages.md`, "Random stream" and "Bounded integers".

/// Bytes read from the XOF at a time: 8 words, one BLAKE3 output block.
const BUFFER_BYTES: usize = 64;

/// A stream of `u64` words: word `i` is bytes `8i..8i+8` of the BLAKE3 XOF of
/// the seed message, read little-endian.
pub(crate) struct WordStream {
    reader: blake3::OutputReader,
    buffer: [u8; BUFFER_BYTES],
    /// Next unread byte in `buffer`; `BUFFER_BYTES` means empty.
    next: usize,
}

impl WordStream {
    /// The stream of BLAKE3(`message`).
    pub(crate) fn new(message: &[u8]) -> Self {
        WordStream {
            reader: blake3::Hasher::new().update(message).finalize_xof(),
            buffer: [0; BUFFER_BYTES],
            next: BUFFER_BYTES,
        }
    }

    /// The next word.
    pub(crate) fn next_u64(&mut self) -> u64 {
        if self.next == BUFFER_BYTES {
            self.reader.fill(&mut self.buffer);
            self.next = 0;
        }
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.buffer[self.next..self.next + 8]);
        self.next += 8;
        u64::from_le_bytes(word)
    }

    /// A uniform integer in `[0, bound)`, `bound >= 1`, by Lemire's
    /// multiply-and-reject: no modulo bias. Consumes one word, plus one per
    /// rejection (rejection probability is below `bound / 2^64`).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        debug_assert!(bound >= 1, "below(0) is never called: callers check");
        let mut product = u128::from(self.next_u64()) * u128::from(bound);
        let mut low = product as u64;
        if low < bound {
            let threshold = bound.wrapping_neg() % bound;
            while low < threshold {
                product = u128::from(self.next_u64()) * u128::from(bound);
                low = product as u64;
            }
        }
        (product >> 64) as u64
    }
}

/// Builds a seed message: the ASCII `tag`, a zero byte, then the fields.
pub(crate) struct Message {
    bytes: Vec<u8>,
}

impl Message {
    /// A message that starts with `tag` and a zero byte.
    pub(crate) fn new(tag: &str) -> Self {
        let mut bytes = Vec::with_capacity(160);
        bytes.extend_from_slice(tag.as_bytes());
        bytes.push(0);
        Message { bytes }
    }

    /// Appends raw bytes (a digest or a block hash).
    pub(crate) fn bytes(mut self, b: &[u8]) -> Self {
        self.bytes.extend_from_slice(b);
        self
    }

    /// Appends a `u64`, little-endian.
    pub(crate) fn u64(mut self, v: u64) -> Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// The word stream of this message.
    pub(crate) fn stream(&self) -> WordStream {
        WordStream::new(&self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_the_xof_bytes_little_endian() {
        let mut stream = WordStream::new(b"abc");
        let mut xof = [0u8; 200];
        blake3::Hasher::new()
            .update(b"abc")
            .finalize_xof()
            .fill(&mut xof);
        for i in 0..25 {
            let expected = u64::from_le_bytes(xof[8 * i..8 * i + 8].try_into().unwrap());
            assert_eq!(stream.next_u64(), expected, "word {i}");
        }
    }

    #[test]
    fn below_stays_in_range_and_one_is_always_zero() {
        let mut stream = WordStream::new(b"range");
        for bound in [1u64, 2, 3, 7, 100, 1 << 40, u64::MAX] {
            for _ in 0..100 {
                assert!(stream.below(bound) < bound);
            }
        }
        assert_eq!(stream.below(1), 0);
    }

    #[test]
    fn below_rejects_the_biased_low_range() {
        // bound = 2^63 + 1: threshold = 2^64 mod bound = 2^63 - 1, so words
        // whose product's low half falls under it are rejected. Check against
        // a direct computation of the same rule.
        let bound = (1u64 << 63) + 1;
        let mut a = WordStream::new(b"reject");
        let mut b = WordStream::new(b"reject");
        for _ in 0..50 {
            let got = a.below(bound);
            let threshold = bound.wrapping_neg() % bound;
            let expected = loop {
                let m = u128::from(b.next_u64()) * u128::from(bound);
                if (m as u64) >= threshold {
                    break (m >> 64) as u64;
                }
            };
            assert_eq!(got, expected);
        }
    }
}
