//! The validator's evaluation log: one JSON object per evaluation, enough
//! to recompute every score from public data.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::rejection::Rejection;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::identity::PublicKey;
use crate::score::{Evaluation, ScoreRule, VerdictReason};
use crate::util::jsonl::{self, JsonLines};

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
    /// The block at which that master was published (its pointer's).
    #[serde(default)]
    pub master_block: u64,
    /// The validator whose master the round was judged on: the lead this
    /// validator followed, or itself when it led (and so merged the round).
    /// Absent in records written before it was logged.
    #[serde(default)]
    pub lead: Option<PublicKey>,
    /// The uid evaluated.
    pub uid: u16,
    /// Its hotkey at the time.
    pub hotkey: PublicKey,
    /// The delta's key in the miner's bucket, when the deadline snapshot
    /// pinned one (rejections included).
    pub delta_key: Option<String>,
    /// The pinned object's size in bytes, as listed at the deadline.
    #[serde(default)]
    pub delta_size: Option<u64>,
    /// BLAKE3 of the uploaded object (the envelope) as its key names it.
    #[serde(default)]
    pub object_digest: Option<Digest>,
    /// The delta's content digest (its footer), if it was readable.
    pub delta_digest: Option<Digest>,
    /// Local pages evaluated.
    pub local_pages: Vec<u64>,
    /// Global pages evaluated.
    pub global_pages: Vec<u64>,
    /// The share of the delta's sketch that earlier rounds' sketches
    /// explain (the copy check), when the delta was read.
    pub explained: Option<f64>,
    /// Every page's loss without and with the delta, when it was evaluated.
    pub evaluation: Option<Evaluation>,
    /// The rule's verdict, when the delta was evaluated.
    pub verdict: Option<VerdictReason>,
    /// Relative gain on local pages, when finite.
    pub local_gain: Option<f64>,
    /// Relative gain on global pages, when finite.
    pub global_gain: Option<f64>,
    /// `local_gain - global_gain`, when finite.
    pub specific_gain: Option<f64>,
    /// The standard error of `specific_gain`, when finite.
    pub specific_se: Option<f64>,
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
    /// The digest of the run parameters the validator published
    /// (`validators/<hotkey>/params.json`, [`crate::node::run_params`]);
    /// absent in records written before they were published.
    #[serde(default)]
    pub params: Option<Digest>,
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

/// The evaluation log: a folder with one JSON-lines file per deadline,
/// `<deadline, 20 digits>.jsonl` (the same split as the bucket's
/// `validators/<hotkey>/evals/<deadline>.jsonl`). Every line is flushed and
/// synced before [`append`](EvalLog::append) returns, so a crash loses at
/// most the line being written (a torn last line is skipped when read).
pub struct EvalLog {
    dir: PathBuf,
}

impl EvalLog {
    /// Opens (creating) the log folder `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(EvalLog { dir })
    }

    /// The file of `deadline`'s records.
    pub fn round_path(&self, deadline: u64) -> PathBuf {
        self.dir.join(format!("{deadline:020}.jsonl"))
    }

    /// Appends one record to its deadline's file (a torn last line left by
    /// a crash is cut off first: see [`JsonLines`]).
    pub fn append(&mut self, record: &EvalRecord) -> Result<()> {
        JsonLines::open(self.round_path(record.deadline))?.append(record)
    }

    /// The complete lines of `deadline`'s file (empty if there is none).
    pub fn round_bytes(&self, deadline: u64) -> Result<Vec<u8>> {
        let path = self.round_path(deadline);
        match std::fs::read(&path) {
            Ok(mut bytes) => {
                bytes.truncate(jsonl::complete_lines(&bytes).len());
                Ok(bytes)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// The log's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The lines of a round log read from someone else (an auditor reading a
/// validator's published log): each non-blank line, numbered from 1, as a
/// record or the reason it does not parse. Never fails and never stops at
/// a bad line.
pub fn parse_lines(bytes: &[u8]) -> Vec<(usize, std::result::Result<EvalRecord, String>)> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(i, line)| {
            let parsed = serde_json::from_slice::<EvalRecord>(line).map_err(|e| e.to_string());
            (i + 1, parsed)
        })
        .collect()
}

/// Reads every complete record of one log file (a torn last line is ignored).
pub fn read_log_file(path: impl AsRef<Path>) -> Result<Vec<EvalRecord>> {
    jsonl::read(path.as_ref(), "evaluation log")
}

/// Reads every record of a log folder, oldest deadline first.
pub fn read_log(dir: impl AsRef<Path>) -> Result<Vec<EvalRecord>> {
    let dir = dir.as_ref();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut records = Vec::new();
    for file in files {
        records.extend(read_log_file(&file)?);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::PageLosses;
    use std::fs::OpenOptions;
    use std::io::Write;

    fn record(uid: u16) -> EvalRecord {
        EvalRecord {
            validator: PublicKey([9; 32]),
            deadline: 20,
            reveal_block: 22,
            reveal_hash: "00".repeat(32),
            master_revision: Digest::of(b"m"),
            master_block: 10,
            lead: Some(PublicKey([9; 32])),
            uid,
            hotkey: PublicKey([uid as u8; 32]),
            delta_key: Some("deltas/x/00000000000000000020.delta".into()),
            delta_size: Some(1234),
            params: Some(Digest::of(b"params")),
            object_digest: Some(Digest::of(b"sealed")),
            delta_digest: None,
            local_pages: vec![1, 2],
            global_pages: vec![3, 4],
            explained: Some(0.01),
            evaluation: Some(Evaluation {
                local: PageLosses {
                    master: vec![4.0, 4.0],
                    with_delta: vec![3.0, 3.0],
                },
                global: PageLosses {
                    master: vec![4.0, 4.0],
                    with_delta: vec![3.9, 3.9],
                },
            }),
            verdict: Some(VerdictReason::Scored),
            local_gain: Some(0.25),
            global_gain: Some(0.025),
            specific_gain: Some(0.225),
            specific_se: Some(0.0),
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
    fn lines_round_trip_by_deadline_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = EvalLog::open(dir.path().join("log")).unwrap();
        log.append(&record(1)).unwrap();
        let mut later = record(2);
        later.deadline = 30;
        log.append(&later).unwrap();
        log.append(&record(3)).unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(log.round_path(20))
            .unwrap();
        f.write_all(b"{\"validator\":").unwrap();
        assert_eq!(
            read_log(log.dir()).unwrap(),
            vec![record(1), record(3), later.clone()]
        );
        let round: Vec<u8> = log.round_bytes(20).unwrap();
        assert_eq!(round.iter().filter(|&&b| b == b'\n').count(), 2);
        assert!(round.ends_with(b"\n"));
        assert!(log.round_bytes(99).unwrap().is_empty());

        // The bug this fixed: the next append glued onto the torn line and
        // made the file unreadable; now the torn tail is cut off first.
        log.append(&record(4)).unwrap();
        assert_eq!(
            read_log(log.dir()).unwrap(),
            vec![record(1), record(3), record(4), later]
        );
    }
}
