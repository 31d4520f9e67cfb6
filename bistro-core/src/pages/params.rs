//! The public inputs every participant agrees on: which dataset, how big,
//! how windows and epochs are sized.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};

/// Most page ids one draw may return: a bound on the memory a draw uses.
pub const MAX_DRAW: usize = 1 << 20;

/// The parameters of page selection for one dataset. All participants must
/// use the same values; they are part of a subnet's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetParams {
    /// The dataset's identity (for token shards, the digest of their headers;
    /// see `data::PageSource::dataset_id`).
    pub dataset_id: Digest,
    /// Number of pages `N`; page ids are `0..N`.
    pub num_pages: u64,
    /// Pages in each miner's window, `W` (`1 <= W <= N`).
    pub window_pages: u64,
    /// Blocks per epoch, `E >= 1`: windows change at every multiple of `E`.
    pub epoch_blocks: u64,
    /// Blocks between the evaluated block `b` and the block `b + D` whose hash
    /// selects the pages (`D >= 1`), so the hash does not exist at upload time.
    pub reveal_delay_blocks: u64,
}

impl DatasetParams {
    /// Checks the ranges above: `N >= 1`, `1 <= W <= N`, `E >= 1`, `D >= 1`.
    pub fn validate(&self) -> Result<()> {
        let fail = |what: String| Err(Error::InvalidArgument(format!("page params: {what}")));
        if self.num_pages == 0 {
            return fail("num_pages must be at least 1".into());
        }
        if self.window_pages == 0 || self.window_pages > self.num_pages {
            return fail(format!(
                "window_pages must be in 1..={}, got {}",
                self.num_pages, self.window_pages
            ));
        }
        if self.epoch_blocks == 0 {
            return fail("epoch_blocks must be at least 1".into());
        }
        if self.reveal_delay_blocks == 0 {
            return fail("reveal_delay_blocks must be at least 1".into());
        }
        Ok(())
    }

    /// The epoch that `block` belongs to: `block / E` (0 if `E` is 0, which
    /// [`Self::validate`] rejects).
    pub fn epoch_of(&self, block: u64) -> u64 {
        block.checked_div(self.epoch_blocks).unwrap_or(0)
    }

    /// The first block of `epoch`, or `None` past the end of `u64`.
    pub fn epoch_start(&self, epoch: u64) -> Option<u64> {
        epoch.checked_mul(self.epoch_blocks)
    }

    /// The block whose hash selects the pages evaluated at `block`:
    /// `block + D`, or `None` past the end of `u64`.
    pub fn reveal_block(&self, block: u64) -> Option<u64> {
        block.checked_add(self.reveal_delay_blocks)
    }

    /// The first position of `uid`'s window on the epoch's ring of positions:
    /// `(uid * W) mod N`.
    pub(crate) fn window_start(&self, uid: u16) -> u64 {
        let start = (u128::from(uid) * u128::from(self.window_pages)) % u128::from(self.num_pages);
        // start < num_pages, which is a u64.
        start as u64
    }
}

/// Checks a draw's `count` against the population `n` and [`MAX_DRAW`].
pub(crate) fn check_count(count: usize, n: u64, what: &str) -> Result<()> {
    if count > MAX_DRAW {
        return Err(Error::limit(
            format!("{what} draw count"),
            MAX_DRAW as u64,
            count as u64,
        ));
    }
    if count as u64 > n {
        return Err(Error::InvalidArgument(format!(
            "cannot draw {count} distinct pages from {n} ({what})"
        )));
    }
    Ok(())
}
