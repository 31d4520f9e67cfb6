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
mod judge;
pub(crate) mod measure;
mod merge;
mod publish;
mod report;
mod snapshot;
mod state;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use fetch::{
    BucketCache, Candidate, DOWNLOAD_BASE_BUDGET, Expectation, FetchBudget, Fetched,
    MIN_DOWNLOAD_RATE, Seen, download_budget, fetch_all, fetch_and_check, fetch_candidate,
};
pub use follow::{LeadView, MAX_CATCH_UP, MAX_HELD};
pub use report::{RoundReport, RoundRow};
pub use snapshot::{LIST_PARALLELISM, Pin, SNAPSHOT_BUDGET_BLOCKS, Snapshot, Snapshotter};
pub use state::{RoundSelection, VALIDATOR_STATE_VERSION, ValidatorState};

use super::log::{EvalLog, EvalRecord};
use super::master::{LocalMaster, fetch_master, save_master};
use super::miner::check_dataset;
use super::params::SubnetParams;
use super::retention::{AUDIT_WINDOW_ROUNDS, prune_audit_window};
use super::run_params::RunParams;
use super::similarity::SketchStore;
use crate::chain::{Chain, Metagraph};
use crate::data::{PageSource, PagedBatch};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::identity::{Keypair, PublicKey};
use crate::model::{Config, Device, Model};
use crate::pages::global_pages;
use crate::storage::{Bucket, BucketCommitment, EndpointPolicy};
use measure::{mean, page_losses};

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
    /// The validator whose master the round is judged on (this one when it
    /// leads).
    lead: PublicKey,
    reveal_block: u64,
    reveal_hash: [u8; 32],
    global_ids: Vec<u64>,
    global: PagedBatch,
    master_global: Vec<f64>,
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
            lead: lead.lead,
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
        let (merged_global_loss, merged_with) = match self.merged_at(deadline)? {
            Some(merged) => {
                mergeable = merged;
                (None, None)
            }
            // Followers never publish masters of their own.
            None if !self.leading => {
                mergeable.clear();
                (None, None)
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
            merged_with,
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
