//! The calling thread's last error message, and how C reads it.

use std::cell::RefCell;
use std::ffi::c_char;

use crate::ffi;
use crate::panic;

thread_local! {
    /// The message of the last fallible call on this thread ("" after a success).
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Stores `message` as this thread's last error.
pub(crate) fn set(message: String) {
    // `try_with` fails only while the thread is being torn down; there is
    // nobody left to read the message then.
    let _ = LAST_ERROR.try_with(|m| *m.borrow_mut() = message);
}

/// Clears this thread's last error (after a successful call).
pub(crate) fn clear() {
    let _ = LAST_ERROR.try_with(|m| m.borrow_mut().clear());
}

/// Runs `f` on (a copy of) this thread's last error message.
fn with<R>(f: impl FnOnce(&str) -> R) -> R {
    let message = LAST_ERROR
        .try_with(|m| m.borrow().clone())
        .unwrap_or_default();
    f(&message)
}

/// The length in bytes (not counting a terminating NUL) of the calling
/// thread's last error message; 0 when the last fallible call on this
/// thread succeeded or there was none. Never fails; does not change the
/// message.
#[unsafe(no_mangle)]
pub extern "C" fn bistro_last_error_length() -> usize {
    panic::guard_value(0, || with(str::len))
}

/// Copies the calling thread's last error message (UTF-8) into `buf`, like
/// `snprintf`: writes at most `len - 1` bytes, cut at a character boundary,
/// followed by a NUL, and returns the full message length (not counting the
/// NUL). The message was cut when the return value is `>= len`. With `buf`
/// NULL or `len` 0, writes nothing and returns the length.
///
/// Every fallible function sets the message of its thread: to the error's
/// description when it fails, to "" when it succeeds. This function and
/// `bistro_last_error_length` never change it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_last_error(buf: *mut c_char, len: usize) -> usize {
    panic::guard_value(0, || {
        with(|message| {
            // SAFETY: the caller gives `len` writable bytes at `buf` (or NULL).
            let out = unsafe { ffi::out_slice(buf.cast::<u8>(), len, "buf") };
            if let (Ok(mut out), true) = (out, len > 0) {
                let mut cut = message.len().min(len - 1);
                while !message.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.copy_prefix(&message.as_bytes()[..cut]);
                out.set(cut, 0);
            }
            message.len()
        })
    })
}
