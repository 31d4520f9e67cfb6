//! The metagraph: who is registered on a subnet, with what stake and rights.

use serde::{Deserialize, Serialize};

use crate::identity::PublicKey;

/// Rao per TAO (and per alpha): balances on chain are integers of rao.
pub const RAO_PER_TAO: u64 = 1_000_000_000;

/// A block of the chain: its number and its 32-byte hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Block {
    /// The block number (height).
    pub number: u64,
    /// The block hash (BLAKE2-256 of the header on subtensor; derived from
    /// the genesis seed and the number on the [`LocalChain`](super::LocalChain)).
    pub hash: [u8; 32],
}

/// One registered neuron (a uid) of a subnet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neuron {
    /// Its uid on the subnet (an index, reused when a neuron is replaced).
    pub uid: u16,
    /// The hotkey that holds the uid: it signs weights and commitments.
    pub hotkey: PublicKey,
    /// The coldkey that owns the hotkey.
    pub coldkey: PublicKey,
    /// Stake behind the hotkey on this subnet, in rao (the chain's
    /// `total_stake`, denominated in the subnet's alpha).
    pub stake: u64,
    /// Whether the neuron may set weights as a validator.
    pub validator_permit: bool,
    /// The block at which the neuron last set weights (0 if never).
    pub last_update: u64,
    /// The block at which the hotkey registered this uid.
    pub registered_at: u64,
    /// Whether the chain counts the neuron as active.
    pub active: bool,
}

impl Neuron {
    /// The stake in TAO/alpha units (rao / 10⁹), for display.
    pub fn stake_tao(&self) -> f64 {
        self.stake as f64 / RAO_PER_TAO as f64
    }
}

/// The neurons of one subnet at one block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metagraph {
    /// The subnet.
    pub netuid: u16,
    /// The block the metagraph was read at.
    pub block: u64,
    /// The neurons, sorted by uid (uids are dense: `neurons[i].uid == i`).
    pub neurons: Vec<Neuron>,
}

impl Metagraph {
    /// The uid held by `hotkey`, if it is registered.
    pub fn uid_of(&self, hotkey: &PublicKey) -> Option<u16> {
        self.neurons
            .iter()
            .find(|n| &n.hotkey == hotkey)
            .map(|n| n.uid)
    }

    /// The hotkey holding `uid`, if the uid exists.
    pub fn hotkey_of(&self, uid: u16) -> Option<PublicKey> {
        self.neuron(uid).map(|n| n.hotkey)
    }

    /// The neuron with this uid.
    pub fn neuron(&self, uid: u16) -> Option<&Neuron> {
        self.neurons.get(usize::from(uid)).filter(|n| n.uid == uid)
    }

    /// The number of registered uids.
    pub fn len(&self) -> usize {
        self.neurons.len()
    }

    /// Whether no uid is registered.
    pub fn is_empty(&self) -> bool {
        self.neurons.is_empty()
    }

    /// The neurons with a validator permit.
    pub fn validators(&self) -> impl Iterator<Item = &Neuron> {
        self.neurons.iter().filter(|n| n.validator_permit)
    }

    /// The uids of all neurons, in order.
    pub fn uids(&self) -> Vec<u16> {
        self.neurons.iter().map(|n| n.uid).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neuron(uid: u16, key: u8, permit: bool) -> Neuron {
        Neuron {
            uid,
            hotkey: PublicKey([key; 32]),
            coldkey: PublicKey([key.wrapping_add(100); 32]),
            stake: u64::from(key) * RAO_PER_TAO,
            validator_permit: permit,
            last_update: 0,
            registered_at: 0,
            active: true,
        }
    }

    #[test]
    fn lookups_by_uid_and_hotkey() {
        let mg = Metagraph {
            netuid: 3,
            block: 10,
            neurons: vec![neuron(0, 7, true), neuron(1, 9, false)],
        };
        assert_eq!(mg.uid_of(&PublicKey([9; 32])), Some(1));
        assert_eq!(mg.uid_of(&PublicKey([1; 32])), None);
        assert_eq!(mg.hotkey_of(0), Some(PublicKey([7; 32])));
        assert_eq!(mg.hotkey_of(2), None);
        assert_eq!(mg.validators().map(|n| n.uid).collect::<Vec<_>>(), [0]);
        assert_eq!(mg.neuron(1).unwrap().stake_tao(), 9.0);
        assert_eq!(mg.uids(), [0, 1]);
    }
}
