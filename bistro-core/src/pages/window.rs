//! Miner windows: `W` pages per uid, drawn from a per-epoch permutation of
//! the dataset so that windows of different uids are disjoint (or overlap
//! by the stated, exact amount when the dataset is too small).

use super::params::DatasetParams;
use super::permutation::Permutation;
use super::stream::Message;
use crate::error::Result;

/// Domain tag of the epoch permutation's key.
pub(crate) const WINDOW_TAG: &str = "bistro.pages.v1.window";

/// The permutation of page ids used by every window in `epoch`.
pub(crate) fn epoch_permutation(params: &DatasetParams, epoch: u64) -> Permutation {
    let mut stream = Message::new(WINDOW_TAG)
        .bytes(&params.dataset_id.0)
        .u64(params.num_pages)
        .u64(epoch)
        .stream();
    Permutation::new(params.num_pages, &mut stream)
}

/// The window of one uid in one epoch: page `j` (for `j < W`) is
/// `π_e((uid·W + j) mod N)`. Computed on demand; holds no page list.
#[derive(Clone, Debug)]
pub struct Window {
    permutation: Permutation,
    start: u64,
    len: u64,
    num_pages: u64,
    epoch: u64,
    uid: u16,
}

/// The window of `uid` in `epoch`.
pub fn window(params: &DatasetParams, uid: u16, epoch: u64) -> Result<Window> {
    params.validate()?;
    Ok(Window {
        permutation: epoch_permutation(params, epoch),
        start: params.window_start(uid),
        len: params.window_pages,
        num_pages: params.num_pages,
        epoch,
        uid,
    })
}

impl Window {
    /// Number of pages, `W`.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the window is empty (never, for valid parameters).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The epoch this window belongs to.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The uid this window belongs to.
    pub fn uid(&self) -> u16 {
        self.uid
    }

    /// The `j`-th page of the window, or `None` if `j >= W`.
    pub fn get(&self, j: u64) -> Option<u64> {
        (j < self.len).then(|| self.page_at(j))
    }

    /// The `j`-th page for `j < W` (checked by callers).
    pub(crate) fn page_at(&self, j: u64) -> u64 {
        // start < N and j < W <= N, so the sum fits in u128 and the result in u64.
        let position = (u128::from(self.start) + u128::from(j)) % u128::from(self.num_pages);
        self.permutation.apply(position as u64)
    }

    /// Where `page` sits in the window (`Some(j)` with `get(j) == Some(page)`),
    /// or `None` if the window does not hold it.
    pub fn position_of(&self, page: u64) -> Option<u64> {
        if page >= self.num_pages {
            return None;
        }
        let position = self.permutation.invert(page);
        // Distance from start going forward around the ring of N positions.
        let offset = (u128::from(position) + u128::from(self.num_pages) - u128::from(self.start))
            % u128::from(self.num_pages);
        let offset = offset as u64;
        (offset < self.len).then_some(offset)
    }

    /// Whether the window holds `page`.
    pub fn contains(&self, page: u64) -> bool {
        self.position_of(page).is_some()
    }

    /// The pages in window order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len).map(|j| self.page_at(j))
    }

    /// The pages in window order, collected.
    pub fn to_vec(&self) -> Vec<u64> {
        self.iter().collect()
    }
}

/// The exact number of pages the windows of `a` and `b` share in any epoch:
/// with `δ = ((b − a)·W) mod N`, it is `max(0, W − δ) + max(0, W − (N − δ))`
/// (and `W` when `a == b`). It is 0 whenever both uids are below `⌊N / W⌋`.
pub fn window_overlap(params: &DatasetParams, a: u16, b: u16) -> Result<u64> {
    params.validate()?;
    let n = params.num_pages;
    let w = params.window_pages;
    let (sa, sb) = (params.window_start(a), params.window_start(b));
    // δ = (sb − sa) mod N.
    let delta = ((u128::from(sb) + u128::from(n) - u128::from(sa)) % u128::from(n)) as u64;
    Ok(w.saturating_sub(delta) + w.saturating_sub(n - delta))
}
