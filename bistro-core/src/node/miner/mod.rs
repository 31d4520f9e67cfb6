//! The miner: train the master on the pages of its own window, upload the
//! change.

use std::path::PathBuf;
use std::sync::Arc;

use super::encoding::DeltaEncoding;
use super::lead::find_master_source;
use super::master::{LocalMaster, fetch_pointed};
use super::params::SubnetParams;
use super::run_params::RunParams;
use super::sealing::seal_target;
use super::upload::{Uploaded, upload_delta};
use crate::chain::Chain;
use crate::codec::{DeltaHeader, Limits};
use crate::data::PageSource;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::identity::{Keypair, PublicKey};
use crate::model::delta::{Residuals, build};
use crate::model::{Config, Device, Model, TrainConfig, Trainer};
use crate::pages::{Window, window};
use crate::storage::keys::read_master_pointer;
use crate::storage::{Bucket, BucketCommitment, EndpointPolicy};

mod round;

pub use round::{MinerEvent, RoundOutcome};

/// How a miner trains and encodes.
#[derive(Clone, Debug)]
pub struct MinerConfig {
    /// The subnet's protocol parameters.
    pub params: SubnetParams,
    /// The model's shape (must match the master's).
    pub model: Config,
    /// Optimizer settings.
    pub train: TrainConfig,
    /// Where to train.
    pub device: Device,
    /// Training steps between uploads.
    pub steps_per_upload: u64,
    /// Pages per training step (drawn from the window).
    pub pages_per_step: usize,
    /// How deltas are encoded.
    pub encoding: DeltaEncoding,
    /// Local folder for the master cache, upload scratch files, the
    /// error-feedback residuals (`residuals.delta`) and the optimizer state
    /// (`optimizer.state`), both kept across restarts.
    pub work_dir: PathBuf,
}

impl MinerConfig {
    /// Replaces `params` and `model` with the run parameters the network's
    /// master source publishes (`validators/<hotkey>/params.json`,
    /// [`crate::node::run_params`]), so the miner runs with the validators'
    /// parameters instead of compiled-in ones. The source is found with the
    /// current `params` (their `netuid` and the lead rules). Returns the
    /// publisher, or `None` (and changes nothing) when no validator has
    /// published a master with parameters yet. Published parameters that do
    /// not parse are an error, never a guess.
    pub fn adopt_published(&mut self, chain: &dyn Chain) -> Result<Option<PublicKey>> {
        let metagraph = chain.metagraph(self.params.netuid)?;
        let now = chain.block()?.number;
        let Some(source) =
            find_master_source(chain, &metagraph, &self.params, now, EndpointPolicy::Any)?
        else {
            return Ok(None);
        };
        let Some(published) = RunParams::read(source.bucket.as_ref(), &source.hotkey)? else {
            return Ok(None);
        };
        if published.subnet.netuid != self.params.netuid {
            return Err(Error::corrupt(
                "run params",
                "subnet.netuid",
                format!(
                    "published for subnet {}, read on subnet {}",
                    published.subnet.netuid, self.params.netuid
                ),
            ));
        }
        self.params = published.subnet;
        self.model = published.model;
        Ok(Some(source.hotkey))
    }
}

/// What [`Miner::sync_master`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MasterStatus {
    /// No master is published yet.
    Missing,
    /// Still training on this master.
    Unchanged(Digest),
    /// Switched to this new master.
    Updated(Digest),
}

/// What [`Miner::train`] did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainReport {
    /// Steps taken.
    pub steps: u64,
    /// Mean training loss over the steps.
    pub mean_loss: f64,
    /// The epoch whose window was trained on.
    pub epoch: u64,
}

struct Training {
    master: LocalMaster,
    trainer: Trainer,
    /// Error feedback for top-k deltas. Every delta against one master is
    /// cumulative (`trained − master`), so what the encoding left out of the
    /// *last* delta against the previous master is the part to carry: it is
    /// fixed when the master changes (`carried`) and added to each delta
    /// against the new one; `last_left_out` is what the latest upload left out.
    carried: Residuals,
    last_left_out: Residuals,
}

