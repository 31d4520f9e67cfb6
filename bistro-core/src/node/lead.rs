//! Which validator publishes masters — the *lead* — and what every
//! validator tells the others about it.
//!
//! Every validator publishes, after each round it judges, a small
//! [`LeadStatus`] (`validators/<hotkey>/lead.json`): the deadline it judged,
//! the master it holds (verified), and the masters it refused. From those,
//! miners and validators alike find the lead with one rule ([`find_lead`]):
//! among the validators by stake (most first, then lowest uid), the first
//!
//! 1. whose bucket can be read and holds a master pointer,
//! 2. that is *live*: its newest status (or, before it has published one,
//!    its master pointer) is from the last `failover_rounds + 1` rounds,
//! 3. that validators holding more than half of the stake of the live
//!    validators other than itself have not caught publishing a master
//!    that its lineage record does not reproduce (a *refusal*: proof, not
//!    an unreachable delta or a network error, which only delay following).
//!
//! A lead that stops (2) or forges a master (3) is replaced by the next
//! validator, which carries on from the newest master it verified; a lead
//! that comes back follows until it is live again, then leads from the
//! newest master of the validator it followed (no fork).
//!
//! The next round's master is the *source*'s ([`find_master_source`]): the
//! lead's own, except
//!
//! - in the round a validator takes the lead from the one it followed — its
//!   last status names another validator as lead, which led then — while
//!   that one's pointer is newer (it merged once more before seeing the
//!   change): then the source is that validator;
//! - while the lead has judged no round yet (a new validator, a wiped
//!   bucket): then the source is the validator with the newest pointer.
//!
//! In both, only a live, unrefused validator counts, with a pointer from no
//! later than `now` and not naming a master the lead refused. Miners train
//! on the source's master and the lead verifies and takes it before
//! judging, so they judge the same master. See `docs/protocol.md`, "Lead
//! and followers".

use serde::{Deserialize, Serialize};

use crate::chain::{Chain, Metagraph};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::identity::PublicKey;
use crate::storage::keys::{MasterPointer, VALIDATORS_DIR, read_master_pointer};
use crate::storage::{Bucket, BucketCommitment, EndpointPolicy, get_if_present, open_bucket};

use super::params::SubnetParams;

/// Version of [`LeadStatus`].
pub const LEAD_STATUS_VERSION: u32 = 1;
/// The most bytes a lead status may have (it is read from other validators).
pub const MAX_LEAD_STATUS_BYTES: u64 = 64 << 10;
/// The most refusals one status lists.
pub const MAX_REFUSALS: usize = 16;

/// The key of `validator`'s lead status.
pub fn lead_status_key(validator: &PublicKey) -> String {
    format!("{VALIDATORS_DIR}/{}/lead.json", validator.to_ss58())
}

/// A master a validator would not follow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The validator that published it.
    pub publisher: PublicKey,
    /// Its revision.
    pub revision: Digest,
    /// Why (the verification's error).
    pub reason: String,
}

/// What a validator says after each round it judged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadStatus {
    /// Format version ([`LEAD_STATUS_VERSION`]).
    pub version: u32,
    /// The deadline it judged last.
    pub deadline: u64,
    /// The validator it took as lead that round (itself when it led).
    pub lead: Option<PublicKey>,
    /// The master it judged against (its newest verified one).
    pub master: Digest,
    /// The masters it refused, newest last (at most [`MAX_REFUSALS`]).
    pub refused: Vec<Refusal>,
}

