//! Phases one and two of a round: every chosen uid's delta fetched and
//! checked without the model, then measured on the master and judged by
//! the rule, one log record each.

use std::path::PathBuf;
use std::time::Duration;

use super::fetch::{Candidate, Expectation, Fetched, Seen, fetch_all};
use super::measure::{measure_delta, page_losses};
use super::report::RoundRow;
use super::state::RoundSelection;
use super::{RoundPages, Validator, load_for_eval};
use crate::chain::Metagraph;
use crate::codec::Limits;
use crate::data::PagedBatch;
use crate::error::{Error, Result};
use crate::identity::PublicKey;
use crate::node::log::{EvalRecord, Timings};
use crate::node::rejection::Rejection;
use crate::node::sealing::accepted_rounds;
use crate::node::similarity::{SketchEntry, SketchSource};
use crate::pages::local_pages;
use crate::score::Evaluation;

/// A uid to judge this round, and what phase one found.
pub(super) struct Judged {
    uid: u16,
    hotkey: PublicKey,
    /// The object phase one got as far as choosing, if any.
    seen: Option<Seen>,
    fetched: std::result::Result<Candidate, Rejection>,
    /// The share of the delta earlier rounds' deltas explain, when computed.
    explained: Option<f64>,
}

impl Validator {
    pub(super) fn phase_one(
        &mut self,
        metagraph: &Metagraph,
        deadline: u64,
        done: &[u16],
    ) -> Result<Vec<Judged>> {
        let params = &self.config.params;
        let limits = Limits::for_model(self.config.model.parameter_count());
        let blocks = self.round_blocks(deadline);
        let downloads = self.config.work_dir.join("deltas");
        std::fs::create_dir_all(&downloads).map_err(|e| Error::io(&downloads, e))?;
        remove_abandoned_downloads(&downloads);
        let mut judged = Vec::new();
        // Every sealed upload must open with a pulse in this window; it is
        // known once the reveal block exists.
        let reveal_block = params.reveal_block(deadline);
        self.reveal_hash(reveal_block)?;
        let seal_rounds = accepted_rounds(self.chain.as_ref(), params, deadline)?
            .ok_or_else(|| Error::Chain(format!("no beacon round at block {reveal_block}")))?;
        let snapshot = self
            .state
            .snapshot
            .clone()
            .filter(|s| s.deadline == deadline);
        let too_late = Rejection::ValidatorError(format!(
            "the validator listed the buckets for deadline {deadline} only after the reveal \
             block {reveal_block} existed: it cannot tell uploads on time from late ones"
        ));
        // The round's uids are chosen once (a resumed round judges the rest
        // of the same choice).
        let mut chosen = match &self.state.selected {
            Some(s) if s.deadline == deadline => s.uids.clone(),
            _ => {
                let uids = self.select_uids(metagraph, deadline);
                self.state.selected = Some(RoundSelection {
                    deadline,
                    uids: uids.clone(),
                });
                self.state.save(&self.config.work_dir.join("state.json"))?;
                uids
            }
        };
        chosen.retain(|(uid, _)| !done.contains(uid));
        let dests: Vec<PathBuf> = chosen
            .iter()
            .map(|(uid, _)| downloads.join(format!("uid-{uid}.delta")))
            .collect();
        let fetched: Vec<Fetched> = match snapshot.as_ref().filter(|s| s.before_reveal) {
            None => chosen
                .iter()
                .map(|_| (None, Err(too_late.clone())))
                .collect(),
            Some(snapshot) => {
                let master = self.master.revision();
                let expectations: Vec<Expectation<'_>> = chosen
                    .iter()
                    .zip(&dests)
                    .map(|((uid, hotkey), dest)| Expectation {
                        netuid: params.netuid,
                        uid: *uid,
                        hotkey: *hotkey,
                        master,
                        blocks: blocks.clone(),
                        pinned: snapshot.pins.get(uid),
                        unlisted: snapshot.unlisted.get(uid),
                        seal_rounds: &seal_rounds,
                        limits: &limits,
                        dest,
                        budget_base: self.fetch_budget.per_uid_base,
                    })
                    .collect();
                fetch_all(
                    self.chain.as_ref(),
                    &self.buckets,
                    &expectations,
                    &self.fetch_budget,
                )
            }
        };
        for ((uid, hotkey), (seen, fetched)) in chosen.into_iter().zip(fetched) {
            if let Ok(c) = &fetched {
                self.state.copies.record(c.fingerprint, hotkey, deadline);
                // Kept for later rounds' copy checks, whatever this one decides.
                self.sketches.append(&SketchEntry {
                    deadline,
                    source: SketchSource::Delta { uid, hotkey },
                    sketch: c.sketch.clone(),
                })?;
            }
            judged.push(Judged {
                uid,
                hotkey,
                seen,
                fetched,
                explained: None,
            });
        }
        // Copies of this round (same content) and of earlier rounds (scaled,
        // perturbed or summed: explained by earlier sketches).
        let rule = params.similarity;
        let window = rule.window_rounds.saturating_mul(params.round_blocks);
        let history = self
            .sketches
            .load(deadline.saturating_sub(window)..deadline)?;
        for j in judged.iter_mut() {
            let Ok(c) = &j.fetched else { continue };
            if let Some(first) = self.state.copies.original_of(&c.fingerprint, &j.hotkey) {
                j.fetched = Err(Rejection::Copy(format!(
                    "the same content was uploaded earlier by {}",
                    first.hotkey
                )));
                continue;
            }
            let explanation = history
                .others_than(&j.hotkey)
                .explain(&c.sketch, rule.max_explained);
            j.explained = Some(explanation.explained);
            if explanation.explained > rule.max_explained {
                let sources: Vec<String> = explanation
                    .used
                    .iter()
                    .take(3)
                    .map(|(d, source)| match source {
                        SketchSource::Delta { uid, .. } => format!("uid {uid} at {d}"),
                        SketchSource::Master => format!("the master's change at {d}"),
                    })
                    .collect();
                j.fetched = Err(Rejection::Copy(format!(
                    "{:.1} % of it is earlier deltas ({}), more than the {:.1} % allowed",
                    100.0 * explanation.explained,
                    sources.join(", "),
                    100.0 * rule.max_explained
                )));
            }
        }
        self.sketches
            .prune(deadline.saturating_sub(window.saturating_add(params.round_blocks)))?;
        Ok(judged)
    }

