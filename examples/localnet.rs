//! The main demo: a whole bistro network on one machine, no network access,
//! no accounts. A local chain with commit-reveal weights, three validators
//! (50/30/20 % of the stake) and seventeen miners — two honest and one of
//! each adversary of `Behaviour::CAST` — train the tiny model on the sample
//! corpus for a few rounds. Prints a table per round (and a line per
//! validator: lead, verdict, vtrust) and writes charts of the weights, the
//! master's loss and the validators' vtrust.
//!
//! ```text
//! cargo run --release --example localnet -- [--rounds N] [--dir DIR] [--steps N] [--cast NAMES]
//!     [--validators 50,30,20] [--tamper_after ROUND] [--silence_lead ROUND:N]
//! ```

use std::process::ExitCode;

use bistro::cli::{Args, Flag};
use bistro::localnet::{Behaviour, Localnet, LocalnetConfig};

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
        name: "cast",
        value: "NAMES",
        help: "the miners, comma-separated (default: every behaviour once)",
        default: None,
    },
    Flag {
        name: "validators",
        value: "STAKES",
        help: "one validator per stake, most first (comma-separated)",
        default: Some("50,30,20"),
    },
    Flag {
        name: "tamper_after",
        value: "ROUND",
        help: "after this round the lead forges its newest master's lineage record",
        default: None,
    },
    Flag {
        name: "silence_lead",
        value: "ROUND:N",
        help: "after this round the lead stops for N rounds, then comes back",
        default: None,
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
        "Runs a local bistro network: chain, validators, honest and adversarial miners.",
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
    if let Some(cast) = args.extra("cast") {
        config.cast = comma_list("cast", cast, Behaviour::parse)?;
    }
    if let Some(stakes) = args.extra("validators") {
        config.validator_stakes = comma_list("validators", stakes, |s| s.parse().ok())?;
    }
    config.tamper_after_round = args.extra_parsed("tamper_after")?;
    if let Some(silence) = args.extra("silence_lead") {
        let bad = || bistro::Error::InvalidArgument(format!("--silence_lead {silence:?}: ROUND:N"));
        let (after, rounds) = silence.split_once(':').ok_or_else(bad)?;
        config.silence_lead = Some((
            after.parse().map_err(|_| bad())?,
            rounds.parse().map_err(|_| bad())?,
        ));
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
    println!(
        "validators (the miners follow {} at the end):",
        summary.final_lead
    );
    for v in &summary.validators {
        let last = v.vtrust.iter().rev().flatten().next();
        println!(
            "  {:<12} {:>3.0}% of the stake, vtrust {}, verdicts: {}",
            v.name,
            100.0 * v.stake_share,
            last.map_or("-".into(), |t| format!("{t:.3}")),
            v.verdicts.join(", ")
        );
    }
    let dir = net.dir().display();
    println!(
        "charts: {dir}/weights.svg, {dir}/loss.svg, {dir}/vtrust.svg; evaluation log: {}",
        net.validator().log_dir().display()
    );
    // Exit 2 unless honest miners beat every adversary and adversaries hold
    // at most 1 % of the weight (the acceptance test's bound).
    Ok(summary.honest_beat_adversaries() && summary.adversary_share <= 0.01)
}

/// The comma-separated items of flag `--name`'s value, each read by `item`.
fn comma_list<T>(
    name: &str,
    value: &str,
    item: impl Fn(&str) -> Option<T>,
) -> bistro::Result<Vec<T>> {
    value
        .split(',')
        .map(|v| {
            item(v.trim()).ok_or_else(|| {
                bistro::Error::InvalidArgument(format!("--{name}: {v:?} is not valid"))
            })
        })
        .collect()
}
