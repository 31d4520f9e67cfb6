//! The deadline snapshot: what each uid's bucket held when the validator
//! listed it at the deadline block `b`, before the reveal block `b + D`
//! existed. Only pinned objects are judged, and a pinned key names its
//! content's digest, so an upload made after the pages became known is late
//! whatever timestamp the miner's storage server reports, and content
//! swapped after the listing is corrupt (`docs/protocol.md`, "A validator's round").
//!
//! Every uid is listed concurrently ([`LIST_PARALLELISM`] at a time). The
//! snapshot waits for the listings until the reveal block exists or
//! [`SNAPSHOT_BUDGET_BLOCKS`] block times (at least [`MIN_SNAPSHOT_BUDGET`])
//! have passed, whichever comes first;
//! a listing that has not completed by then is not pinned (`unreachable`:
//! the miner's server was too slow), and its thread is left to end on its
//! own request timeouts without holding up the round.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::fetch::BucketCache;
use super::round_blocks;
use crate::chain::Chain;
use crate::digest::Digest;
use crate::error::Result;
use crate::identity::PublicKey;
use crate::node::params::SubnetParams;
use crate::node::rejection::Rejection;
use crate::storage::EndpointPolicy;
use crate::storage::keys::latest_delta;

/// Buckets listed at once.
pub const LIST_PARALLELISM: usize = 32;

/// The most block times a snapshot waits for its listings (when the reveal
/// block does not end it earlier).
pub const SNAPSHOT_BUDGET_BLOCKS: u32 = 2;

/// The least a snapshot waits for its listings, whatever the block time (a
/// local chain's blocks may come by hand or in milliseconds).
pub const MIN_SNAPSHOT_BUDGET: Duration = Duration::from_secs(10);

/// How often the snapshot looks whether the reveal block exists.
const REVEAL_POLL: Duration = Duration::from_millis(200);

/// One uid's newest delta in the round's window at the snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// The uid's hotkey when it was listed.
    pub hotkey: PublicKey,
    /// The object's key (it names the block and the digest).
    pub key: String,
    /// The block in the key.
    pub block: u64,
    /// The digest in the key: BLAKE3 of the bytes the download must hold.
    pub digest: Digest,
    /// Its size as listed.
    pub size: u64,
}

/// The snapshot of one deadline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The deadline.
    pub deadline: u64,
    /// Whether the listing completed before the reveal block existed. A
    /// snapshot taken later (a validator that noticed the deadline late)
    /// cannot tell on-time uploads from late ones: every uid of the round is
    /// then a `validator_error` (the validator's fault, not the miner's).
    pub before_reveal: bool,
    /// The pinned object of every uid that had one.
    pub pins: BTreeMap<u16, Pin>,
    /// Why a uid could not be listed: its bucket did not answer in time
    /// (`unreachable`), its commitment is unusable, or the validator's own
    /// chain read failed (`validator_error`).
    #[serde(default)]
    pub unlisted: BTreeMap<u16, Rejection>,
    /// Milliseconds the listing took (the validator's own clock).
    #[serde(default)]
    pub took_ms: u64,
}

/// What one listing found.
enum Listed {
    Pinned(Pin),
    Nothing,
    Failed(Rejection),
}

