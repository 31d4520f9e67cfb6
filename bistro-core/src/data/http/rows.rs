//! Pages of a text dataset through the HuggingFace datasets-server `/rows`
//! API (RefinedWeb by default), tokenized with GPT-2.
//!
//! Request: `GET {base}/rows?dataset=D&config=C&split=S&offset=O&length=L`.
//! Response (documented at <https://huggingface.co/docs/dataset-viewer/rows>
//! and in the server's OpenAPI description, `/openapi.json`, schema
//! `RowsResponse`):
//!
//! ```json
//! {"features": [{"feature_idx": 0, "name": "content", "type": {"dtype": "string", "_type": "Value"}}, ...],
//!  "rows": [{"row_idx": 0, "row": {"content": "...", "url": "...", ...}, "truncated_cells": []}, ...],
//!  "num_rows_total": 968000015, "num_rows_per_page": 100, "partial": false}
//! ```
//!
//! Errors are JSON `{"error": "..."}` with a 4xx or 5xx status; the service
//! rate-limits with 429. Page `p` is rows `p·L .. p·L + L`; each row's text
//! column is tokenized (ordinary text, so a literal `<|endoftext|>` is not
//! the EOS token) and EOS appended, and the page's sequences are those rows.
//! A cell the server truncated (listed in `truncated_cells`) is used as
//! served: every participant gets the same truncated text.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::cache::{CacheRoot, DiskCache};
use super::client::{HttpClient, HttpOptions};
use crate::data::page::Page;
use crate::data::source::{PageSource, TokenizerInfo, page_not_found};
use crate::data::tokenizer::Gpt2Tokenizer;
use crate::digest::Digest;
use crate::error::{Error, Result};

/// The most rows the `/rows` endpoint returns per request.
pub const MAX_ROWS_PER_REQUEST: u64 = 100;

/// Which dataset, and how its rows become pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowsConfig {
    /// The datasets-server base URL, without a trailing `/`.
    pub base_url: String,
    /// The dataset's name on the Hub.
    pub dataset: String,
    /// The dataset configuration ("subset").
    pub config: String,
    /// The split.
    pub split: String,
    /// The column holding the text.
    pub column: String,
    /// Rows per page (1 to 100).
    pub rows_per_page: u64,
    /// Rows in the split. Pages are `floor(num_rows / rows_per_page)`: every
    /// page is full.
    pub num_rows: u64,
}

impl RowsConfig {
    /// RefinedWeb (`tiiuae/falcon-refinedweb`, 968,000,015 rows): 100 rows a
    /// page, 9,680,000 pages, text in `content`.
    pub fn refinedweb() -> Self {
        RowsConfig {
            base_url: "https://datasets-server.huggingface.co".into(),
            dataset: "tiiuae/falcon-refinedweb".into(),
            config: "default".into(),
            split: "train".into(),
            column: "content".into(),
            rows_per_page: 100,
            num_rows: 968_000_015,
        }
    }

    /// The dataset identity: BLAKE3 of `"bistro.rows.v1" 0x00`, then dataset,
    /// config, split, column and tokenizer name (each as `u64le(len) ||
    /// bytes`), then `u64le(rows_per_page) || u64le(num_rows)`. The base URL
    /// is not part of it: a mirror serves the same dataset.
    pub fn identity(&self, tokenizer: &str) -> Digest {
        let mut m = b"bistro.rows.v1\0".to_vec();
        for s in [&self.dataset, &self.config, &self.split, &self.column] {
            m.extend_from_slice(&(s.len() as u64).to_le_bytes());
            m.extend_from_slice(s.as_bytes());
        }
        m.extend_from_slice(&(tokenizer.len() as u64).to_le_bytes());
        m.extend_from_slice(tokenizer.as_bytes());
        m.extend_from_slice(&self.rows_per_page.to_le_bytes());
        m.extend_from_slice(&self.num_rows.to_le_bytes());
        Digest::of(&m)
    }

    fn url(&self, offset: u64) -> String {
        format!(
            "{}/rows?dataset={}&config={}&split={}&offset={offset}&length={}",
            self.base_url.trim_end_matches('/'),
            encode(&self.dataset),
            encode(&self.config),
            encode(&self.split),
            self.rows_per_page
        )
    }
}

/// Percent-encodes a query value (unreserved characters and `/` stay).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Deserialize)]
struct RowsResponse {
    rows: Vec<RowEntry>,
    #[serde(default)]
    num_rows_total: Option<u64>,
    #[serde(default)]
    partial: Option<bool>,
}

#[derive(Deserialize)]
struct RowEntry {
    row_idx: u64,
    row: Map<String, Value>,
}

/// A page source over the `/rows` API.
pub struct RowsSource {
    client: HttpClient,
    config: RowsConfig,
    tokenizer: Gpt2Tokenizer,
    cache: Option<DiskCache>,
    dataset_id: Digest,
}

impl std::fmt::Debug for RowsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowsSource")
            .field("config", &self.config)
            .finish()
    }
}

