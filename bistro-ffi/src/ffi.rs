//! The one place where raw pointers from C become Rust references.
//!
//! Every helper checks what can be checked about a pointer before using it:
//! NULL (a [`Failure::null`] naming the argument), alignment for its type,
//! and that `len` elements fit in `isize::MAX` bytes. What cannot be
//! checked (that the pointer is live and has `len` elements) is the
//! caller's contract, stated in the header. Outputs are [`Out`] and
//! [`OutSlice`]: checked up front, written only when the export has
//! succeeded, and never read (the caller's memory may be uninitialized).

use std::ffi::{CStr, c_char};
use std::marker::PhantomData;
use std::path::Path;
use std::ptr::NonNull;

use crate::status::{Failure, FfiResult};

/// Checks `p` for NULL and alignment.
fn check_ptr<T>(p: *const T, what: &str) -> FfiResult {
    if p.is_null() {
        return Err(Failure::null(what));
    }
    if !p.is_aligned() {
        return Err(Failure::invalid(format!(
            "{what} ({p:p}) is not aligned to {} bytes",
            align_of::<T>()
        )));
    }
    Ok(())
}

/// Checks that `len` elements of `T` are a valid slice length.
fn check_len<T>(len: usize, what: &str) -> FfiResult {
    let bytes = len.checked_mul(size_of::<T>());
    match bytes {
        Some(b) if b <= isize::MAX as usize => Ok(()),
        _ => Err(Failure::invalid(format!(
            "{what}: {len} elements is more than any buffer can hold"
        ))),
    }
}

/// `p` as a shared reference (an input struct or a handle).
///
/// # Safety
/// `p` is NULL or points to a live, initialized `T` that nothing mutates
/// during `'a`.
pub(crate) unsafe fn arg_ref<'a, T>(p: *const T, what: &str) -> FfiResult<&'a T> {
    check_ptr(p, what)?;
    // SAFETY: non-NULL and aligned (checked); live and initialized (contract).
    Ok(unsafe { &*p })
}

/// `p` as an exclusive reference (a handle being changed).
///
/// # Safety
/// `p` is NULL or points to a live, initialized `T` that nothing else
/// reads or writes during `'a`.
pub(crate) unsafe fn arg_mut<'a, T>(p: *mut T, what: &str) -> FfiResult<&'a mut T> {
    check_ptr(p, what)?;
    // SAFETY: non-NULL and aligned (checked); exclusive (contract).
    Ok(unsafe { &mut *p })
}

/// `len` elements at `p` as a slice; `p` may be NULL when `len` is 0.
///
/// # Safety
/// Unless `len` is 0, `p` points to `len` live, initialized elements that
/// nothing mutates during `'a`.
pub(crate) unsafe fn arg_slice<'a, T>(p: *const T, len: usize, what: &str) -> FfiResult<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    check_ptr(p, what)?;
    check_len::<T>(len, what)?;
    // SAFETY: non-NULL, aligned, length in range (checked); live (contract).
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// `len` initialized elements at `p` to read and change in place (weights
/// to apply a delta to); `p` may be NULL when `len` is 0.
///
/// # Safety
/// Unless `len` is 0, `p` points to `len` live, initialized elements that
/// nothing else reads or writes during `'a`.
pub(crate) unsafe fn arg_slice_mut<'a, T>(
    p: *mut T,
    len: usize,
    what: &str,
) -> FfiResult<&'a mut [T]> {
    if len == 0 {
        return Ok(&mut []);
    }
    check_ptr(p, what)?;
    check_len::<T>(len, what)?;
    // SAFETY: as `arg_slice`, and exclusive (contract).
    Ok(unsafe { std::slice::from_raw_parts_mut(p, len) })
}

/// `len` elements at `p` to overwrite completely (a decode target), zeroed
/// first so that the caller's memory need not be initialized. Call it only
/// once every check of the export has passed: it writes.
///
/// # Safety
/// Unless `len` is 0, `p` is valid for writing `len` elements and nothing
/// else accesses them during `'a`.
pub(crate) unsafe fn out_slice_zeroed<'a>(
    p: *mut f32,
    len: usize,
    what: &str,
) -> FfiResult<&'a mut [f32]> {
    if len == 0 {
        return Ok(&mut []);
    }
    check_ptr(p, what)?;
    check_len::<f32>(len, what)?;
    // SAFETY: non-NULL, aligned, in range (checked); writable (contract).
    // All-zero bytes are a valid f32, so the slice is initialized.
    unsafe {
        std::ptr::write_bytes(p, 0, len);
        Ok(std::slice::from_raw_parts_mut(p, len))
    }
}

/// An input slice `data` and an optional in/out slice `inout` of the same
/// length that must not overlap it (a tensor and its error-feedback residual).
///
/// # Safety
/// As [`arg_slice`] for `data`, and as [`arg_slice_mut`] for `inout` when
/// it is not NULL.
pub(crate) unsafe fn arg_slice_with_inout<'a, T>(
    data: *const T,
    inout: *mut T,
    len: usize,
    what: (&str, &str),
) -> FfiResult<(&'a [T], Option<&'a mut [T]>)> {
    // SAFETY: forwarded contract.
    let data = unsafe { arg_slice(data, len, what.0) }?;
    if inout.is_null() {
        return Ok((data, None));
    }
    let bytes = size_of_val(data);
    let (a, b) = (data.as_ptr() as usize, inout as usize);
    if len > 0 && a < b.saturating_add(bytes) && b < a.saturating_add(bytes) {
        return Err(Failure::invalid(format!(
            "{} and {} overlap; they must be separate buffers",
            what.0, what.1
        )));
    }
    // SAFETY: forwarded contract; disjoint from `data` (checked).
    let inout = unsafe { arg_slice_mut(inout, len, what.1) }?;
    Ok((data, Some(inout)))
}

