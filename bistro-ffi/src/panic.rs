//! The panic boundary every export runs in: a Rust panic becomes
//! `BISTRO_ERR_PANIC` and a message, never an unwind into C.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::last_error;
use crate::status::{Failure, FfiResult, bistro_status};

/// Runs a fallible export body: returns `BISTRO_OK` and clears the thread's
/// last error on success; stores the message and returns the failure's
/// status on error or panic.
///
/// `AssertUnwindSafe` is sound here because a handle whose method panicked
/// is left in a state that refuses further use (see the writer), and
/// readers are immutable.
pub(crate) fn guard(body: impl FnOnce() -> FfiResult) -> bistro_status {
    let result = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|p| Err(panicked(p)));
    match result {
        Ok(()) => {
            last_error::clear();
            bistro_status::BISTRO_OK
        }
        Err(failure) => {
            last_error::set(failure.message);
            failure.status
        }
    }
}

/// Runs an export that cannot fail (a getter, a `_free`): a panic gives
/// `fallback` instead of unwinding into C.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// The failure for a caught panic, with the panic's message when it has one.
pub(crate) fn panicked(payload: Box<dyn Any + Send>) -> Failure {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    // Dropping a payload can itself panic; forget it rather than risk that.
    std::mem::forget(payload);
    Failure::new(
        bistro_status::BISTRO_ERR_PANIC,
        format!("internal error (a bug in bistro, please report it): {detail}"),
    )
}
