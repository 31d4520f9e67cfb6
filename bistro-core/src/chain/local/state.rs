//! The local chain's state, its validation, and the changes calls make to it.
//!
//! Pure data: [`super::LocalChain`] loads it, applies one change under the
//! directory lock, and stores it. The rules mirror subtensor's where bistro
//! depends on them (registration, permits, the checks `set_weights` makes,
//! commitments only from registered hotkeys), and errors carry the names of
//! the pallet errors they stand for.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::chain::MAX_COMMITMENT_BYTES;
use crate::chain::commit_reveal::{
    CommitReport, CommitStatus, MAX_COMMIT_BYTES, WeightsTlockPayload,
};
use crate::chain::metagraph::{Metagraph, Neuron};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::identity::PublicKey;

/// The `format` field of a state file.
pub(super) const FORMAT: &str = "bistro-local-chain";
/// The state file version this build reads and writes.
pub(super) const VERSION: u32 = 1;
/// Most uids a local subnet can have.
pub const MAX_UIDS: u16 = 1024;
/// Most subnets a local chain can have.
const MAX_SUBNETS: usize = 1024;
/// Longest block time accepted (one day).
const MAX_BLOCK_TIME_MS: u64 = 86_400_000;
/// Most unrevealed commits one hotkey may have (subtensor allows 10 per
/// epoch: `TooManyUnrevealedCommits`).
pub const MAX_UNREVEALED_COMMITS: usize = 10;

/// The settings of one local subnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetConfig {
    /// Most uids the subnet registers (at most [`MAX_UIDS`]).
    pub max_uids: u16,
    /// How many neurons, by stake, hold validator permits.
    pub max_validators: u16,
    /// Whether weights go through commit-reveal, as on a default subtensor
    /// subnet: `set_weights` stores a commit (timelocked to the chain's
    /// beacon with feature `timelock`) and the weights appear only when the
    /// chain reaches the reveal round (see `LocalChain`).
    pub commit_reveal: bool,
}

impl Default for SubnetConfig {
    /// 256 uids and 64 validator permits, with commit-reveal, as on a
    /// default subtensor subnet.
    fn default() -> Self {
        SubnetConfig {
            max_uids: 256,
            max_validators: 64,
            commit_reveal: true,
        }
    }
}

/// The whole state of a local chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct State {
    pub format: String,
    pub version: u32,
    /// Seeds the block hashes.
    pub genesis_seed: Digest,
    /// Wall-clock time of block 0, in ms since the Unix epoch.
    pub genesis_unix_ms: u64,
    /// Milliseconds per block; 0 means blocks only advance by `advance`.
    pub block_time_ms: u64,
    /// Blocks added by `advance`, on top of the clock.
    pub advanced: u64,
    pub subnets: BTreeMap<u16, Subnet>,
}

/// One subnet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Subnet {
    pub config: SubnetConfig,
    /// Neuron `i` holds uid `i`.
    pub neurons: Vec<LocalNeuron>,
    /// Weights commits not revealed yet, in the order they were made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commits: Vec<PendingCommit>,
}

/// A weights commit waiting for its reveal round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PendingCommit {
    /// The committer.
    pub hotkey: PublicKey,
    /// The block it was committed at.
    pub block: u64,
    /// The beacon round (= block on the local chain) it opens at.
    pub reveal_round: u64,
    /// Whether `data` is a timelock ciphertext (else the plain payload:
    /// a chain built without feature `timelock`).
    pub sealed: bool,
    /// The ciphertext or payload, as hex.
    pub data: String,
}

/// One registered hotkey.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct LocalNeuron {
    pub hotkey: PublicKey,
    pub coldkey: PublicKey,
    pub stake: u64,
    pub registered_at: u64,
    pub last_update: u64,
    pub commitment: Option<Commitment>,
    pub weights: Option<WeightsSet>,
    /// The neuron's latest weights commit and what became of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_commit: Option<CommitReport>,
}

