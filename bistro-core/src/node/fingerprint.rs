//! Recognising the same delta uploaded by several hotkeys.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::codec::DeltaReader;
use crate::digest::{Digest, Hasher};
use crate::identity::PublicKey;

/// A digest of a delta's *content*: every tensor's name, shape, encoding and
/// payload bytes, but not the header (base, block, uid, hotkey) or the
/// signature. A copier who re-signs someone else's delta under its own
/// hotkey produces the same fingerprint.
pub fn fingerprint(delta: &DeltaReader<'_>) -> Digest {
    let mut h = Hasher::new();
    for t in delta.tensors() {
        h.update(&(t.name().len() as u64).to_le_bytes());
        h.update(t.name().as_bytes());
        h.update(&(t.shape().len() as u64).to_le_bytes());
        for d in t.shape() {
            h.update(&d.to_le_bytes());
        }
        h.update(t.encoding().to_string().as_bytes());
        h.update(&(t.payload().len() as u64).to_le_bytes());
        h.update(t.payload());
    }
    h.finalize()
}

/// Who uploaded a fingerprint first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstUpload {
    /// The uploader.
    pub hotkey: PublicKey,
    /// The storage timestamp of the upload, in milliseconds since the epoch.
    pub uploaded_ms: u64,
}

/// Fingerprints seen against the current master, with their first uploader.
///
/// Ownership goes to the earliest storage timestamp (ties: the smaller
/// hotkey), whatever order the validator happens to see uploads in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyRegistry {
    first: BTreeMap<Digest, FirstUpload>,
}

impl CopyRegistry {
    /// Records an upload of `fp` by `hotkey` at `uploaded`.
    pub fn record(&mut self, fp: Digest, hotkey: PublicKey, uploaded: SystemTime) {
        let candidate = FirstUpload {
            hotkey,
            uploaded_ms: millis(uploaded),
        };
        let entry = self.first.entry(fp).or_insert_with(|| candidate.clone());
        if (candidate.uploaded_ms, candidate.hotkey) < (entry.uploaded_ms, entry.hotkey) {
            *entry = candidate;
        }
    }

    /// The first uploader of `fp`, if it is not `hotkey`: then `hotkey`'s
    /// upload is a copy.
    pub fn original_of(&self, fp: &Digest, hotkey: &PublicKey) -> Option<&FirstUpload> {
        self.first.get(fp).filter(|f| f.hotkey != *hotkey)
    }

    /// Forgets everything (when the master changes, old deltas are stale anyway).
    pub fn clear(&mut self) {
        self.first.clear();
    }

    /// Number of fingerprints remembered.
    pub fn len(&self) -> usize {
        self.first.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }
}

/// Milliseconds since the Unix epoch (0 for earlier times).
pub fn millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_earliest_uploader_owns_a_fingerprint_whatever_the_order_seen() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let later = t0 + Duration::from_secs(5);
        let (honest, copier) = (PublicKey([1; 32]), PublicKey([2; 32]));
        let fp = Digest::of(b"delta");
        let mut reg = CopyRegistry::default();
        reg.record(fp, copier, later);
        reg.record(fp, honest, t0);
        assert_eq!(reg.original_of(&fp, &copier).unwrap().hotkey, honest);
        assert!(reg.original_of(&fp, &honest).is_none());
        assert!(reg.original_of(&Digest::of(b"other"), &copier).is_none());
    }
}
