//! A whole bistro network on one machine: a local chain, a validator and a
//! cast of miners — honest ones and every adversary the incentive must
//! withstand — each in its own thread, with local buckets and the sample
//! corpus. `examples/localnet.rs` runs it; `tests/localnet.rs` checks what
//! it shows.
//!
//! Rounds run in lock step so the result does not depend on how fast the
//! machine is: the miners work (in parallel), then the chain is advanced to
//! the round's deadline and reveal block, then the validator judges the
//! round. The miner and validator are the SDK's own [`Miner`] and
//! [`Validator`]; the examples run the same types against a real clock.

mod behaviour;
mod participant;
mod report;
pub mod s3_server;

use s3_server::Fault;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use crate::rounds::{print_round, write_charts};
pub use behaviour::Behaviour;
pub use participant::{Participant, RoundContext};
pub use report::Summary;

use bistro_core::chain::{Chain, LocalChain, LocalChainConfig, local::SubnetConfig};
use bistro_core::data::{PageSource, sample};
use bistro_core::digest::Digest;
use bistro_core::error::{Error, Result};
use bistro_core::identity::Keypair;
use bistro_core::model::{self, Config, Device, TrainConfig};
use bistro_core::node::master::{LocalMaster, publish_model};
use bistro_core::node::miner::{Miner, MinerConfig};
use bistro_core::node::validator::{FetchBudget, RoundReport, Validator, ValidatorConfig};
use bistro_core::node::{DeltaEncoding, SubnetParams};
use bistro_core::storage::keys::publish_master;
use bistro_core::storage::{Bucket, BucketCommitment, EndpointPolicy, LocalBucket};

/// Each miner's one-line account of a round (or why it failed), by uid.
pub type Accounts = Vec<(u16, Result<String>)>;

/// The subnet the local network runs.
pub const NETUID: u16 = 1;

/// How the local network is set up.
#[derive(Clone, Debug)]
pub struct LocalnetConfig {
    /// Folder for the chain, buckets, work folders, logs and charts.
    pub dir: PathBuf,
    /// Rounds to run.
    pub rounds: u64,
    /// The miners.
    pub cast: Vec<Behaviour>,
    /// Model preset.
    pub preset: String,
    /// Training steps per miner per round.
    pub steps_per_round: u64,
    /// Pages per training step.
    pub pages_per_step: usize,
    /// Pages per miner window.
    pub window_pages: u64,
    /// Peak learning rate of the miners.
    pub learning_rate: f64,
    /// Seeds keys, the chain and the genesis master.
    pub seed: u64,
}

impl Default for LocalnetConfig {
    fn default() -> Self {
        LocalnetConfig {
            dir: PathBuf::from("out/localnet"),
            rounds: 6,
            cast: Behaviour::CAST.to_vec(),
            preset: "tiny".into(),
            steps_per_round: 8,
            pages_per_step: 2,
            window_pages: 8,
            learning_rate: 3e-3,
            seed: 7,
        }
    }
}

/// A running local network.
pub struct Localnet {
    config: LocalnetConfig,
    chain: Arc<LocalChain>,
    params: SubnetParams,
    model: Config,
    validator: Validator,
    participants: Vec<Participant>,
    data: Arc<dyn PageSource>,
    /// How the honest miners train (adversaries that train use it too).
    train: TrainConfig,
    /// The master the stale miner trains on lags one behind, through this bucket.
    stale_mirror: Box<dyn Bucket>,
    last_seen_master: Option<LocalMaster>,
    round: u64,
    reports: Vec<RoundReport>,
    /// The storage servers miners run themselves (the staller's).
    _servers: Vec<s3_server::FaultServer>,
}

fn keypair(seed: u64, name: &str) -> Result<Keypair> {
    let mut h = bistro_core::digest::Hasher::new();
    h.update(b"bistro.localnet.key")
        .update(&seed.to_le_bytes())
        .update(name.as_bytes());
    Keypair::from_seed(h.finalize().0)
}

fn local_bucket(dir: &Path, name: &str) -> Result<(LocalBucket, BucketCommitment)> {
    let parent = dir.join("buckets");
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let parent = parent.canonicalize().map_err(|e| Error::io(&parent, e))?;
    let bucket = LocalBucket::create(parent.join(name))?;
    Ok((bucket, BucketCommitment::local(&parent, name)?))
}

impl LocalnetConfig {
    /// The subnet's protocol parameters on the pages of `data` (the table
    /// of `docs/protocol.md`, which `tests/protocol_doc.rs` compares with
    /// this): windows of `window_pages`, epochs of 30 blocks, `D = 2`,
    /// weights every round, the rest [`SubnetParams::new`]'s defaults.
    pub fn params(&self, data: &dyn PageSource) -> Result<SubnetParams> {
        let epoch_blocks = 30;
        let mut params =
            SubnetParams::new(NETUID, data.params(self.window_pages, epoch_blocks, 2)?);
        params.weights_interval_blocks = params.round_blocks;
        params.validate()?;
        Ok(params)
    }
}

