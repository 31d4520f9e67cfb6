//! Recognising the same delta uploaded by several hotkeys.

use std::collections::BTreeMap;

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

/// Who uploaded a fingerprint first, as the validator observed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstUpload {
    /// The uploader.
    pub hotkey: PublicKey,
    /// The deadline whose snapshot first pinned it (the validator's own
    /// observation; no storage server's clock).
    pub deadline: u64,
    /// Whether another hotkey's upload pinned at the same deadline has the
    /// same content: then no one of them can claim it.
    #[serde(default)]
    pub shared: bool,
}

/// Fingerprints seen against the current master, with their first uploader.
///
/// Ownership goes to the uploader whose copy the validator pinned at the
/// earliest deadline, whatever order it happens to judge them in. The same
/// content from two hotkeys at the same deadline belongs to neither (sealed
/// deltas make that impossible without the owner's help).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyRegistry {
    first: BTreeMap<Digest, FirstUpload>,
}

impl CopyRegistry {
    /// Records an upload of `fp` by `hotkey` pinned at `deadline`.
    pub fn record(&mut self, fp: Digest, hotkey: PublicKey, deadline: u64) {
        let candidate = FirstUpload {
            hotkey,
            deadline,
            shared: false,
        };
        let entry = self.first.entry(fp).or_insert_with(|| candidate.clone());
        if entry.hotkey == hotkey {
            entry.deadline = entry.deadline.min(deadline);
        } else if deadline < entry.deadline {
            *entry = candidate;
        } else if deadline == entry.deadline {
            entry.shared = true;
        }
    }

    /// The first uploader of `fp`, if `hotkey`'s upload of it is a copy:
    /// someone else pinned it earlier, or at the same deadline.
    pub fn original_of(&self, fp: &Digest, hotkey: &PublicKey) -> Option<&FirstUpload> {
        self.first
            .get(fp)
            .filter(|f| f.hotkey != *hotkey || f.shared)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_pinned_uploader_owns_a_fingerprint_whatever_the_order_seen() {
        let (honest, copier) = (PublicKey([1; 32]), PublicKey([2; 32]));
        let fp = Digest::of(b"delta");
        let mut reg = CopyRegistry::default();
        reg.record(fp, copier, 20);
        reg.record(fp, honest, 10);
        reg.record(fp, honest, 30); // a re-upload by the owner changes nothing
        assert_eq!(reg.original_of(&fp, &copier).unwrap().hotkey, honest);
        assert!(reg.original_of(&fp, &honest).is_none());
        assert!(reg.original_of(&Digest::of(b"other"), &copier).is_none());
    }

    #[test]
    fn the_same_content_from_two_hotkeys_at_one_deadline_belongs_to_neither() {
        let (a, b) = (PublicKey([1; 32]), PublicKey([2; 32]));
        let fp = Digest::of(b"delta");
        let mut reg = CopyRegistry::default();
        reg.record(fp, b, 10);
        reg.record(fp, a, 10);
        assert!(reg.original_of(&fp, &a).is_some());
        assert!(reg.original_of(&fp, &b).is_some());
    }
}
