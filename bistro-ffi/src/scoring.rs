//! Scoring, exactly as bistro's validators score: the rule that turns a
//! miner's per-page losses into a score and a merge decision, the moving
//! average of scores, the weights the averages give, and Yuma consensus
//! clipping (each validator's vtrust). Pure and thread-safe; the chain's
//! `u16` conversion of the weights is `bistro_weights_to_u16`.

use bistro_core::score::{
    Evaluation, PageLosses, ScoreRule, Verdict, VerdictReason, next_average, weights_from_averages,
    yuma,
};

use crate::ffi;
use crate::panic;
use crate::status::{Failure, FfiResult, bistro_status};

/// The parameters of the scoring rule (`docs/incentive.md`). Validators must
/// use the same ones for their weights to agree; get bistro's defaults from
/// `bistro_score_rule_default`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct bistro_score_rule {
    /// The mean local relative gain must be above this to count.
    pub min_local_gain: f64,
    /// The one-sided bound `min(specific_gain, local_gain) - z * specific_se`
    /// must be above this.
    pub min_specificity: f64,
    /// `z` of that bound (non-negative).
    pub confidence_z: f64,
    /// The global relative gain may be as low as `-max_global_harm` (non-negative).
    pub max_global_harm: f64,
    /// The global relative gain a delta must show to be merged: the miner's
    /// own work (merged and paid) unless `global_gain + z * se_global` is at
    /// or under it (then `BISTRO_VERDICT_NOT_MERGEABLE`), one that is not
    /// specific (merged, never paid) when `global_gain` is above it.
    pub min_merge_gain: f64,
}

impl From<ScoreRule> for bistro_score_rule {
    fn from(r: ScoreRule) -> Self {
        bistro_score_rule {
            min_local_gain: r.min_local_gain,
            min_specificity: r.min_specificity,
            confidence_z: r.confidence_z,
            max_global_harm: r.max_global_harm,
            min_merge_gain: r.min_merge_gain,
        }
    }
}

impl From<&bistro_score_rule> for ScoreRule {
    fn from(r: &bistro_score_rule) -> Self {
        ScoreRule {
            min_local_gain: r.min_local_gain,
            min_specificity: r.min_specificity,
            confidence_z: r.confidence_z,
            max_global_harm: r.max_global_harm,
            min_merge_gain: r.min_merge_gain,
        }
    }
}

/// Why an evaluation scored what it did: the `reason` of `bistro_verdict`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum bistro_verdict_reason {
    /// Passed every gate; the score is the local gain.
    BISTRO_VERDICT_SCORED = 0,
    /// A loss was NaN, infinite or negative, or the page lists were unusable
    /// (empty, or master and with-delta of different lengths).
    BISTRO_VERDICT_NON_FINITE_LOSS = 1,
    /// No mean gain on the miner's own pages above `min_local_gain`.
    BISTRO_VERDICT_NO_LOCAL_GAIN = 2,
    /// The gain on its own pages is not confidently above the gain on
    /// random pages (not trained on its window, or cannot tell).
    BISTRO_VERDICT_NOT_SPECIFIC = 3,
    /// Raised the loss on random pages by more than `max_global_harm`.
    BISTRO_VERDICT_HURTS_GLOBAL = 4,
    /// The miner's own work on its window, but confidently no help to
    /// random pages (the upper bound of the global gain is at or under
    /// `min_merge_gain`): not merged, so not paid.
    BISTRO_VERDICT_NOT_MERGEABLE = 5,
}

impl From<VerdictReason> for bistro_verdict_reason {
    fn from(r: VerdictReason) -> Self {
        match r {
            VerdictReason::Scored => Self::BISTRO_VERDICT_SCORED,
            VerdictReason::NonFiniteLoss => Self::BISTRO_VERDICT_NON_FINITE_LOSS,
            VerdictReason::NoLocalGain => Self::BISTRO_VERDICT_NO_LOCAL_GAIN,
            VerdictReason::NotSpecific => Self::BISTRO_VERDICT_NOT_SPECIFIC,
            VerdictReason::HurtsGlobal => Self::BISTRO_VERDICT_HURTS_GLOBAL,
            VerdictReason::NotMergeable => Self::BISTRO_VERDICT_NOT_MERGEABLE,
        }
    }
}

/// The outcome of `bistro_score_judge`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct bistro_verdict {
    /// The score, in [0, 1].
    pub score: f64,
    /// Why.
    pub reason: bistro_verdict_reason,
    /// Mean relative gain over the local pages (NaN when not finite).
    pub local_gain: f64,
    /// Mean relative gain over the global pages (NaN when not finite).
    pub global_gain: f64,
    /// `local_gain - global_gain` (NaN when not finite).
    pub specific_gain: f64,
    /// Standard error of `specific_gain`, from the per-page spreads
    /// (infinite with fewer than two pages on a side).
    pub specific_se: f64,
    /// Whether the delta may be merged into the next master.
    pub mergeable: bool,
}