/// A miner: its hotkey, bucket, data, and the model it is training.
pub struct Miner {
    chain: Arc<dyn Chain>,
    bucket: Box<dyn Bucket>,
    commitment: BucketCommitment,
    keypair: Keypair,
    data: Arc<dyn PageSource>,
    config: MinerConfig,
    master_bucket: Option<Box<dyn Bucket>>,
    /// Whether `master_bucket` was given ([`Miner::with_master_bucket`])
    /// rather than found ([`find_master_source`]) each time.
    fixed_master_bucket: bool,
    training: Option<Training>,
    /// Residuals read from the work folder at start, carried into the first
    /// master trained on.
    restored: Residuals,
    /// Why the optimizer state in the work folder was not used, when it was
    /// there but unusable (training then started with a fresh optimizer).
    fresh_optimizer: Option<Error>,
    /// What [`Miner::run_round`] remembers between rounds.
    rounds: round::RoundState,
}

/// The file in the work folder that keeps the residuals of the last upload.
const RESIDUALS_FILE: &str = "residuals.delta";
/// The file in the work folder that keeps the optimizer state (AdamW moments
/// and step count) after each training call.
pub const OPTIMIZER_FILE: &str = "optimizer.state";

impl Miner {
    /// A miner that uploads to `bucket` (published as `commitment`) and signs
    /// with `keypair`.
    pub fn new(
        chain: Arc<dyn Chain>,
        bucket: Box<dyn Bucket>,
        commitment: BucketCommitment,
        keypair: Keypair,
        data: Arc<dyn PageSource>,
        config: MinerConfig,
    ) -> Result<Miner> {
        config.params.validate()?;
        config.train.validate()?;
        check_dataset(&config.params, data.as_ref())?;
        let restored = load_residuals(&config)?;
        Ok(Miner {
            chain,
            bucket,
            commitment,
            keypair,
            data,
            config,
            master_bucket: None,
            fixed_master_bucket: false,
            training: None,
            restored,
            fresh_optimizer: None,
            rounds: round::RoundState::default(),
        })
    }

    /// Reads masters from `bucket` instead of discovering the master bucket
    /// from validators' commitments.
    pub fn with_master_bucket(mut self, bucket: Box<dyn Bucket>) -> Miner {
        self.master_bucket = Some(bucket);
        self.fixed_master_bucket = true;
        self
    }

    /// The miner's hotkey.
    pub fn hotkey(&self) -> PublicKey {
        self.keypair.public()
    }

    /// The miner's configuration.
    pub fn config(&self) -> &MinerConfig {
        &self.config
    }

