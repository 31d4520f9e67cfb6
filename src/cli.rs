//! Command-line flags shared by the examples, in Bittensor's dotted style.
//!
//! ```text
//! --wallet.name NAME          wallet name [default: default]
//! --wallet.hotkey NAME        hotkey name [default: default]
//! --wallet.path DIR           wallets folder [default: ~/.bittensor/wallets]
//! --subtensor.network NET     embedded (the local chain in --chain.dir), finney, test,
//!                             archive, local, or a ws(s):// URL [default: embedded]
//! --subtensor.chain_endpoint URL   a node URL; overrides the network
//! --chain.dir DIR             the embedded chain's folder [default: ~/.bistro/localnet/chain]
//! --netuid N                  subnet [default: 1]
//! --bucket NAME               the bucket to publish to / read from
//! --device [DEV]              cpu, cuda, cuda:N, mps [default: cpu]; a bare --device means cuda
//! -h, --help                  print the usage
//! ```
//!
//! The flags are parsed with [`clap`], the Rust ecosystem's standard
//! command-line parser, so every flag is typed and checked when the command
//! line is read, its default is written once (in the `#[arg]` attributes
//! below) and `--help` is generated from the same place.
//!
//! [`Args`] is a `#[derive(clap::Args)]` group: an example flattens it into
//! its own `#[derive(clap::Parser)]` struct beside its own typed flags:
//!
//! ```no_run
//! use bistro::cli::Args;
//! use clap::Parser;
//!
//! /// Trains for a while.
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     args: Args,
//!     /// Training steps per round.
//!     #[arg(long, value_name = "N", default_value_t = 8)]
//!     steps: u64,
//! }
//!
//! let cli = Cli::parse();
//! println!("{} steps on subnet {}", cli.steps, cli.args.netuid);
//! ```
//!
//! Both `--flag value` and `--flag=value` work; unknown flags, repeated
//! flags, stray words and bad values (a netuid past 65535, an empty name, an
//! unknown network) are errors: the example prints the error and exits
//! with status 2.

use std::ffi::OsString;
use std::path::PathBuf;

use bistro_core::chain::network::{EMBEDDED, Network};
use bistro_core::chain::wallet::{DEFAULT_NAME, Wallet};
use bistro_core::{Error, Result};
use clap::{Args as _, FromArgMatches as _};

/// The network name that selects the embedded local chain (the default).
pub const DEFAULT_NETWORK: &str = EMBEDDED;
/// The default subnet.
pub const DEFAULT_NETUID: u16 = 1;
/// The default device.
pub const DEFAULT_DEVICE: &str = "cpu";
/// What a bare `--device` means (the seed README's validator line ends so).
pub const BARE_DEVICE: &str = "cuda";
/// The default wallets folder, as `--help` shows it (`~` is `$HOME`; the
/// same folder as [`Wallet::default_path`]).
pub const DEFAULT_WALLET_PATH: &str = "~/.bittensor/wallets";
/// The default folder of the embedded chain, as `--help` shows it.
pub const DEFAULT_CHAIN_DIR: &str = "~/.bistro/localnet/chain";
/// The environment variable the examples read an encrypted hotkey's password from.
pub const HOTKEY_PASSWORD_ENV: &str = "BISTRO_HOTKEY_PASSWORD";

