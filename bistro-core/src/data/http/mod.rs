//! Page sources over HTTP (feature `http`, with `ureq`): token shards by
//! Range request ([`HttpShardSource`]) and dataset rows from the HuggingFace
//! datasets-server ([`RowsSource`]). Both use bounded timeouts, bounded
//! retries with backoff (transient errors only), a response-size cap and an
//! optional local cache with atomic writes and a size bound ([`HttpOptions`]).

mod cache;
mod client;
mod content_range;
mod rows;
mod shards;

pub use client::HttpOptions;
pub use rows::{MAX_ROWS_PER_REQUEST, RowsConfig, RowsSource};
pub use shards::{HttpShardSource, MAX_REMOTE_INDEX_BYTES};
