//! Atomic file output for the file writer: a temp file beside the
//! destination, renamed over it once complete, removed otherwise.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bistro_core::{Error, Result};

/// Distinguishes temp files of concurrent writers in one process.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// A temp file that is removed when dropped unless [`TempFile::commit`]ted.
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl TempFile {
    /// Creates `.<name>.<pid>.<n>.tmp` beside `dest` (whose folder must
    /// exist) and returns it with the open file.
    pub(crate) fn beside(dest: &Path) -> Result<(Self, File)> {
        let name = dest.file_name().ok_or_else(|| {
            Error::InvalidArgument(format!("{} does not name a file", dest.display()))
        })?;
        let folder = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{}.{n}.tmp", std::process::id()));
        let path = folder.join(temp_name);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let temp = TempFile {
            path,
            dest: dest.to_path_buf(),
            committed: false,
        };
        Ok((temp, file))
    }

    /// The temp file's path.
    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes `file` (this temp file) to disk, renames it over the
    /// destination, and flushes the folder so the rename survives a crash.
    pub(crate) fn commit(mut self, file: File) -> Result<()> {
        file.sync_all().map_err(|e| Error::io(&self.path, e))?;
        drop(file);
        fs::rename(&self.path, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
        self.committed = true;
        if let Some(folder) = self.dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Best effort: some file systems cannot sync a directory, and
            // the rename itself has already happened.
            if let Ok(dir) = File::open(folder) {
                let _ = dir.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}
