//! What a validator persists between rounds, so a killed validator resumes
//! where it was.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::node::fingerprint::CopyRegistry;
use crate::score::MovingAverages;
use crate::storage::write_file_atomic;

/// Version of the persisted [`ValidatorState`] JSON.
pub const VALIDATOR_STATE_VERSION: u32 = 1;

/// The validator's persistent state, written atomically after every
/// evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidatorState {
    /// Format version.
    pub version: u32,
    /// Per-uid moving averages of scores.
    pub averages: MovingAverages,
    /// Fingerprints of deltas against `copies_master`, with first uploaders.
    pub copies: CopyRegistry,
    /// The master the copy registry refers to.
    pub copies_master: Digest,
    /// The deadline of the latest weights set on the chain.
    pub last_weights_block: Option<u64>,
    /// The latest deadline judged (completely or in part).
    pub last_deadline: Option<u64>,
    /// The deadline snapshot of the round being judged, if one was taken.
    #[serde(default)]
    pub snapshot: Option<super::snapshot::Snapshot>,
    /// The uids chosen for the round being judged.
    #[serde(default)]
    pub selected: Option<RoundSelection>,
    /// The masters this validator has held (its own and those it verified),
    /// oldest first, at most `follow::MAX_HELD`.
    #[serde(default)]
    pub held: Vec<crate::digest::Digest>,
    /// Lead masters it refused, newest last (published in its lead status).
    #[serde(default)]
    pub refused: Vec<crate::node::lead::Refusal>,
}

/// The uids a validator chose to judge at one deadline (kept so that a
/// resumed round judges the rest of the same choice).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundSelection {
    /// The deadline.
    pub deadline: u64,
    /// The uids and their hotkeys, in judging order.
    pub uids: Vec<(u16, crate::identity::PublicKey)>,
}

impl ValidatorState {
    /// A fresh state.
    pub fn new(alpha: f64) -> Result<Self> {
        Ok(ValidatorState {
            version: VALIDATOR_STATE_VERSION,
            averages: MovingAverages::new(alpha)?,
            copies: CopyRegistry::default(),
            copies_master: Digest::ZERO,
            last_weights_block: None,
            last_deadline: None,
            snapshot: None,
            selected: None,
            held: Vec::new(),
            refused: Vec::new(),
        })
    }

    /// The state as JSON.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self)
            .map_err(|e| Error::InvalidArgument(format!("cannot serialise validator state: {e}")))
    }

    /// Parses and validates saved state.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct Probe {
            version: u32,
        }
        let probe: Probe = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt("validator state", "JSON", e.to_string()))?;
        if probe.version != VALIDATOR_STATE_VERSION {
            return Err(Error::UnsupportedVersion {
                input: "validator state",
                found: probe.version,
                supported: VALIDATOR_STATE_VERSION.to_string(),
            });
        }
        let state: ValidatorState = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt("validator state", "JSON", e.to_string()))?;
        // Re-validate the averages through their own checks.
        let averages = state.averages.to_json()?;
        MovingAverages::from_json(&averages)?;
        Ok(state)
    }

    /// Loads the state at `path`; `Ok(None)` if there is none yet.
    pub fn load(path: &Path) -> Result<Option<Self>> {
        match std::fs::read(path) {
            Ok(bytes) => Self::from_json(&bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Saves the state at `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_file_atomic(path, &self.to_json()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::PublicKey;

    #[test]
    fn saves_and_loads_and_refuses_other_versions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert!(ValidatorState::load(&path).unwrap().is_none());
        let mut state = ValidatorState::new(0.3).unwrap();
        state
            .averages
            .record(3, PublicKey([3; 32]), 10, 0.5)
            .unwrap();
        state.last_deadline = Some(10);
        state.save(&path).unwrap();
        assert_eq!(ValidatorState::load(&path).unwrap().unwrap(), state);
        let text = String::from_utf8(state.to_json().unwrap()).unwrap();
        let v2 = text.replacen("\"version\": 1", "\"version\": 9", 1);
        assert!(matches!(
            ValidatorState::from_json(v2.as_bytes()),
            Err(Error::UnsupportedVersion { .. })
        ));
        assert!(ValidatorState::from_json(b"[]").is_err());
    }
}
