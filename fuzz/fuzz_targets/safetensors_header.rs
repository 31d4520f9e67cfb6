//! Arbitrary bytes as a safetensors file (8-byte header length, JSON header,
//! data), as a validator reads another validator's master: a typed error,
//! or entries that tile the data section inside the file without overlap.
#![no_main]

use bistro_core::fuzzing::safetensors_header;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((entries, data_start)) = safetensors_header(data) else {
        return;
    };
    let data_len = data.len() as u64 - data_start;
    let mut previous_end = 0;
    for e in &entries {
        assert!(e.begin >= previous_end, "entries overlap or are unsorted");
        assert!(
            e.begin <= e.end && e.end <= data_len,
            "entry outside the data"
        );
        let elements = e
            .shape
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d as u64));
        assert_eq!(
            elements.and_then(|n| n.checked_mul(e.element_size)),
            Some(e.end - e.begin),
            "byte range does not match the shape"
        );
        previous_end = e.end;
    }
});