impl LeadStatus {
    /// As JSON.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::InvalidArgument(format!("lead status: {e}")))
    }

    /// Parses a status read from a bucket (size, version and list caps
    /// checked).
    pub fn from_json(bytes: &[u8]) -> Result<LeadStatus> {
        if bytes.len() as u64 > MAX_LEAD_STATUS_BYTES {
            return Err(Error::limit(
                "lead status bytes",
                MAX_LEAD_STATUS_BYTES,
                bytes.len() as u64,
            ));
        }
        let status: LeadStatus = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt("lead status", "json", e.to_string()))?;
        if status.version != LEAD_STATUS_VERSION {
            return Err(Error::UnsupportedVersion {
                input: "lead status",
                found: status.version,
                supported: LEAD_STATUS_VERSION.to_string(),
            });
        }
        if status.refused.len() > MAX_REFUSALS {
            return Err(Error::limit(
                "refusals in a lead status",
                MAX_REFUSALS as u64,
                status.refused.len() as u64,
            ));
        }
        Ok(status)
    }

    /// Reads `validator`'s status from its bucket (`None` if it has none).
    pub fn read(bucket: &dyn Bucket, validator: &PublicKey) -> Result<Option<LeadStatus>> {
        get_if_present(bucket, &lead_status_key(validator), MAX_LEAD_STATUS_BYTES)?
            .map(|bytes| LeadStatus::from_json(&bytes))
            .transpose()
    }
}

/// A validator with a master pointer, as [`survey`] found it.
pub struct Lead {
    /// Its uid.
    pub uid: u16,
    /// Its hotkey.
    pub hotkey: PublicKey,
    /// Its stake.
    pub stake: u64,
    /// Its bucket commitment.
    pub commitment: BucketCommitment,
    /// Its bucket.
    pub bucket: Box<dyn Bucket>,
    /// Its master pointer.
    pub pointer: MasterPointer,
    /// Its newest lead status, if it has published one.
    pub status: Option<LeadStatus>,
    /// Whether it is live (see the module docs).
    pub live: bool,
    /// Whether validators holding more than half of the other live
    /// validators' stake refused a master it published.
    pub refused: bool,
}

/// The validators with a master pointer, by stake, and which one leads.
pub struct Survey {
    /// Most stake first, then lowest uid.
    pub validators: Vec<Lead>,
    /// The index of the lead in `validators`, if one qualifies.
    pub lead: Option<usize>,
    /// The index of the validator whose pointer names the next round's
    /// master (the module docs): the lead, or the validator it followed.
    pub source: Option<usize>,
}

impl Survey {
    /// Removes and returns the validator `pick` chooses.
    fn take(mut self, pick: fn(&Survey) -> Option<usize>) -> Option<Lead> {
        pick(&self).map(|i| self.validators.swap_remove(i))
    }
}

/// The source of the next round's master, given the lead at block `now`
/// (see the module docs).
fn master_source(validators: &[Lead], lead: usize, now: u64) -> usize {
    let l = &validators[lead];
    // Another live, unrefused validator whose pointer is newer than the
    // lead's, not from the future, and not a master the lead refused.
    let newer = |v: &Lead| {
        let refused_by_lead = l.status.as_ref().is_some_and(|s| {
            s.refused
                .iter()
                .any(|r| r.publisher == v.hotkey && r.revision == v.pointer.revision)
        });
        v.hotkey != l.hotkey
            && v.live
            && !v.refused
            && v.pointer.block > l.pointer.block
            && v.pointer.block <= now
            && !refused_by_lead
    };
    match l.status.as_ref().and_then(|s| s.lead) {
        // The lead has judged no round yet (a new validator, a wiped
        // bucket): the newest master a live validator holds, which the lead
        // verifies before it judges (most stake first among equals).
        None => validators
            .iter()
            .enumerate()
            .filter(|(_, v)| newer(v))
            .min_by_key(|(i, v)| (std::cmp::Reverse(v.pointer.block), *i))
            .map_or(lead, |(i, _)| i),
        // It takes over from the validator it followed, which led then.
        Some(f) if f != l.hotkey => validators
            .iter()
            .position(|v| {
                v.hotkey == f && newer(v) && v.status.as_ref().and_then(|s| s.lead) == Some(f)
            })
            .unwrap_or(lead),
        Some(_) => lead,
    }
}

