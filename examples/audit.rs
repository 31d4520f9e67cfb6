//! Audits a bistro validator from public data alone: the chain, the public
//! buckets and the dataset (`node::audit`; `docs/protocol.md`, "Auditing a
//! validator"). Re-derives each audited round's pages from the reveal hash,
//! re-measures every loss with the published master and deltas, re-applies
//! the scoring rule, the moving averages and the chain's `u16` weights,
//! re-checks rejections and recomputes the round's merge from its lineage
//! record; prints every difference.
//!
//! ```text
//! cargo run --release --example audit -- <VALIDATOR HOTKEY> [--round N | --last K]
//!     [--chain.dir DIR | --subtensor.network NET] [--netuid N] [--device DEV]
//!     [--moved-from DIR] [--tolerance X] [--work.dir DIR]
//! ```
//!
//! On the embedded network the hotkey is the one the local network's audit
//! (or the validator example) prints. A local network copied elsewhere is
//! audited with `--chain.dir <copy>/chain --moved-from <its old folder>`.
//! The wallet and bucket flags are accepted and not used: an auditor needs
//! no keys.
//!
//! Exit status: 0 when every published value reproduced, 1 when there are
//! findings, 2 for a bad command line, 3 when the audit itself failed.

use std::path::PathBuf;
use std::process::ExitCode;

use bistro::PublicKey;
use bistro::cli::{Args, ChainChoice, parse_path};
use bistro::model::Device;
use bistro::node::audit::{AuditConfig, DEFAULT_LOSS_TOLERANCE, Rounds, audit};
use bistro::roles::dataset;
use bistro::storage::EndpointPolicy;
use clap::Parser;

/// Audits a bistro validator from public data: every loss, score, average, merge and weight.
#[derive(Parser, Debug)]
struct Cli {
    /// The validator's hotkey (SS58, or 64 hex digits)
    validator: PublicKey,
    #[command(flatten)]
    args: Args,
    /// Audit the round with this deadline
    #[arg(long, value_name = "N", conflicts_with = "last")]
    round: Option<u64>,
    /// Audit the last K published rounds
    #[arg(long, value_name = "K", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..))]
    last: u64,
    /// Tolerance on re-measured losses (relative above 1, absolute below)
    #[arg(long, value_name = "X", default_value_t = DEFAULT_LOSS_TOLERANCE)]
    tolerance: f64,
    /// The folder a copied local network ran in (absolute, as it was): its
    /// file:// commitments are read under the folder holding --chain.dir instead
    #[arg(long = "moved-from", value_name = "DIR", value_parser = parse_path)]
    moved_from: Option<PathBuf>,
    /// Downloads go here
    #[arg(long = "work.dir", value_name = "DIR", default_value = "~/.bistro/audit",
          value_parser = parse_path)]
    work_dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("audit: {e}");
            ExitCode::from(3)
        }
    }
}

fn run(cli: &Cli) -> bistro::Result<bool> {
    if !(cli.tolerance.is_finite() && cli.tolerance >= 0.0) {
        return Err(bistro::Error::InvalidArgument(format!(
            "--tolerance {} must be a finite number, 0 or more",
            cli.tolerance
        )));
    }
    let choice = cli.args.chain_choice()?;
    let embedded = matches!(choice, ChainChoice::Embedded(_));
    let file_root = match (&cli.moved_from, &choice) {
        (Some(from), ChainChoice::Embedded(dir)) => {
            let dir = std::fs::canonicalize(dir).map_err(|e| bistro::Error::io(dir, e))?;
            let to = dir.parent().unwrap_or(&dir).to_path_buf();
            // The old folder may be gone: made absolute, not canonicalized
            // (commitments name the absolute, canonical folder it was).
            let here = std::env::current_dir().map_err(|e| bistro::Error::io(".", e))?;
            Some((here.join(from), to))
        }
        (Some(_), ChainChoice::Subtensor(_)) => {
            return Err(bistro::Error::InvalidArgument(
                "--moved-from is for a copied local network (the embedded chain)".into(),
            ));
        }
        (None, _) => None,
    };
    let chain = cli.args.open_chain()?;
    let data = dataset(embedded)?;
    let config = AuditConfig {
        device: Device::parse(&cli.args.device)?,
        tolerance: cli.tolerance,
        // A local network's buckets are folders; on Bittensor only public
        // https:// endpoints are contacted.
        policy: if embedded {
            EndpointPolicy::Any
        } else {
            EndpointPolicy::Public
        },
        file_root,
        ..AuditConfig::new(&cli.work_dir)
    };
    let rounds = match cli.round {
        Some(deadline) => Rounds::Deadline(deadline),
        None => Rounds::Last(cli.last as usize),
    };
    let report = audit(
        chain.as_ref(),
        cli.args.netuid,
        &cli.validator,
        data.as_ref(),
        rounds,
        &config,
        &mut |line| eprint!("\r{line:<60}"),
    )?;
    eprint!("\r{:<60}\r", "");
    print!("{report}");
    Ok(report.is_clean())
}
