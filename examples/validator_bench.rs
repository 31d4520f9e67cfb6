//! Benchmark of a validator's round: time per evaluated uid split into
//! download, decode+apply, evaluation and restore, and the validator's peak
//! memory against the model's size while it evaluates dense deltas.
//!
//! ```text
//! cargo run --release --example validator_bench -- [--preset tiny|150m] [--uids N] [--dtype bf16|f32]
//! ```
//!
//! Each uid uploads a dense delta of small random values (it is judged and
//! not merged, so the round measures evaluation alone). Memory is read from
//! `/proc/self/status`: the peak resident set (VmHWM) is reset after the
//! validator has loaded the master, and reported above that baseline.

use std::process::ExitCode;
use std::sync::Arc;

use bistro::chain::{Chain, LocalChain, LocalChainConfig, local::SubnetConfig};
use bistro::codec::{DType, DeltaHeader, Encoding, Limits};
use bistro::data::{PageSource, sample};
use bistro::model::{self, Config, Device};
use bistro::node::SubnetParams;
use bistro::node::log::read_log;
use bistro::node::sealing::seal_target;
use bistro::node::upload::upload_delta;
use bistro::node::validator::{Validator, ValidatorConfig};
use bistro::storage::{BucketCommitment, EndpointPolicy, LocalBucket};
use bistro::{Keypair, Result};
use clap::Parser;
use clap::builder::{PossibleValuesParser, RangedU64ValueParser};

/// Times a validator round and measures its peak memory.
#[derive(Parser, Debug)]
struct Cli {
    /// Model preset
    #[arg(
        long,
        value_name = "NAME",
        default_value = "tiny",
        value_parser = PossibleValuesParser::new(model::PRESETS),
    )]
    preset: String,
    /// Miners to evaluate (1 to 254: each miner's key is seeded by one byte)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 3,
        value_parser = clap::value_parser!(u8).range(1..=254),
    )]
    uids: u8,
    /// Delta values
    #[arg(long, value_name = "T", value_enum, default_value_t = DTypeArg::Bf16)]
    dtype: DTypeArg,
    /// libtorch threads (at least 1)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 2,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..),
    )]
    threads: usize,
}