/// The standard flags, parsed.
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// `--wallet.name`.
    #[arg(
        long = "wallet.name",
        value_name = "NAME",
        help = "Wallet name",
        default_value = DEFAULT_NAME,
        value_parser = non_empty,
    )]
    pub wallet_name: String,
    /// `--wallet.hotkey`.
    #[arg(
        long = "wallet.hotkey",
        value_name = "NAME",
        help = "Hotkey name",
        default_value = DEFAULT_NAME,
        value_parser = non_empty,
    )]
    pub wallet_hotkey: String,
    /// `--wallet.path`, with a leading `~` expanded.
    #[arg(
        long = "wallet.path",
        value_name = "DIR",
        help = "Wallets folder",
        default_value = DEFAULT_WALLET_PATH,
        value_parser = parse_path,
    )]
    pub wallet_path: PathBuf,
    /// `--subtensor.network`: `embedded` or a subtensor network.
    #[arg(
        long = "subtensor.network",
        value_name = "NET",
        help = "embedded (the local chain in --chain.dir), finney, test, archive, local, or a ws(s):// URL",
        default_value = DEFAULT_NETWORK,
        value_parser = network,
    )]
    pub network: String,
    /// `--subtensor.chain_endpoint`, if given.
    #[arg(
        long = "subtensor.chain_endpoint",
        value_name = "URL",
        help = "A subtensor node's ws(s):// URL; overrides --subtensor.network",
        value_parser = endpoint,
    )]
    pub chain_endpoint: Option<String>,
    /// `--chain.dir`: the embedded chain's folder, with a leading `~` expanded.
    #[arg(
        long = "chain.dir",
        value_name = "DIR",
        help = "The embedded chain's folder",
        default_value = DEFAULT_CHAIN_DIR,
        value_parser = parse_path,
    )]
    pub chain_dir: PathBuf,
    /// `--netuid`.
    #[arg(
        long,
        value_name = "N",
        help = "Subnet id (0 to 65535)",
        default_value_t = DEFAULT_NETUID,
    )]
    pub netuid: u16,
    /// `--bucket`, if given.
    #[arg(
        long,
        value_name = "NAME",
        help = "Bucket name (default on the embedded network: one named after the role and wallet)",
        value_parser = non_empty,
    )]
    pub bucket: Option<String>,
    /// `--device`.
    #[arg(
        long,
        value_name = "DEV",
        help = "cpu, cuda, cuda:N or mps; a bare --device means cuda",
        default_value = DEFAULT_DEVICE,
        num_args = 0..=1,
        default_missing_value = BARE_DEVICE,
        value_parser = device,
    )]
    pub device: String,
}

/// Which chain the arguments select.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainChoice {
    /// The embedded [`LocalChain`](bistro_core::chain::LocalChain) in this folder.
    Embedded(PathBuf),
    /// A subtensor node at this endpoint (a network name resolved, or the
    /// `--subtensor.chain_endpoint` URL).
    Subtensor(Network),
}

/// Expands a leading `~/` (or a lone `~`) to `$HOME`; without a `$HOME`
/// the rest is relative to the working folder, as in
/// [`Wallet::default_path`].
pub fn expand_home(path: &str) -> PathBuf {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        (Some(rest), None) => PathBuf::from(rest),
        (None, Some(home)) if path == "~" => PathBuf::from(home),
        (None, None) if path == "~" => PathBuf::from("."),
        (None, _) => PathBuf::from(path),
    }
}

/// A clap value parser for paths: not empty, a leading `~` expanded
/// ([`expand_home`]), so `--flag=~/x` works as `--flag ~/x` does in a shell.
pub fn parse_path(value: &str) -> std::result::Result<PathBuf, String> {
    if value.trim().is_empty() {
        return Err("the path is empty".into());
    }
    Ok(expand_home(value))
}

/// Value parser: a name that is not blank.
fn non_empty(value: &str) -> std::result::Result<String, String> {
    if value.trim().is_empty() {
        return Err("the value is empty".into());
    }
    Ok(value.to_string())
}

/// An error's message for clap, which says itself that the value is invalid.
fn message(error: Error) -> String {
    match error {
        Error::InvalidArgument(message) => message,
        other => other.to_string(),
    }
}

/// Value parser: `embedded` or a network [`Network`] parses.
fn network(value: &str) -> std::result::Result<String, String> {
    let value = non_empty(value)?;
    if !value.eq_ignore_ascii_case(EMBEDDED) {
        value.parse::<Network>().map_err(message)?;
    }
    Ok(value)
}

/// Value parser: a `ws://` or `wss://` URL.
fn endpoint(value: &str) -> std::result::Result<String, String> {
    match non_empty(value)?.parse::<Network>() {
        Ok(Network::Url(url)) => Ok(url),
        Ok(_) => Err("must be a ws:// or wss:// URL, not a network name".into()),
        Err(e) => Err(message(e)),
    }
}

/// Value parser: a device name libtorch knows (checked with the model's own
/// parser where the model is built in; otherwise only non-empty).
fn device(value: &str) -> std::result::Result<String, String> {
    let value = non_empty(value)?;
    #[cfg(feature = "full")]
    bistro_core::model::Device::parse(&value).map_err(message)?;
    Ok(value)
}

