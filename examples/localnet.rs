//! The main demo: a whole bistro network on one machine, no network access,
//! no accounts. A local chain with commit-reveal weights, three validators
//! (50/30/20 % of the stake) and seventeen miners — two honest and one of
//! each adversary of `Behaviour::CAST` — train the tiny model on the sample
//! corpus for a few rounds. Prints a table per round (and a line per
//! validator: lead, verdict, vtrust) and writes charts of the weights, the
//! master's loss and the validators' vtrust, and ends by auditing the final
//! lead's last rounds from public data (`node::audit`).
//!
//! ```text
//! cargo run --release --example localnet -- [--rounds N] [--dir DIR] [--steps N] [--cast NAMES]
//!     [--validators 50,30,20] [--tamper_after ROUND] [--silence_lead ROUND:N] [--audit_rounds N]
//! ```

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

use bistro::localnet::{Behaviour, Localnet, LocalnetConfig};
use bistro::model::PRESETS;
use clap::Parser;
use clap::builder::PossibleValuesParser;

/// Runs a local bistro network: chain, validators, honest and adversarial miners.
// Every default is `LocalnetConfig::default()`'s.
#[derive(Parser, Debug)]
struct Cli {
    /// Rounds to run
    #[arg(long, value_name = "N", default_value_t = LocalnetConfig::default().rounds)]
    rounds: u64,
    /// Output folder (replaced)
    #[arg(long, value_name = "DIR", default_value_os_t = LocalnetConfig::default().dir)]
    dir: PathBuf,
    /// Training steps per miner per round
    #[arg(long, value_name = "N", default_value_t = LocalnetConfig::default().steps_per_round)]
    steps: u64,
    /// The miners, comma-separated (the default: every behaviour of the zoo once; `stacker` is opt-in)
    #[arg(
        long,
        value_name = "NAMES",
        default_value_t = List(LocalnetConfig::default().cast),
        value_parser = cast,
    )]
    cast: List<Behaviour>,
    /// One validator per stake, most first (comma-separated)
    #[arg(
        long,
        value_name = "STAKES",
        default_value_t = List(LocalnetConfig::default().validator_stakes),
        value_parser = stakes,
    )]
    validators: List<u64>,
    /// After this round the lead forges its newest master's lineage record
    #[arg(long = "tamper_after", value_name = "ROUND")]
    tamper_after: Option<u64>,
    /// After this round the lead stops for N rounds, then comes back
    #[arg(long = "silence_lead", value_name = "ROUND:N", value_parser = silence_lead)]
    silence_lead: Option<(u64, u64)>,
    /// Model preset
    #[arg(
        long,
        value_name = "NAME",
        default_value_t = LocalnetConfig::default().preset,
        value_parser = PossibleValuesParser::new(PRESETS),
    )]
    preset: String,
    /// At the end, audit the final lead's last N rounds from public data (0: no audit)
    #[arg(long = "audit_rounds", value_name = "N", default_value_t = LocalnetConfig::default().audit_rounds)]
    audit_rounds: usize,
}

/// A comma-separated list (`--cast`, `--validators`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct List<T>(Vec<T>);

impl<T: fmt::Display> fmt::Display for List<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{item}")?;
        }
        Ok(())
    }
}

/// The comma-separated items of `value`, each read by `item` (`what` says
/// what an item must be).
fn comma_list<T>(
    value: &str,
    what: &str,
    item: impl Fn(&str) -> Option<T>,
) -> Result<List<T>, String> {
    value
        .split(',')
        .map(|v| item(v.trim()).ok_or_else(|| format!("{v:?} is not {what}")))
        .collect::<Result<_, _>>()
        .map(List)
}

fn cast(value: &str) -> Result<List<Behaviour>, String> {
    let known = format!("one of {}", List(Behaviour::known().collect()));
    comma_list(value, &known, Behaviour::parse)
}

fn stakes(value: &str) -> Result<List<u64>, String> {
    comma_list(value, "a whole number", |s| s.parse().ok())
}

/// `ROUND:N`.
fn silence_lead(value: &str) -> Result<(u64, u64), String> {
    let bad = || format!("{value:?} is not ROUND:N");
    let (after, rounds) = value.split_once(':').ok_or_else(bad)?;
    Ok((
        after.parse().map_err(|_| bad())?,
        rounds.parse().map_err(|_| bad())?,
    ))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("localnet: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> bistro::Result<bool> {
    let config = LocalnetConfig {
        rounds: cli.rounds,
        dir: cli.dir,
        steps_per_round: cli.steps,
        cast: cli.cast.0,
        validator_stakes: cli.validators.0,
        tamper_after_round: cli.tamper_after,
        silence_lead: cli.silence_lead,
        preset: cli.preset,
        audit_rounds: cli.audit_rounds,
        ..LocalnetConfig::default()
    };
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
    if let Some(audit) = &summary.audit {
        println!(
            "audit of {} from public data: {} re-measured, {} rejections re-checked, {} merges \
             recomputed, weights {}; {} findings",
            audit.validator,
            audit.remeasured,
            audit.rechecked,
            audit.merges_verified,
            if audit.weights_match {
                "reproduced"
            } else {
                "not reproduced"
            },
            audit.findings.len()
        );
    }
    // Exit 2 unless honest miners beat every adversary, adversaries hold at
    // most 1 % of the weight (the acceptance test's bound) and the audit
    // found nothing.
    let audited = summary.audit.as_ref().is_none_or(|a| a.findings.is_empty());
    Ok(summary.honest_beat_adversaries() && summary.adversary_share <= 0.01 && audited)
}
