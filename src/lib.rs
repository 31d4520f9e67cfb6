//! The `bistro` package at the repository root: it owns the example binaries
//! (`cargo run --example validator`) and the integration tests in `tests/`.
//! The SDK itself is [`bistro_core`], re-exported here.

#![warn(missing_docs)]

pub mod chart;
pub mod cli;
#[cfg(feature = "full")]
pub mod localnet;
#[cfg(feature = "full")]
pub mod roles;
#[cfg(feature = "full")]
pub mod rounds;

pub use bistro_core::*;