impl Localnet {
    /// Builds the network in `config.dir` (which must not hold an earlier
    /// network: remove it first), registers everyone and publishes the
    /// genesis master.
    pub fn setup(config: LocalnetConfig) -> Result<Localnet> {
        let dir = config.dir.clone();
        if dir.join("chain").exists() {
            return Err(Error::InvalidArgument(format!(
                "{} already holds a local network; remove it or choose another --dir",
                dir.display()
            )));
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        model::set_threads(1);
        let mut genesis = [0u8; 32];
        genesis[..8].copy_from_slice(&config.seed.to_le_bytes());
        let chain = Arc::new(LocalChain::open_or_create(
            dir.join("chain"),
            &LocalChainConfig::manual(genesis),
        )?);
        chain.add_subnet(NETUID, SubnetConfig::default())?;
        let data: Arc<dyn PageSource> = Arc::new(sample::train()?);
        let heldout: Arc<dyn PageSource> = Arc::new(sample::heldout()?);
        let model = Config::preset(&config.preset)?;
        let params = config.params(data.as_ref())?;

        let coldkey = keypair(config.seed, "coldkey")?.public();
        let validator_key = keypair(config.seed, "validator")?;
        chain.register(NETUID, &validator_key.public(), &coldkey, 1_000_000_000_000)?;
        let (bucket, commitment) = local_bucket(&dir, "validator")?;
        let validator_config = ValidatorConfig {
            params: params.clone(),
            model: model.clone(),
            device: Device::Cpu,
            work_dir: dir.join("validator"),
            uids_per_round: 0,
            genesis_seed: config.seed,
            heldout_pages: 16,
            merge: Default::default(),
        };
        let chain_dyn: Arc<dyn Chain> = chain.clone();
        let validator = Validator::new(
            chain_dyn.clone(),
            Box::new(bucket),
            commitment,
            validator_key,
            data.clone(),
            validator_config,
        )?
        .with_heldout(heldout)
        // Local buckets are file:// folders (and the staller's server is on
        // 127.0.0.1).
        .with_endpoint_policy(EndpointPolicy::Any)
        // Deltas here are small and local: 5 s is ample for an honest one.
        .with_fetch_budget(FetchBudget {
            per_uid_base: Duration::from_secs(5),
            ..FetchBudget::default()
        });

        let (stale_mirror, _) = local_bucket(&dir, "stale-mirror")?;
        let stale_mirror: Box<dyn Bucket> = Box::new(stale_mirror);
        // The stale miner's first master comes from "an earlier network".
        let ghost = model::Model::new(model.clone(), config.seed ^ 0x5eed, Device::Cpu)?;
        publish_model(&ghost, stale_mirror.as_ref(), &dir.join("ghost"), 0)?;

        // Warmup, then a constant rate: miners keep their optimizer (and
        // its step count) across masters, and a network has no known end
        // to decay towards.
        let train = TrainConfig {
            learning_rate: config.learning_rate,
            min_learning_rate: config.learning_rate,
            warmup_steps: 4,
            total_steps: config.steps_per_round * config.rounds.max(1),
            ..TrainConfig::default()
        };
        let mut participants = Vec::new();
        let mut servers = Vec::new();
        for (i, &behaviour) in config.cast.iter().enumerate() {
            let name = format!("miner-{i}-{behaviour}");
            let key = keypair(config.seed, &name)?;
            let uid = chain.register(NETUID, &key.public(), &coldkey, 0)?;
            let (bucket, mut commitment) = local_bucket(&dir, &name)?;
            if behaviour == Behaviour::Staller {
                let server = s3_server::serve(bucket.root().to_path_buf(), &name, Fault::Drip)?;
                commitment = BucketCommitment::public(server.endpoint.clone(), name.clone());
                servers.push(server);
            }
            chain.set_commitment(NETUID, &key, commitment.encode()?.as_bytes())?;
            let miner = if behaviour.trains() {
                let encoding = match behaviour {
                    Behaviour::HonestTopK => DeltaEncoding::parse("topk-0.1-bf16"),
                    _ => DeltaEncoding::parse("dense-bf16"),
                }
                .ok_or_else(|| Error::InvalidArgument("encoding".into()))?;
                let miner_config = MinerConfig {
                    params: params.clone(),
                    model: model.clone(),
                    train: TrainConfig {
                        maximize: behaviour == Behaviour::Poisoner,
                        ..train.clone()
                    },
                    device: Device::Cpu,
                    steps_per_upload: config.steps_per_round,
                    pages_per_step: config.pages_per_step,
                    encoding,
                    work_dir: dir.join(&name),
                };
                let (own_bucket, _) = local_bucket(&dir, &name)?;
                let miner = Miner::new(
                    chain_dyn.clone(),
                    Box::new(own_bucket),
                    commitment,
                    key.clone(),
                    data.clone(),
                    miner_config,
                )?;
                Some(if behaviour == Behaviour::Stale {
                    let (mirror, _) = local_bucket(&dir, "stale-mirror")?;
                    miner.with_master_bucket(Box::new(mirror))
                } else {
                    miner
                })
            } else {
                None
            };
            participants.push(Participant::new(
                behaviour,
                uid,
                key,
                bucket,
                dir.join(&name).join("scratch"),
                miner,
            ));
        }
        Ok(Localnet {
            config,
            chain,
            params,
            model,
            validator,
            participants,
            data,
            train,
            stale_mirror,
            last_seen_master: None,
            round: 0,
            reports: Vec::new(),
            _servers: servers,
        })
    }

    /// The participants.
    pub fn participants(&self) -> &[Participant] {
        &self.participants
    }

    /// The validator.
    pub fn validator(&self) -> &Validator {
        &self.validator
    }

    /// The chain.
    pub fn chain(&self) -> &LocalChain {
        &self.chain
    }

    /// Reports of the rounds run so far.
    pub fn reports(&self) -> &[RoundReport] {
        &self.reports
    }

    /// The configuration.
    pub fn config(&self) -> &LocalnetConfig {
        &self.config
    }

    /// The behaviour of `uid`, if it is a simulated miner.
    pub fn behaviour_of(&self, uid: u16) -> Option<Behaviour> {
        self.participants
            .iter()
            .find(|p| p.uid == uid)
            .map(|p| p.behaviour)
    }

    /// Runs one round: every miner works, the chain moves to the deadline
    /// and the reveal block, the validator judges. Returns the validator's
    /// report and each miner's one-line account.
    pub fn run_round(&mut self) -> Result<(RoundReport, Accounts)> {
        let master = self.validator.master().clone();
        self.update_stale_mirror(&master)?;
        let block = self.chain.block()?.number;
        let deadline = self.params.deadline_after(block);
        let honest: Vec<bistro_core::PublicKey> = self
            .participants
            .iter()
            .filter(|p| p.behaviour.is_honest())
            .map(|p| p.keypair.public())
            .collect();
        let mut ctx = RoundContext {
            round: self.round,
            deadline,
            block,
            master: &master,
            model: &self.model,
            steps: self.config.steps_per_round,
            chain: self.chain.as_ref(),
            netuid: NETUID,
            copy_from: honest.first().copied(),
            honest: &honest,
            params: &self.params,
            data: self.data.as_ref(),
            train: &self.train,
            reveal_hash: None,
        };
        // Everyone works at once, but those that act only after the reveal.
        let (late, now): (Vec<_>, Vec<_>) = self
            .participants
            .iter_mut()
            .partition(|p| p.behaviour.acts_after_reveal());
        let started = std::time::Instant::now();
        let mut accounts = run_all(now, &ctx);
        let miners_took = started.elapsed();

        // The deadline: the validator lists every bucket before the reveal
        // block exists; then the reveal block; then the late ones act.
        self.chain
            .advance(deadline.saturating_sub(self.chain.block()?.number))?;
        self.validator.snapshot(deadline)?;
        let reveal = self.params.reveal_block(deadline);
        self.chain
            .advance(reveal.saturating_sub(self.chain.block()?.number))?;
        ctx.reveal_hash = self.chain.block_hash(reveal)?;
        accounts.extend(run_all(late, &ctx));
        accounts.sort_by_key(|(uid, _)| *uid);

        let started = std::time::Instant::now();
        // The validator has the machine to itself while it judges.
        model::set_threads(2);
        let report = self.validator.run_round(deadline);
        model::set_threads(1);
        let report = report?;
        println!(
            "  (miners {:.1} s, validator {:.1} s)",
            miners_took.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
        self.reports.push(report.clone());
        self.round += 1;
        Ok((report, accounts))
    }

    /// Publishes into the stale miner's mirror the master before `current`,
    /// once `current` has replaced it: the stale miner is always one behind.
    fn update_stale_mirror(&mut self, current: &LocalMaster) -> Result<()> {
        if let Some(previous) = &self.last_seen_master
            && previous.revision() != current.revision()
        {
            publish_master(
                self.stale_mirror.as_ref(),
                previous.checkpoint.path(),
                previous.revision(),
                previous.pointer.block,
            )?;
        }
        if self.last_seen_master.as_ref().map(|m| m.revision()) != Some(current.revision()) {
            self.last_seen_master = Some(current.clone());
        }
        Ok(())
    }

    /// The revision of the current master.
    pub fn master_revision(&self) -> Digest {
        self.validator.master().revision()
    }

    /// Runs the configured number of rounds, printing a table per round,
    /// then writes `weights.svg`, `loss.svg` and `summary.json` into the
    /// network's folder.
    pub fn run(&mut self) -> Result<Summary> {
        let heldout_start = self.validator.heldout_loss()?.unwrap_or(f64::NAN);
        println!(
            "local network in {}: {} miners, model {} ({} parameters), held-out loss {heldout_start:.4}",
            self.config.dir.display(),
            self.participants.len(),
            self.config.preset,
            self.model.parameter_count()
        );
        for i in 0..self.config.rounds {
            let started = std::time::Instant::now();
            let (report, accounts) = self.run_round()?;
            println!(
                "\n== round {}/{} ({:.1} s)",
                i + 1,
                self.config.rounds,
                started.elapsed().as_secs_f64()
            );
            for (uid, account) in &accounts {
                let who = self.behaviour_of(*uid).map_or("?", |b| b.name());
                match account {
                    Ok(line) => println!("  uid {uid} {who}: {line}"),
                    Err(e) => println!("  uid {uid} {who}: failed: {e}"),
                }
            }
            print_round(&report, |u| {
                self.behaviour_of(u).map_or("?".into(), |b| b.name().into())
            });
        }
        let summary = self.summary(heldout_start)?;
        write_charts(
            &self.config.dir,
            &self.reports,
            Some(heldout_start),
            |uid| {
                let name = self.behaviour_of(uid).map_or("?", |b| b.name());
                format!("uid {uid} {name}")
            },
        )?;
        let json = serde_json::to_vec_pretty(&summary)
            .map_err(|e| Error::InvalidArgument(format!("summary: {e}")))?;
        bistro_core::storage::write_file_atomic(&self.config.dir.join("summary.json"), &json)?;
        Ok(summary)
    }

    /// What the network shows: final weights (as set on the chain, after
    /// advancing it past the reveal of the last commit), the
    /// adversaries' share, the master's held-out loss before and after, and
    /// the checks that no rejected delta changed the master.
    pub fn summary(&self, heldout_start: f64) -> Result<Summary> {
        let me = self.validator.hotkey();
        // The subnet uses commit-reveal: let the chain reveal the last
        // commit before reading what it shows.
        self.chain.advance_past_reveals()?;
        let rows = self.chain.weights(NETUID)?;
        let set = rows
            .iter()
            .find(|r| r.hotkey == me)
            .map(|r| r.weights.clone());
        let total: f64 = set
            .iter()
            .flat_map(|w| w.values.iter())
            .map(|&v| f64::from(v))
            .sum();
        let mut final_weights = Vec::new();
        for p in &self.participants {
            let value = set
                .as_ref()
                .and_then(|w| w.uids.iter().position(|&u| u == p.uid).map(|i| w.values[i]))
                .map_or(0.0, f64::from);
            let share = if total > 0.0 { value / total } else { 0.0 };
            final_weights.push((p.uid, p.behaviour.name().to_string(), share));
        }
        let adversary_share = final_weights
            .iter()
            .filter(|w| !w.1.starts_with("honest"))
            .map(|w| w.2)
            .sum();
        let log = bistro_core::node::log::read_log(self.validator.log_dir())?;
        let inexact_restores = log
            .iter()
            .filter(|r| r.restored_exact == Some(false))
            .count();
        let unexplained_master_changes = self
            .reports
            .iter()
            .filter(|r| r.master_after != r.master_before && !r.rows.iter().any(|row| row.merged))
            .count();
        Ok(Summary {
            final_weights,
            adversary_share,
            heldout_loss_start: heldout_start,
            heldout_loss_end: self.validator.heldout_loss()?.unwrap_or(f64::NAN),
            inexact_restores,
            unexplained_master_changes,
        })
    }

    /// The folder everything is written to.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }
}

fn run_all(participants: Vec<&mut Participant>, ctx: &RoundContext<'_>) -> Accounts {
    std::thread::scope(|scope| {
        let handles: Vec<_> = participants
            .into_iter()
            .map(|p| {
                let uid = p.uid;
                (
                    uid,
                    scope.spawn(move || {
                        model::set_threads(1);
                        p.act(ctx)
                    }),
                )
            })
            .collect();
        handles
            .into_iter()
            .map(|(uid, h)| {
                let result = h.join().unwrap_or_else(|_| {
                    Err(Error::InvalidArgument(format!("miner uid {uid} panicked")))
                });
                (uid, result)
            })
            .collect()
    })
}
