//! The lineage record: where a published master came from, so that anyone —
//! a following validator, an auditor — can recompute it bit for bit.
//!
//! Beside every master's folder `master/<revision>/` the publishing validator
//! writes `master/<revision>.lineage.json` (before the checkpoint and the
//! pointer): its parent revision, the round's deadline, the merge rule, and
//! each merged delta in merge order — its uid, hotkey, the bucket commitment
//! it was read from, its key, the BLAKE3 of the uploaded (sealed) bytes, the
//! delta's own footer digest and its weight. With the parent checkpoint and
//! the parent's outer state (`master/<parent>.outer`; none before the first
//! merge), `verify` (feature `torch`) recomputes the merge with
//! `model::outer::merge_into` and checks the revision and the published
//! outer state. Format: `docs/protocol.md`,
//! "Lineage record".

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::identity::PublicKey;
use crate::node::merge_rule::MergeRule;
use crate::storage::keys::MASTER_DIR;

#[cfg(feature = "torch")]
mod verify;
#[cfg(feature = "torch")]
#[cfg_attr(docsrs, doc(cfg(feature = "torch")))]
pub use verify::{verify, verify_with};

/// The version of the record's format.
pub const LINEAGE_VERSION: u32 = 1;

/// The most bytes a lineage record may have (it is read from strangers).
pub const MAX_LINEAGE_BYTES: u64 = 1 << 20;

/// The key of the lineage record of the master `revision`.
pub fn lineage_key(revision: &Digest) -> String {
    format!("{MASTER_DIR}/{}{LINEAGE_EXT}", revision.to_hex())
}

/// The extension of a lineage record's key.
pub const LINEAGE_EXT: &str = ".lineage.json";

/// One delta that went into a master.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MergedDelta {
    /// The miner's uid at the merge.
    pub uid: u16,
    /// The miner's hotkey.
    pub hotkey: PublicKey,
    /// The bucket commitment the delta was read from.
    pub commitment: String,
    /// Its key in that bucket.
    pub key: String,
    /// BLAKE3 of the uploaded (sealed) bytes, as the key names it.
    pub object_digest: Digest,
    /// The delta's own content digest (its footer).
    pub digest: Digest,
    /// Its weight in the merge.
    pub weight: f32,
}

/// Where a master came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    /// [`LINEAGE_VERSION`].
    pub version: u32,
    /// The master this record describes.
    pub revision: Digest,
    /// The master it was merged into.
    pub parent: Digest,
    /// The deadline of the round whose deltas were merged.
    pub deadline: u64,
    /// The block the master was published at (its pointer's block: deltas
    /// of later rounds are made against it from then on).
    #[serde(default)]
    pub block: u64,
    /// The merge rule ([`MergeRule`]'s text form, e.g. `mean`
    /// or `nesterov-0.7-0.9`).
    pub rule: String,
    /// The merged deltas, in merge order.
    pub deltas: Vec<MergedDelta>,
}

impl Lineage {
    /// The record as published (pretty JSON).
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self)
            .map_err(|e| Error::InvalidArgument(format!("lineage record: {e}")))
    }

    /// Parses and checks a record read from someone's bucket.
    pub fn from_json(bytes: &[u8]) -> Result<Lineage> {
        let bad = |why: String| Error::corrupt("lineage record", "json", why);
        if bytes.len() as u64 > MAX_LINEAGE_BYTES {
            return Err(Error::limit(
                "lineage record bytes",
                MAX_LINEAGE_BYTES,
                bytes.len() as u64,
            ));
        }
        let record: Lineage = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if record.version != LINEAGE_VERSION {
            return Err(Error::UnsupportedVersion {
                input: "lineage record",
                found: record.version,
                supported: LINEAGE_VERSION.to_string(),
            });
        }
        record.merge_rule()?;
        if record.deltas.is_empty() {
            return Err(bad("no merged delta".into()));
        }
        if let Some(d) = record.deltas.iter().find(|d| !d.weight.is_finite()) {
            return Err(bad(format!(
                "uid {}'s weight {} is not finite",
                d.uid, d.weight
            )));
        }
        Ok(record)
    }

    /// The merge rule the record names.
    pub fn merge_rule(&self) -> Result<MergeRule> {
        MergeRule::parse(&self.rule).ok_or_else(|| {
            Error::corrupt(
                "lineage record",
                "rule",
                format!("{:?} is not a merge rule", self.rule),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Lineage {
        Lineage {
            version: LINEAGE_VERSION,
            revision: Digest::of(b"next"),
            parent: Digest::of(b"parent"),
            deadline: 20,
            block: 21,
            rule: "nesterov-0.7-0.9".into(),
            deltas: vec![MergedDelta {
                uid: 3,
                hotkey: PublicKey([3; 32]),
                commitment: "bistro1|https://example.com|bucket||||".into(),
                key: "deltas/x/1.delta".into(),
                object_digest: Digest::of(b"sealed"),
                digest: Digest::of(b"plain"),
                weight: 0.5,
            }],
        }
    }

    #[test]
    fn records_round_trip_and_bad_ones_are_typed_errors() {
        let good = record();
        assert_eq!(Lineage::from_json(&good.to_json().unwrap()).unwrap(), good);
        let mut v2 = good.clone();
        v2.version = 2;
        assert!(matches!(
            Lineage::from_json(&v2.to_json().unwrap()),
            Err(Error::UnsupportedVersion { .. })
        ));
        let mut rule = good.clone();
        rule.rule = "adam".into();
        assert!(Lineage::from_json(&rule.to_json().unwrap()).is_err());
        let mut empty = good.clone();
        empty.deltas.clear();
        assert!(Lineage::from_json(&empty.to_json().unwrap()).is_err());
        let text = String::from_utf8(good.to_json().unwrap()).unwrap();
        let nan = text.replace("\"weight\": 0.5", "\"weight\": NaN");
        assert!(Lineage::from_json(nan.as_bytes()).is_err());
        assert!(Lineage::from_json(b"{").is_err());
        assert!(Lineage::from_json(&vec![b' '; (MAX_LINEAGE_BYTES + 1) as usize]).is_err());
    }
}
