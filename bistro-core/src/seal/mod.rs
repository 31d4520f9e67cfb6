//! Sealed deltas: a delta file encrypted so that no one can read it before a
//! beacon round (the round's deadline), and everyone can after.
//!
//! The *sealed envelope* wraps the bytes of any inner file (a delta,
//! unchanged) in a versioned outer format, specified byte by byte in
//! `docs/delta-format.md` ("Sealed envelope"):
//!
//! ```text
//! header (72 bytes) | key ciphertext | payload chunks
//! ```
//!
//! - a fresh 32-byte *content key* encrypts the payload with AES-256-GCM in
//!   fixed-size chunks (STREAM-like: the nonce is the chunk index and a
//!   last-chunk flag, the header and key ciphertext are associated data, so
//!   altered, truncated, reordered or spliced chunks fail to authenticate);
//! - the content key is timelock-encrypted to the beacon round
//!   (`crate::timelock`), so it opens with that round's pulse only.
//!
//! This module's header parser ([`read_header`], [`is_sealed`]) needs no
//! feature and no cryptography (the fuzzer uses it); sealing and opening
//! ([`seal`], [`unseal`], [`unseal_file`]) need feature `timelock`.

use crate::chain::beacon::{BEACON_ID_LEN, BeaconKey, encode_hex};
use crate::error::{Error, Result, TimelockError};

#[cfg(feature = "timelock")]
mod crypto;

#[cfg(feature = "timelock")]
pub use crypto::{
    SealOptions, open_key, seal, seal_with_key, seal_with_options, unseal, unseal_file,
};

// Two attributes, not `all(test, ...)`: clippy knows a test module by a
// plain `#[cfg(test)]`.
#[cfg(test)]
#[cfg(feature = "timelock")]
mod tests;

/// The kind of input in errors.
pub(crate) const INPUT: &str = "sealed delta";

/// The first 8 bytes of every sealed envelope: ASCII `BSTSEAL` and a zero byte.
pub const MAGIC: [u8; 8] = *b"BSTSEAL\0";

/// The envelope version this build writes and reads.
pub const VERSION: u16 = 1;

/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 72;

/// Bytes of an AES-GCM tag (one per chunk).
pub const TAG_LEN: usize = 16;

/// The largest key ciphertext a reader accepts (a timelock ciphertext of a
/// 32-byte key is 276 bytes).
pub const MAX_KEY_CIPHERTEXT_LEN: u32 = 1024;

/// The chunk size [`seal`] uses: 1 MiB of plaintext per chunk.
pub const DEFAULT_CHUNK_SIZE: u32 = 1 << 20;

/// The smallest chunk size a reader accepts (1 KiB).
pub const MIN_CHUNK_SIZE: u32 = 1 << 10;

/// The largest chunk size a reader accepts (16 MiB).
pub const MAX_CHUNK_SIZE: u32 = 1 << 24;

/// The parsed fixed header of a sealed envelope, with the layout it implies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealedHeader {
    /// The envelope version ([`VERSION`]).
    pub version: u16,
    /// Plaintext bytes per chunk (a power of two in
    /// [`MIN_CHUNK_SIZE`]`..=`[`MAX_CHUNK_SIZE`]); the last chunk may be shorter.
    pub chunk_size: u32,
    /// The beacon round whose pulse opens the content key.
    pub round: u64,
    /// Which beacon the key is sealed to: [`BeaconKey::id`].
    pub beacon_id: [u8; BEACON_ID_LEN],
    /// Bytes of the plaintext (the inner file).
    pub plain_len: u64,
    /// Bytes of the timelock ciphertext of the content key.
    pub key_len: u32,
}

impl SealedHeader {
    /// Bytes of the header and the key ciphertext: where the payload starts,
    /// and the associated data every chunk authenticates.
    pub fn payload_offset(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.key_len)
    }

    /// The number of payload chunks: `ceil(plain_len / chunk_size)`, and at
    /// least one (an empty plaintext has one empty chunk, so that a sealed
    /// envelope always ends with an authenticated last chunk).
    pub fn chunk_count(&self) -> u64 {
        chunk_count(self.plain_len, self.chunk_size)
    }

    /// The whole envelope's length in bytes; `None` on overflow.
    pub fn sealed_len(&self) -> Option<u64> {
        let tags = self.chunk_count().checked_mul(TAG_LEN as u64)?;
        self.payload_offset()
            .checked_add(self.plain_len)?
            .checked_add(tags)
    }

    /// Plaintext bytes of chunk `index` (all but the last are `chunk_size`).
    pub fn chunk_plain_len(&self, index: u64) -> u64 {
        let start = index.saturating_mul(u64::from(self.chunk_size));
        self.plain_len
            .saturating_sub(start)
            .min(u64::from(self.chunk_size))
    }

    /// Checks that the envelope was sealed to `beacon`;
    /// [`TimelockError::WrongBeacon`] if not.
    pub fn check_beacon(&self, beacon: &BeaconKey) -> Result<()> {
        let expected = beacon.id();
        if expected == self.beacon_id {
            Ok(())
        } else {
            Err(Error::Timelock(TimelockError::WrongBeacon {
                expected: encode_hex(&expected),
                found: encode_hex(&self.beacon_id),
            }))
        }
    }

    /// The header's 72 bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&self.version.to_le_bytes());
        // 10..12 reserved (zero)
        out[12..16].copy_from_slice(&self.chunk_size.to_le_bytes());
        out[16..24].copy_from_slice(&self.round.to_le_bytes());
        out[24..56].copy_from_slice(&self.beacon_id);
        out[56..64].copy_from_slice(&self.plain_len.to_le_bytes());
        out[64..68].copy_from_slice(&self.key_len.to_le_bytes());
        // 68..72 reserved (zero)
        out
    }
}

