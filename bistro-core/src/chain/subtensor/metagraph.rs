//! The metagraph from the runtime API `SubnetInfoRuntimeApi.get_metagraph`,
//! as the Python SDK reads it.
//!
//! The answer is decoded by field name (`DecodeAsType`), so fields the
//! runtime adds or reorders do not matter; only the ones below are read.

use subxt::ext::scale_decode::DecodeAsType;
use subxt::utils::AccountId32;

use crate::chain::metagraph::{Metagraph, Neuron};
use crate::error::{Error, Result};
use crate::identity::PublicKey;

/// The runtime API and method.
pub(crate) const API: (&str, &str) = ("SubnetInfoRuntimeApi", "get_metagraph");

/// The fields of the runtime's `Metagraph` that bistro uses.
#[derive(Debug, DecodeAsType)]
#[decode_as_type(crate_path = "::subxt::ext::scale_decode")]
pub(crate) struct RawMetagraph {
    pub netuid: u16,
    pub block: u64,
    pub hotkeys: Vec<AccountId32>,
    pub coldkeys: Vec<AccountId32>,
    pub active: Vec<bool>,
    pub validator_permit: Vec<bool>,
    pub last_update: Vec<u64>,
    pub block_at_registration: Vec<u64>,
    pub total_stake: Vec<u64>,
}

impl RawMetagraph {
    /// Checks the columns agree and builds the [`Metagraph`].
    pub fn into_metagraph(self, netuid: u16) -> Result<Metagraph> {
        let n = self.hotkeys.len();
        if n > usize::from(u16::MAX) + 1 {
            return Err(Error::Chain(format!(
                "metagraph of subnet {netuid} has {n} uids"
            )));
        }
        if self.netuid != netuid {
            return Err(Error::Chain(format!(
                "asked for the metagraph of subnet {netuid}, got subnet {}",
                self.netuid
            )));
        }
        let columns = [
            ("coldkeys", self.coldkeys.len()),
            ("active", self.active.len()),
            ("validator_permit", self.validator_permit.len()),
            ("last_update", self.last_update.len()),
            ("block_at_registration", self.block_at_registration.len()),
            ("total_stake", self.total_stake.len()),
        ];
        for (name, len) in columns {
            if len != n {
                return Err(Error::Chain(format!(
                    "metagraph of subnet {netuid}: {name} has {len} entries for {n} hotkeys"
                )));
            }
        }
        let neurons = (0..n)
            .map(|i| Neuron {
                uid: i as u16,
                hotkey: PublicKey(self.hotkeys[i].0),
                coldkey: PublicKey(self.coldkeys[i].0),
                stake: self.total_stake[i],
                validator_permit: self.validator_permit[i],
                last_update: self.last_update[i],
                registered_at: self.block_at_registration[i],
                active: self.active[i],
            })
            .collect();
        Ok(Metagraph {
            netuid,
            block: self.block,
            neurons,
        })
    }
}
