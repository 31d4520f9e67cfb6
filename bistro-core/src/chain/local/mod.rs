//! [`LocalChain`]: an embedded chain for a local network and for tests.
//!
//! Its state is a directory that every process of a local network opens:
//! `chain.json` (the state, JSON) and `chain.lock` (the writers' lock). See
//! the private `store` module for how changes stay atomic across processes and threads.
//!
//! - **Blocks** advance with the wall clock, one every `block_time` from the
//!   genesis time, plus any blocks added with [`LocalChain::advance`]; with a
//!   zero `block_time` they advance only by `advance` (what tests use).
//! - **Block hashes** are BLAKE3 (derive-key mode) of the genesis seed and
//!   the block number: deterministic, and the same in every process.
//! - **Subnets** are added with [`LocalChain::add_subnet`]; hotkeys register
//!   with [`LocalChain::register`] and get the next uid (no replacement when
//!   full: registering then fails). Validator permits go to the
//!   `max_validators` hotkeys with the most stake.
//! - **Weights** and **commitments** follow subtensor's rules where bistro
//!   relies on them (registered hotkeys only, a validator permit to set
//!   weights on others, no duplicate or unknown uids). Rate limits,
//!   emissions and consensus are not simulated.
//! - **Commit-reveal** (on by default, as on subtensor): `set_weights`
//!   checks the weights, then stores a commit encrypted (feature `timelock`)
//!   to the chain's own beacon for the reveal round, computed with subtensor's
//!   epoch rule and a local tempo of [`LOCAL_TEMPO`] blocks, a reveal period
//!   of [`LOCAL_REVEAL_PERIOD_EPOCHS`] epoch; once the chain reaches that
//!   round, it decrypts the commit with its pulse and sets the weights (at
//!   the reveal block). Until then [`LocalChain::weights`] does not show
//!   them. Reveals are applied by whoever next reads or writes the state.
//! - Signatures are not checked: the processes sharing a directory trust
//!   each other; the chain records what the [`Signer`]'s public key did.
//! - **Beacon** (feature `timelock`): the chain has its own timelock beacon,
//!   a `LocalBeacon` whose key is derived from the genesis seed (so every
//!   process sharing the directory agrees), and its rounds *are* its blocks:
//!   the pulse for round `r` exists once block `r` does. It simulates the
//!   timing of drand on subtensor, not its secrecy: anyone who reads
//!   `chain.json` can compute any pulse. Without the feature the chain has no
//!   beacon (`beacon` and `pulse` answer `None`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::chain::commit_reveal::{CommitReport, MAX_COMMIT_BYTES, WeightsTlockPayload};
use crate::chain::{BeaconKey, Block, Chain, Metagraph, Pulse, Signer};
use crate::error::{Error, Result};
use crate::identity::PublicKey;

mod state;
mod store;

/// The local chain's tempo for commit-reveal: an epoch is `LOCAL_TEMPO + 1`
/// = 5 blocks, so a commit is revealed 1 to 5 blocks after it is made (the
/// local network's rounds are tens of blocks; subtensor's tempo is 360).
pub const LOCAL_TEMPO: u16 = 4;
/// Epochs between a commit and its reveal (subtensor's `RevealPeriodEpochs`
/// default).
pub const LOCAL_REVEAL_PERIOD_EPOCHS: u64 = 1;

/// The block (= beacon round) at which a commit made at `block` on subnet
/// `netuid` is revealed: the first block of the next epoch under subtensor's
/// modulo rule ([`first_reveal_block_v1`](crate::chain::commit_reveal::first_reveal_block_v1)).
pub fn local_reveal_round(block: u64, netuid: u16) -> u64 {
    crate::chain::commit_reveal::first_reveal_block_v1(
        block,
        netuid,
        LOCAL_TEMPO,
        LOCAL_REVEAL_PERIOD_EPOCHS,
    )
}

pub use state::{MAX_UIDS, MAX_UNREVEALED_COMMITS, SubnetConfig, WeightsRow, WeightsSet};
pub(crate) use store::atomic_write;

use state::State;

/// How a new local chain is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalChainConfig {
    /// Time per block; zero means blocks advance only by [`LocalChain::advance`].
    pub block_time: Duration,
    /// Seeds the block hashes; `None` picks a fresh one.
    pub genesis_seed: Option<[u8; 32]>,
}