/// The delta values `--dtype` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum DTypeArg {
    Bf16,
    F32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("validator_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A field of `/proc/self/status` in bytes (Linux).
fn status_bytes(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn reset_peak() {
    // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn run(cli: &Cli) -> Result<()> {
    let (preset, uids, threads) = (cli.preset.clone(), cli.uids, cli.threads);
    let dtype = match cli.dtype {
        DTypeArg::Bf16 => DType::BF16,
        DTypeArg::F32 => DType::F32,
    };
    model::set_threads(threads);
    let dir = tempfile::tempdir().map_err(|e| bistro::Error::io("tempdir", e))?;
    let root = dir
        .path()
        .canonicalize()
        .map_err(|e| bistro::Error::io(dir.path(), e))?;
    let chain = Arc::new(LocalChain::open_or_create(
        root.join("chain"),
        &LocalChainConfig::manual([1; 32]),
    )?);
    chain.add_subnet(1, SubnetConfig::default())?;
    let data: Arc<dyn PageSource> = Arc::new(sample::train()?);
    let params = SubnetParams::new(1, data.params(8, SubnetParams::DEFAULT_ROUND_BLOCKS, 2)?);
    let config = Config::preset(&preset)?;
    let key = |i: u8| Keypair::from_seed([i + 1; 32]);
    let validator_key = key(0)?;
    chain.register(1, &validator_key.public(), &validator_key.public(), 1 << 40)?;
    let buckets = root.join("buckets");
    let bucket = |name: &str| -> Result<(Box<dyn bistro::storage::Bucket>, BucketCommitment)> {
        Ok((
            Box::new(LocalBucket::create(buckets.join(name))?),
            BucketCommitment::local(&buckets, name)?,
        ))
    };
    std::fs::create_dir_all(&buckets).map_err(|e| bistro::Error::io(&buckets, e))?;
    let (vb, vc) = bucket("validator")?;
    let before_model = status_bytes("VmRSS:");
    let chain_dyn: Arc<dyn Chain> = chain.clone();
    let mut validator = Validator::new(
        chain_dyn,
        vb,
        vc,
        validator_key,
        data.clone(),
        ValidatorConfig {
            params: params.clone(),
            model: config.clone(),
            device: Device::Cpu,
            work_dir: root.join("validator"),
            uids_per_round: 0,
            genesis_seed: 1,
            heldout_pages: 0,
            merge: Default::default(),
        },
    )?
    .with_endpoint_policy(EndpointPolicy::Any);
    validator.publish()?;
    let model_bytes = config.parameter_count() * 4;
    let master = validator.master().clone();
    let limits = Limits::for_model(config.parameter_count());
    let deadline = params.deadline_after(0);
    let seal = seal_target(chain.as_ref(), &params, deadline)?;
    for i in 1..=uids {
        let miner = key(i)?;
        let uid = chain.register(1, &miner.public(), &miner.public(), 0)?;
        let (mb, mc) = bucket(&format!("miner-{i}"))?;
        chain.set_commitment(1, &miner, mc.encode()?.as_bytes())?;
        let header = DeltaHeader {
            base_revision: master.revision(),
            block: deadline - 1,
            uid,
            hotkey: miner.public(),
        };
        let mut state = u64::from(i);
        upload_delta(
            mb.as_ref(),
            &root.join("scratch"),
            &miner,
            header,
            &limits,
            &seal,
            |w| {
                for p in master.checkpoint.parameters() {
                    let values: Vec<f32> = (0..p.numel())
                        .map(|_| {
                            state = state
                                .wrapping_mul(6364136223846793005)
                                .wrapping_add(1442695040888963407);
                            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2e-4
                        })
                        .collect();
                    let shape: Vec<u64> = p.shape.iter().map(|&d| d as u64).collect();
                    w.add_tensor(&p.name, &shape, &values, Encoding::Dense(dtype), None)?;
                }
                Ok(())
            },
        )?;
    }
    // The deadline (the validator lists the buckets), then the reveal.
    chain.advance(deadline.saturating_sub(chain.block()?.number))?;
    validator.snapshot(deadline)?;
    chain.advance(
        params
            .reveal_block(deadline)
            .saturating_sub(chain.block()?.number),
    )?;
    let baseline = status_bytes("VmRSS:");
    reset_peak();
    let started = std::time::Instant::now();
    let report = validator.run_round(deadline)?;
    let round = started.elapsed();
    let peak = status_bytes("VmHWM:");
    let log = read_log(validator.log_dir())?;
    let judged: Vec<_> = log.iter().filter(|r| r.evaluation.is_some()).collect();
    let n = judged.len().max(1) as f64;
    let mean = |f: &dyn Fn(&bistro::node::log::Timings) -> u64| {
        judged.iter().map(|r| f(&r.timings_ms) as f64).sum::<f64>() / n
    };
    println!(
        "preset {preset}: {} parameters, {:.1} MB of f32 weights; {} dense {dtype:?} deltas of {} bytes each",
        config.parameter_count(),
        model_bytes as f64 / 1e6,
        judged.len(),
        master_delta_size(&root)
    );
    println!(
        "libtorch threads: {threads}; round took {:.2} s ({} rows)",
        round.as_secs_f64(),
        report.rows.len()
    );
    println!(
        "per evaluated uid (ms): download {:.0}, decode+apply {:.0}, eval {:.0}, restore {:.0}",
        mean(&|t| t.download),
        mean(&|t| t.apply),
        mean(&|t| t.eval),
        mean(&|t| t.restore)
    );
    println!(
        "memory: process before the model {:.0} MB, after loading the master {:.0} MB; peak during the round {:.0} MB = baseline + {:.2}x the model's bytes",
        before_model as f64 / 1e6,
        baseline as f64 / 1e6,
        peak as f64 / 1e6,
        peak.saturating_sub(before_model) as f64 / model_bytes as f64
    );
    Ok(())
}

fn master_delta_size(root: &std::path::Path) -> u64 {
    std::fs::metadata(root.join("validator/deltas/uid-1.delta")).map_or(0, |m| m.len())
}
