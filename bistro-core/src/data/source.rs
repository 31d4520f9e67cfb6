//! The [`PageSource`] trait and the tokenizer description every source reports.

use serde::{Deserialize, Serialize};

use super::batch::Batch;
use super::page::{Page, PagedBatch, pages_to_batch};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::pages::DatasetParams;

/// Which tokenizer produced a source's tokens, so a model can check that its
/// vocabulary matches before it trains or evaluates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenizerInfo {
    /// The tokenizer's name: lowercase ASCII letters, digits, `.`, `_`, `-`,
    /// at most 32 bytes (`"gpt2"` for GPT-2's BPE, tiktoken's `r50k_base`).
    pub name: String,
    /// Number of token ids; every token is below it.
    pub vocab_size: u32,
    /// The end-of-sequence token appended after each document.
    pub eos_id: u32,
}

/// GPT-2's vocabulary size (50,000 merges + 256 bytes + `<|endoftext|>`).
pub const GPT2_VOCAB_SIZE: u32 = 50_257;
/// GPT-2's `<|endoftext|>` id.
pub const GPT2_EOS_ID: u32 = 50_256;

impl TokenizerInfo {
    /// GPT-2's BPE (tiktoken's `r50k_base`).
    pub fn gpt2() -> Self {
        TokenizerInfo {
            name: "gpt2".into(),
            vocab_size: GPT2_VOCAB_SIZE,
            eos_id: GPT2_EOS_ID,
        }
    }

    /// Checks the name's characters and length and that `eos_id < vocab_size`.
    pub fn validate(&self) -> Result<()> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 32
            && self.name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            });
        if !name_ok {
            return Err(Error::InvalidArgument(format!(
                "tokenizer name {:?} must be 1 to 32 of [a-z0-9._-]",
                self.name
            )));
        }
        if self.eos_id >= self.vocab_size {
            return Err(Error::InvalidArgument(format!(
                "eos id {} is not below vocab size {}",
                self.eos_id, self.vocab_size
            )));
        }
        Ok(())
    }
}

/// A dataset as numbered pages of tokens. Implementations are shared
/// between threads (a validator fetches pages in parallel).
pub trait PageSource: Send + Sync {
    /// The dataset's identity, the `dataset_id` of [`DatasetParams`].
    fn dataset_id(&self) -> Digest;

    /// Number of pages; page ids are `0..num_pages()`.
    fn num_pages(&self) -> u64;

    /// The tokenizer the tokens come from.
    fn tokenizer(&self) -> TokenizerInfo;

    /// The tokens of page `id`; [`Error::NotFound`] for `id >= num_pages()`.
    fn page(&self, id: u64) -> Result<Page>;

    /// Several pages, in the order given.
    fn pages(&self, ids: &[u64]) -> Result<Vec<Page>> {
        ids.iter().map(|&id| self.page(id)).collect()
    }

    /// The pages `ids` packed into rows of `seq_len` (see
    /// [`pages_to_batch`]), padded with the EOS id and the padding masked.
    fn batch(&self, ids: &[u64], seq_len: usize) -> Result<Batch> {
        let pages = self.pages(ids)?;
        pages_to_batch(&pages, seq_len, self.tokenizer().eos_id)
    }

    /// The pages `ids` packed as [`batch`](PageSource::batch) packs them,
    /// with the rows of each page (for per-page losses).
    fn paged_batch(&self, ids: &[u64], seq_len: usize) -> Result<PagedBatch> {
        let pages = self.pages(ids)?;
        PagedBatch::pack(&pages, seq_len, self.tokenizer().eos_id)
    }

    /// Page-selection parameters for this dataset.
    fn params(
        &self,
        window_pages: u64,
        epoch_blocks: u64,
        reveal_delay_blocks: u64,
    ) -> Result<DatasetParams> {
        let params = DatasetParams {
            dataset_id: self.dataset_id(),
            num_pages: self.num_pages(),
            window_pages,
            epoch_blocks,
            reveal_delay_blocks,
        };
        params.validate()?;
        Ok(params)
    }
}

/// The error for a page id past the end of a source.
pub(crate) fn page_not_found(id: u64, num_pages: u64, source: &str) -> Error {
    Error::NotFound(format!("page {id} of {source} (it has {num_pages} pages)"))
}
