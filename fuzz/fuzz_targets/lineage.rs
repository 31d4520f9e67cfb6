//! Arbitrary bytes as a master's lineage record (`master/<rev>.lineage.json`,
//! read from the lead's bucket by every follower): a typed error, or a
//! record with a merge rule and finite weights whose JSON parses back to
//! itself.
#![no_main]

use bistro_core::node::lineage::Lineage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(record) = Lineage::from_json(data) else {
        return;
    };
    assert!(record.merge_rule().is_ok());
    assert!(!record.deltas.is_empty());
    assert!(record.deltas.iter().all(|d| d.weight.is_finite()));
    let again = Lineage::from_json(&record.to_json().expect("it serialises"))
        .expect("its JSON parses");
    assert_eq!(again, record);
});
