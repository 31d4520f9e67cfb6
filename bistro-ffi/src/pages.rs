//! Page selection (`docs/pages.md`): a uid's window in an epoch, and the
//! local and global pages evaluated at a block, written into caller arrays.
//! Every function here is pure and thread-safe.

use bistro_core::Digest;
use bistro_core::pages::{self, DatasetParams};

use crate::ffi;
use crate::panic;
use crate::status::{Failure, FfiResult, bistro_status};
use crate::version::{BISTRO_BLOCK_HASH_LEN, BISTRO_DIGEST_LEN};

/// The public inputs of page selection for one dataset; every participant
/// uses the same values. Checked by every function: `num_pages >= 1`,
/// `1 <= window_pages <= num_pages`, `epoch_blocks >= 1`,
/// `reveal_delay_blocks >= 1`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct bistro_dataset_params {
    /// The dataset's identity (for token shards, the digest of their headers).
    pub dataset_id: [u8; BISTRO_DIGEST_LEN],
    /// Number of pages `N`; page ids are `0..N`.
    pub num_pages: u64,
    /// Pages in each miner's window, `W`.
    pub window_pages: u64,
    /// Blocks per epoch, `E`: windows change at every multiple of `E`.
    pub epoch_blocks: u64,
    /// Blocks between an evaluated block `b` and the block `b + D` whose
    /// hash selects its pages.
    pub reveal_delay_blocks: u64,
}

impl bistro_dataset_params {
    fn to_core(self) -> FfiResult<DatasetParams> {
        let params = DatasetParams {
            dataset_id: Digest(self.dataset_id),
            num_pages: self.num_pages,
            window_pages: self.window_pages,
            epoch_blocks: self.epoch_blocks,
            reveal_delay_blocks: self.reveal_delay_blocks,
        };
        params.validate()?;
        Ok(params)
    }
}

/// The checked parameters at `p`.
///
/// # Safety
/// `p` is NULL or points to a live `bistro_dataset_params`.
unsafe fn params(p: *const bistro_dataset_params) -> FfiResult<DatasetParams> {
    // SAFETY: forwarded contract.
    unsafe { ffi::arg_ref(p, "params") }?.to_core()
}

/// The epoch of `block` (`block / epoch_blocks`), into `*epoch_out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_pages_epoch_of(
    params: *const bistro_dataset_params,
    block: u64,
    epoch_out: *mut u64,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: pointers valid (contract).
        let (p, out) = unsafe { (self::params(params)?, ffi::out(epoch_out, "epoch_out")?) };
        out.write(p.epoch_of(block));
        Ok(())
    })
}

/// Pages `first .. first + count` of `uid`'s window in `epoch` (in window
/// order), into `pages_out` (`count` elements; may be NULL when `count` is
/// 0). `first + count` must not exceed `window_pages`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_pages_window(
    params: *const bistro_dataset_params,
    uid: u16,
    epoch: u64,
    first: u64,
    pages_out: *mut u64,
    count: usize,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: pointers valid for `count` elements (contract).
        let (p, mut out) = unsafe {
            (
                self::params(params)?,
                ffi::out_slice(pages_out, count, "pages_out")?,
            )
        };
        let end = first.checked_add(count as u64);
        if end.is_none_or(|end| end > p.window_pages) {
            return Err(Failure::invalid(format!(
                "window pages {first} .. {first} + {count} are out of range: the window has {}",
                p.window_pages
            )));
        }
        let window = pages::window(&p, uid, epoch)?;
        for (i, j) in (first..).take(count).enumerate() {
            let page = window
                .get(j)
                .ok_or_else(|| Failure::invalid(format!("window page {j} is out of range")))?;
            out.set(i, page);
        }
        Ok(())
    })
}

/// Where `page` sits in `uid`'s window in `epoch`: `*contains_out` is true
/// and `*position_out` its index when the window holds it; false (and
/// `*position_out` 0) otherwise.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_pages_window_position(
    params: *const bistro_dataset_params,
    uid: u16,
    epoch: u64,
    page: u64,
    contains_out: *mut bool,
    position_out: *mut u64,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: pointers valid (contract).
        let (p, contains, position) = unsafe {
            (
                self::params(params)?,
                ffi::out(contains_out, "contains_out")?,
                ffi::out(position_out, "position_out")?,
            )
        };
        let found = pages::window(&p, uid, epoch)?.position_of(page);
        contains.write(found.is_some());
        position.write(found.unwrap_or(0));
        Ok(())
    })
}

/// `count` distinct pages of `uid`'s window in the epoch of `block`, chosen
/// by `reveal_block_hash` (32 bytes: the hash of block
/// `block + reveal_delay_blocks`), in draw order, into `pages_out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_pages_local(
    params: *const bistro_dataset_params,
    uid: u16,
    block: u64,
    reveal_block_hash: *const u8,
    pages_out: *mut u64,
    count: usize,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: pointers valid for the sizes documented (contract).
        let (p, hash, mut out) = unsafe {
            (
                self::params(params)?,
                ffi::arg_array::<BISTRO_BLOCK_HASH_LEN>(reveal_block_hash, "reveal_block_hash")?,
                ffi::out_slice(pages_out, count, "pages_out")?,
            )
        };
        let drawn = pages::local_pages(&p, uid, block, hash, count)?;
        copy_out(&mut out, &drawn)
    })
}

/// `count` distinct pages of the whole dataset for `block`, chosen by
/// `reveal_block_hash` (32 bytes), the same for every uid, into `pages_out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_pages_global(
    params: *const bistro_dataset_params,
    block: u64,
    reveal_block_hash: *const u8,
    pages_out: *mut u64,
    count: usize,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: pointers valid for the sizes documented (contract).
        let (p, hash, mut out) = unsafe {
            (
                self::params(params)?,
                ffi::arg_array::<BISTRO_BLOCK_HASH_LEN>(reveal_block_hash, "reveal_block_hash")?,
                ffi::out_slice(pages_out, count, "pages_out")?,
            )
        };
        let drawn = pages::global_pages(&p, block, hash, count)?;
        copy_out(&mut out, &drawn)
    })
}

fn copy_out(out: &mut ffi::OutSlice<'_, u64>, drawn: &[u64]) -> FfiResult {
    if drawn.len() != out.len() || !out.copy_prefix(drawn) {
        return Err(Failure::invalid(format!(
            "internal error: drew {} pages for an array of {}",
            drawn.len(),
            out.len()
        )));
    }
    Ok(())
}
