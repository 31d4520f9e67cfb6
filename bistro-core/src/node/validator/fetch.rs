//! Phase one of a round: find, download and check each uid's delta before
//! anything touches the model.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::chain::Chain;
use crate::codec::{Limits, MappedDelta, open_file};
use crate::digest::Digest;
use crate::identity::PublicKey;
use crate::node::fingerprint::fingerprint;
use crate::node::rejection::Rejection;
use crate::node::sealing::open_upload;
use crate::node::similarity::Sketch;
use crate::seal::max_sealed_len;

use super::snapshot::Pin;
use crate::error::Error;
use crate::storage::keys::latest_delta;
use crate::storage::{Bucket, BucketCommitment, EndpointPolicy, open_bucket};
use crate::util::atomic::unique_name_part;

/// A delta that passed every check that does not need the model.
pub struct Candidate {
    /// What the deadline snapshot pinned: key, block, digest and size.
    pub object: Seen,
    /// The downloaded file, memory-mapped.
    pub delta: MappedDelta,
    /// Its content digest (footer).
    pub digest: Digest,
    /// Its content fingerprint (for copy detection).
    pub fingerprint: Digest,
    /// Its sketch (for copy detection across rounds).
    pub sketch: Sketch,
    /// Time spent downloading.
    pub download: Duration,
}

/// The object a validator got as far as choosing (its key, size and the
/// digest its key names), logged with every record, rejections included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The key in the miner's bucket.
    pub key: String,
    /// The size listed at the deadline.
    pub size: u64,
    /// BLAKE3 of the uploaded bytes, as the key names it.
    pub digest: Digest,
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
    /// What the deadline snapshot pinned for this uid (`None`: nothing).
    pub pinned: Option<&'a Pin>,
    /// Why the snapshot could not list this uid, if it could not.
    pub unlisted: Option<&'a Rejection>,
    /// The beacon rounds a sealed upload may be sealed to (`node::sealing`).
    pub seal_rounds: &'a RangeInclusive<u64>,
    /// Caps for the reader.
    pub limits: &'a Limits,
    /// Where to put the opened delta (the sealed download goes beside it).
    pub dest: &'a Path,
    /// The fixed part of the download's budget ([`download_budget`]).
    pub budget_base: Duration,
}

/// Opened buckets of miners, by commitment, so each is opened once, and
/// only where the endpoint policy allows.
#[derive(Default)]
pub struct BucketCache {
    open: HashMap<Vec<u8>, Arc<dyn Bucket>>,
    policy: EndpointPolicy,
    file_root: Option<(PathBuf, PathBuf)>,
}

impl BucketCache {
    /// An empty cache that opens only what `policy` allows.
    pub fn new(policy: EndpointPolicy) -> BucketCache {
        BucketCache {
            open: HashMap::new(),
            policy,
            file_root: None,
        }
    }

    /// Opens `file://` commitments whose folder is `from` or under it from
    /// the same place under `to` instead: a local network's folder copied
    /// or moved elsewhere (its commitments name absolute folders) can then
    /// be read, for instance by an auditor, without rewriting the chain.
    pub fn with_file_root(mut self, from: impl Into<PathBuf>, to: impl Into<PathBuf>) -> Self {
        self.file_root = Some((from.into(), to.into()));
        self
    }

    /// `commitment` with its `file://` folder moved by the file root, if
    /// one is set and the folder is under it.
    fn rerooted(&self, mut commitment: BucketCommitment) -> BucketCommitment {
        let Some((from, to)) = &self.file_root else {
            return commitment;
        };
        let moved = commitment
            .file_path()
            .and_then(|path| Path::new(path).strip_prefix(from).ok())
            .map(|rest| to.join(rest));
        if let Some(moved) = moved {
            let moved = moved.to_string_lossy();
            commitment.endpoint = format!("file://{}", moved.trim_end_matches('/'));
        }
        commitment
    }

    /// Uses `bucket` for the raw commitment `raw` from now on (a transport
    /// of the caller's own; tests).
    pub fn insert(&mut self, raw: Vec<u8>, bucket: Arc<dyn Bucket>) {
        self.open.insert(raw, bucket);
    }

