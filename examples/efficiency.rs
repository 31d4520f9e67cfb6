//! Training efficiency: how good the network's master gets for the tokens
//! its miners train on, against centralized AdamW on the same tokens and
//! against one miner alone.
//!
//! From one genesis master, on the sample corpus, it trains:
//! - **network**: K honest miners and one validator through the SDK's own
//!   [`Miner`] and [`Validator`] (train, upload, judge, merge with the outer
//!   optimizer, publish) on a local chain with local buckets, R rounds of H
//!   steps;
//! - **centralized**: one AdamW trainer, H × R steps, each on the K miners'
//!   pages of that step together (batch K × the miner batch: what
//!   data-parallel training on K workers computes), same schedule;
//! - **alone**: one trainer on miner 0's pages only, H × R steps.
//!
//! Prints the held-out loss against tokens trained on for all three, the
//! final ratios and the tokens each needs to reach the centralized run's
//! final loss; writes `efficiency.svg` and `efficiency.json` into `--dir`.
//!
//! The two baselines do not depend on how the network merges: the pages
//! each step trains on come from the miners' windows, not from the master.
//! `--baselines FILE` takes them from an earlier run's `efficiency.json`
//! instead of training them again (the slower two thirds of a run), after
//! checking that the file's settings are this run's but for the merge, and
//! that its page plan (digest) and per-round token counts are this run's;
//! the summary names the file.
//!
//! ```text
//! cargo run --release --example efficiency -- [--miners K] [--steps H] [--rounds R]
//!     [--preset tiny] [--seed N] [--merge mean|nesterov-0.7-0.9]
//!     [--weighting uniform|score] [--top G] [--window-pages N] [--baselines FILE]
//!     [--dir out/efficiency]
//! ```
//!
//! `--window-pages` sets the subnet's window (the local network's 8 pages by
//! default): with H steps of 2 pages each, a miner visits each page of a
//! window of 8 pages 2H/8 times per round, and the window size decides how
//! far the miners' data differ from one another. With 64 pages (each page
//! about once a round) the K = 4, H = 32, R = 12 run ends 1.4 % above
//! centralized AdamW, with 8 pages 4.6 %; larger windows also make an honest
//! delta's specific gain smaller, so fewer are paid (`BENCHMARKS.md`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use bistro::chain::{Chain, LocalChain, LocalChainConfig, local::SubnetConfig};
use bistro::chart::LineChart;
use bistro::data::{Batch, PageSource, sample};
use bistro::localnet::{LocalnetConfig, NETUID};
use bistro::model::outer::{MergeConfig, MergeRule, MergeWeighting};
use bistro::model::{self, Config, Device, Model, TrainConfig, Trainer};
use bistro::node::miner::{Miner, MinerConfig, training_pages};
use bistro::node::validator::{Validator, ValidatorConfig};
use bistro::node::{DeltaEncoding, SubnetParams};
use bistro::storage::{Bucket, BucketCommitment, EndpointPolicy, LocalBucket};
use bistro::{Error, Keypair, Result};
use clap::Parser;
use clap::builder::{PossibleValuesParser, RangedU64ValueParser};

