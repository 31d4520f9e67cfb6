//! How long a validator keeps old masters in its bucket: the *audit
//! window*.
//!
//! After each round a validator removes from its bucket every master (its
//! folder `master/<revision>/`, its outer state and its lineage record) that
//! is neither its current master (nor that one's parent), nor in the audit
//! window, nor the parent of a master in it. The window is the masters whose
//! lineage records name a deadline no more than [`AUDIT_WINDOW_ROUNDS`]
//! rounds before the round just judged — on the current lineage or not (a
//! lead's last master before a failover stays auditable too) — so an
//! auditor or a follower catching up can re-derive each of them from its
//! parent and the listed deltas. The pointer and anything that is
//! not a master's key are never touched. See `docs/protocol.md`, "Audit
//! window".

use std::collections::BTreeSet;

use crate::digest::Digest;
use crate::error::Result;
use crate::storage::keys::{MASTER_DIR, OUTER_STATE_EXT, parse_lower_hex_digest};
use crate::storage::{Bucket, ObjectInfo};

use super::lineage::{LINEAGE_EXT, Lineage, MAX_LINEAGE_BYTES, lineage_key};

/// Rounds of masters a validator keeps before the head's (the audit window).
pub const AUDIT_WINDOW_ROUNDS: u64 = 32;

/// The masters to keep after the round at `deadline`: `head` and its
/// parent, every master whose lineage record in `bucket` names a deadline no
/// more than `window_blocks` before `deadline` (or later: a record is never
/// trusted to shorten the window), and the parent of each of those (the
/// base it is verified from). A master whose record cannot be read is kept
/// (rather than guess).
pub fn masters_to_keep(
    bucket: &dyn Bucket,
    head: Digest,
    deadline: u64,
    window_blocks: u64,
) -> Result<BTreeSet<Digest>> {
    let listing = bucket.list(&format!("{MASTER_DIR}/"))?;
    keep_from(bucket, &listing, head, deadline, window_blocks)
}

/// Removes from `bucket` every master's key whose revision is not in
/// `keep`; returns how many objects it removed.
pub fn prune_masters(bucket: &dyn Bucket, keep: &BTreeSet<Digest>) -> Result<usize> {
    let listing = bucket.list(&format!("{MASTER_DIR}/"))?;
    delete_from(bucket, &listing, keep)
}

/// [`masters_to_keep`] then [`prune_masters`], on one listing of the
/// bucket (what a validator runs after each round).
pub fn prune_audit_window(
    bucket: &dyn Bucket,
    head: Digest,
    deadline: u64,
    window_blocks: u64,
) -> Result<usize> {
    let listing = bucket.list(&format!("{MASTER_DIR}/"))?;
    let keep = keep_from(bucket, &listing, head, deadline, window_blocks)?;
    delete_from(bucket, &listing, &keep)
}

fn keep_from(
    bucket: &dyn Bucket,
    listing: &[ObjectInfo],
    head: Digest,
    deadline: u64,
    window_blocks: u64,
) -> Result<BTreeSet<Digest>> {
    let mut keep = BTreeSet::from([head]);
    let mut records = Vec::new();
    let record_keys = listing.iter().filter(|o| o.key.ends_with(LINEAGE_EXT));
    for revision in record_keys.filter_map(|o| master_of_key(&o.key)) {
        match read_record(bucket, &revision)? {
            Some(record) => records.push(record),
            None => {
                keep.insert(revision);
            }
        }
    }
    let cutoff = deadline.saturating_sub(window_blocks);
    for record in &records {
        if record.deadline >= cutoff || record.revision == head {
            keep.insert(record.revision);
            keep.insert(record.parent);
        }
    }
    Ok(keep)
}