    /// The bucket a raw commitment names, opened once (`bad_commitment` if
    /// it does not parse or the endpoint policy refuses it).
    pub fn get(&mut self, raw: Vec<u8>) -> Result<Arc<dyn Bucket>, Rejection> {
        if let Some(bucket) = self.open.get(&raw) {
            return Ok(Arc::clone(bucket));
        }
        let commitment =
            BucketCommitment::parse(&raw).map_err(|e| Rejection::BadCommitment(e.to_string()))?;
        let commitment = self.rerooted(commitment);
        let bucket: Arc<dyn Bucket> = open_bucket(&commitment, self.policy)
            .map_err(|e| Rejection::BadCommitment(e.to_string()))?
            .into();
        self.open.insert(raw, Arc::clone(&bucket));
        Ok(bucket)
    }
}

/// Downloads and checks `expect.uid`'s delta pinned by the deadline snapshot.
/// `seen` is filled as soon as the pinned object is known, so a rejection
/// after that still names it.
pub fn fetch_candidate(
    chain: &dyn Chain,
    buckets: &Mutex<BucketCache>,
    expect: &Expectation<'_>,
    seen: &mut Option<Seen>,
) -> Result<Candidate, Rejection> {
    fetch_and_check(chain, buckets, expect, seen, &mut false)
}

/// [`fetch_candidate`], telling in `pinned_bytes` whether the bucket served
/// the pinned bytes (its size and digest matched the pin): a rejection
/// after that is about those bytes, one before it about the bucket now (its
/// commitment, its reachability, what it serves under the key) or about
/// the pin itself. An auditor re-checking a round long after needs the
/// difference.
pub fn fetch_and_check(
    chain: &dyn Chain,
    buckets: &Mutex<BucketCache>,
    expect: &Expectation<'_>,
    seen: &mut Option<Seen>,
    pinned_bytes: &mut bool,
) -> Result<Candidate, Rejection> {
    *pinned_bytes = false;
    let raw = chain
        .commitment(expect.netuid, &expect.hotkey)
        .map_err(|e| Rejection::ValidatorError(format!("chain: {e}")))?
        .ok_or(Rejection::NoCommitment)?;
    let bucket = buckets
        .lock()
        .map_err(|_| Rejection::ValidatorError("bucket cache".into()))?
        .get(raw)?;
    let Some(pin) = expect.pinned.filter(|p| p.hotkey == expect.hotkey) else {
        if let Some(why) = expect.unlisted {
            return Err(why.clone());
        }
        // Nothing at the deadline; say whether something came later (a
        // courtesy to the miner, within the fixed part of the budget).
        let (hotkey, blocks) = (expect.hotkey, expect.blocks.clone());
        let later = within(expect.budget_base, move || {
            latest_delta(bucket.as_ref(), &hotkey, blocks)
        });
        return Err(match later {
            Some(Ok(Some(found))) => Rejection::Late(format!(
                "{} was not in the bucket when the validator listed it at the deadline",
                found.info.key
            )),
            _ => Rejection::NoDelta,
        });
    };
    *seen = Some(Seen {
        key: pin.key.clone(),
        size: pin.size,
        digest: pin.digest,
    });
    if !expect.blocks.contains(&pin.block) {
        return Err(Rejection::Stale(format!(
            "{} names block {}, before the current master was published",
            pin.key, pin.block
        )));
    }
    let max_sealed = max_sealed_len(expect.limits.max_file_size);
    if pin.size > max_sealed {
        return Err(Rejection::TooLarge(format!(
            "{} is {} bytes; the cap for this model is {max_sealed}",
            pin.key, pin.size
        )));
    }
    let started = Instant::now();
    // A name of its own: a download abandoned at its budget may still land
    // later, and must not land on a later one.
    let sealed = expect
        .dest
        .with_extension(format!("{}.sealed", unique_name_part()));
    let budget = download_budget(expect.budget_base, pin.size);
    let downloaded = download_pinned(&bucket, pin, &sealed, max_sealed, budget);
    let download = started.elapsed();
    if let Err(why) = downloaded {
        let _ = std::fs::remove_file(&sealed);
        return Err(why);
    }
    *pinned_bytes = true;
    let opened = open_upload(
        chain,
        expect.seal_rounds,
        &sealed,
        expect.dest,
        expect.limits.max_file_size,
    );
    let _ = std::fs::remove_file(&sealed);
    opened?;
    let delta = open_file(expect.dest, expect.limits).map_err(|e| match e {
        Error::Io { .. } => Rejection::ValidatorError(e.to_string()),
        _ => Rejection::from_delta_error(&e),
    })?;
    let reader = delta.reader();
    let header = *reader.header();
    if header.base_revision != expect.master {
        return Err(Rejection::Stale(format!(
            "made against master {}, the current master is {}",
            header.base_revision.short(),
            expect.master.short()
        )));
    }
    if header.block != pin.block {
        return Err(Rejection::Stale(format!(
            "the header says block {}, the key block {}",
            header.block, pin.block
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
        object: Seen {
            key: pin.key.clone(),
            size: pin.size,
            digest: pin.digest,
        },
        sketch,
        digest,
        fingerprint,
        download,
        delta,
    })
}

/// The fixed part of a download's budget (connection, first byte).
pub const DOWNLOAD_BASE_BUDGET: Duration = Duration::from_secs(30);

/// The slowest rate, in bytes per second, at which an honest bucket is
/// expected to serve a delta; a download may take its size at this rate on
/// top of [`DOWNLOAD_BASE_BUDGET`].
pub const MIN_DOWNLOAD_RATE: u64 = 4 << 20;

/// The wall-clock budget for downloading a pinned object of `size` bytes
/// (`base` is [`DOWNLOAD_BASE_BUDGET`] in a validator): a server that drips
/// bytes or stalls costs the round at most this.
pub fn download_budget(base: Duration, size: u64) -> Duration {
    base + Duration::from_secs(size / MIN_DOWNLOAD_RATE)
}

/// Runs `work` on a thread of its own and waits at most `budget` for it:
/// `None` if it did not finish in time (it is left to end on its own
/// request timeouts; whatever it returns then is dropped).
fn within<T: Send + 'static>(
    budget: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    rx.recv_timeout(budget).ok()
}

/// How long phase one may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchBudget {
    /// The fixed part of each uid's budget ([`download_budget`]); also the
    /// most a listing after the deadline (to tell `late` from `no_delta`)
    /// may take.
    pub per_uid_base: Duration,
    /// The most the whole phase may take: uids not started by then are the
    /// validator's `validator_error` (its capacity ran out, not the miner's
    /// server), judged again next round. Uids in flight then finish within
    /// their own budgets.
    pub total: Duration,
    /// Uids fetched at the same time.
    pub parallelism: usize,
}

