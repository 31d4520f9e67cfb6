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
///
/// The page's token bytes are copied out first and then checked against
/// their digest and decoded from that copy: `bytes` may be a memory map that
/// another process changes, and a check on shared memory says nothing about
/// a second read of it. Offsets that no longer fit `bytes` are an error.
pub(crate) fn read_page(header: &Header, bytes: &[u8], page: u64, name: &str) -> Result<Page> {
    if page >= header.page_count {
        return Err(page_not_found(page, header.page_count, name));
    }
    let layout = header.layout();
    let outside = |what: &str| {
        Error::corrupt(
            "shard",
            format!("{name}, page {page}"),
            format!("{what} lies outside the shard (was it changed after it was opened?)"),
        )
    };
    let index_bytes = usize::try_from(layout.tokens)
        .ok()
        .and_then(|end| bytes.get(HEADER_LEN..end))
        .ok_or_else(|| outside("the index"))?;
    let index = Index::trusted(header, index_bytes);
    let span = index.span(page);
    let width = u64::from(header.token_bytes);
    let range = span
        .first_token
        .checked_mul(width)
        .and_then(|o| layout.tokens.checked_add(o))
        .and_then(|start| Some((start, start.checked_add(span.tokens().checked_mul(width)?)?)))
        .and_then(|(start, end)| Some(usize::try_from(start).ok()?..usize::try_from(end).ok()?));
    let token_bytes = range
        .and_then(|r| bytes.get(r))
        .ok_or_else(|| outside("the page's tokens"))?
        .to_vec();
    index.decode_page(header, page, &token_bytes)
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
