//! The validator: judge every miner's delta against the master, keep what
//! helps, set weights.
//!
//! A round ([`Validator::run_round`]) at deadline block `b`:
//! 1. for each uid, find its newest delta for the round in its bucket,
//!    download it and check everything that needs no model: size, storage
//!    time, format and digest, base revision and block, author, signature,
//!    finite values (the `fetch` module); sketch it; then reject copies:
//!    later uploads of the same content this round, and deltas mostly
//!    explained by earlier rounds' sketches (the `similarity` module);
//! 2. draw the pages with the hash of block `b + D`; measure the master on
//!    each global page once;
//! 3. for each admitted delta: apply it in place, measure the loss of every
//!    local and global page, undo it, and check the master is back bit for
//!    bit; score the paired per-page differences (`score::ScoreRule`) and
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
mod follow;
pub(crate) mod measure;
mod report;
mod snapshot;
mod state;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use fetch::{
    BucketCache, Candidate, DOWNLOAD_BASE_BUDGET, Expectation, FetchBudget, Fetched,
    MIN_DOWNLOAD_RATE, Seen, download_budget, fetch_all, fetch_candidate,
};
pub use follow::{LeadView, MAX_CATCH_UP, MAX_HELD};
pub use report::{RoundReport, RoundRow};
pub use snapshot::{LIST_PARALLELISM, Pin, SNAPSHOT_BUDGET_BLOCKS, Snapshot};
pub use state::{RoundSelection, VALIDATOR_STATE_VERSION, ValidatorState};

use super::lead::{LEAD_STATUS_VERSION, LeadStatus, lead_status_key};
use super::lineage::{LINEAGE_VERSION, Lineage, MergedDelta, lineage_key};
use super::log::{EvalLog, EvalRecord, Timings};
use super::master::{LocalMaster, fetch_master, publish_model, publish_saved, save_master};
use super::miner::check_dataset;
use super::params::SubnetParams;
use super::rejection::Rejection;
use super::retention::{AUDIT_WINDOW_ROUNDS, prune_audit_window};
use super::run_params::RunParams;
use super::sealing::accepted_rounds;
use super::similarity::{SketchEntry, SketchSource, SketchStore};
use crate::chain::{Chain, Metagraph};
use crate::codec::Limits;
use crate::data::{PageSource, PagedBatch};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::identity::{Keypair, PublicKey};
use crate::model::{Config, Device, Model};
use crate::pages::{global_pages, local_pages};
use crate::score::Evaluation;
use crate::storage::keys::{eval_log_key, validator_state_key};
use crate::storage::{Bucket, BucketCommitment, EndpointPolicy};
use measure::{mean, measure_delta, page_losses, page_losses_or_nan};

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

impl ValidatorConfig {
    /// A validator of `params` on `model`, evaluating on `device`, keeping
    /// its state in `work_dir`; it judges every uid each round, starts a
    /// genesis master from seed 0 when there is none, measures no held-out
    /// loss and merges with the default rule (set the fields to change
    /// them).
    pub fn new(params: SubnetParams, model: Config, device: Device, work_dir: PathBuf) -> Self {
        ValidatorConfig {
            params,
            model,
            device,
            work_dir,
            uids_per_round: 0,
            genesis_seed: 0,
            heldout_pages: 0,
            merge: Default::default(),
        }
    }
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
    sketches: SketchStore,
    buckets: Arc<Mutex<BucketCache>>,
    fetch_budget: FetchBudget,
    /// Which miners' endpoints it contacts (and other validators').
    policy: EndpointPolicy,
    /// Whether it leads this round (publishes masters): see `follow`.
    leading: bool,
    /// The digest of the run parameters it published.
    run_params: Digest,
    /// The genesis master was made here and is not in the bucket yet.
    genesis_unpublished: bool,
    /// [`Validator::publish`] was called.
    published: bool,
}

/// What every evaluation of one round shares: the deadline, the reveal
/// block and hash, the global pages and the master's losses on them.
struct RoundPages {
    deadline: u64,
    reveal_block: u64,
    reveal_hash: [u8; 32],
    global_ids: Vec<u64>,
    global: PagedBatch,
    master_global: Vec<f64>,
}

