//! Turning `subxt` errors into bistro's [`Error`].
//!
//! Transport failures (the node cannot be reached, the connection dropped, a
//! request timed out) become [`Error::Network`] with `transient: true`;
//! everything the node answered but that went wrong (a refused transaction,
//! a dispatch error, an answer that does not decode) becomes [`Error::Chain`].

use std::error::Error as StdError;

use crate::error::Error;

/// Maps a `subxt` error met while doing `what` against `endpoint`.
pub(super) fn from_subxt(
    endpoint: &str,
    what: &str,
    err: impl StdError + Send + Sync + 'static,
) -> Error {
    if is_transport(&err) {
        return Error::Network {
            endpoint: endpoint.to_string(),
            detail: format!("{what}: {err}"),
            transient: true,
        };
    }
    Error::Chain(format!("{what}: {err}"))
}

/// Whether any error in the `source` chain is an RPC transport error.
fn is_transport(err: &(dyn StdError + 'static)) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(rpc) = e.downcast_ref::<subxt::rpcs::Error>() {
            return match rpc {
                // A JSON-RPC error answer is the node speaking, not a transport failure.
                subxt::rpcs::Error::Client(inner) => !matches!(
                    inner.downcast_ref::<subxt::ext::jsonrpsee::core::client::Error>(),
                    Some(subxt::ext::jsonrpsee::core::client::Error::Call(_))
                ),
                subxt::rpcs::Error::DisconnectedWillReconnect(_) => true,
                _ => false,
            };
        }
        current = e.source();
    }
    false
}

/// A call that did not finish within the configured time.
pub(super) fn timeout(endpoint: &str, what: &str, limit: std::time::Duration) -> Error {
    Error::Network {
        endpoint: endpoint.to_string(),
        detail: format!("{what}: no answer within {limit:?}"),
        transient: true,
    }
}
