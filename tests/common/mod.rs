//! The small network the miner/validator integration tests share: a manual
//! local chain with subnet 1, local buckets under one temporary folder, the
//! sample corpus, the tiny model, and a validator with stake.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bistro::Keypair;
use bistro::chain::{Chain, LocalChain, LocalChainConfig, local::SubnetConfig};
use bistro::data::{PageSource, sample};
use bistro::model::outer::MergeConfig;
use bistro::model::{Config, Device, TrainConfig};
use bistro::node::miner::{Miner, MinerConfig};
use bistro::node::validator::{Validator, ValidatorConfig};
use bistro::node::{DeltaEncoding, SubnetParams};
use bistro::storage::{Bucket, BucketCommitment, EndpointPolicy, LocalBucket};

/// The network.
pub struct Net {
    pub root: PathBuf,
    pub chain: Arc<LocalChain>,
    pub data: Arc<dyn PageSource>,
    pub params: SubnetParams,
    pub model: Config,
    pub validator_key: Keypair,
    /// The folder's owner (`None`: a network another process created).
    _dir: Option<tempfile::TempDir>,
}

/// The key of participant `i` (the validator is 100).
pub fn key(i: u8) -> Keypair {
    Keypair::from_seed([i; 32]).unwrap()
}

/// The local bucket `name` of the network under `root`, and its commitment.
pub fn bucket(root: &Path, name: &str) -> (Box<dyn Bucket>, BucketCommitment) {
    let parent = root.join("buckets");
    std::fs::create_dir_all(&parent).unwrap();
    (
        Box::new(LocalBucket::create(parent.join(name)).unwrap()),
        BucketCommitment::local(&parent, name).unwrap(),
    )
}

/// A new network; `adjust` changes the subnet's parameters first (windows
/// of 8 pages, epochs of 1000 blocks, `D = 2`).
pub fn net(adjust: impl FnOnce(&mut SubnetParams)) -> Net {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let mut net = reopen(&root, adjust);
    net.chain.add_subnet(1, SubnetConfig::default()).unwrap();
    let validator = net.validator_key.public();
    net.chain
        .register(1, &validator, &validator, 1 << 40)
        .unwrap();
    net._dir = Some(dir);
    net
}

/// The network already set up under `root` (by [`net`], in this process or
/// another), with the same `adjust`.
pub fn reopen(root: &Path, adjust: impl FnOnce(&mut SubnetParams)) -> Net {
    bistro::model::set_threads(1);
    let chain = Arc::new(
        LocalChain::open_or_create(root.join("chain"), &LocalChainConfig::manual([3; 32])).unwrap(),
    );
    let data: Arc<dyn PageSource> = Arc::new(sample::train().unwrap());
    let mut params = SubnetParams::new(
        1,
        data.params(8, SubnetParams::DEFAULT_ROUND_BLOCKS, 2)
            .unwrap(),
    );
    adjust(&mut params);
    Net {
        root: root.to_path_buf(),
        chain,
        data,
        params,
        model: Config::preset("tiny").unwrap(),
        validator_key: key(100),
        _dir: None,
    }
}

impl Net {
    /// The validator (its folder and bucket persist: calling this again is
    /// a restart), judging at most `uids_per_round` uids (0: all), merging
    /// with `merge`, contacting the local buckets.
    pub fn validator_with(&self, uids_per_round: usize, merge: MergeConfig) -> Validator {
        self.validator_named(&self.validator_key, "validator", uids_per_round, merge)
    }

    /// The validator with `key` (registered with stake already), its bucket
    /// and folder both named `name`.
    pub fn validator_named(
        &self,
        key: &Keypair,
        name: &str,
        uids_per_round: usize,
        merge: MergeConfig,
    ) -> Validator {
        let (b, c) = bucket(&self.root, name);
        let config = ValidatorConfig {
            params: self.params.clone(),
            model: self.model.clone(),
            device: Device::Cpu,
            work_dir: self.root.join(name),
            uids_per_round,
            genesis_seed: 5,
            heldout_pages: 0,
            merge,
        };
        let chain: Arc<dyn Chain> = self.chain.clone();
        let mut validator = Validator::new(chain, b, c, key.clone(), self.data.clone(), config)
            .unwrap()
            .with_endpoint_policy(EndpointPolicy::Any);
        validator.publish().unwrap();
        validator
    }

    /// Miner `i` as the SDK runs it (registered and committed already, see
    /// [`Net::register`]), training 2 steps of 1 page per upload.
    pub fn training_miner(&self, i: u8) -> Miner {
        let (own, commitment) = bucket(&self.root, &format!("miner-{i}"));
        let config = MinerConfig {
            params: self.params.clone(),
            model: self.model.clone(),
            train: TrainConfig {
                learning_rate: 3e-3,
                warmup_steps: 1,
                total_steps: 100,
                ..TrainConfig::default()
            },
            device: Device::Cpu,
            steps_per_upload: 2,
            pages_per_step: 1,
            encoding: DeltaEncoding::parse("dense-bf16").unwrap(),
            work_dir: self.root.join(format!("miner-{i}")),
        };
        let chain: Arc<dyn Chain> = self.chain.clone();
        Miner::new(chain, own, commitment, key(i), self.data.clone(), config).unwrap()
    }

    /// Every miner syncs, trains 2 steps and uploads; the chain moves to the
    /// deadline, where every validator takes its snapshot, then to the
    /// reveal block; returns the deadline and the delta keys by miner.
    pub fn work(
        &self,
        miners: &mut [Miner],
        validators: &mut [&mut Validator],
    ) -> (u64, Vec<String>) {
        let block = self.chain.block().unwrap().number;
        let deadline = self.params.deadline_after(block);
        let mut keys = Vec::new();
        for m in miners.iter_mut() {
            m.sync_master().unwrap();
            m.train(deadline, 2).unwrap();
            keys.push(m.upload(block).unwrap().key);
        }
        self.chain.advance(deadline - block).unwrap();
        for validator in validators.iter_mut() {
            validator.snapshot(deadline).unwrap();
        }
        self.chain
            .advance(self.params.reveal_block(deadline) - deadline)
            .unwrap();
        (deadline, keys)
    }

    /// Registers miner `i` with the commitment of its bucket `miner-<i>`;
    /// returns its uid.
    pub fn register(&self, i: u8) -> u16 {
        let k = key(i);
        let uid = self.chain.register(1, &k.public(), &k.public(), 0).unwrap();
        let (_, c) = bucket(&self.root, &format!("miner-{i}"));
        self.chain
            .set_commitment(1, &k, c.encode().unwrap().as_bytes())
            .unwrap();
        uid
    }
}

/// Copies the folder `from` into `to`, recursively (a network moved or
/// snapshotted).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
