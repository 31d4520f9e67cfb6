//! A bistro validator.
//!
//! With no flags it joins the embedded network in `~/.bistro/localnet` (a
//! local chain, local buckets, the sample corpus, the tiny model), creating
//! what is missing; run `cargo run --example miner` beside it. With
//! `--subtensor.network` and `--bucket` it validates on Bittensor with an
//! S3 bucket (credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`).
//!
//! ```text
//! cargo run --release --example validator -- --wallet.name W --wallet.hotkey H \
//!     --subtensor.network test --netuid 212 --bucket BUCKET --device cuda
//! ```

use std::process::ExitCode;
use std::sync::Arc;

use bistro::cli::Args;
use bistro::data::sample;
use bistro::node::validator::{Validator, ValidatorConfig};
use bistro::roles::{NodeFlags, Role, Setup};
use bistro::rounds::{RoundHistory, print_round, write_charts};
use clap::Parser;

/// Validates bistro miners: judges their deltas, publishes the master, sets weights.
#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    args: Args,
    #[command(flatten)]
    node: NodeFlags,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("validator: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> bistro::Result<()> {
    let setup = Setup::from_args(&cli.args, &cli.node, Role::Validator)?;
    let rounds = cli.node.rounds;
    let (chain, params) = (setup.chain.clone(), setup.params.clone());
    let config = ValidatorConfig {
        heldout_pages: if setup.embedded { 16 } else { 0 },
        ..ValidatorConfig::new(
            params.clone(),
            setup.model.clone(),
            setup.device,
            setup.work_dir.clone(),
        )
    };
    let policy = setup.endpoint_policy();
    let mut validator = Validator::new(
        chain.clone(),
        setup.bucket,
        setup.commitment,
        setup.keypair,
        setup.data,
        config,
    )?
    .with_endpoint_policy(policy);
    if setup.embedded {
        validator = validator.with_heldout(Arc::new(sample::heldout()?));
    }
    validator.publish()?;
    println!(
        "validator {} on subnet {}: master {}, work dir {}, log {}",
        validator.hotkey(),
        params.netuid,
        validator.master().revision().short(),
        setup.work_dir.display(),
        validator.log_dir().display()
    );
    let (mut history, mut reports) = RoundHistory::open(setup.work_dir.join("rounds.jsonl"))?;
    println!(
        "charts: {} and loss.svg there, over {} earlier round(s) and every new one",
        setup.work_dir.join("weights.svg").display(),
        reports.len()
    );
    // Deadline snapshots come from a thread of their own, on time even
    // while this one is still judging the previous round.
    let snapshots = validator.snapshotter().spawn(chain.block()?.number);
    let mut done = 0u64;
    while rounds.is_none_or(|r| done < r) {
        println!("waiting for the next deadline");
        let snapshot = snapshots
            .recv()
            .map_err(|_| bistro::Error::Unavailable("the snapshot thread ended".into()))??;
        let deadline = snapshot.deadline;
        println!(
            "deadline {deadline}: {} bucket(s) pinned, {} not listed, in {} ms{}",
            snapshot.pins.len(),
            snapshot.unlisted.len(),
            snapshot.took_ms,
            if snapshot.before_reveal {
                ""
            } else {
                " (after the reveal block: nobody is judged this round)"
            }
        );
        validator.use_snapshot(snapshot)?;
        let report = validator.run_round(deadline)?;
        print_round(&report, |uid| format!("uid {uid}"));
        history.append(&report)?;
        reports.push(report);
        write_charts(&setup.work_dir, &reports, None, |uid| format!("uid {uid}"))?;
        done += 1;
    }
    Ok(())
}
