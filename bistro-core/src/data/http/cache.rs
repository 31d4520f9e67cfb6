//! A directory of cached blobs. Writes are atomic (temporary file, then
//! rename); readers check what they read (page digests, JSON parsing), and a
//! bad entry is removed and fetched again.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::digest::Digest;
use crate::error::{Error, Result};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A cache directory, one file per key.
#[derive(Clone, Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    /// The cache in `dir/namespace`, created if missing. `namespace` is any
    /// string (a URL, a dataset name); it is hashed into a directory name.
    pub(crate) fn open(dir: &Path, namespace: &str) -> Result<Self> {
        let dir = dir.join(Digest::of(namespace.as_bytes()).short());
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(DiskCache { dir })
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }

    /// The cached bytes for `key` (a plain file name), if any.
    pub(crate) fn get(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(key)).ok()
    }

    /// Stores `bytes` under `key`, atomically.
    pub(crate) fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(key);
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!(".{key}.{}.{n}.tmp", std::process::id()));
        let result = std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| Error::io(&path, e));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Removes a bad entry.
    pub(crate) fn remove(&self, key: &str) {
        let _ = std::fs::remove_file(self.path(key));
    }
}
