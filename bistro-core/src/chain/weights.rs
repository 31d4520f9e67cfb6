//! Weights as the chain stores them: `u16` values, max-upscaled.
//!
//! [`to_u16`] converts a validator's float weights into the `(uids, values)`
//! pair that `SubtensorModule.set_weights` takes, exactly as Bittensor's Python
//! SDK does (`bittensor.intents.weights.normalize`, formerly
//! `bittensor.utils.weight_utils.convert_weights_and_uids_for_emit`):
//!
//! 1. the two slices must have the same length, and every weight must be
//!    finite and non-negative;
//! 2. if no weight is above zero (or there are none), nothing is set: both
//!    lists come back empty;
//! 3. otherwise each weight is divided by the largest one and multiplied by
//!    65535 in `f64`, then rounded half-to-even (Python's `round`);
//! 4. entries that round to zero are dropped, keeping the order of the rest.
//!
//! It needs no dependency, so the C library can expose it. The test vectors in
//! `tests/data/chain/weights_python.json` were produced by the Python SDK.

use crate::error::{Error, Result};

/// The weights one neuron holds on the chain now, as the chain stores
/// them: `values[i]` for `uids[i]`, max-upscaled `u16`s (revealed weights
/// only, on a subnet with commit-reveal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainWeights {
    /// Destination uids.
    pub uids: Vec<u16>,
    /// The `u16` weight of each.
    pub values: Vec<u16>,
    /// The block they were last updated at (`LastUpdate` on subtensor).
    pub block: u64,
}

/// The largest value a chain weight can take.
pub const U16_MAX: u16 = u16::MAX;

/// Converts float weights to the chain's `u16` form, as the Python SDK does.
///
/// `f32` inputs are widened to `f64` first, which is what `numpy.tolist()`
/// does before the SDK's arithmetic, so results agree bit for bit.
pub fn to_u16(uids: &[u16], weights: &[f32]) -> Result<(Vec<u16>, Vec<u16>)> {
    let widened: Vec<f64> = weights.iter().map(|&w| f64::from(w)).collect();
    to_u16_f64(uids, &widened)
}

/// [`to_u16`] for `f64` weights (Python floats).
pub fn to_u16_f64(uids: &[u16], weights: &[f64]) -> Result<(Vec<u16>, Vec<u16>)> {
    if uids.len() != weights.len() {
        return Err(Error::InvalidArgument(format!(
            "uids and weights must have the same length: {} vs {}",
            uids.len(),
            weights.len()
        )));
    }
    for (index, &w) in weights.iter().enumerate() {
        if !w.is_finite() {
            return Err(Error::NonFinite {
                what: "weights".into(),
                index: index as u64,
            });
        }
        if w < 0.0 {
            return Err(Error::InvalidArgument(format!(
                "weight {index} is negative ({w}); chain weights cannot be"
            )));
        }
    }
    let top = weights.iter().copied().fold(0.0_f64, f64::max);
    if top == 0.0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut out_uids = Vec::new();
    let mut out_values = Vec::new();
    for (&uid, &w) in uids.iter().zip(weights) {
        // w <= top, so the product is in [0, 65535] and the cast is exact.
        let value = ((w / top) * f64::from(U16_MAX)).round_ties_even() as u16;
        if value != 0 {
            out_uids.push(uid);
            out_values.push(value);
        }
    }
    Ok((out_uids, out_values))
}

/// The inverse view the chain's tooling uses for display: each value over
/// the sum of the row (the Python SDK's `convert_weight_uids_and_vals_to_tensor`
/// without the dense expansion). An all-zero or empty row gives zeros.
pub fn normalized(values: &[u16]) -> Vec<f64> {
    let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
    if sum == 0.0 {
        return vec![0.0; values.len()];
    }
    values.iter().map(|&v| f64::from(v) / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_round_to_even_like_python() {
        // 0.5 * 65535 = 32767.5 -> 32768 (even); 0.25 * 65535 = 16383.75 -> 16384.
        assert_eq!(
            to_u16(&[0, 1], &[1.0, 0.5]).unwrap(),
            (vec![0, 1], vec![65535, 32768])
        );
        // 1.5 / 65535 * 65535 = 1.5 -> 2; 0.5 -> 0 (even) and is dropped.
        assert_eq!(
            to_u16_f64(&[0, 1, 2], &[65535.0, 1.5, 0.5]).unwrap(),
            (vec![0, 1], vec![65535, 2])
        );
    }

    #[test]
    fn zeros_are_dropped_and_all_zero_sets_nothing() {
        assert_eq!(
            to_u16(&[4, 5, 6], &[2.0, 0.0, 1.0]).unwrap(),
            (vec![4, 6], vec![65535, 32768])
        );
        assert_eq!(to_u16(&[1, 2], &[0.0, 0.0]).unwrap(), (vec![], vec![]));
        assert_eq!(to_u16(&[], &[]).unwrap(), (vec![], vec![]));
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        assert!(matches!(
            to_u16(&[1, 2], &[1.0]),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            to_u16(&[1, 2], &[1.0, -0.5]),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            to_u16(&[1, 2], &[1.0, f32::NAN]),
            Err(Error::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            to_u16(&[1], &[f32::INFINITY]),
            Err(Error::NonFinite { index: 0, .. })
        ));
    }

    #[test]
    fn normalized_view_sums_to_one() {
        let row = normalized(&[65535, 32768, 1]);
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(normalized(&[0, 0]), vec![0.0, 0.0]);
    }
}
