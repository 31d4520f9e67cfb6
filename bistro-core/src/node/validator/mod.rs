//! The validator: judge every miner's delta against the master, keep what
//! helps, set weights.
//!
//! A round ([`Validator::run_round`]) at deadline block `b`:
//! 1. for each uid, find its newest delta for the round in its bucket,
//!    download it and check everything that needs no model: size, storage
//!    time, format and digest, base revision and block, author, signature,
//!    finite values (the `fetch` module); then reject later copies of the same content;
//! 2. draw the pages with the hash of block `b + D`; measure the master on
//!    the global pages once;
//! 3. for each admitted delta: apply it in place, measure local and global
//!    losses, undo it, and check the master is back bit for bit; score it and
//!    fold the score into the uid's average (rejections score 0);
//! 4. merge the mergeable deltas into a candidate master with the outer
//!    optimizer (`ValidatorConfig::merge`) and publish it, with the
//!    optimizer's state, if it beats the master on the global pages;
//! 5. set weights when the interval has passed; upload the round's log and
//!    the state.
//!
//! State and log are written after every evaluation, so a killed validator
//! resumes the round it was in without judging a uid twice.

mod fetch;
mod report;
mod state;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub use fetch::{BucketCache, Candidate, Expectation, fetch_candidate};
pub use report::{RoundReport, RoundRow};
pub use state::{VALIDATOR_STATE_VERSION, ValidatorState};

use super::log::{EvalLog, EvalRecord, Timings};
use super::master::{LocalMaster, fetch_master, publish_model};
use super::miner::check_dataset;
use super::params::SubnetParams;
use super::rejection::Rejection;
use crate::chain::{Chain, Metagraph};
use crate::codec::Limits;
use crate::data::{Batch, PageSource};
use crate::error::{Error, Result};
use crate::identity::{Keypair, PublicKey};
use crate::model::delta::{Backup, apply_with_backup};
use crate::model::{Config, Device, Model};
use crate::pages::{global_pages, local_pages};
use crate::score::{Evaluation, LossPair};
use crate::storage::keys::{eval_log_key, validator_state_key};
use crate::storage::{Bucket, BucketCommitment};

/// How a validator runs.
#[derive(Clone, Debug)]
pub struct ValidatorConfig {
    /// The subnet's protocol parameters.
    pub params: SubnetParams,
    /// The model's shape.
    pub model: Config,
    /// Where to evaluate.
    pub device: Device,
    /// Local folder for state, log, master cache and downloads.
    pub work_dir: PathBuf,
    /// Most uids judged per round (least recently judged first); 0 = all.
    pub uids_per_round: usize,
    /// Seed of the genesis master, when the bucket has none yet.
    pub genesis_seed: u64,
    /// Held-out pages measured on the master after each round (0 = none).
    pub heldout_pages: usize,
    /// How accepted deltas become the next master (outer optimizer, weights,
    /// top-G); see [`crate::model::outer`].
    pub merge: crate::model::outer::MergeConfig,
}

/// A validator.
pub struct Validator {
    chain: Arc<dyn Chain>,
    bucket: Box<dyn Bucket>,
    commitment: BucketCommitment,
    keypair: Keypair,
    data: Arc<dyn PageSource>,
    heldout: Option<Arc<dyn PageSource>>,
    config: ValidatorConfig,
    model: Model,
    master: LocalMaster,
    state: ValidatorState,
    log: EvalLog,
    buckets: BucketCache,
}

/// A uid to judge this round, and what phase one found.
struct Judged {
    uid: u16,
    hotkey: PublicKey,
    fetched: std::result::Result<Candidate, Rejection>,
}

