//! Following the lead ([`crate::node::lead`]): at the start of each round a
//! validator finds the lead and the source of the round's master (the lead,
//! or in the round it took over, the validator it followed); if the source
//! is another validator, it takes its master for the round (the newest one
//! merged from an earlier round),
//! verifies every master between the last one it holds and that one
//! ([`lineage::verify`](crate::node::lineage::verify)), and only then judges
//! against it, mirroring it (checkpoint, outer state, lineage record,
//! pointer) in its own bucket so that it can take over without a fork. A
//! master proven wrong is refused: logged, named in the validator's lead
//! status, and the validator keeps judging against its last verified
//! master; one that cannot be checked this round is not taken either, and
//! is tried again next round.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::identity::PublicKey;
use crate::node::lead::{Lead, MAX_REFUSALS, Refusal, survey};
use crate::node::lineage::{Lineage, MAX_LINEAGE_BYTES, lineage_key, verify};
use crate::node::master::{LocalMaster, fetch_pointed, publish_hf_files};
use crate::storage::keys::{MASTER_POINTER, MasterPointer, master_key, outer_state_key};

use super::{Validator, load_for_eval};

/// The most masters a follower verifies to catch up in one round.
pub const MAX_CATCH_UP: usize = 16;
/// The masters a validator remembers having held (a returning or refused
/// lead finds where the lineage it follows branched from its own).
pub const MAX_HELD: usize = 64;

/// How a round started with respect to the lead (in the round report).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeadView {
    /// The lead this round (this validator itself when it leads).
    pub lead: PublicKey,
    /// `leads` (this validator publishes masters; `leads, from …` when it
    /// first took a newer master another validator verified or made),
    /// `same` (the lead's master for the round is the one held), `verified`
    /// (a newer one was verified and taken), `refused: <why>` (proven wrong:
    /// listed in the lead status) or `unverified: <why>` (could not be
    /// checked this round).
    pub verdict: String,
}

/// Why a lead's master was not taken.
enum Doubt {
    /// It is proven wrong: its lineage record is missing or malformed, or
    /// does not reproduce it. Recorded as a refusal, which counts against
    /// its publisher in the choice of the lead.
    Proof(Error),
    /// It could not be checked this round (a network error, a delta that
    /// cannot be read): not taken, tried again next round.
    Unverified(Error),
}

/// Verification errors that prove the master wrong (see [`Doubt`]).
fn is_proof(e: &Error) -> bool {
    matches!(
        e,
        Error::Corrupt {
            input: "master lineage",
            ..
        } | Error::DigestMismatch { .. }
    )
}

/// Lineage-record reading errors that prove the master wrong: the record
/// is missing, malformed or of another master (see [`Doubt`]).
fn record_is_proof(e: &Error) -> bool {
    !matches!(
        e,
        Error::Network { .. } | Error::Io { .. } | Error::AccessDenied(_) | Error::Refused(_)
    )
}

impl Validator {
    /// Finds the lead and the source of the round's master ([`survey`]);
    /// when the source is another validator, takes (after verifying) its
    /// master for the round at `deadline` — as a follower, or as a lead
    /// that takes over from the validator it followed.
    pub(super) fn follow_lead(&mut self, deadline: u64) -> Result<LeadView> {
        let params = &self.config.params;
        let metagraph = self.chain.metagraph(params.netuid)?;
        let now = self.chain.block()?.number;
        let me = self.hotkey();
        let survey = survey(self.chain.as_ref(), &metagraph, params, now, self.policy)?;
        let (Some(lead), Some(source)) = (survey.lead, survey.source) else {
            self.leading = true;
            return Ok(LeadView {
                lead: me,
                verdict: "leads".to_string(),
            });
        };
        let (lead, source) = (&survey.validators[lead], &survey.validators[source]);
        self.leading = lead.hotkey == me;
        let caught = (source.hotkey != me).then(|| self.catch_up(source, deadline));
        let verdict = match (self.leading, caught) {
            (true, None | Some(Ok(None))) => "leads".to_string(),
            (true, Some(Ok(Some(r)))) => {
                format!("leads, from {} verified from {}", r.short(), source.hotkey)
            }
            (true, Some(Err(doubt))) => {
                format!(
                    "leads; {}",
                    self.doubted(source.hotkey, source.pointer.revision, doubt)
                )
            }
            (false, None | Some(Ok(None))) => "same".to_string(),
            (false, Some(Ok(Some(_)))) => "verified".to_string(),
            (false, Some(Err(doubt))) => {
                self.doubted(source.hotkey, source.pointer.revision, doubt)
            }
        };
        Ok(LeadView {
            lead: lead.hotkey,
            verdict,
        })
    }

    /// Records a refusal of `publisher`'s master `head` when `doubt` is a
    /// proof; returns the verdict's text.
    fn doubted(&mut self, publisher: PublicKey, head: Digest, doubt: Doubt) -> String {
        match doubt {
            Doubt::Unverified(e) => format!("unverified: {e}"),
            Doubt::Proof(e) => {
                let reason = e.to_string();
                let known = self
                    .state
                    .refused
                    .iter()
                    .any(|r| r.publisher == publisher && r.revision == head);
                if !known {
                    self.state.refused.push(Refusal {
                        publisher,
                        revision: head,
                        reason: reason.clone(),
                    });
                    let extra = self.state.refused.len().saturating_sub(MAX_REFUSALS);
                    self.state.refused.drain(..extra);
                }
                format!("refused: {reason}")
            }
        }
    }

