//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): parsers
//! of outside data that are private, or that live behind features the fuzz
//! build does not enable (`torch`, `s3`, `http`: libtorch and network
//! clients are no part of a parser). Not part of the SDK's API.
//!
//! The pure parser files are compiled here a second time by path; they
//! depend on nothing but `std`, `serde_json` and [`crate::error`].

use std::path::Path;
use std::time::SystemTime;

use crate::error::Result;

// Only the parsing half of each file is used here.
#[allow(dead_code)]
#[path = "model/safetensors.rs"]
mod safetensors;

#[allow(dead_code)]
#[path = "storage/s3/time.rs"]
mod s3_time;

#[path = "data/http/content_range.rs"]
mod content_range;

/// One tensor of a safetensors header that [`safetensors_header`] accepted.
#[derive(Clone, Debug)]
pub struct SafetensorsEntry {
    /// The tensor's name.
    pub name: String,
    /// Bytes per element.
    pub element_size: u64,
    /// The shape.
    pub shape: Vec<usize>,
    /// Byte range within the data section.
    pub begin: u64,
    /// One past the last byte within the data section.
    pub end: u64,
}

/// Reads and validates a safetensors file's header from `file` (the whole
/// file: the 8-byte length, the JSON, the data), as a validator reads
/// another validator's master. Returns the entries, sorted by offset, and
/// where the data section begins.
pub fn safetensors_header(file: &[u8]) -> Result<(Vec<SafetensorsEntry>, u64)> {
    let header = safetensors::read_header(&mut &file[..], file.len() as u64, Path::new("fuzz"))?;
    let entries = header
        .entries
        .into_iter()
        .map(|e| SafetensorsEntry {
            name: e.name,
            element_size: e.dtype.size(),
            shape: e.shape,
            begin: e.begin,
            end: e.end,
        })
        .collect();
    Ok((entries, header.data_start))
}

/// S3's `LastModified` in listings (ISO 8601, `2024-01-02T03:04:05.678Z`).
pub fn s3_iso8601(s: &str) -> Option<SystemTime> {
    s3_time::parse_iso8601(s)
}

/// S3's `Last-Modified` header (IMF-fixdate, `Tue, 02 Jan 2024 03:04:05 GMT`).
pub fn s3_http_date(s: &str) -> Option<SystemTime> {
    s3_time::parse_http_date(s)
}

/// A `Content-Range: bytes START-END/TOTAL` header value.
pub fn content_range(s: &str) -> Option<(u64, u64, Option<u64>)> {
    content_range::parse_content_range(s)
}
