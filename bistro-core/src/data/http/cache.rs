//! A directory of cached blobs with a bound on its size. Writes are atomic
//! ([`write_file_atomic`]); readers check what they read (page
//! digests, JSON parsing), and a bad entry is removed and fetched again.
//!
//! Every cache under one root directory (one namespace per URL or dataset)
//! shares the bound [`HttpOptions::max_cache_bytes`](super::HttpOptions):
//! when a write takes the root past it, the least recently used entries
//! (oldest modification time; a hit refreshes it) are deleted until the root
//! holds at most nine tenths of the bound. Other processes may share the
//! root: eviction counts what is on disk, and an entry deleted under a
//! reader is simply fetched again. The cache is an optimisation, so a failed
//! write (a full disk) is ignored rather than failing the read.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::util::atomic::write_file_atomic;

/// A temporary file younger than this may be a write in progress (of this
/// process or another): eviction leaves it alone.
const TEMP_GRACE: Duration = Duration::from_secs(600);

/// The root every namespace of a source lives in, and its size bound.
#[derive(Debug)]
struct Root {
    dir: PathBuf,
    max_bytes: u64,
    /// What this process believes the root holds; recounted on eviction.
    used: AtomicU64,
    evicting: Mutex<()>,
}

/// One file of the cache, as eviction sees it.
struct Entry {
    path: PathBuf,
    size: u64,
    modified: SystemTime,
}

impl Root {
    /// Every file two levels down (`root/namespace/key`), temporary files
    /// included.
    fn entries(&self) -> Vec<Entry> {
        let mut out = Vec::new();
        let Ok(namespaces) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        for ns in namespaces.flatten() {
            let Ok(files) = std::fs::read_dir(ns.path()) else {
                continue;
            };
            for file in files.flatten() {
                let Ok(meta) = file.metadata() else { continue };
                if meta.is_file() {
                    out.push(Entry {
                        path: file.path(),
                        size: meta.len(),
                        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    });
                }
            }
        }
        out
    }

    fn add(&self, bytes: u64) {
        let used = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if used > self.max_bytes {
            self.evict();
        }
    }

    /// Deletes the least recently used entries until the root holds at most
    /// nine tenths of the bound.
    fn evict(&self) {
        let Ok(_guard) = self.evicting.lock() else {
            return;
        };
        let mut entries = self.entries();
        let mut used: u64 = entries.iter().map(|e| e.size).sum();
        let target = self.max_bytes / 10 * 9;
        if used > target {
            entries.sort_by_key(|e| e.modified);
            let now = SystemTime::now();
            for e in entries {
                if used <= target {
                    break;
                }
                let is_temp = e.path.file_name().is_some_and(|n| {
                    n.to_string_lossy().starts_with('.')
                        && now.duration_since(e.modified).unwrap_or_default() < TEMP_GRACE
                });
                if !is_temp && std::fs::remove_file(&e.path).is_ok() {
                    used -= e.size;
                }
            }
        }
        self.used.store(used, Ordering::Relaxed);
    }
}

/// The cache root of one source: hands out its namespaces, which share the
/// bound.
#[derive(Clone, Debug)]
pub(crate) struct CacheRoot(Arc<Root>);

impl CacheRoot {
    /// The cache rooted at `dir` (created if missing), bounded to
    /// `max_bytes`; counts what is already there and evicts if it is over.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let root = Root {
            dir: dir.to_path_buf(),
            max_bytes,
            used: AtomicU64::new(0),
            evicting: Mutex::new(()),
        };
        let used = root.entries().iter().map(|e| e.size).sum();
        root.used.store(used, Ordering::Relaxed);
        if used > max_bytes {
            root.evict();
        }
        Ok(CacheRoot(Arc::new(root)))
    }

    /// The cache of `namespace`: any string (a URL, a dataset name), hashed
    /// into a directory name under the root.
    pub(crate) fn namespace(&self, namespace: &str) -> Result<DiskCache> {
        let dir = self.0.dir.join(Digest::of(namespace.as_bytes()).short());
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(DiskCache {
            dir,
            root: self.clone(),
        })
    }
}

