//! Phase one of a round: find, download and check each uid's delta before
//! anything touches the model.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::chain::Chain;
use crate::codec::{Limits, MappedDelta, open_file};
use crate::digest::Digest;
use crate::identity::PublicKey;
use crate::node::fingerprint::{fingerprint, millis};
use crate::node::rejection::Rejection;
use crate::storage::keys::latest_delta;
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
    /// The latest acceptable storage timestamp.
    pub upload_deadline: SystemTime,
    /// Caps for the reader.
    pub limits: &'a Limits,
    /// Where to put the download.
    pub dest: &'a Path,
}

/// Opened buckets of miners, by commitment, so each is opened once.
#[derive(Default)]
pub struct BucketCache {
    open: HashMap<Vec<u8>, Box<dyn Bucket>>,
}

impl BucketCache {
    fn get(&mut self, raw: Vec<u8>) -> Result<&dyn Bucket, Rejection> {
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
    let found = latest_delta(bucket, &expect.hotkey, expect.blocks.clone())
        .map_err(|e| Rejection::Unreachable(e.to_string()))?
        .ok_or(Rejection::NoDelta)?;
    let info = &found.info;
    if info.size > expect.limits.max_file_size {
        return Err(Rejection::TooLarge(format!(
            "{} is {} bytes; the cap for this model is {}",
            info.key, info.size, expect.limits.max_file_size
        )));
    }
    if info.last_modified > expect.upload_deadline {
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
    let stored = bucket
        .get_to_file(&info.key, expect.dest, expect.limits.max_file_size)
        .map_err(|e| Rejection::from_delta_error(&e))?;
    let download = started.elapsed();
    if millis(stored.last_modified) != millis(info.last_modified) {
        return Err(Rejection::Late(format!(
            "{} was replaced while the validator read it",
            info.key
        )));
    }
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
    Ok(Candidate {
        key: info.key.clone(),
        digest,
        fingerprint,
        uploaded: info.last_modified,
        download,
        delta,
    })
}