impl From<Verdict> for bistro_verdict {
    fn from(v: Verdict) -> Self {
        bistro_verdict {
            score: v.score,
            reason: v.reason.into(),
            local_gain: v.local_gain,
            global_gain: v.global_gain,
            specific_gain: v.specific_gain,
            specific_se: v.specific_se,
            mergeable: v.mergeable,
        }
    }
}

/// Writes bistro's default scoring rule to `*rule_out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_score_rule_default(
    rule_out: *mut bistro_score_rule,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: one writable rule at `rule_out` (contract).
        let out = unsafe { ffi::out(rule_out, "rule_out") }?;
        out.write(ScoreRule::default().into());
        Ok(())
    })
}

/// Scores one miner's delta from per-page mean losses, as a validator does.
/// `local_master[i]` and `local_with_delta[i]` are the loss of the master
/// without and with the delta on the i-th page drawn from the miner's own
/// window (`local_len` pages); `global_*` the same on pages drawn from the
/// whole dataset. `rule` NULL means the default rule; a rule with a
/// non-finite or negative `confidence_z`/`max_global_harm` is refused with
/// BISTRO_ERR_INVALID_ARGUMENT. Losses that are not finite are not an error:
/// they give `BISTRO_VERDICT_NON_FINITE_LOSS` and score 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_score_judge(
    rule: *const bistro_score_rule,
    local_master: *const f64,
    local_with_delta: *const f64,
    local_len: usize,
    global_master: *const f64,
    global_with_delta: *const f64,
    global_len: usize,
    verdict_out: *mut bistro_verdict,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: the lengths given at each pointer, one rule (or NULL) and
        // one writable verdict (contract).
        let (rule, local, global, out) = unsafe {
            (
                ffi::arg_ref_opt(rule, "rule")?,
                page_losses(local_master, local_with_delta, local_len, "local")?,
                page_losses(global_master, global_with_delta, global_len, "global")?,
                ffi::out(verdict_out, "verdict_out")?,
            )
        };
        let rule = rule.map_or_else(ScoreRule::default, ScoreRule::from);
        rule.validate()?;
        out.write(rule.judge(&Evaluation { local, global }).into());
        Ok(())
    })
}

/// The two loss arrays of one side, copied.
///
/// # Safety
/// `len` readable elements at `master` and at `with_delta`.
unsafe fn page_losses(
    master: *const f64,
    with_delta: *const f64,
    len: usize,
    side: &str,
) -> FfiResult<PageLosses> {
    // SAFETY: forwarded contract.
    let (master, with_delta) = unsafe {
        (
            ffi::arg_slice(master, len, &format!("{side}_master"))?,
            ffi::arg_slice(with_delta, len, &format!("{side}_with_delta"))?,
        )
    };
    Ok(PageLosses {
        master: master.to_vec(),
        with_delta: with_delta.to_vec(),
    })
}

/// One step of a miner's moving average: `average + alpha * (score -
/// average)` to `*average_out` (a new uid starts from 0). `alpha` must be in
/// (0, 1], `average` and `score` in [0, 1].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_next_average(
    average: f64,
    score: f64,
    alpha: f64,
    average_out: *mut f64,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: one writable double at `average_out` (contract).
        let out = unsafe { ffi::out(average_out, "average_out") }?;
        out.write(next_average(average, score, alpha)?);
        Ok(())
    })
}

/// The weights `len` moving averages give: each positive average over the
/// sum of all, 0 for the others; all 0 when nobody has earned anything.
/// `weights_out` has room for `len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_weights_from_averages(
    averages: *const f64,
    len: usize,
    weights_out: *mut f64,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: `len` elements at each pointer (contract).
        let (averages, mut out) = unsafe {
            (
                ffi::arg_slice(averages, len, "averages")?,
                ffi::out_slice(weights_out, len, "weights_out")?,
            )
        };
        if let Some(bad) = averages.iter().find(|a| !(0.0..=1.0).contains(*a)) {
            return Err(Failure::invalid(format!("average {bad} is not in [0, 1]")));
        }
        out.copy_prefix(&weights_from_averages(averages));
        Ok(())
    })
}

/// The chain's default κ for `bistro_yuma_clip`: `Kappa` is a `u16` out of
/// 65535 and defaults to 32767 (core's `yuma::DEFAULT_KAPPA`; a literal, so
/// that the header carries the number).
pub const BISTRO_DEFAULT_KAPPA: f64 = 32_767.0 / 65_535.0;