/// `ceil(plain_len / chunk_size)`, at least 1 (`chunk_size` must be non-zero).
fn chunk_count(plain_len: u64, chunk_size: u32) -> u64 {
    plain_len.div_ceil(u64::from(chunk_size.max(1))).max(1)
}

/// Whether `bytes` start with the sealed envelope's magic. (A delta file
/// starts with `BSTRDLTA`: the two never collide.)
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// The largest envelope that can hold a plaintext of `max_plain_len` bytes
/// (smallest chunks, largest key ciphertext): a bound for downloads.
pub fn max_sealed_len(max_plain_len: u64) -> u64 {
    let tags = chunk_count(max_plain_len, MIN_CHUNK_SIZE).saturating_mul(TAG_LEN as u64);
    (HEADER_LEN as u64 + u64::from(MAX_KEY_CIPHERTEXT_LEN))
        .saturating_add(max_plain_len)
        .saturating_add(tags)
}

/// Parses and validates the header of the sealed envelope `bytes` (the whole
/// envelope), without any cryptography: magic, version, reserved fields,
/// chunk size, key ciphertext length, the declared plaintext length against
/// `max_plain_len`, and that the sizes add up to `bytes.len()` exactly.
///
/// Errors: [`Error::Truncated`] (shorter than the header, or than the layout
/// it declares), [`Error::BadMagic`], [`Error::UnsupportedVersion`],
/// [`Error::LimitExceeded`] (plaintext or key ciphertext over its limit),
/// [`Error::Corrupt`] (anything else).
pub fn read_header(bytes: &[u8], max_plain_len: u64) -> Result<SealedHeader> {
    let header = read_fixed_header(bytes, max_plain_len)?;
    let needed = header
        .sealed_len()
        .ok_or_else(|| Error::corrupt(INPUT, "header", "the declared sizes overflow 64 bits"))?;
    let available = bytes.len() as u64;
    if available < needed {
        return Err(Error::Truncated {
            input: INPUT,
            what: format!(
                "the key ciphertext and {} payload chunk(s)",
                header.chunk_count()
            ),
            needed,
            available,
        });
    }
    if available > needed {
        return Err(Error::corrupt(
            INPUT,
            format!("offset {needed}"),
            format!("{} bytes after the last chunk", available - needed),
        ));
    }
    Ok(header)
}

/// Parses the fixed 72-byte header at the start of `bytes` (which may be
/// only a prefix of the envelope): every check of [`read_header`] except that
/// the envelope's length matches. For readers that fetch the header first.
pub fn read_fixed_header(bytes: &[u8], max_plain_len: u64) -> Result<SealedHeader> {
    let Some(fixed) = bytes.get(..HEADER_LEN) else {
        return Err(Error::Truncated {
            input: INPUT,
            what: "header".into(),
            needed: HEADER_LEN as u64,
            available: bytes.len() as u64,
        });
    };
    if fixed[0..8] != MAGIC {
        return Err(Error::BadMagic {
            input: INPUT,
            found: fixed[0..8].to_vec(),
        });
    }
    let u16_at = |at: usize| u16::from_le_bytes([fixed[at], fixed[at + 1]]);
    let u32_at = |at: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&fixed[at..at + 4]);
        u32::from_le_bytes(b)
    };
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&fixed[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let version = u16_at(8);
    if version != VERSION {
        return Err(Error::UnsupportedVersion {
            input: INPUT,
            found: u32::from(version),
            supported: VERSION.to_string(),
        });
    }
    if u16_at(10) != 0 {
        return Err(Error::corrupt(
            INPUT,
            "offset 10",
            "reserved field is not zero",
        ));
    }
    if u32_at(68) != 0 {
        return Err(Error::corrupt(
            INPUT,
            "offset 68",
            "reserved field is not zero",
        ));
    }
    let chunk_size = u32_at(12);
    if !chunk_size.is_power_of_two() || !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(Error::corrupt(
            INPUT,
            "offset 12",
            format!(
                "chunk size {chunk_size} is not a power of two from {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE}"
            ),
        ));
    }
    let plain_len = u64_at(56);
    if plain_len > max_plain_len {
        return Err(Error::limit(
            "sealed plaintext bytes",
            max_plain_len,
            plain_len,
        ));
    }
    let key_len = u32_at(64);
    if key_len == 0 {
        return Err(Error::corrupt(INPUT, "offset 64", "empty key ciphertext"));
    }
    if key_len > MAX_KEY_CIPHERTEXT_LEN {
        return Err(Error::limit(
            "sealed key ciphertext bytes",
            u64::from(MAX_KEY_CIPHERTEXT_LEN),
            u64::from(key_len),
        ));
    }
    let mut beacon_id = [0u8; BEACON_ID_LEN];
    beacon_id.copy_from_slice(&fixed[24..56]);
    Ok(SealedHeader {
        version,
        chunk_size,
        round: u64_at(16),
        beacon_id,
        plain_len,
        key_len,
    })
}

