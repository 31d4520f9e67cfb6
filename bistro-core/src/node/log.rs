//! The validator's evaluation log: one JSON object per evaluation, enough
//! to recompute every score from public data.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::rejection::Rejection;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::identity::PublicKey;
use crate::score::{Evaluation, ScoreRule, VerdictReason};

/// One evaluation of one uid at one deadline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// The validator's hotkey.
    pub validator: PublicKey,
    /// The round's deadline block.
    pub deadline: u64,
    /// The block whose hash chose the pages.
    pub reveal_block: u64,
    /// That block's hash, hex.
    pub reveal_hash: String,
    /// The master the delta was evaluated against.
    pub master_revision: Digest,
    /// The uid evaluated.
    pub uid: u16,
    /// Its hotkey at the time.
    pub hotkey: PublicKey,
    /// The delta's key in the miner's bucket, if one was found.
    pub delta_key: Option<String>,
    /// The delta's content digest (its footer), if it was readable.
    pub delta_digest: Option<Digest>,
    /// Local pages evaluated.
    pub local_pages: Vec<u64>,
    /// Global pages evaluated.
    pub global_pages: Vec<u64>,
    /// The four losses, when the delta was evaluated.
    pub evaluation: Option<Evaluation>,
    /// The rule's verdict, when the delta was evaluated.
    pub verdict: Option<VerdictReason>,
    /// Relative gain on local pages, when finite.
    pub local_gain: Option<f64>,
    /// Relative gain on global pages, when finite.
    pub global_gain: Option<f64>,
    /// Why the delta was not evaluated.
    pub rejection: Option<Rejection>,
    /// The score folded into the average.
    pub score: f64,
    /// The uid's moving average after this evaluation.
    pub average: f64,
    /// Whether the delta may go into the next master.
    pub mergeable: bool,
    /// After an evaluated delta was undone, whether the master's revision
    /// matched again bit for bit.
    pub restored_exact: Option<bool>,
    /// The rule's parameters.
    pub rule: ScoreRule,
    /// Milliseconds spent: download, decode+apply, evaluate, restore.
    pub timings_ms: Timings,
}

/// Where an evaluation's time went, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Download of the delta.
    pub download: u64,
    /// Open, validate and apply.
    pub apply: u64,
    /// Loss evaluation.
    pub eval: u64,
    /// Undo and revision check.
    pub restore: u64,
}

/// An append-only JSON-lines file; every line is flushed and synced before
/// `append` returns, so a crash loses at most the line being written (a
/// torn last line is skipped by [`read_log`]).
pub struct EvalLog {
    path: PathBuf,
    file: File,
}

impl EvalLog {
    /// Opens (creating) the log at `path` for appending.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(EvalLog { path, file })
    }

    /// Appends one record as a line.
    pub fn append(&mut self, record: &EvalRecord) -> Result<()> {
        let mut line = serde_json::to_vec(record)
            .map_err(|e| Error::InvalidArgument(format!("cannot serialise record: {e}")))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|_| self.file.sync_data())
            .map_err(|e| Error::io(&self.path, e))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads every complete record of a log (a torn last line is ignored).
pub fn read_log(path: impl AsRef<Path>) -> Result<Vec<EvalRecord>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut records = Vec::new();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    for (i, line) in complete.lines().enumerate() {
        let record = serde_json::from_str(line).map_err(|e| {
            Error::corrupt("evaluation log", format!("line {}", i + 1), e.to_string())
        })?;
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::LossPair;

    fn record(uid: u16) -> EvalRecord {
        EvalRecord {
            validator: PublicKey([9; 32]),
            deadline: 20,
            reveal_block: 22,
            reveal_hash: "00".repeat(32),
            master_revision: Digest::of(b"m"),
            uid,
            hotkey: PublicKey([uid as u8; 32]),
            delta_key: Some("deltas/x/00000000000000000020.delta".into()),
            delta_digest: None,
            local_pages: vec![1, 2],
            global_pages: vec![3, 4],
            evaluation: Some(Evaluation {
                local: LossPair {
                    master: 4.0,
                    with_delta: 3.0,
                },
                global: LossPair {
                    master: 4.0,
                    with_delta: 3.9,
                },
            }),
            verdict: Some(VerdictReason::Scored),
            local_gain: Some(0.25),
            global_gain: Some(0.025),
            rejection: None,
            score: 0.25,
            average: 0.075,
            mergeable: true,
            restored_exact: Some(true),
            rule: ScoreRule::default(),
            timings_ms: Timings::default(),
        }
    }

    #[test]
    fn lines_round_trip_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log/eval.jsonl");
        let mut log = EvalLog::open(&path).unwrap();
        log.append(&record(1)).unwrap();
        log.append(&record(2)).unwrap();
        drop(log);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"validator\":").unwrap();
        let back = read_log(&path).unwrap();
        assert_eq!(back, vec![record(1), record(2)]);
    }
}