/// A uid to judge this round, and what phase one found.
struct Judged {
    uid: u16,
    hotkey: PublicKey,
    /// The object phase one got as far as choosing, if any.
    seen: Option<Seen>,
    fetched: std::result::Result<Candidate, Rejection>,
    /// The share of the delta earlier rounds' deltas explain, when computed.
    explained: Option<f64>,
}

impl Validator {
    /// Opens (or starts) a validator: loads its state from `work_dir` and
    /// the master from its bucket, or makes a genesis master (seed
    /// `genesis_seed`) when the bucket has none. Writes nothing to the chain
    /// or the bucket: call [`publish`](Self::publish) before the first
    /// round.
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
        let mut state = match ValidatorState::load(&work.join("state.json"))? {
            Some(state) => state,
            None => ValidatorState::new(config.params.ema_alpha)?,
        };
        let log = EvalLog::open(work.join("evals"))?;
        let sketches = SketchStore::open(work.join("sketches"))?;
        let masters = work.join("masters");
        let (master, genesis_unpublished) =
            match fetch_master(bucket.as_ref(), &masters, &config.model)? {
                Some(master) => (master, false),
                None => {
                    let genesis =
                        Model::new(config.model.clone(), config.genesis_seed, config.device)?;
                    let block = chain.block()?.number;
                    (save_master(&genesis, &masters, block)?, true)
                }
            };
        let model = load_for_eval(&master, &config)?;
        let run_params = RunParams::new(config.params.clone(), config.model.clone()).digest()?;
        if !state.held.contains(&master.revision()) {
            state.held.push(master.revision());
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
            sketches,
            buckets: Arc::new(Mutex::new(BucketCache::default())),
            fetch_budget: FetchBudget::default(),
            policy: EndpointPolicy::default(),
            leading: true,
            run_params,
            genesis_unpublished,
            published: false,
        })
    }

    /// Publishes what miners and other validators need to find and check
    /// this validator: the genesis master when the bucket had none, its run
    /// parameters (`validators/<hotkey>/params.json`, whose digest every log
    /// record names) and its bucket commitment on the chain (when it is not
    /// that already). Call it once before the first round; calling it again
    /// rewrites the same objects.
    pub fn publish(&mut self) -> Result<()> {
        let bucket = self.bucket.as_ref();
        if self.genesis_unpublished {
            self.master = publish_saved(&self.master, bucket, &self.config.model)?;
            self.genesis_unpublished = false;
        }
        let published = RunParams::new(self.config.params.clone(), self.config.model.clone())
            .publish(bucket, &self.hotkey())?;
        if published != self.run_params {
            return Err(Error::InvalidArgument(
                "the published run parameters are not the ones the records name".into(),
            ));
        }
        let netuid = self.config.params.netuid;
        let encoded = self.commitment.encode()?;
        let me = self.hotkey();
        if self.chain.commitment(netuid, &me)?.as_deref() != Some(encoded.as_bytes()) {
            self.chain
                .set_commitment(netuid, &self.keypair, encoded.as_bytes())?;
        }
        self.published = true;
        Ok(())
    }

    /// Bounds phase one's time differently from [`FetchBudget::default`]
    /// (tests; a validator with a slow link).
    pub fn with_fetch_budget(mut self, budget: FetchBudget) -> Validator {
        self.fetch_budget = budget;
        self
    }

    /// Contacts only the miners' endpoints `policy` allows (default
    /// [`EndpointPolicy::Public`]; the local network and tests use
    /// [`EndpointPolicy::Any`] for `file://` and `http://127.0.0.1`).
    pub fn with_endpoint_policy(mut self, policy: EndpointPolicy) -> Validator {
        if let Ok(mut cache) = self.buckets.lock() {
            *cache = BucketCache::new(policy);
        }
        self.policy = policy;
        self
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
    /// Only what the deadline snapshot pinned is judged; without a snapshot
    /// taken before the reveal block, every uid is a `validator_error`.
    pub fn run_round(&mut self, deadline: u64) -> Result<RoundReport> {
        if !self.published {
            return Err(Error::InvalidArgument(
                "the validator has not published its master, run parameters and commitment: \
                 call Validator::publish before the first round"
                    .into(),
            ));
        }
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
        // The lead's master for this round, verified (or this validator's
        // own when it leads).
        let lead = self.follow_lead(deadline)?;
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
        // A resumed round (the validator was stopped or killed in it): what
        // its log holds is final. The state may miss the last record (killed
        // between the two writes): replay it; those uids are not judged again.
        let logged = self.round_records(deadline)?;
        self.replay(&logged, deadline)?;
        let done: Vec<u16> = logged.iter().map(|r| r.uid).collect();
        if self.state.snapshot.as_ref().map(|s| s.deadline) != Some(deadline) {
            self.snapshot(deadline)?;
        }
        let judged = self.phase_one(&metagraph, deadline, &done)?;

        // Phase two: the pages, then every admitted delta on the model.
        let reveal_block = params.reveal_block(deadline);
        let reveal_hash = self.reveal_hash(reveal_block)?;
        let global_ids = global_pages(&params.pages, deadline, &reveal_hash, params.global_pages)?;
        let global = self.data.paged_batch(&global_ids, params.seq_len)?;
        let master_global = page_losses(&self.model, &global)?;
        let round = RoundPages {
            deadline,
            reveal_block,
            reveal_hash,
            global_ids,
            global,
            master_global,
        };
        let master_global = mean(&round.master_global);
        let master_before = self.master.revision();
        let mut rows = Vec::new();
        for judged in judged {
            rows.push(self.judge(judged, &round)?);
        }

        // Phase three: merge (every mergeable delta of the round's log, in
        // uid order, whichever run judged it; once), weights, publish the
        // log and state.
        let records = self.round_records(deadline)?;
        let mut mergeable: Vec<u16> = records
            .iter()
            .filter(|r| r.mergeable)
            .map(|r| r.uid)
            .collect();
        mergeable.sort_unstable();
        mergeable.dedup();
        let merged_global_loss = match self.merged_at(deadline)? {
            Some(merged) => {
                mergeable = merged;
                None
            }
            // Followers never publish masters of their own.
            None if !self.leading => {
                mergeable.clear();
                None
            }
            None => self.merge(&mut mergeable, &records, &round, master_global)?,
        };
        for row in rows.iter_mut() {
            row.merged = mergeable.contains(&row.uid);
        }
        let (weights, weights_error) = self.maybe_set_weights(deadline);
        self.publish_round_log(deadline, lead.lead)?;
        // Pruning is housekeeping: a failure is reported, not the round's.
        let window = AUDIT_WINDOW_ROUNDS.saturating_mul(self.config.params.round_blocks);
        let bucket = self.bucket.as_ref();
        let (pruned_masters, pruning_error) =
            match prune_audit_window(bucket, self.master.revision(), deadline, window) {
                Ok(n) => (n, None),
                Err(e) => (0, Some(e.to_string())),
            };
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
            lead: Some(lead),
            pruned_masters,
            pruning_error,
        })
    }

    /// Lists every uid's bucket, concurrently, and pins its newest delta for
    /// the round at `deadline` (key, block, digest, size): the *deadline
    /// snapshot*. Call it as soon as block `deadline` exists (a validator
    /// busy judging runs it from its own thread with [`Snapshotter`]);
    /// [`run_round`](Self::run_round) takes it itself when it was not taken.
    /// Only pinned objects are judged, and only when the listing completed
    /// before the reveal block existed.
    pub fn snapshot(&mut self, deadline: u64) -> Result<&Snapshot> {
        let snapshot = self.snapshotter().take(deadline)?;
        self.state.snapshot = Some(snapshot);
        self.state.save(&self.config.work_dir.join("state.json"))?;
        self.state
            .snapshot
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("snapshot".into()))
    }

    /// A handle that takes deadline snapshots for this validator from any
    /// thread (it shares the validator's chain and opened buckets).
    pub fn snapshotter(&self) -> Snapshotter {
        Snapshotter {
            chain: Arc::clone(&self.chain),
            params: self.config.params.clone(),
            buckets: Arc::clone(&self.buckets),
            me: self.hotkey(),
        }
    }

    /// Uses `snapshot` (taken by a [`Snapshotter`]) for its deadline.
    pub fn use_snapshot(&mut self, snapshot: Snapshot) -> Result<()> {
        self.state.snapshot = Some(snapshot);
        self.state.save(&self.config.work_dir.join("state.json"))
    }

    /// The blocks an upload's key may name to count for `deadline`: this
    /// round's, from the previous deadline to the block before this one
    /// (`SubnetParams::deadline_after` of each is `deadline`), and not
    /// before the master was published. An upload counts for one round only.
    fn round_blocks(&self, deadline: u64) -> std::ops::RangeInclusive<u64> {
        round_blocks(&self.config.params, self.master.pointer.block, deadline)
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
        // Least recently judged first, also in fetching: when phase one's
        // budget runs out (servers that stall), the uids it did not reach
        // (`validator_error`, averages untouched) come first next round, so
        // stalling uids cannot keep the same others unjudged round after round.
        uids.into_iter().map(|(_, u, h)| (u, h)).collect()
    }

    /// This round's log records so far (none if it has no log yet).
    fn round_records(&self, deadline: u64) -> Result<Vec<EvalRecord>> {
        let path = self.log.round_path(deadline);
        if !path.exists() {
            return Ok(Vec::new());
        }
        super::log::read_log_file(path)
    }

    /// Records in the averages what `logged` (this round's log) says and
    /// the state does not show yet.
    fn replay(&mut self, logged: &[EvalRecord], deadline: u64) -> Result<()> {
        let mut changed = false;
        for r in logged {
            let validators_fault = r
                .rejection
                .as_ref()
                .is_some_and(|x| x.is_validators_fault());
            let shown = self
                .state
                .averages
                .get(r.uid)
                .is_some_and(|a| a.hotkey == r.hotkey && a.last_block >= deadline);
            if !validators_fault && !shown {
                self.state
                    .averages
                    .record(r.uid, r.hotkey, deadline, r.score)?;
                changed = true;
            }
        }
        if changed {
            self.state.save(&self.config.work_dir.join("state.json"))?;
        }
        Ok(())
    }

    /// The uids merged at `deadline` if the current master is that merge
    /// (a resumed round whose merge was published before the stop).
    fn merged_at(&self, deadline: u64) -> Result<Option<Vec<u16>>> {
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

    fn phase_one(
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
    fn judge(&mut self, judged: Judged, round: &RoundPages) -> Result<RoundRow> {
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
    fn evaluate(
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

    /// Merges the mergeable deltas into a candidate master with the
    /// configured outer optimizer ([`crate::model::outer`]); publishes it —
    /// the outer state first, then the checkpoint and the pointer — when it
    /// beats the master on the round's global pages, otherwise reloads the
    /// master. Keeps in `mergeable` the uids that went in. A corrupt or mismatched outer
    /// state of the master is an error: nothing is merged or published from
    /// it.
    fn merge(
        &mut self,
        mergeable: &mut Vec<u16>,
        records: &[EvalRecord],
        round: &RoundPages,
        master_global: f64,
    ) -> Result<Option<f64>> {
        use crate::model::outer::{MergeWeighting, OuterState, merge_into};
        use crate::node::master::{fetch_outer_state, publish_outer_state};
        if mergeable.is_empty() {
            return Ok(None);
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
            Ok(()) => page_losses_or_nan(&self.model, &round.global),
            Err(_) => vec![f64::NAN],
        };
        let merged = mean(&merged);
        if merged < master_global {
            let block = self.chain.block()?.number.max(round.deadline);
            let revision = self.model.revision()?;
            outer.set_master(revision);
            publish_outer_state(&outer, self.bucket.as_ref(), &masters)?;
            let lineage = self.lineage(
                records,
                round.deadline,
                block,
                revision,
                merge.rule,
                &weights,
            )?;
            self.bucket
                .put(&lineage_key(&revision), &lineage.to_json()?)?;
            self.master = publish_model(&self.model, self.bucket.as_ref(), &masters, block)?;
            self.hold(revision);
            self.state.copies.clear();
            self.state.copies_master = self.master.revision();
        } else {
            self.model = load_for_eval(&self.master, &self.config)?;
            mergeable.clear();
        }
        self.state.save(&self.config.work_dir.join("state.json"))?;
        Ok(Some(merged))
    }

    /// The lineage record of the master `revision` merged at `deadline`
    /// from the deltas `weights` name (their keys and digests from the
    /// round's log `records`, their commitments from the chain).
    fn lineage(
        &self,
        records: &[EvalRecord],
        deadline: u64,
        block: u64,
        revision: crate::digest::Digest,
        rule: crate::model::outer::MergeRule,
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

    /// Publishes the round's log, the state and the lead status (`lead`:
    /// whom it took as lead this round), so anyone can recompute its scores.
    fn publish_round_log(&self, deadline: u64, lead: PublicKey) -> Result<()> {
        self.bucket.put(
            &eval_log_key(&self.hotkey(), deadline),
            &self.log.round_bytes(deadline)?,
        )?;
        self.bucket
            .put(&validator_state_key(&self.hotkey()), &self.state.to_json()?)?;
        let status = LeadStatus {
            version: LEAD_STATUS_VERSION,
            deadline,
            lead: Some(lead),
            master: self.master.revision(),
            refused: self.state.refused.clone(),
        };
        self.bucket
            .put(&lead_status_key(&self.hotkey()), &status.to_json()?)
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

/// A failure of the validator's own model or data: not the miner's fault.
fn internal(e: Error) -> Rejection {
    Rejection::ValidatorError(e.to_string())
}

/// The blocks an upload's key may name to count for `deadline` when the
/// master was published at `master_block` (see `Validator::round_blocks`).
pub(crate) fn round_blocks(
    params: &SubnetParams,
    master_block: u64,
    deadline: u64,
) -> std::ops::RangeInclusive<u64> {
    let round_start = deadline.saturating_sub(params.round_blocks);
    round_start.max(master_block)..=deadline.saturating_sub(1)
}

/// Takes deadline snapshots for a validator from any thread: the chain and
/// the opened buckets are shared with it (`Validator::snapshotter`).
#[derive(Clone)]
pub struct Snapshotter {
    chain: Arc<dyn Chain>,
    params: SubnetParams,
    buckets: Arc<Mutex<BucketCache>>,
    me: PublicKey,
}

impl Snapshotter {
    /// A snapshotter of its own (a validator's shares its chain and opened
    /// buckets: [`Validator::snapshotter`]): `me` is the validator's hotkey,
    /// whose own uid is not listed.
    pub fn new(
        chain: Arc<dyn Chain>,
        params: SubnetParams,
        policy: EndpointPolicy,
        me: PublicKey,
    ) -> Snapshotter {
        Snapshotter {
            chain,
            params,
            buckets: Arc::new(Mutex::new(BucketCache::new(policy))),
            me,
        }
    }

    /// Lists every registered uid's bucket but the validator's own and pins
    /// its newest delta of the round at `deadline` (`snapshot` module).
    pub fn take(&self, deadline: u64) -> Result<Snapshot> {
        let metagraph = self.chain.metagraph(self.params.netuid)?;
        let uids: Vec<(u16, PublicKey)> = metagraph
            .neurons
            .iter()
            .filter(|n| n.hotkey != self.me)
            .map(|n| (n.uid, n.hotkey))
            .collect();
        // Every block of the round: whether a delta is older than the
        // master is decided when it is judged (`stale`).
        let blocks = round_blocks(&self.params, 0, deadline);
        snapshot::take(
            &self.chain,
            &self.params,
            &self.buckets,
            uids,
            deadline,
            blocks,
        )
    }
    /// Spawns a thread that waits for every deadline after `after_block` and
    /// takes its snapshot the moment the deadline block exists, even while
    /// the validator is busy judging an earlier round. Snapshots (or the
    /// error that ended the thread: a chain that stalls or fails) arrive on
    /// the returned channel in deadline order; hand each to
    /// [`Validator::use_snapshot`] before [`Validator::run_round`]. The
    /// thread ends when the receiver is dropped.
    pub fn spawn(self, after_block: u64) -> std::sync::mpsc::Receiver<Result<Snapshot>> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut block = after_block;
            loop {
                let deadline = self.params.deadline_after(block);
                let blocks =
                    u32::try_from(self.params.round_blocks.saturating_add(2)).unwrap_or(u32::MAX);
                let wait = self
                    .chain
                    .block_time()
                    .saturating_mul(blocks.saturating_mul(4))
                    .max(Duration::from_secs(60));
                let taken = self
                    .chain
                    .wait_for_block(deadline, wait)
                    .and_then(|_| self.take(deadline));
                let failed = taken.is_err();
                if tx.send(taken).is_err() || failed {
                    return;
                }
                block = deadline;
            }
        });
        rx
    }
}
