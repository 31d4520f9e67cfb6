//! # bistro-ffi: the C ABI of bistro
//!
//! The parts of bistro that must agree bit for bit between a trainer and
//! the validators, for trainers written in C, C++ or Python (`ctypes`): the
//! delta codec (writer, validating reader, apply), page selection, sr25519
//! signing of deltas, scoring (the rule, moving averages, Yuma consensus
//! clipping) and the chain's `u16` weight conversion. The library
//! is built as `libbistro.so` / `libbistro.a`; its header is
//! `include/bistro.h`, generated from this crate by cbindgen
//! (`scripts/gen-header.sh`; `scripts/check-header.sh` fails when the
//! committed header is out of date). `docs/ffi.md` is the guide.
//!
//! Conventions (the header's top comment says the same for C readers):
//!
//! - Opaque handles (`bistro_delta_writer`, `bistro_delta_reader`,
//!   `bistro_buffer`) made by `*_new`/`*_open`/`*_finish` and released by
//!   the matching `*_free`, which accepts NULL.
//! - Every fallible function returns a [`bistro_status`]; `BISTRO_OK` is 0.
//!   The calling thread's last error message is copied out by
//!   [`bistro_last_error`]. Outputs are written only on success.
//! - No panic crosses the boundary: every export runs in a panic boundary (`panic.rs`).
//! - Raw pointers become references only in `ffi.rs`, which checks NULL,
//!   alignment and lengths.
//!
//! The exports are `unsafe extern "C"` functions: their safety contract is
//! the header's (pointers valid for the lengths given, handles from this
//! library and not yet freed). That contract is stated once, in the
//! header's conventions, rather than in a `# Safety` section per function.
//!
//! ---
//!
#![doc = include_str!("../../docs/ffi.md")]
#![warn(missing_docs)]
#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

pub mod buffer;
mod ffi;
pub mod last_error;
pub mod pages;
mod panic;
pub mod reader;
pub mod scoring;
pub mod signing;
pub mod status;
pub mod types;
pub mod version;
pub mod weights;
pub mod writer;

pub use buffer::*;
pub use last_error::*;
pub use pages::*;
pub use reader::*;
pub use scoring::*;
pub use signing::*;
pub use status::*;
pub use types::*;
pub use version::*;
pub use weights::*;
pub use writer::*;

// The boundary turns panics into BISTRO_ERR_PANIC with catch_unwind, which
// catches nothing when panics abort.
#[cfg(panic = "abort")]
compile_error!("bistro-ffi must be built with panic = \"unwind\" (its panic boundary needs it)");

#[cfg(test)]
mod tests;