impl Default for FetchBudget {
    /// 30 s per uid plus its size at 4 MiB/s, 16 at a time, 10 minutes in
    /// all: 256 uids whose servers all stall cost 16 rounds of 30 s = 8 min.
    fn default() -> Self {
        FetchBudget {
            per_uid_base: DOWNLOAD_BASE_BUDGET,
            total: Duration::from_secs(600),
            parallelism: 16,
        }
    }
}

/// What phase one got for one uid: the object it got as far as choosing,
/// and the candidate or the rejection.
pub type Fetched = (Option<Seen>, Result<Candidate, Rejection>);

/// Fetches the candidate of every expectation ([`fetch_candidate`]),
/// `budget.parallelism` at a time, starting none after `budget.total`.
/// Returns, in the order given, what each got as far as choosing and its
/// candidate or rejection.
pub fn fetch_all(
    chain: &dyn Chain,
    buckets: &Mutex<BucketCache>,
    expectations: &[Expectation<'_>],
    budget: &FetchBudget,
) -> Vec<Fetched> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let stop = Instant::now() + budget.total;
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<Fetched>>> =
        Mutex::new((0..expectations.len()).map(|_| None).collect());
    let workers = budget.parallelism.clamp(1, expectations.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    if Instant::now() >= stop {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(expect) = expectations.get(i) else {
                        return;
                    };
                    let mut seen = None;
                    let fetched = fetch_candidate(chain, buckets, expect, &mut seen);
                    if let Ok(mut slots) = done.lock() {
                        slots[i] = Some((seen, fetched));
                    }
                }
            });
        }
    });
    let slots = done.into_inner().unwrap_or_else(|e| e.into_inner());
    slots
        .into_iter()
        .zip(expectations)
        .map(|(slot, expect)| {
            slot.unwrap_or_else(|| {
                let why = format!(
                    "phase one's budget of {} s ran out before uid {} was fetched",
                    budget.total.as_secs(),
                    expect.uid
                );
                (None, Err(Rejection::ValidatorError(why)))
            })
        })
        .collect()
}

