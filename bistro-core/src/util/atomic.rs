//! Atomic file replacement: write a temp file beside the destination, flush
//! it to disk, rename it over the destination, flush the folder.
//!
//! Temp files are named `.<name>.<pid>.<n>.tmp` in the destination's folder
//! (unique per process and call, created with `create_new` so two writers
//! never share one): a leading `.` keeps them out of every bucket key (see
//! [`crate::storage::validate_key`]), so a process killed mid-write leaves at
//! worst an invisible temp file, never a half-written file.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Distinguishes temp files of concurrent writers within one process.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// `<pid>.<n>`: a file-name part no other caller in this process (nor
/// another process) uses.
pub(crate) fn unique_name_part() -> String {
    let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
    format!("{}.{n}", std::process::id())
}

/// The suffix every temp file has.
pub const TEMP_SUFFIX: &str = ".tmp";

/// A temp file beside its destination that is removed on drop unless
/// [`commit`](TempFile::commit)ted.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    dest: PathBuf,
    file: Option<File>,
}

impl TempFile {
    /// Creates a fresh temp file beside `dest` (whose folder must exist).
    pub fn beside(dest: &Path) -> Result<Self> {
        Self::create(dest, false)
    }

    /// Like [`beside`](Self::beside), but readable by the owner only (on
    /// Unix: mode 0600), for files that hold keys.
    pub fn beside_private(dest: &Path) -> Result<Self> {
        Self::create(dest, true)
    }

    fn create(dest: &Path, private: bool) -> Result<Self> {
        let name = dest.file_name().ok_or_else(|| {
            Error::InvalidArgument(format!("{} does not name a file", dest.display()))
        })?;
        let mut temp_name = OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{}{TEMP_SUFFIX}", unique_name_part()));
        let path = folder_of(dest).join(temp_name);
        let mut options = File::options();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        let file = options.open(&path).map_err(|e| Error::io(&path, e))?;
        Ok(TempFile {
            path,
            dest: dest.to_path_buf(),
            file: Some(file),
        })
    }

    /// The open temp file, to write into.
    pub fn file(&mut self) -> Result<&mut File> {
        self.file
            .as_mut()
            .ok_or_else(|| Error::InvalidArgument("temp file already closed".into()))
    }

    /// The temp file's path (for error messages, or to read it back).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes the data to disk and renames the temp file over the
    /// destination; then flushes the folder so the rename survives a crash.
    pub fn commit(mut self) -> Result<()> {
        self.sync()?;
        fs::rename(&self.path, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
        self.path = PathBuf::new();
        sync_folder(&self.dest);
        Ok(())
    }

    /// Like [`commit`](Self::commit), but refuses to replace an existing
    /// destination ([`Error::InvalidArgument`]): the temp file is hard-linked
    /// to the destination, which fails if it exists, and then removed.
    pub fn commit_new(mut self) -> Result<()> {
        self.sync()?;
        let linked = fs::hard_link(&self.path, &self.dest);
        // Drop removes the temp name whether or not the link was made.
        linked.map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::InvalidArgument(format!(
                "{} already exists; not replacing it",
                self.dest.display()
            )),
            _ => Error::io(&self.dest, e),
        })?;
        sync_folder(&self.dest);
        Ok(())
    }

    /// Flushes and closes the file.
    fn sync(&mut self) -> Result<()> {
        if let Some(file) = self.file.take() {
            file.sync_all().map_err(|e| Error::io(&self.path, e))?;
        }
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

/// The folder `path` is in (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Flushes the folder of `path` so a rename into it survives a crash. Best
/// effort: some file systems refuse to sync a directory, and the data itself
/// is already on disk.
fn sync_folder(path: &Path) {
    if let Ok(dir) = File::open(folder_of(path)) {
        let _ = dir.sync_all();
    }
}

/// Replaces the file `dest` with `bytes` atomically: a reader (or a process
/// restarted after a crash) sees the old content or the new, never a mix.
pub fn write_file_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut temp = TempFile::beside(dest)?;
    let path = temp.path().to_path_buf();
    temp.file()?
        .write_all(bytes)
        .map_err(|e| Error::io(&path, e))?;
    temp.commit()
}

/// Replaces `dest` atomically with what `fill` writes into a buffered temp
/// file (1 MiB buffer). A failed `fill` leaves `dest` as it was and removes
/// the temp file.
pub fn write_atomic_with(
    dest: &Path,
    fill: impl FnOnce(&mut BufWriter<&mut File>) -> Result<()>,
) -> Result<()> {
    let mut temp = TempFile::beside(dest)?;
    let path = temp.path().to_path_buf();
    {
        let mut writer = BufWriter::with_capacity(1 << 20, temp.file()?);
        fill(&mut writer)?;
        writer.flush().map_err(|e| Error::io(&path, e))?;
    }
    temp.commit()
}

/// Whether a directory entry name is a temp file of [`TempFile`].
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(TEMP_SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

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
        assert_eq!(names(dir.path()), ["obj"]);
    }

    #[test]
    fn temp_names_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("obj");
        let a = TempFile::beside(&dest).unwrap();
        let b = TempFile::beside(&dest).unwrap();
        assert_ne!(a.path(), b.path());
        assert_eq!(names(dir.path()).len(), 2);
        drop((a, b));
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn commit_new_refuses_to_replace() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("key.json");
        let mut t = TempFile::beside_private(&dest).unwrap();
        t.file().unwrap().write_all(b"one").unwrap();
        t.commit_new().unwrap();
        let mut t = TempFile::beside_private(&dest).unwrap();
        t.file().unwrap().write_all(b"two").unwrap();
        assert!(matches!(t.commit_new(), Err(Error::InvalidArgument(_))));
        assert_eq!(fs::read(&dest).unwrap(), b"one");
        assert_eq!(names(dir.path()), ["key.json"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&dest).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn failed_fill_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        write_file_atomic(&dest, b"old").unwrap();
        let r = write_atomic_with(&dest, |w| {
            w.write_all(b"partial").unwrap();
            Err(Error::InvalidArgument("stop".into()))
        });
        assert!(r.is_err());
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        write_atomic_with(&dest, |w| {
            w.write_all(b"new").map_err(|e| Error::io(&dest, e))
        })
        .unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["f"]);
    }
}
