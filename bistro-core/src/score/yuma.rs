//! Yuma consensus clipping: the consensus weight per miner, each validator's
//! weights clipped to it, and each validator's *vtrust*.
//!
//! This is the part of subtensor's epoch (`run_epoch.rs`, `epoch_dense` and
//! `epoch_mechanism`) that decides whether validators agree:
//!
//! 1. weight rows are normalised to sum to 1 (`inplace_row_normalize`);
//!    validator stakes are normalised to sum to 1 (`inplace_normalize`);
//! 2. per miner `j`, the consensus weight `c_j` is the stake-weighted
//!    κ-quantile of the weights validators give it (`weighted_median_col`):
//!    the largest value `v` among the weights given such that the validators
//!    giving `j` at least `v` hold at least κ of the stake;
//! 3. each weight is clipped to it: `w'_ij = min(w_ij, c_j)` (`inplace_col_clip`);
//! 4. a validator's vtrust is the sum of its clipped row: `Σ_j w'_ij`
//!    (`row_sum`), 1 when it agrees with the consensus on every miner.
//!
//! The chain computes in 32.32 fixed point (`I32F32`) and with a pivot search;
//! this is the same definition in `f64`, so results agree up to rounding
//! (a validator holding exactly κ of the stake is where rounding can differ).
//! The formula and its source commit are in `docs/incentive.md`, section
//! "Consensus and vtrust".
//!
//! Before this step the chain masks rows of validators without a permit,
//! self-weights and weights on uids registered after the weights were set;
//! callers pass the rows they want judged (validators' rows, miners as columns).

use crate::error::{Error, Result};

/// The chain's default κ: `Kappa` is stored as a `u16` out of 65535 and
/// defaults to 32767 (`SubtensorInitialKappa`), i.e. 0.49999…, "one half".
pub const DEFAULT_KAPPA: f64 = 32_767.0 / 65_535.0;

/// Tolerance for stake sums compared with κ (sums of normalised `f64`s).
const STAKE_EPSILON: f64 = 1e-12;

/// The result of [`clip_to_consensus`].
#[derive(Clone, Debug, PartialEq)]
pub struct Consensus {
    /// The consensus weight of each miner (column).
    pub consensus: Vec<f64>,
    /// Each validator's normalised row, clipped to the consensus.
    pub clipped: Vec<Vec<f64>>,
    /// Each validator's vtrust: the sum of its clipped row, in `[0, 1]`.
    pub vtrust: Vec<f64>,
}

/// Yuma consensus clipping for validators with `stakes` (any non-negative
/// scale) and weight rows `weights` (one per validator, one column per miner,
/// any non-negative scale: rows are normalised here; an all-zero row stays
/// zero). `kappa` is the majority ratio in `[0, 1]` ([`DEFAULT_KAPPA`]).
///
/// Validators with zero stake take no part in the consensus but their rows
/// are still clipped and get a vtrust. Errors ([`Error::InvalidArgument`] /
/// [`Error::NonFinite`]): a stake per row, rows of equal length, finite
/// non-negative numbers, κ in `[0, 1]`.
pub fn clip_to_consensus(stakes: &[f64], weights: &[Vec<f64>], kappa: f64) -> Result<Consensus> {
    if !(0.0..=1.0).contains(&kappa) {
        return Err(Error::InvalidArgument(format!(
            "kappa must be in [0, 1], got {kappa}"
        )));
    }
    if stakes.len() != weights.len() {
        return Err(Error::InvalidArgument(format!(
            "{} stakes for {} weight rows",
            stakes.len(),
            weights.len()
        )));
    }
    let columns = weights.first().map_or(0, Vec::len);
    check_values("stakes", stakes)?;
    for (i, row) in weights.iter().enumerate() {
        if row.len() != columns {
            return Err(Error::InvalidArgument(format!(
                "weight row {i} has {} entries, row 0 has {columns}",
                row.len()
            )));
        }
        check_values("weights", row)?;
    }
    let stakes = normalized(stakes);
    let rows: Vec<Vec<f64>> = weights.iter().map(|r| normalized(r)).collect();

    let mut consensus = Vec::with_capacity(columns);
    let mut column: Vec<(f64, f64)> = Vec::with_capacity(rows.len());
    for j in 0..columns {
        column.clear();
        column.extend(
            rows.iter()
                .zip(&stakes)
                .filter(|&(_, &s)| s > 0.0)
                .map(|(row, &s)| (row[j], s)),
        );
        consensus.push(kappa_quantile(&mut column, kappa));
    }
    let clipped: Vec<Vec<f64>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .zip(&consensus)
                .map(|(&w, &c)| w.min(c))
                .collect()
        })
        .collect();
    let vtrust = clipped.iter().map(|row| row.iter().sum()).collect();
    Ok(Consensus {
        consensus,
        clipped,
        vtrust,
    })
}