impl Validator {
    /// Opens (or starts) a validator: loads its state from `work_dir`, the
    /// master from its bucket — publishing a genesis master if there is none —
    /// and publishes its bucket commitment so miners find the master.
    pub fn new(
        chain: Arc<dyn Chain>,
        bucket: Box<dyn Bucket>,
        commitment: BucketCommitment,
        keypair: Keypair,
        data: Arc<dyn PageSource>,
        config: ValidatorConfig,
    ) -> Result<Validator> {
        config.params.validate()?;
        check_dataset(&config.params, data.as_ref())?;
        let work = &config.work_dir;
        std::fs::create_dir_all(work).map_err(|e| Error::io(work, e))?;
        let state = match ValidatorState::load(&work.join("state.json"))? {
            Some(state) => state,
            None => ValidatorState::new(config.params.ema_alpha)?,
        };
        let log = EvalLog::open(work.join("evals"))?;
        let masters = work.join("masters");
        let master = match fetch_master(bucket.as_ref(), &masters, &config.model)? {
            Some(master) => master,
            None => {
                let genesis = Model::new(config.model.clone(), config.genesis_seed, config.device)?;
                let block = chain.block()?.number;
                publish_model(&genesis, bucket.as_ref(), &masters, block)?
            }
        };
        let model = load_for_eval(&master, &config)?;
        let netuid = config.params.netuid;
        let encoded = commitment.encode()?;
        if chain.commitment(netuid, &keypair.public())?.as_deref() != Some(encoded.as_bytes()) {
            chain.set_commitment(netuid, &keypair, encoded.as_bytes())?;
        }
        Ok(Validator {
            chain,
            bucket,
            commitment,
            keypair,
            data,
            heldout: None,
            config,
            model,
            master,
            state,
            log,
            buckets: BucketCache::default(),
        })
    }

    /// Measures the master on `heldout` after every round (for reports and
    /// charts; it plays no part in scores).
    pub fn with_heldout(mut self, heldout: Arc<dyn PageSource>) -> Validator {
        self.heldout = Some(heldout);
        self
    }

    /// The validator's hotkey.
    pub fn hotkey(&self) -> PublicKey {
        self.keypair.public()
    }

    /// The bucket commitment it publishes.
    pub fn commitment(&self) -> &BucketCommitment {
        &self.commitment
    }

    /// The current master.
    pub fn master(&self) -> &LocalMaster {
        &self.master
    }

    /// The model (holding the current master's weights between rounds).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The persistent state.
    pub fn state(&self) -> &ValidatorState {
        &self.state
    }

    /// The folder of the evaluation log (a JSON-lines file per deadline; read
    /// it with [`read_log`](crate::node::log::read_log)).
    pub fn log_dir(&self) -> &std::path::Path {
        self.log.dir()
    }

    /// The loss of the current model on the first `pages` held-out pages
    /// (spread over the source), if a held-out source is set.
    pub fn heldout_loss(&self) -> Result<Option<f64>> {
        let Some(heldout) = &self.heldout else {
            return Ok(None);
        };
        let n = heldout.num_pages();
        let k = (self.config.heldout_pages as u64).min(n);
        if k == 0 {
            return Ok(None);
        }
        let ids: Vec<u64> = (0..k).map(|i| i * n / k).collect();
        let batch = heldout.batch(&ids, self.config.params.seq_len)?;
        self.model.loss(&batch).map(Some)
    }

    /// Judges the round whose deadline is `deadline`. The chain must be at
    /// the deadline or later; the call waits for the reveal block `b + D`.
    /// Uploads stored later than now plus the grace are late.
    pub fn run_round(&mut self, deadline: u64) -> Result<RoundReport> {
        let params = self.config.params.clone();
        if let Some(last) = self.state.last_deadline
            && deadline < last
        {
            return Err(Error::InvalidArgument(format!(
                "deadline {deadline} is before the last judged deadline {last}"
            )));
        }
        let now = self.chain.block()?;
        if now.number < deadline {
            return Err(Error::InvalidArgument(format!(
                "the chain is at block {}, before the deadline {deadline}",
                now.number
            )));
        }
        let upload_deadline = SystemTime::now() + Duration::from_millis(params.upload_grace_ms);
        if self.state.copies_master != self.master.revision() {
            self.state.copies.clear();
            self.state.copies_master = self.master.revision();
        }
        self.state.last_deadline = Some(deadline);

        // Phase one: fetch and check, no model involved.
        let metagraph = self.chain.metagraph(params.netuid)?;
        let registered: Vec<(u16, PublicKey)> = metagraph
            .neurons
            .iter()
            .map(|n| (n.uid, n.hotkey))
            .collect();
        self.state.averages.retain_registered(&registered);
        let judged = self.phase_one(&metagraph, deadline, upload_deadline)?;

        // Phase two: the pages, then every admitted delta on the model.
        let reveal_block = params.reveal_block(deadline);
        let reveal_hash = self.reveal_hash(reveal_block)?;
        let global_ids = global_pages(&params.pages, deadline, &reveal_hash, params.global_pages)?;
        let global_batch = self.data.batch(&global_ids, params.seq_len)?;
        let master_global = self.model.loss(&global_batch)?;
        let master_before = self.master.revision();
        let mut rows = Vec::new();
        let mut mergeable = Vec::new();
        for judged in judged {
            let record = self.judge(
                judged,
                deadline,
                reveal_block,
                &reveal_hash,
                &global_ids,
                &global_batch,
                master_global,
            )?;
            if record.1 {
                mergeable.push(record.0.uid);
            }
            rows.push(record.0);
        }

        // Phase three: merge, weights, publish the log and state.
        let merged_global_loss =
            self.merge(&mut mergeable, deadline, &global_batch, master_global)?;
        for row in rows.iter_mut() {
            row.merged = mergeable.contains(&row.uid);
        }
        let (weights, weights_error) = self.maybe_set_weights(deadline);
        self.publish_round_log(deadline)?;
        let heldout_loss = self.heldout_loss()?;
        Ok(RoundReport {
            deadline,
            reveal_block,
            master_before,
            master_after: self.master.revision(),
            master_global_loss: master_global,
            merged_global_loss,
            heldout_loss,
            rows,
            weights,
            weights_error,
        })
    }

