//! [`LocalBucket`]: a bucket that is a directory on this machine.
//!
//! Key `a/b/c` is the file `<root>/a/b/c`. Puts write a temp file beside the
//! destination and rename it over (see `atomic.rs`), so readers and a process
//! killed mid-write see the old object or the new one. Symbolic links inside
//! the directory are neither listed nor followed when reading.
//!
//! One difference from S3: a key cannot be both an object and a folder of
//! other keys (`a` and `a/b`); such a put fails with an I/O error.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::key::{validate_key, validate_prefix};
use super::limited::CappedWriter;
use super::{Bucket, MAX_LIST_OBJECTS, ObjectInfo};
use crate::error::{Error, Result};
use crate::util::atomic::{TempFile, is_temp_name};

/// A bucket stored in a directory.
#[derive(Clone, Debug)]
pub struct LocalBucket {
    root: PathBuf,
}

impl LocalBucket {
    /// Opens (creating if needed) the bucket in directory `root`.
    pub fn create(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        Self::open(root)
    }

    /// Opens the bucket in directory `root`, which must exist.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        let root = fs::canonicalize(root).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => {
                Error::NotFound(format!("bucket directory {}", root.display()))
            }
            _ => Error::io(root, e),
        })?;
        if !root.is_dir() {
            return Err(Error::InvalidArgument(format!(
                "{} is not a directory",
                root.display()
            )));
        }
        Ok(LocalBucket { root })
    }

    /// The bucket's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that holds `key` (after validating the key).
    pub fn path_of(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    /// Opens the object for reading without following a symlink at any level
    /// below the root; returns the file and its length.
    fn open_object(&self, key: &str) -> Result<(File, u64, PathBuf)> {
        let path = self.path_of(key)?;
        let not_found = || Error::NotFound(format!("object {key:?}"));
        // Refuse symlinks in any component: the bucket is this directory only.
        let mut walk = self.root.clone();
        for component in key.split('/') {
            walk.push(component);
            match fs::symlink_metadata(&walk) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(Error::InvalidArgument(format!(
                        "object {key:?} goes through a symbolic link"
                    )));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_found()),
                Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Err(not_found()),
                Err(e) => return Err(Error::io(&walk, e)),
            }
        }
        let file = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => not_found(),
            _ => Error::io(&path, e),
        })?;
        let meta = file.metadata().map_err(|e| Error::io(&path, e))?;
        if !meta.is_file() {
            return Err(not_found());
        }
        Ok((file, meta.len(), path))
    }

    fn info(key: &str, meta: &fs::Metadata, path: &Path) -> Result<ObjectInfo> {
        Ok(ObjectInfo {
            key: key.to_string(),
            size: meta.len(),
            last_modified: meta.modified().map_err(|e| Error::io(path, e))?,
        })
    }

    /// Refuses a key whose folders (below the root) include a symbolic
    /// link, which could point outside the bucket.
    fn refuse_linked_folders(&self, key: &str) -> Result<()> {
        let mut walk = self.root.clone();
        let folders = key.rsplit_once('/').map_or("", |(dirs, _)| dirs);
        for component in folders.split('/').filter(|c| !c.is_empty()) {
            walk.push(component);
            match fs::symlink_metadata(&walk) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(Error::InvalidArgument(format!(
                        "object {key:?} goes through a symbolic link"
                    )));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(Error::io(&walk, e)),
            }
        }
        Ok(())
    }

    fn prepare_parent(&self, path: &Path) -> Result<()> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        Ok(())
    }

    /// Writes the object with `fill` filling a temp file, then renames it.
    fn put_with(&self, key: &str, fill: impl FnOnce(&mut File, &Path) -> Result<()>) -> Result<()> {
        let path = self.path_of(key)?;
        self.refuse_linked_folders(key)?;
        self.prepare_parent(&path)?;
        let mut temp = TempFile::beside(&path)?;
        let temp_path = temp.path().to_path_buf();
        fill(temp.file()?, &temp_path)?;
        temp.commit()
    }

    /// Walks `dir` (a folder under the root whose relative path is
    /// `dir_key`), collecting objects whose keys start with `prefix`.
    fn walk(
        &self,
        dir: &Path,
        dir_key: &str,
        prefix: &str,
        out: &mut Vec<ObjectInfo>,
    ) -> Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue; // not UTF-8: cannot be a key
            };
            if is_temp_name(&name) {
                continue;
            }
            let key = if dir_key.is_empty() {
                name
            } else {
                format!("{dir_key}/{name}")
            };
            if validate_key(&key).is_err() {
                continue; // a file someone put there by hand, not an object
            }
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(|e| Error::io(&path, e))?;
            if meta.is_dir() {
                // Descend only where keys can still match the prefix.
                let dir_prefix = format!("{key}/");
                if dir_prefix.starts_with(prefix) || prefix.starts_with(&dir_prefix) {
                    self.walk(&path, &key, prefix, out)?;
                }
            } else if meta.is_file() && key.starts_with(prefix) {
                if out.len() >= MAX_LIST_OBJECTS {
                    return Err(Error::limit(
                        format!("objects under prefix {prefix:?}"),
                        MAX_LIST_OBJECTS as u64,
                        out.len() as u64 + 1,
                    ));
                }
                out.push(Self::info(&key, &meta, &path)?);
            }
        }
        Ok(())
    }
}