/// `N` bytes at `p` (a digest, key, seed or signature).
///
/// # Safety
/// `p` is NULL or points to `N` live bytes.
pub(crate) unsafe fn arg_array<'a, const N: usize>(
    p: *const u8,
    what: &str,
) -> FfiResult<&'a [u8; N]> {
    // SAFETY: forwarded contract; [u8; N] has alignment 1.
    unsafe { arg_ref(p.cast::<[u8; N]>(), what) }
}

/// Like [`arg_array`], with NULL meaning "none".
///
/// # Safety
/// As [`arg_array`].
pub(crate) unsafe fn arg_array_opt<'a, const N: usize>(
    p: *const u8,
    what: &str,
) -> FfiResult<Option<&'a [u8; N]>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { arg_array(p, what) }.map(Some)
}

/// Like [`arg_ref`], with NULL meaning "none".
///
/// # Safety
/// As [`arg_ref`].
pub(crate) unsafe fn arg_ref_opt<'a, T>(p: *const T, what: &str) -> FfiResult<Option<&'a T>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { arg_ref(p, what) }.map(Some)
}

/// A NUL-terminated UTF-8 string.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that lives during `'a`.
pub(crate) unsafe fn arg_str<'a>(p: *const c_char, what: &str) -> FfiResult<&'a str> {
    check_ptr(p, what)?;
    // SAFETY: non-NULL (checked); NUL-terminated and live (contract).
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map_err(|e| Failure::invalid(format!("{what} is not UTF-8: {e}")))
}

/// A NUL-terminated file path (any bytes but NUL, as the OS takes them).
///
/// # Safety
/// As [`arg_str`].
pub(crate) unsafe fn arg_path<'a>(p: *const c_char, what: &str) -> FfiResult<&'a Path> {
    check_ptr(p, what)?;
    // SAFETY: as in `arg_str`.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    if bytes.is_empty() {
        return Err(Failure::invalid(format!("{what} is an empty path")));
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(Path::new(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        std::str::from_utf8(bytes)
            .map(Path::new)
            .map_err(|e| Failure::invalid(format!("{what} is not UTF-8: {e}")))
    }
}

/// A place to write one `T` once the call has succeeded. Never read.
pub(crate) struct Out<'a, T> {
    ptr: NonNull<T>,
    _slot: PhantomData<&'a mut T>,
}

impl<T> Out<'_, T> {
    /// Writes `value` (without reading or dropping what was there).
    pub(crate) fn write(self, value: T) {
        // SAFETY: checked non-NULL and aligned by `out`; valid for a write
        // of one T (contract).
        unsafe { self.ptr.as_ptr().write(value) }
    }
}

/// Checks an output pointer; it is written later with [`Out::write`].
///
/// # Safety
/// `p` is NULL or valid for writing one `T` during `'a`.
pub(crate) unsafe fn out<'a, T>(p: *mut T, what: &str) -> FfiResult<Out<'a, T>> {
    check_ptr(p, what)?;
    Ok(Out {
        ptr: NonNull::new(p).ok_or_else(|| Failure::null(what))?,
        _slot: PhantomData,
    })
}

/// Like [`out`], with NULL meaning "not wanted".
///
/// # Safety
/// As [`out`].
pub(crate) unsafe fn out_opt<'a, T>(p: *mut T, what: &str) -> FfiResult<Option<Out<'a, T>>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { out(p, what) }.map(Some)
}

/// A caller's array of `len` elements to fill once the call has succeeded.
/// Never read; writes are bounds-checked.
pub(crate) struct OutSlice<'a, T> {
    ptr: *mut T,
    len: usize,
    _slots: PhantomData<&'a mut [T]>,
}

impl<T: Copy> OutSlice<'_, T> {
    /// Number of elements the caller provided.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Copies `values` to the start of the array; `false` (and nothing
    /// written) if they do not fit.
    pub(crate) fn copy_prefix(&mut self, values: &[T]) -> bool {
        if values.len() > self.len {
            return false;
        }
        if !values.is_empty() {
            // SAFETY: `ptr` is non-NULL, aligned and valid for `len >=
            // values.len()` writes (checked by `out_slice` + contract); a
            // caller's output cannot overlap our own `values`.
            unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), self.ptr, values.len()) }
        }
        true
    }

    /// Writes `value` at `index`; `false` (and nothing written) out of bounds.
    pub(crate) fn set(&mut self, index: usize, value: T) -> bool {
        if index >= self.len {
            return false;
        }
        // SAFETY: index < len (checked); see `copy_prefix`.
        unsafe { self.ptr.add(index).write(value) }
        true
    }
}

/// Checks an output array of `len` elements; `p` may be NULL when `len` is 0.
///
/// # Safety
/// Unless `len` is 0, `p` is valid for writing `len` elements during `'a`
/// and nothing else accesses them meanwhile.
pub(crate) unsafe fn out_slice<'a, T>(
    p: *mut T,
    len: usize,
    what: &str,
) -> FfiResult<OutSlice<'a, T>> {
    if len > 0 {
        check_ptr(p, what)?;
        check_len::<T>(len, what)?;
    }
    Ok(OutSlice {
        ptr: p,
        len,
        _slots: PhantomData,
    })
}

/// Moves `value` to the heap and hands C the pointer (an opaque handle).
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Drops a handle made by [`into_handle`]; NULL is ignored.
///
/// # Safety
/// `p` is NULL or a handle of type `T` from [`into_handle`] not yet freed.
pub(crate) unsafe fn free_handle<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: made by Box::into_raw and not freed (contract).
        drop(unsafe { Box::from_raw(p) });
    }
}
