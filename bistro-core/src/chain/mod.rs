//! The chain: blocks, the metagraph, commitments and weights.
//!
//! Miners and validators need little from the chain, and all of it is in the
//! synchronous [`Chain`] trait: the current block and the hash of any past
//! block (page selection is seeded by block hashes), the [`Metagraph`] of a
//! subnet, a hotkey's *commitment* (how a miner publishes where its deltas
//! are), setting weights, and the chain's timelock *beacon* ([`beacon`]: its
//! key and the pulses it recorded, which open data sealed to a round).
//!
//! Two implementations:
//!
//! - [`LocalChain`] (always built): an embedded chain whose state lives in a
//!   directory that the processes of a local network share, with blocks on a
//!   configurable clock. The demo and the tests use it.
//! - `Subtensor` (feature `subtensor`): Bittensor's chain through `subxt`,
//!   reading the live runtime metadata at connect time.
//!
//! Around them: [`weights`] (float weights to the chain's `u16` form, exactly
//! as the Python SDK does), [`wallet`] (Bittensor wallet files),
//! [`network`] (network names and endpoints).
//!
//! The full description, with what was and was not tested against a live
//! chain, is `docs/chain.md`.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::identity::{PublicKey, Signature};

pub mod beacon;
pub mod commit_reveal;
pub mod local;
pub mod metagraph;
pub mod network;
pub mod wallet;
pub mod weights;

#[cfg(feature = "subtensor")]
pub mod subtensor;

pub use beacon::{BeaconKey, Pulse};
pub use local::{LocalChain, LocalChainConfig};
pub use metagraph::{Block, Metagraph, Neuron, RAO_PER_TAO};
pub use network::Network;

#[cfg(feature = "subtensor")]
pub use subtensor::{Subtensor, SubtensorConfig};

/// The largest commitment, in bytes, that [`Chain::set_commitment`] accepts:
/// the `BigRaw` field of Bittensor's `Commitments` pallet. (Up to 384 bytes
/// are written as `Raw` fields of 128, which every reader understands.)
pub const MAX_COMMITMENT_BYTES: usize = 512;

/// Something that can sign for a hotkey: a [`Keypair`](crate::Keypair) (with
/// feature `sr25519`), or anything else that makes Substrate sr25519
/// signatures (signing context `substrate`).
pub trait Signer: Send + Sync {
    /// The hotkey this signer signs for.
    fn public_key(&self) -> PublicKey;
    /// Signs `message` with the hotkey.
    fn sign(&self, message: &[u8]) -> Signature;
}

#[cfg(feature = "sr25519")]
impl Signer for crate::identity::Keypair {
    fn public_key(&self) -> PublicKey {
        self.public()
    }

    fn sign(&self, message: &[u8]) -> Signature {
        crate::identity::Keypair::sign(self, message)
    }
}

/// What miners and validators need from a chain. All methods block.
///
/// Errors: [`Error::Network`] when the chain cannot be reached (`transient`
/// when a retry may help), [`Error::Chain`] when it refuses a call or answers
/// something unexpected, [`Error::InvalidArgument`] for bad arguments.
pub trait Chain: Send + Sync {
    /// The latest block (on subtensor: the latest *finalized* block, so that
    /// every participant sees the same hash).
    fn block(&self) -> Result<Block>;

    /// The hash of block `number`, or `None` if that block does not exist
    /// yet (on subtensor: is not finalized yet).
    fn block_hash(&self, number: u64) -> Result<Option<[u8; 32]>>;

    /// The metagraph of subnet `netuid` at the latest block.
    /// [`Error::NotFound`] if the subnet does not exist.
    fn metagraph(&self, netuid: u16) -> Result<Metagraph>;

    /// The commitment `hotkey` published on subnet `netuid`, if any.
    fn commitment(&self, netuid: u16, hotkey: &PublicKey) -> Result<Option<Vec<u8>>>;

    /// Publishes `data` (at most [`MAX_COMMITMENT_BYTES`]) as the signer's
    /// commitment on subnet `netuid`. The hotkey must be registered there.
    fn set_commitment(&self, netuid: u16, signer: &dyn Signer, data: &[u8]) -> Result<()>;

    /// Sets the signer's weights on subnet `netuid`: `weights[i]` for
    /// `uids[i]`, in the chain's `u16` form (see [`weights::to_u16`]).
    ///
    /// On a subnet with commit-reveal the weights are *committed*, timelocked
    /// to the reveal round ([`commit_reveal`]), and become visible only when
    /// the chain reveals them; [`Chain::weights_commit`] says later whether
    /// that happened. (`Subtensor` needs feature `timelock` for this and
    /// fails with [`Error::Chain`] without it.)
    fn set_weights(
        &self,
        netuid: u16,
        signer: &dyn Signer,
        uids: &[u16],
        weights: &[u16],
        version_key: u64,
    ) -> Result<()>;

    /// The expected time between blocks (12 s on subtensor).
    fn block_time(&self) -> Duration;

    /// The signer's latest weights commit on subnet `netuid` made through
    /// this chain, with its status now: pending, revealed, or dropped (never
    /// revealed). Cheap and non-blocking, so a validator can check its last
    /// commit at its next round. `None` if there is none (or the chain does
    /// not track commits: the default).
    fn weights_commit(
        &self,
        netuid: u16,
        hotkey: &PublicKey,
    ) -> Result<Option<commit_reveal::CommitReport>> {
        let _ = (netuid, hotkey);
        Ok(None)
    }

