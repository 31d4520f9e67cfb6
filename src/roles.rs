//! Turning command-line flags into a running miner or validator: the
//! embedded network by default (a local chain in `~/.bistro/localnet`, local
//! buckets, the sample corpus, the tiny model), Bittensor and S3 when a
//! network and a bucket are given. The example binaries stay thin by
//! calling [`Setup::from_args`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bistro_core::chain::wallet::{DEFAULT_NAME, Wallet, random_seed};
use bistro_core::chain::{Chain, LocalChain, LocalChainConfig, Subtensor, local::SubnetConfig};
use bistro_core::data::http::{HttpOptions, RowsConfig, RowsSource};
use bistro_core::data::{PageSource, sample};
use bistro_core::error::{Error, Result};
use bistro_core::identity::Keypair;
use bistro_core::model::{Config, Device};
use bistro_core::node::SubnetParams;
use bistro_core::storage::{
    Bucket, BucketCommitment, EndpointPolicy, LocalBucket, S3Bucket, S3Config, S3Credentials,
};

use crate::cli::{Args, ChainChoice};

/// Which role the process plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Trains and uploads deltas.
    Miner,
    /// Judges deltas, publishes masters, sets weights.
    Validator,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Miner => "miner",
            Role::Validator => "validator",
        }
    }
}

/// Flags the miner and validator take besides the standard ones
/// ([`Args`]): flatten both into an example's own `#[derive(clap::Parser)]`
/// struct, or read both with [`Args::parse_with`].
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
pub struct NodeFlags {
    /// `--model.preset`; `None`: `tiny` on the embedded network, `150m` on Bittensor.
    #[arg(
        long = "model.preset",
        value_name = "NAME",
        help = "Model preset (default: tiny on the embedded network, 150m otherwise)",
        value_parser = clap::builder::PossibleValuesParser::new(bistro_core::model::PRESETS),
    )]
    pub model_preset: Option<String>,
    /// `--rounds`; `None`: run until stopped.
    #[arg(
        long,
        value_name = "N",
        help = "Stop after N rounds (default: run until stopped)"
    )]
    pub rounds: Option<u64>,
    /// `--block.ms`: the block time of a new embedded chain.
    #[arg(
        long = "block.ms",
        value_name = "MS",
        help = "Block time of a new embedded chain, in milliseconds",
        default_value_t = 2000
    )]
    pub block_ms: u64,
    /// `--work.dir`; `None`: next to the embedded chain, or `~/.bistro/<role>`.
    #[arg(
        long = "work.dir",
        value_name = "DIR",
        help = "State, caches and logs (default: next to the embedded chain, or ~/.bistro/<role>)",
        value_parser = crate::cli::parse_path,
    )]
    pub work_dir: Option<PathBuf>,
}

/// Environment variable naming the S3 endpoint for `--bucket` on a real network.
pub const S3_ENDPOINT_ENV: &str = "BISTRO_S3_ENDPOINT";

/// Everything a miner or validator needs, resolved from the flags.
pub struct Setup {
    /// The chain.
    pub chain: Arc<dyn Chain>,
    /// The hotkey.
    pub keypair: Keypair,
    /// This process's own bucket.
    pub bucket: Box<dyn Bucket>,
    /// How others read that bucket (published on the chain).
    pub commitment: BucketCommitment,
    /// The dataset.
    pub data: Arc<dyn PageSource>,
    /// The protocol parameters.
    pub params: SubnetParams,
    /// The model shape.
    pub model: Config,
    /// Where the model runs.
    pub device: Device,
    /// Local state, caches and logs.
    pub work_dir: PathBuf,
    /// Whether this is the embedded network.
    pub embedded: bool,
}

impl Setup {
    /// Whose buckets to contact: on the embedded network any (local
    /// folders); on Bittensor only `https://` endpoints with public
    /// addresses.
    pub fn endpoint_policy(&self) -> EndpointPolicy {
        if self.embedded {
            EndpointPolicy::Any
        } else {
            EndpointPolicy::Public
        }
    }

    /// Resolves the flags for `role`.
    pub fn from_args(args: &Args, node: &NodeFlags, role: Role) -> Result<Setup> {
        let device = Device::parse(&args.device)?;
        match args.chain_choice()? {
            ChainChoice::Embedded(dir) => embedded(args, node, role, &dir, device),
            ChainChoice::Subtensor(network) => {
                let chain: Arc<dyn Chain> = Arc::new(Subtensor::connect(&network)?);
                let keypair = args.hotkey()?;
                let name = args.bucket.clone().ok_or_else(|| {
                    Error::InvalidArgument("--bucket is required on a real network".into())
                })?;
                let (bucket, commitment) = s3_bucket(&name)?;
                let data = dataset(false)?;
                let preset = node.model_preset.as_deref().unwrap_or("150m");
                // A new window every round (epochs as long as a round).
                let round_blocks = SubnetParams::BITTENSOR_ROUND_BLOCKS;
                let params =
                    SubnetParams::bittensor(args.netuid, data.params(100, round_blocks, 2)?);
                Ok(Setup {
                    chain,
                    keypair,
                    bucket,
                    commitment,
                    data,
                    params,
                    model: Config::preset(preset)?,
                    device,
                    work_dir: work_dir(args, node, &home().join(".bistro").join(role.name()), role),
                    embedded: false,
                })
            }
        }
    }
}

