//! Versions and sizes: the ABI version macro, the library version, and the
//! lengths of the fixed-size byte arrays the API passes around.

use std::ffi::c_char;

use bistro_core::codec;

/// The version of this C ABI. It changes whenever a function, struct or
/// status code changes incompatibly; compare it with `bistro_abi_version()`
/// at run time to detect a header/library mismatch.
pub const BISTRO_ABI_VERSION: u32 = 1;

/// The delta file format version this library writes and reads.
pub const BISTRO_DELTA_FORMAT_VERSION: u32 = 1;

/// Bytes in a content digest (BLAKE3): base revisions, delta digests.
pub const BISTRO_DIGEST_LEN: usize = 32;

/// Bytes in an sr25519 public key (a hotkey).
pub const BISTRO_PUBLIC_KEY_LEN: usize = 32;

/// Bytes in an sr25519 seed (a hotkey file's `secretSeed`).
pub const BISTRO_SEED_LEN: usize = 32;

/// Bytes in an sr25519 signature.
pub const BISTRO_SIGNATURE_LEN: usize = 64;

/// Bytes in a block hash (the page-selection seed).
pub const BISTRO_BLOCK_HASH_LEN: usize = 32;

// The literals above are what cbindgen writes into the header; these
// assertions keep them equal to the library's own values.
const _: () = assert!(BISTRO_DELTA_FORMAT_VERSION == codec::VERSION);
const _: () = assert!(BISTRO_DIGEST_LEN == size_of::<bistro_core::Digest>());
const _: () = assert!(BISTRO_PUBLIC_KEY_LEN == size_of::<bistro_core::PublicKey>());
const _: () = assert!(BISTRO_SIGNATURE_LEN == size_of::<bistro_core::Signature>());

/// The library's version (`"0.1.0"`), a static NUL-terminated string that
/// must not be freed. Never fails; thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn bistro_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The ABI version the library was built with (`BISTRO_ABI_VERSION` of
/// its header). Never fails; thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn bistro_abi_version() -> u32 {
    BISTRO_ABI_VERSION
}
