//! Arbitrary strings as `Content-Range` headers: `None`, or a range that,
//! written back in the canonical form, parses to the same values.
#![no_main]

use bistro_core::fuzzing::content_range;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Some((start, end, total)) = content_range(s) else {
        return;
    };
    let total_text = total.map_or("*".to_string(), |t| t.to_string());
    let canonical = format!("bytes {start}-{end}/{total_text}");
    assert_eq!(content_range(&canonical), Some((start, end, total)));
});