/// Measures the network's training efficiency against centralized AdamW and one miner alone.
#[derive(Parser, Debug)]
struct Cli {
    /// Honest miners in the network (1 to 16)
    #[arg(
        long,
        value_name = "K",
        default_value_t = 2,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..=16),
    )]
    miners: usize,
    /// Training steps per miner per round (1 to 10000)
    #[arg(
        long,
        value_name = "H",
        default_value_t = 8,
        value_parser = clap::value_parser!(u64).range(1..=10_000),
    )]
    steps: u64,
    /// Rounds (1 to 1000)
    #[arg(
        long,
        value_name = "R",
        default_value_t = 6,
        value_parser = clap::value_parser!(u64).range(1..=1000),
    )]
    rounds: u64,
    /// Model preset
    #[arg(
        long,
        value_name = "NAME",
        default_value = "tiny",
        value_parser = PossibleValuesParser::new(model::PRESETS),
    )]
    preset: String,
    /// Seeds keys, the chain and the genesis master
    #[arg(long, value_name = "N", default_value_t = 7)]
    seed: u64,
    /// The validator's outer optimizer: mean or nesterov-LR-MOMENTUM (LR > 0, MOMENTUM in [0, 1))
    #[arg(long, value_name = "RULE", default_value = "mean", value_parser = merge_rule)]
    merge: MergeRule,
    /// Weights of the merged deltas: uniform or score
    #[arg(long, value_name = "W", default_value = "uniform", value_parser = weighting)]
    weighting: MergeWeighting,
    /// Merge only the best G deltas by score (0 = all; at most 16)
    #[arg(
        long,
        value_name = "G",
        default_value_t = 0,
        value_parser = RangedU64ValueParser::<usize>::new().range(0..=16),
    )]
    top: usize,
    /// Peak learning rate, miners and baselines (in (0, 1])
    #[arg(long, value_name = "X", default_value_t = 3e-3, value_parser = learning_rate)]
    lr: f64,
    /// Pages per miner training step (1 to 64)
    #[arg(
        long = "pages-per-step",
        value_name = "N",
        default_value_t = 2,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..=64),
    )]
    pages_per_step: usize,
    /// Pages in each miner's window (8, the local network's, to the corpus's size)
    #[arg(
        long = "window-pages",
        value_name = "N",
        default_value_t = LocalnetConfig::default().window_pages,
        value_parser = clap::value_parser!(u64).range(8..),
    )]
    window_pages: u64,
    /// The miners' delta encoding
    #[arg(long, value_name = "ENC", default_value = "dense-bf16", value_parser = encoding)]
    encoding: String,
    /// cpu, cuda or cuda:N; a bare --device means cuda
    #[arg(
        long,
        value_name = "DEV",
        default_value = "cpu",
        num_args = 0..=1,
        default_missing_value = "cuda",
        value_parser = device,
    )]
    device: String,
    /// Output folder (replaced)
    #[arg(long, value_name = "DIR", default_value = "out/efficiency")]
    dir: PathBuf,
    /// Take the baselines from an earlier run's efficiency.json (same settings but the merge)
    #[arg(long, value_name = "FILE")]
    baselines: Option<PathBuf>,
}

fn merge_rule(spec: &str) -> std::result::Result<MergeRule, String> {
    MergeRule::parse(spec).ok_or_else(|| {
        format!("{spec:?} is not mean or nesterov-LR-MOMENTUM (LR > 0, MOMENTUM in [0, 1))")
    })
}

fn weighting(name: &str) -> std::result::Result<MergeWeighting, String> {
    match name {
        "uniform" => Ok(MergeWeighting::Uniform),
        "score" => Ok(MergeWeighting::Score),
        other => Err(format!("{other:?} is not uniform or score")),
    }
}

fn learning_rate(value: &str) -> std::result::Result<f64, String> {
    let lr: f64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    if !(lr.is_finite() && lr > 0.0 && lr <= 1.0) {
        return Err(format!("{lr} is out of range: it must be in (0, 1]"));
    }
    Ok(lr)
}

fn encoding(spec: &str) -> std::result::Result<String, String> {
    DeltaEncoding::parse(spec)
        .map(|_| spec.to_string())
        .ok_or_else(|| format!("{spec:?} is not an encoding"))
}

fn device(name: &str) -> std::result::Result<String, String> {
    match parse_device(name) {
        Ok(_) => Ok(name.to_string()),
        Err(Error::InvalidArgument(message)) => Err(message),
        Err(e) => Err(e.to_string()),
    }
}