    /// The miner's uid on the subnet.
    pub fn uid(&self) -> Result<u16> {
        let netuid = self.config.params.netuid;
        self.chain
            .metagraph(netuid)?
            .uid_of(&self.hotkey())
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "hotkey {} is not registered on subnet {netuid}",
                    self.hotkey()
                ))
            })
    }

    /// Publishes the bucket commitment on the chain unless it is there
    /// already. Returns whether it had to be written.
    pub fn publish_commitment(&self) -> Result<bool> {
        let netuid = self.config.params.netuid;
        let encoded = self.commitment.encode()?;
        let current = self.chain.commitment(netuid, &self.hotkey())?;
        if current.as_deref() == Some(encoded.as_bytes()) {
            return Ok(false);
        }
        self.chain
            .set_commitment(netuid, &self.keypair, encoded.as_bytes())?;
        Ok(true)
    }

    /// Makes sure the miner trains on the latest master: fetches and
    /// verifies it when it changed, and trains on from it with the same
    /// optimizer (AdamW moments and schedule step carry over, as DiLoCo's
    /// workers keep their inner optimizer). The first master after a start
    /// restores the optimizer saved in the work folder; a state file that
    /// cannot be used (corrupt, another model) is not an error: the miner
    /// starts a fresh optimizer and says why in
    /// [`fresh_optimizer_reason`](Self::fresh_optimizer_reason).
    pub fn sync_master(&mut self) -> Result<MasterStatus> {
        // The lead may change (failover): look it up every time, unless a
        // bucket was given.
        if !self.fixed_master_bucket {
            let metagraph = self.chain.metagraph(self.config.params.netuid)?;
            let now = self.chain.block()?.number;
            // Validators' buckets are read with any endpoint: they hold
            // stake on the subnet, and the master is checked against its
            // revision anyway.
            let params = &self.config.params;
            let policy = EndpointPolicy::Any;
            let Some(source) =
                find_master_source(self.chain.as_ref(), &metagraph, params, now, policy)?
            else {
                return Ok(MasterStatus::Missing);
            };
            // Deltas made with other parameters would silently score
            // nothing: refuse to train instead.
            if let Some(theirs) = RunParams::read(source.bucket.as_ref(), &source.hotkey)? {
                let mine = RunParams::new(params.clone(), self.config.model.clone());
                mine.require_same(&theirs, &source.hotkey)?;
            }
            self.master_bucket = Some(source.bucket);
        }
        let bucket = self
            .master_bucket
            .as_deref()
            .ok_or_else(|| Error::Unavailable("no master bucket".into()))?;
        let cache = self.config.work_dir.join("masters");
        let Some(pointer) = read_master_pointer(bucket)? else {
            return Ok(MasterStatus::Missing);
        };
        // The pointer names the master being trained: nothing to read.
        if let Some(t) = &self.training
            && t.master.revision() == pointer.revision
        {
            return Ok(MasterStatus::Unchanged(pointer.revision));
        }
        let master = fetch_pointed(bucket, &cache, &self.config.model, pointer)?;
        let model = master.load(&self.config.model, self.config.device)?;
        let (trainer, carried) = match self.training.take() {
            Some(mut t) => {
                t.trainer.replace_model(model)?;
                (t.trainer, t.last_left_out)
            }
            None => {
                let mut trainer = Trainer::new(model, self.config.train.clone())?;
                let path = self.config.work_dir.join(OPTIMIZER_FILE);
                if path.exists()
                    && let Err(e) = trainer.load_state(&path)
                {
                    self.fresh_optimizer = Some(e);
                }
                (trainer, std::mem::take(&mut self.restored))
            }
        };
        let revision = master.revision();
        self.training = Some(Training {
            master,
            trainer,
            last_left_out: carried.clone(),
            carried,
        });
        Ok(MasterStatus::Updated(revision))
    }

    /// Why the optimizer state saved in the work folder was not restored (a
    /// corrupt file, one for another model): the miner trains with a fresh
    /// optimizer. `None` when it was restored or there was none.
    pub fn fresh_optimizer_reason(&self) -> Option<&Error> {
        self.fresh_optimizer.as_ref()
    }

    /// Optimizer steps taken so far (they carry across masters and
    /// restarts), once synced.
    pub fn optimizer_steps(&self) -> Option<u64> {
        self.training.as_ref().map(|t| t.trainer.steps())
    }

    /// The master being trained on, once synced.
    pub fn master(&self) -> Option<&LocalMaster> {
        self.training.as_ref().map(|t| &t.master)
    }

    /// The model being trained, once synced.
    pub fn trained_model(&self) -> Option<&Model> {
        self.training.as_ref().map(|t| t.trainer.model())
    }

    /// The miner's window for the round judged at `deadline`.
    pub fn window_for(&self, deadline: u64) -> Result<Window> {
        let pages = &self.config.params.pages;
        window(pages, self.uid()?, pages.epoch_of(deadline))
    }

    /// Takes `steps` training steps on pages of the miner's window for the
    /// round judged at `deadline`.
    pub fn train(&mut self, deadline: u64, steps: u64) -> Result<TrainReport> {
        self.train_with_progress(deadline, steps, |_, _| {})
    }

    /// [`train`](Self::train), calling `on_step(step, loss)` after each step.
    /// The optimizer state is then saved in the work folder (atomically).
    pub fn train_with_progress(
        &mut self,
        deadline: u64,
        steps: u64,
        mut on_step: impl FnMut(u64, f64),
    ) -> Result<TrainReport> {
        let window = self.window_for(deadline)?;
        let hotkey = self.hotkey();
        let (per_step, seq_len) = (
            self.config.pages_per_step.max(1),
            self.config.params.seq_len,
        );
        let data = Arc::clone(&self.data);
        let training = self
            .training
            .as_mut()
            .ok_or_else(|| Error::Unavailable("no master yet: call sync_master first".into()))?;
        let mut total = 0.0;
        for i in 0..steps {
            let step = training.trainer.steps();
            let ids = training_pages(&window, &hotkey, deadline, step, per_step);
            let batch = data.batch(&ids, seq_len)?;
            let loss = training.trainer.train_step(&batch)?.loss;
            total += loss;
            on_step(i + 1, loss);
        }
        std::fs::create_dir_all(&self.config.work_dir)
            .map_err(|e| Error::io(&self.config.work_dir, e))?;
        training
            .trainer
            .save_state(self.config.work_dir.join(OPTIMIZER_FILE))?;
        Ok(TrainReport {
            steps,
            mean_loss: if steps == 0 {
                f64::NAN
            } else {
                total / steps as f64
            },
            epoch: window.epoch(),
        })
    }

    /// Encodes `trained − master`, signs it and uploads it for `block`. With
    /// a lossy sparse encoding, what it left out is then saved in the work
    /// folder; an error there comes after the delta was uploaded.
    pub fn upload(&mut self, block: u64) -> Result<Uploaded> {
        let uid = self.uid()?;
        let training = self
            .training
            .as_mut()
            .ok_or_else(|| Error::Unavailable("no master yet: call sync_master first".into()))?;
        let header = DeltaHeader {
            base_revision: training.master.revision(),
            block,
            uid,
            hotkey: self.keypair.public(),
        };
        let limits = Limits::for_model(self.config.model.parameter_count());
        let encoding = self.config.encoding;
        let mut feedback = encoding.is_lossy_sparse().then(|| training.carried.clone());
        let scratch = self.config.work_dir.join("scratch");
        let (trainer, master) = (&training.trainer, &training.master);
        let params = &self.config.params;
        let seal = seal_target(self.chain.as_ref(), params, params.deadline_after(block))?;
        let uploaded = upload_delta(
            self.bucket.as_ref(),
            &scratch,
            &self.keypair,
            header,
            &limits,
            &seal,
            |w| {
                build(
                    w,
                    trainer.model(),
                    &master.checkpoint,
                    |p| encoding.for_tensor(p.numel()),
                    feedback.as_mut(),
                )
                .map(|_| ())
            },
        )?;
        if let Some(left_out) = feedback {
            // Kept on disk so that a restarted miner does not lose them.
            left_out.save(self.config.work_dir.join(RESIDUALS_FILE), &header)?;
            training.last_left_out = left_out;
        }
        Ok(uploaded)
    }

    /// The residuals the current master's deltas carry (what lossy encodings
    /// left out of the last delta against the previous master, or of the last
    /// upload before a restart); empty before the first sync.
    pub fn carried_residuals(&self) -> Option<&Residuals> {
        self.training.as_ref().map(|t| &t.carried)
    }

    /// What the latest upload's encoding left out, as saved in the work folder.
    pub fn last_left_out(&self) -> Option<&Residuals> {
        self.training.as_ref().map(|t| &t.last_left_out)
    }
}

