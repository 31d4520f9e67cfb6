//! Chain weights: float weights to the `u16` values `set_weights` takes,
//! exactly as Bittensor's Python SDK converts them. Pure and thread-safe.

use bistro_core::chain::weights;

use crate::ffi;
use crate::panic;
use crate::status::{Failure, FfiResult, bistro_status};

/// Converts `len` float weights of `uids` to the chain's `u16` form as the
/// Python SDK does (`convert_weights_and_uids_for_emit`): every weight must
/// be finite and non-negative; each is divided by the largest, scaled to
/// 65535 in double precision and rounded half-to-even; entries that round
/// to 0 are dropped, keeping order. All-zero (or empty) input sets nothing.
///
/// `uids_out` and `values_out` must each have room for `len` entries (the
/// result is never longer); `*count_out` receives how many were written.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_weights_to_u16(
    uids: *const u16,
    weights: *const f32,
    len: usize,
    uids_out: *mut u16,
    values_out: *mut u16,
    count_out: *mut usize,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: `len` elements at each pointer (contract).
        unsafe {
            let w = ffi::arg_slice(weights, len, "weights")?;
            convert(uids, len, uids_out, values_out, count_out, |u| {
                weights::to_u16(u, w)
            })
        }
    })
}

/// `bistro_weights_to_u16` for `double` weights (Python floats).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_weights_to_u16_f64(
    uids: *const u16,
    weights: *const f64,
    len: usize,
    uids_out: *mut u16,
    values_out: *mut u16,
    count_out: *mut usize,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: `len` elements at each pointer (contract).
        unsafe {
            let w = ffi::arg_slice(weights, len, "weights")?;
            convert(uids, len, uids_out, values_out, count_out, |u| {
                weights::to_u16_f64(u, w)
            })
        }
    })
}

type Converted = bistro_core::Result<(Vec<u16>, Vec<u16>)>;

/// Checks the uid and output arguments, runs `f`, writes its result.
///
/// # Safety
/// `len` elements at `uids`, room for `len` at each output array, one
/// `usize` at `count_out`.
unsafe fn convert(
    uids: *const u16,
    len: usize,
    uids_out: *mut u16,
    values_out: *mut u16,
    count_out: *mut usize,
    f: impl FnOnce(&[u16]) -> Converted,
) -> FfiResult {
    // SAFETY: forwarded contract.
    let (uids, mut uids_out, mut values_out, count_out) = unsafe {
        (
            ffi::arg_slice(uids, len, "uids")?,
            ffi::out_slice(uids_out, len, "uids_out")?,
            ffi::out_slice(values_out, len, "values_out")?,
            ffi::out(count_out, "count_out")?,
        )
    };
    let (u, v) = f(uids)?;
    if u.len() != v.len() || u.len() > len {
        return Err(Failure::invalid(format!(
            "internal error: {} uids and {} values from {len} weights",
            u.len(),
            v.len()
        )));
    }
    uids_out.copy_prefix(&u);
    values_out.copy_prefix(&v);
    count_out.write(u.len());
    Ok(())
}