/// Held-out pages every run is measured on (the validator's count).
const HELDOUT_PAGES: usize = 16;
/// The protocol parameters: the local network's (`LocalnetConfig::params`)
/// with windows of `s.window_pages`.
fn subnet_params(s: &Settings, data: &dyn PageSource) -> Result<SubnetParams> {
    LocalnetConfig {
        window_pages: s.window_pages,
        ..LocalnetConfig::default()
    }
    .params(data)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("efficiency: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The run's settings, checked.
#[derive(Clone, Debug, serde::Serialize)]
struct Settings {
    miners: usize,
    steps: u64,
    rounds: u64,
    preset: String,
    seed: u64,
    merge: MergeConfig,
    learning_rate: f64,
    pages_per_step: usize,
    window_pages: u64,
    encoding: String,
    device: String,
    #[serde(skip)]
    dir: PathBuf,
    #[serde(skip)]
    baselines: Option<PathBuf>,
}

/// The settings of a parsed command line (each flag checked as it was read).
fn settings(cli: Cli) -> Result<Settings> {
    let merge = MergeConfig {
        rule: cli.merge,
        weighting: cli.weighting,
        top: (cli.top > 0).then_some(cli.top),
    };
    merge.validate()?;
    Ok(Settings {
        miners: cli.miners,
        steps: cli.steps,
        rounds: cli.rounds,
        preset: cli.preset,
        seed: cli.seed,
        merge,
        learning_rate: cli.lr,
        pages_per_step: cli.pages_per_step,
        window_pages: cli.window_pages,
        encoding: cli.encoding,
        device: cli.device,
        dir: cli.dir,
        baselines: cli.baselines,
    })
}

fn parse_device(s: &str) -> Result<Device> {
    match s {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        _ => s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(|| Error::InvalidArgument(format!("--device {s:?} is not cpu or cuda:N"))),
    }
}

fn keypair(seed: u64, name: &str) -> Result<Keypair> {
    let mut h = bistro::digest::Hasher::new();
    h.update(b"bistro.efficiency.key")
        .update(&seed.to_le_bytes())
        .update(name.as_bytes());
    Keypair::from_seed(h.finalize().0)
}

fn local_bucket(dir: &Path, name: &str) -> Result<(Box<dyn Bucket>, BucketCommitment)> {
    let parent = dir.join("buckets");
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let parent = parent.canonicalize().map_err(|e| Error::io(&parent, e))?;
    let bucket = LocalBucket::create(parent.join(name))?;
    Ok((Box::new(bucket), BucketCommitment::local(&parent, name)?))
}

/// The training settings every run shares: warmup then cosine over H × R steps.
fn train_config(s: &Settings) -> TrainConfig {
    TrainConfig {
        learning_rate: s.learning_rate,
        min_learning_rate: s.learning_rate / 10.0,
        warmup_steps: 4,
        total_steps: s.steps * s.rounds,
        ..TrainConfig::default()
    }
}

/// The held-out loss of `model` on the validator's held-out pages.
fn heldout_loss(model: &Model, heldout: &Arc<dyn PageSource>, seq_len: usize) -> Result<f64> {
    let n = heldout.num_pages();
    let k = (HELDOUT_PAGES as u64).min(n);
    let ids: Vec<u64> = (0..k).map(|i| i * n / k).collect();
    model.loss(&heldout.batch(&ids, seq_len)?)
}

/// Real tokens in a batch.
fn tokens(batch: &Batch) -> u64 {
    batch.mask.iter().map(|&m| u64::from(m)).sum()
}

/// A curve of held-out loss against tokens trained on.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Curve {
    /// `(tokens, held-out loss)` after each round (first point: genesis).
    points: Vec<(u64, f64)>,
}

impl Curve {
    fn last(&self) -> (u64, f64) {
        self.points.last().copied().unwrap_or((0, f64::NAN))
    }

    /// Tokens needed to reach `target` (linear between measured points);
    /// `None` if the curve never gets there.
    fn tokens_to_reach(&self, target: f64) -> Option<f64> {
        let first = self.points.first()?;
        if first.1 <= target {
            return Some(first.0 as f64);
        }
        self.points.windows(2).find_map(|w| {
            let ((t0, l0), (t1, l1)) = (w[0], w[1]);
            (l1 <= target).then(|| {
                let f = if l0 > l1 {
                    (l0 - target) / (l0 - l1)
                } else {
                    1.0
                };
                t0 as f64 + f * (t1 - t0) as f64
            })
        })
    }
}

/// The pages each miner trained on in each step of each round.
type PagePlan = Vec<Vec<Vec<Vec<u64>>>>;

/// A baseline: its name and which miners' pages of each step its trainer
/// trains on.
type Baseline = (&'static str, fn(usize) -> bool);

/// The two baselines: centralized (every miner's pages) and alone (miner 0's).
const BASELINES: [Baseline; 2] = [("centralized", |_| true), ("alone", |k| k == 0)];

/// The BLAKE3 of a page plan (every page id in order, with the shape).
fn plan_digest(plan: &PagePlan) -> String {
    let mut h = bistro::digest::Hasher::new();
    h.update(b"bistro.efficiency.plan");
    for round in plan {
        h.update(&(round.len() as u64).to_le_bytes());
        for step in round {
            h.update(&(step.len() as u64).to_le_bytes());
            for pages in step {
                h.update(&(pages.len() as u64).to_le_bytes());
                for page in pages {
                    h.update(&page.to_le_bytes());
                }
            }
        }
    }
    h.finalize().to_hex()
}

/// The tokens trained on by the end of each round (first: 0) by a trainer
/// on the pages of the miners `which` selects.
fn token_counts(
    s: &Settings,
    data: &Arc<dyn PageSource>,
    plan: &PagePlan,
    which: &dyn Fn(usize) -> bool,
) -> Result<Vec<u64>> {
    let seq_len = subnet_params(s, data.as_ref())?.seq_len;
    let mut counts = vec![0];
    let mut trained = 0;
    for steps in plan {
        for step in steps {
            for (k, pages) in step.iter().enumerate() {
                if which(k) {
                    trained += tokens(&data.batch(pages, seq_len)?);
                }
            }
        }
        counts.push(trained);
    }
    Ok(counts)
}

/// What the validator did with one round's deltas.
#[derive(Clone, Copy, Debug, serde::Serialize)]
struct RoundOutcome {
    /// Deltas merged into the next master.
    merged: usize,
    /// Deltas paid (scored above zero: shown to be the miner's own work).
    paid: usize,
    /// Whether a new master was published (otherwise the master was kept).
    published: bool,
    /// Whether the momentum step was refused and the plain mean went in.
    restarted: bool,
}

/// What the network run produced.
struct NetworkRun {
    curve: Curve,
    plan: PagePlan,
    rounds: Vec<RoundOutcome>,
    seconds: f64,
}

fn run_network(
    s: &Settings,
    data: &Arc<dyn PageSource>,
    heldout: &Arc<dyn PageSource>,
    config: &Config,
    device: Device,
) -> Result<NetworkRun> {
    let started = std::time::Instant::now();
    let dir = &s.dir;
    let mut genesis = [0u8; 32];
    genesis[..8].copy_from_slice(&s.seed.to_le_bytes());
    let chain = Arc::new(LocalChain::open_or_create(
        dir.join("chain"),
        &LocalChainConfig::manual(genesis),
    )?);
    chain.add_subnet(NETUID, SubnetConfig::default())?;
    let params = subnet_params(s, data.as_ref())?;
    let seq_len = params.seq_len;
    let coldkey = keypair(s.seed, "coldkey")?.public();
    let validator_key = keypair(s.seed, "validator")?;
    chain.register(NETUID, &validator_key.public(), &coldkey, 1_000_000_000_000)?;
    let (bucket, commitment) = local_bucket(dir, "validator")?;
    let chain_dyn: Arc<dyn Chain> = chain.clone();
    let mut validator = Validator::new(
        chain_dyn.clone(),
        bucket,
        commitment,
        validator_key,
        data.clone(),
        ValidatorConfig {
            params: params.clone(),
            model: config.clone(),
            device,
            work_dir: dir.join("validator"),
            uids_per_round: 0,
            genesis_seed: s.seed,
            heldout_pages: HELDOUT_PAGES,
            merge: s.merge,
        },
    )?
    .with_heldout(heldout.clone())
    .with_endpoint_policy(EndpointPolicy::Any);
    validator.publish()?;
    let encoding = DeltaEncoding::parse(&s.encoding)
        .ok_or_else(|| Error::InvalidArgument(format!("encoding {:?}", s.encoding)))?;
    let mut miners = Vec::new();
    for i in 0..s.miners {
        let name = format!("miner-{i}");
        let key = keypair(s.seed, &name)?;
        chain.register(NETUID, &key.public(), &coldkey, 0)?;
        let (bucket, commitment) = local_bucket(dir, &name)?;
        chain.set_commitment(NETUID, &key, commitment.encode()?.as_bytes())?;
        miners.push(Miner::new(
            chain_dyn.clone(),
            bucket,
            commitment,
            key,
            data.clone(),
            MinerConfig {
                params: params.clone(),
                model: config.clone(),
                train: train_config(s),
                device,
                steps_per_upload: s.steps,
                pages_per_step: s.pages_per_step,
                encoding,
                work_dir: dir.join(&name),
            },
        )?);
    }

    // The genesis master the baselines start from, as the validator published it.
    let genesis = dir.join("genesis.safetensors");
    std::fs::copy(validator.master().checkpoint.path(), &genesis)
        .map_err(|e| Error::io(&genesis, e))?;
    let start = validator
        .heldout_loss()?
        .ok_or_else(|| Error::InvalidArgument("no held-out loss".into()))?;
    let mut curve = Curve {
        points: vec![(0, start)],
    };
    let mut plan = PagePlan::new();
    let mut rounds = Vec::new();
    let mut trained_tokens = 0u64;
    for round in 0..s.rounds {
        let block = chain.block()?.number;
        let deadline = params.deadline_after(block);
        // Each miner's pages for this round, as it will draw them.
        let mut round_plan = vec![Vec::new(); s.steps as usize];
        for miner in miners.iter_mut() {
            miner.sync_master()?;
            let first_step = miner.optimizer_steps().unwrap_or(0);
            let window = miner.window_for(deadline)?;
            for (i, step) in round_plan.iter_mut().enumerate() {
                step.push(training_pages(
                    &window,
                    &miner.hotkey(),
                    deadline,
                    first_step + i as u64,
                    s.pages_per_step,
                ));
            }
        }
        for step in &round_plan {
            for pages in step {
                trained_tokens += tokens(&data.batch(pages, seq_len)?);
            }
        }
        let results: Vec<Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = miners
                .iter_mut()
                .map(|miner| {
                    scope.spawn(move || -> Result<()> {
                        model::set_threads(1);
                        miner.train(deadline, s.steps)?;
                        miner.upload(block)?;
                        Ok(())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::InvalidArgument("a miner panicked".into())))
                })
                .collect()
        });
        for r in results {
            r?;
        }
        // The deadline: the validator lists the buckets, then the reveal.
        chain.advance(deadline.saturating_sub(chain.block()?.number))?;
        validator.snapshot(deadline)?;
        let reveal = params.reveal_block(deadline);
        chain.advance(reveal.saturating_sub(chain.block()?.number))?;
        model::set_threads(2);
        let report = validator.run_round(deadline)?;
        let loss = report.heldout_loss.unwrap_or(f64::NAN);
        let merged = report.rows.iter().filter(|r| r.merged).count();
        let paid = report.rows.iter().filter(|r| r.score > 0.0).count();
        let published = report.master_after != report.master_before;
        // A refused momentum step falls back to the plain mean.
        let restarted = s.merge.rule.has_momentum() && report.merged_with == Some(MergeRule::Mean);
        println!(
            "  network round {}/{}: {merged} of {} deltas merged, {paid} paid{}, held-out loss {loss:.4}",
            round + 1,
            s.rounds,
            s.miners,
            match (published, restarted) {
                (false, _) => " (master kept)",
                (true, true) => " (momentum restarted: plain mean)",
                (true, false) => "",
            },
        );
        curve.points.push((trained_tokens, loss));
        plan.push(round_plan);
        rounds.push(RoundOutcome {
            merged,
            paid,
            published,
            restarted,
        });
    }
    Ok(NetworkRun {
        curve,
        plan,
        rounds,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One trainer from the genesis master over the plan's steps, each step on
/// the pages of the miners `which` selects; measured after every round.
#[allow(clippy::too_many_arguments)]
fn run_trainer(
    s: &Settings,
    data: &Arc<dyn PageSource>,
    heldout: &Arc<dyn PageSource>,
    genesis: &Path,
    config: &Config,
    device: Device,
    plan: &PagePlan,
    which: &dyn Fn(usize) -> bool,
    label: &str,
) -> Result<(Curve, f64)> {
    let started = std::time::Instant::now();
    let seq_len = subnet_params(s, data.as_ref())?.seq_len;
    let model = Model::load(genesis, config.clone(), device)?;
    let mut trainer = Trainer::new(model, train_config(s))?;
    let mut curve = Curve {
        points: vec![(0, heldout_loss(trainer.model(), heldout, seq_len)?)],
    };
    let mut trained = 0u64;
    for (round, steps) in plan.iter().enumerate() {
        for step in steps {
            let ids: Vec<u64> = step
                .iter()
                .enumerate()
                .filter(|(k, _)| which(*k))
                .flat_map(|(_, pages)| pages.iter().copied())
                .collect();
            let batch = data.batch(&ids, seq_len)?;
            trained += tokens(&batch);
            trainer.train_step(&batch)?;
        }
        let loss = heldout_loss(trainer.model(), heldout, seq_len)?;
        println!(
            "  {label} round {}/{}: held-out loss {loss:.4}",
            round + 1,
            s.rounds
        );
        curve.points.push((trained, loss));
    }
    Ok((curve, started.elapsed().as_secs_f64()))
}

#[derive(serde::Serialize)]
struct RunSummary {
    curve: Curve,
    final_tokens: u64,
    final_loss: f64,
    tokens_to_reach_centralized: Option<f64>,
    seconds: f64,
}

#[derive(serde::Serialize)]
struct Summary {
    settings: Settings,
    network: RunSummary,
    centralized: RunSummary,
    alone: RunSummary,
    /// Final held-out loss, network / centralized.
    network_over_centralized: f64,
    /// Final held-out loss, network / alone.
    network_over_alone: f64,
    /// Whether the network is within 2% of centralized (the goal).
    within_two_percent: bool,
    /// What the validator did in each round of the network run.
    rounds: Vec<RoundOutcome>,
    /// The BLAKE3 of the pages every step trained on ([`plan_digest`]).
    plan_digest: String,
    /// The earlier run whose baselines this one reused (`--baselines`).
    baselines_from: Option<PathBuf>,
}

/// An earlier run's summary whose baselines a run may reuse (`--baselines`).
struct EarlierRun {
    path: PathBuf,
    summary: serde_json::Value,
}

/// The error refusing the earlier run `path` as a source of baselines.
fn refuse_baselines(path: &Path, why: String) -> Error {
    Error::InvalidArgument(format!("--baselines {}: {why}", path.display()))
}

impl EarlierRun {
    fn refuse(&self, why: String) -> Error {
        refuse_baselines(&self.path, why)
    }
}

/// Reads the earlier run `path` and checks, before anything is trained,
/// that its settings are `s` but for the merge.
fn earlier_run(path: &Path, s: &Settings) -> Result<EarlierRun> {
    use serde_json::Value;
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let earlier = EarlierRun {
        path: path.to_path_buf(),
        summary: serde_json::from_slice(&bytes)
            .map_err(|e| refuse_baselines(path, e.to_string()))?,
    };
    let without_merge = |v: &Value| {
        let mut v = v.clone();
        if let Some(map) = v.as_object_mut() {
            map.remove("merge");
        }
        v
    };
    let ours = serde_json::to_value(s).map_err(|e| earlier.refuse(e.to_string()))?;
    let theirs = &earlier.summary["settings"];
    if without_merge(theirs) != without_merge(&ours) {
        return Err(earlier.refuse(format!("its settings {theirs} are not this run's {ours}")));
    }
    Ok(earlier)
}

/// The centralized and alone baselines (curve, seconds) of `earlier`,
/// after checking that they are this run's: the same genesis held-out
/// loss, the same page plan (its digest, when the file has one) and the
/// same tokens after every round.
fn reuse_baselines(
    s: &Settings,
    earlier: &EarlierRun,
    data: &Arc<dyn PageSource>,
    network: &NetworkRun,
) -> Result<((Curve, f64), (Curve, f64))> {
    use serde_json::Value;
    let refuse = |why: String| earlier.refuse(why);
    let digest = plan_digest(&network.plan);
    match earlier.summary.get("plan_digest").and_then(Value::as_str) {
        Some(theirs) if theirs != digest => {
            return Err(refuse(format!("page plan {theirs}, this run's {digest}")));
        }
        _ => {}
    }
    let genesis_loss = network.curve.points[0].1;
    let baseline = |(name, which): Baseline| -> Result<(Curve, f64)> {
        let run = &earlier.summary[name];
        let curve: Curve = serde_json::from_value(run["curve"].clone())
            .map_err(|e| refuse(format!("{name}: {e}")))?;
        let tokens: Vec<u64> = curve.points.iter().map(|p| p.0).collect();
        if tokens != token_counts(s, data, &network.plan, &which)? {
            return Err(refuse(format!(
                "{name} trained on other pages: tokens {tokens:?}"
            )));
        }
        if curve.points.first().map(|p| p.1.to_bits()) != Some(genesis_loss.to_bits()) {
            return Err(refuse(format!(
                "{name} started from another genesis master"
            )));
        }
        Ok((curve, run["seconds"].as_f64().unwrap_or(f64::NAN)))
    };
    let [centralized, alone] = BASELINES;
    Ok((baseline(centralized)?, baseline(alone)?))
}

fn summarize(curve: Curve, target: f64, seconds: f64) -> RunSummary {
    let (final_tokens, final_loss) = curve.last();
    RunSummary {
        tokens_to_reach_centralized: curve.tokens_to_reach(target),
        curve,
        final_tokens,
        final_loss,
        seconds,
    }
}

fn run(cli: Cli) -> Result<()> {
    let s = settings(cli)?;
    // Read before the output folder is replaced (it may hold the file).
    let earlier = s
        .baselines
        .as_deref()
        .map(|path| earlier_run(path, &s))
        .transpose()?;
    if s.dir.join("chain").exists() {
        std::fs::remove_dir_all(&s.dir).map_err(|e| Error::io(&s.dir, e))?;
    }
    std::fs::create_dir_all(&s.dir).map_err(|e| Error::io(&s.dir, e))?;
    model::set_threads(1);
    let device = parse_device(&s.device)?;
    let config = Config::preset(&s.preset)?;
    let data: Arc<dyn PageSource> = Arc::new(sample::train()?);
    let heldout: Arc<dyn PageSource> = Arc::new(sample::heldout()?);
    println!(
        "efficiency: {} miners x {} steps x {} rounds, model {} ({} parameters), merge {}{}{}",
        s.miners,
        s.steps,
        s.rounds,
        s.preset,
        config.parameter_count(),
        s.merge.rule,
        if s.merge.weighting == MergeWeighting::Score {
            ", score-weighted"
        } else {
            ""
        },
        s.merge
            .top
            .map(|g| format!(", top {g}"))
            .unwrap_or_default(),
    );
    let network = run_network(&s, &data, &heldout, &config, device)?;
    let genesis_path = s.dir.join("genesis.safetensors");
    model::set_threads(2);
    let ((centralized, c_secs), (alone, a_secs)) = match &earlier {
        Some(earlier) => {
            let reused = reuse_baselines(&s, earlier, &data, &network)?;
            println!("  baselines: from {} (checked)", earlier.path.display());
            reused
        }
        None => {
            let train = |(label, which): Baseline| {
                run_trainer(
                    &s,
                    &data,
                    &heldout,
                    &genesis_path,
                    &config,
                    device,
                    &network.plan,
                    &which,
                    label,
                )
            };
            let [centralized, alone] = BASELINES;
            (train(centralized)?, train(alone)?)
        }
    };
    let target = centralized.last().1;
    let summary = Summary {
        network_over_centralized: network.curve.last().1 / target,
        network_over_alone: network.curve.last().1 / alone.last().1,
        within_two_percent: network.curve.last().1 <= target * 1.02,
        rounds: network.rounds.clone(),
        plan_digest: plan_digest(&network.plan),
        baselines_from: s.baselines.clone(),
        network: summarize(network.curve.clone(), target, network.seconds),
        centralized: summarize(centralized, target, c_secs),
        alone: summarize(alone, target, a_secs),
        settings: s.clone(),
    };
    print_summary(&summary);
    let mut chart = LineChart::new(
        &format!(
            "held-out loss vs tokens: K={} H={} R={} ({}, merge {})",
            s.miners, s.steps, s.rounds, s.preset, s.merge.rule
        ),
        "tokens trained on (millions)",
        "held-out loss",
    );
    let millions = |c: &Curve| -> Vec<(f64, f64)> {
        c.points.iter().map(|&(t, l)| (t as f64 / 1e6, l)).collect()
    };
    chart
        .add("network", millions(&summary.network.curve))
        .add("centralized AdamW", millions(&summary.centralized.curve))
        .add("one miner alone", millions(&summary.alone.curve));
    let svg = s.dir.join("efficiency.svg");
    chart.write(&svg)?;
    let json = serde_json::to_vec_pretty(&summary)
        .map_err(|e| Error::InvalidArgument(format!("summary: {e}")))?;
    let path = s.dir.join("efficiency.json");
    bistro::storage::write_file_atomic(&path, &json)?;
    println!("chart: {}; summary: {}", svg.display(), path.display());
    Ok(())
}

fn print_summary(s: &Summary) {
    println!("\nheld-out loss against tokens trained on:");
    println!(
        "{:>6} {:>12} {:>9} {:>12} {:>11} {:>12} {:>9}",
        "round", "tokens", "network", "tokens", "centralized", "tokens", "alone"
    );
    let rows = s.network.curve.points.len();
    for i in 0..rows {
        let n = s.network.curve.points[i];
        let c = s
            .centralized
            .curve
            .points
            .get(i)
            .copied()
            .unwrap_or((0, f64::NAN));
        let a = s
            .alone
            .curve
            .points
            .get(i)
            .copied()
            .unwrap_or((0, f64::NAN));
        println!(
            "{i:>6} {:>12} {:>9.4} {:>12} {:>11.4} {:>12} {:>9.4}",
            n.0, n.1, c.0, c.1, a.0, a.1
        );
    }
    let reach = |r: &RunSummary| {
        r.tokens_to_reach_centralized
            .map_or("never".to_string(), |t| format!("{:.0}", t))
    };
    println!(
        "\nfinal held-out loss: network {:.4}, centralized {:.4}, alone {:.4}",
        s.network.final_loss, s.centralized.final_loss, s.alone.final_loss
    );
    println!(
        "network / centralized = {:.4} ({}within 2%); network / alone = {:.4}",
        s.network_over_centralized,
        if s.within_two_percent { "" } else { "not " },
        s.network_over_alone
    );
    println!(
        "tokens to reach the centralized final loss {:.4}: network {}, centralized {}, alone {}",
        s.centralized.final_loss,
        reach(&s.network),
        reach(&s.centralized),
        reach(&s.alone)
    );
    println!(
        "time: network {:.0} s, centralized {:.0} s, alone {:.0} s",
        s.network.seconds, s.centralized.seconds, s.alone.seconds
    );
}