impl Default for LocalChainConfig {
    /// Subtensor's 12-second blocks, and a fresh genesis seed.
    fn default() -> Self {
        LocalChainConfig {
            block_time: Duration::from_secs(12),
            genesis_seed: None,
        }
    }
}

impl LocalChainConfig {
    /// A chain whose blocks advance only by [`LocalChain::advance`], with a
    /// fixed seed: what tests use.
    pub fn manual(genesis_seed: [u8; 32]) -> Self {
        LocalChainConfig {
            block_time: Duration::ZERO,
            genesis_seed: Some(genesis_seed),
        }
    }
}

/// An embedded chain stored in a directory shared by local processes.
#[derive(Clone, Debug)]
pub struct LocalChain {
    dir: PathBuf,
    block_time: Duration,
}

impl LocalChain {
    /// Opens the chain in `dir`, creating it with `config` if there is none
    /// (an existing chain keeps its own settings). Safe to call from several
    /// processes at once: exactly one creates it.
    pub fn open_or_create(dir: impl AsRef<Path>, config: &LocalChainConfig) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let locked = store::lock(dir)?;
        let state = match store::read_state_bytes(dir)? {
            Some(bytes) => State::from_bytes(&bytes)?,
            None => {
                let ms = config.block_time.as_millis();
                if config.block_time > Duration::ZERO && ms == 0 {
                    return Err(Error::InvalidArgument(
                        "block_time must be zero or at least 1 ms".into(),
                    ));
                }
                let seed = match config.genesis_seed {
                    Some(seed) => seed,
                    None => fresh_seed(dir),
                };
                let ms = u64::try_from(ms)
                    .map_err(|_| Error::InvalidArgument("block_time too long".into()))?;
                let state = State::new(seed, now_ms(), ms)?;
                store::write_state_bytes(&locked, dir, &state.to_bytes()?)?;
                state
            }
        };
        Ok(LocalChain {
            dir: dir.to_path_buf(),
            block_time: Duration::from_millis(state.block_time_ms),
        })
    }

    /// Opens an existing chain; [`Error::NotFound`] if `dir` holds none.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let state = load(dir)?;
        Ok(LocalChain {
            dir: dir.to_path_buf(),
            block_time: Duration::from_millis(state.block_time_ms),
        })
    }

    /// The chain's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Adds subnet `netuid` with `config`; `false` if it existed already
    /// (then its settings are kept).
    pub fn add_subnet(&self, netuid: u16, config: SubnetConfig) -> Result<bool> {
        self.update(|state, _| state.add_subnet(netuid, config))
    }

    /// Registers `hotkey` (owned by `coldkey`, with `stake` rao) on subnet
    /// `netuid` and returns its uid; a registered hotkey keeps its uid.
    pub fn register(
        &self,
        netuid: u16,
        hotkey: &PublicKey,
        coldkey: &PublicKey,
        stake: u64,
    ) -> Result<u16> {
        self.update(|state, block| state.register(netuid, *hotkey, *coldkey, stake, block))
    }

    /// Sets the stake (rao) of a registered hotkey.
    pub fn set_stake(&self, netuid: u16, hotkey: &PublicKey, stake: u64) -> Result<()> {
        self.update(|state, _| state.set_stake(netuid, hotkey, stake))
    }

    /// Turns commit-reveal on or off for a subnet (commits already made are
    /// still revealed).
    pub fn set_commit_reveal(&self, netuid: u16, enabled: bool) -> Result<()> {
        self.update(|state, _| state.set_commit_reveal(netuid, enabled))
    }

    /// Adds `blocks` blocks now and returns the new latest block.
    pub fn advance(&self, blocks: u64) -> Result<Block> {
        let number = self.update(|state, block| {
            state.advanced = state
                .advanced
                .checked_add(blocks)
                .ok_or_else(|| Error::InvalidArgument("block number overflow".into()))?;
            Ok(block.saturating_add(blocks))
        })?;
        let state = load(&self.dir)?;
        Ok(Block {
            number,
            hash: state.block_hash(number),
        })
    }

    /// The weights every neuron of subnet `netuid` set last, as revealed by
    /// now (neurons that never set weights are left out).
    pub fn weights(&self, netuid: u16) -> Result<Vec<WeightsRow>> {
        current(&self.dir)?.0.weights(netuid)
    }

    /// Advances the chain just past the latest reveal round of the pending
    /// commits (if any), so that every weight committed so far is revealed,
    /// and returns the latest block.
    pub fn advance_past_reveals(&self) -> Result<Block> {
        let (state, block) = current(&self.dir)?;
        match state.last_pending_round() {
            Some(round) if round >= block => self.advance(round - block + 1),
            _ => self.block(),
        }
    }

    /// Applies `change` to the state under the lock and stores the result
    /// (only if `change` succeeds). `change` gets the current block number.
    fn update<T>(&self, change: impl FnOnce(&mut State, u64) -> Result<T>) -> Result<T> {
        let locked = store::lock(&self.dir)?;
        let mut state = load(&self.dir)?;
        let block = state.block_number(now_ms());
        reveal(&mut state, block);
        let out = change(&mut state, block)?;
        state.validate()?;
        store::write_state_bytes(&locked, &self.dir, &state.to_bytes()?)?;
        Ok(out)
    }
}

