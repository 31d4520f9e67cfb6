//! `chain::weights::to_u16` against what Bittensor's Python SDK puts on
//! chain for the same inputs (tests/data/chain/weights_python.json, made by
//! scripts/chain_weight_vectors.py).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

use bistro_core::chain::weights::to_u16;

#[derive(serde::Deserialize)]
struct Case {
    uids: Vec<u16>,
    weights: Vec<f64>,
    weights_f32_bits: Vec<u32>,
    out_uids: Vec<u16>,
    out_values: Vec<u16>,
}

#[test]
fn matches_the_python_sdk_on_recorded_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/chain/weights_python.json"
    );
    let cases: Vec<Case> = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert!(cases.len() >= 15);
    let mut ties = 0;
    for case in &cases {
        // The vectors hold float32 values, as numpy.float32 arrays do; the
        // exact bits are recorded beside the decimals.
        let weights: Vec<f32> = case
            .weights_f32_bits
            .iter()
            .map(|&b| f32::from_bits(b))
            .collect();
        assert_eq!(weights.len(), case.weights.len());
        for (&w32, &w64) in weights.iter().zip(&case.weights) {
            assert!(
                (f64::from(w32) - w64).abs() <= w64.abs() * 1e-15,
                "{w32} vs {w64}"
            );
        }
        let (uids, values) = to_u16(&case.uids, &weights).unwrap();
        assert_eq!(uids, case.out_uids, "{:?}", case.weights);
        assert_eq!(values, case.out_values, "{:?}", case.weights);
        let top = weights.iter().copied().fold(0f32, f32::max);
        ties += weights
            .iter()
            .filter(|&&w| top > 0.0 && (f64::from(w) / f64::from(top) * 65535.0).fract() == 0.5)
            .count();
    }
    // The recorded set exercises Python's round-half-to-even.
    assert!(ties >= 3, "only {ties} exact ties");
}