/// A published commitment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Commitment {
    /// The bytes, as hex.
    pub data: String,
    pub block: u64,
}

/// The weights a neuron set last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightsSet {
    /// Destination uids.
    pub uids: Vec<u16>,
    /// The `u16` weight for each destination.
    pub values: Vec<u16>,
    /// The version key given with them.
    pub version_key: u64,
    /// The block they were set at.
    pub block: u64,
}

/// One row of a subnet's weight matrix, as [`super::LocalChain::weights`] gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightsRow {
    /// The uid that set the weights.
    pub uid: u16,
    /// Its hotkey.
    pub hotkey: PublicKey,
    /// What it set.
    pub weights: WeightsSet,
}

impl State {
    pub fn new(genesis_seed: [u8; 32], genesis_unix_ms: u64, block_time_ms: u64) -> Result<Self> {
        let state = State {
            format: FORMAT.into(),
            version: VERSION,
            genesis_seed: Digest(genesis_seed),
            genesis_unix_ms,
            block_time_ms,
            advanced: 0,
            subnets: BTreeMap::new(),
        };
        state.validate()?;
        Ok(state)
    }

    /// Parses and validates a state file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        // Check the version before the layout, so a newer file says so.
        #[derive(Deserialize)]
        struct Header {
            format: String,
            version: u32,
        }
        let header: Header = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt("local chain state", "header", e.to_string()))?;
        if header.format != FORMAT {
            return Err(Error::corrupt(
                "local chain state",
                "format",
                format!("{:?} is not {FORMAT:?}", header.format),
            ));
        }
        if header.version != VERSION {
            return Err(Error::UnsupportedVersion {
                input: "local chain state",
                found: header.version,
                supported: VERSION.to_string(),
            });
        }
        let state: State = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt("local chain state", "body", e.to_string()))?;
        state.validate()?;
        Ok(state)
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self)
            .map_err(|e| Error::corrupt("local chain state", "encoding", e.to_string()))
    }

    /// Checks every invariant the rest of the code relies on.
    pub fn validate(&self) -> Result<()> {
        let bad = |location: String, reason: String| {
            Err(Error::corrupt("local chain state", location, reason))
        };
        if self.block_time_ms > MAX_BLOCK_TIME_MS {
            return bad(
                "block_time_ms".into(),
                format!("{} is over {MAX_BLOCK_TIME_MS}", self.block_time_ms),
            );
        }
        if self.subnets.len() > MAX_SUBNETS {
            return bad("subnets".into(), format!("more than {MAX_SUBNETS}"));
        }
        for (netuid, subnet) in &self.subnets {
            let at = |what: &str| format!("subnet {netuid} {what}");
            let c = subnet.config;
            if c.max_uids == 0 || c.max_uids > MAX_UIDS {
                return bad(
                    at("max_uids"),
                    format!("{} not in 1..={MAX_UIDS}", c.max_uids),
                );
            }
            let n = subnet.neurons.len();
            if n > usize::from(c.max_uids) {
                return bad(at("neurons"), format!("{n} over max_uids {}", c.max_uids));
            }
            let mut seen = HashSet::new();
            for (uid, neuron) in subnet.neurons.iter().enumerate() {
                if !seen.insert(neuron.hotkey) {
                    return bad(at(&format!("uid {uid}")), "hotkey registered twice".into());
                }
                if let Some(c) = &neuron.commitment {
                    let len = decode_hex(&c.data)
                        .map_err(|r| Error::corrupt("local chain state", at("commitment"), r))?
                        .len();
                    if len > MAX_COMMITMENT_BYTES {
                        return bad(at(&format!("uid {uid} commitment")), format!("{len} bytes"));
                    }
                }
                if let Some(w) = &neuron.weights
                    && (w.uids.len() != w.values.len()
                        || w.uids.iter().any(|&u| usize::from(u) >= n))
                {
                    return bad(at(&format!("uid {uid} weights")), "bad destinations".into());
                }
            }
            if subnet.commits.len() > n * MAX_UNREVEALED_COMMITS {
                return bad(at("commits"), format!("{} pending", subnet.commits.len()));
            }
            for c in &subnet.commits {
                if !seen.contains(&c.hotkey) {
                    return bad(at("commits"), "a commit from an unregistered hotkey".into());
                }
                decode_hex_max(&c.data, MAX_COMMIT_BYTES)
                    .map_err(|r| Error::corrupt("local chain state", at("commit"), r))?;
            }
        }
        Ok(())
    }

    /// The block number at wall-clock time `now_ms`.
    pub fn block_number(&self, now_ms: u64) -> u64 {
        let by_clock = match self.block_time_ms {
            0 => 0,
            t => now_ms.saturating_sub(self.genesis_unix_ms) / t,
        };
        by_clock.saturating_add(self.advanced)
    }

    /// The hash of block `number`: BLAKE3 (in derive-key mode) of the
    /// genesis seed and the number.
    pub fn block_hash(&self, number: u64) -> [u8; 32] {
        let mut h = blake3::Hasher::new_derive_key("bistro local chain block hash v1");
        h.update(&self.genesis_seed.0);
        h.update(&number.to_le_bytes());
        *h.finalize().as_bytes()
    }

    fn subnet(&self, netuid: u16) -> Result<&Subnet> {
        self.subnets.get(&netuid).ok_or_else(|| {
            Error::NotFound(format!("subnet {netuid} does not exist on the local chain"))
        })
    }

    fn subnet_mut(&mut self, netuid: u16) -> Result<&mut Subnet> {
        self.subnets.get_mut(&netuid).ok_or_else(|| {
            Error::NotFound(format!("subnet {netuid} does not exist on the local chain"))
        })
    }

    /// Adds a subnet; `false` if it already existed (its settings are kept).
    pub fn add_subnet(&mut self, netuid: u16, config: SubnetConfig) -> Result<bool> {
        if config.max_uids == 0 || config.max_uids > MAX_UIDS {
            return Err(Error::InvalidArgument(format!(
                "max_uids {} not in 1..={MAX_UIDS}",
                config.max_uids
            )));
        }
        if self.subnets.contains_key(&netuid) {
            return Ok(false);
        }
        if self.subnets.len() >= MAX_SUBNETS {
            return Err(Error::limit(
                "local subnets",
                MAX_SUBNETS as u64,
                MAX_SUBNETS as u64 + 1,
            ));
        }
        self.subnets.insert(
            netuid,
            Subnet {
                config,
                neurons: Vec::new(),
                commits: Vec::new(),
            },
        );
        Ok(true)
    }

    pub fn set_commit_reveal(&mut self, netuid: u16, enabled: bool) -> Result<()> {
        self.subnet_mut(netuid)?.config.commit_reveal = enabled;
        Ok(())
    }

    /// Registers `hotkey` (the existing uid if it is registered already).
    pub fn register(
        &mut self,
        netuid: u16,
        hotkey: PublicKey,
        coldkey: PublicKey,
        stake: u64,
        block: u64,
    ) -> Result<u16> {
        let subnet = self.subnet_mut(netuid)?;
        if let Some(uid) = subnet.neurons.iter().position(|n| n.hotkey == hotkey) {
            return Ok(uid as u16);
        }
        let n = subnet.neurons.len();
        if n >= usize::from(subnet.config.max_uids) {
            return Err(Error::limit(
                format!("uids on local subnet {netuid}"),
                u64::from(subnet.config.max_uids),
                n as u64 + 1,
            ));
        }
        subnet.neurons.push(LocalNeuron {
            hotkey,
            coldkey,
            stake,
            registered_at: block,
            last_update: 0,
            commitment: None,
            weights: None,
            last_commit: None,
        });
        Ok(n as u16)
    }

    pub fn set_stake(&mut self, netuid: u16, hotkey: &PublicKey, stake: u64) -> Result<()> {
        let neuron = registered_mut(self.subnet_mut(netuid)?, netuid, hotkey)?;
        neuron.stake = stake;
        Ok(())
    }

    pub fn set_commitment(
        &mut self,
        netuid: u16,
        hotkey: &PublicKey,
        data: &[u8],
        block: u64,
    ) -> Result<()> {
        if data.len() > MAX_COMMITMENT_BYTES {
            return Err(Error::limit(
                "commitment bytes",
                MAX_COMMITMENT_BYTES as u64,
                data.len() as u64,
            ));
        }
        let subnet = self.subnet_mut(netuid)?;
        let neuron = subnet
            .neurons
            .iter_mut()
            .find(|n| &n.hotkey == hotkey)
            .ok_or_else(|| {
                Error::Chain(format!(
                    "Commitments.AccountNotAllowedCommit: hotkey {hotkey} is not registered on \
                     subnet {netuid}"
                ))
            })?;
        neuron.commitment = Some(Commitment {
            data: encode_hex(data),
            block,
        });
        Ok(())
    }

    pub fn commitment(&self, netuid: u16, hotkey: &PublicKey) -> Result<Option<Vec<u8>>> {
        let subnet = self.subnet(netuid)?;
        match subnet.neurons.iter().find(|n| &n.hotkey == hotkey) {
            Some(LocalNeuron {
                commitment: Some(c),
                ..
            }) => decode_hex(&c.data)
                .map(Some)
                .map_err(|r| Error::corrupt("local chain state", "commitment", r)),
            _ => Ok(None),
        }
    }

    /// The checks subtensor's `set_weights` makes (with the pallet's error
    /// names); the uid of `hotkey` when they pass.
    pub fn check_weights(
        &self,
        netuid: u16,
        hotkey: &PublicKey,
        uids: &[u16],
        values: &[u16],
    ) -> Result<usize> {
        let permits = self.permits(netuid)?;
        let subnet = self.subnet(netuid)?;
        let n = subnet.neurons.len();
        let uid = subnet
            .neurons
            .iter()
            .position(|x| &x.hotkey == hotkey)
            .ok_or_else(|| {
                Error::Chain(format!(
                    "SubtensorModule.HotKeyNotRegisteredInSubNet: hotkey {hotkey} is not \
                     registered on subnet {netuid}"
                ))
            })?;
        let refuse =
            |name: &str, why: String| Err(Error::Chain(format!("SubtensorModule.{name}: {why}")));
        if uids.len() != values.len() {
            return refuse(
                "WeightVecNotEqualSize",
                format!("{} uids but {} weights", uids.len(), values.len()),
            );
        }
        if uids.len() > n {
            return refuse(
                "UidsLengthExceedUidsInSubNet",
                format!("{} weights for {n} uids", uids.len()),
            );
        }
        let mut seen = HashSet::new();
        for &u in uids {
            if usize::from(u) >= n {
                return refuse("UidVecContainInvalidOne", format!("uid {u} does not exist"));
            }
            if !seen.insert(u) {
                return refuse("DuplicateUids", format!("uid {u} appears twice"));
            }
        }
        let self_weight_only = uids.len() == 1 && usize::from(uids[0]) == uid;
        if !permits.get(uid).copied().unwrap_or(false) && !self_weight_only {
            return refuse(
                "NeuronNoValidatorPermit",
                format!("uid {uid} has no validator permit on subnet {netuid}"),
            );
        }
        Ok(uid)
    }

    /// Sets weights directly, after [`State::check_weights`] (a subnet
    /// without commit-reveal; and a reveal).
    pub fn set_weights(
        &mut self,
        netuid: u16,
        hotkey: &PublicKey,
        uids: &[u16],
        values: &[u16],
        version_key: u64,
        block: u64,
    ) -> Result<()> {
        let uid = self.check_weights(netuid, hotkey, uids, values)?;
        let neuron = &mut self.subnet_mut(netuid)?.neurons[uid];
        neuron.weights = Some(WeightsSet {
            uids: uids.to_vec(),
            values: values.to_vec(),
            version_key,
            block,
        });
        neuron.last_update = block;
        Ok(())
    }

    /// Whether subnet `netuid` uses commit-reveal.
    pub fn commit_reveal(&self, netuid: u16) -> Result<bool> {
        Ok(self.subnet(netuid)?.config.commit_reveal)
    }

    /// Stores a weights commit of `hotkey` (registered, with fewer than
    /// [`MAX_UNREVEALED_COMMITS`] pending) made at `block`, opening at
    /// `reveal_round`; `data` is the ciphertext (`sealed`) or the payload.
    pub fn commit_weights(
        &mut self,
        netuid: u16,
        hotkey: &PublicKey,
        block: u64,
        reveal_round: u64,
        sealed: bool,
        data: &[u8],
    ) -> Result<()> {
        if data.len() > MAX_COMMIT_BYTES {
            return Err(Error::limit(
                "weights commit bytes",
                MAX_COMMIT_BYTES as u64,
                data.len() as u64,
            ));
        }
        let subnet = self.subnet_mut(netuid)?;
        let pending = subnet
            .commits
            .iter()
            .filter(|c| &c.hotkey == hotkey)
            .count();
        if pending >= MAX_UNREVEALED_COMMITS {
            return Err(Error::Chain(format!(
                "SubtensorModule.TooManyUnrevealedCommits: hotkey {hotkey} has {pending} \
                 unrevealed commits on subnet {netuid}"
            )));
        }
        let neuron = registered_mut(subnet, netuid, hotkey)?;
        neuron.last_commit = Some(CommitReport {
            block,
            reveal_round,
            reveal_block: reveal_round,
            status: CommitStatus::Pending,
        });
        subnet.commits.push(PendingCommit {
            hotkey: *hotkey,
            block,
            reveal_round,
            sealed,
            data: encode_hex(data),
        });
        Ok(())
    }

    /// Reveals every commit whose round is at most `block`, in round order:
    /// `open` gives its payload (`None`: it cannot be opened here, so it
    /// stays pending), which is decoded, checked like `set_weights` and set
    /// at its reveal round. A commit that fails is dropped, as subtensor
    /// drops it (only its committer's `last_commit` says why). Returns how
    /// many commits were settled.
    pub fn reveal_due(
        &mut self,
        block: u64,
        open: &dyn Fn(&PendingCommit) -> Option<Result<Vec<u8>>>,
    ) -> usize {
        let mut settled = 0;
        let netuids: Vec<u16> = self.subnets.keys().copied().collect();
        for netuid in netuids {
            let Some(subnet) = self.subnets.get_mut(&netuid) else {
                continue;
            };
            let mut due: Vec<PendingCommit> = Vec::new();
            let mut kept = Vec::new();
            for c in std::mem::take(&mut subnet.commits) {
                if c.reveal_round <= block {
                    due.push(c);
                } else {
                    kept.push(c);
                }
            }
            due.sort_by_key(|c| c.reveal_round); // stable: commit order within a round
            for c in due {
                let status = match open(&c) {
                    None => {
                        kept.push(c);
                        continue;
                    }
                    Some(opened) => match self.reveal_one(netuid, &c, opened) {
                        Ok(()) => CommitStatus::Revealed {
                            block: c.reveal_round,
                        },
                        Err(e) => CommitStatus::Dropped {
                            block: c.reveal_round,
                            reason: e.to_string(),
                        },
                    },
                };
                settled += 1;
                if let Some(subnet) = self.subnets.get_mut(&netuid)
                    && let Some(neuron) = subnet.neurons.iter_mut().find(|n| n.hotkey == c.hotkey)
                    && let Some(report) = &mut neuron.last_commit
                    && report.block == c.block
                    && report.reveal_round == c.reveal_round
                {
                    report.status = status;
                }
            }
            kept.sort_by_key(|c| c.block);
            if let Some(subnet) = self.subnets.get_mut(&netuid) {
                subnet.commits = kept;
            }
        }
        settled
    }

    fn reveal_one(
        &mut self,
        netuid: u16,
        commit: &PendingCommit,
        opened: Result<Vec<u8>>,
    ) -> Result<()> {
        let payload = WeightsTlockPayload::decode(&opened?)?;
        if payload.hotkey != commit.hotkey.0 {
            return Err(Error::Chain(
                "the payload's hotkey is not the committer's".into(),
            ));
        }
        self.set_weights(
            netuid,
            &commit.hotkey,
            &payload.uids,
            &payload.values,
            payload.version_key,
            commit.reveal_round,
        )
    }

    /// The latest weights commit of `hotkey` on `netuid` and its status.
    pub fn last_commit(&self, netuid: u16, hotkey: &PublicKey) -> Result<Option<CommitReport>> {
        let subnet = self.subnet(netuid)?;
        Ok(subnet
            .neurons
            .iter()
            .find(|n| &n.hotkey == hotkey)
            .and_then(|n| n.last_commit.clone()))
    }

    /// The latest reveal round among pending commits, if any.
    pub fn last_pending_round(&self) -> Option<u64> {
        self.subnets
            .values()
            .flat_map(|s| s.commits.iter().map(|c| c.reveal_round))
            .max()
    }

    /// Validator permits: the `max_validators` neurons with the most stake
    /// (above zero; ties go to the lower uid).
    fn permits(&self, netuid: u16) -> Result<Vec<bool>> {
        let subnet = self.subnet(netuid)?;
        let mut order: Vec<usize> = (0..subnet.neurons.len())
            .filter(|&i| subnet.neurons[i].stake > 0)
            .collect();
        order.sort_by(|&a, &b| {
            subnet.neurons[b]
                .stake
                .cmp(&subnet.neurons[a].stake)
                .then(a.cmp(&b))
        });
        let mut permits = vec![false; subnet.neurons.len()];
        for &i in order.iter().take(usize::from(subnet.config.max_validators)) {
            permits[i] = true;
        }
        Ok(permits)
    }

    pub fn metagraph(&self, netuid: u16, block: u64) -> Result<Metagraph> {
        let permits = self.permits(netuid)?;
        let subnet = self.subnet(netuid)?;
        let neurons = subnet
            .neurons
            .iter()
            .enumerate()
            .map(|(uid, n)| Neuron {
                uid: uid as u16,
                hotkey: n.hotkey,
                coldkey: n.coldkey,
                stake: n.stake,
                validator_permit: permits[uid],
                last_update: n.last_update,
                registered_at: n.registered_at,
                active: true,
            })
            .collect();
        Ok(Metagraph {
            netuid,
            block,
            neurons,
        })
    }

    pub fn weights(&self, netuid: u16) -> Result<Vec<WeightsRow>> {
        let subnet = self.subnet(netuid)?;
        Ok(subnet
            .neurons
            .iter()
            .enumerate()
            .filter_map(|(uid, n)| {
                n.weights.as_ref().map(|w| WeightsRow {
                    uid: uid as u16,
                    hotkey: n.hotkey,
                    weights: w.clone(),
                })
            })
            .collect())
    }
}

fn registered_mut<'a>(
    subnet: &'a mut Subnet,
    netuid: u16,
    hotkey: &PublicKey,
) -> Result<&'a mut LocalNeuron> {
    subnet
        .neurons
        .iter_mut()
        .find(|n| &n.hotkey == hotkey)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "hotkey {hotkey} is not registered on subnet {netuid}"
            ))
        })
}

use crate::util::hex::encode as encode_hex;

fn decode_hex(s: &str) -> std::result::Result<Vec<u8>, String> {
    decode_hex_max(s, MAX_COMMITMENT_BYTES)
}

/// Decodes hex of at most `max` bytes.
pub(super) fn decode_hex_max(s: &str, max: usize) -> std::result::Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) || s.len() > 2 * max {
        return Err(format!("bad hex length {}", s.len()));
    }
    crate::util::hex::decode(s).ok_or_else(|| "not hex".to_string())
}
