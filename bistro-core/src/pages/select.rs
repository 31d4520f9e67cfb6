//! The pages evaluated at a block: a few from the miner's window (local) and
//! a few from the whole dataset (global), both chosen by the hash of the
//! reveal block `b + D`.

use super::draw::distinct;
use super::params::{DatasetParams, check_count};
use super::stream::Message;
use super::window::window;
use crate::error::Result;

/// Domain tag of the local draw's seed.
pub(crate) const LOCAL_TAG: &str = "bistro.pages.v1.local";
/// Domain tag of the global draw's seed.
pub(crate) const GLOBAL_TAG: &str = "bistro.pages.v1.global";

/// `count` distinct pages from `uid`'s window in the epoch of `block`,
/// chosen by `reveal_block_hash`, the hash of block
/// [`DatasetParams::reveal_block`]`(block)`. In draw order; the first `k`
/// pages of a larger draw are the pages of a draw of `k`.
pub fn local_pages(
    params: &DatasetParams,
    uid: u16,
    block: u64,
    reveal_block_hash: &[u8; 32],
    count: usize,
) -> Result<Vec<u64>> {
    params.validate()?;
    check_count(count, params.window_pages, "local")?;
    let window = window(params, uid, params.epoch_of(block))?;
    let mut stream = Message::new(LOCAL_TAG)
        .bytes(&params.dataset_id.0)
        .u64(params.num_pages)
        .u64(params.window_pages)
        .u64(params.epoch_blocks)
        .u64(u64::from(uid))
        .u64(block)
        .bytes(reveal_block_hash)
        .stream();
    let mut pages = Vec::with_capacity(count);
    distinct(&mut stream, params.window_pages, count, |j| {
        pages.push(window.page_at(j))
    });
    Ok(pages)
}

/// `count` distinct pages from the whole dataset for `block`, chosen by
/// `reveal_block_hash` (the hash of block `block + D`). The same for every
/// uid, so all miners are measured on the same global pages at a block.
pub fn global_pages(
    params: &DatasetParams,
    block: u64,
    reveal_block_hash: &[u8; 32],
    count: usize,
) -> Result<Vec<u64>> {
    params.validate()?;
    check_count(count, params.num_pages, "global")?;
    let mut stream = Message::new(GLOBAL_TAG)
        .bytes(&params.dataset_id.0)
        .u64(params.num_pages)
        .u64(block)
        .bytes(reveal_block_hash)
        .stream();
    let mut pages = Vec::with_capacity(count);
    distinct(&mut stream, params.num_pages, count, |page| {
        pages.push(page)
    });
    Ok(pages)
}
