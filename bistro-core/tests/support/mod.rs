//! Helpers shared by the storage integration tests.
#![allow(dead_code)]

pub mod data;
#[cfg(feature = "s3")]
pub mod http;
#[cfg(feature = "s3")]
pub mod moto;
