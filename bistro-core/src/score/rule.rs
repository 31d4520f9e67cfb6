//! The per-evaluation scoring rule.

use serde::{Deserialize, Serialize};

/// Mean loss of the master without and with a miner's delta on one set of pages.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossPair {
    /// Loss of the master alone.
    pub master: f64,
    /// Loss of the master with the miner's delta applied.
    pub with_delta: f64,
}

impl LossPair {
    /// Relative improvement `(master - with_delta) / master`: positive when the
    /// delta lowers the loss. It is at most 1 (a loss cannot go below zero),
    /// which bounds every score however large the delta's values are.
    /// `None` when either loss is not finite or the master's loss is not positive.
    pub fn relative_gain(&self) -> Option<f64> {
        let finite = self.master.is_finite() && self.with_delta.is_finite();
        if !finite || self.master <= 0.0 || self.with_delta < 0.0 {
            return None;
        }
        Some((self.master - self.with_delta) / self.master)
    }
}

/// What a validator measured for one miner's delta at one block.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Losses on pages drawn from the miner's own window.
    pub local: LossPair,
    /// Losses on pages drawn from the whole dataset.
    pub global: LossPair,
}

/// Why an evaluation scored what it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictReason {
    /// The delta passed every gate; the score is its local gain.
    Scored,
    /// A loss was NaN, infinite or negative.
    NonFiniteLoss,
    /// The delta did not lower the loss on the miner's own pages by more
    /// than the rule's `min_local_gain`.
    NoLocalGain,
    /// The delta improved random pages as much as its own: it was not trained
    /// on the miner's window (a copy, or generic training).
    NotSpecific,
    /// The delta raised the loss on random pages by more than the tolerance.
    HurtsGlobal,
}

/// The outcome of [`ScoreRule::judge`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The score, in `[0, 1]`.
    pub score: f64,
    /// Why.
    pub reason: VerdictReason,
    /// Relative gain on local pages (`NaN` when a loss was not finite).
    pub local_gain: f64,
    /// Relative gain on global pages (`NaN` when a loss was not finite).
    pub global_gain: f64,
    /// Whether the delta may be merged into the next master.
    pub mergeable: bool,
}

/// The parameters of the scoring rule. Validators must agree on them for
/// their weights to agree; they are written into every evaluation log line.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreRule {
    /// The local relative gain must be above this to count as an
    /// improvement: gains within measurement noise earn nothing.
    pub min_local_gain: f64,
    /// The local relative gain must exceed the global one by more than this
    /// (the "trained on its own window" test; 0: strictly more).
    pub min_specificity: f64,
    /// The global relative gain may be as low as `-max_global_harm` (a small
    /// loss on random pages is tolerated: a miner specialises on its window).
    pub max_global_harm: f64,
    /// A scored delta is mergeable when its global relative gain is above this.
    pub min_merge_gain: f64,
}

impl Default for ScoreRule {
    fn default() -> Self {
        ScoreRule {
            min_local_gain: 0.001,
            min_specificity: 0.0,
            max_global_harm: 0.02,
            min_merge_gain: 0.001,
        }
    }
}

impl ScoreRule {
    /// Scores one evaluation. The score is never negative and never above 1,
    /// so no sequence of uploads can make two negatives multiply into a payout
    /// or inflate a score by uploading huge values.
    pub fn judge(&self, eval: &Evaluation) -> Verdict {
        let (Some(local_gain), Some(global_gain)) =
            (eval.local.relative_gain(), eval.global.relative_gain())
        else {
            return Verdict {
                score: 0.0,
                reason: VerdictReason::NonFiniteLoss,
                local_gain: f64::NAN,
                global_gain: f64::NAN,
                mergeable: false,
            };
        };
        let reason = if local_gain <= self.min_local_gain {
            VerdictReason::NoLocalGain
        } else if local_gain - global_gain <= self.min_specificity {
            VerdictReason::NotSpecific
        } else if global_gain < -self.max_global_harm {
            VerdictReason::HurtsGlobal
        } else {
            VerdictReason::Scored
        };
        let scored = reason == VerdictReason::Scored;
        Verdict {
            score: if scored {
                local_gain.clamp(0.0, 1.0)
            } else {
                0.0
            },
            reason,
            local_gain,
            global_gain,
            mergeable: scored && global_gain > self.min_merge_gain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(ml: f64, dl: f64, mg: f64, dg: f64) -> Evaluation {
        Evaluation {
            local: LossPair {
                master: ml,
                with_delta: dl,
            },
            global: LossPair {
                master: mg,
                with_delta: dg,
            },
        }
    }

    #[test]
    fn honest_delta_scores_its_local_gain_and_is_mergeable() {
        let v = ScoreRule::default().judge(&eval(4.0, 3.0, 4.0, 3.8));
        assert_eq!(v.reason, VerdictReason::Scored);
        assert!((v.score - 0.25).abs() < 1e-12);
        assert!(v.mergeable);
    }

    #[test]
    fn specialised_delta_that_slightly_hurts_global_scores_but_is_not_merged() {
        let v = ScoreRule::default().judge(&eval(4.0, 3.0, 4.0, 4.04));
        assert_eq!(v.reason, VerdictReason::Scored);
        assert!(!v.mergeable);
    }

    #[test]
    fn zeros_noise_poison_and_copies_score_zero() {
        let rule = ScoreRule::default();
        // Lazy: exactly the master.
        assert_eq!(
            rule.judge(&eval(4.0, 4.0, 4.0, 4.0)).reason,
            VerdictReason::NoLocalGain
        );
        // Noise / poison: loss goes up everywhere.
        assert_eq!(rule.judge(&eval(4.0, 9.0, 4.0, 9.5)).score, 0.0);
        // Below the noise floor.
        assert_eq!(
            rule.judge(&eval(4.0, 3.999, 4.0, 4.0)).reason,
            VerdictReason::NoLocalGain
        );
        // A copy of someone else's delta helps random pages as much as "own" ones.
        assert_eq!(
            rule.judge(&eval(4.0, 3.8, 4.0, 3.8)).reason,
            VerdictReason::NotSpecific
        );
        // Helps its window a lot, wrecks the rest.
        assert_eq!(
            rule.judge(&eval(4.0, 2.0, 4.0, 5.0)).reason,
            VerdictReason::HurtsGlobal
        );
    }

    #[test]
    fn non_finite_and_negative_losses_score_zero() {
        let rule = ScoreRule::default();
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0] {
            let v = rule.judge(&eval(4.0, bad, 4.0, 3.0));
            assert_eq!((v.score, v.reason), (0.0, VerdictReason::NonFiniteLoss));
            let v = rule.judge(&eval(4.0, 3.0, bad, 3.0));
            assert_eq!(v.score, 0.0);
        }
        assert_eq!(
            rule.judge(&eval(0.0, 0.0, 4.0, 3.0)).reason,
            VerdictReason::NonFiniteLoss
        );
    }

    #[test]
    fn score_is_bounded_by_one_whatever_the_losses() {
        let rule = ScoreRule::default();
        for (ml, dl) in [(1e300, 0.0), (5.0, 0.0), (1e-300, 0.0)] {
            let v = rule.judge(&eval(ml, dl, 4.0, 4.0));
            assert!((0.0..=1.0).contains(&v.score), "{v:?}");
        }
    }
}
