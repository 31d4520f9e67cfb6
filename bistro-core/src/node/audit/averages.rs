//! Replaying a validator's moving averages from its published logs, and
//! checking them against every record, its published state and the
//! weights the chain holds for it.

use std::collections::BTreeMap;

use super::WeightsCheck;
use super::findings::{FindingKind, Findings, close};
use crate::chain::Chain;
use crate::chain::weights::to_u16;
use crate::error::Result;
use crate::identity::PublicKey;
use crate::node::log::EvalRecord;
use crate::node::validator::ValidatorState;
use crate::score::MovingAverages;

/// How far a published average may be from the replayed one: both come
/// from the same arithmetic on the same numbers, so only the last bit.
const AVERAGE_TOLERANCE: f64 = 1e-12;

/// Replays every record's score into moving averages of smoothing `alpha`
/// (a validator's own failure leaves the average as it was), checks each
/// record's `average`, and returns the averages after each deadline.
pub(super) fn replay(
    logs: &BTreeMap<u64, Vec<EvalRecord>>,
    alpha: f64,
    findings: &mut Findings,
) -> Result<Vec<(u64, MovingAverages)>> {
    let mut averages = MovingAverages::new(alpha)?;
    let mut history = Vec::with_capacity(logs.len());
    for (&deadline, records) in logs {
        for r in records {
            let at = (Some(deadline), Some(r.uid));
            let validators_fault = r
                .rejection
                .as_ref()
                .is_some_and(|x| x.is_validators_fault());
            if !validators_fault && let Err(e) = averages.record(r.uid, r.hotkey, deadline, r.score)
            {
                findings.push(FindingKind::Differs, at, "score", r.score, e);
                continue;
            }
            let replayed = averages
                .get(r.uid)
                .filter(|a| a.hotkey == r.hotkey)
                .map_or(0.0, |a| a.average);
            if !close(r.average, replayed, AVERAGE_TOLERANCE) {
                findings.push(FindingKind::Differs, at, "average", r.average, replayed);
            }
        }
        history.push((deadline, averages.clone()));
    }
    Ok(history)
}

/// The weights, in the chain's `u16` form, that `averages` give for the
/// uids `registered` now (what the validator sets: `MovingAverages::weights`
/// through `Chain::set_float_weights`), as sorted `(uid, value)` pairs.
fn expected_weights(
    averages: &MovingAverages,
    registered: &[(u16, PublicKey)],
) -> Result<Vec<(u16, u16)>> {
    let mut averages = averages.clone();
    averages.retain_registered(registered);
    let weights = averages.weights();
    let uids: Vec<u16> = weights.iter().map(|w| w.0).collect();
    let values: Vec<f32> = weights.iter().map(|w| w.1 as f32).collect();
    let (uids, values) = to_u16(&uids, &values)?;
    Ok(nonzero_sorted(uids.into_iter().zip(values)))
}

fn nonzero_sorted(pairs: impl Iterator<Item = (u16, u16)>) -> Vec<(u16, u16)> {
    let mut pairs: Vec<(u16, u16)> = pairs.filter(|p| p.1 > 0).collect();
    pairs.sort_unstable();
    pairs
}

/// Compares the weights the chain holds for `validator` with those the
/// replayed averages give after some deadline no later than the block they
/// were set at (on a subnet with commit-reveal they show up later than
/// they were set, so the newest such deadline is not always theirs).
pub(super) fn check_weights(
    chain: &dyn Chain,
    netuid: u16,
    validator: &PublicKey,
    history: &[(u64, MovingAverages)],
    registered: &[(u16, PublicKey)],
    findings: &mut Findings,
) -> Result<WeightsCheck> {
    let Some(row) = chain.weights_of(netuid, validator)? else {
        return Ok(WeightsCheck::NotShown);
    };
    let on_chain = nonzero_sorted(row.uids.iter().copied().zip(row.values.iter().copied()));
    let mut newest = None;
    // The uids the replay holds under each hotkey: a uid registered anew
    // since the weights were set may be left out by today's metagraph but
    // not yet by the chain's row, so both sets are tried.
    for (deadline, averages) in history.iter().rev().filter(|(d, _)| *d <= row.block) {
        let as_replayed: Vec<(u16, PublicKey)> =
            averages.records().map(|(uid, r)| (uid, r.hotkey)).collect();
        let expected = expected_weights(averages, registered)?;
        if expected == on_chain || expected_weights(averages, &as_replayed)? == on_chain {
            return Ok(WeightsCheck::Matches {
                deadline: *deadline,
                block: row.block,
            });
        }
        newest.get_or_insert(expected);
    }
    findings.push(
        FindingKind::Differs,
        (None, None),
        format!("weights (set at block {})", row.block),
        format!("{on_chain:?}"),
        match newest {
            Some(expected) => format!("{expected:?} (the newest round's averages before them)"),
            None => "no published round before them".to_string(),
        },
    );
    Ok(WeightsCheck::Differs { block: row.block })
}

