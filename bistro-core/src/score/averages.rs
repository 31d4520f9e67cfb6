//! Per-uid exponential moving averages of scores, and the weights they give.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::identity::PublicKey;

/// Version of the persisted [`MovingAverages`] JSON.
pub const STATE_VERSION: u32 = 1;

/// What the validator remembers about one uid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UidRecord {
    /// The hotkey that held the uid when it was scored. When another hotkey
    /// takes the uid, the record starts over.
    pub hotkey: PublicKey,
    /// Exponential moving average of the scores, in `[0, 1]`.
    pub average: f64,
    /// Number of evaluations folded into the average.
    pub evaluations: u64,
    /// Block of the latest evaluation.
    pub last_block: u64,
    /// The latest score.
    pub last_score: f64,
}

/// Moving averages of scores per uid, persisted as JSON by the validator.
///
/// Only uids that were evaluated have a record, so a uid that was never
/// evaluated can never receive weight. Each average starts at zero, so a new
/// miner earns weight over a few evaluations instead of from one lucky draw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MovingAverages {
    version: u32,
    alpha: f64,
    records: BTreeMap<u16, UidRecord>,
}

impl MovingAverages {
    /// Empty averages with smoothing factor `alpha` in `(0, 1]`: each new score
    /// moves the average `alpha` of the way towards it.
    pub fn new(alpha: f64) -> Result<Self> {
        check_alpha(alpha)?;
        Ok(MovingAverages {
            version: STATE_VERSION,
            alpha,
            records: BTreeMap::new(),
        })
    }

    /// The smoothing factor.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Folds a score for `uid` (held by `hotkey`) into its average. A score
    /// must be finite and in `[0, 1]`, as [`ScoreRule::judge`](super::ScoreRule::judge) gives.
    pub fn record(&mut self, uid: u16, hotkey: PublicKey, block: u64, score: f64) -> Result<()> {
        // A uid taken by another hotkey starts over from 0.
        let (average, evaluations) = self
            .records
            .get(&uid)
            .filter(|r| r.hotkey == hotkey)
            .map_or((0.0, 0), |r| (r.average, r.evaluations));
        let average = next_average(average, score, self.alpha)
            .map_err(|e| Error::InvalidArgument(format!("uid {uid}: {e}")))?;
        self.records.insert(
            uid,
            UidRecord {
                hotkey,
                average,
                evaluations: evaluations + 1,
                last_block: block,
                last_score: score,
            },
        );
        Ok(())
    }

    /// Drops records whose uid is no longer held by the same hotkey.
    /// `registered` lists the current `(uid, hotkey)` pairs of the subnet.
    pub fn retain_registered(&mut self, registered: &[(u16, PublicKey)]) {
        let current: BTreeMap<u16, PublicKey> = registered.iter().copied().collect();
        self.records
            .retain(|uid, record| current.get(uid) == Some(&record.hotkey));
    }

    /// The record of `uid`, if it was evaluated.
    pub fn get(&self, uid: u16) -> Option<&UidRecord> {
        self.records.get(&uid)
    }

    /// All records, by uid.
    pub fn records(&self) -> impl Iterator<Item = (u16, &UidRecord)> {
        self.records.iter().map(|(uid, r)| (*uid, r))
    }

    /// Weights proportional to the averages, summing to 1, for uids with a
    /// positive average; empty when nobody has earned anything.
    pub fn weights(&self) -> Vec<(u16, f64)> {
        let averages: Vec<f64> = self.records.values().map(|r| r.average).collect();
        self.records
            .keys()
            .zip(weights_from_averages(&averages))
            .filter(|(_, w)| *w > 0.0)
            .map(|(uid, w)| (*uid, w))
            .collect()
    }

    /// The state as JSON.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self)
            .map_err(|e| Error::InvalidArgument(format!("cannot serialise averages: {e}")))
    }

    /// Parses and validates persisted state (version, alpha, every average in `[0, 1]`).
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let state: MovingAverages = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt("validator state", "JSON", e.to_string()))?;
        if state.version != STATE_VERSION {
            return Err(Error::UnsupportedVersion {
                input: "validator state",
                found: state.version,
                supported: STATE_VERSION.to_string(),
            });
        }
        check_alpha(state.alpha)
            .map_err(|e| Error::corrupt("validator state", "alpha", e.to_string()))?;
        for (uid, r) in &state.records {
            let in_range = |x: f64| (0.0..=1.0).contains(&x);
            if !in_range(r.average) || !in_range(r.last_score) {
                return Err(Error::corrupt(
                    "validator state",
                    format!("uid {uid}"),
                    "average or score outside [0, 1]",
                ));
            }
        }
        Ok(state)
    }
}