    /// The uids to judge: every registered uid but this validator's, least
    /// recently judged first, at most `uids_per_round`; uids already judged
    /// at this deadline (a resumed round) are skipped.
    fn select_uids(&self, metagraph: &Metagraph, deadline: u64) -> Vec<(u16, PublicKey)> {
        let me = self.hotkey();
        let mut uids: Vec<(u64, u16, PublicKey)> = metagraph
            .neurons
            .iter()
            .filter(|n| n.hotkey != me)
            .filter_map(|n| {
                let last = self
                    .state
                    .averages
                    .get(n.uid)
                    .filter(|r| r.hotkey == n.hotkey);
                match last {
                    Some(r) if r.last_block >= deadline => None,
                    Some(r) => Some((r.last_block, n.uid, n.hotkey)),
                    None => Some((0, n.uid, n.hotkey)),
                }
            })
            .collect();
        uids.sort();
        if self.config.uids_per_round > 0 {
            uids.truncate(self.config.uids_per_round);
        }
        let mut chosen: Vec<(u16, PublicKey)> = uids.into_iter().map(|(_, u, h)| (u, h)).collect();
        chosen.sort_by_key(|(uid, _)| *uid);
        chosen
    }

    fn phase_one(
        &mut self,
        metagraph: &Metagraph,
        deadline: u64,
        upload_deadline: SystemTime,
    ) -> Result<Vec<Judged>> {
        let params = &self.config.params;
        let limits = Limits::for_model(self.config.model.parameter_count());
        let first_block = self.master.pointer.block;
        let downloads = self.config.work_dir.join("deltas");
        std::fs::create_dir_all(&downloads).map_err(|e| Error::io(&downloads, e))?;
        let mut judged = Vec::new();
        for (uid, hotkey) in self.select_uids(metagraph, deadline) {
            let dest = downloads.join(format!("uid-{uid}.delta"));
            let expect = Expectation {
                netuid: params.netuid,
                uid,
                hotkey,
                master: self.master.revision(),
                blocks: first_block..=deadline,
                upload_deadline,
                limits: &limits,
                dest: &dest,
            };
            let fetched = fetch_candidate(self.chain.as_ref(), &mut self.buckets, &expect);
            if let Ok(c) = &fetched {
                self.state.copies.record(c.fingerprint, hotkey, c.uploaded);
            }
            judged.push(Judged {
                uid,
                hotkey,
                fetched,
            });
        }
        for j in judged.iter_mut() {
            if let Ok(c) = &j.fetched
                && let Some(first) = self.state.copies.original_of(&c.fingerprint, &j.hotkey)
            {
                j.fetched = Err(Rejection::Copy(format!(
                    "the same content was uploaded earlier by {}",
                    first.hotkey
                )));
            }
        }
        Ok(judged)
    }

