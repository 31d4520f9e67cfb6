//! A lead that lies about where its master came from: the adversary the
//! followers' lineage check exists for.

use bistro_core::digest::Digest;
use bistro_core::error::{Error, Result};
use bistro_core::node::lineage::{Lineage, MAX_LINEAGE_BYTES, lineage_key};
use bistro_core::storage::Bucket;
use bistro_core::storage::keys::read_master_pointer;

/// Rewrites the lineage record of the newest master in `bucket` (a
/// validator's own) so that it no longer reproduces that master: the
/// weight of the first merged delta that has one doubled. Returns the
/// forged master's revision. An error when the bucket has no master, or its
/// newest master has no lineage record or no delta of non-zero weight
/// (there is nothing to forge).
pub fn forge_newest_lineage(bucket: &dyn Bucket) -> Result<Digest> {
    let pointer = read_master_pointer(bucket)?
        .ok_or_else(|| Error::InvalidArgument("no master to forge".into()))?;
    let key = lineage_key(&pointer.revision);
    let mut record = Lineage::from_json(&bucket.get(&key, MAX_LINEAGE_BYTES)?)?;
    let first = record
        .deltas
        .iter_mut()
        .find(|d| d.weight != 0.0)
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "master {} merged no delta of non-zero weight: nothing to forge",
                pointer.revision.short()
            ))
        })?;
    first.weight *= 2.0;
    bucket.put(&key, &record.to_json()?)?;
    Ok(pointer.revision)
}
