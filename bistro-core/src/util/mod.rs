//! Small helpers the SDK, the C library and the example binaries share, so
//! that each is written once: atomic file writes, retries with backoff,
//! JSON-lines logs, non-finite numbers in JSON and hex.
//!
//! These are plumbing rather than SDK features; they are public so that
//! `bistro-ffi` and the examples use the same code instead of copies.

pub mod atomic;
pub mod finite_json;
pub mod hex;
pub mod jsonl;
pub mod retry;
#[cfg(any(feature = "http", feature = "s3"))]
pub(crate) mod ureq_error;
