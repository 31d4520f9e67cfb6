//! JSON-lines files that survive a crash mid-append: one JSON value a line,
//! each line written whole and synced before [`JsonLines::append`] returns.
//!
//! A process killed mid-append leaves at most a torn last line (bytes after
//! the last `\n`). Readers ignore it ([`complete_lines`]); the next writer
//! cuts it off when it opens the file ([`JsonLines::open`]), so a new line
//! never glues onto half of an old one.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// A JSON-lines file open for appending.
#[derive(Debug)]
pub struct JsonLines {
    path: PathBuf,
    file: File,
}

impl JsonLines {
    /// Opens (creating) the file at `path` for appending, first cutting off
    /// a torn last line.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        let complete = complete_len(&mut file, len).map_err(|e| Error::io(&path, e))?;
        if complete < len {
            file.set_len(complete)
                .and_then(|()| file.sync_data())
                .map_err(|e| Error::io(&path, e))?;
        }
        Ok(JsonLines { path, file })
    }

    /// Appends `value` as one line and syncs it to disk.
    pub fn append<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let mut line = serde_json::to_vec(value).map_err(|e| {
            Error::InvalidArgument(format!(
                "cannot serialise a line of {}: {e}",
                self.path.display()
            ))
        })?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| Error::io(&self.path, e))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The length of the file's complete lines: the offset just past its last
/// `\n` (0 if it has none), found by reading backwards from `len`.
fn complete_len(file: &mut File, len: u64) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 8192];
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        // At most `buf.len()`: fits usize.
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// The complete lines of `bytes`: everything up to and including the last
/// `\n` (a torn last line is left out).
pub fn complete_lines(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    &bytes[..end]
}

/// Reads every complete line of the file at `path` as a `T` (empty lines are
/// skipped, a torn last line is ignored). A complete line that does not
/// parse is an [`Error::Corrupt`] naming `what` and the line; a missing file
/// is an [`Error::Io`].
pub fn read<T: DeserializeOwned>(path: &Path, what: &'static str) -> Result<Vec<T>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    complete_lines(&bytes)
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| {
            serde_json::from_slice(line).map_err(|e| {
                Error::corrupt(
                    what,
                    format!("{} line {}", path.display(), i + 1),
                    e.to_string(),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_tail_is_cut_before_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let mut log = JsonLines::open(&path).unwrap();
        log.append(&1u32).unwrap();
        log.append(&[2u32, 3]).unwrap();
        drop(log);
        // A crash mid-append: half a line at the end.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"half\":").unwrap();
        drop(f);
        assert_eq!(
            read::<serde_json::Value>(&path, "log").unwrap(),
            [serde_json::json!(1), serde_json::json!([2, 3])]
        );

        let mut log = JsonLines::open(&path).unwrap();
        log.append(&4u32).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"1\n[2,3]\n4\n");
    }

    #[test]
    fn a_file_of_only_a_torn_line_and_long_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        std::fs::write(&path, b"\"no newline").unwrap();
        let mut log = JsonLines::open(&path).unwrap();
        let long = "x".repeat(20_000);
        log.append(&long).unwrap();
        drop(log);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&b"y".repeat(20_000));
        std::fs::write(&path, &bytes).unwrap();
        let mut log = JsonLines::open(&path).unwrap();
        log.append(&5u8).unwrap();
        assert_eq!(
            read::<serde_json::Value>(&path, "log").unwrap(),
            [serde_json::json!(long), serde_json::json!(5)]
        );
    }

    #[test]
    fn a_corrupt_complete_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        std::fs::write(&path, b"1\nnot json\n3\n").unwrap();
        let err = read::<u32>(&path, "log").unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("line 2"), "{err}");
        assert_eq!(complete_lines(b"a\nb"), b"a\n");
        assert_eq!(complete_lines(b"ab"), b"");
    }
}
