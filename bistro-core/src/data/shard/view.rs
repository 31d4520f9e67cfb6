//! A shard held in memory: [`ShardView`] validates a byte slice (memory-map
//! it, read it, or receive it: that is the caller's choice) and reads pages
//! from it without copying the file.

use super::header::{HEADER_LEN, Header};
use super::index::Index;
use crate::data::page::Page;
use crate::data::source::page_not_found;
use crate::error::{Error, Result};

/// Checks a whole shard in `bytes`: header, exact length, index digest and
/// tables. `name` says which shard, in errors.
pub(crate) fn validate(bytes: &[u8], name: &str) -> Result<Header> {
    let header = Header::parse(bytes)?;
    let layout = header.layout();
    let len = bytes.len() as u64;
    if len < layout.end {
        return Err(Error::Truncated {
            input: "shard",
            what: format!("{name} (header declares {} bytes)", layout.end),
            needed: layout.end,
            available: len,
        });
    }
    if len > layout.end {
        return Err(Error::corrupt(
            "shard",
            format!("{name}, byte {}", layout.end),
            format!("{} trailing bytes after the tokens", len - layout.end),
        ));
    }
    Index::parse(&header, &bytes[HEADER_LEN..layout.tokens as usize])?;
    Ok(header)
}

/// Reads page `page` from `bytes`, a shard [`validate`] accepted with `header`.
pub(crate) fn read_page(header: &Header, bytes: &[u8], page: u64, name: &str) -> Result<Page> {
    if page >= header.page_count {
        return Err(page_not_found(page, header.page_count, name));
    }
    let layout = header.layout();
    let index = Index::trusted(header, &bytes[HEADER_LEN..layout.tokens as usize]);
    let span = index.span(page);
    let width = u64::from(header.token_bytes);
    // Validation bounded every offset by the file length.
    let start = layout.tokens + span.first_token * width;
    let end = start + span.tokens() * width;
    index.decode_page(header, page, &bytes[start as usize..end as usize])
}

/// A validated shard over borrowed bytes.
#[derive(Clone, Debug)]
pub struct ShardView<'a> {
    header: Header,
    bytes: &'a [u8],
}

impl<'a> ShardView<'a> {
    /// Validates `bytes` as a whole shard (see `docs/shards.md`).
    pub fn parse(bytes: &'a [u8]) -> Result<ShardView<'a>> {
        let header = validate(bytes, "shard bytes")?;
        Ok(ShardView { header, bytes })
    }

    /// The validated header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Number of pages.
    pub fn page_count(&self) -> u64 {
        self.header.page_count
    }

    /// Page `page` (checked against its digest and the vocabulary).
    pub fn page(&self, page: u64) -> Result<Page> {
        read_page(&self.header, self.bytes, page, "shard bytes")
    }
}
