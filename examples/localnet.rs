//! The main demo: a whole bistro network on one machine, no network access,
//! no accounts. A local chain, a validator and eight miners — two honest,
//! six adversaries (lazy, noise, copier, poisoner, stale, corrupt) — train
//! the tiny model on the sample corpus for a few rounds. Prints a table per
//! round and writes charts of the weights and of the master's loss.
//!
//! ```text
//! cargo run --release --example localnet -- [--rounds N] [--dir DIR] [--steps N]
//! ```

use std::process::ExitCode;

use bistro::cli::{Args, Flag};
use bistro::localnet::{Localnet, LocalnetConfig};

const FLAGS: &[Flag] = &[
    Flag {
        name: "rounds",
        value: "N",
        help: "rounds to run",
        default: Some("6"),
    },
    Flag {
        name: "dir",
        value: "DIR",
        help: "output folder (replaced)",
        default: Some("out/localnet"),
    },
    Flag {
        name: "steps",
        value: "N",
        help: "training steps per miner per round",
        default: Some("8"),
    },
    Flag {
        name: "preset",
        value: "NAME",
        help: "model preset",
        default: Some("tiny"),
    },
];

fn main() -> ExitCode {
    let args = Args::from_env(
        "Runs a local bistro network: chain, validator, honest and adversarial miners.",
        FLAGS,
    );
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("localnet: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> bistro::Result<bool> {
    let mut config = LocalnetConfig::default();
    config.rounds = args.extra_parsed("rounds")?.unwrap_or(config.rounds);
    config.steps_per_round = args
        .extra_parsed("steps")?
        .unwrap_or(config.steps_per_round);
    if let Some(dir) = args.extra("dir") {
        config.dir = dir.into();
    }
    if let Some(preset) = args.extra("preset") {
        config.preset = preset.into();
    }
    if config.dir.join("chain").exists() {
        std::fs::remove_dir_all(&config.dir).map_err(|e| bistro::Error::io(&config.dir, e))?;
    }
    let mut net = Localnet::setup(config)?;
    let summary = net.run()?;
    println!("\nfinal weights (as set on the chain):");
    for (uid, who, share) in &summary.final_weights {
        println!("  uid {uid:>2} {who:<13} {share:.4}");
    }
    println!(
        "adversaries hold {:.2}% of the weight; held-out loss {:.4} -> {:.4}; inexact restores: {}",
        summary.adversary_share * 100.0,
        summary.heldout_loss_start,
        summary.heldout_loss_end,
        summary.inexact_restores
    );
    let dir = net.dir().display();
    println!(
        "charts: {dir}/weights.svg, {dir}/loss.svg; evaluation log: {}",
        net.validator().log_dir().display()
    );
    Ok(summary.honest_beat_adversaries() && summary.adversary_share <= 0.05)
}