    fn reveal_hash(&self, reveal_block: u64) -> Result<[u8; 32]> {
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
    #[allow(clippy::too_many_arguments)]
    fn judge(
        &mut self,
        judged: Judged,
        deadline: u64,
        reveal_block: u64,
        reveal_hash: &[u8; 32],
        global_ids: &[u64],
        global_batch: &Batch,
        master_global: f64,
    ) -> Result<(RoundRow, bool)> {
        let params = self.config.params.clone();
        let Judged {
            uid,
            hotkey,
            fetched,
        } = judged;
        let local_ids = local_pages(
            &params.pages,
            uid,
            deadline,
            reveal_hash,
            params.local_pages,
        )?;
        let mut record = EvalRecord {
            validator: self.hotkey(),
            deadline,
            reveal_block,
            reveal_hash: crate::digest::Digest(*reveal_hash).to_hex(),
            master_revision: self.master.revision(),
            uid,
            hotkey,
            delta_key: None,
            delta_digest: None,
            local_pages: local_ids.clone(),
            global_pages: global_ids.to_vec(),
            evaluation: None,
            verdict: None,
            local_gain: None,
            global_gain: None,
            rejection: None,
            score: 0.0,
            average: 0.0,
            mergeable: false,
            restored_exact: None,
            rule: params.rule,
            timings_ms: Timings::default(),
        };
        let outcome = match fetched {
            Err(rejection) => Err(rejection),
            Ok(candidate) => {
                record.delta_key = Some(candidate.key.clone());
                record.delta_digest = Some(candidate.digest);
                record.timings_ms.download = candidate.download.as_millis() as u64;
                let local_batch = self.data.batch(&local_ids, params.seq_len)?;
                self.evaluate(
                    &candidate,
                    &local_batch,
                    global_batch,
                    master_global,
                    &mut record,
                )
            }
        };
        match outcome {
            Ok(evaluation) => {
                let verdict = params.rule.judge(&evaluation);
                record.evaluation = Some(evaluation);
                record.verdict = Some(verdict.reason);
                record.local_gain = verdict.local_gain.is_finite().then_some(verdict.local_gain);
                record.global_gain = verdict
                    .global_gain
                    .is_finite()
                    .then_some(verdict.global_gain);
                record.score = verdict.score;
                record.mergeable = verdict.mergeable;
            }
            Err(rejection) => record.rejection = Some(rejection),
        }
        self.state
            .averages
            .record(uid, hotkey, deadline, record.score)?;
        record.average = self.state.averages.get(uid).map_or(0.0, |r| r.average);
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
            score: record.score,
            average: record.average,
            merged: false,
        };
        Ok((row, record.mergeable))
    }

    /// Applies the candidate, measures, undoes, and checks the master is
    /// back bit for bit (a mismatch is an error: the validator stops rather
    /// than judge on a damaged master).
    fn evaluate(
        &mut self,
        candidate: &Candidate,
        local_batch: &Batch,
        global_batch: &Batch,
        master_global: f64,
        record: &mut EvalRecord,
    ) -> std::result::Result<Evaluation, Rejection> {
        let master_local = self.model.loss(local_batch).map_err(internal)?;
        let started = Instant::now();
        let reader = candidate.delta.reader();
        let backup = Backup::Checkpoint(&self.master.checkpoint);
        let applied =
            apply_with_backup(&mut self.model, &reader, 1.0, backup).map_err(|e| match e {
                Error::NonFinite { .. } => Rejection::NonFinite(e.to_string()),
                _ => Rejection::Mismatch(e.to_string()),
            })?;
        record.timings_ms.apply = started.elapsed().as_millis() as u64;
        let started = Instant::now();
        let with_local = loss_or_nan(&self.model, local_batch);
        let with_global = loss_or_nan(&self.model, global_batch);
        record.timings_ms.eval = started.elapsed().as_millis() as u64;
        let started = Instant::now();
        let undone = applied.undo(&mut self.model);
        let exact = undone.is_ok() && self.model.revision().ok() == Some(self.master.revision());
        record.timings_ms.restore = started.elapsed().as_millis() as u64;
        record.restored_exact = Some(exact);
        if !exact {
            // Never judge on a damaged master: reload it from its file.
            match load_for_eval(&self.master, &self.config) {
                Ok(model) => self.model = model,
                Err(e) => return Err(internal(e)),
            }
        }
        Ok(Evaluation {
            local: LossPair {
                master: master_local,
                with_delta: with_local,
            },
            global: LossPair {
                master: master_global,
                with_delta: with_global,
            },
        })
    }

