//! The lineage record: where a published master came from, so that anyone —
//! a following validator, an auditor — can recompute it bit for bit.
//!
//! Beside every master `master/<revision>.ckpt` the publishing validator
//! writes `master/<revision>.lineage.json` (before the checkpoint and the
//! pointer): its parent revision, the round's deadline, the merge rule, and
//! each merged delta in merge order — its uid, hotkey, the bucket commitment
//! it was read from, its key, the BLAKE3 of the uploaded (sealed) bytes, the
//! delta's own footer digest and its weight. With the parent checkpoint and
//! the parent's outer state (`master/<parent>.outer`; none before the first
//! merge), [`verify`] recomputes the merge with [`merge_into`] and checks
//! the revision and the published outer state. Format: `docs/protocol.md`,
//! "Lineage record".

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::chain::Chain;
use crate::codec::{Limits, open_file};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::identity::PublicKey;
use crate::model::outer::{MergeRule, OuterState, merge_into};
use crate::model::{Config, Device, Model};
use crate::node::sealing::open_if_public;
use crate::node::validator::BucketCache;
use crate::seal::max_sealed_len;
use crate::storage::keys::{master_key, outer_state_key};
use crate::storage::{Bucket, BucketCommitment, EndpointPolicy};

/// The version of the record's format.
pub const LINEAGE_VERSION: u32 = 1;

/// The most bytes a lineage record may have (it is read from strangers).
pub const MAX_LINEAGE_BYTES: u64 = 1 << 20;

/// The key of the lineage record of the master `revision`.
pub fn lineage_key(revision: &Digest) -> String {
    format!("master/{}.lineage.json", revision.to_hex())
}

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
    /// The merge rule (`model::outer::MergeRule`'s text form, e.g. `mean`
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

/// Recomputes the master `lineage` describes from what is public: the
/// parent checkpoint and outer state in the publisher's bucket `lead`, and
/// each delta from its miner's bucket (opened under `policy`), opened with
/// its deadline's pulse from `chain`. `Ok(())` when the result is
/// `lineage.revision` bit for bit and the published outer state of it is
/// the recomputed one; otherwise an error that says what differs. Works in
/// `work_dir` (created if missing); changes nothing anywhere else.
pub fn verify(
    chain: &dyn Chain,
    lead: &dyn Bucket,
    lineage: &Lineage,
    config: &Config,
    device: Device,
    policy: EndpointPolicy,
    work_dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(work_dir).map_err(|e| Error::io(work_dir, e))?;
    let rule = lineage.merge_rule()?;
    let limits = Limits::for_model(config.parameter_count());
    let checkpoint_cap = limits.max_file_size.saturating_mul(4).max(1 << 30);

    let parent_path = work_dir.join("parent.ckpt");
    lead.get_to_file(&master_key(&lineage.parent), &parent_path, checkpoint_cap)?;
    let mut model = Model::load(&parent_path, config.clone(), device)?;
    if model.revision()? != lineage.parent {
        return Err(mismatch(format!(
            "the parent checkpoint is not revision {}",
            lineage.parent.short()
        )));
    }
    let state_path = work_dir.join("parent.outer");
    let mut state = match lead.get_to_file(
        &outer_state_key(&lineage.parent),
        &state_path,
        checkpoint_cap,
    ) {
        Ok(_) => OuterState::load(&state_path, config, lineage.parent)?,
        Err(Error::NotFound(_)) => OuterState::start(lineage.parent),
        Err(e) => return Err(e),
    };

    let mut buckets = BucketCache::new(policy);
    let mut files = Vec::new();
    for (i, d) in lineage.deltas.iter().enumerate() {
        let what = |why: String| mismatch(format!("uid {} ({}): {why}", d.uid, d.key));
        let raw = d.commitment.as_bytes().to_vec();
        BucketCommitment::parse(&raw)?;
        let bucket = buckets
            .get(raw)
            .map_err(|r| what(format!("its bucket: {r}")))?;
        let sealed = bucket.get(&d.key, max_sealed_len(limits.max_file_size))?;
        if Digest::of(&sealed) != d.object_digest {
            return Err(what("the object is not the one merged".into()));
        }
        let plain = open_if_public(chain, &sealed, limits.max_file_size)?
            .ok_or_else(|| what("its round's pulse is not on the chain yet".into()))?;
        let path = work_dir.join(format!("delta-{i}.delta"));
        crate::storage::write_file_atomic(&path, &plain)?;
        let file = open_file(&path, &limits)?;
        if file.reader().digest() != d.digest {
            return Err(what("the delta's digest is not the merged one".into()));
        }
        files.push(file);
    }
    let deltas: Vec<_> = files
        .iter()
        .zip(&lineage.deltas)
        .map(|(f, d)| (f.reader(), d.weight))
        .collect();
    merge_into(&mut model, &deltas, rule, &mut state)?;
    let revision = model.revision()?;
    if revision != lineage.revision {
        return Err(mismatch(format!(
            "the merge gives {}, the record says {}",
            revision.short(),
            lineage.revision.short()
        )));
    }
    state.set_master(revision);
    let replay = work_dir.join("replay.outer");
    state.save(&replay)?;
    let replayed = std::fs::read(&replay).map_err(|e| Error::io(&replay, e))?;
    let published = lead.get(&outer_state_key(&revision), replayed.len() as u64 + 1)?;
    if published != replayed {
        return Err(mismatch(
            "the published outer state is not the merge's".into(),
        ));
    }
    Ok(())
}

fn mismatch(why: String) -> Error {
    Error::corrupt("master lineage", "merge", why)
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
