//! A complete miner against the public API (the README shows it): joins the
//! embedded network (`cargo run --example validator` beside it) or, with the
//! flags of `examples/miner.rs`, a subnet on Bittensor.
use bistro::cli::Args;
use bistro::model::TrainConfig;
use bistro::node::encoding::{DTypeName, DeltaEncoding};
use bistro::node::miner::{Miner, MinerConfig};
use bistro::roles::{NodeFlags, Role, Setup};

fn main() -> bistro::Result<()> {
    let (args, node) = Args::parse_with::<NodeFlags>("A minimal bistro miner.");
    let s = Setup::from_args(&args, &node, Role::Miner)?;
    let config = MinerConfig {
        params: s.params,
        model: s.model,
        train: TrainConfig::default(),
        device: s.device,
        steps_per_upload: 8,
        pages_per_step: 2,
        encoding: DeltaEncoding::Dense(DTypeName::Bf16),
        work_dir: s.work_dir,
    };
    let mut miner = Miner::new(s.chain, s.bucket, s.commitment, s.keypair, s.data, config)?;
    miner.publish_commitment()?;
    loop {
        // Sync, train for the right round, re-check the master, upload, wait.
        miner.run_round(|event| println!("{event:?}"))?;
    }
}
