//! Arbitrary bytes as a validator's lead status (`validators/<hotkey>/lead.json`,
//! read from other validators' buckets): a typed error, or a status whose
//! JSON parses back to itself.
#![no_main]

use bistro_core::node::lead::{LeadStatus, MAX_REFUSALS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(status) = LeadStatus::from_json(data) else {
        return;
    };
    assert!(status.refused.len() <= MAX_REFUSALS);
    let again = LeadStatus::from_json(&status.to_json().expect("it serialises"))
        .expect("its JSON parses");
    assert_eq!(again, status);
});