/// Downloads the pinned object into `sealed` within `budget` (past it the
/// uid is `unreachable` and the transfer is left to end on its own request
/// timeouts), and checks it is the pinned content: the size listed at the
/// deadline and the digest its key names. Failures of the validator's own
/// disk (paths beside `sealed`) are its own.
fn download_pinned(
    bucket: &Arc<dyn Bucket>,
    pin: &Pin,
    sealed: &Path,
    max_sealed: u64,
    budget: Duration,
) -> Result<(), Rejection> {
    let own = |e: &Error| matches!(e, Error::Io { path, .. } if path.parent() == sealed.parent());
    let (worker_bucket, key, path) = (Arc::clone(bucket), pin.key.clone(), sealed.to_path_buf());
    let downloaded = within(budget, move || {
        worker_bucket.get_to_file(&key, &path, max_sealed)
    });
    let stored = match downloaded {
        Some(result) => result.map_err(|e| {
            if own(&e) {
                Rejection::ValidatorError(e.to_string())
            } else {
                Rejection::from_delta_error(&e)
            }
        })?,
        None => {
            return Err(Rejection::Unreachable(format!(
                "{} ({} bytes) did not download within {} s",
                pin.key,
                pin.size,
                budget.as_secs()
            )));
        }
    };
    let digest = Digest::of_file(sealed).map_err(|e| Rejection::ValidatorError(e.to_string()))?;
    if stored.size != pin.size || digest != pin.digest {
        return Err(Rejection::Corrupt(format!(
            "{} holds {} bytes with digest {}; the deadline listing pinned {} bytes and its \
             key names {}",
            pin.key,
            stored.size,
            digest.short(),
            pin.size,
            pin.digest.short()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_opens_only_what_the_endpoint_policy_allows() {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().canonicalize().unwrap();
        crate::storage::LocalBucket::create(parent.join("miner")).unwrap();
        let local = BucketCommitment::local(&parent, "miner").unwrap();
        let loopback = BucketCommitment::public("http://127.0.0.1:9000", "miner");
        let metadata = BucketCommitment::public("https://169.254.169.254", "miner");
        let mut strict = BucketCache::new(EndpointPolicy::Public);
        for c in [&local, &loopback, &metadata] {
            let raw = c.encode().unwrap().into_bytes();
            match strict.get(raw) {
                Err(Rejection::BadCommitment(why)) => assert!(why.contains("refused"), "{why}"),
                Err(other) => panic!("{c:?}: {other}"),
                Ok(_) => panic!("{c:?} was opened"),
            }
        }
        let mut any = BucketCache::new(EndpointPolicy::Any);
        assert!(any.get(local.encode().unwrap().into_bytes()).is_ok());
    }

    #[test]
    fn a_file_root_reads_a_moved_network_and_only_under_that_root() {
        let old = tempfile::tempdir().unwrap();
        let new = tempfile::tempdir().unwrap();
        let (old_root, new_root) = (
            old.path().canonicalize().unwrap(),
            new.path().canonicalize().unwrap(),
        );
        // The commitment names the old folder; the bucket now lives under
        // the new one.
        let moved = crate::storage::LocalBucket::create(new_root.join("buckets/miner")).unwrap();
        moved.put("k", b"moved").unwrap();
        let raw = BucketCommitment::local(&old_root.join("buckets"), "miner")
            .unwrap()
            .encode()
            .unwrap()
            .into_bytes();
        let mut plain = BucketCache::new(EndpointPolicy::Any);
        assert!(plain.get(raw.clone()).is_err(), "the old folder is gone");
        let mut rooted = BucketCache::new(EndpointPolicy::Any).with_file_root(&old_root, &new_root);
        let bucket = rooted.get(raw).unwrap();
        assert_eq!(bucket.get("k", 64).unwrap(), b"moved");
        // A commitment outside the old root is opened where it says.
        crate::storage::LocalBucket::create(old_root.join("elsewhere/bkt")).unwrap();
        let outside = BucketCommitment::local(&old_root.join("elsewhere"), "bkt").unwrap();
        let mut other = BucketCache::new(EndpointPolicy::Any).with_file_root(&new_root, &old_root);
        assert!(other.get(outside.encode().unwrap().into_bytes()).is_ok());
        // The policy still applies to the moved commitment.
        let mut strict =
            BucketCache::new(EndpointPolicy::Public).with_file_root(&old_root, &new_root);
        let raw = BucketCommitment::local(&old_root.join("buckets"), "miner")
            .unwrap()
            .encode()
            .unwrap()
            .into_bytes();
        assert!(matches!(strict.get(raw), Err(Rejection::BadCommitment(_))));
    }

    /// A bucket whose downloads stall until released (a miner's server that
    /// drips bytes), or two minutes pass.
    struct Stalling(
        crate::storage::LocalBucket,
        Mutex<std::sync::mpsc::Receiver<()>>,
    );

    impl Bucket for Stalling {
        fn put(&self, key: &str, bytes: &[u8]) -> crate::error::Result<()> {
            self.0.put(key, bytes)
        }
        fn put_file(&self, key: &str, path: &Path) -> crate::error::Result<()> {
            self.0.put_file(key, path)
        }
        fn get(&self, key: &str, max: u64) -> crate::error::Result<Vec<u8>> {
            self.0.get(key, max)
        }
        fn get_range(&self, key: &str, r: std::ops::Range<u64>) -> crate::error::Result<Vec<u8>> {
            self.0.get_range(key, r)
        }
        fn get_to_file(
            &self,
            key: &str,
            dest: &Path,
            max: u64,
        ) -> crate::error::Result<crate::storage::ObjectInfo> {
            if let Ok(release) = self.1.lock() {
                let _ = release.recv_timeout(Duration::from_secs(120));
            }
            self.0.get_to_file(key, dest, max)
        }
        fn head(&self, key: &str) -> crate::error::Result<Option<crate::storage::ObjectInfo>> {
            self.0.head(key)
        }
        fn list(&self, prefix: &str) -> crate::error::Result<Vec<crate::storage::ObjectInfo>> {
            self.0.list(prefix)
        }
        fn delete(&self, key: &str) -> crate::error::Result<()> {
            self.0.delete(key)
        }
    }

    #[test]
    fn a_stalled_download_costs_its_budget_and_is_unreachable() {
        use crate::chain::{LocalChain, LocalChainConfig, local::SubnetConfig};
        use crate::identity::Keypair;
        use crate::storage::keys::delta_key;
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().canonicalize().unwrap();
        let chain =
            LocalChain::open_or_create(parent.join("chain"), &LocalChainConfig::manual([1; 32]))
                .unwrap();
        chain.add_subnet(1, SubnetConfig::default()).unwrap();
        let miner = Keypair::from_seed([4; 32]).unwrap();
        let hotkey = miner.public();
        let uid = chain.register(1, &hotkey, &hotkey, 0).unwrap();
        let commitment = BucketCommitment::local(&parent, "miner").unwrap();
        let raw = commitment.encode().unwrap().into_bytes();
        chain.set_commitment(1, &miner, &raw).unwrap();
        let local = crate::storage::LocalBucket::create(parent.join("miner")).unwrap();
        let bytes = b"a sealed delta".to_vec();
        let digest = Digest::of(&bytes);
        let key = delta_key(&hotkey, 5, &digest);
        local.put(&key, &bytes).unwrap();
        let (release, stalled) = std::sync::mpsc::channel();
        let cache = Mutex::new(BucketCache::new(EndpointPolicy::Any));
        cache
            .lock()
            .unwrap()
            .insert(raw, Arc::new(Stalling(local, Mutex::new(stalled))));
        let pin = Pin {
            hotkey,
            key,
            block: 5,
            digest,
            size: bytes.len() as u64,
        };
        let rounds = 1..=2;
        let limits = Limits::for_model(1000);
        let dest = parent.join("uid.delta");
        let expect = Expectation {
            netuid: 1,
            uid,
            hotkey,
            master: Digest::ZERO,
            blocks: 0..=9,
            pinned: Some(&pin),
            unlisted: None,
            seal_rounds: &rounds,
            limits: &limits,
            dest: &dest,
            budget_base: Duration::from_millis(200),
        };
        let mut seen = None;
        // Only the budget can end this call before the download is released.
        let result = fetch_candidate(&chain, &cache, &expect, &mut seen);
        let _ = release.send(());
        match result {
            Err(Rejection::Unreachable(why)) => assert!(why.contains("within"), "{why}"),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("a stalled download was accepted"),
        }
        assert_eq!(seen.map(|s| s.digest), Some(digest));
    }
}
