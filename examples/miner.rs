//! A bistro miner.
//!
//! With no flags it joins the embedded network in `~/.bistro/localnet` (run
//! `cargo run --example validator` beside it, which publishes the master).
//! With `--subtensor.network` and `--bucket` it mines on Bittensor with an
//! S3 bucket (credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`).
//!
//! ```text
//! cargo run --release --example miner -- --wallet.name W --wallet.hotkey H \
//!     --subtensor.network test --netuid 212 --bucket BUCKET --device cuda
//! ```

use std::io::Write as _;
use std::process::ExitCode;

use bistro::cli::{Args, Flag};
use bistro::model::TrainConfig;
use bistro::node::DeltaEncoding;
use bistro::node::miner::{Miner, MinerConfig, MinerEvent, RoundOutcome};
use bistro::roles::{COMMON_FLAGS, Role, Setup};

const FLAGS: &[Flag] = &[
    Flag {
        name: "steps",
        value: "N",
        help: "training steps per upload",
        default: Some("8"),
    },
    Flag {
        name: "encoding",
        value: "ENC",
        help: "dense-bf16, dense-f16, dense-f32, topk-FRACTION-bf16, int8-BLOCK",
        default: Some("dense-bf16"),
    },
    Flag {
        name: "lr",
        value: "X",
        help: "peak learning rate",
        default: Some("0.003"),
    },
];

fn main() -> ExitCode {
    let flags: Vec<Flag> = COMMON_FLAGS.iter().chain(FLAGS).copied().collect();
    let args = Args::from_env(
        "Mines on bistro: trains the master on its window, uploads the delta.",
        &flags,
    );
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("miner: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> bistro::Result<()> {
    let setup = Setup::from_args(args, Role::Miner)?;
    let rounds: Option<u64> = args.extra_parsed("rounds")?;
    let steps: u64 = args.extra_parsed("steps")?.unwrap_or(8);
    let lr: f64 = args.extra_parsed("lr")?.unwrap_or(3e-3);
    let spec = args.extra("encoding").unwrap_or("dense-bf16");
    let encoding = DeltaEncoding::parse(spec).ok_or_else(|| {
        bistro::Error::InvalidArgument(format!("--encoding {spec:?} is not an encoding"))
    })?;
    let params = setup.params.clone();
    let config = MinerConfig {
        params: params.clone(),
        model: setup.model.clone(),
        train: TrainConfig {
            learning_rate: lr,
            min_learning_rate: lr / 10.0,
            warmup_steps: 10,
            ..TrainConfig::default()
        },
        device: setup.device,
        steps_per_upload: steps,
        pages_per_step: 2,
        encoding,
        work_dir: setup.work_dir.clone(),
    };
    let mut miner = Miner::new(
        setup.chain,
        setup.bucket,
        setup.commitment,
        setup.keypair,
        setup.data,
        config,
    )?;
    println!(
        "miner {} uid {} on subnet {}",
        miner.hotkey(),
        miner.uid()?,
        params.netuid
    );
    if miner.publish_commitment()? {
        println!("published the bucket commitment");
    }
    let mut done = 0u64;
    while rounds.is_none_or(|r| done < r) {
        match miner.run_round(print_event)? {
            RoundOutcome::Uploaded(_) | RoundOutcome::UploadFailed => done += 1,
            RoundOutcome::NoMaster | RoundOutcome::Stale => {}
        }
    }
    Ok(())
}

/// Prints what a round does, as it happens.
fn print_event(event: MinerEvent<'_>) {
    match event {
        MinerEvent::NoMaster => println!("no master published yet; waiting"),
        MinerEvent::MasterUnavailable(e) => println!("could not fetch the master ({e}); retrying"),
        MinerEvent::NewMaster {
            revision,
            fresh_optimizer,
        } => {
            println!("training on master {}", revision.short());
            if let Some(e) = fresh_optimizer {
                println!(
                    "the optimizer state in the work folder cannot be used ({e}); \
                     training with a fresh optimizer"
                );
            }
        }
        MinerEvent::Step {
            deadline,
            step,
            steps,
            loss,
        } => {
            print!(
                "\rtraining for the deadline at block {deadline}: step {step}/{steps}, loss {loss:.4}"
            );
            let _ = std::io::stdout().flush();
        }
        MinerEvent::Trained { deadline, report } => println!(
            "\rtrained {} steps for the deadline at block {deadline}, epoch {}, mean loss {:.4}",
            report.steps, report.epoch, report.mean_loss
        ),
        MinerEvent::Stale { revision } => println!(
            "the master changed during training (now {}): not uploading a stale delta; training again",
            revision.short()
        ),
        MinerEvent::Late { deadline } => {
            println!("training ran past block {deadline}: this delta counts for the next round")
        }
        MinerEvent::Uploaded(up) => println!(
            "uploaded {} ({} bytes, digest {})",
            up.key,
            up.size,
            up.digest.short()
        ),
        MinerEvent::UploadFailed(e) => println!("upload failed ({e}); the next round retries"),
    }
}
