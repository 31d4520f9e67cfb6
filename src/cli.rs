//! Command-line flags shared by the examples, in Bittensor's dotted style.
//!
//! ```text
//! --wallet.name NAME          wallet name (default: default)
//! --wallet.hotkey NAME        hotkey name (default: default)
//! --wallet.path DIR           wallets folder (default: ~/.bittensor/wallets)
//! --subtensor.network NET     embedded, finney, test, archive, local, or a ws(s):// URL
//!                             (default: embedded, the local chain in --chain.dir)
//! --subtensor.chain_endpoint URL   a node URL; overrides the network's endpoint
//! --chain.dir DIR             the embedded chain's folder (default: ~/.bistro/localnet/chain)
//! --netuid N                  subnet (default: 1)
//! --bucket NAME               the bucket to publish to / read from
//! --device DEV                cpu, cuda, cuda:N, mps (default: cpu; a bare --device means cuda)
//! --help                      print the usage
//! ```
//!
//! Both `--flag value` and `--flag=value` work; unknown flags, repeated
//! flags and stray words are errors. An example adds its own flags with
//! [`Flag`] and reads them with [`Args::extra`]. No dependency: only
//! `std::env::args`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::str::FromStr;

use bistro_core::chain::network::{EMBEDDED, Network};
use bistro_core::chain::wallet::{DEFAULT_NAME, Wallet};
use bistro_core::{Error, Result};

/// The network name that selects the embedded local chain (the default).
pub const DEFAULT_NETWORK: &str = EMBEDDED;
/// The default subnet.
pub const DEFAULT_NETUID: u16 = 1;
/// The default device.
pub const DEFAULT_DEVICE: &str = "cpu";
/// What a bare `--device` means (the seed README's validator line ends so).
pub const BARE_DEVICE: &str = "cuda";
/// The environment variable the examples read an encrypted hotkey's password from.
pub const HOTKEY_PASSWORD_ENV: &str = "BISTRO_HOTKEY_PASSWORD";

/// An extra flag an example accepts besides the standard ones.
#[derive(Clone, Copy, Debug)]
pub struct Flag {
    /// Its name without the dashes (`"steps"`, `"eval.pages"`).
    pub name: &'static str,
    /// The placeholder for its value in the usage (`"N"`); empty for a
    /// switch that takes no value (it then reads as `"true"`).
    pub value: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// Its value when not given, if any.
    pub default: Option<&'static str>,
}

/// The parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// `--wallet.name`.
    pub wallet_name: String,
    /// `--wallet.hotkey`.
    pub wallet_hotkey: String,
    /// `--wallet.path`.
    pub wallet_path: PathBuf,
    /// `--subtensor.network`: `embedded` or a subtensor network.
    pub network: String,
    /// `--subtensor.chain_endpoint`, if given.
    pub chain_endpoint: Option<String>,
    /// `--chain.dir`: the embedded chain's folder.
    pub chain_dir: PathBuf,
    /// `--netuid`.
    pub netuid: u16,
    /// `--bucket`, if given.
    pub bucket: Option<String>,
    /// `--device`.
    pub device: String,
    extras: BTreeMap<String, String>,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Run with these arguments.
    Run(Args),
    /// Print this usage text and exit.
    Help(String),
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

/// The standard flags: name, value placeholder, help.
const STANDARD: &[(&str, &str, &str)] = &[
    ("wallet.name", "NAME", "wallet name (default: default)"),
    ("wallet.hotkey", "NAME", "hotkey name (default: default)"),
    (
        "wallet.path",
        "DIR",
        "wallets folder (default: ~/.bittensor/wallets)",
    ),
    (
        "subtensor.network",
        "NET",
        "embedded (the local chain, default), finney, test, archive, local, or a ws(s):// URL",
    ),
    (
        "subtensor.chain_endpoint",
        "URL",
        "a subtensor node's URL; overrides the network",
    ),
    (
        "chain.dir",
        "DIR",
        "the embedded chain's folder (default: ~/.bistro/localnet/chain)",
    ),
    ("netuid", "N", "subnet id (default: 1)"),
    ("bucket", "NAME", "bucket name"),
    (
        "device",
        "DEV",
        "cpu, cuda, cuda:N or mps (default: cpu; a bare --device means cuda)",
    ),
];

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Expands a leading `~/` to `$HOME`.
fn expand_home(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => home().join(rest),
        None if path == "~" => home(),
        None => PathBuf::from(path),
    }
}

