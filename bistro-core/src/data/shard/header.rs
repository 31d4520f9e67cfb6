//! The 128-byte shard header: parse, validate, encode. Layout in
//! `docs/shards.md`.

use crate::data::source::TokenizerInfo;
use crate::digest::Digest;
use crate::error::{Error, Result};

/// The first 8 bytes of every shard.
pub const MAGIC: [u8; 8] = *b"BSTRSHRD";
/// The shard format version this build reads and writes.
pub const VERSION: u32 = 1;
/// Header size in bytes.
pub const HEADER_LEN: usize = 128;
/// Most pages in one shard.
pub const MAX_PAGES: u64 = 1 << 32;
/// Most sequences in one shard.
pub const MAX_SEQUENCES: u64 = 1 << 36;
/// Most tokens in one shard.
pub const MAX_TOKENS: u64 = 1 << 40;
/// Most tokens in one page: bounds the memory one page read allocates.
pub const MAX_PAGE_TOKENS: u64 = 1 << 24;
/// Most sequences in one page.
pub const MAX_PAGE_SEQUENCES: u64 = 1 << 20;

const INPUT: &str = "shard";

/// A parsed, validated shard header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Bytes per token: 2 (u16) or 4 (u32).
    pub token_bytes: u32,
    /// Number of pages.
    pub page_count: u64,
    /// Number of sequences, over all pages.
    pub sequence_count: u64,
    /// Number of tokens, over all sequences.
    pub token_count: u64,
    /// The tokenizer (name, vocabulary size, EOS id).
    pub tokenizer: TokenizerInfo,
    /// BLAKE3 of the page table, sequence table and page digests.
    pub index_digest: Digest,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

impl Header {
    /// Parses and validates the first [`HEADER_LEN`] bytes of a shard.
    pub fn parse(bytes: &[u8]) -> Result<Header> {
        let Some(b) = bytes.get(..HEADER_LEN) else {
            if bytes.len() >= 8 && bytes[..8] != MAGIC {
                return Err(Error::BadMagic {
                    input: INPUT,
                    found: bytes[..8].to_vec(),
                });
            }
            return Err(Error::Truncated {
                input: INPUT,
                what: "header".into(),
                needed: HEADER_LEN as u64,
                available: bytes.len() as u64,
            });
        };
        if b[..8] != MAGIC {
            return Err(Error::BadMagic {
                input: INPUT,
                found: b[..8].to_vec(),
            });
        }
        let version = u32_at(b, 8);
        if version != VERSION {
            return Err(Error::UnsupportedVersion {
                input: INPUT,
                found: version,
                supported: VERSION.to_string(),
            });
        }
        let corrupt =
            |at: usize, reason: String| Error::corrupt(INPUT, format!("header byte {at}"), reason);
        let token_bytes = u32_at(b, 12);
        if token_bytes != 2 && token_bytes != 4 {
            return Err(corrupt(
                12,
                format!("token width {token_bytes} is not 2 or 4"),
            ));
        }
        let page_count = u64_at(b, 16);
        let sequence_count = u64_at(b, 24);
        let token_count = u64_at(b, 32);
        for (what, value, limit) in [
            ("shard page count", page_count, MAX_PAGES),
            ("shard sequence count", sequence_count, MAX_SEQUENCES),
            ("shard token count", token_count, MAX_TOKENS),
        ] {
            if value > limit {
                return Err(Error::limit(what, limit, value));
            }
        }
        let vocab_size = u32_at(b, 40);
        let eos_id = u32_at(b, 44);
        if token_bytes == 2 && vocab_size > 1 << 16 {
            return Err(corrupt(
                40,
                format!("vocab size {vocab_size} does not fit u16 tokens"),
            ));
        }
        let name_field = &b[48..80];
        let name_len = name_field.iter().position(|&c| c == 0).unwrap_or(32);
        if name_field[name_len..].iter().any(|&c| c != 0) {
            return Err(corrupt(48, "tokenizer name is not NUL-padded".into()));
        }
        let name = std::str::from_utf8(&name_field[..name_len])
            .map_err(|_| corrupt(48, "tokenizer name is not ASCII".into()))?;
        let tokenizer = TokenizerInfo {
            name: name.to_string(),
            vocab_size,
            eos_id,
        };
        tokenizer
            .validate()
            .map_err(|e| corrupt(40, format!("tokenizer: {e}")))?;
        let mut index_digest = [0u8; 32];
        index_digest.copy_from_slice(&b[80..112]);
        if b[112..128].iter().any(|&c| c != 0) {
            return Err(corrupt(112, "reserved bytes are not zero".into()));
        }
        Ok(Header {
            token_bytes,
            page_count,
            sequence_count,
            token_count,
            tokenizer,
            index_digest: Digest(index_digest),
        })
    }

    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.token_bytes.to_le_bytes());
        b[16..24].copy_from_slice(&self.page_count.to_le_bytes());
        b[24..32].copy_from_slice(&self.sequence_count.to_le_bytes());
        b[32..40].copy_from_slice(&self.token_count.to_le_bytes());
        b[40..44].copy_from_slice(&self.tokenizer.vocab_size.to_le_bytes());
        b[44..48].copy_from_slice(&self.tokenizer.eos_id.to_le_bytes());
        let name = self.tokenizer.name.as_bytes();
        let n = name.len().min(32);
        b[48..48 + n].copy_from_slice(&name[..n]);
        b[80..112].copy_from_slice(&self.index_digest.0);
        b
    }

    /// The shard's identity: BLAKE3 of the header bytes (which cover the
    /// index, whose page digests cover the tokens).
    pub fn identity(&self) -> Digest {
        Digest::of(&self.encode())
    }

    /// Offsets of the sections, from the start of the file.
    pub fn layout(&self) -> Layout {
        // The caps above keep every product and sum far below u64::MAX:
        // 8·(2^36 + 1) + 8·(2^32 + 1) + 32·2^32 + 4·2^40 < 2^43.
        let page_table = HEADER_LEN as u64;
        let sequence_table = page_table + 8 * (self.page_count + 1);
        let page_digests = sequence_table + 8 * (self.sequence_count + 1);
        let tokens = page_digests + 32 * self.page_count;
        let end = tokens + u64::from(self.token_bytes) * self.token_count;
        Layout {
            page_table,
            sequence_table,
            page_digests,
            tokens,
            end,
        }
    }
}

/// Byte offsets of a shard's sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Start of the page table.
    pub page_table: u64,
    /// Start of the sequence table.
    pub sequence_table: u64,
    /// Start of the page digests.
    pub page_digests: u64,
    /// Start of the tokens.
    pub tokens: u64,
    /// The file's length.
    pub end: u64,
}