    pub(super) fn reveal_hash(&self, reveal_block: u64) -> Result<[u8; 32]> {
        if let Some(hash) = self.chain.block_hash(reveal_block)? {
            return Ok(hash);
        }
        let blocks = reveal_block.saturating_sub(self.chain.block()?.number) + 2;
        let timeout = self.chain.block_time().saturating_mul(blocks as u32 * 4);
        self.chain
            .wait_for_block(reveal_block, timeout.max(Duration::from_secs(30)))?;
        self.chain
            .block_hash(reveal_block)?
            .ok_or_else(|| Error::Chain(format!("block {reveal_block} has no hash")))
    }

    /// Evaluates (or records the rejection of) one uid; returns its row and
    /// whether its delta is mergeable.
    pub(super) fn judge(&mut self, judged: Judged, round: &RoundPages) -> Result<RoundRow> {
        let params = self.config.params.clone();
        let Judged {
            uid,
            hotkey,
            seen,
            fetched,
            explained,
        } = judged;
        let local_ids = local_pages(
            &params.pages,
            uid,
            round.deadline,
            &round.reveal_hash,
            params.local_pages,
        )?;
        let mut record = EvalRecord {
            validator: self.hotkey(),
            deadline: round.deadline,
            reveal_block: round.reveal_block,
            reveal_hash: crate::digest::Digest(round.reveal_hash).to_hex(),
            master_revision: self.master.revision(),
            master_block: self.master.pointer.block,
            lead: Some(round.lead),
            uid,
            hotkey,
            delta_key: seen.as_ref().map(|o| o.key.clone()),
            delta_size: seen.as_ref().map(|o| o.size),
            object_digest: seen.as_ref().map(|o| o.digest),
            delta_digest: None,
            local_pages: local_ids.clone(),
            global_pages: round.global_ids.clone(),
            explained,
            evaluation: None,
            verdict: None,
            local_gain: None,
            global_gain: None,
            specific_gain: None,
            specific_se: None,
            rejection: None,
            score: 0.0,
            average: 0.0,
            mergeable: false,
            restored_exact: None,
            rule: params.rule,
            params: Some(self.run_params),
            timings_ms: Timings::default(),
        };
        let outcome = match fetched {
            Err(rejection) => Err(rejection),
            Ok(candidate) => {
                record.delta_digest = Some(candidate.digest);
                record.timings_ms.download = candidate.download.as_millis() as u64;
                let local = self.data.paged_batch(&local_ids, params.seq_len)?;
                self.evaluate(&candidate, &local, round, &mut record)?
            }
        };
        match outcome {
            Ok(evaluation) => {
                let verdict = params.rule.judge(&evaluation);
                let finite = |x: f64| x.is_finite().then_some(x);
                record.evaluation = Some(evaluation);
                record.verdict = Some(verdict.reason);
                record.local_gain = finite(verdict.local_gain);
                record.global_gain = finite(verdict.global_gain);
                record.specific_gain = finite(verdict.specific_gain);
                record.specific_se = finite(verdict.specific_se);
                record.score = verdict.score;
                record.mergeable = verdict.mergeable;
            }
            Err(rejection) => record.rejection = Some(rejection),
        }
        // The validator's own failures leave the average as it was, and the
        // uid is judged again next round.
        if !record
            .rejection
            .as_ref()
            .is_some_and(|r| r.is_validators_fault())
        {
            self.state
                .averages
                .record(uid, hotkey, round.deadline, record.score)?;
        }
        record.average = self
            .state
            .averages
            .get(uid)
            .filter(|r| r.hotkey == hotkey)
            .map_or(0.0, |r| r.average);
        self.log.append(&record)?;
        self.state.save(&self.config.work_dir.join("state.json"))?;
        let outcome = match (&record.rejection, &record.verdict) {
            (Some(r), _) => r.code().to_string(),
            (None, Some(v)) => serde_json::to_value(v)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            (None, None) => String::new(),
        };
        let row = RoundRow {
            uid,
            hotkey,
            outcome,
            local_gain: record.local_gain,
            global_gain: record.global_gain,
            specific_gain: record.specific_gain,
            specific_se: record.specific_se,
            explained: record.explained,
            score: record.score,
            average: record.average,
            merged: false,
        };
        Ok(row)
    }

