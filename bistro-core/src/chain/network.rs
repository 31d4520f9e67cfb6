//! Which chain to talk to: Bittensor's network names and endpoints.
//!
//! The names are those of the Python SDK (`bittensor/core/settings.py`):
//!
//! | name | endpoint |
//! | --- | --- |
//! | `finney` | `wss://entrypoint-finney.opentensor.ai:443` |
//! | `test` | `wss://test.finney.opentensor.ai:443` |
//! | `archive` | `wss://archive.chain.opentensor.ai:443` |
//! | `local` | `ws://127.0.0.1:9944`, or `$BT_SUBTENSOR_CHAIN_ENDPOINT` when set |
//!
//! Any `ws://` or `wss://` URL is taken as it is. The embedded
//! [`LocalChain`](super::LocalChain) is not a subtensor network and has no
//! endpoint: the examples select it with the name [`EMBEDDED`].

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The name the examples use for the embedded [`LocalChain`](super::LocalChain).
pub const EMBEDDED: &str = "embedded";

/// The environment variable that overrides the `local` endpoint, as in the Python SDK.
pub const LOCAL_ENDPOINT_ENV: &str = "BT_SUBTENSOR_CHAIN_ENDPOINT";

/// The main network's public entry point.
pub const FINNEY_ENDPOINT: &str = "wss://entrypoint-finney.opentensor.ai:443";
/// The test network's public entry point.
pub const TEST_ENDPOINT: &str = "wss://test.finney.opentensor.ai:443";
/// The main network's archive node (keeps the state of every block).
pub const ARCHIVE_ENDPOINT: &str = "wss://archive.chain.opentensor.ai:443";
/// A subtensor node on this machine.
pub const LOCAL_ENDPOINT: &str = "ws://127.0.0.1:9944";

/// Longest endpoint URL accepted.
const MAX_URL_LEN: usize = 2048;

/// A subtensor network: one of the named ones, or a node's WebSocket URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Network {
    /// The main network.
    Finney,
    /// The test network.
    Test,
    /// The main network through an archive node.
    Archive,
    /// A node on this machine (`ws://127.0.0.1:9944` unless
    /// `BT_SUBTENSOR_CHAIN_ENDPOINT` says otherwise).
    Local,
    /// A node at this `ws://` or `wss://` URL.
    Url(String),
}

impl Network {
    /// The WebSocket URL to connect to. For [`Network::Local`] this reads
    /// `BT_SUBTENSOR_CHAIN_ENDPOINT` now.
    pub fn endpoint(&self) -> String {
        match self {
            Network::Finney => FINNEY_ENDPOINT.into(),
            Network::Test => TEST_ENDPOINT.into(),
            Network::Archive => ARCHIVE_ENDPOINT.into(),
            Network::Local => local_endpoint(std::env::var(LOCAL_ENDPOINT_ENV).ok()),
            Network::Url(url) => url.clone(),
        }
    }

    /// The network's name (`finney`, `test`, ...) or its URL.
    pub fn name(&self) -> &str {
        match self {
            Network::Finney => "finney",
            Network::Test => "test",
            Network::Archive => "archive",
            Network::Local => "local",
            Network::Url(url) => url,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Network {
    type Err = Error;

    /// Parses a network name (case-insensitive) or a `ws://`/`wss://` URL.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        match s.to_ascii_lowercase().as_str() {
            "finney" | "main" | "mainnet" => return Ok(Network::Finney),
            "test" | "testnet" => return Ok(Network::Test),
            "archive" => return Ok(Network::Archive),
            "local" => return Ok(Network::Local),
            _ => {}
        }
        check_ws_url(s)?;
        Ok(Network::Url(s.to_string()))
    }
}

/// The `local` endpoint given the value of `BT_SUBTENSOR_CHAIN_ENDPOINT`:
/// the variable wins when it is set and not blank.
fn local_endpoint(env: Option<String>) -> String {
    env.map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| LOCAL_ENDPOINT.into())
}

/// Checks that `url` is a plausible `ws://` or `wss://` URL with a host.
pub fn check_ws_url(url: &str) -> Result<()> {
    let bad = |why: &str| {
        Error::InvalidArgument(format!(
            "unknown subtensor network {url:?}: {why} (expected finney, test, archive, local, \
             or a ws:// or wss:// URL)"
        ))
    };
    if url.len() > MAX_URL_LEN {
        return Err(bad("too long"));
    }
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("wss://")
        .or_else(|| lower.strip_prefix("ws://"))
        .ok_or_else(|| bad("not a network name and not a WebSocket URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(bad("no host"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains whitespace"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_urls_parse() {
        assert_eq!("finney".parse::<Network>().unwrap(), Network::Finney);
        assert_eq!("Test".parse::<Network>().unwrap(), Network::Test);
        assert_eq!("archive".parse::<Network>().unwrap(), Network::Archive);
        assert_eq!(
            "finney".parse::<Network>().unwrap().endpoint(),
            FINNEY_ENDPOINT
        );
        assert_eq!("test".parse::<Network>().unwrap().endpoint(), TEST_ENDPOINT);
        let url = "wss://lite.sub.example.org:443/path";
        assert_eq!(
            url.parse::<Network>().unwrap(),
            Network::Url(url.to_string())
        );
        assert_eq!(
            "ws://127.0.0.1:9946".parse::<Network>().unwrap().endpoint(),
            "ws://127.0.0.1:9946"
        );
    }

    #[test]
    fn local_endpoint_follows_the_sdk_variable() {
        assert_eq!(local_endpoint(None), LOCAL_ENDPOINT);
        assert_eq!(local_endpoint(Some("  ".into())), LOCAL_ENDPOINT);
        assert_eq!(
            local_endpoint(Some("ws://10.0.0.5:9944".into())),
            "ws://10.0.0.5:9944"
        );
    }

    #[test]
    fn garbage_is_rejected_with_the_accepted_forms() {
        for bad in [
            "",
            "nakamoto",
            "http://127.0.0.1:9944",
            "ws://",
            "ws://:9944",
            "ws://a b",
        ] {
            let err = bad.parse::<Network>().unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{bad}");
            assert!(err.to_string().contains("finney"), "{err}");
        }
        assert!(
            format!("ws://{}", "a".repeat(3000))
                .parse::<Network>()
                .is_err()
        );
    }
}
