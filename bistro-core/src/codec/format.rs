//! The fixed parts of the file: magic numbers, sizes, alignment, and the
//! header (see `docs/delta-format.md`).

use byteorder::{ByteOrder, LittleEndian as LE};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::identity::PublicKey;

/// The name used for deltas in errors.
pub(crate) const INPUT: &str = "delta";

/// The first 8 bytes of every delta file.
pub const MAGIC: [u8; 8] = *b"BSTRDLTA";
/// The 8 bytes that mark a complete footer.
pub const FOOTER_MAGIC: [u8; 8] = *b"BSTRTAIL";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 128;
/// Length of the fixed footer (locator, digest, signature).
pub const FOOTER_LEN: usize = 128;
/// Bytes at the end of the file that the digest does not cover (digest + signature).
pub const UNDIGESTED_LEN: usize = 96;
/// Payloads and the table start at multiples of this.
pub const PAYLOAD_ALIGN: u64 = 64;
/// Table entries are padded to multiples of this.
pub(crate) const ENTRY_ALIGN: u64 = 8;
/// Fixed part of a table entry (before dims and name).
pub(crate) const ENTRY_FIXED_LEN: u64 = 40;

/// `x` rounded up to a multiple of `a` (a power of two), or `None` on overflow.
pub(crate) fn align_up(x: u64, a: u64) -> Option<u64> {
    Some(x.checked_add(a - 1)? & !(a - 1))
}

/// What a delta says about itself: which master it applies to, when, and who made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct DeltaHeader {
    /// Content digest of the master weights the delta was computed against.
    pub base_revision: Digest,
    /// The chain block the delta was made for.
    pub block: u64,
    /// The author's uid on the subnet.
    pub uid: u16,
    /// The author's hotkey (sr25519 public key); the footer signature is by this key.
    pub hotkey: PublicKey,
}

impl DeltaHeader {
    /// The 128 header bytes.
    pub(crate) fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        LE::write_u32(&mut b[8..12], VERSION);
        LE::write_u32(&mut b[12..16], 0);
        b[16..48].copy_from_slice(&self.base_revision.0);
        LE::write_u64(&mut b[48..56], self.block);
        LE::write_u16(&mut b[56..58], self.uid);
        b[64..96].copy_from_slice(&self.hotkey.0);
        b
    }

    /// Parses and checks the header at the start of `bytes`.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self> {
        let magic_len = bytes.len().min(MAGIC.len());
        let found = bytes.get(..magic_len).unwrap_or_default();
        if found != &MAGIC[..magic_len] {
            return Err(Error::BadMagic {
                input: INPUT,
                found: found.to_vec(),
            });
        }
        let minimum = HEADER_LEN + FOOTER_LEN;
        let Some(b) = bytes.get(..HEADER_LEN).filter(|_| bytes.len() >= minimum) else {
            return Err(Error::Truncated {
                input: INPUT,
                what: "header and footer".into(),
                needed: minimum as u64,
                available: bytes.len() as u64,
            });
        };
        let version = LE::read_u32(&b[8..12]);
        if version != VERSION {
            return Err(Error::UnsupportedVersion {
                input: INPUT,
                found: version,
                supported: VERSION.to_string(),
            });
        }
        let flags = LE::read_u32(&b[12..16]);
        if flags != 0 {
            return Err(Error::corrupt(
                INPUT,
                "header byte 12 (flags)",
                format!("unknown flags {flags:#x}; version 1 defines none"),
            ));
        }
        for (start, end) in [(58, 64), (96, 128)] {
            if let Some(i) = b[start..end].iter().position(|&x| x != 0) {
                return Err(Error::corrupt(
                    INPUT,
                    format!("header byte {}", start + i),
                    "reserved byte is not zero",
                ));
            }
        }
        let mut base = [0u8; 32];
        base.copy_from_slice(&b[16..48]);
        let mut hotkey = [0u8; 32];
        hotkey.copy_from_slice(&b[64..96]);
        Ok(DeltaHeader {
            base_revision: Digest(base),
            block: LE::read_u64(&b[48..56]),
            uid: LE::read_u16(&b[56..58]),
            hotkey: PublicKey(hotkey),
        })
    }
}

/// The first 32 bytes of the footer: where the table is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Locator {
    pub table_offset: u64,
    pub table_length: u64,
    pub tensor_count: u64,
}

impl Locator {
    pub(crate) fn to_bytes(self) -> [u8; 32] {
        let mut b = [0u8; 32];
        LE::write_u64(&mut b[0..8], self.table_offset);
        LE::write_u64(&mut b[8..16], self.table_length);
        LE::write_u64(&mut b[16..24], self.tensor_count);
        b[24..32].copy_from_slice(&FOOTER_MAGIC);
        b
    }

    /// Reads the locator from a footer (the last [`FOOTER_LEN`] bytes).
    pub(crate) fn parse(footer: &[u8; FOOTER_LEN], file_len: u64) -> Result<Self> {
        let at = |rel: u64| format!("byte {}", file_len - FOOTER_LEN as u64 + rel);
        if footer[24..32] != FOOTER_MAGIC {
            return Err(Error::corrupt(
                INPUT,
                at(24),
                "footer magic missing: the file is truncated or not a complete delta",
            ));
        }
        Ok(Locator {
            table_offset: LE::read_u64(&footer[0..8]),
            table_length: LE::read_u64(&footer[8..16]),
            tensor_count: LE::read_u64(&footer[16..24]),
        })
    }
}