/// Lists every uid in `uids` concurrently and pins its newest delta whose
/// key names a block in `blocks`. `reveal_block` ends the wait (see the
/// module docs); `buckets` opens each committed bucket once.
pub(super) fn take(
    chain: &Arc<dyn Chain>,
    params: &SubnetParams,
    buckets: &Arc<Mutex<BucketCache>>,
    uids: Vec<(u16, PublicKey)>,
    deadline: u64,
    blocks: std::ops::RangeInclusive<u64>,
) -> Result<Snapshot> {
    let started = Instant::now();
    let reveal_block = params.reveal_block(deadline);
    let budget = chain
        .block_time()
        .saturating_mul(SNAPSHOT_BUDGET_BLOCKS)
        .max(MIN_SNAPSHOT_BUDGET);
    let expected = uids.len();
    let all: Vec<u16> = uids.iter().map(|(uid, _)| *uid).collect();
    let queue = Arc::new(Mutex::new(uids));
    let (tx, rx) = mpsc::channel::<(u16, Listed)>();
    for _ in 0..expected.min(LIST_PARALLELISM) {
        let (queue, tx) = (Arc::clone(&queue), tx.clone());
        let (chain, buckets) = (Arc::clone(chain), Arc::clone(buckets));
        let (netuid, blocks) = (params.netuid, blocks.clone());
        std::thread::spawn(move || {
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop());
                let Some((uid, hotkey)) = next else { break };
                let listed = list_one(chain.as_ref(), &buckets, netuid, &hotkey, &blocks);
                if tx.send((uid, listed)).is_err() {
                    break; // the snapshot is over: nobody waits for this one
                }
            }
        });
    }
    drop(tx);

    let mut pins = BTreeMap::new();
    let mut unlisted = BTreeMap::new();
    let mut answered = std::collections::BTreeSet::new();
    let mut revealed = false;
    let mut looked = Instant::now();
    while answered.len() < expected {
        match rx.recv_timeout(REVEAL_POLL) {
            Ok((uid, listed)) => {
                answered.insert(uid);
                match listed {
                    Listed::Pinned(pin) => {
                        pins.insert(uid, pin);
                    }
                    Listed::Nothing => {}
                    Listed::Failed(why) => {
                        unlisted.insert(uid, why);
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if looked.elapsed() >= REVEAL_POLL {
            looked = Instant::now();
            revealed = chain.block_hash(reveal_block)?.is_some();
        }
        if revealed || started.elapsed() > budget {
            break;
        }
    }
    // Listings still running (or never started) are the miner's server's
    // slowness: the pages may be known by now.
    if let Ok(mut q) = queue.lock() {
        q.clear();
    }
    if answered.len() < expected {
        let slow = Rejection::Unreachable(format!(
            "its bucket was not listed before the reveal block {reveal_block} existed or \
             within {} ms of the deadline",
            budget.as_millis()
        ));
        for uid in all.into_iter().filter(|u| !answered.contains(u)) {
            unlisted.entry(uid).or_insert_with(|| slow.clone());
        }
    }
    let before_reveal = !revealed && chain.block_hash(reveal_block)?.is_none();
    Ok(Snapshot {
        deadline,
        before_reveal,
        pins,
        unlisted,
        took_ms: started.elapsed().as_millis() as u64,
    })
}

fn list_one(
    chain: &dyn Chain,
    buckets: &Mutex<BucketCache>,
    netuid: u16,
    hotkey: &PublicKey,
    blocks: &std::ops::RangeInclusive<u64>,
) -> Listed {
    let raw = match chain.commitment(netuid, hotkey) {
        Ok(Some(raw)) => raw,
        Ok(None) => return Listed::Failed(Rejection::NoCommitment),
        Err(e) => return Listed::Failed(Rejection::ValidatorError(format!("chain: {e}"))),
    };
    let bucket = match buckets.lock() {
        Ok(mut cache) => match cache.get(raw) {
            Ok(b) => b,
            Err(why) => return Listed::Failed(why),
        },
        Err(_) => return Listed::Failed(Rejection::ValidatorError("bucket cache".into())),
    };
    match latest_delta(bucket.as_ref(), hotkey, blocks.clone()) {
        Ok(Some(found)) => Listed::Pinned(Pin {
            hotkey: *hotkey,
            key: found.info.key,
            block: found.block,
            digest: found.digest,
            size: found.info.size,
        }),
        Ok(None) => Listed::Nothing,
        Err(e) => Listed::Failed(Rejection::from_listing_error(&e)),
    }
}

/// Takes deadline snapshots for a validator from any thread: the chain and
/// the opened buckets are shared with it ([`Validator::snapshotter`](super::Validator::snapshotter)).
#[derive(Clone)]
pub struct Snapshotter {
    pub(super) chain: Arc<dyn Chain>,
    pub(super) params: SubnetParams,
    pub(super) buckets: Arc<Mutex<BucketCache>>,
    pub(super) me: PublicKey,
}

impl Snapshotter {
    /// A snapshotter of its own (a validator's shares its chain and opened
    /// buckets: [`Validator::snapshotter`](super::Validator::snapshotter)): `me` is the validator's hotkey,
    /// whose own uid is not listed.
    pub fn new(
        chain: Arc<dyn Chain>,
        params: SubnetParams,
        policy: EndpointPolicy,
        me: PublicKey,
    ) -> Snapshotter {
        Snapshotter {
            chain,
            params,
            buckets: Arc::new(Mutex::new(BucketCache::new(policy))),
            me,
        }
    }

    /// Lists every registered uid's bucket but the validator's own and pins
    /// its newest delta of the round at `deadline` (`snapshot` module).
    pub fn take(&self, deadline: u64) -> Result<Snapshot> {
        let metagraph = self.chain.metagraph(self.params.netuid)?;
        let uids: Vec<(u16, PublicKey)> = metagraph
            .neurons
            .iter()
            .filter(|n| n.hotkey != self.me)
            .map(|n| (n.uid, n.hotkey))
            .collect();
        // Every block of the round: whether a delta is older than the
        // master is decided when it is judged (`stale`).
        let blocks = round_blocks(&self.params, 0, deadline);
        take(
            &self.chain,
            &self.params,
            &self.buckets,
            uids,
            deadline,
            blocks,
        )
    }
    /// Spawns a thread that waits for every deadline after `after_block` and
    /// takes its snapshot the moment the deadline block exists, even while
    /// the validator is busy judging an earlier round. Snapshots (or the
    /// error that ended the thread: a chain that stalls or fails) arrive on
    /// the returned channel in deadline order; hand each to
    /// [`Validator::use_snapshot`](super::Validator::use_snapshot) before [`Validator::run_round`](super::Validator::run_round). The
    /// thread ends when the receiver is dropped.
    pub fn spawn(self, after_block: u64) -> std::sync::mpsc::Receiver<Result<Snapshot>> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut block = after_block;
            loop {
                let deadline = self.params.deadline_after(block);
                let blocks =
                    u32::try_from(self.params.round_blocks.saturating_add(2)).unwrap_or(u32::MAX);
                let wait = self
                    .chain
                    .block_time()
                    .saturating_mul(blocks.saturating_mul(4))
                    .max(Duration::from_secs(60));
                let taken = self
                    .chain
                    .wait_for_block(deadline, wait)
                    .and_then(|_| self.take(deadline));
                let failed = taken.is_err();
                if tx.send(taken).is_err() || failed {
                    return;
                }
                block = deadline;
            }
        });
        rx
    }
}
