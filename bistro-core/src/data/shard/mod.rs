//! Token shards: pre-tokenized, memory-mapped files of pages. The format is
//! specified in `docs/shards.md`; [`ShardWriter`] writes it, [`ShardFile`]
//! and [`ShardSource`] read it with full validation up front (header, exact
//! length, index digest, tables) and per-page digests on every read;
//! [`ShardView`] does the same over bytes the caller holds.
//!
#![doc = include_str!("../../../../docs/shards.md")]

mod file;
mod header;
mod index;
mod view;
mod writer;

pub use file::{ShardFile, ShardSource, dataset_identity};
pub use header::{
    HEADER_LEN, Header, Layout, MAGIC, MAX_PAGE_SEQUENCES, MAX_PAGE_TOKENS, MAX_PAGES,
    MAX_SEQUENCES, MAX_TOKENS, VERSION,
};
pub use index::{Index, PageSpan};
pub use view::ShardView;
pub use writer::{ShardSummary, ShardWriter};

#[cfg(test)]
mod tests;
