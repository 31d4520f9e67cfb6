//! Writing shards: pages are streamed to a temporary token file, then the
//! header, index and tokens are written to a temporary shard file that is
//! renamed into place (atomic: a reader sees the old file or the whole new
//! one). The result is re-opened with the reader's own validation.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::file::ShardFile;
use super::header::{
    Header, MAX_PAGE_SEQUENCES, MAX_PAGE_TOKENS, MAX_PAGES, MAX_SEQUENCES, MAX_TOKENS,
};
use crate::data::source::TokenizerInfo;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::util::atomic::{TempFile, write_atomic_with};

/// What [`ShardWriter::finish`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardSummary {
    /// The shard file.
    pub path: PathBuf,
    /// Its identity (BLAKE3 of its header).
    pub identity: Digest,
    /// Pages written.
    pub pages: u64,
    /// Sequences written.
    pub sequences: u64,
    /// Tokens written.
    pub tokens: u64,
    /// The file's size in bytes.
    pub bytes: u64,
}

/// Writes one shard file, a page at a time.
pub struct ShardWriter {
    path: PathBuf,
    /// The scratch file of streamed tokens (removed when the writer drops).
    tokens: TempFile,
    tokens_out: Option<BufWriter<File>>,
    tokenizer: TokenizerInfo,
    token_bytes: u32,
    page_table: Vec<u64>,
    sequence_table: Vec<u64>,
    page_digests: Vec<Digest>,
    scratch: Vec<u8>,
}

impl ShardWriter {
    /// Starts a shard at `path` with tokens of `token_bytes` (2 or 4) bytes
    /// from `tokenizer`. Nothing appears at `path` until [`Self::finish`].
    pub fn create(
        path: impl AsRef<Path>,
        tokenizer: TokenizerInfo,
        token_bytes: u32,
    ) -> Result<Self> {
        tokenizer.validate()?;
        if token_bytes != 2 && token_bytes != 4 {
            return Err(Error::InvalidArgument(format!(
                "token width {token_bytes} is not 2 or 4"
            )));
        }
        if token_bytes == 2 && tokenizer.vocab_size > 1 << 16 {
            return Err(Error::InvalidArgument(format!(
                "vocab size {} does not fit u16 tokens",
                tokenizer.vocab_size
            )));
        }
        let path = path.as_ref().to_path_buf();
        let mut tokens = TempFile::beside(&path)?;
        let file = tokens.file()?.try_clone();
        let file = file.map_err(|e| Error::io(tokens.path(), e))?;
        Ok(ShardWriter {
            path,
            tokens,
            tokens_out: Some(BufWriter::with_capacity(1 << 20, file)),
            tokenizer,
            token_bytes,
            page_table: vec![0],
            sequence_table: vec![0],
            page_digests: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// Pages written so far.
    pub fn page_count(&self) -> u64 {
        self.page_digests.len() as u64
    }

    /// Tokens written so far.
    pub fn token_count(&self) -> u64 {
        self.sequence_table.last().copied().unwrap_or(0)
    }

    /// Appends a page made of `sequences`. Every token must be below the
    /// vocabulary size; the page and shard caps of the format apply.
    pub fn push_page<'a>(&mut self, sequences: impl IntoIterator<Item = &'a [u32]>) -> Result<()> {
        if self.page_count() >= MAX_PAGES {
            return Err(Error::limit(
                "shard page count",
                MAX_PAGES,
                self.page_count() + 1,
            ));
        }
        let width = self.token_bytes as usize;
        self.scratch.clear();
        let mut ends = Vec::new();
        let mut page_tokens = 0u64;
        for seq in sequences {
            if let Some(&bad) = seq.iter().find(|&&t| t >= self.tokenizer.vocab_size) {
                return Err(Error::InvalidArgument(format!(
                    "token {bad} is not below the vocab size {}",
                    self.tokenizer.vocab_size
                )));
            }
            page_tokens += seq.len() as u64;
            if page_tokens > MAX_PAGE_TOKENS {
                return Err(Error::limit(
                    "tokens in a page",
                    MAX_PAGE_TOKENS,
                    page_tokens,
                ));
            }
            for &t in seq {
                self.scratch.extend_from_slice(&t.to_le_bytes()[..width]);
            }
            ends.push(page_tokens);
        }
        if ends.len() as u64 > MAX_PAGE_SEQUENCES {
            return Err(Error::limit(
                "sequences in a page",
                MAX_PAGE_SEQUENCES,
                ends.len() as u64,
            ));
        }
        let base = self.token_count();
        let sequences = self.sequence_table.len() as u64 - 1 + ends.len() as u64;
        if sequences > MAX_SEQUENCES {
            return Err(Error::limit(
                "shard sequence count",
                MAX_SEQUENCES,
                sequences,
            ));
        }
        if base + page_tokens > MAX_TOKENS {
            return Err(Error::limit(
                "shard token count",
                MAX_TOKENS,
                base + page_tokens,
            ));
        }
        let out = self
            .tokens_out
            .as_mut()
            .ok_or_else(|| Error::InvalidArgument("shard writer already finished".into()))?;
        out.write_all(&self.scratch)
            .map_err(|e| Error::io(self.tokens.path(), e))?;
        self.page_digests.push(Digest::of(&self.scratch));
        self.sequence_table.extend(ends.iter().map(|e| base + e));
        self.page_table.push(sequences);
        Ok(())
    }

    /// Writes the shard to its path atomically and returns what it holds.
    pub fn finish(mut self) -> Result<ShardSummary> {
        let out = self
            .tokens_out
            .take()
            .ok_or_else(|| Error::InvalidArgument("shard writer already finished".into()))?;
        let tokens_file = out
            .into_inner()
            .map_err(|e| Error::io(self.tokens.path(), e.into_error()))?;
        drop(tokens_file);

        let mut index = Vec::with_capacity(
            8 * (self.page_table.len() + self.sequence_table.len()) + 32 * self.page_digests.len(),
        );
        for v in self.page_table.iter().chain(&self.sequence_table) {
            index.extend_from_slice(&v.to_le_bytes());
        }
        for d in &self.page_digests {
            index.extend_from_slice(&d.0);
        }
        let header = Header {
            token_bytes: self.token_bytes,
            page_count: self.page_count(),
            sequence_count: self.sequence_table.len() as u64 - 1,
            token_count: self.token_count(),
            tokenizer: self.tokenizer.clone(),
            index_digest: Digest::of(&index),
        };

        write_atomic_with(&self.path, |out| {
            write_shard(out, &self.path, &header, &index, self.tokens.path())
        })?;
        // The reader's validation, on what was written.
        let file = ShardFile::open(&self.path)?;
        Ok(ShardSummary {
            path: self.path.clone(),
            identity: file.identity(),
            pages: header.page_count,
            sequences: header.sequence_count,
            tokens: header.token_count,
            bytes: header.layout().end,
        })
    }
}

/// Writes the header, the index and the streamed tokens to `out` (the
/// temp file of `path`).
fn write_shard(
    out: &mut impl Write,
    path: &Path,
    header: &Header,
    index: &[u8],
    tokens_path: &Path,
) -> Result<()> {
    let io = |e| Error::io(path, e);
    out.write_all(&header.encode()).map_err(io)?;
    out.write_all(index).map_err(io)?;
    let mut tokens = File::open(tokens_path).map_err(|e| Error::io(tokens_path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = tokens
            .read(&mut buf)
            .map_err(|e| Error::io(tokens_path, e))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(io)?;
    }
    Ok(())
}
