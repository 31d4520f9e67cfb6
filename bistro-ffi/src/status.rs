//! Status codes: what every fallible function returns, and how errors of
//! `bistro-core` map onto them.

use std::ffi::c_char;

use bistro_core::Error;

/// What a fallible function returns. `BISTRO_OK` (0) is success; every
/// other value is an error whose message `bistro_last_error` gives. Values
/// are fixed: new codes are only ever added.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum bistro_status {
    /// Success.
    BISTRO_OK = 0,
    /// A pointer argument that must not be NULL was NULL.
    BISTRO_ERR_NULL_ARGUMENT = 1,
    /// An argument is out of range, of the wrong size, not UTF-8, or
    /// otherwise invalid (the message says which and why).
    BISTRO_ERR_INVALID_ARGUMENT = 2,
    /// The handle cannot do this now (a writer that was finished or failed,
    /// a file writer asked to finish into memory, ...).
    BISTRO_ERR_INVALID_STATE = 3,
    /// Input bytes do not follow the delta format.
    BISTRO_ERR_CORRUPT = 4,
    /// Input ended before a structure it declares.
    BISTRO_ERR_TRUNCATED = 5,
    /// Input is not a delta (wrong magic bytes).
    BISTRO_ERR_BAD_MAGIC = 6,
    /// Input is a delta of a format version this library does not read.
    BISTRO_ERR_UNSUPPORTED_VERSION = 7,
    /// Input or arguments exceed a limit (`bistro_limits`, a draw cap).
    BISTRO_ERR_LIMIT_EXCEEDED = 8,
    /// A value that must be finite is NaN or infinite.
    BISTRO_ERR_NON_FINITE = 9,
    /// A content digest does not match the content.
    BISTRO_ERR_DIGEST_MISMATCH = 10,
    /// A signature is missing, malformed, or does not verify.
    BISTRO_ERR_BAD_SIGNATURE = 11,
    /// A tensor (or other named thing) does not exist.
    BISTRO_ERR_NOT_FOUND = 12,
    /// A file system operation failed.
    BISTRO_ERR_IO = 13,
    /// A bug in the library was caught at the boundary (a Rust panic); the
    /// handle involved, if any, refuses further use.
    BISTRO_ERR_PANIC = 14,
    /// Any other error of the library.
    BISTRO_ERR_OTHER = 15,
}

/// Every status, in code order (for `bistro_status_name` and tests).
pub(crate) const ALL_STATUSES: [bistro_status; 16] = [
    bistro_status::BISTRO_OK,
    bistro_status::BISTRO_ERR_NULL_ARGUMENT,
    bistro_status::BISTRO_ERR_INVALID_ARGUMENT,
    bistro_status::BISTRO_ERR_INVALID_STATE,
    bistro_status::BISTRO_ERR_CORRUPT,
    bistro_status::BISTRO_ERR_TRUNCATED,
    bistro_status::BISTRO_ERR_BAD_MAGIC,
    bistro_status::BISTRO_ERR_UNSUPPORTED_VERSION,
    bistro_status::BISTRO_ERR_LIMIT_EXCEEDED,
    bistro_status::BISTRO_ERR_NON_FINITE,
    bistro_status::BISTRO_ERR_DIGEST_MISMATCH,
    bistro_status::BISTRO_ERR_BAD_SIGNATURE,
    bistro_status::BISTRO_ERR_NOT_FOUND,
    bistro_status::BISTRO_ERR_IO,
    bistro_status::BISTRO_ERR_PANIC,
    bistro_status::BISTRO_ERR_OTHER,
];

