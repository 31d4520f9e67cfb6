//! The shard index (page table, sequence table, page digests): validation
//! and lookups, and decoding one page's tokens.

use super::header::{Header, MAX_PAGE_SEQUENCES, MAX_PAGE_TOKENS};
use crate::data::page::Page;
use crate::digest::Digest;
use crate::error::{Error, Result};

const INPUT: &str = "shard";

/// Where one page's sequences and tokens are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSpan {
    /// First sequence of the page.
    pub first_sequence: u64,
    /// One past the last sequence.
    pub end_sequence: u64,
    /// First token of the page (index into the token section).
    pub first_token: u64,
    /// One past the last token.
    pub end_token: u64,
}

impl PageSpan {
    /// Tokens in the page.
    pub fn tokens(&self) -> u64 {
        self.end_token - self.first_token
    }
}

/// A validated view of a shard's index bytes (everything between the header
/// and the tokens).
#[derive(Clone, Copy, Debug)]
pub struct Index<'a> {
    page_table: &'a [u8],
    sequence_table: &'a [u8],
    page_digests: &'a [u8],
}

fn u64_at(table: &[u8], i: u64) -> u64 {
    // Callers pass i within the table, which validation sized.
    let at = (i * 8) as usize;
    let mut w = [0u8; 8];
    w.copy_from_slice(&table[at..at + 8]);
    u64::from_le_bytes(w)
}

impl<'a> Index<'a> {
    /// Validates `bytes` (exactly the index section of the shard `header`
    /// describes): its digest, and that both tables start at 0, never
    /// decrease, end at the counts, and keep every page within the caps.
    pub fn parse(header: &Header, bytes: &'a [u8]) -> Result<Index<'a>> {
        let layout = header.layout();
        let expected = layout.tokens - layout.page_table;
        if bytes.len() as u64 != expected {
            return Err(Error::Truncated {
                input: INPUT,
                what: "index".into(),
                needed: expected,
                available: bytes.len() as u64,
            });
        }
        let computed = Digest::of(bytes);
        if computed != header.index_digest {
            return Err(Error::DigestMismatch {
                what: "shard index".into(),
                expected: header.index_digest,
                computed,
            });
        }
        let index = Index::trusted(header, bytes);
        index.check_table(
            index.page_table,
            header.sequence_count,
            "page table",
            layout.page_table,
        )?;
        index.check_table(
            index.sequence_table,
            header.token_count,
            "sequence table",
            layout.sequence_table,
        )?;
        for page in 0..header.page_count {
            let span = index.span(page);
            let sequences = span.end_sequence - span.first_sequence;
            if sequences > MAX_PAGE_SEQUENCES {
                return Err(Error::limit(
                    format!("sequences in page {page}"),
                    MAX_PAGE_SEQUENCES,
                    sequences,
                ));
            }
            if span.tokens() > MAX_PAGE_TOKENS {
                return Err(Error::limit(
                    format!("tokens in page {page}"),
                    MAX_PAGE_TOKENS,
                    span.tokens(),
                ));
            }
        }
        Ok(index)
    }

    /// Splits index bytes that [`Index::parse`] already accepted for this
    /// `header`, without checking them again.
    pub(crate) fn trusted(header: &Header, bytes: &'a [u8]) -> Index<'a> {
        let layout = header.layout();
        let (page_table, rest) =
            bytes.split_at((layout.sequence_table - layout.page_table) as usize);
        let (sequence_table, page_digests) =
            rest.split_at((layout.page_digests - layout.sequence_table) as usize);
        Index {
            page_table,
            sequence_table,
            page_digests,
        }
    }

    fn check_table(&self, table: &[u8], last: u64, name: &str, offset: u64) -> Result<()> {
        let entries = (table.len() / 8) as u64;
        let at = |i: u64| format!("{name} entry {i} (byte {})", offset + 8 * i);
        if u64_at(table, 0) != 0 {
            return Err(Error::corrupt(INPUT, at(0), "first entry is not 0"));
        }
        let mut prev = 0;
        for i in 1..entries {
            let v = u64_at(table, i);
            if v < prev {
                return Err(Error::corrupt(
                    INPUT,
                    at(i),
                    format!("{v} is below the previous entry {prev}"),
                ));
            }
            prev = v;
        }
        if prev != last {
            return Err(Error::corrupt(
                INPUT,
                at(entries - 1),
                format!("last entry {prev} is not the count {last}"),
            ));
        }
        Ok(())
    }

    /// Number of pages.
    pub fn page_count(&self) -> u64 {
        (self.page_digests.len() / 32) as u64
    }

    /// The span of page `page < page_count()`.
    pub fn span(&self, page: u64) -> PageSpan {
        let first_sequence = u64_at(self.page_table, page);
        let end_sequence = u64_at(self.page_table, page + 1);
        PageSpan {
            first_sequence,
            end_sequence,
            first_token: u64_at(self.sequence_table, first_sequence),
            end_token: u64_at(self.sequence_table, end_sequence),
        }
    }

    /// The token offset where sequence `s` starts (`s <= sequence count`).
    pub fn sequence_start(&self, s: u64) -> u64 {
        u64_at(self.sequence_table, s)
    }

    /// The BLAKE3 digest of page `page`'s token bytes.
    pub fn page_digest(&self, page: u64) -> Digest {
        let at = (page * 32) as usize;
        let mut d = [0u8; 32];
        d.copy_from_slice(&self.page_digests[at..at + 32]);
        Digest(d)
    }

    /// Decodes page `page` from `token_bytes`, the bytes of its tokens as
    /// stored: checks their length and digest and that every token is below
    /// the vocabulary size.
    pub fn decode_page(&self, header: &Header, page: u64, token_bytes: &[u8]) -> Result<Page> {
        let span = self.span(page);
        let width = header.token_bytes as usize;
        let expected = span.tokens() * width as u64;
        if token_bytes.len() as u64 != expected {
            return Err(Error::Truncated {
                input: INPUT,
                what: format!("tokens of page {page}"),
                needed: expected,
                available: token_bytes.len() as u64,
            });
        }
        let computed = Digest::of(token_bytes);
        let declared = self.page_digest(page);
        if computed != declared {
            return Err(Error::DigestMismatch {
                what: format!("shard page {page}"),
                expected: declared,
                computed,
            });
        }
        let tokens: Vec<u32> = if width == 2 {
            token_bytes
                .chunks_exact(2)
                .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])))
                .collect()
        } else {
            token_bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        let vocab = header.tokenizer.vocab_size;
        if let Some(i) = tokens.iter().position(|&t| t >= vocab) {
            return Err(Error::corrupt(
                INPUT,
                format!("page {page}, token {i}"),
                format!("token id {} is not below the vocab size {vocab}", tokens[i]),
            ));
        }
        let offsets = (span.first_sequence..=span.end_sequence)
            .map(|s| (self.sequence_start(s) - span.first_token) as usize)
            .collect();
        Ok(Page {
            id: page,
            tokens,
            offsets,
        })
    }
}
