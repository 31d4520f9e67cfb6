//! Arbitrary bytes as a master's lineage record (`master/<rev>.lineage.json`,
//! read from the lead's bucket by every follower): a typed error, or a
//! record with a merge rule and finite weights whose JSON parses back to
//! itself (weights up to rounding).
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
    // Weights are f32 through JSON's decimal: equal up to rounding.
    let weights = |r: &Lineage| r.deltas.iter().map(|d| d.weight).collect::<Vec<f32>>();
    for (a, b) in weights(&again).into_iter().zip(weights(&record)) {
        assert!((a - b).abs() <= f32::EPSILON * b.abs(), "{a} {b}");
    }
    let unweighted = |mut r: Lineage| {
        r.deltas.iter_mut().for_each(|d| d.weight = 0.0);
        r
    };
    assert_eq!(unweighted(again), unweighted(record));
});
