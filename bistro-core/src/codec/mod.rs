//! The delta codec: the file format miners upload and validators download.
//!
//! A delta is the difference between a miner's trained weights and the
//! master it started from, as named tensors. [`DeltaWriter`] encodes one
//! tensor at a time to any `std::io::Write` (dense f32/f16/bf16, sparse
//! top-k with Elias–Fano indices, int8 block-quantized), with error feedback.
//! [`DeltaReader`] validates a whole file up front against [`Limits`] and
//! then applies tensors to the caller's `&mut [f32]` in parallel without
//! copying or per-element allocation; [`open_file`] memory-maps a file for it.
//! [`naive`] is an independent simple decoder used as a test oracle.
//!
//! Error bounds, byte layout and validation rules are in the specification
//! below (`docs/delta-format.md`).
//!
//! ---
//!
#![doc = include_str!("../../../docs/delta-format.md")]

mod elias_fano;
mod encoding;
mod format;
mod kernels;
mod limits;
pub mod naive;
mod open;
mod quantize;
mod reader;
mod signature;
mod sparse;
mod table;
mod topk;
mod view;
mod writer;

pub use encoding::{DType, Encoding};
pub use format::{
    DeltaHeader, FOOTER_LEN, FOOTER_MAGIC, HEADER_LEN, MAGIC, PAYLOAD_ALIGN, UNDIGESTED_LEN,
    VERSION,
};
pub use limits::{Limits, MAX_BYTES_PER_ELEMENT};
pub use reader::{DeltaBuf, DeltaReader, MappedDelta, open_file};
pub use signature::write_signature;
pub use view::{TensorView, TouchedIndices};
pub use writer::DeltaWriter;

#[cfg(test)]
mod tests;