/// The dataset of the network: the embedded sample corpus, or on Bittensor
/// the RefinedWeb rows (cached under `~/.bistro/cache/rows`).
pub fn dataset(embedded: bool) -> Result<Arc<dyn PageSource>> {
    Ok(if embedded {
        Arc::new(sample::train()?)
    } else {
        Arc::new(RowsSource::new(
            RowsConfig::refinedweb(),
            Some(&home().join(".bistro/cache/rows")),
            HttpOptions::default(),
        )?)
    })
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

fn work_dir(args: &Args, node: &NodeFlags, base: &Path, role: Role) -> PathBuf {
    match &node.work_dir {
        Some(d) => d.clone(),
        None => base.join(format!(
            "{}-{}-{}",
            role.name(),
            args.wallet_name,
            args.wallet_hotkey
        )),
    }
}

/// The embedded network: creates the local chain, the subnet, the wallet and
/// the registration when missing, so a first run needs nothing.
fn embedded(
    args: &Args,
    node: &NodeFlags,
    role: Role,
    chain_dir: &Path,
    device: Device,
) -> Result<Setup> {
    let base = chain_dir.parent().unwrap_or(Path::new(".")).to_path_buf();
    let config = LocalChainConfig {
        block_time: Duration::from_millis(node.block_ms),
        genesis_seed: None,
    };
    let local = LocalChain::open_or_create(chain_dir, &config)?;
    local.add_subnet(args.netuid, SubnetConfig::default())?;
    // Keys of the embedded network live beside it, never in the user's
    // Bittensor wallets (unless --wallet.path says so).
    let wallet_path = if args.wallet_path == Wallet::default_path() {
        base.join("wallets")
    } else {
        args.wallet_path.clone()
    };
    // A miner and a validator started with no flags must not share a hotkey.
    let hotkey_name = if args.wallet_hotkey == DEFAULT_NAME {
        role.name()
    } else {
        &args.wallet_hotkey
    };
    let wallet = Wallet::new(&wallet_path, &args.wallet_name, hotkey_name);
    let keypair = match wallet.hotkey_path()?.exists() {
        true => wallet.hotkey_pair(Args::hotkey_password().as_deref())?,
        false => wallet.create_hotkey(random_seed()?, false)?,
    };
    let stake = match role {
        Role::Validator => 1_000_000_000_000,
        Role::Miner => 0,
    };
    local.register(args.netuid, &keypair.public(), &keypair.public(), stake)?;
    let name = args
        .bucket
        .clone()
        .unwrap_or_else(|| format!("{}-{}-{hotkey_name}", role.name(), args.wallet_name));
    let parent = base.join("buckets");
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let parent = parent.canonicalize().map_err(|e| Error::io(&parent, e))?;
    let bucket: Box<dyn Bucket> = Box::new(LocalBucket::create(parent.join(&name))?);
    let commitment = BucketCommitment::local(&parent, &name)?;
    let data = dataset(true)?;
    let mut params = SubnetParams::new(
        args.netuid,
        data.params(24, SubnetParams::DEFAULT_ROUND_BLOCKS, 2)?,
    );
    params.weights_interval_blocks = params.round_blocks;
    let preset = node.model_preset.as_deref().unwrap_or("tiny");
    Ok(Setup {
        chain: Arc::new(local),
        keypair,
        bucket,
        commitment,
        data,
        params,
        model: Config::preset(preset)?,
        device,
        work_dir: work_dir(args, node, &base, role),
        embedded: true,
    })
}

/// The S3 bucket `name` at `$BISTRO_S3_ENDPOINT` (default: AWS in
/// `$AWS_REGION`, else us-east-1), written with `AWS_ACCESS_KEY_ID` /
/// `AWS_SECRET_ACCESS_KEY`; published as public-read, or with the read-only
/// key in `BISTRO_READ_KEY_ID` / `BISTRO_READ_SECRET` when set.
fn s3_bucket(name: &str) -> Result<(Box<dyn Bucket>, BucketCommitment)> {
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let endpoint = std::env::var(S3_ENDPOINT_ENV)
        .unwrap_or_else(|_| format!("https://s3.{region}.amazonaws.com"));
    let config = S3Config::new(&endpoint, name, S3Credentials::from_env()?).with_region(&region);
    let bucket: Box<dyn Bucket> = Box::new(S3Bucket::new(config)?);
    let mut commitment = BucketCommitment::public(endpoint, name);
    commitment.region = Some(region);
    if let (Ok(id), Ok(secret)) = (
        std::env::var("BISTRO_READ_KEY_ID"),
        std::env::var("BISTRO_READ_SECRET"),
    ) {
        commitment.read_key_id = Some(id);
        commitment.read_secret = Some(secret);
    }
    commitment.validate()?;
    Ok((bucket, commitment))
}