/// The residuals a previous run of this miner saved in its work folder, if
/// any (empty otherwise).
fn load_residuals(config: &MinerConfig) -> Result<Residuals> {
    let path = config.work_dir.join(RESIDUALS_FILE);
    if !path.exists() {
        return Ok(Residuals::new());
    }
    let limits = Limits::for_model(config.model.parameter_count());
    let (residuals, _) = Residuals::load(&path, &limits)?;
    Ok(residuals)
}

/// The pages of one training step: `count` pages of the window chosen by a
/// hash of the miner, the round and the step (any choice works; this one is
/// reproducible; `step` is the optimizer's step count, which carries across
/// masters).
pub fn training_pages(
    window: &Window,
    hotkey: &PublicKey,
    deadline: u64,
    step: u64,
    count: usize,
) -> Vec<u64> {
    (0..count as u64)
        .filter_map(|i| {
            let mut h = Hasher::new();
            h.update(b"bistro.miner.train.v1");
            h.update(&hotkey.0)
                .update(&deadline.to_le_bytes())
                .update(&step.to_le_bytes())
                .update(&i.to_le_bytes());
            let d = h.finalize();
            let x = u64::from_le_bytes([
                d.0[0], d.0[1], d.0[2], d.0[3], d.0[4], d.0[5], d.0[6], d.0[7],
            ]);
            window.get(x % window.len().max(1))
        })
        .collect()
}

/// Checks that a page source is the dataset the subnet's parameters name.
pub(crate) fn check_dataset(params: &SubnetParams, data: &dyn PageSource) -> Result<()> {
    if data.dataset_id() != params.pages.dataset_id || data.num_pages() != params.pages.num_pages {
        return Err(Error::InvalidArgument(format!(
            "the page source is dataset {} with {} pages; the subnet uses {} with {}",
            data.dataset_id().short(),
            data.num_pages(),
            params.pages.dataset_id.short(),
            params.pages.num_pages
        )));
    }
    Ok(())
}
