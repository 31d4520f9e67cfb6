//! The local chain's files: a JSON state file replaced atomically under an
//! exclusive lock on a separate lock file.
//!
//! Writers take `chain.lock` exclusively (`std::fs::File::lock`, an advisory
//! `flock` on Unix, which also separates threads that open the file
//! independently), read `chain.json`, change it, write a temporary file,
//! `fsync` it, and rename it over `chain.json`. Readers need no lock: a
//! rename is atomic, so they see the state before or after a change, never
//! half of one. A writer killed at any point leaves the old state, plus at
//! worst a stray temporary file that the next writer ignores.

use crate::util::atomic::TempFile;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The state file's name in the chain directory.
pub(super) const STATE_FILE: &str = "chain.json";
/// The lock file's name in the chain directory.
pub(super) const LOCK_FILE: &str = "chain.lock";
/// Largest state file read (a full 1024-uid subnet with dense weights is ~15 MB).
pub(super) const MAX_STATE_BYTES: u64 = 64 * 1024 * 1024;

/// An exclusive hold on a chain directory, released on drop.
pub(super) struct Locked {
    file: File,
}

impl Drop for Locked {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first is explicit.
        let _ = self.file.unlock();
    }
}

/// Takes the directory's lock, waiting for other writers.
pub(super) fn lock(dir: &Path) -> Result<Locked> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    file.lock().map_err(|e| Error::io(&path, e))?;
    Ok(Locked { file })
}

/// Reads the state file, or `None` if there is none yet.
pub(super) fn read_state_bytes(dir: &Path) -> Result<Option<Vec<u8>>> {
    let path = dir.join(STATE_FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_STATE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(&path, e))?;
    if bytes.len() as u64 > MAX_STATE_BYTES {
        return Err(Error::limit(
            format!("local chain state {}", path.display()),
            MAX_STATE_BYTES,
            bytes.len() as u64,
        ));
    }
    Ok(Some(bytes))
}

/// Replaces the state file (the caller holds the lock).
pub(super) fn write_state_bytes(_locked: &Locked, dir: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write(&dir.join(STATE_FILE), bytes, true)
}

/// Writes `bytes` to `path` atomically (see [`crate::util::atomic`]),
/// replacing it or, without `overwrite`, refusing to replace it. Creates the
/// folder. Files are created readable by the owner only (they may hold keys).
pub(crate) fn atomic_write(path: &Path, bytes: &[u8], overwrite: bool) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut temp = TempFile::beside_private(path)?;
    let tmp = temp.path().to_path_buf();
    temp.file()?
        .write_all(bytes)
        .map_err(|e| Error::io(&tmp, e))?;
    if overwrite {
        temp.commit()
    } else {
        temp.commit_new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_or_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("f.json");
        atomic_write(&path, b"one", false).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        let err = atomic_write(&path, b"two", false).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"one");
        atomic_write(&path, b"three", true).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"three");
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f.json")]);
    }

    #[test]
    fn oversized_state_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = File::create(dir.path().join(STATE_FILE)).unwrap();
        f.set_len(MAX_STATE_BYTES + 10).unwrap();
        assert!(matches!(
            read_state_bytes(dir.path()),
            Err(Error::LimitExceeded { .. })
        ));
    }
}
