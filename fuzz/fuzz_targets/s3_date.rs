//! Arbitrary strings as S3 dates: listing timestamps (ISO 8601) and
//! `Last-Modified` headers (IMF-fixdate). `None` or a time, never a panic;
//! a time is never before 1970 (S3 cannot have written an object then).
#![no_main]

use std::time::UNIX_EPOCH;

use bistro_core::fuzzing::{s3_http_date, s3_iso8601};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for parsed in [s3_iso8601(s), s3_http_date(s)].into_iter().flatten() {
        assert!(parsed >= UNIX_EPOCH);
    }
});