impl Bucket for LocalBucket {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        self.put_with(key, |file, temp| {
            file.write_all(bytes).map_err(|e| Error::io(temp, e))
        })
    }

    fn put_file(&self, key: &str, source: &Path) -> Result<()> {
        let mut input = File::open(source).map_err(|e| Error::io(source, e))?;
        self.put_with(key, |file, temp| {
            io::copy(&mut input, file).map_err(|e| Error::io(temp, e))?;
            Ok(())
        })
    }

    fn get(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>> {
        let (file, len, path) = self.open_object(key)?;
        if len > max_bytes {
            return Err(Error::limit(format!("object {key:?}"), max_bytes, len));
        }
        let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        // The file could grow while we read (a hand edit): never past the cap.
        let cap = max_bytes.saturating_add(1);
        file.take(cap)
            .read_to_end(&mut out)
            .map_err(|e| Error::io(&path, e))?;
        if out.len() as u64 > max_bytes {
            return Err(Error::limit(
                format!("object {key:?}"),
                max_bytes,
                out.len() as u64,
            ));
        }
        Ok(out)
    }

    fn get_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>> {
        if range.start > range.end {
            return Err(Error::InvalidArgument(format!(
                "range {}..{} ends before it starts",
                range.start, range.end
            )));
        }
        let (mut file, len, path) = self.open_object(key)?;
        if range.is_empty() {
            return Ok(Vec::new());
        }
        if range.start >= len {
            return Err(Error::InvalidArgument(format!(
                "range {}..{} starts past the end of {key:?} ({len} bytes)",
                range.start, range.end
            )));
        }
        let end = range.end.min(len);
        let want = end - range.start; // start < len and end > start: no underflow
        file.seek(SeekFrom::Start(range.start))
            .map_err(|e| Error::io(&path, e))?;
        let mut out = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
        file.take(want)
            .read_to_end(&mut out)
            .map_err(|e| Error::io(&path, e))?;
        Ok(out)
    }

    fn get_to_file(&self, key: &str, dest: &Path, max_bytes: u64) -> Result<ObjectInfo> {
        let (file, len, path) = self.open_object(key)?;
        if len > max_bytes {
            return Err(Error::limit(format!("object {key:?}"), max_bytes, len));
        }
        let meta = file.metadata().map_err(|e| Error::io(&path, e))?;
        let mut info = Self::info(key, &meta, &path)?;
        let mut temp = TempFile::beside(dest)?;
        let temp_path = temp.path().to_path_buf();
        let mut sink = CappedWriter::new(temp.file()?, max_bytes);
        let copied = io::copy(&mut file.take(max_bytes.saturating_add(1)), &mut sink);
        if sink.exceeded() {
            return Err(Error::limit(
                format!("object {key:?}"),
                max_bytes,
                max_bytes.saturating_add(1),
            ));
        }
        info.size = copied.map_err(|e| Error::io(&temp_path, e))?;
        temp.commit()?;
        Ok(info)
    }

    fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        match self.open_object(key) {
            Ok((file, _, path)) => {
                let meta = file.metadata().map_err(|e| Error::io(&path, e))?;
                Ok(Some(Self::info(key, &meta, &path)?))
            }
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        validate_prefix(prefix)?;
        // Start at the deepest folder the prefix names in full.
        let (dir_key, start) = match prefix.rfind('/') {
            Some(i) => (&prefix[..i], self.root.join(&prefix[..i])),
            None => ("", self.root.clone()),
        };
        // Never walk through a symlinked folder named by the prefix.
        let mut walk = self.root.clone();
        for component in dir_key.split('/').filter(|c| !c.is_empty()) {
            walk.push(component);
            match fs::symlink_metadata(&walk) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Ok(Vec::new()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(Error::io(&walk, e)),
            }
        }
        let mut out = Vec::new();
        self.walk(&start, dir_key, prefix, &mut out)?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.path_of(key)?;
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {
                return Err(Error::InvalidArgument(format!(
                    "{key:?} is a folder of other keys, not an object"
                )));
            }
            _ => {}
        }
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(Error::io(&path, e)),
        }
    }
}
