//! Commit-reveal weights on subtensor (features `subtensor` + `timelock`).
//!
//! What the official SDK does (`bittensor` 10.2 `core/extrinsics/weights.py`,
//! 11.3 `intents/weights.py`, with `bittensor-drand`), against the live
//! metadata:
//!
//! 1. read `Tempo[netuid]`, `RevealPeriodEpochs[netuid]`,
//!    `CommitRevealWeightsVersion` and the beacon (`Drand.BeaconConfig`:
//!    drand quicknet's key, genesis and period on Bittensor); on runtimes with
//!    the stateful epoch counter (`SubnetEpochIndex` in the metadata) also
//!    `LastEpochBlock`, `PendingEpochAt`, `SubnetEpochIndex`,
//!    `BlocksSinceLastStep`;
//! 2. the reveal round: [`reveal_round_v2`] when the counter exists, else
//!    [`reveal_round_v1`] (the modulo epoch rule);
//! 3. encrypt [`WeightsTlockPayload`] to it with `timelock::encrypt`;
//! 4. submit `commit_timelocked_mechanism_weights(netuid, 0, commit, round,
//!    version)` (or `commit_timelocked_weights` where the runtime lacks it).
//!
//! The chain reveals the commit itself in the reveal epoch and only logs a
//! failure, so [`Subtensor`] remembers each commit it made and
//! `Chain::weights_commit` later compares the `Weights` row and `LastUpdate`
//! with it: revealed, still pending, or dropped once the reveal epoch passed.

use std::time::{SystemTime, UNIX_EPOCH};

use subxt::ext::scale_decode::DecodeAsType;

use crate::chain::commit_reveal::{
    CommitReport, CommitStatus, EpochSchedule, SECURITY_BLOCK_OFFSET, WeightsTlockPayload,
    first_reveal_block_v1, predict_first_reveal_block,
};
use crate::chain::{BeaconKey, Chain, Signer};
use crate::error::{Error, Result};
use crate::identity::PublicKey;

use super::{Subtensor, calls};

/// `Drand.BeaconConfig`, the fields bistro reads.
#[derive(Debug, DecodeAsType)]
#[decode_as_type(crate_path = "::subxt::ext::scale_decode")]
struct RawBeaconConfig {
    public_key: Vec<u8>,
    period: u32,
    genesis_time: u32,
}

/// What a commit needs from the chain.
#[derive(Debug)]
struct Settings {
    head: u64,
    tempo: u16,
    reveal_period: u64,
    version: u16,
    beacon: RawBeaconConfig,
    /// `Some` on runtimes with the stateful epoch counter.
    schedule: Option<EpochSchedule>,
    mechanism_call: bool,
}

/// A neuron's weights row on the chain (uid, value) and its `LastUpdate`.
type ChainRow = (Vec<(u16, u16)>, u64);

/// A commit this connection made, remembered to check its reveal.
#[derive(Clone, Debug)]
pub(super) struct Tracked {
    report: CommitReport,
    uids: Vec<u16>,
    values: Vec<u16>,
    /// After this block the reveal epoch is over: not revealed means dropped.
    expires_after: u64,
}