/// Compares the validator's published state (its averages after its last
/// round) with the replayed averages of that round.
pub(super) fn check_state(
    state: &ValidatorState,
    history: &[(u64, MovingAverages)],
    findings: &mut Findings,
) {
    let Some(last) = state.last_deadline else {
        return;
    };
    let Some((_, replayed)) = history.iter().find(|(d, _)| *d == last) else {
        return;
    };
    let published: BTreeMap<u16, (PublicKey, f64)> = state
        .averages
        .records()
        .map(|(uid, r)| (uid, (r.hotkey, r.average)))
        .collect();
    for (uid, r) in replayed.records() {
        let at = (Some(last), Some(uid));
        // A uid re-registered or deregistered since is dropped from the
        // state at the validator's next round: not a difference.
        if let Some(&(hotkey, average)) = published.get(&uid)
            && hotkey == r.hotkey
            && !close(average, r.average, AVERAGE_TOLERANCE)
        {
            findings.push(
                FindingKind::Differs,
                at,
                "state.json average",
                average,
                r.average,
            );
        }
    }
    for (uid, (_, average)) in &published {
        if replayed.get(*uid).is_none() {
            findings.push(
                FindingKind::Differs,
                (Some(last), Some(*uid)),
                "state.json average",
                average,
                "no record of the uid in the published logs",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::node::rejection::Rejection;
    use crate::score::ScoreRule;

    fn record(deadline: u64, uid: u16, score: f64, average: f64) -> EvalRecord {
        EvalRecord {
            validator: PublicKey([9; 32]),
            deadline,
            reveal_block: deadline + 2,
            reveal_hash: "00".repeat(32),
            master_revision: Digest::of(b"m"),
            master_block: 0,
            lead: None,
            uid,
            hotkey: PublicKey([uid as u8; 32]),
            delta_key: None,
            delta_size: None,
            object_digest: None,
            delta_digest: None,
            local_pages: vec![],
            global_pages: vec![],
            explained: None,
            evaluation: None,
            verdict: None,
            local_gain: None,
            global_gain: None,
            specific_gain: None,
            specific_se: None,
            rejection: None,
            score,
            average,
            mergeable: false,
            restored_exact: None,
            rule: ScoreRule::default(),
            params: None,
            timings_ms: Default::default(),
        }
    }

    #[test]
    fn replayed_averages_check_every_record_and_skip_the_validators_faults() {
        let alpha = 0.5;
        let mut fault = record(20, 1, 0.0, 0.25);
        fault.rejection = Some(Rejection::ValidatorError("disk".into()));
        let logs = BTreeMap::from([
            (10, vec![record(10, 1, 0.5, 0.25), record(10, 2, 0.0, 0.0)]),
            // uid 1's average stays at 0.25; uid 2's published one is doctored.
            (20, vec![fault, record(20, 2, 1.0, 0.75)]),
        ]);
        let mut findings = Findings::default();
        let history = replay(&logs, alpha, &mut findings).unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(findings.0.len(), 1, "{:?}", findings.0);
        let f = &findings.0[0];
        assert_eq!(
            (f.deadline, f.uid, f.field.as_str()),
            (Some(20), Some(2), "average")
        );
        assert_eq!(
            (f.published.as_str(), f.recomputed.as_str()),
            ("0.75", "0.5")
        );
        assert_eq!(history[1].1.get(1).unwrap().average, 0.25);
    }

    #[test]
    fn expected_weights_are_the_chain_form_of_the_registered_averages() {
        let logs = BTreeMap::from([(
            10,
            vec![
                record(10, 1, 1.0, 0.5),
                record(10, 2, 0.5, 0.25),
                record(10, 3, 1.0, 0.5),
            ],
        )]);
        let mut findings = Findings::default();
        let history = replay(&logs, 0.5, &mut findings).unwrap();
        assert!(findings.0.is_empty());
        // uid 3 was taken by another hotkey since: left out, as the
        // validator's `retain_registered` leaves it out.
        let registered = [
            (1, PublicKey([1; 32])),
            (2, PublicKey([2; 32])),
            (3, PublicKey([99; 32])),
        ];
        let expected = expected_weights(&history[0].1, &registered).unwrap();
        assert_eq!(expected, vec![(1, 65535), (2, 32768)]);
    }
}
