//! `bistro_buffer`: bytes the library made for the caller (a finished
//! delta), read through `bistro_buffer_data`/`bistro_buffer_len` and
//! released with `bistro_buffer_free`.

use crate::ffi;
use crate::panic;

/// Bytes owned by the library. Immutable: may be read from several threads
/// at once; free it once, from any thread, when no thread reads it any more.
pub struct bistro_buffer {
    bytes: Box<[u8]>,
}

impl bistro_buffer {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        bistro_buffer {
            bytes: bytes.into_boxed_slice(),
        }
    }

    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The buffer's bytes: valid until `bistro_buffer_free(buffer)`. NULL when
/// `buffer` is NULL; a non-NULL dangling pointer when the buffer is empty.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_buffer_data(buffer: *const bistro_buffer) -> *const u8 {
    panic::guard_value(std::ptr::null(), || {
        // SAFETY: `buffer` is NULL or a live buffer (contract).
        match unsafe { ffi::arg_ref(buffer, "buffer") } {
            Ok(b) => b.bytes.as_ptr(),
            Err(_) => std::ptr::null(),
        }
    })
}

/// The buffer's length in bytes; 0 when `buffer` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_buffer_len(buffer: *const bistro_buffer) -> usize {
    panic::guard_value(0, || {
        // SAFETY: `buffer` is NULL or a live buffer (contract).
        unsafe { ffi::arg_ref(buffer, "buffer") }.map_or(0, |b| b.bytes.len())
    })
}

/// Frees a buffer made by this library. NULL is accepted and ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_buffer_free(buffer: *mut bistro_buffer) {
    // SAFETY: NULL or a buffer from this library not yet freed (contract).
    panic::guard_value((), || unsafe { ffi::free_handle(buffer) })
}
