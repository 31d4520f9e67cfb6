//! Recomputing a master from its lineage record (needs the model).

use std::path::Path;

use super::Lineage;
use crate::chain::Chain;
use crate::codec::{Limits, open_file};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::model::outer::{OuterState, merge_into};
use crate::model::{Config, Device, Model};
use crate::node::sealing::open_if_public;
use crate::node::validator::BucketCache;
use crate::seal::max_sealed_len;
use crate::storage::keys::{master_key, outer_state_key};
use crate::storage::{Bucket, BucketCommitment, EndpointPolicy};

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
    let mut buckets = BucketCache::new(policy);
    verify_with(chain, lead, lineage, config, device, &mut buckets, work_dir)
}

/// [`verify`], opening the miners' buckets through `buckets` (which may
/// hold opened buckets already, or move `file://` folders:
/// [`BucketCache::with_file_root`]).
pub fn verify_with(
    chain: &dyn Chain,
    lead: &dyn Bucket,
    lineage: &Lineage,
    config: &Config,
    device: Device,
    buckets: &mut BucketCache,
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
