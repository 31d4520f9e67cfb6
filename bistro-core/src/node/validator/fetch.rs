//! Phase one of a round: find, download and check each uid's delta before
//! anything touches the model.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::chain::Chain;
use crate::codec::{Limits, MappedDelta, open_file};
use crate::digest::Digest;
use crate::identity::PublicKey;
use crate::node::fingerprint::{fingerprint, millis};
use crate::node::rejection::Rejection;
use crate::node::sealing::open_upload;
use crate::node::similarity::Sketch;
use crate::seal::max_sealed_len;

use super::snapshot::Pin;
use crate::storage::keys::{DeltaObject, latest_delta, parse_delta_key};
use crate::storage::{Bucket, BucketCommitment, open_bucket};

/// A delta that passed every check that does not need the model.
pub struct Candidate {
    /// Its key in the miner's bucket.
    pub key: String,
    /// The downloaded file, memory-mapped.
    pub delta: MappedDelta,
    /// Its content digest (footer).
    pub digest: Digest,
    /// Its content fingerprint (for copy detection).
    pub fingerprint: Digest,
    /// Its sketch (for copy detection across rounds).
    pub sketch: Sketch,
    /// Its storage timestamp.
    pub uploaded: SystemTime,
    /// Time spent downloading.
    pub download: Duration,
}

/// What the validator expects of a delta this round.
pub struct Expectation<'a> {
    /// The subnet.
    pub netuid: u16,
    /// The uid being judged and its hotkey.
    pub uid: u16,
    /// The uid's hotkey.
    pub hotkey: PublicKey,
    /// The master the delta must be made against.
    pub master: Digest,
    /// Deltas with a block in this range belong to the round.
    pub blocks: std::ops::RangeInclusive<u64>,
    /// The latest acceptable storage timestamp (used only without a snapshot).
    pub upload_deadline: SystemTime,
    /// What the deadline snapshot pinned for this uid, if one was taken
    /// before the reveal block: `Some(None)` when it found nothing.
    pub pinned: Option<Option<&'a Pin>>,
    /// The beacon rounds a sealed upload may be sealed to (`node::sealing`).
    pub seal_rounds: &'a RangeInclusive<u64>,
    /// Caps for the reader.
    pub limits: &'a Limits,
    /// Where to put the opened delta (the sealed download goes beside it).
    pub dest: &'a Path,
}

/// Opened buckets of miners, by commitment, so each is opened once.
#[derive(Default)]
pub struct BucketCache {
    open: HashMap<Vec<u8>, Box<dyn Bucket>>,
}

impl BucketCache {
    pub(super) fn get(&mut self, raw: Vec<u8>) -> Result<&dyn Bucket, Rejection> {
        if !self.open.contains_key(&raw) {
            let commitment = BucketCommitment::parse(&raw)
                .map_err(|e| Rejection::BadCommitment(e.to_string()))?;
            let bucket =
                open_bucket(&commitment).map_err(|e| Rejection::BadCommitment(e.to_string()))?;
            self.open.insert(raw.clone(), bucket);
        }
        self.open
            .get(&raw)
            .map(|b| b.as_ref())
            .ok_or_else(|| Rejection::Unreachable("bucket cache".into()))
    }
}

/// Finds, downloads and checks `expect.uid`'s newest delta for the round.
pub fn fetch_candidate(
    chain: &dyn Chain,
    buckets: &mut BucketCache,
    expect: &Expectation<'_>,
) -> Result<Candidate, Rejection> {
    let raw = chain
        .commitment(expect.netuid, &expect.hotkey)
        .map_err(|e| Rejection::Unreachable(format!("chain: {e}")))?
        .ok_or(Rejection::NoCommitment)?;
    let bucket = buckets.get(raw)?;
    let found = match expect.pinned {
        // Only what was there at the deadline counts.
        Some(Some(pin)) => DeltaObject {
            block: parse_delta_key(&pin.key)
                .map(|(_, block)| block)
                .ok_or_else(|| {
                    Rejection::Corrupt(format!("pinned key {} does not parse", pin.key))
                })?,
            info: pin.info(),
        },
        Some(None) => {
            let now = latest_delta(bucket, &expect.hotkey, expect.blocks.clone())
                .map_err(|e| Rejection::Unreachable(e.to_string()))?;
            return Err(match now {
                Some(found) => Rejection::Late(format!(
                    "{} was not in the bucket when the validator listed it at the deadline",
                    found.info.key
                )),
                None => Rejection::NoDelta,
            });
        }
        None => latest_delta(bucket, &expect.hotkey, expect.blocks.clone())
            .map_err(|e| Rejection::Unreachable(e.to_string()))?
            .ok_or(Rejection::NoDelta)?,
    };
    let info = &found.info;
    let max_sealed = max_sealed_len(expect.limits.max_file_size);
    if info.size > max_sealed {
        return Err(Rejection::TooLarge(format!(
            "{} is {} bytes; the cap for this model is {max_sealed}",
            info.key, info.size
        )));
    }
    if expect.pinned.is_none() && info.last_modified > expect.upload_deadline {
        let late = info
            .last_modified
            .duration_since(expect.upload_deadline)
            .unwrap_or_default();
        return Err(Rejection::Late(format!(
            "{} was stored {} ms after the round's upload deadline",
            info.key,
            late.as_millis()
        )));
    }
    let started = Instant::now();
    let sealed = expect.dest.with_extension("sealed");
    let stored = bucket
        .get_to_file(&info.key, &sealed, max_sealed)
        .map_err(|e| Rejection::from_delta_error(&e))?;
    let download = started.elapsed();
    if millis(stored.last_modified) != millis(info.last_modified) || stored.size != info.size {
        return Err(Rejection::Late(format!(
            "{} was replaced after the validator listed it",
            info.key
        )));
    }
    let opened = open_upload(
        chain,
        expect.seal_rounds,
        &sealed,
        expect.dest,
        expect.limits.max_file_size,
    );
    let _ = std::fs::remove_file(&sealed);
    opened?;
    let delta =
        open_file(expect.dest, expect.limits).map_err(|e| Rejection::from_delta_error(&e))?;
    let reader = delta.reader();
    let header = *reader.header();
    if header.base_revision != expect.master {
        return Err(Rejection::Stale(format!(
            "made against master {}, the current master is {}",
            header.base_revision.short(),
            expect.master.short()
        )));
    }
    if header.block != found.block {
        return Err(Rejection::Stale(format!(
            "the header says block {}, the key block {}",
            header.block, found.block
        )));
    }
    if header.uid != expect.uid || header.hotkey != expect.hotkey {
        return Err(Rejection::WrongAuthor(format!(
            "the header names uid {} hotkey {}, the bucket belongs to uid {} hotkey {}",
            header.uid, header.hotkey, expect.uid, expect.hotkey
        )));
    }
    reader
        .verify_signature()
        .map_err(|e| Rejection::BadSignature(e.to_string()))?;
    reader
        .check_all_finite()
        .map_err(|e| Rejection::NonFinite(e.to_string()))?;
    let digest = reader.digest();
    let fingerprint = fingerprint(&reader);
    let sketch = Sketch::of_delta(&reader).map_err(|e| Rejection::from_delta_error(&e))?;
    Ok(Candidate {
        sketch,
        key: info.key.clone(),
        digest,
        fingerprint,
        uploaded: info.last_modified,
        download,
        delta,
    })
}
