//! Atomic file replacement: write a temp file beside the destination, flush
//! it to disk, rename it over the destination.
//!
//! Temp files are named `.<name>.<pid>.<n>.tmp` in the destination's folder:
//! a leading `.` keeps them out of every key (see [`super::validate_key`]),
//! so a process killed mid-write leaves at worst an invisible temp file,
//! never a half-written object.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Distinguishes temp files of concurrent writers within one process.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// The suffix every temp file has.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// A temp file that is removed on drop unless [`TempFile::commit`]ted.
pub(crate) struct TempFile {
    path: PathBuf,
    dest: PathBuf,
    file: Option<File>,
}

impl TempFile {
    /// Creates a fresh temp file beside `dest` (whose parent must exist).
    pub(crate) fn beside(dest: &Path) -> Result<Self> {
        let parent = dest.parent().unwrap_or(Path::new("."));
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                Error::InvalidArgument(format!("{} does not name a file", dest.display()))
            })?;
        let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
        let path = parent.join(format!(".{name}.{}.{n}{TEMP_SUFFIX}", std::process::id()));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(TempFile {
            path,
            dest: dest.to_path_buf(),
            file: Some(file),
        })
    }

    /// The open temp file, to write into.
    pub(crate) fn file(&mut self) -> Result<&mut File> {
        self.file
            .as_mut()
            .ok_or_else(|| Error::InvalidArgument("temp file already closed".into()))
    }

    /// The temp file's path (for error messages).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes the data to disk and renames the temp file over the
    /// destination; then flushes the folder so the rename survives a crash.
    pub(crate) fn commit(mut self) -> Result<()> {
        if let Some(file) = self.file.take() {
            file.sync_all().map_err(|e| Error::io(&self.path, e))?;
        }
        fs::rename(&self.path, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
        if let Some(parent) = self.dest.parent() {
            // Best effort: some file systems refuse to fsync a directory.
            if let Ok(dir) = File::open(parent) {
                let _ = dir.sync_all();
            }
        }
        // Renamed: nothing left to clean up.
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            self.file.take();
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Replaces the file `dest` with `bytes` atomically: a reader (or a process
/// restarted after a crash) sees the old content or the new, never a mix.
pub fn write_file_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut temp = TempFile::beside(dest)?;
    let path = temp.path().to_path_buf();
    temp.file()?
        .write_all(bytes)
        .map_err(|e| Error::io(&path, e))?;
    temp.commit()
}

/// Whether a directory entry name is a temp file of [`TempFile`].
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(TEMP_SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn commit_replaces_and_drop_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("obj");
        fs::write(&dest, b"old").unwrap();

        let mut t = TempFile::beside(&dest).unwrap();
        t.file().unwrap().write_all(b"half").unwrap();
        let temp_path = t.path().to_path_buf();
        assert!(is_temp_name(
            &temp_path.file_name().unwrap().to_string_lossy()
        ));
        drop(t);
        assert!(!temp_path.exists());
        assert_eq!(fs::read(&dest).unwrap(), b"old");

        let mut t = TempFile::beside(&dest).unwrap();
        t.file().unwrap().write_all(b"new").unwrap();
        t.commit().unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