impl Chain for LocalChain {
    fn block(&self) -> Result<Block> {
        let state = load(&self.dir)?;
        let number = state.block_number(now_ms());
        Ok(Block {
            number,
            hash: state.block_hash(number),
        })
    }

    fn block_hash(&self, number: u64) -> Result<Option<[u8; 32]>> {
        let state = load(&self.dir)?;
        Ok((number <= state.block_number(now_ms())).then(|| state.block_hash(number)))
    }

    fn metagraph(&self, netuid: u16) -> Result<Metagraph> {
        let (state, block) = current(&self.dir)?;
        state.metagraph(netuid, block)
    }

    fn commitment(&self, netuid: u16, hotkey: &PublicKey) -> Result<Option<Vec<u8>>> {
        load(&self.dir)?.commitment(netuid, hotkey)
    }

    fn set_commitment(&self, netuid: u16, signer: &dyn Signer, data: &[u8]) -> Result<()> {
        let hotkey = signer.public_key();
        self.update(|state, block| state.set_commitment(netuid, &hotkey, data, block))
    }

    fn set_weights(
        &self,
        netuid: u16,
        signer: &dyn Signer,
        uids: &[u16],
        weights: &[u16],
        version_key: u64,
    ) -> Result<()> {
        let hotkey = signer.public_key();
        self.update(|state, block| {
            if !state.commit_reveal(netuid)? {
                return state.set_weights(netuid, &hotkey, uids, weights, version_key, block);
            }
            // Refuse now what the reveal would drop: a validator learns at
            // once instead of a round later.
            state.check_weights(netuid, &hotkey, uids, weights)?;
            let round = local_reveal_round(block, netuid);
            let payload = WeightsTlockPayload {
                hotkey: hotkey.0.to_vec(),
                uids: uids.to_vec(),
                values: weights.to_vec(),
                version_key,
            }
            .encode();
            let (data, sealed) = seal(state, round, &payload)?;
            state.commit_weights(netuid, &hotkey, block, round, sealed, &data)
        })
    }

    fn weights_commit(&self, netuid: u16, hotkey: &PublicKey) -> Result<Option<CommitReport>> {
        current(&self.dir)?.0.last_commit(netuid, hotkey)
    }

    fn block_time(&self) -> Duration {
        self.block_time
    }

    fn weights_of(
        &self,
        netuid: u16,
        hotkey: &PublicKey,
    ) -> Result<Option<crate::chain::weights::ChainWeights>> {
        Ok(self
            .weights(netuid)?
            .into_iter()
            .find(|row| row.hotkey == *hotkey)
            .map(|row| crate::chain::weights::ChainWeights {
                uids: row.weights.uids,
                values: row.weights.values,
                block: row.weights.block,
            }))
    }

    fn beacon(&self) -> Result<Option<BeaconKey>> {
        Ok(local_beacon(&load(&self.dir)?).map(|b| b.key()))
    }

    fn pulse(&self, round: u64) -> Result<Option<Pulse>> {
        let state = load(&self.dir)?;
        if round > state.block_number(now_ms()) {
            return Ok(None);
        }
        Ok(local_beacon(&state).map(|b| b.pulse(round)))
    }