/// Reads every validator's pointer and status (see the module docs) at
/// block `now`, under `policy`. A validator whose bucket cannot be read, or
/// whose pointer does not parse, is left out, never an error (a status that
/// does not parse counts as none): only the chain's errors are.
pub fn survey(
    chain: &dyn Chain,
    metagraph: &Metagraph,
    params: &SubnetParams,
    now: u64,
    policy: EndpointPolicy,
) -> Result<Survey> {
    let mut neurons: Vec<_> = metagraph.validators().filter(|n| n.stake > 0).collect();
    neurons.sort_by(|a, b| b.stake.cmp(&a.stake).then(a.uid.cmp(&b.uid)));
    let window = params
        .failover_rounds
        .saturating_add(1)
        .saturating_mul(params.round_blocks);
    let mut validators = Vec::new();
    for n in neurons {
        let Some(raw) = chain.commitment(metagraph.netuid, &n.hotkey)? else {
            continue;
        };
        let Ok(commitment) = BucketCommitment::parse(&raw) else {
            continue;
        };
        let Ok(bucket) = open_bucket(&commitment, policy) else {
            continue;
        };
        let Ok(Some(pointer)) = read_master_pointer(bucket.as_ref()) else {
            continue;
        };
        let status = LeadStatus::read(bucket.as_ref(), &n.hotkey).ok().flatten();
        let last = status.as_ref().map_or(pointer.block, |s| s.deadline);
        validators.push(Lead {
            uid: n.uid,
            hotkey: n.hotkey,
            stake: n.stake,
            commitment,
            bucket,
            pointer,
            status,
            live: now.saturating_sub(last) <= window,
            refused: false,
        });
    }
    let refused: Vec<bool> = validators
        .iter()
        .map(|c| {
            let mut others = 0u128;
            let mut against = 0u128;
            for v in validators.iter().filter(|v| v.live && v.hotkey != c.hotkey) {
                others += u128::from(v.stake);
                let refuses = v
                    .status
                    .as_ref()
                    .is_some_and(|s| s.refused.iter().any(|r| r.publisher == c.hotkey));
                if refuses {
                    against += u128::from(v.stake);
                }
            }
            others > 0 && 2 * against > others
        })
        .collect();
    for (v, refused) in validators.iter_mut().zip(refused) {
        v.refused = refused;
    }
    let lead = validators.iter().position(|v| v.live && !v.refused);
    let source = lead.map(|i| master_source(&validators, i, now));
    Ok(Survey {
        validators,
        lead,
        source,
    })
}

/// The lead at block `now` ([`survey`]'s pick), if one qualifies.
pub fn find_lead(
    chain: &dyn Chain,
    metagraph: &Metagraph,
    params: &SubnetParams,
    now: u64,
    policy: EndpointPolicy,
) -> Result<Option<Lead>> {
    Ok(survey(chain, metagraph, params, now, policy)?.take(|s| s.lead))
}