    /// Merges the mergeable deltas into a candidate master with the
    /// configured outer optimizer ([`crate::model::outer`]); publishes it —
    /// the outer state first, then the checkpoint and the pointer — when it
    /// beats the master on the round's global pages, otherwise reloads the
    /// master. Keeps in `mergeable` the uids that went in. A corrupt or
    /// mismatched outer state of the master is an error: nothing is merged
    /// or published from it.
    fn merge(
        &mut self,
        mergeable: &mut Vec<u16>,
        deadline: u64,
        global_batch: &Batch,
        master_global: f64,
    ) -> Result<Option<f64>> {
        use crate::model::outer::{MergeWeighting, OuterState, merge_into};
        use crate::node::master::{fetch_outer_state, publish_outer_state};
        if mergeable.is_empty() {
            return Ok(None);
        }
        let merge = self.config.merge;
        merge.validate()?;
        // This round's scores, from the log the validator publishes.
        let scored: Vec<(u16, f64)> = if merge.weighting == MergeWeighting::Uniform {
            mergeable.iter().map(|&uid| (uid, 1.0)).collect()
        } else {
            let records = super::log::read_log_file(self.log.round_path(deadline))?;
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
                .zip(&weights)
                .map(|(f, (_, w))| (f.reader(), *w))
                .collect();
            merge_into(&mut self.model, &deltas, merge.rule, &mut outer)
        });
        let merged = match merged {
            Ok(()) => loss_or_nan(&self.model, global_batch),
            Err(_) => f64::NAN,
        };
        if merged < master_global {
            let block = self.chain.block()?.number.max(deadline);
            outer.set_master(self.model.revision()?);
            publish_outer_state(&outer, self.bucket.as_ref(), &masters)?;
            self.master = publish_model(&self.model, self.bucket.as_ref(), &masters, block)?;
            self.state.copies.clear();
            self.state.copies_master = self.master.revision();
        } else {
            self.model = load_for_eval(&self.master, &self.config)?;
            mergeable.clear();
        }
        self.state.save(&self.config.work_dir.join("state.json"))?;
        Ok(Some(merged))
    }

    fn maybe_set_weights(&mut self, deadline: u64) -> (Option<Vec<(u16, f64)>>, Option<String>) {
        let interval = self.config.params.weights_interval_blocks;
        let due = self
            .state
            .last_weights_block
            .is_none_or(|last| deadline >= last.saturating_add(interval));
        let weights = self.state.averages.weights();
        if !due || weights.is_empty() {
            return (None, None);
        }
        let uids: Vec<u16> = weights.iter().map(|w| w.0).collect();
        let values: Vec<f32> = weights.iter().map(|w| w.1 as f32).collect();
        let p = &self.config.params;
        match self
            .chain
            .set_float_weights(p.netuid, &self.keypair, &uids, &values, p.version_key)
        {
            Ok(()) => {
                self.state.last_weights_block = Some(deadline);
                let _ = self.state.save(&self.config.work_dir.join("state.json"));
                (Some(weights), None)
            }
            Err(e) => (None, Some(e.to_string())),
        }
    }

    /// Uploads this round's log lines and the state to the validator's
    /// bucket, so anyone can recompute its scores.
    fn publish_round_log(&self, deadline: u64) -> Result<()> {
        self.bucket.put(
            &eval_log_key(&self.hotkey(), deadline),
            &self.log.round_bytes(deadline)?,
        )?;
        self.bucket
            .put(&validator_state_key(&self.hotkey()), &self.state.to_json()?)
    }
}

/// Logits a validator's model holds at once (see
/// [`Model::set_logits_budget`]): evaluation is chunked so its peak memory
/// stays near the model's own size instead of growing with the page count.
pub const VALIDATOR_LOGITS_BUDGET: usize = 64 << 20;

/// Loads the master for evaluation, with the validator's logits budget.
fn load_for_eval(master: &LocalMaster, config: &ValidatorConfig) -> Result<Model> {
    let mut model = master.load(&config.model, config.device)?;
    model.set_logits_budget(VALIDATOR_LOGITS_BUDGET);
    Ok(model)
}

fn loss_or_nan(model: &Model, batch: &Batch) -> f64 {
    model.loss(batch).unwrap_or(f64::NAN)
}

fn internal(e: Error) -> Rejection {
    Rejection::Mismatch(format!("validator-side failure: {e}"))
}