impl bistro_status {
    /// The status's name as a NUL-terminated static string.
    fn name(self) -> &'static str {
        match self {
            bistro_status::BISTRO_OK => "BISTRO_OK\0",
            bistro_status::BISTRO_ERR_NULL_ARGUMENT => "BISTRO_ERR_NULL_ARGUMENT\0",
            bistro_status::BISTRO_ERR_INVALID_ARGUMENT => "BISTRO_ERR_INVALID_ARGUMENT\0",
            bistro_status::BISTRO_ERR_INVALID_STATE => "BISTRO_ERR_INVALID_STATE\0",
            bistro_status::BISTRO_ERR_CORRUPT => "BISTRO_ERR_CORRUPT\0",
            bistro_status::BISTRO_ERR_TRUNCATED => "BISTRO_ERR_TRUNCATED\0",
            bistro_status::BISTRO_ERR_BAD_MAGIC => "BISTRO_ERR_BAD_MAGIC\0",
            bistro_status::BISTRO_ERR_UNSUPPORTED_VERSION => "BISTRO_ERR_UNSUPPORTED_VERSION\0",
            bistro_status::BISTRO_ERR_LIMIT_EXCEEDED => "BISTRO_ERR_LIMIT_EXCEEDED\0",
            bistro_status::BISTRO_ERR_NON_FINITE => "BISTRO_ERR_NON_FINITE\0",
            bistro_status::BISTRO_ERR_DIGEST_MISMATCH => "BISTRO_ERR_DIGEST_MISMATCH\0",
            bistro_status::BISTRO_ERR_BAD_SIGNATURE => "BISTRO_ERR_BAD_SIGNATURE\0",
            bistro_status::BISTRO_ERR_NOT_FOUND => "BISTRO_ERR_NOT_FOUND\0",
            bistro_status::BISTRO_ERR_IO => "BISTRO_ERR_IO\0",
            bistro_status::BISTRO_ERR_PANIC => "BISTRO_ERR_PANIC\0",
            bistro_status::BISTRO_ERR_OTHER => "BISTRO_ERR_OTHER\0",
        }
    }
}

/// The name of a status code (`"BISTRO_ERR_CORRUPT"`), as a static
/// NUL-terminated string that must not be freed. Codes this library does
/// not define give `"BISTRO_UNKNOWN_STATUS"`. Never fails; thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn bistro_status_name(status: u32) -> *const c_char {
    let name = ALL_STATUSES
        .iter()
        .find(|s| **s as u32 == status)
        .map_or("BISTRO_UNKNOWN_STATUS\0", |s| s.name());
    name.as_ptr().cast()
}

/// An error on its way to the caller: the status to return and the message
/// to store as the thread's last error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub status: bistro_status,
    pub message: String,
}

/// What exports return inside the panic boundary.
pub(crate) type FfiResult<T = ()> = Result<T, Failure>;

impl Failure {
    pub(crate) fn new(status: bistro_status, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }

    /// A NULL pointer where `what` was required.
    pub(crate) fn null(what: &str) -> Self {
        Failure::new(
            bistro_status::BISTRO_ERR_NULL_ARGUMENT,
            format!("{what} is NULL"),
        )
    }

    /// An invalid argument.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Failure::new(bistro_status::BISTRO_ERR_INVALID_ARGUMENT, message)
    }

    /// A handle in the wrong state.
    pub(crate) fn state(message: impl Into<String>) -> Self {
        Failure::new(bistro_status::BISTRO_ERR_INVALID_STATE, message)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::Corrupt { .. } => bistro_status::BISTRO_ERR_CORRUPT,
            Error::Truncated { .. } => bistro_status::BISTRO_ERR_TRUNCATED,
            Error::BadMagic { .. } => bistro_status::BISTRO_ERR_BAD_MAGIC,
            Error::UnsupportedVersion { .. } => bistro_status::BISTRO_ERR_UNSUPPORTED_VERSION,
            Error::LimitExceeded { .. } => bistro_status::BISTRO_ERR_LIMIT_EXCEEDED,
            Error::NonFinite { .. } => bistro_status::BISTRO_ERR_NON_FINITE,
            Error::DigestMismatch { .. } => bistro_status::BISTRO_ERR_DIGEST_MISMATCH,
            Error::BadSignature(_) => bistro_status::BISTRO_ERR_BAD_SIGNATURE,
            Error::NotFound(_) => bistro_status::BISTRO_ERR_NOT_FOUND,
            Error::InvalidArgument(_) => bistro_status::BISTRO_ERR_INVALID_ARGUMENT,
            Error::Io { .. } => bistro_status::BISTRO_ERR_IO,
            _ => bistro_status::BISTRO_ERR_OTHER,
        };
        Failure::new(status, e.to_string())
    }
}
