//! Deterministic page selection from public inputs.
//!
//! Every miner, validator and auditor computes the same pages from the same
//! public values: the dataset's identity and size, a uid, the window and
//! epoch sizes, a block number and a block hash. Nothing depends on process
//! state, platform, or the order of a server's response.
//!
//! - [`window`]: the `W` pages a uid trains on during an epoch. Windows of
//!   different uids are disjoint while `N ≥ (uid + 1)·W` ([`window_overlap`]
//!   gives the exact overlap otherwise) and change every epoch.
//! - [`local_pages`]: a few pages of the uid's window, chosen by the hash of a
//!   block that does not exist yet when the miner uploads.
//! - [`global_pages`]: a few pages of the whole dataset, chosen the same way.
//!
//! ```
//! use bistro_core::pages::{DatasetParams, global_pages, local_pages, window};
//! use bistro_core::Digest;
//!
//! let params = DatasetParams {
//!     dataset_id: Digest::of(b"example"),
//!     num_pages: 9_680_000,
//!     window_pages: 100,
//!     epoch_blocks: 100,
//!     reveal_delay_blocks: 2,
//! };
//! let block = 4_000_123;
//! let reveal_hash = [7u8; 32]; // the hash of block `block + 2`, from the chain
//! let local = local_pages(&params, 5, block, &reveal_hash, 2)?;
//! let w = window(&params, 5, params.epoch_of(block))?;
//! assert!(local.iter().all(|&p| w.contains(p)));
//! let global = global_pages(&params, block, &reveal_hash, 2)?;
//! assert_eq!(global.len(), 2);
//! # Ok::<(), bistro_core::Error>(())
//! ```
//!
//! The full specification follows (also in `docs/pages.md`, with test vectors
//! in `tests/vectors/pages.json` and a Python reference implementation in
//! `tests/vectors/pages_reference.py`).
//!
#![doc = include_str!("../../../docs/pages.md")]

mod draw;
mod params;
mod permutation;
mod select;
mod stream;
mod window;

pub use params::{DatasetParams, MAX_DRAW};
pub use select::{global_pages, local_pages};
pub use window::{Window, window, window_overlap};

/// The epoch of `block` under `params`: `block / epoch_blocks`.
pub fn epoch_of(params: &DatasetParams, block: u64) -> u64 {
    params.epoch_of(block)
}

#[cfg(test)]
mod tests;
