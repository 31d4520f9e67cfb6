//! What a failed `ureq` call means for the crate: a [`Error::Network`] that
//! says whether retrying may help. Used by the HTTP page sources and the S3
//! reader alike.

use crate::error::Error;

/// Whether `e` may go away on its own (a timeout, a dropped or refused
/// connection, a name that did not resolve, a stalled body).
pub(crate) fn is_transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Timeout(_)
            | ureq::Error::Io(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::BodyStalled
    )
}

/// `e` as a network error talking to `endpoint` while doing `what` (empty:
/// nothing to add).
pub(crate) fn network_error(endpoint: &str, what: &str, e: &ureq::Error) -> Error {
    let detail = if what.is_empty() {
        e.to_string()
    } else {
        format!("{what}: {e}")
    };
    Error::Network {
        endpoint: endpoint.to_string(),
        detail,
        transient: is_transient(e),
    }
}