impl RowsSource {
    /// A source for `config`, caching responses in `cache_dir` if given.
    pub fn new(config: RowsConfig, cache_dir: Option<&Path>, options: HttpOptions) -> Result<Self> {
        if config.rows_per_page == 0 || config.rows_per_page > MAX_ROWS_PER_REQUEST {
            return Err(Error::InvalidArgument(format!(
                "rows_per_page must be 1 to {MAX_ROWS_PER_REQUEST}, got {}",
                config.rows_per_page
            )));
        }
        let tokenizer = Gpt2Tokenizer::new()?;
        let dataset_id = config.identity(&tokenizer.info().name);
        let cache = cache_dir
            .map(|d| {
                CacheRoot::open(d, options.max_cache_bytes)?
                    .namespace(&format!("rows-{}", dataset_id.to_hex()))
            })
            .transpose()?;
        Ok(RowsSource {
            client: HttpClient::new(options),
            config,
            tokenizer,
            cache,
            dataset_id,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RowsConfig {
        &self.config
    }

    /// The texts of page `id`'s rows, in row order (fetched or cached).
    pub fn texts(&self, id: u64) -> Result<Vec<String>> {
        if id >= self.num_pages() {
            return Err(page_not_found(id, self.num_pages(), &self.config.dataset));
        }
        let offset = id * self.config.rows_per_page;
        let url = self.config.url(offset);
        let key = format!("rows-{offset}-{}.json", self.config.rows_per_page);
        if let Some(body) = self.cache.as_ref().and_then(|c| c.get(&key)) {
            match self.parse(&url, offset, &body) {
                Ok(texts) => return Ok(texts),
                Err(_) => {
                    if let Some(c) = &self.cache {
                        c.remove(&key);
                    }
                }
            }
        }
        let response = self.client.get(&url, None)?;
        let texts = self.parse(&url, offset, &response.body)?;
        if let Some(c) = &self.cache {
            c.put(&key, &response.body);
        }
        Ok(texts)
    }

    /// Checks a `/rows` body: JSON of the documented shape, exactly the rows
    /// asked for, in order, each with a string in the text column.
    fn parse(&self, url: &str, offset: u64, body: &[u8]) -> Result<Vec<String>> {
        let corrupt = |reason: String| Error::corrupt("rows response", url, reason);
        let response: RowsResponse = serde_json::from_slice(body)
            .map_err(|e| corrupt(format!("not the /rows JSON shape: {e}")))?;
        let want = self.config.rows_per_page;
        if response.rows.len() as u64 != want {
            let detail = format!(
                "expected {want} rows from offset {offset}, got {} (num_rows_total {:?}, partial {:?})",
                response.rows.len(),
                response.num_rows_total,
                response.partial
            );
            let beyond = response.num_rows_total.is_some_and(|t| t < offset + want);
            return Err(if beyond || response.partial == Some(true) {
                Error::Unavailable(format!("{url}: {detail}"))
            } else {
                corrupt(detail)
            });
        }
        response
            .rows
            .into_iter()
            .enumerate()
            .map(|(i, mut entry)| {
                let expected = offset + i as u64;
                if entry.row_idx != expected {
                    return Err(corrupt(format!(
                        "row {i} has row_idx {}, expected {expected}",
                        entry.row_idx
                    )));
                }
                match entry.row.remove(&self.config.column) {
                    Some(Value::String(s)) => Ok(s),
                    Some(other) => Err(corrupt(format!(
                        "row {expected}: column {:?} is {}, not a string",
                        self.config.column,
                        type_name(&other)
                    ))),
                    None => Err(corrupt(format!(
                        "row {expected} has no column {:?}",
                        self.config.column
                    ))),
                }
            })
            .collect()
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl PageSource for RowsSource {
    fn dataset_id(&self) -> Digest {
        self.dataset_id
    }

    fn num_pages(&self) -> u64 {
        self.config.num_rows / self.config.rows_per_page
    }

    fn tokenizer(&self) -> TokenizerInfo {
        self.tokenizer.info()
    }

    fn page(&self, id: u64) -> Result<Page> {
        let texts = self.texts(id)?;
        let docs = texts
            .iter()
            .map(|t| self.tokenizer.encode_document(t))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_sequences(id, docs.iter().map(|d| &d[..])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_identity() {
        let c = RowsConfig::refinedweb();
        assert_eq!(
            c.url(300),
            "https://datasets-server.huggingface.co/rows?dataset=tiiuae/falcon-refinedweb&config=default&split=train&offset=300&length=100"
        );
        assert_eq!(encode("a b&c=d"), "a%20b%26c%3Dd");
        let mut other = c.clone();
        other.base_url = "http://127.0.0.1:1".into();
        assert_eq!(c.identity("gpt2"), other.identity("gpt2"));
        other.split = "test".into();
        assert_ne!(c.identity("gpt2"), other.identity("gpt2"));
    }
}
