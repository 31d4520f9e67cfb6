//! Page sources: turning a page id into token sequences.
//!
//! A [`PageSource`] names a dataset ([`PageSource::dataset_id`], the input
//! of [`crate::pages`]), says how many pages it has and which tokenizer made
//! them, and returns a page's tokens as a [`Page`]. [`pages_to_batch`] and
//! [`PageSource::batch`] pack pages into the [`Batch`] the model evaluates.
//!
//! Sources:
//! - [`ShardSource`] (always built): pre-tokenized shard files
//!   (`docs/shards.md`), memory-mapped. [`ShardWriter`] writes them; the
//!   `make_shards` example converts text or JSON lines.
//! - `HttpShardSource` (feature `http`): the same files from any URL or
//!   public S3-compatible bucket, by HTTP Range requests, with a local cache.
//! - `RowsSource` (feature `http`): RefinedWeb (or any text dataset) through
//!   the HuggingFace datasets-server `/rows` API, tokenized with GPT-2.
//! - [`sample`]: the small corpus shipped in `data/sample/`.
//!
//! Every malformed input (a truncated shard, a wrong magic, a page past the
//! end, a response that is not the expected JSON) is a typed [`crate::Error`].

mod batch;
mod page;
pub mod sample;
pub mod shard;
mod source;

#[cfg(feature = "tokenizer")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokenizer")))]
pub mod tokenizer;

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;

pub use batch::Batch;
pub use page::{Page, PagedBatch, pages_to_batch};
pub use shard::{ShardFile, ShardSource, ShardWriter};
pub use source::{GPT2_EOS_ID, GPT2_VOCAB_SIZE, PageSource, TokenizerInfo};

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use http::{HttpOptions, HttpShardSource, RowsConfig, RowsSource};