impl Args {
    /// Parses `args` (without the program name). `program` and `about` head
    /// the usage text; `extras` are the example's own flags.
    pub fn parse_from<I, S>(program: &str, about: &str, extras: &[Flag], args: I) -> Result<Command>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut given: BTreeMap<String, String> = BTreeMap::new();
        let mut rest = args.into_iter().map(Into::into).peekable();
        while let Some(word) = rest.next() {
            if word == "--help" || word == "-h" {
                return Ok(Command::Help(usage(program, about, extras)));
            }
            let Some(flag) = word.strip_prefix("--") else {
                return Err(bad(format!(
                    "unexpected argument {word:?} (flags start with --)"
                )));
            };
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (flag.to_string(), None),
            };
            let takes_value = if STANDARD.iter().any(|(n, _, _)| *n == name) {
                true
            } else if let Some(extra) = extras.iter().find(|f| f.name == name) {
                !extra.value.is_empty()
            } else {
                return Err(bad(format!("unknown flag --{name} (see --help)")));
            };
            let next_is_value = rest.peek().is_some_and(|next| !next.starts_with("--"));
            let value = match (inline, takes_value) {
                (Some(v), true) => v,
                (Some(_), false) => {
                    return Err(bad(format!("--{name} is a switch and takes no value")));
                }
                (None, false) => "true".to_string(),
                (None, true) if next_is_value => rest.next().unwrap_or_default(),
                (None, true) if name == "device" => BARE_DEVICE.to_string(),
                (None, true) => return Err(bad(format!("--{name} needs a value"))),
            };
            if given.insert(name.clone(), value).is_some() {
                return Err(bad(format!("--{name} is given twice")));
            }
        }
        let mut take = |name: &str| given.remove(name);
        let netuid = match take("netuid") {
            None => DEFAULT_NETUID,
            Some(v) => v
                .parse::<u16>()
                .map_err(|_| bad(format!("--netuid {v:?} is not a number in 0..=65535")))?,
        };
        let nonempty = |name: &str, v: String| {
            if v.trim().is_empty() {
                Err(bad(format!("--{name} is empty")))
            } else {
                Ok(v)
            }
        };
        let args = Args {
            wallet_name: nonempty(
                "wallet.name",
                take("wallet.name").unwrap_or(DEFAULT_NAME.into()),
            )?,
            wallet_hotkey: nonempty(
                "wallet.hotkey",
                take("wallet.hotkey").unwrap_or(DEFAULT_NAME.into()),
            )?,
            wallet_path: take("wallet.path")
                .map(|p| expand_home(&p))
                .unwrap_or_else(Wallet::default_path),
            network: nonempty(
                "subtensor.network",
                take("subtensor.network").unwrap_or(DEFAULT_NETWORK.into()),
            )?,
            chain_endpoint: take("subtensor.chain_endpoint"),
            chain_dir: take("chain.dir")
                .map(|p| expand_home(&p))
                .unwrap_or_else(|| home().join(".bistro/localnet/chain")),
            netuid,
            bucket: take("bucket"),
            device: nonempty("device", take("device").unwrap_or(DEFAULT_DEVICE.into()))?,
            extras: BTreeMap::new(),
        };
        let mut extras_out = BTreeMap::new();
        for flag in extras {
            if let Some(v) = given.remove(flag.name).or(flag.default.map(String::from)) {
                extras_out.insert(flag.name.to_string(), v);
            }
        }
        // Every given flag was standard or an extra, so nothing is left.
        let args = Args {
            extras: extras_out,
            ..args
        };
        args.chain_choice()?;
        Ok(Command::Run(args))
    }

    /// Parses the process's arguments; prints the usage and exits 0 on
    /// `--help`, prints the error and exits 2 on a bad command line. For
    /// example binaries (library code should call [`Args::parse_from`]).
    pub fn from_env(about: &str, extras: &[Flag]) -> Args {
        let mut argv = std::env::args();
        let program = argv
            .next()
            .map(|p| {
                PathBuf::from(p)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .unwrap_or_else(|| "bistro".into());
        match Args::parse_from(&program, about, extras, argv) {
            Ok(Command::Run(args)) => args,
            Ok(Command::Help(text)) => {
                print!("{text}");
                std::process::exit(0)
            }
            Err(e) => {
                eprintln!("{program}: {e}");
                std::process::exit(2)
            }
        }
    }

    /// The value of an extra flag (given, or its default).
    pub fn extra(&self, name: &str) -> Option<&str> {
        self.extras.get(name).map(String::as_str)
    }

    /// An extra flag parsed as `T`; `None` when neither given nor defaulted.
    pub fn extra_parsed<T: FromStr>(&self, name: &str) -> Result<Option<T>> {
        match self.extra(name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| bad(format!("--{name} {v:?} is not valid"))),
        }
    }

    /// The wallet the flags name.
    pub fn wallet(&self) -> Wallet {
        Wallet::new(&self.wallet_path, &self.wallet_name, &self.wallet_hotkey)
    }

    /// The chain the flags select: `--subtensor.chain_endpoint` wins, then
    /// `--subtensor.network` (`embedded` is the local chain in `--chain.dir`).
    pub fn chain_choice(&self) -> Result<ChainChoice> {
        if let Some(url) = &self.chain_endpoint {
            return Ok(ChainChoice::Subtensor(Network::Url(
                match url.parse::<Network>()? {
                    Network::Url(u) => u,
                    _ => {
                        return Err(bad(format!(
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

fn bad(message: String) -> Error {
    Error::InvalidArgument(message)
}

/// The usage text.
pub fn usage(program: &str, about: &str, extras: &[Flag]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{about}\n\nUsage: {program} [FLAGS]\n\nFlags:");
    let mut line = |name: &str, value: &str, help: &str| {
        let left = if value.is_empty() {
            format!("--{name}")
        } else {
            format!("--{name} {value}")
        };
        let _ = writeln!(out, "  {left:<34} {help}");
    };
    for (name, value, help) in STANDARD {
        line(name, value, help);
    }
    for f in extras {
        match f.default {
            Some(d) => line(f.name, f.value, &format!("{} (default: {d})", f.help)),
            None => line(f.name, f.value, f.help),
        }
    }
    line("help", "", "print this text");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Args> {
        match Args::parse_from("miner", "about", &EXTRAS, args.iter().copied())? {
            Command::Run(a) => Ok(a),
            Command::Help(_) => panic!("unexpected help"),
        }
    }

    const EXTRAS: [Flag; 2] = [
        Flag {
            name: "steps",
            value: "N",
            help: "steps per window",
            default: Some("10"),
        },
        Flag {
            name: "dry_run",
            value: "",
            help: "do not publish",
            default: None,
        },
    ];

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
        .unwrap();
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
        let v = run(&["--netuid", "212", "--bucket", "b", "--device"]).unwrap();
        assert_eq!(v.device, BARE_DEVICE);
        let v = run(&["--device", "--netuid", "3"]).unwrap();
        assert_eq!((v.device.as_str(), v.netuid), (BARE_DEVICE, 3));
    }

    #[test]
    fn defaults_select_the_embedded_chain() {
        let a = run(&[]).unwrap();
        assert_eq!(a.wallet_name, "default");
        assert_eq!(a.wallet_hotkey, "default");
        assert_eq!(a.netuid, DEFAULT_NETUID);
        assert_eq!(a.device, DEFAULT_DEVICE);
        assert_eq!(a.bucket, None);
        assert!(a.wallet_path.ends_with(".bittensor/wallets"));
        assert_eq!(
            a.chain_choice().unwrap(),
            ChainChoice::Embedded(a.chain_dir.clone())
        );
        assert_eq!(a.extra("steps"), Some("10"));
        assert_eq!(a.extra("dry_run"), None);
    }

    #[test]
    fn equals_form_extras_and_endpoint_override() {
        let a = run(&[
            "--wallet.path=/tmp/w",
            "--chain.dir=/tmp/c",
            "--steps=25",
            "--dry_run",
            "--subtensor.network",
            "finney",
            "--subtensor.chain_endpoint",
            "ws://127.0.0.1:9946",
        ])
        .unwrap();
        assert_eq!(a.wallet_path, PathBuf::from("/tmp/w"));
        assert_eq!(a.chain_dir, PathBuf::from("/tmp/c"));
        assert_eq!(a.extra_parsed::<u32>("steps").unwrap(), Some(25));
        assert_eq!(a.extra("dry_run"), Some("true"));
        assert_eq!(
            a.chain_choice().unwrap(),
            ChainChoice::Subtensor(Network::Url("ws://127.0.0.1:9946".into()))
        );
        assert_eq!(
            a.wallet().hotkey_path().unwrap(),
            PathBuf::from("/tmp/w/default/hotkeys/default")
        );
    }

    #[test]
    fn bad_command_lines_are_errors() {
        for bad in [
            &["--netuid", "70000"][..],
            &["--netuid", "x"],
            &["--netuid"],
            &["--wallet.name", ""],
            &["--colour", "red"],
            &["stray"],
            &["--bucket", "a", "--bucket", "b"],
            &["--dry_run=yes"],
            &["--subtensor.network", "nakamoto"],
            &["--subtensor.chain_endpoint", "finney"],
        ] {
            let err = run(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{bad:?}: {err}");
        }
        let a = run(&["--steps", "many"]).unwrap();
        assert!(a.extra_parsed::<u32>("steps").is_err());
    }

    #[test]
    fn help_lists_every_flag() {
        let Command::Help(text) =
            Args::parse_from("miner", "Trains.", &EXTRAS, ["--help"]).unwrap()
        else {
            panic!("expected help");
        };
        for name in [
            "--wallet.name",
            "--wallet.hotkey",
            "--wallet.path",
            "--subtensor.network",
            "--netuid",
            "--bucket",
            "--device",
            "--chain.dir",
            "--steps N",
            "--dry_run",
            "(default: 10)",
            "--help",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
        assert!(text.starts_with("Trains."));
    }
}
