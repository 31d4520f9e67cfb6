//! Content digests: 32-byte BLAKE3 hashes with a hex form.
//!
//! A delta's footer, a master's revision and the evaluation log all name
//! content by its [`Digest`]. BLAKE3 is used because validators hash
//! gigabytes per round: it runs at several GB/s on one core and scales with
//! threads (see `BENCHMARKS.md`), and it is specified and implemented in C,
//! Python (`blake3` on PyPI) and Rust.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Inputs at least this large are hashed on all cores.
const PARALLEL_THRESHOLD: usize = 1 << 20;

/// A 32-byte BLAKE3 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The all-zero digest, used where no content is named yet.
    pub const ZERO: Digest = Digest([0; 32]);

    /// Digest of `bytes` (multi-threaded for large inputs).
    pub fn of(bytes: &[u8]) -> Self {
        let mut hasher = Hasher::new();
        hasher.update(bytes);
        hasher.finalize()
    }

    /// Digest of the file at `path`, read in 4 MiB pieces.
    pub fn of_file(path: &std::path::Path) -> Result<Self> {
        use std::io::Read;
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; 4 << 20];
        loop {
            match file.read(&mut buf) {
                Ok(0) => return Ok(hasher.finalize()),
                Ok(n) => {
                    hasher.update(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(path, e)),
            }
        }
    }

    /// The digest as 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        crate::util::hex::encode(&self.0)
    }

    /// A short form (first 12 hex characters) for logs.
    pub fn short(&self) -> String {
        let mut hex = self.to_hex();
        hex.truncate(12);
        hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        parse_hex_32(s)
            .map(Digest)
            .ok_or_else(|| Error::InvalidArgument(format!("not a 64-digit hex digest: {s:?}")))
    }
}

/// Parses 64 hex digits (an optional `0x` prefix allowed) into 32 bytes.
pub fn parse_hex_32(s: &str) -> Option<[u8; 32]> {
    crate::util::hex::decode_array(s)
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An incremental digest: feed bytes in any number of pieces, then finalize.
/// The result equals [`Digest::of`] over the concatenation.
#[derive(Clone, Default)]
pub struct Hasher(blake3::Hasher);

impl Hasher {
    /// A new, empty hasher.
    pub fn new() -> Self {
        Hasher(blake3::Hasher::new())
    }

    /// Adds bytes; large pieces are hashed on all cores.
    pub fn update(&mut self, bytes: &[u8]) -> &mut Self {
        if bytes.len() >= PARALLEL_THRESHOLD {
            self.0.update_rayon(bytes);
        } else {
            self.0.update(bytes);
        }
        self
    }

    /// The digest of everything added so far.
    pub fn finalize(&self) -> Digest {
        Digest(*self.0.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_blake3_vector() {
        // BLAKE3 of the empty input, from the BLAKE3 specification's test vectors.
        assert_eq!(
            Digest::of(b"").to_hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn hex_round_trip_and_rejects_garbage() {
        let d = Digest::of(b"bistro");
        assert_eq!(d.to_hex().parse::<Digest>().unwrap(), d);
        assert_eq!(format!("0x{d}").parse::<Digest>().unwrap(), d);
        assert!("zz".parse::<Digest>().is_err());
        assert!("g".repeat(64).parse::<Digest>().is_err());
    }

    #[test]
    fn incremental_equals_one_shot_across_the_parallel_threshold() {
        let data: Vec<u8> = (0..3 * PARALLEL_THRESHOLD)
            .map(|i| (i * 31) as u8)
            .collect();
        let mut h = Hasher::new();
        h.update(&data[..7])
            .update(&data[7..PARALLEL_THRESHOLD + 9])
            .update(&data[PARALLEL_THRESHOLD + 9..]);
        assert_eq!(h.finalize(), Digest::of(&data));
    }
}