#[cfg(test)]
mod header_tests {
    use super::*;

    fn header(plain_len: u64) -> SealedHeader {
        SealedHeader {
            version: VERSION,
            chunk_size: MIN_CHUNK_SIZE,
            round: 42,
            beacon_id: [7; BEACON_ID_LEN],
            plain_len,
            key_len: 276,
        }
    }

    fn envelope(h: &SealedHeader) -> Vec<u8> {
        let mut bytes = h.to_bytes().to_vec();
        bytes.resize(h.sealed_len().unwrap() as usize, 0xaa);
        bytes
    }

    #[test]
    fn layout_adds_up() {
        for (plain, chunks) in [(0, 1), (1, 1), (1024, 1), (1025, 2), (4096, 4)] {
            let h = header(plain);
            assert_eq!(h.chunk_count(), chunks);
            assert_eq!(
                h.sealed_len().unwrap(),
                72 + 276 + plain + 16 * chunks,
                "plain {plain}"
            );
            let bytes = envelope(&h);
            assert!(is_sealed(&bytes));
            assert_eq!(read_header(&bytes, 1 << 20).unwrap(), h);
        }
        let h = header(2500);
        assert_eq!(
            (0..4).map(|i| h.chunk_plain_len(i)).collect::<Vec<_>>(),
            [1024, 1024, 452, 0]
        );
        assert!(max_sealed_len(4096) >= header(4096).sealed_len().unwrap());
    }

    #[test]
    fn every_bad_header_is_a_typed_error() {
        let h = header(3000);
        let good = envelope(&h);
        // Every truncation.
        for len in 0..good.len() {
            assert!(matches!(
                read_header(&good[..len], 1 << 20),
                Err(Error::Truncated { .. })
            ));
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(matches!(
            read_header(&longer, 1 << 20),
            Err(Error::Corrupt { .. })
        ));
        let edit = |at: usize, bytes: &[u8]| {
            let mut b = good.clone();
            b[at..at + bytes.len()].copy_from_slice(bytes);
            read_header(&b, 1 << 20)
        };
        assert!(matches!(edit(0, b"BSTRDLTA"), Err(Error::BadMagic { .. })));
        assert!(matches!(
            edit(8, &2u16.to_le_bytes()),
            Err(Error::UnsupportedVersion { found: 2, .. })
        ));
        assert!(matches!(edit(10, &[1]), Err(Error::Corrupt { .. })));
        assert!(matches!(edit(71, &[1]), Err(Error::Corrupt { .. })));
        for bad_chunk in [0u32, 512, 1000, 1 << 25, u32::MAX] {
            assert!(matches!(
                edit(12, &bad_chunk.to_le_bytes()),
                Err(Error::Corrupt { .. })
            ));
        }
        assert!(matches!(
            edit(64, &0u32.to_le_bytes()),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(
            edit(64, &2000u32.to_le_bytes()),
            Err(Error::LimitExceeded { .. })
        ));
        // A declared length over the caller's limit, and one that overflows.
        assert!(matches!(
            read_header(&good, 2999),
            Err(Error::LimitExceeded { .. })
        ));
        assert!(matches!(
            read_header(&edit_len(&good, u64::MAX), u64::MAX),
            Err(Error::Corrupt { .. })
        ));
        // A length the buffer does not hold.
        assert!(matches!(
            read_header(&edit_len(&good, 3001), 1 << 20),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            read_header(&edit_len(&good, 2999), 1 << 20),
            Err(Error::Corrupt { .. })
        ));
    }

    fn edit_len(bytes: &[u8], plain_len: u64) -> Vec<u8> {
        let mut b = bytes.to_vec();
        b[56..64].copy_from_slice(&plain_len.to_le_bytes());
        b
    }

    #[test]
    fn wrong_beacon_is_named() {
        let h = header(0);
        let key = BeaconKey([1; 96]);
        assert!(matches!(
            h.check_beacon(&key),
            Err(Error::Timelock(TimelockError::WrongBeacon { .. }))
        ));
        let h = SealedHeader {
            beacon_id: key.id(),
            ..h
        };
        h.check_beacon(&key).unwrap();
    }
}
