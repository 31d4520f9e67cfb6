//! Phase three of a round: the mergeable deltas become a candidate master
//! through the outer optimizer, published with its lineage record when it
//! beats the master on the round's global pages.

use super::measure::{mean, page_losses_or_nan};
use super::{RoundPages, Validator, load_for_eval};
use crate::codec::Limits;
use crate::error::{Error, Result};
use crate::model::outer::{MergeRule, OuterState, merge_into};
use crate::node::lineage::{LINEAGE_VERSION, Lineage, MergedDelta, lineage_key};
use crate::node::log::EvalRecord;
use crate::node::master::{fetch_outer_state, publish_model};

impl Validator {
    /// The uids merged at `deadline` if the current master is that merge
    /// (a resumed round whose merge was published before the stop).
    pub(super) fn merged_at(&self, deadline: u64) -> Result<Option<Vec<u16>>> {
        let key = lineage_key(&self.master.revision());
        let bytes = match self
            .bucket
            .get(&key, crate::node::lineage::MAX_LINEAGE_BYTES)
        {
            Ok(bytes) => bytes,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let lineage = Lineage::from_json(&bytes)?;
        Ok((lineage.deadline == deadline).then(|| lineage.deltas.iter().map(|d| d.uid).collect()))
    }

    /// Merges the mergeable deltas into a candidate master with the
    /// configured outer optimizer ([`crate::model::outer`]); publishes it —
    /// the outer state first, then the checkpoint and the pointer — when it
    /// beats the master on the round's global pages, otherwise reloads the
    /// master. A refused candidate of a rule with momentum is followed by a
    /// second one, the same deltas as a plain mean (a momentum restart: a
    /// mean step drops the buffer, and the lineage record names `mean`), so
    /// a buffer that overshoots is not applied again round after round.
    /// Keeps in `mergeable` the uids that went in and returns the global
    /// loss of the last candidate tried and the rule of the published one.
    /// A corrupt or mismatched outer state of the master is an error:
    /// nothing is merged or published from it.
    pub(super) fn merge(
        &mut self,
        mergeable: &mut Vec<u16>,
        records: &[EvalRecord],
        round: &RoundPages,
        master_global: f64,
    ) -> Result<(Option<f64>, Option<MergeRule>)> {
        use crate::model::outer::MergeWeighting;
        use crate::node::master::publish_outer_state;
        if mergeable.is_empty() {
            return Ok((None, None));
        }
        let merge = self.config.merge;
        merge.validate()?;
        // This round's records, from the log the validator publishes: the
        // scores (for score weights) and the keys and digests (lineage).
        let scored: Vec<(u16, f64)> = if merge.weighting == MergeWeighting::Uniform {
            mergeable.iter().map(|&uid| (uid, 1.0)).collect()
        } else {
            mergeable
                .iter()
                .map(|&uid| {
                    let score = records
                        .iter()
                        .rev()
                        .find(|r| r.uid == uid && r.mergeable)
                        .map_or(0.0, |r| r.score);
                    (uid, score)
                })
                .collect()
        };
        let weights = merge.weights(&scored);
        *mergeable = weights.iter().map(|w| w.0).collect();
        let masters = self.config.work_dir.join("masters");
        // A NaN loss (a delta that could not be merged) never beats it.
        let beats_master = |loss: f64| loss < master_global;
        let mut rule = merge.rule;
        let (mut outer, mut merged) = self.candidate(rule, &weights, round)?;
        if !beats_master(merged) && rule.has_momentum() {
            rule = MergeRule::Mean;
            self.model = load_for_eval(&self.master, &self.config)?;
            (outer, merged) = self.candidate(rule, &weights, round)?;
        }
        let published = if beats_master(merged) {
            let block = self.chain.block()?.number.max(round.deadline);
            let revision = self.model.revision()?;
            outer.set_master(revision);
            publish_outer_state(&outer, self.bucket.as_ref(), &masters)?;
            let lineage = self.lineage(records, round.deadline, block, revision, rule, &weights)?;
            self.bucket
                .put(&lineage_key(&revision), &lineage.to_json()?)?;
            self.master = publish_model(&self.model, self.bucket.as_ref(), &masters, block)?;
            self.hold(revision);
            self.state.copies.clear();
            self.state.copies_master = self.master.revision();
            Some(rule)
        } else {
            self.model = load_for_eval(&self.master, &self.config)?;
            mergeable.clear();
            None
        };
        self.state.save(&self.config.work_dir.join("state.json"))?;
        Ok((Some(merged), published))
    }

    /// Applies the deltas `weights` names (downloaded this round) to the
    /// model with `rule`, from the master's published outer state (none:
    /// zero momentum), and measures the candidate on the round's global
    /// pages: the outer state after the step and the mean loss (NaN when a
    /// delta could not be merged; the model then needs a reload).
    fn candidate(
        &mut self,
        rule: MergeRule,
        weights: &[(u16, f32)],
        round: &RoundPages,
    ) -> Result<(OuterState, f64)> {
        let masters = self.config.work_dir.join("masters");
        let mut outer = fetch_outer_state(
            self.bucket.as_ref(),
            &masters,
            &self.master,
            &self.config.model,
        )?
        .unwrap_or_else(|| OuterState::start(self.master.revision()));
        let downloads = self.config.work_dir.join("deltas");
        let limits = Limits::for_model(self.config.model.parameter_count());
        let opened: Result<Vec<_>> = weights
            .iter()
            .map(|(uid, _)| {
                crate::codec::open_file(downloads.join(format!("uid-{uid}.delta")), &limits)
            })
            .collect();
        let merged = opened.and_then(|files| {
            let deltas: Vec<_> = files
                .iter()
                .zip(weights)
                .map(|(f, (_, w))| (f.reader(), *w))
                .collect();
            merge_into(&mut self.model, &deltas, rule, &mut outer)
        });
        let losses = match merged {
            Ok(()) => page_losses_or_nan(&self.model, &round.global),
            Err(_) => vec![f64::NAN],
        };
        Ok((outer, mean(&losses)))
    }

    /// The lineage record of the master `revision` merged at `deadline`
    /// from the deltas `weights` name (their keys and digests from the
    /// round's log `records`, their commitments from the chain).
    pub(super) fn lineage(
        &self,
        records: &[EvalRecord],
        deadline: u64,
        block: u64,
        revision: crate::digest::Digest,
        rule: MergeRule,
        weights: &[(u16, f32)],
    ) -> Result<Lineage> {
        let mut deltas = Vec::new();
        for &(uid, weight) in weights {
            let record = records
                .iter()
                .rev()
                .find(|r| r.uid == uid && r.mergeable)
                .ok_or_else(|| Error::InvalidArgument(format!("uid {uid} merged unlogged")))?;
            let missing = |what: &str| Error::InvalidArgument(format!("uid {uid}: no {what}"));
            let raw = self
                .chain
                .commitment(self.config.params.netuid, &record.hotkey)?
                .ok_or_else(|| missing("commitment"))?;
            deltas.push(MergedDelta {
                uid,
                hotkey: record.hotkey,
                commitment: String::from_utf8_lossy(&raw).into_owned(),
                key: record.delta_key.clone().ok_or_else(|| missing("key"))?,
                object_digest: record
                    .object_digest
                    .ok_or_else(|| missing("object digest"))?,
                digest: record.delta_digest.ok_or_else(|| missing("digest"))?,
                weight,
            });
        }
        Ok(Lineage {
            version: LINEAGE_VERSION,
            revision,
            parent: self.master.revision(),
            deadline,
            block,
            rule: rule.to_string(),
            deltas,
        })
    }
}