/// A cache directory, one file per key.
#[derive(Clone, Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    root: CacheRoot,
}

impl DiskCache {
    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }

    /// The cached bytes for `key` (a plain file name), if any. A hit marks
    /// the entry as recently used.
    pub(crate) fn get(&self, key: &str) -> Option<Vec<u8>> {
        let mut file = std::fs::File::open(self.path(key)).ok()?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        let _ = file.set_modified(SystemTime::now());
        Some(bytes)
    }

    /// Stores `bytes` under `key`, atomically; best effort (see the module
    /// docs). May evict older entries of the root.
    pub(crate) fn put(&self, key: &str, bytes: &[u8]) {
        // A failed write removes its temp file and is otherwise ignored.
        if write_file_atomic(&self.path(key), bytes).is_ok() {
            self.root.0.add(bytes.len() as u64);
        }
    }

    /// Removes a bad entry.
    pub(crate) fn remove(&self, key: &str) {
        let _ = std::fs::remove_file(self.path(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn age(cache: &DiskCache, key: &str, seconds_ago: u64) {
        let file = std::fs::File::open(cache.path(key)).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(seconds_ago))
            .unwrap();
    }

    #[test]
    fn the_least_recently_used_entries_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let root = CacheRoot::open(dir.path(), 1000).unwrap();
        let a = root.namespace("a").unwrap();
        let b = root.namespace("b").unwrap();
        a.put("old", &[1; 300]);
        a.put("used", &[2; 300]);
        b.put("newer", &[3; 300]);
        age(&a, "old", 300);
        age(&a, "used", 200);
        age(&b, "newer", 100);
        // A hit makes "used" the most recent entry.
        assert_eq!(a.get("used"), Some(vec![2; 300]));
        // 1200 bytes > 1000: evict down to 900, oldest first.
        b.put("new", &[4; 300]);
        assert_eq!(a.get("old"), None);
        assert_eq!(b.get("newer"), Some(vec![3; 300]));
        assert_eq!(a.get("used"), Some(vec![2; 300]));
        assert_eq!(b.get("new"), Some(vec![4; 300]));
        assert_eq!(root.0.used.load(Ordering::Relaxed), 900);
    }

    #[test]
    fn reopening_counts_what_is_there_and_trims_to_a_smaller_bound() {
        let dir = tempfile::tempdir().unwrap();
        {
            let root = CacheRoot::open(dir.path(), 10_000).unwrap();
            let c = root.namespace("x").unwrap();
            for (i, key) in ["k0", "k1", "k2", "k3"].iter().enumerate() {
                c.put(key, &[0; 100]);
                age(&c, key, 100 - i as u64);
            }
        }
        let root = CacheRoot::open(dir.path(), 250).unwrap();
        assert_eq!(root.0.used.load(Ordering::Relaxed), 200);
        let c = root.namespace("x").unwrap();
        assert_eq!(files(&c.dir), vec!["k2", "k3"]);
    }

    #[test]
    fn fresh_temporary_files_are_left_alone_and_stale_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let c = CacheRoot::open(dir.path(), u64::MAX)
            .unwrap()
            .namespace("x")
            .unwrap();
        std::fs::write(c.path(".stale.tmp"), [0; 100]).unwrap();
        std::fs::write(c.path(".fresh.tmp"), [0; 100]).unwrap();
        c.put("entry", &[1; 100]);
        age(&c, ".stale.tmp", 3600);
        age(&c, ".fresh.tmp", 60);
        age(&c, "entry", 30);
        // 300 bytes over a bound of 150: the stale temporary file and the
        // entry go; the write that may still be in progress stays.
        let root = CacheRoot::open(dir.path(), 150).unwrap();
        assert_eq!(files(&c.dir), vec![".fresh.tmp"]);
        assert_eq!(root.0.used.load(Ordering::Relaxed), 100);
    }
}