/// The validator whose master pointer names the next round's master at
/// block `now` ([`Survey::source`]): the lead, or, in the round it took
/// over, the validator it followed.
pub fn find_master_source(
    chain: &dyn Chain,
    metagraph: &Metagraph,
    params: &SubnetParams,
    now: u64,
    policy: EndpointPolicy,
) -> Result<Option<Lead>> {
    Ok(survey(chain, metagraph, params, now, policy)?.take(|s| s.source))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalBucket;

    /// Validator `n`, whose pointer is from `block` and whose last status
    /// names `followed` as lead.
    fn validator(dir: &std::path::Path, n: u8, block: u64, followed: u8) -> Lead {
        let revision = Digest::of(&[n]);
        Lead {
            uid: n.into(),
            hotkey: PublicKey([n; 32]),
            stake: 100 - u64::from(n),
            commitment: BucketCommitment::local(dir, "bucket").unwrap(),
            bucket: Box::new(LocalBucket::create(dir.join("bucket")).unwrap()),
            pointer: MasterPointer::new(revision, block, 1),
            status: Some(LeadStatus {
                version: LEAD_STATUS_VERSION,
                deadline: block,
                lead: Some(PublicKey([followed; 32])),
                master: revision,
                refused: vec![],
            }),
            live: true,
            refused: false,
        }
    }

    #[test]
    fn the_master_comes_from_the_followed_validator_only_in_a_takeover() {
        let dir = tempfile::tempdir().unwrap();
        let now = 1000;
        // 0 leads and followed itself: its own master.
        let vs = vec![
            validator(dir.path(), 0, 50, 0),
            validator(dir.path(), 1, 60, 0),
        ];
        assert_eq!(master_source(&vs, 0, now), 0);
        // 0 takes the lead back from 1, which led and merged once more: 1's.
        let mut vs = vec![
            validator(dir.path(), 0, 50, 1),
            validator(dir.path(), 1, 60, 1),
        ];
        assert_eq!(master_source(&vs, 0, now), 1);
        // ... unless 1 is not newer, not live, refused, from the future, a
        // master 0 refused, or 1 did not lead.
        vs[1].pointer.block = 50;
        assert_eq!(master_source(&vs, 0, now), 0);
        vs[1].pointer.block = 60;
        vs[1].live = false;
        assert_eq!(master_source(&vs, 0, now), 0);
        vs[1].live = true;
        vs[1].refused = true;
        assert_eq!(master_source(&vs, 0, now), 0);
        vs[1].refused = false;
        assert_eq!(master_source(&vs, 0, 59), 0);
        let refusal = Refusal {
            publisher: vs[1].hotkey,
            revision: vs[1].pointer.revision,
            reason: "forged".into(),
        };
        vs[0].status.as_mut().unwrap().refused.push(refusal);
        assert_eq!(master_source(&vs, 0, now), 0);
        vs[0].status.as_mut().unwrap().refused.clear();
        vs[1].status.as_mut().unwrap().lead = Some(PublicKey([2; 32]));
        assert_eq!(master_source(&vs, 0, now), 0);
        // A newer pointer of a validator the lead did not follow is not taken.
        let vs = vec![
            validator(dir.path(), 0, 50, 1),
            validator(dir.path(), 1, 50, 1),
            validator(dir.path(), 2, 90, 2),
        ];
        assert_eq!(master_source(&vs, 0, now), 0);
        // Nor one named by a validator that is not the lead.
        let vs = vec![
            validator(dir.path(), 0, 50, 0),
            validator(dir.path(), 1, 40, 2),
        ];
        assert_eq!(master_source(&vs, 0, now), 0);
    }

    #[test]
    fn a_lead_that_judged_no_round_takes_the_newest_master() {
        let dir = tempfile::tempdir().unwrap();
        let mut vs = vec![
            validator(dir.path(), 0, 5, 0),
            validator(dir.path(), 1, 60, 1),
            validator(dir.path(), 2, 70, 1),
        ];
        vs[0].status = None;
        assert_eq!(master_source(&vs, 0, 1000), 2);
        // Not from the future, not a refused validator's.
        assert_eq!(master_source(&vs, 0, 65), 1);
        vs[2].refused = true;
        assert_eq!(master_source(&vs, 0, 1000), 1);
        vs[1].live = false;
        assert_eq!(master_source(&vs, 0, 1000), 0);
    }

    #[test]
    fn statuses_round_trip_and_hostile_ones_are_refused() {
        let status = LeadStatus {
            version: LEAD_STATUS_VERSION,
            deadline: 40,
            lead: Some(PublicKey([1; 32])),
            master: Digest::of(b"m"),
            refused: vec![Refusal {
                publisher: PublicKey([2; 32]),
                revision: Digest::of(b"t"),
                reason: "the merge gives another revision".into(),
            }],
        };
        let json = status.to_json().unwrap();
        assert_eq!(LeadStatus::from_json(&json).unwrap(), status);
        let mut other = status.clone();
        other.version = 9;
        assert!(matches!(
            LeadStatus::from_json(&other.to_json().unwrap()),
            Err(Error::UnsupportedVersion { .. })
        ));
        other.version = LEAD_STATUS_VERSION;
        other.refused = vec![status.refused[0].clone(); MAX_REFUSALS + 1];
        assert!(LeadStatus::from_json(&other.to_json().unwrap()).is_err());
        let huge = vec![b' '; MAX_LEAD_STATUS_BYTES as usize + 1];
        assert!(matches!(
            LeadStatus::from_json(&huge),
            Err(Error::LimitExceeded { .. })
        ));
        assert!(LeadStatus::from_json(b"{").is_err());
    }
}
