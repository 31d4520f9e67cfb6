//! Token shards served over HTTP(S): any web server or S3-compatible bucket
//! (AWS S3, R2, MinIO: a public object's URL) that answers Range requests.
//! Opening a shard reads its header and index (two requests, or one plus the
//! cache); reading a page fetches only that page's tokens and checks them
//! against the page digest in the index.

use std::path::Path;

use super::cache::{CacheRoot, DiskCache};
use super::client::{HttpClient, HttpOptions};
use crate::data::page::Page;
use crate::data::shard::{HEADER_LEN, Header, Index, dataset_identity};
use crate::data::source::{PageSource, TokenizerInfo, page_not_found};
use crate::digest::Digest;
use crate::error::{Error, Result};

/// Largest shard index fetched over HTTP (page and sequence tables and page
/// digests), in bytes. [`HttpOptions::max_response_bytes`] also bounds it:
/// raise that to read shards with larger indexes.
pub const MAX_REMOTE_INDEX_BYTES: u64 = 1 << 30;

/// One remote shard: its URL, validated header and index bytes.
struct RemoteShard {
    url: String,
    header: Header,
    index: Vec<u8>,
    cache: Option<DiskCache>,
}

impl RemoteShard {
    fn open(client: &HttpClient, url: &str, cache: Option<&CacheRoot>) -> Result<RemoteShard> {
        let cache = cache.map(|root| root.namespace(url)).transpose()?;
        // The header always comes from the server, so the identity is the
        // remote file's; the cached index is used only if it matches it.
        let (head, total) = client.get_range(url, 0, HEADER_LEN as u64)?;
        let header = Header::parse(&head)?;
        let layout = header.layout();
        if let Some(total) = total.filter(|&t| t != layout.end) {
            return Err(Error::corrupt(
                "shard",
                url,
                format!(
                    "object is {total} bytes, its header declares {}",
                    layout.end
                ),
            ));
        }
        let index_len = layout.tokens - layout.page_table;
        if index_len > MAX_REMOTE_INDEX_BYTES {
            return Err(Error::limit(
                "remote shard index (bytes)",
                MAX_REMOTE_INDEX_BYTES,
                index_len,
            ));
        }
        let cache_key = format!("index-{}", header.identity().to_hex());
        if let Some(bytes) = cache.as_ref().and_then(|c| c.get(&cache_key)) {
            if Index::parse(&header, &bytes).is_ok() {
                return Ok(RemoteShard {
                    url: url.to_string(),
                    header,
                    index: bytes,
                    cache,
                });
            }
            if let Some(c) = &cache {
                c.remove(&cache_key);
            }
        }
        let index = if index_len == 0 {
            Vec::new()
        } else {
            client.get_range(url, layout.page_table, layout.tokens)?.0
        };
        Index::parse(&header, &index)?;
        if let Some(c) = &cache {
            c.put(&cache_key, &index);
        }
        Ok(RemoteShard {
            url: url.to_string(),
            header,
            index,
            cache,
        })
    }

    fn page(&self, client: &HttpClient, page: u64) -> Result<Page> {
        if page >= self.header.page_count {
            return Err(page_not_found(page, self.header.page_count, &self.url));
        }
        let index = Index::trusted(&self.header, &self.index);
        let key = format!("page-{}-{page}", self.header.identity().short());
        if let Some(bytes) = self.cache.as_ref().and_then(|c| c.get(&key)) {
            match index.decode_page(&self.header, page, &bytes) {
                Ok(p) => return Ok(p),
                Err(_) => {
                    if let Some(c) = &self.cache {
                        c.remove(&key);
                    }
                }
            }
        }
        let span = index.span(page);
        let width = u64::from(self.header.token_bytes);
        let start = self.header.layout().tokens + span.first_token * width;
        let end = start + span.tokens() * width;
        let bytes = if start == end {
            Vec::new()
        } else {
            client.get_range(&self.url, start, end)?.0
        };
        let decoded = index.decode_page(&self.header, page, &bytes)?;
        if let Some(c) = &self.cache {
            c.put(&key, &bytes);
        }
        Ok(decoded)
    }
}

/// A dataset of shards at URLs, read with HTTP Range requests. Same page
/// numbering and identity as [`crate::data::ShardSource`] over the same files.
pub struct HttpShardSource {
    client: HttpClient,
    shards: Vec<RemoteShard>,
    starts: Vec<u64>,
    dataset_id: Digest,
}

impl std::fmt::Debug for HttpShardSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpShardSource")
            .field(
                "urls",
                &self.shards.iter().map(|s| &s.url).collect::<Vec<_>>(),
            )
            .field("dataset_id", &self.dataset_id)
            .finish()
    }
}

impl HttpShardSource {
    /// Opens the shards at `urls`, in order, caching indexes and pages in
    /// `cache_dir` if given. All shards must share one tokenizer.
    pub fn open<U: AsRef<str>>(
        urls: &[U],
        cache_dir: Option<&Path>,
        options: HttpOptions,
    ) -> Result<Self> {
        if urls.is_empty() {
            return Err(Error::InvalidArgument(
                "an HTTP shard source needs at least one URL".into(),
            ));
        }
        let cache = cache_dir
            .map(|d| CacheRoot::open(d, options.max_cache_bytes))
            .transpose()?;
        let client = HttpClient::new(options);
        let shards = urls
            .iter()
            .map(|u| RemoteShard::open(&client, u.as_ref(), cache.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let tokenizer = &shards[0].header.tokenizer;
        let mut starts = vec![0u64];
        let mut total = 0u64;
        for s in &shards {
            if &s.header.tokenizer != tokenizer {
                return Err(Error::InvalidArgument(format!(
                    "shard {} uses tokenizer {:?}, the first shard {:?}",
                    s.url, s.header.tokenizer, tokenizer
                )));
            }
            total = total
                .checked_add(s.header.page_count)
                .ok_or_else(|| Error::limit("pages in a shard source", u64::MAX, u64::MAX))?;
            starts.push(total);
        }
        let ids: Vec<Digest> = shards.iter().map(|s| s.header.identity()).collect();
        Ok(HttpShardSource {
            client,
            dataset_id: dataset_identity(&ids),
            shards,
            starts,
        })
    }
}

impl PageSource for HttpShardSource {
    fn dataset_id(&self) -> Digest {
        self.dataset_id
    }

    fn num_pages(&self) -> u64 {
        self.starts.last().copied().unwrap_or(0)
    }

    fn tokenizer(&self) -> TokenizerInfo {
        self.shards
            .first()
            .map(|s| s.header.tokenizer.clone())
            .unwrap_or_else(TokenizerInfo::gpt2)
    }

    fn page(&self, id: u64) -> Result<Page> {
        if id >= self.num_pages() {
            return Err(page_not_found(
                id,
                self.num_pages(),
                "the HTTP shard source",
            ));
        }
        let i = self.starts.partition_point(|&s| s <= id) - 1;
        let mut page = self.shards[i].page(&self.client, id - self.starts[i])?;
        page.id = id;
        Ok(page)
    }
}
