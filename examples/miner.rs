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

use bistro::cli::Args;
use bistro::model::TrainConfig;
use bistro::node::DeltaEncoding;
use bistro::node::miner::{Miner, MinerConfig, MinerEvent, RoundOutcome};
use bistro::roles::{NodeFlags, Role, Setup};
use clap::Parser;

/// Mines on bistro: trains the master on its window, uploads the delta.
#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    args: Args,
    #[command(flatten)]
    node: NodeFlags,
    /// Training steps per upload
    #[arg(long, value_name = "N", default_value_t = 8)]
    steps: u64,
    /// dense-bf16, dense-f16, dense-f32, topk-FRACTION-bf16, int8-BLOCK
    #[arg(long, value_name = "ENC", default_value = "dense-bf16", value_parser = encoding)]
    encoding: DeltaEncoding,
    /// Peak learning rate
    #[arg(long, value_name = "X", default_value_t = 3e-3)]
    lr: f64,
}

fn encoding(spec: &str) -> Result<DeltaEncoding, String> {
    DeltaEncoding::parse(spec).ok_or_else(|| format!("{spec:?} is not an encoding"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("miner: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> bistro::Result<()> {
    let setup = Setup::from_args(&cli.args, &cli.node, Role::Miner)?;
    let (rounds, steps, lr, encoding) = (cli.node.rounds, cli.steps, cli.lr, cli.encoding);
    let netuid = setup.params.netuid;
    let mut config = MinerConfig {
        params: setup.params.clone(),
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
    // Run with the parameters the validators publish, not compiled-in ones.
    if let Some(publisher) = config.adopt_published(setup.chain.as_ref())? {
        println!("run parameters: those validator {publisher} publishes");
    }
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
        netuid
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