/// Yuma consensus clipping, as the chain's epoch does it (in f64; the chain
/// uses 32.32 fixed point): `validators` stakes, and a `validators` ×
/// `miners` weight matrix, row-major (row i: validator i's weights, any
/// non-negative scale; rows are normalised). Writes each miner's consensus
/// weight (`consensus_out`, `miners` values), each validator's vtrust
/// (`vtrust_out`, `validators` values: 1 when it agrees with the consensus
/// on every miner) and, when `clipped_out` is not NULL, the normalised rows
/// clipped to the consensus (`validators` × `miners`, row-major). `kappa` in
/// [0, 1], `BISTRO_DEFAULT_KAPPA` on the chain. With no validators every
/// consensus weight is 0. Negative or non-finite numbers are refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_yuma_clip(
    stakes: *const f64,
    validators: usize,
    weights: *const f64,
    miners: usize,
    kappa: f64,
    consensus_out: *mut f64,
    vtrust_out: *mut f64,
    clipped_out: *mut f64,
) -> bistro_status {
    panic::guard(|| {
        let cells = validators
            .checked_mul(miners)
            .ok_or_else(|| Failure::invalid("validators × miners overflows"))?;
        // SAFETY: the lengths given at each pointer (contract); `clipped_out`
        // is NULL or has room for `cells`.
        let (stakes, weights, mut consensus_out, mut vtrust_out, clipped_out) = unsafe {
            (
                ffi::arg_slice(stakes, validators, "stakes")?,
                ffi::arg_slice(weights, cells, "weights")?,
                ffi::out_slice(consensus_out, miners, "consensus_out")?,
                ffi::out_slice(vtrust_out, validators, "vtrust_out")?,
                if clipped_out.is_null() {
                    None
                } else {
                    Some(ffi::out_slice(clipped_out, cells, "clipped_out")?)
                },
            )
        };
        let rows: Vec<Vec<f64>> = if miners == 0 {
            vec![Vec::new(); validators]
        } else {
            weights.chunks(miners).map(<[f64]>::to_vec).collect()
        };
        let result = yuma::clip_to_consensus(stakes, &rows, kappa)?;
        // No validator: no consensus on any miner (0), as the chain has it.
        let consensus = if validators == 0 {
            vec![0.0; miners]
        } else {
            result.consensus
        };
        consensus_out.copy_prefix(&consensus);
        vtrust_out.copy_prefix(&result.vtrust);
        if let Some(mut clipped_out) = clipped_out {
            clipped_out.copy_prefix(&result.clipped.concat());
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    // Every unsafe block calls an export with live locals of the stated
    // lengths (or deliberately NULL): the arguments are the safety argument.
    #![allow(clippy::undocumented_unsafe_blocks)]

    use super::*;
    use crate::status::bistro_status::*;

    fn judge(
        rule: Option<&bistro_score_rule>,
        local: [&[f64]; 2],
        global: [&[f64]; 2],
    ) -> (bistro_status, bistro_verdict) {
        let mut v = bistro_verdict {
            score: -1.0,
            reason: bistro_verdict_reason::BISTRO_VERDICT_SCORED,
            local_gain: 0.0,
            global_gain: 0.0,
            specific_gain: 0.0,
            specific_se: 0.0,
            mergeable: false,
        };
        let rule = rule.map_or(std::ptr::null(), |r| r as *const _);
        let status = unsafe {
            bistro_score_judge(
                rule,
                local[0].as_ptr(),
                local[1].as_ptr(),
                local[0].len().min(local[1].len()),
                global[0].as_ptr(),
                global[1].as_ptr(),
                global[0].len().min(global[1].len()),
                &mut v,
            )
        };
        (status, v)
    }

    #[test]
    fn judging_through_the_abi_is_the_cores_rule() {
        let master = [4.0, 4.2, 3.9, 4.1];
        let local = [3.6, 3.8, 3.5, 3.7];
        let global = [3.98, 4.19, 3.89, 4.09];
        let (status, v) = judge(None, [&master, &local], [&master, &global]);
        assert_eq!(status, BISTRO_OK);
        let core = ScoreRule::default().judge(&Evaluation {
            local: PageLosses {
                master: master.to_vec(),
                with_delta: local.to_vec(),
            },
            global: PageLosses {
                master: master.to_vec(),
                with_delta: global.to_vec(),
            },
        });
        assert_eq!(v, bistro_verdict::from(core));
        assert_eq!(v.reason, bistro_verdict_reason::BISTRO_VERDICT_SCORED);
        assert!(v.score > 0.05 && v.mergeable);
        // A non-finite loss is a verdict, not an error.
        let (status, v) = judge(
            None,
            [&master, &[f64::NAN, 1.0, 1.0, 1.0]],
            [&master, &global],
        );
        assert_eq!(status, BISTRO_OK);
        assert_eq!(
            v.reason,
            bistro_verdict_reason::BISTRO_VERDICT_NON_FINITE_LOSS
        );
        assert_eq!(v.score, 0.0);
        // An unusable rule is an error, and the verdict is not written.
        let mut rule = bistro_score_rule::from(ScoreRule::default());
        rule.confidence_z = f64::NAN;
        let (status, v) = judge(Some(&rule), [&master, &local], [&master, &global]);
        assert_eq!(status, BISTRO_ERR_INVALID_ARGUMENT);
        assert_eq!(v.score, -1.0);
        // A stricter rule than the default is used as given.
        rule.confidence_z = 1e6;
        let (_, v) = judge(Some(&rule), [&master, &local], [&master, &global]);
        assert_eq!(v.reason, bistro_verdict_reason::BISTRO_VERDICT_NOT_SPECIFIC);
    }

    #[test]
    fn averages_weights_and_consensus() {
        assert_eq!(BISTRO_DEFAULT_KAPPA, yuma::DEFAULT_KAPPA);
        let mut a = 0.0;
        assert_eq!(
            unsafe { bistro_next_average(0.2, 0.6, 0.5, &mut a) },
            BISTRO_OK
        );
        assert_eq!(a, 0.4);
        for (avg, score, alpha) in [(0.2, 1.5, 0.5), (0.2, 0.5, 0.0), (f64::NAN, 0.5, 0.5)] {
            let status = unsafe { bistro_next_average(avg, score, alpha, &mut a) };
            assert_eq!(status, BISTRO_ERR_INVALID_ARGUMENT);
        }
        assert_eq!(a, 0.4);

        let mut w = [9.0; 3];
        let status = unsafe {
            bistro_weights_from_averages([0.375, 0.0, 0.125].as_ptr(), 3, w.as_mut_ptr())
        };
        assert_eq!(status, BISTRO_OK);
        assert_eq!(w, [0.75, 0.0, 0.25]);
        let status =
            unsafe { bistro_weights_from_averages([0.3, -0.1].as_ptr(), 2, w.as_mut_ptr()) };
        assert_eq!(status, BISTRO_ERR_INVALID_ARGUMENT);

        // Two validators agree (60 % of the stake), one does not.
        let stakes = [60.0, 30.0, 10.0];
        let weights = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0];
        let (mut c, mut v, mut clipped) = ([0.0; 2], [0.0; 3], [0.0; 6]);
        let status = unsafe {
            bistro_yuma_clip(
                stakes.as_ptr(),
                3,
                weights.as_ptr(),
                2,
                BISTRO_DEFAULT_KAPPA,
                c.as_mut_ptr(),
                v.as_mut_ptr(),
                clipped.as_mut_ptr(),
            )
        };
        assert_eq!(status, BISTRO_OK);
        let rows = vec![vec![1.0, 0.0], vec![1.0, 0.0], vec![0.0, 1.0]];
        let core = yuma::clip_to_consensus(&stakes, &rows, BISTRO_DEFAULT_KAPPA).unwrap();
        assert_eq!(c.to_vec(), core.consensus);
        assert_eq!(v.to_vec(), core.vtrust);
        assert_eq!(clipped.to_vec(), core.clipped.concat());
        assert_eq!(v, [1.0, 1.0, 0.0]);
        // Without the clipped rows; a negative stake is refused.
        let status = unsafe {
            bistro_yuma_clip(
                stakes.as_ptr(),
                3,
                weights.as_ptr(),
                2,
                0.5,
                c.as_mut_ptr(),
                v.as_mut_ptr(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(status, BISTRO_OK);
        let status = unsafe {
            bistro_yuma_clip(
                [-1.0, 1.0, 1.0].as_ptr(),
                3,
                weights.as_ptr(),
                2,
                0.5,
                c.as_mut_ptr(),
                v.as_mut_ptr(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(status, BISTRO_ERR_INVALID_ARGUMENT);
        // No validator: every consensus weight is written, as 0.
        let mut c = [7.0; 2];
        let status = unsafe {
            bistro_yuma_clip(
                std::ptr::null(),
                0,
                std::ptr::null(),
                2,
                0.5,
                c.as_mut_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(status, BISTRO_OK);
        assert_eq!(c, [0.0, 0.0]);
    }
}