/// One step of a moving average: `average + alpha · (score − average)`.
/// A new uid's average starts at 0. [`Error::InvalidArgument`] unless
/// `alpha` is in `(0, 1]` and `average` and `score` are in `[0, 1]` (so the
/// result is too).
pub fn next_average(average: f64, score: f64, alpha: f64) -> Result<f64> {
    check_alpha(alpha)?;
    for (what, x) in [("score", score), ("average", average)] {
        if !(0.0..=1.0).contains(&x) {
            return Err(Error::InvalidArgument(format!(
                "{what} {x} is not in [0, 1]"
            )));
        }
    }
    Ok(average + alpha * (score - average))
}

/// Weights proportional to `averages`, summing to 1: each positive average
/// divided by the sum of all; 0 for the others. All 0 when the sum is not
/// positive and finite (nobody has earned anything).
pub fn weights_from_averages(averages: &[f64]) -> Vec<f64> {
    let total: f64 = averages.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return vec![0.0; averages.len()];
    }
    averages
        .iter()
        .map(|&a| if a > 0.0 { a / total } else { 0.0 })
        .collect()
}

fn check_alpha(alpha: f64) -> Result<()> {
    if alpha > 0.0 && alpha <= 1.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "moving-average alpha must be in (0, 1], got {alpha}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        PublicKey([n; 32])
    }

    #[test]
    fn never_evaluated_uids_get_no_weight_and_zero_scores_decay() {
        let mut avg = MovingAverages::new(0.5).unwrap();
        assert!(avg.weights().is_empty());
        avg.record(1, key(1), 10, 0.4).unwrap();
        avg.record(2, key(2), 10, 0.0).unwrap();
        let w = avg.weights();
        assert_eq!(w, vec![(1, 1.0)]);
        avg.record(1, key(1), 20, 0.0).unwrap();
        assert!((avg.get(1).unwrap().average - 0.1).abs() < 1e-12);
    }

    #[test]
    fn weights_are_proportional_and_sum_to_one() {
        let mut avg = MovingAverages::new(1.0).unwrap();
        avg.record(3, key(3), 1, 0.3).unwrap();
        avg.record(7, key(7), 1, 0.1).unwrap();
        let w = avg.weights();
        assert!((w[0].1 - 0.75).abs() < 1e-12 && (w[1].1 - 0.25).abs() < 1e-12);
    }

    #[test]
    fn a_new_hotkey_on_a_uid_starts_over() {
        let mut avg = MovingAverages::new(0.5).unwrap();
        avg.record(4, key(1), 1, 1.0).unwrap();
        avg.record(4, key(9), 2, 0.0).unwrap();
        let r = avg.get(4).unwrap();
        assert_eq!((r.hotkey, r.evaluations, r.average), (key(9), 1, 0.0));
        avg.retain_registered(&[(4, key(8))]);
        assert!(avg.get(4).is_none());
    }

    #[test]
    fn out_of_range_scores_are_refused() {
        let mut avg = MovingAverages::new(0.5).unwrap();
        for bad in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            assert!(avg.record(1, key(1), 1, bad).is_err());
        }
        assert!(avg.get(1).is_none());
        assert!(MovingAverages::new(0.0).is_err());
        assert!(MovingAverages::new(f64::NAN).is_err());
    }

    #[test]
    fn state_round_trips_and_corrupt_state_is_rejected() {
        let mut avg = MovingAverages::new(0.25).unwrap();
        avg.record(5, key(5), 100, 0.5).unwrap();
        let json = avg.to_json().unwrap();
        assert_eq!(MovingAverages::from_json(&json).unwrap(), avg);
        let text = String::from_utf8(json).unwrap();
        let tampered = text.replace("\"average\": 0.125", "\"average\": 7.0");
        assert!(matches!(
            MovingAverages::from_json(tampered.as_bytes()),
            Err(Error::Corrupt { .. })
        ));
        let future = text.replace("\"version\": 1", "\"version\": 2");
        assert!(matches!(
            MovingAverages::from_json(future.as_bytes()),
            Err(Error::UnsupportedVersion { .. })
        ));
        assert!(MovingAverages::from_json(b"{").is_err());
    }
}