/// The round of `beacon` at `blocks_ahead` blocks of `block_time_secs`
/// from `now` (the SDK's formula with the chain's recorded genesis and period).
fn round_after(beacon: &RawBeaconConfig, blocks_ahead: u64, block_time_secs: f64, now: f64) -> u64 {
    let period = f64::from(beacon.period.max(1));
    let target = now + blocks_ahead as f64 * block_time_secs;
    let round = ((target - f64::from(beacon.genesis_time)) / period).floor();
    if round < 1.0 { 1 } else { round as u64 }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Subtensor {
    /// Reads the settings of [`Settings`] at the latest finalized block.
    fn commit_settings(&self, netuid: u16) -> Result<Settings> {
        self.run(
            "reading the commit-reveal settings",
            self.config.request_timeout,
            true,
            |c| async move {
                use subxt::dynamic::storage;
                let at = c.client.at_current_block().await?;
                let md = at.metadata_ref();
                let v2 = ["SubnetEpochIndex", "LastEpochBlock", "PendingEpochAt"]
                    .iter()
                    .all(|n| calls::has_storage(md, "SubtensorModule", n));
                let mechanism_call = calls::has_call(md, calls::COMMIT_MECHANISM_CALL);
                let head = at.block_number();
                let st = at.storage();
                let tempo: u16 = st
                    .fetch(
                        storage::<(u16,), u16>("SubtensorModule", "Tempo"),
                        (netuid,),
                    )
                    .await?
                    .decode()?;
                let reveal_period: u64 = st
                    .fetch(
                        storage::<(u16,), u64>("SubtensorModule", "RevealPeriodEpochs"),
                        (netuid,),
                    )
                    .await?
                    .decode()?;
                let version: u16 = st
                    .fetch(
                        storage::<(), u16>("SubtensorModule", "CommitRevealWeightsVersion"),
                        (),
                    )
                    .await?
                    .decode()?;
                let beacon: RawBeaconConfig = st
                    .fetch(storage::<(), RawBeaconConfig>("Drand", "BeaconConfig"), ())
                    .await?
                    .decode()?;
                let schedule = if v2 {
                    let get = |name: &'static str| {
                        let st = at.storage();
                        async move {
                            st.fetch(storage::<(u16,), u64>("SubtensorModule", name), (netuid,))
                                .await?
                                .decode()
                                .map_err(subxt::Error::from)
                        }
                    };
                    Some(EpochSchedule {
                        last_epoch_block: get("LastEpochBlock").await?,
                        pending_epoch_at: get("PendingEpochAt").await?,
                        subnet_epoch_index: get("SubnetEpochIndex").await?,
                        tempo,
                        blocks_since_last_step: get("BlocksSinceLastStep").await?,
                        current_block: head,
                    })
                } else {
                    None
                };
                Ok(Settings {
                    head,
                    tempo,
                    reveal_period,
                    version,
                    beacon,
                    schedule,
                    mechanism_call,
                })
            },
        )
    }

    /// Commits `uids`/`values` timelocked (see the module documentation).
    pub(super) fn commit_weights(
        &self,
        netuid: u16,
        signer: &dyn Signer,
        uids: &[u16],
        values: &[u16],
        version_key: u64,
    ) -> Result<()> {
        let s = self.commit_settings(netuid)?;
        let key = BeaconKey::from_slice(&s.beacon.public_key)
            .map_err(|e| Error::Chain(format!("Drand.BeaconConfig: {e}")))?;
        let first_reveal = match &s.schedule {
            Some(schedule) => predict_first_reveal_block(schedule, s.reveal_period)?,
            None => first_reveal_block_v1(s.head, netuid, s.tempo, s.reveal_period),
        };
        let ahead = (first_reveal + SECURITY_BLOCK_OFFSET).saturating_sub(s.head);
        let block_time = self.block_time().as_secs_f64();
        let round = round_after(&s.beacon, ahead, block_time, now_secs());
        let hotkey = signer.public_key();
        let payload = WeightsTlockPayload {
            hotkey: hotkey.0.to_vec(),
            uids: uids.to_vec(),
            values: values.to_vec(),
            version_key,
        };
        let commit = crate::timelock::encrypt(
            &key,
            round,
            &payload.encode(),
            crate::timelock::random_seed()?,
        )?;
        if commit.len() > crate::chain::commit_reveal::MAX_COMMIT_BYTES {
            return Err(Error::limit(
                "weights commit bytes",
                crate::chain::commit_reveal::MAX_COMMIT_BYTES as u64,
                commit.len() as u64,
            ));
        }
        let call =
            calls::commit_timelocked_weights(s.mechanism_call, netuid, &commit, round, s.version);
        let what = if s.mechanism_call {
            calls::COMMIT_MECHANISM_CALL
        } else {
            calls::COMMIT_CALL
        };
        self.submit(what, call, signer)?;
        // The chain drops a commit once the epoch after its reveal epoch
        // starts; one more epoch of blocks is a safe horizon.
        let epoch = u64::from(s.tempo) + 1;
        let tracked = Tracked {
            report: CommitReport {
                block: s.head,
                reveal_round: round,
                reveal_block: first_reveal,
                status: CommitStatus::Pending,
            },
            uids: uids.to_vec(),
            values: values.to_vec(),
            expires_after: first_reveal + epoch,
        };
        self.commits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((netuid, hotkey.0), tracked);
        Ok(())
    }

    /// The status of the last commit this connection made for `hotkey`.
    pub(super) fn commit_status(
        &self,
        netuid: u16,
        hotkey: &PublicKey,
    ) -> Result<Option<CommitReport>> {
        let tracked = self
            .commits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(netuid, hotkey.0))
            .cloned();
        let Some(mut t) = tracked else {
            return Ok(None);
        };
        if t.report.status != CommitStatus::Pending {
            return Ok(Some(t.report));
        }
        let head = self.block()?.number;
        let seen = match self.uid_of(netuid, hotkey)? {
            Some(uid) => self.weights_row(netuid, uid)?,
            None => None,
        };
        let status = match seen {
            Some((row, last_update))
                if last_update > t.report.block && same_weights(&row, &t.uids, &t.values) =>
            {
                CommitStatus::Revealed { block: last_update }
            }
            _ if head > t.expires_after => CommitStatus::Dropped {
                block: t.expires_after,
                reason: format!(
                    "the weights committed at block {} were not set by block {} (the chain \
                     only logs why: check the payload, the version key and the validator \
                     permit)",
                    t.report.block, t.expires_after
                ),
            },
            _ => CommitStatus::Pending,
        };
        t.report.status = status;
        self.commits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((netuid, hotkey.0), t.clone());
        Ok(Some(t.report))
    }

    /// `Weights[(netuid, uid)]` and `LastUpdate[netuid][uid]`, if any.
    pub(super) fn weights_row(&self, netuid: u16, uid: u16) -> Result<Option<ChainRow>> {
        self.run(
            "reading Weights",
            self.config.request_timeout,
            true,
            |c| async move {
                use subxt::dynamic::storage;
                let at = c.client.at_current_block().await?;
                let st = at.storage();
                let row: Vec<(u16, u16)> = st
                    .fetch(
                        storage::<(u16, u16), Vec<(u16, u16)>>("SubtensorModule", "Weights"),
                        (netuid, uid),
                    )
                    .await?
                    .decode()?;
                let updates: Vec<u64> = st
                    .fetch(
                        storage::<(u16,), Vec<u64>>("SubtensorModule", "LastUpdate"),
                        (netuid,),
                    )
                    .await?
                    .decode()?;
                Ok(updates
                    .get(usize::from(uid))
                    .map(|&last_update| (row, last_update)))
            },
        )
    }
}

