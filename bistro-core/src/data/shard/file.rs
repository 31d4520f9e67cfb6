//! Shards on local disk, memory-mapped: [`ShardFile`] (one file) and
//! [`ShardSource`] (a dataset of one or more files, a [`PageSource`]).

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use rayon::prelude::*;

use super::header::Header;
use super::view::{read_page, validate};
use crate::data::page::Page;
use crate::data::source::{PageSource, TokenizerInfo, page_not_found};
use crate::digest::Digest;
use crate::error::{Error, Result};

/// Domain tag of a dataset identity made of shards.
const DATASET_TAG: &[u8] = b"bistro.shards.v1\0";

/// The identity of a dataset made of shards with these identities, in
/// order: BLAKE3(`"bistro.shards.v1" 0x00 || u64le(count) || identities`).
pub fn dataset_identity(shards: &[Digest]) -> Digest {
    let mut bytes = DATASET_TAG.to_vec();
    bytes.extend_from_slice(&(shards.len() as u64).to_le_bytes());
    for d in shards {
        bytes.extend_from_slice(&d.0);
    }
    Digest::of(&bytes)
}

/// One memory-mapped shard whose header and index have been validated.
pub struct ShardFile {
    path: PathBuf,
    map: Mmap,
    header: Header,
}

impl std::fmt::Debug for ShardFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardFile")
            .field("path", &self.path)
            .field("header", &self.header)
            .finish()
    }
}

impl ShardFile {
    /// Opens and validates a shard: header, exact file length, index digest
    /// and tables. Token bytes are checked page by page when read.
    pub fn open(path: impl AsRef<Path>) -> Result<ShardFile> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        // SAFETY: the map is read-only and private to this value. Another
        // process truncating or rewriting the file while it is mapped is
        // outside what this reader can prevent (a truncation can fault);
        // content changes are caught by the per-page digests. Writers in this
        // crate never modify a shard in place: they rename a new file over it.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
        let header = validate(&map, &path.display().to_string())?;
        Ok(ShardFile { path, map, header })
    }

    /// The validated header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The shard's identity (BLAKE3 of its header).
    pub fn identity(&self) -> Digest {
        self.header.identity()
    }

    /// Number of pages.
    pub fn page_count(&self) -> u64 {
        self.header.page_count
    }

    /// Page `page` of this shard (its id is the shard-local `page`).
    pub fn page(&self, page: u64) -> Result<Page> {
        read_page(
            &self.header,
            &self.map,
            page,
            &self.path.display().to_string(),
        )
    }
}

/// A dataset of one or more shard files, read through memory maps: page ids
/// run through the first shard's pages, then the second's, and so on.
#[derive(Debug)]
pub struct ShardSource {
    shards: Vec<ShardFile>,
    /// `starts[i]` is the first global page id of shard `i`; one more entry
    /// holds the total.
    starts: Vec<u64>,
    dataset_id: Digest,
}

impl ShardSource {
    /// Opens the shards at `paths`, in order. All must share one tokenizer.
    pub fn open<P: AsRef<Path>>(paths: &[P]) -> Result<ShardSource> {
        if paths.is_empty() {
            return Err(Error::InvalidArgument(
                "a shard source needs at least one shard".into(),
            ));
        }
        let shards = paths
            .iter()
            .map(ShardFile::open)
            .collect::<Result<Vec<_>>>()?;
        Self::from_files(shards)
    }

    /// A source over shard files already opened.
    pub fn from_files(shards: Vec<ShardFile>) -> Result<ShardSource> {
        let first = shards.first().ok_or_else(|| {
            Error::InvalidArgument("a shard source needs at least one shard".into())
        })?;
        let tokenizer = first.header.tokenizer.clone();
        let mut starts = vec![0u64];
        let mut total = 0u64;
        for shard in &shards {
            if shard.header.tokenizer != tokenizer {
                return Err(Error::InvalidArgument(format!(
                    "shard {} uses tokenizer {:?}, the first shard {:?}",
                    shard.path.display(),
                    shard.header.tokenizer,
                    tokenizer
                )));
            }
            total = total
                .checked_add(shard.page_count())
                .ok_or_else(|| Error::limit("pages in a shard source", u64::MAX, u64::MAX))?;
            starts.push(total);
        }
        let ids: Vec<Digest> = shards.iter().map(ShardFile::identity).collect();
        Ok(ShardSource {
            dataset_id: dataset_identity(&ids),
            shards,
            starts,
        })
    }

    /// The shard files, in page order.
    pub fn shards(&self) -> &[ShardFile] {
        &self.shards
    }

    /// Reads every page (on all cores), checking every page digest and token.
    pub fn verify(&self) -> Result<()> {
        (0..self.num_pages())
            .into_par_iter()
            .try_for_each(|id| self.page(id).map(|_| ()))
    }
}

impl PageSource for ShardSource {
    fn dataset_id(&self) -> Digest {
        self.dataset_id
    }

    fn num_pages(&self) -> u64 {
        self.starts.last().copied().unwrap_or(0)
    }

    fn tokenizer(&self) -> TokenizerInfo {
        // from_files guarantees at least one shard.
        self.shards
            .first()
            .map(|s| s.header.tokenizer.clone())
            .unwrap_or_else(TokenizerInfo::gpt2)
    }

    fn page(&self, id: u64) -> Result<Page> {
        if id >= self.num_pages() {
            return Err(page_not_found(id, self.num_pages(), "the shard source"));
        }
        // The shard whose range holds id: the last start <= id.
        let i = self.starts.partition_point(|&s| s <= id) - 1;
        let mut page = self.shards[i].page(id - self.starts[i])?;
        page.id = id;
        Ok(page)
    }
}