    fn beacon_round_at(&self, block: u64) -> Result<Option<u64>> {
        let state = load(&self.dir)?;
        Ok((cfg!(feature = "timelock") && block <= state.block_number(now_ms())).then_some(block))
    }
}

/// The chain's beacon: its key derived from the genesis seed.
#[cfg(feature = "timelock")]
fn local_beacon(state: &State) -> Option<crate::timelock::LocalBeacon> {
    Some(crate::timelock::LocalBeacon::from_seed(
        state.genesis_seed.0,
    ))
}

/// Without feature `timelock` the chain has no beacon.
#[cfg(not(feature = "timelock"))]
fn local_beacon(_: &State) -> Option<NoBeacon> {
    None
}

/// The beacon a chain without feature `timelock` has: none.
#[cfg(not(feature = "timelock"))]
enum NoBeacon {}

#[cfg(not(feature = "timelock"))]
impl NoBeacon {
    fn key(&self) -> BeaconKey {
        match *self {}
    }
    fn pulse(&self, _: u64) -> Pulse {
        match *self {}
    }
}

/// The state in `dir` with the commits due by now revealed, and the block.
fn current(dir: &Path) -> Result<(State, u64)> {
    let mut state = load(dir)?;
    let block = state.block_number(now_ms());
    reveal(&mut state, block);
    Ok((state, block))
}

/// Reveals the commits due at `block` with the chain's beacon.
fn reveal(state: &mut State, block: u64) {
    let beacon = local_beacon(state);
    state.reveal_due(block, &|commit| {
        let data = match state::decode_hex_max(&commit.data, MAX_COMMIT_BYTES) {
            Ok(data) => data,
            Err(reason) => {
                return Some(Err(Error::corrupt("local chain state", "commit", reason)));
            }
        };
        if !commit.sealed {
            return Some(Ok(data));
        }
        open_sealed(beacon.as_ref(), commit.reveal_round, &data)
    });
}

/// Encrypts a commit's payload to `round` of the chain's beacon.
#[cfg(feature = "timelock")]
fn seal(state: &State, round: u64, payload: &[u8]) -> Result<(Vec<u8>, bool)> {
    let beacon = crate::timelock::LocalBeacon::from_seed(state.genesis_seed.0);
    let ct = crate::timelock::encrypt(
        &beacon.key(),
        round,
        payload,
        crate::timelock::random_seed()?,
    )?;
    Ok((ct, true))
}

/// Without feature `timelock` a commit holds the plain payload (the reveal
/// timing is simulated, the secrecy is not).
#[cfg(not(feature = "timelock"))]
fn seal(_: &State, _: u64, payload: &[u8]) -> Result<(Vec<u8>, bool)> {
    Ok((payload.to_vec(), false))
}

/// Opens a sealed commit with the beacon's pulse for `round`.
#[cfg(feature = "timelock")]
fn open_sealed(
    beacon: Option<&crate::timelock::LocalBeacon>,
    round: u64,
    data: &[u8],
) -> Option<Result<Vec<u8>>> {
    let beacon = beacon?;
    Some(crate::timelock::decrypt(data, &beacon.pulse(round)))
}

/// A build without feature `timelock` cannot open a sealed commit: it stays
/// pending until a build with the feature reads or writes the chain.
#[cfg(not(feature = "timelock"))]
fn open_sealed(_: Option<&NoBeacon>, _: u64, _: &[u8]) -> Option<Result<Vec<u8>>> {
    None
}

/// Reads and validates the state in `dir`.
fn load(dir: &Path) -> Result<State> {
    match store::read_state_bytes(dir)? {
        Some(bytes) => State::from_bytes(&bytes),
        None => Err(Error::NotFound(format!(
            "no local chain in {} (create one with LocalChain::open_or_create)",
            dir.display()
        ))),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A genesis seed that differs between chains: the directory, the time and
/// the process. (Not a secret; it only makes hashes differ between chains.)
fn fresh_seed(dir: &Path) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("bistro local chain genesis seed v1");
    h.update(dir.as_os_str().as_encoded_bytes());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.update(&nanos.to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    *h.finalize().as_bytes()
}
