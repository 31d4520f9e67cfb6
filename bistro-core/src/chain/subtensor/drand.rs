//! The timelock beacon subtensor records in its `Drand` pallet: drand
//! quicknet's configuration (`Drand.BeaconConfig`), the pulses it stored
//! (`Drand.Pulses[round]`) and the newest stored round
//! (`Drand.LastStoredRound`). Read with dynamic storage queries and decoded
//! from `scale_value::Value`s shaped by the live metadata:
//!
//! - `BeaconConfig: BeaconConfiguration { public_key: BoundedVec<u8, 96>,
//!   period: u32, genesis_time: u32, hash, group_hash, scheme_id, metadata }`
//!   (a `ValueQuery` whose default is quicknet's configuration);
//! - `Pulses: map u64 (Blake2_128Concat) => Pulse { round: u64,
//!   randomness: BoundedVec<u8, 32>, signature: BoundedVec<u8, 144> }`;
//! - `LastStoredRound: u64` (zero before the first pulse).

use subxt::dynamic::Value;
use subxt::ext::scale_value::{Primitive, ValueDef};

use super::Subtensor;
use super::calls::{bytes_of, field};
use crate::chain::beacon::{BEACON_KEY_LEN, BeaconKey, Pulse, SIGNATURE_LEN};
use crate::error::{Error, Result};

/// The pallet's name in the runtime.
pub(crate) const PALLET: &str = "Drand";

impl Subtensor {
    /// `Drand.BeaconConfig`'s public key at the latest finalized block;
    /// `None` when the runtime has no `Drand` pallet or the key is empty.
    pub(super) fn drand_beacon(&self) -> Result<Option<BeaconKey>> {
        let config = self.run(
            "reading Drand.BeaconConfig",
            self.config.request_timeout,
            true,
            |c| async move {
                let at = c.client.at_current_block().await?;
                if at.metadata_ref().pallet_by_name(PALLET).is_none() {
                    return Ok(None);
                }
                let addr = subxt::dynamic::storage::<(), Value>(PALLET, "BeaconConfig");
                Ok(Some(at.storage().fetch(addr, ()).await?.decode()?))
            },
        )?;
        config
            .map(|c| beacon_key(&c))
            .transpose()
            .map(Option::flatten)
    }

    /// `Drand.Pulses[round]` at the latest finalized block.
    pub(super) fn drand_pulse(&self, round: u64) -> Result<Option<Pulse>> {
        let record = self.run(
            "reading Drand.Pulses",
            self.config.request_timeout,
            true,
            |c| async move {
                let at = c.client.at_current_block().await?;
                if at.metadata_ref().pallet_by_name(PALLET).is_none() {
                    return Ok(None);
                }
                let addr = subxt::dynamic::storage::<(u64,), Value>(PALLET, "Pulses");
                Ok(match at.storage().try_fetch(addr, (round,)).await? {
                    Some(v) => Some(v.decode()?),
                    None => None,
                })
            },
        )?;
        record.map(|r| pulse(&r, round)).transpose()
    }

    /// `Drand.LastStoredRound` at finalized block `block`; `None` if that
    /// block is not finalized yet or the runtime has no `Drand` pallet.
    pub(super) fn drand_round_at(&self, block: u64) -> Result<Option<u64>> {
        if block > crate::chain::Chain::block(self)?.number {
            return Ok(None);
        }
        self.run(
            "reading Drand.LastStoredRound",
            self.config.request_timeout,
            true,
            |c| async move {
                let at = c.client.at_block(block).await?;
                if at.metadata_ref().pallet_by_name(PALLET).is_none() {
                    return Ok(None);
                }
                let addr = subxt::dynamic::storage::<(), u64>(PALLET, "LastStoredRound");
                Ok(Some(at.storage().fetch(addr, ()).await?.decode()?))
            },
        )
    }
}

/// The beacon key of a `BeaconConfiguration` value: `None` if empty, an
/// error if it is not 96 bytes.
pub(crate) fn beacon_key(config: &Value) -> Result<Option<BeaconKey>> {
    let bad = |why: String| Error::Chain(format!("unexpected Drand.BeaconConfig: {why}"));
    let key = field(config, "public_key").ok_or_else(|| bad("no `public_key`".into()))?;
    let bytes = bytes_of(key).ok_or_else(|| bad("`public_key` is not bytes".into()))?;
    if bytes.is_empty() {
        return Ok(None);
    }
    if bytes.len() != BEACON_KEY_LEN {
        return Err(bad(format!(
            "a public key of {} bytes (a G2 key is {BEACON_KEY_LEN}; is this drand's G1-key mainnet?)",
            bytes.len()
        )));
    }
    BeaconKey::from_slice(&bytes).map(Some)
}

/// The pulse of a `Pulse` value stored under `round`.
pub(crate) fn pulse(record: &Value, round: u64) -> Result<Pulse> {
    let bad = |why: String| Error::Chain(format!("unexpected Drand.Pulses[{round}]: {why}"));
    let stored_round = field(record, "round")
        .and_then(|v| match &v.value {
            ValueDef::Primitive(Primitive::U128(n)) => u64::try_from(*n).ok(),
            _ => None,
        })
        .ok_or_else(|| bad("no u64 `round`".into()))?;
    if stored_round != round {
        return Err(bad(format!("it says round {stored_round}")));
    }
    let signature = field(record, "signature")
        .and_then(bytes_of)
        .ok_or_else(|| bad("`signature` is not bytes".into()))?;
    let signature: [u8; SIGNATURE_LEN] = signature.as_slice().try_into().map_err(|_| {
        bad(format!(
            "a signature of {} bytes, not {SIGNATURE_LEN}",
            signature.len()
        ))
    })?;
    Ok(Pulse { round, signature })
}