/// The chain's sparse row `(uids, values)` as a dense row of `n` `f64`s.
/// [`Error::InvalidArgument`] for a length mismatch or a uid `>= n`.
pub fn dense_row(n: usize, uids: &[u16], values: &[u16]) -> Result<Vec<f64>> {
    if uids.len() != values.len() {
        return Err(Error::InvalidArgument(format!(
            "{} uids but {} values",
            uids.len(),
            values.len()
        )));
    }
    let mut row = vec![0.0; n];
    for (&uid, &value) in uids.iter().zip(values) {
        let slot = row
            .get_mut(usize::from(uid))
            .ok_or_else(|| Error::InvalidArgument(format!("uid {uid} is outside a row of {n}")))?;
        *slot = f64::from(value);
    }
    Ok(row)
}

/// The largest weight `v` such that the stake of the entries with weight
/// `>= v` is at least `kappa`; 0 if there is none (no stake).
fn kappa_quantile(column: &mut [(f64, f64)], kappa: f64) -> f64 {
    // Descending by weight; all values are finite.
    column.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut covered = 0.0;
    let mut i = 0;
    while i < column.len() {
        let value = column[i].0;
        // Take every entry with this same value before testing.
        while i < column.len() && column[i].0 == value {
            covered += column[i].1;
            i += 1;
        }
        if covered + STAKE_EPSILON >= kappa {
            return value;
        }
    }
    0.0
}

fn check_values(what: &str, values: &[f64]) -> Result<()> {
    for (index, &v) in values.iter().enumerate() {
        if !v.is_finite() {
            return Err(Error::NonFinite {
                what: what.into(),
                index: index as u64,
            });
        }
        if v < 0.0 {
            return Err(Error::InvalidArgument(format!(
                "{what}[{index}] is negative ({v})"
            )));
        }
    }
    Ok(())
}

