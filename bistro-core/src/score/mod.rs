//! Scoring: from loss measurements to chain weights.
//!
//! The rule and the reasons for each of its parts are in `docs/incentive.md`.
//! In short: for each evaluation of a miner's delta the validator measures
//! the master's loss with and without the delta on the miner's own (local)
//! pages and on random (global) pages. [`ScoreRule::judge`] turns those four
//! numbers into a bounded, non-negative score, or zero with the reason;
//! [`MovingAverages`] keeps an exponential moving average per uid (only for
//! uids that were evaluated) and turns the averages into weights.
//!
//! [`yuma`] computes Yuma consensus clipping as the chain does it: the
//! consensus weight per miner and each validator's vtrust.
//!
//! Nothing here needs a model or a network: the rule is pure arithmetic on
//! public numbers, so anyone holding the evaluation log can recompute it.

mod averages;
mod rule;
pub mod yuma;

pub use averages::{MovingAverages, STATE_VERSION, UidRecord, next_average, weights_from_averages};
pub use rule::{
    Evaluation, LossPair, PageLosses, ScoreRule, Verdict, VerdictReason, mean_and_standard_error,
};