fn delete_from(
    bucket: &dyn Bucket,
    listing: &[ObjectInfo],
    keep: &BTreeSet<Digest>,
) -> Result<usize> {
    let mut removed = 0;
    for object in listing {
        let Some(revision) = master_of_key(&object.key) else {
            continue;
        };
        if !keep.contains(&revision) {
            bucket.delete(&object.key)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The master a key of the `master/` folder belongs to: a file of its
/// folder, its outer state or its lineage record; `None` for anything else
/// (the pointer, unknown names).
fn master_of_key(key: &str) -> Option<Digest> {
    let rest = key.strip_prefix(MASTER_DIR)?.strip_prefix('/')?;
    let hex = match rest.split_once('/') {
        Some((hex, file)) if !file.is_empty() => hex,
        Some(_) => return None,
        None => rest
            .strip_suffix(OUTER_STATE_EXT)
            .or_else(|| rest.strip_suffix(LINEAGE_EXT))?,
    };
    parse_lower_hex_digest(hex)
}

fn read_record(bucket: &dyn Bucket, revision: &Digest) -> Result<Option<Lineage>> {
    let Some(bytes) =
        crate::storage::get_if_present(bucket, &lineage_key(revision), MAX_LINEAGE_BYTES)?
    else {
        return Ok(None);
    };
    // A record that does not parse ends the walk: keep rather than guess.
    Ok(Lineage::from_json(&bytes)
        .ok()
        .filter(|r| r.revision == *revision))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::PublicKey;
    use crate::node::lineage::{LINEAGE_VERSION, MergedDelta};
    use crate::storage::LocalBucket;
    use crate::storage::keys::{MASTER_POINTER, master_file_key, outer_state_key};

    fn rev(n: u64) -> Digest {
        Digest::of(&n.to_le_bytes())
    }

    /// Masters 0..=n, master i merged at deadline 10·i from master i − 1
    /// (master 0 is genesis: no record), each with its folder files and
    /// outer state; and the pointer.
    fn lineage(bucket: &LocalBucket, n: u64) {
        for i in 0..=n {
            for file in ["model.safetensors", "config.json"] {
                bucket.put(&master_file_key(&rev(i), file), b"x").unwrap();
            }
            bucket.put(&outer_state_key(&rev(i)), b"o").unwrap();
            if i > 0 {
                let record = Lineage {
                    version: LINEAGE_VERSION,
                    revision: rev(i),
                    parent: rev(i - 1),
                    deadline: 10 * i,
                    block: 10 * i + 3,
                    rule: "mean".into(),
                    deltas: vec![MergedDelta {
                        uid: 1,
                        hotkey: PublicKey([1; 32]),
                        commitment: "c".into(),
                        key: "deltas/k".into(),
                        object_digest: Digest::of(b"o"),
                        digest: Digest::of(b"d"),
                        weight: 1.0,
                    }],
                };
                bucket
                    .put(&lineage_key(&rev(i)), &record.to_json().unwrap())
                    .unwrap();
            }
        }
        bucket.put(MASTER_POINTER, b"{}").unwrap();
    }

    fn revisions_left(bucket: &LocalBucket) -> BTreeSet<Digest> {
        let keys = bucket.list("master/").unwrap();
        keys.iter().filter_map(|o| master_of_key(&o.key)).collect()
    }

    #[test]
    fn the_window_its_base_and_nothing_else_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = LocalBucket::create(dir.path()).unwrap();
        lineage(&bucket, 10);
        // Head 10 (deadline 100), a window of 30 blocks: 7, 8, 9 and 10 are
        // within it (deadlines 70..=100), 6 is the base 7 was merged from.
        let keep = masters_to_keep(&bucket, rev(10), 100, 30).unwrap();
        assert_eq!(keep, (6..=10).map(rev).collect());
        // Every object of 0..=5 goes (folder files, outer state, record).
        let removed = prune_masters(&bucket, &keep).unwrap();
        assert_eq!(removed, 2 * 6 + 6 + 5);
        assert_eq!(revisions_left(&bucket), keep);
        assert!(bucket.head(MASTER_POINTER).unwrap().is_some());
        assert!(bucket.head(&lineage_key(&rev(7))).unwrap().is_some());
        // Pruning again removes nothing.
        assert_eq!(prune_masters(&bucket, &keep).unwrap(), 0);
    }

    #[test]
    fn one_listing_prunes_what_the_two_steps_prune() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = LocalBucket::create(dir.path()).unwrap();
        lineage(&bucket, 10);
        let removed = prune_audit_window(&bucket, rev(10), 100, 30).unwrap();
        assert_eq!(removed, 2 * 6 + 6 + 5);
        assert_eq!(revisions_left(&bucket), (6..=10).map(rev).collect());
    }

    #[test]
    fn a_head_without_records_or_an_unreadable_record_keeps_more_not_less() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = LocalBucket::create(dir.path()).unwrap();
        // Genesis alone: no record, the head is kept.
        lineage(&bucket, 0);
        assert_eq!(
            masters_to_keep(&bucket, rev(0), 10, 10).unwrap(),
            BTreeSet::from([rev(0)])
        );
        lineage(&bucket, 4);
        // A window longer than the lineage keeps all of it.
        let all: BTreeSet<Digest> = (0..=4).map(rev).collect();
        assert_eq!(masters_to_keep(&bucket, rev(4), 40, 1000).unwrap(), all);
        // A record that does not parse keeps its master.
        bucket.put(&lineage_key(&rev(1)), b"{").unwrap();
        assert_eq!(
            masters_to_keep(&bucket, rev(4), 40, 5).unwrap(),
            BTreeSet::from([rev(1), rev(3), rev(4)])
        );
        // Keys that are not a master's are never touched.
        bucket.put("master/notes.txt", b"n").unwrap();
        bucket.put("master/ABCDEF/config.json", b"n").unwrap();
        prune_masters(&bucket, &BTreeSet::new()).unwrap();
        assert!(bucket.head("master/notes.txt").unwrap().is_some());
        assert!(bucket.head("master/ABCDEF/config.json").unwrap().is_some());
        assert!(revisions_left(&bucket).is_empty());
    }

    #[test]
    fn a_master_off_the_current_lineage_is_kept_for_the_window_too() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = LocalBucket::create(dir.path()).unwrap();
        lineage(&bucket, 10);
        // A lead's last master before a failover, merged from 8 at 90, that
        // the lineage did not continue from.
        let orphan = Lineage {
            revision: Digest::of(b"orphan"),
            parent: rev(8),
            deadline: 90,
            ..Lineage::from_json(&bucket.get(&lineage_key(&rev(9)), 1 << 20).unwrap()).unwrap()
        };
        bucket
            .put(&lineage_key(&orphan.revision), &orphan.to_json().unwrap())
            .unwrap();
        let keep = masters_to_keep(&bucket, rev(10), 100, 30).unwrap();
        assert!(keep.contains(&orphan.revision) && keep.contains(&rev(6)));
        assert!(!keep.contains(&rev(5)));
    }

    #[test]
    fn a_record_from_the_future_does_not_shorten_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = LocalBucket::create(dir.path()).unwrap();
        lineage(&bucket, 10);
        let hostile = Lineage {
            revision: Digest::of(b"future"),
            parent: rev(9),
            deadline: u64::MAX,
            ..Lineage::from_json(&bucket.get(&lineage_key(&rev(9)), 1 << 20).unwrap()).unwrap()
        };
        bucket
            .put(&lineage_key(&hostile.revision), &hostile.to_json().unwrap())
            .unwrap();
        let keep = masters_to_keep(&bucket, rev(10), 100, 30).unwrap();
        assert!((6..=10).all(|i| keep.contains(&rev(i))), "{keep:?}");
        // A head older than the window keeps its parent all the same.
        let keep = masters_to_keep(&bucket, rev(3), 100, 30).unwrap();
        assert!(keep.contains(&rev(3)) && keep.contains(&rev(2)));
    }
}