/// `values` over their sum; all zeros stay zeros.
fn normalized(values: &[f64]) -> Vec<f64> {
    let sum: f64 = values.iter().sum();
    if sum > 0.0 {
        values.iter().map(|v| v / sum).collect()
    } else {
        values.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
    }

    #[test]
    fn validators_that_agree_have_full_vtrust() {
        let w = vec![vec![0.25, 0.75], vec![1.0, 3.0], vec![2.0, 6.0]];
        let c = clip_to_consensus(&[5.0, 3.0, 2.0], &w, 0.5).unwrap();
        assert!(close(&c.consensus, &[0.25, 0.75]));
        assert!(close(&c.vtrust, &[1.0, 1.0, 1.0]));
    }

    #[test]
    fn hand_computed_three_validators() {
        // Stakes 50 / 30 / 20 %. Rows (already normalised):
        //   A: [0.6, 0.4, 0.0]   B: [0.2, 0.3, 0.5]   C: [0.0, 0.5, 0.5]
        // Miner 0: values 0.6 (A, 0.5), 0.2 (B, 0.3), 0.0 (C, 0.2).
        //   >= 0.6 holds 0.5 >= 0.5  -> consensus 0.6.
        // Miner 1: 0.5 (C, 0.2), 0.4 (A, 0.5), 0.3 (B, 0.3).
        //   >= 0.5: 0.2; >= 0.4: 0.7 -> consensus 0.4.
        // Miner 2: 0.5 (B and C, 0.5), 0.0 (A) -> >= 0.5 holds 0.5 -> 0.5.
        // Clipped: A [0.6, 0.4, 0.0] = 1.0; B [0.2, 0.3, 0.5] = 1.0;
        //          C [0.0, 0.4, 0.5] = 0.9.
        let w = vec![
            vec![0.6, 0.4, 0.0],
            vec![0.2, 0.3, 0.5],
            vec![0.0, 0.5, 0.5],
        ];
        let c = clip_to_consensus(&[50.0, 30.0, 20.0], &w, 0.5).unwrap();
        assert!(close(&c.consensus, &[0.6, 0.4, 0.5]), "{c:?}");
        assert!(close(&c.clipped[2], &[0.0, 0.4, 0.5]));
        assert!(close(&c.vtrust, &[1.0, 1.0, 0.9]), "{c:?}");

        // With κ just above one half, half the stake is not enough: miner 0
        // needs B too (consensus 0.2), and miner 2's 0.5 from B and C
        // (half the stake) falls to A's 0.0. Clipped: A [0.2, 0.4, 0.0] =
        // 0.6; B [0.2, 0.3, 0.0] = 0.5; C [0.0, 0.4, 0.0] = 0.4.
        let c = clip_to_consensus(&[50.0, 30.0, 20.0], &w, 0.51).unwrap();
        assert!(close(&c.consensus, &[0.2, 0.4, 0.0]), "{c:?}");
        assert!(close(&c.vtrust, &[0.6, 0.5, 0.4]), "{c:?}");
    }

    #[test]
    fn a_minority_that_disagrees_is_clipped() {
        // Two honest validators (80 % of stake) weight miner 0; a third
        // (20 %) puts everything on miner 1.
        let w = vec![vec![1.0, 0.0], vec![1.0, 0.0], vec![0.0, 1.0]];
        let c = clip_to_consensus(&[40.0, 40.0, 20.0], &w, DEFAULT_KAPPA).unwrap();
        assert!(close(&c.consensus, &[1.0, 0.0]));
        assert!(close(&c.vtrust, &[1.0, 1.0, 0.0]));
    }

    #[test]
    fn rows_and_stakes_are_normalised_and_zero_stake_does_not_vote() {
        // u16 rows as the chain stores them; validator 2 has no stake, so
        // its odd row does not move the consensus but is still judged.
        let w = vec![
            dense_row(3, &[0, 1], &[65535, 65535]).unwrap(),
            dense_row(3, &[0, 1], &[100, 100]).unwrap(),
            dense_row(3, &[2], &[7]).unwrap(),
        ];
        let c = clip_to_consensus(&[1.0, 1.0, 0.0], &w, 0.5).unwrap();
        assert!(close(&c.consensus, &[0.5, 0.5, 0.0]));
        assert!(close(&c.vtrust, &[1.0, 1.0, 0.0]));
        // An all-zero row stays zero: vtrust 0.
        let c = clip_to_consensus(&[1.0, 1.0], &[vec![0.0, 0.0], vec![1.0, 0.0]], 0.5).unwrap();
        assert!(close(&c.vtrust, &[0.0, 1.0]));
        // No stake at all: no consensus.
        let c = clip_to_consensus(&[0.0], &[vec![1.0]], 0.5).unwrap();
        assert!(close(&c.consensus, &[0.0]));
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let w = vec![vec![1.0, 0.0]];
        assert!(matches!(
            clip_to_consensus(&[1.0, 2.0], &w, 0.5),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            clip_to_consensus(&[1.0, 2.0], &[vec![1.0], vec![1.0, 2.0]], 0.5),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            clip_to_consensus(&[f64::NAN], &w, 0.5),
            Err(Error::NonFinite { .. })
        ));
        assert!(matches!(
            clip_to_consensus(&[1.0], &[vec![-1.0, 0.0]], 0.5),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            clip_to_consensus(&[1.0], &w, 1.5),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            dense_row(2, &[2], &[1]),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            dense_row(2, &[0], &[]),
            Err(Error::InvalidArgument(_))
        ));
        let empty = clip_to_consensus(&[], &[], 0.5).unwrap();
        assert!(empty.consensus.is_empty() && empty.vtrust.is_empty());
    }

    /// subtensor's `weighted_median` (epoch/math.rs), ported line by line
    /// to `f64`: the mid-pivot partition search the chain runs.
    fn chain_weighted_median(
        stake: &[f64],
        score: &[f64],
        partition_idx: &[usize],
        minority: f64,
        mut partition_lo: f64,
        mut partition_hi: f64,
    ) -> f64 {
        let mut current: Vec<usize> = partition_idx.to_vec();
        let mut lower = vec![];
        let mut upper = vec![];
        for _ in 0..=partition_idx.len() {
            let n = current.len();
            if n == 0 {
                return 0.0;
            }
            if n == 1 {
                return score[current[0]];
            }
            let pivot = score[current[n / 2]];
            let (mut lo_stake, mut hi_stake) = (0.0, 0.0);
            for &idx in &current {
                if score[idx] == pivot {
                    continue;
                }
                if score[idx] < pivot {
                    lo_stake += stake[idx];
                    lower.push(idx);
                } else {
                    hi_stake += stake[idx];
                    upper.push(idx);
                }
            }
            if minority < partition_lo + lo_stake && !lower.is_empty() {
                current = std::mem::take(&mut lower);
                partition_hi = partition_lo + lo_stake;
            } else if partition_hi - hi_stake <= minority && !upper.is_empty() {
                current = std::mem::take(&mut upper);
                partition_lo = partition_hi - hi_stake;
            } else {
                return pivot;
            }
            lower.clear();
            upper.clear();
        }
        0.0
    }

    /// subtensor's `weighted_median_col`, ported (rows with stake only).
    fn chain_weighted_median_col(stake: &[f64], score: &[Vec<f64>], majority: f64) -> Vec<f64> {
        let columns = score.first().map_or(0, Vec::len);
        (0..columns)
            .map(|c| {
                let mut use_stake = vec![];
                let mut use_score = vec![];
                for (r, &s) in stake.iter().enumerate() {
                    if s > 0.0 {
                        use_stake.push(s);
                        use_score.push(score[r][c]);
                    }
                }
                if use_stake.is_empty() {
                    return 0.0;
                }
                let use_stake = normalized(&use_stake);
                let sum: f64 = use_stake.iter().sum();
                let idx: Vec<usize> = (0..use_stake.len()).collect();
                chain_weighted_median(&use_stake, &use_score, &idx, sum - majority, 0.0, sum)
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn consensus_equals_the_chains_pivot_search(
            rows in proptest::collection::vec(
                (1u32..1000, proptest::collection::vec(0u16..8, 5)), 1..9),
            kappa in 0.05f64..0.95,
        ) {
            // Few distinct weight values, so ties between validators are common.
            let stakes: Vec<f64> = rows.iter().map(|r| f64::from(r.0)).collect();
            let weights: Vec<Vec<f64>> =
                rows.iter().map(|r| r.1.iter().map(|&v| f64::from(v)).collect()).collect();
            let ours = clip_to_consensus(&stakes, &weights, kappa).unwrap();
            let normed: Vec<Vec<f64>> = weights.iter().map(|r| normalized(r)).collect();
            let chain = chain_weighted_median_col(&normalized(&stakes), &normed, kappa);
            proptest::prop_assert!(close(&ours.consensus, &chain), "{:?} vs {:?}", ours.consensus, chain);
            for v in &ours.vtrust {
                proptest::prop_assert!((0.0..=1.0 + 1e-9).contains(v));
            }
        }
    }
}