    /// Takes `lead`'s master for the round at `deadline` — the newest one
    /// merged from an earlier round — if it is not the one held, after
    /// verifying every master from one this validator held up to it.
    /// `Ok(Some(revision))` when one was taken, `Ok(None)` when there was
    /// nothing to do.
    fn catch_up(
        &mut self,
        lead: &Lead,
        deadline: u64,
    ) -> std::result::Result<Option<Digest>, Doubt> {
        let head = lead.pointer.revision;
        if let Some(before) = self
            .state
            .refused
            .iter()
            .find(|r| r.publisher == lead.hotkey && r.revision == head)
        {
            let why = format!("refused before: {}", before.reason);
            return Err(Doubt::Proof(Error::InvalidArgument(why)));
        }
        // The lead's masters, newest first, back to one this validator held.
        let mut records: Vec<Lineage> = Vec::new();
        let mut base = head;
        while !self.state.held.contains(&base) {
            if records.len() == MAX_CATCH_UP {
                let why = format!(
                    "{} is more than {MAX_CATCH_UP} masters from any master this validator held",
                    head.short()
                );
                return Err(Doubt::Unverified(Error::InvalidArgument(why)));
            }
            let record = read_lineage(lead, &base).map_err(|e| {
                if record_is_proof(&e) {
                    Doubt::Proof(e)
                } else {
                    Doubt::Unverified(e)
                }
            })?;
            base = record.parent;
            records.push(record);
        }
        // The round's master: the newest merged from an earlier round (the
        // lead may already have merged this one); the held one the lead's
        // masters start from when they are all of this round or later.
        let skip = records
            .iter()
            .take_while(|r| r.deadline >= deadline)
            .count();
        let target = match records.get(skip) {
            Some(record) => (record.revision, record.block),
            None if records.is_empty() => (head, lead.pointer.block),
            None => match read_lineage(lead, &base) {
                Ok(record) => (base, record.block),
                Err(_) => return Ok(None),
            },
        };
        if target.0 == self.master.revision() {
            return Ok(None);
        }
        let work = self.config.work_dir.join("verify");
        for record in records.iter().skip(skip).rev() {
            verify(
                self.chain.as_ref(),
                lead.bucket.as_ref(),
                record,
                &self.config.model,
                self.config.device,
                self.policy,
                &work,
            )
            .map_err(|e| {
                if is_proof(&e) {
                    Doubt::Proof(e)
                } else {
                    Doubt::Unverified(e)
                }
            })?;
            // Every verified master goes into this validator's bucket (its
            // own followers verify from there if it ever leads); the
            // round's master below, with a pointer to it.
            if record.revision != target.0 {
                self.mirror(lead, record.revision, record.block)
                    .map_err(Doubt::Unverified)?;
                self.hold(record.revision);
            }
        }
        self.take(lead, target.0, target.1)
            .map_err(Doubt::Unverified)?;
        Ok(Some(target.0))
    }

    /// Copies the verified master `revision` (published at `block`) from
    /// the lead's bucket into this validator's — outer state and lineage
    /// record (when there are), then the checkpoint, downloaded once into
    /// the master cache and checked against `revision` on the way.
    fn mirror(&self, lead: &Lead, revision: Digest, block: u64) -> Result<LocalMaster> {
        let cap = crate::node::master::max_master_bytes(&self.config.model).saturating_mul(3);
        for key in [outer_state_key(&revision), lineage_key(&revision)] {
            match lead.bucket.get(&key, cap) {
                Ok(bytes) => self.bucket.put(&key, &bytes)?,
                Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let masters = self.config.work_dir.join("masters");
        // A pointer's size is informative only: `take` reads it from the
        // file once it is here.
        let named = MasterPointer::new(revision, block, 0);
        let master = fetch_pointed(lead.bucket.as_ref(), &masters, &self.config.model, named)?;
        // The folder's HF files come from this validator's own model
        // configuration (the run parameters it checks), not from the lead.
        publish_hf_files(self.bucket.as_ref(), &revision, &self.config.model)?;
        self.bucket
            .put_file(&master_key(&revision), master.checkpoint.path())?;
        Ok(master)
    }

    /// Makes the verified master `revision` (published at `block`) this
    /// validator's: mirrored in its own bucket ([`Self::mirror`]) with a
    /// pointer to it, loaded for evaluation.
    fn take(&mut self, lead: &Lead, revision: Digest, block: u64) -> Result<()> {
        let mut master = self.mirror(lead, revision, block)?;
        let path = master.checkpoint.path();
        let size = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        master.pointer = MasterPointer::new(revision, block, size);
        self.bucket.put(MASTER_POINTER, &master.pointer.to_json())?;
        self.model = load_for_eval(&master, &self.config)?;
        self.master = master;
        self.hold(revision);
        Ok(())
    }

    /// Remembers `revision` as a master this validator held.
    pub(super) fn hold(&mut self, revision: Digest) {
        if !self.state.held.contains(&revision) {
            self.state.held.push(revision);
            let extra = self.state.held.len().saturating_sub(MAX_HELD);
            self.state.held.drain(..extra);
        }
    }
}

/// The lineage record of `revision` in the lead's bucket.
fn read_lineage(lead: &Lead, revision: &Digest) -> Result<Lineage> {
    let bytes = lead
        .bucket
        .get(&lineage_key(revision), MAX_LINEAGE_BYTES)
        .map_err(|e| match e {
            Error::NotFound(_) => Error::NotFound(format!(
                "the lineage record of {} in the lead's bucket",
                revision.short()
            )),
            e => e,
        })?;
    let record = Lineage::from_json(&bytes)?;
    if record.revision != *revision {
        return Err(Error::corrupt(
            "master lineage",
            lineage_key(revision),
            format!("the record is of {}", record.revision.short()),
        ));
    }
    Ok(record)
}