    /// Applies the candidate, measures every page, undoes, and checks the
    /// master is back bit for bit (a mismatch reloads the master: the
    /// validator never judges on a damaged master; a reload that fails ends
    /// the round with an error).
    pub(super) fn evaluate(
        &mut self,
        candidate: &Candidate,
        local: &PagedBatch,
        round: &RoundPages,
        record: &mut EvalRecord,
    ) -> Result<std::result::Result<Evaluation, Rejection>> {
        let master_local = match page_losses(&self.model, local) {
            Ok(losses) => losses,
            Err(e) => return Ok(Err(internal(e))),
        };
        let measured = measure_delta(
            &mut self.model,
            &self.master.checkpoint,
            self.master.revision(),
            &candidate.delta.reader(),
            (local, master_local),
            (&round.global, round.master_global.clone()),
        );
        let measured = match measured {
            Ok(measured) => measured,
            Err(rejection) => return Ok(Err(rejection)),
        };
        record.timings_ms.apply = measured.apply.as_millis() as u64;
        record.timings_ms.eval = measured.eval.as_millis() as u64;
        record.timings_ms.restore = measured.restore.as_millis() as u64;
        record.restored_exact = Some(measured.restored_exact);
        if !measured.restored_exact {
            // Never judge on a damaged master: reload it from its file, or
            // stop the round.
            self.model = load_for_eval(&self.master, &self.config)?;
        }
        Ok(Ok(measured.evaluation))
    }
}

/// A failure of the validator's own model or data: not the miner's fault.
fn internal(e: Error) -> Rejection {
    Rejection::ValidatorError(e.to_string())
}

/// Removes sealed downloads left by earlier rounds (a download abandoned at
/// its budget may land after its round). Best effort.
fn remove_abandoned_downloads(downloads: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(downloads) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().ends_with(".sealed") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