/// Whether the chain's row holds the committed weights: the same uids, and
/// the same shares up to the chain's rounding (it max-upscales to 65535).
fn same_weights(row: &[(u16, u16)], uids: &[u16], values: &[u16]) -> bool {
    let committed: Vec<(u16, u16)> = uids
        .iter()
        .copied()
        .zip(values.iter().copied())
        .filter(|&(_, v)| v > 0)
        .collect();
    let mut row: Vec<(u16, u16)> = row.iter().copied().filter(|&(_, v)| v > 0).collect();
    let mut committed = committed;
    row.sort_unstable();
    committed.sort_unstable();
    if row.len() != committed.len() || row.iter().zip(&committed).any(|(a, b)| a.0 != b.0) {
        return false;
    }
    let share = |list: &[(u16, u16)]| -> Vec<f64> {
        let max = list.iter().map(|&(_, v)| f64::from(v)).fold(0.0, f64::max);
        list.iter()
            .map(|&(_, v)| if max > 0.0 { f64::from(v) / max } else { 0.0 })
            .collect()
    };
    share(&row)
        .iter()
        .zip(share(&committed))
        .all(|(a, b)| (a - b).abs() <= 2.0 / 65535.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_match_up_to_the_chains_upscaling() {
        assert!(same_weights(
            &[(1, 65535), (2, 32768)],
            &[2, 1],
            &[500, 1000]
        ));
        assert!(!same_weights(&[(1, 65535)], &[1, 2], &[65535, 1]));
        assert!(!same_weights(&[(1, 65535), (3, 1)], &[1, 2], &[65535, 1]));
        assert!(!same_weights(
            &[(1, 65535), (2, 100)],
            &[1, 2],
            &[65535, 30000]
        ));
        assert!(same_weights(&[], &[1], &[0]));
    }

    #[test]
    fn rounds_follow_the_recorded_beacon() {
        let quicknet = RawBeaconConfig {
            public_key: vec![],
            period: 3,
            genesis_time: 1_692_803_367,
        };
        let now = 1_692_803_367.0 + 3001.0;
        assert_eq!(round_after(&quicknet, 55, 12.0, now), 1220);
        assert_eq!(round_after(&quicknet, 0, 12.0, 0.0), 1);
    }
}