    /// The weights `hotkey` holds on subnet `netuid` now, as the chain
    /// stores them (on a subnet with commit-reveal, the last revealed ones),
    /// so anyone can compare a validator's published averages with what it
    /// set. `None` if it holds none, or the chain cannot tell (the default).
    fn weights_of(&self, netuid: u16, hotkey: &PublicKey) -> Result<Option<weights::ChainWeights>> {
        let _ = (netuid, hotkey);
        Ok(None)
    }

    /// The timelock beacon the chain records (drand quicknet on subtensor,
    /// the chain's own beacon on [`LocalChain`]); `None` if it has none.
    /// The default: none.
    fn beacon(&self) -> Result<Option<BeaconKey>> {
        Ok(None)
    }

    /// The pulse for `round` if the chain has recorded it (subtensor: storage
    /// `Drand.Pulses[round]`); `None` if not (yet). The chain's word is not
    /// checked here: `timelock::verify_pulse` checks a pulse against the key.
    /// The default: none.
    fn pulse(&self, round: u64) -> Result<Option<Pulse>> {
        let _ = round;
        Ok(None)
    }

    /// The newest beacon round the chain had recorded at block `block`
    /// (subtensor: `Drand.LastStoredRound` at that block's hash); `None` if
    /// the block does not exist yet, or the chain has no beacon (the default).
    fn beacon_round_at(&self, block: u64) -> Result<Option<u64>> {
        let _ = block;
        Ok(None)
    }

    /// Waits until block `number` exists and returns the latest block then.
    /// Polls [`Chain::block`]; gives [`Error::Unavailable`] after `timeout`.
    fn wait_for_block(&self, number: u64, timeout: Duration) -> Result<Block> {
        let start = Instant::now();
        let poll = (self.block_time() / 4).clamp(Duration::from_millis(5), Duration::from_secs(2));
        loop {
            let block = self.block()?;
            if block.number >= number {
                return Ok(block);
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(Error::Unavailable(format!(
                    "block {number} not reached within {timeout:?} (the chain is at {})",
                    block.number
                )));
            }
            std::thread::sleep(poll.min(timeout - waited));
        }
    }

    /// Converts float weights with [`weights::to_u16`] and sets them.
    /// [`Error::InvalidArgument`] if every weight is zero (nothing to set).
    fn set_float_weights(
        &self,
        netuid: u16,
        signer: &dyn Signer,
        uids: &[u16],
        weights: &[f32],
        version_key: u64,
    ) -> Result<()> {
        let (uids, values) = weights::to_u16(uids, weights)?;
        if uids.is_empty() {
            return Err(Error::InvalidArgument(
                "all weights are zero: nothing to set".into(),
            ));
        }
        self.set_weights(netuid, signer, &uids, &values, version_key)
    }
}

/// A chain behind a smart pointer (`Arc<dyn Chain>`, `Box<LocalChain>`, ...)
/// is a chain: every method forwards to the pointee.
macro_rules! forward_chain {
    ($($pointer:ident)::+) => {
        impl<C: Chain + ?Sized> Chain for $($pointer)::+<C> {
            fn block(&self) -> Result<Block> {
                (**self).block()
            }
            fn block_hash(&self, number: u64) -> Result<Option<[u8; 32]>> {
                (**self).block_hash(number)
            }
            fn metagraph(&self, netuid: u16) -> Result<Metagraph> {
                (**self).metagraph(netuid)
            }
            fn commitment(&self, netuid: u16, hotkey: &PublicKey) -> Result<Option<Vec<u8>>> {
                (**self).commitment(netuid, hotkey)
            }
            fn set_commitment(&self, netuid: u16, signer: &dyn Signer, data: &[u8]) -> Result<()> {
                (**self).set_commitment(netuid, signer, data)
            }
            fn set_weights(
                &self,
                netuid: u16,
                signer: &dyn Signer,
                uids: &[u16],
                weights: &[u16],
                version_key: u64,
            ) -> Result<()> {
                (**self).set_weights(netuid, signer, uids, weights, version_key)
            }
            fn block_time(&self) -> Duration {
                (**self).block_time()
            }
            fn weights_commit(
                &self,
                netuid: u16,
                hotkey: &PublicKey,
            ) -> Result<Option<commit_reveal::CommitReport>> {
                (**self).weights_commit(netuid, hotkey)
            }
            fn weights_of(
                &self,
                netuid: u16,
                hotkey: &PublicKey,
            ) -> Result<Option<weights::ChainWeights>> {
                (**self).weights_of(netuid, hotkey)
            }
            fn beacon(&self) -> Result<Option<BeaconKey>> {
                (**self).beacon()
            }
            fn pulse(&self, round: u64) -> Result<Option<Pulse>> {
                (**self).pulse(round)
            }
            fn beacon_round_at(&self, block: u64) -> Result<Option<u64>> {
                (**self).beacon_round_at(block)
            }
        }
    };
}

forward_chain!(std::sync::Arc);
forward_chain!(Box);

/// The error for a subnet that uses commit-reveal when bistro was built
/// without feature `timelock` (it cannot encrypt the commit).
#[cfg(all(feature = "subtensor", not(feature = "timelock")))]
pub(crate) fn commit_reveal_error(netuid: u16) -> Error {
    Error::Chain(format!(
        "subnet {netuid} uses commit-reveal for weights (CommitRevealWeightsEnabled): \
         set_weights is refused there, and this build of bistro cannot commit weights; \
         build it with feature `timelock` (included in `full`)"
    ))
}