impl Args {
    /// Parses the process's command line as these flags and `E`, an
    /// example's own `#[derive(clap::Args)]` flags, with `about` heading
    /// `--help`. Prints the help and exits 0 on `--help`; prints the error
    /// and exits 2 on a bad command line. (An example can instead flatten
    /// [`Args`] and its flags into a `#[derive(clap::Parser)]` struct of
    /// its own; this is that, in one line.)
    pub fn parse_with<E>(about: &str) -> (Args, E)
    where
        E: clap::Args + clap::FromArgMatches,
    {
        Args::try_parse_with(about, std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// [`Args::parse_with`] on `argv` (the program's name first), returning
    /// the error (or the help, as an error of kind
    /// [`DisplayHelp`](clap::error::ErrorKind::DisplayHelp)) instead of
    /// exiting.
    pub fn try_parse_with<E, I, T>(
        about: &str,
        argv: I,
    ) -> std::result::Result<(Args, E), clap::Error>
    where
        E: clap::Args + clap::FromArgMatches,
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        // The about goes last: a flattened struct's doc comment would replace it.
        let mut command = E::augment_args(Args::augment_args(clap::Command::new("bistro")))
            .about(about.to_string())
            .long_about(None);
        let matches = command.try_get_matches_from_mut(argv)?;
        let args = Args::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
        let own = E::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
        Ok((args, own))
    }

    /// The wallet the flags name.
    pub fn wallet(&self) -> Wallet {
        Wallet::new(&self.wallet_path, &self.wallet_name, &self.wallet_hotkey)
    }

    /// The chain the flags select: `--subtensor.chain_endpoint` wins, then
    /// `--subtensor.network` (`embedded` is the local chain in `--chain.dir`).
    /// Parsed flags always select one; an error means the fields were set
    /// by hand to something the parser refuses.
    pub fn chain_choice(&self) -> Result<ChainChoice> {
        if let Some(url) = &self.chain_endpoint {
            return Ok(ChainChoice::Subtensor(Network::Url(
                match url.parse::<Network>()? {
                    Network::Url(u) => u,
                    _ => {
                        return Err(Error::InvalidArgument(format!(
                            "--subtensor.chain_endpoint {url:?} must be a ws:// or wss:// URL"
                        )));
                    }
                },
            )));
        }
        if self.network.eq_ignore_ascii_case(EMBEDDED) {
            return Ok(ChainChoice::Embedded(self.chain_dir.clone()));
        }
        Ok(ChainChoice::Subtensor(self.network.parse()?))
    }

    /// The password for an encrypted hotkey, from `$BISTRO_HOTKEY_PASSWORD`.
    pub fn hotkey_password() -> Option<String> {
        std::env::var(HOTKEY_PASSWORD_ENV)
            .ok()
            .filter(|p| !p.is_empty())
    }

    /// The hotkey's key pair from the wallet files.
    #[cfg(any(feature = "full", feature = "subtensor"))]
    pub fn hotkey(&self) -> Result<bistro_core::Keypair> {
        self.wallet()
            .hotkey_pair(Args::hotkey_password().as_deref())
    }

    /// Opens the chain the flags select. The embedded chain must have been
    /// created (the local network demo does that); a subtensor network is
    /// connected to.
    #[cfg(any(feature = "full", feature = "subtensor"))]
    pub fn open_chain(&self) -> Result<Box<dyn bistro_core::chain::Chain>> {
        Ok(match self.chain_choice()? {
            ChainChoice::Embedded(dir) => Box::new(bistro_core::chain::LocalChain::open(dir)?),
            ChainChoice::Subtensor(network) => {
                Box::new(bistro_core::chain::Subtensor::connect(&network)?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::{CommandFactory, Parser};

    /// An example's command line: the standard flags and two of its own.
    #[derive(Parser, Debug)]
    #[command(about = "Trains.")]
    struct Cli {
        #[command(flatten)]
        args: Args,
        /// Steps per window.
        #[arg(long, value_name = "N", default_value_t = 10)]
        steps: u32,
        /// Do not publish.
        #[arg(long = "dry_run")]
        dry_run: bool,
    }

    fn run(args: &[&str]) -> std::result::Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("miner").chain(args.iter().copied()))
    }

    #[test]
    fn the_seed_readme_command_line_parses() {
        // The miner line of the seed README, with values filled in.
        let a = run(&[
            "--wallet.name",
            "w",
            "--wallet.hotkey",
            "h",
            "--subtensor.network",
            "test",
            "--netuid",
            "212",
            "--bucket",
            "my-bucket",
            "--device",
            "cuda:1",
        ])
        .unwrap()
        .args;
        assert_eq!(
            (a.wallet_name.as_str(), a.wallet_hotkey.as_str()),
            ("w", "h")
        );
        assert_eq!(a.netuid, 212);
        assert_eq!(a.bucket.as_deref(), Some("my-bucket"));
        assert_eq!(a.device, "cuda:1");
        assert_eq!(
            a.chain_choice().unwrap(),
            ChainChoice::Subtensor(Network::Test)
        );
        // The validator line ends in a bare --device.
        let v = run(&["--netuid", "212", "--bucket", "b", "--device"])
            .unwrap()
            .args;
        assert_eq!(v.device, BARE_DEVICE);
        let v = run(&["--device", "--netuid", "3"]).unwrap().args;
        assert_eq!((v.device.as_str(), v.netuid), (BARE_DEVICE, 3));
    }

    #[test]
    fn defaults_select_the_embedded_chain() {
        let cli = run(&[]).unwrap();
        let a = &cli.args;
        assert_eq!(a.wallet_name, DEFAULT_NAME);
        assert_eq!(a.wallet_hotkey, DEFAULT_NAME);
        assert_eq!(a.network, DEFAULT_NETWORK);
        assert_eq!(a.netuid, DEFAULT_NETUID);
        assert_eq!(a.device, DEFAULT_DEVICE);
        assert_eq!(a.bucket, None);
        assert_eq!(a.chain_endpoint, None);
        // `~` expanded: the default is the wallet's own default folder.
        assert_eq!(a.wallet_path, Wallet::default_path());
        assert_eq!(a.chain_dir, expand_home(DEFAULT_CHAIN_DIR));
        assert!(a.chain_dir.ends_with(".bistro/localnet/chain"));
        assert!(!a.chain_dir.starts_with("~"));
        assert_eq!(
            a.chain_choice().unwrap(),
            ChainChoice::Embedded(a.chain_dir.clone())
        );
        assert_eq!((cli.steps, cli.dry_run), (10, false));
    }

    #[test]
    fn equals_form_own_flags_home_and_endpoint_override() {
        let cli = run(&[
            "--wallet.path=/tmp/w",
            "--chain.dir=~/c",
            "--steps=25",
            "--dry_run",
            "--subtensor.network",
            "finney",
            "--subtensor.chain_endpoint",
            "ws://127.0.0.1:9946",
        ])
        .unwrap();
        let a = &cli.args;
        assert_eq!(a.wallet_path, PathBuf::from("/tmp/w"));
        assert_eq!(a.chain_dir, expand_home("~/c"));
        assert!(!a.chain_dir.starts_with("~"));
        assert_eq!((cli.steps, cli.dry_run), (25, true));
        assert_eq!(
            a.chain_choice().unwrap(),
            ChainChoice::Subtensor(Network::Url("ws://127.0.0.1:9946".into()))
        );
        assert_eq!(
            a.wallet().hotkey_path().unwrap(),
            PathBuf::from("/tmp/w/default/hotkeys/default")
        );
        // `--device=cuda:2` and an embedded network in capitals.
        let a = run(&["--device=cuda:2", "--subtensor.network=EMBEDDED"])
            .unwrap()
            .args;
        assert_eq!(a.device, "cuda:2");
        assert!(matches!(
            a.chain_choice().unwrap(),
            ChainChoice::Embedded(_)
        ));
    }

    #[test]
    fn bad_command_lines_are_errors() {
        for (bad, kind) in [
            (&["--netuid", "70000"][..], ErrorKind::ValueValidation),
            (&["--netuid", "x"], ErrorKind::ValueValidation),
            (&["--netuid", "-1"], ErrorKind::UnknownArgument),
            (&["--netuid"], ErrorKind::InvalidValue),
            (&["--wallet.name", ""], ErrorKind::ValueValidation),
            (&["--wallet.hotkey=  "], ErrorKind::ValueValidation),
            (&["--bucket="], ErrorKind::ValueValidation),
            (&["--colour", "red"], ErrorKind::UnknownArgument),
            (&["stray"], ErrorKind::UnknownArgument),
            (&["--device", "cuda", "stray"], ErrorKind::UnknownArgument),
            (
                &["--bucket", "a", "--bucket", "b"],
                ErrorKind::ArgumentConflict,
            ),
            (&["--device", "--device"], ErrorKind::ArgumentConflict),
            (&["--dry_run=yes"], ErrorKind::TooManyValues),
            (&["--steps", "many"], ErrorKind::ValueValidation),
            (
                &["--subtensor.network", "nakamoto"],
                ErrorKind::ValueValidation,
            ),
            (&["--subtensor.network", ""], ErrorKind::ValueValidation),
            (
                &["--subtensor.chain_endpoint", "finney"],
                ErrorKind::ValueValidation,
            ),
            (
                &["--subtensor.chain_endpoint", "http://x"],
                ErrorKind::ValueValidation,
            ),
        ] {
            let err = run(bad).unwrap_err();
            assert_eq!(err.kind(), kind, "{bad:?}: {err}");
            // clap exits with status 2 on a bad command line.
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }

    #[cfg(feature = "full")]
    #[test]
    fn unknown_devices_are_errors() {
        for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1"] {
            let err = run(&["--device", bad]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ValueValidation, "{bad}: {err}");
        }
        for good in ["cpu", "cuda", "cuda:3", "mps"] {
            assert_eq!(run(&["--device", good]).unwrap().args.device, good);
        }
    }

    #[test]
    fn help_lists_every_flag_and_its_default() {
        let text = Cli::command().render_help().to_string();
        for name in [
            "Trains.",
            "--wallet.name <NAME>",
            "--wallet.hotkey <NAME>",
            "--wallet.path <DIR>",
            "--subtensor.network <NET>",
            "--subtensor.chain_endpoint <URL>",
            "--chain.dir <DIR>",
            "--netuid <N>",
            "--bucket <NAME>",
            "--device [<DEV>]",
            "a bare --device means cuda",
            "--steps <N>",
            "--dry_run",
            "--help",
            "[default: default]",
            "[default: ~/.bittensor/wallets]",
            "[default: embedded]",
            "[default: ~/.bistro/localnet/chain]",
            "[default: 1]",
            "[default: cpu]",
            "[default: 10]",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
        // Every flag with a default shows it.
        let command = Cli::command();
        for arg in command.get_arguments() {
            if !arg.get_default_values().is_empty() {
                let shown = arg.get_default_values()[0].to_string_lossy().into_owned();
                assert!(
                    text.contains(&format!("[default: {shown}]")),
                    "--{:?} hides its default",
                    arg.get_long()
                );
            }
        }
        // `--help` is an "error" that clap prints to stdout and exits 0 on.
        let help = run(&["--help"]).unwrap_err();
        assert_eq!(help.kind(), ErrorKind::DisplayHelp);
        assert_eq!(help.exit_code(), 0);
    }

    /// An example's own flags (this line must not become the about).
    #[derive(clap::Args, Debug, PartialEq)]
    struct Own {
        /// Rounds to run.
        #[arg(long, default_value_t = 6)]
        rounds: u64,
    }

    #[test]
    fn parse_with_joins_an_examples_own_flags() {
        let (args, own) =
            Args::try_parse_with::<Own, _, _>("About.", ["m", "--rounds", "3", "--netuid=4"])
                .unwrap();
        assert_eq!((args.netuid, own.rounds), (4, 3));
        let (_, own) = Args::try_parse_with::<Own, _, _>("About.", ["m"]).unwrap();
        assert_eq!(own, Own { rounds: 6 });
        let err = Args::try_parse_with::<Own, _, _>("About.", ["m", "--round", "3"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownArgument);
        let help = Args::try_parse_with::<Own, _, _>("About.", ["m", "--help"]).unwrap_err();
        let text = help.to_string();
        assert!(text.starts_with("About."), "{text}");
        assert!(text.contains("--rounds <ROUNDS>") && text.contains("[default: 6]"));
        assert!(text.contains("--wallet.name <NAME>"));
    }

    #[test]
    fn the_default_wallet_path_is_the_wallets_own() {
        assert_eq!(expand_home(DEFAULT_WALLET_PATH), Wallet::default_path());
        assert_eq!(expand_home("/abs/~/x"), PathBuf::from("/abs/~/x"));
        assert_eq!(expand_home("rel"), PathBuf::from("rel"));
    }
}
