//! Buckets: where miners publish deltas and validators keep masters, state
//! and evaluation logs.
//!
//! A [`Bucket`] is a flat map from keys to immutable byte objects with a
//! synchronous API. Two backends implement it:
//!
//! - [`LocalBucket`]: a directory (always available; the local network demo
//!   and tests use it);
//! - `S3Bucket` (feature `s3`): AWS S3, Cloudflare R2, MinIO or any
//!   S3-compatible server, through `rust-s3`'s blocking client.
//!
//! Both promise the same things:
//!
//! - **Atomic puts.** A reader sees the old object or the new one, never part
//!   of one. (Local: temp file + rename; S3: a single PUT or a completed
//!   multipart upload, which S3 makes visible at once.)
//! - **Bounded downloads.** Every read takes a byte cap; an object over it is
//!   refused with [`Error::LimitExceeded`](crate::Error::LimitExceeded), and a
//!   server whose `Content-Length` lies is cut off at the cap.
//! - **Checked keys.** One rule, [`validate_key`], for every backend: keys
//!   cannot name anything outside the bucket.
//!
//! [`keys`] lays out where deltas, masters and validator state live;
//! [`commitment`] is the string a miner publishes on chain so validators can
//! open its bucket with [`open_bucket`]. The full specification is
//! `docs/storage.md`.

use std::ops::Range;
use std::path::Path;
use std::time::SystemTime;

use crate::error::Result;

pub mod commitment;
pub mod endpoint;
mod key;
pub mod keys;
mod limited;
mod local;
mod open;
#[cfg(feature = "s3")]
mod s3;

pub use crate::util::atomic::write_file_atomic;
pub use commitment::BucketCommitment;
pub use endpoint::EndpointPolicy;
pub use key::{MAX_KEY_BYTES, validate_key, validate_prefix};
pub use local::LocalBucket;
pub use open::open_bucket;
#[cfg(feature = "s3")]
#[cfg_attr(docsrs, doc(cfg(feature = "s3")))]
pub use s3::{
    ACCESS_KEY_ENV, MAX_PART_BYTES, MAX_PARTS, MIN_PART_BYTES, RetryPolicy, S3Bucket, S3Config,
    S3Credentials, SECRET_KEY_ENV,
};

/// The most objects one [`Bucket::list`] call returns before failing with
/// [`Error::LimitExceeded`](crate::Error::LimitExceeded): a stranger's bucket
/// with millions of keys must not exhaust a validator's memory.
pub const MAX_LIST_OBJECTS: usize = 200_000;

/// What a bucket knows about one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object's key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When the storage server finished writing it (the server's clock, not
    /// the writer's: see `docs/storage.md`, "Choosing the latest delta").
    /// S3 reports whole seconds in `HEAD` and milliseconds in listings.
    pub last_modified: SystemTime,
}

/// `bucket.get(key, max_bytes)`, with a missing object as `None` rather
/// than an error (the small records that may not have been written yet).
pub fn get_if_present(bucket: &dyn Bucket, key: &str, max_bytes: u64) -> Result<Option<Vec<u8>>> {
    match bucket.get(key, max_bytes) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(crate::error::Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A store of immutable byte objects under string keys.
///
/// Every method validates its key with [`validate_key`] (or its prefix with
/// [`validate_prefix`]) first. Objects are replaced whole: there is no append
/// and no partial write.
pub trait Bucket: Send + Sync {
    /// Stores `bytes` under `key`, replacing any object there atomically.
    fn put(&self, key: &str, bytes: &[u8]) -> Result<()>;

    /// Stores the contents of the file at `path` under `key`, atomically,
    /// streaming it (S3 uploads large files in parts; memory use is one part).
    /// `path` may be a pipe: the file is read once, to its end.
    fn put_file(&self, key: &str, path: &Path) -> Result<()>;

    /// The whole object, if it is at most `max_bytes` long; otherwise
    /// [`Error::LimitExceeded`](crate::Error::LimitExceeded) before or while
    /// downloading. A missing object is [`Error::NotFound`](crate::Error::NotFound).
    fn get(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>>;

    /// The bytes of `range` (half-open, in object offsets), clipped at the
    /// object's end like an HTTP `Range` request. An empty range returns no
    /// bytes; a non-empty range that starts at or past the end is
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument). At most
    /// `range.end - range.start` bytes are ever held.
    fn get_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>>;

    /// Downloads the object into the file `dest` (temp file beside it, then
    /// rename, so `dest` is never half-written), if it is at most `max_bytes`
    /// long. Returns what was downloaded. Use this for deltas and masters that
    /// are then memory-mapped.
    fn get_to_file(&self, key: &str, dest: &Path, max_bytes: u64) -> Result<ObjectInfo>;

    /// Size and storage timestamp of the object, or `None` if there is none.
    fn head(&self, key: &str) -> Result<Option<ObjectInfo>>;

    /// Every object whose key starts with `prefix` (plain string prefix, not
    /// only whole path components), sorted by key. At most
    /// [`MAX_LIST_OBJECTS`].
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;

    /// Removes the object. Removing a missing object is not an error.
    fn delete(&self, key: &str) -> Result<()>;
}

impl<B: Bucket + ?Sized> Bucket for Box<B> {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        (**self).put(key, bytes)
    }
    fn put_file(&self, key: &str, path: &Path) -> Result<()> {
        (**self).put_file(key, path)
    }
    fn get(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>> {
        (**self).get(key, max_bytes)
    }
    fn get_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>> {
        (**self).get_range(key, range)
    }
    fn get_to_file(&self, key: &str, dest: &Path, max_bytes: u64) -> Result<ObjectInfo> {
        (**self).get_to_file(key, dest, max_bytes)
    }
    fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        (**self).head(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        (**self).list(prefix)
    }
    fn delete(&self, key: &str) -> Result<()> {
        (**self).delete(key)
    }
}
