//! The crate's one error type.
//!
//! Every fallible function in `bistro-core` returns [`Result`]. The variants are
//! grouped by what a caller can do about them: reject the input
//! ([`Error::Corrupt`], [`Error::LimitExceeded`], [`Error::NonFinite`], ...),
//! retry ([`Error::Network`] with `transient`), fix the configuration
//! ([`Error::InvalidArgument`], [`Error::Unavailable`]), or look for something
//! else ([`Error::NotFound`]).

use std::path::PathBuf;

use crate::digest::Digest;

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in bistro.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input bytes (a delta, a shard, a checkpoint, a server's response) do not
    /// follow their format. `input` names the kind of input, `location` says
    /// where in it (a byte offset, a tensor name, a table entry), `reason` what.
    #[error("corrupt {input} at {location}: {reason}")]
    Corrupt {
        /// The kind of input: `"delta"`, `"shard"`, `"checkpoint"`, ...
        input: &'static str,
        /// Where in the input the problem is.
        location: String,
        /// What is wrong.
        reason: String,
    },

    /// Input ended before a structure it declares.
    #[error("truncated {input}: {what} needs {needed} bytes, {available} available")]
    Truncated {
        /// The kind of input.
        input: &'static str,
        /// The structure that did not fit.
        what: String,
        /// Bytes the structure needs.
        needed: u64,
        /// Bytes that were there.
        available: u64,
    },

    /// Input does not start with the expected magic bytes: it is not this kind of file.
    #[error("not a {input}: bad magic {found:02x?}")]
    BadMagic {
        /// The kind of input.
        input: &'static str,
        /// The bytes found where the magic should be.
        found: Vec<u8>,
    },

    /// Input was written in a format version this build cannot read.
    #[error("unsupported {input} version {found} (this build reads {supported})")]
    UnsupportedVersion {
        /// The kind of input.
        input: &'static str,
        /// The version in the input.
        found: u32,
        /// The version(s) this build reads.
        supported: String,
    },

    /// Input is well formed but larger than a configured limit allows.
    #[error("{what} is {actual}, over the limit of {limit}")]
    LimitExceeded {
        /// The quantity that is limited.
        what: String,
        /// The limit.
        limit: u64,
        /// The value in the input.
        actual: u64,
    },

    /// A value that must be finite is NaN or infinite.
    #[error("non-finite value in {what} at element {index}")]
    NonFinite {
        /// Where the value is (a tensor name, a loss).
        what: String,
        /// The index of the first non-finite element.
        index: u64,
    },

    /// A content digest does not match the content.
    #[error("digest mismatch for {what}: expected {expected}, computed {computed}")]
    DigestMismatch {
        /// What was digested.
        what: String,
        /// The digest that was declared or expected.
        expected: Digest,
        /// The digest of the actual content.
        computed: Digest,
    },

    /// A signature is missing, malformed, or does not verify.
    #[error("bad signature: {0}")]
    BadSignature(String),

    /// Something that was asked for does not exist (an object, a page, a uid).
    #[error("not found: {0}")]
    NotFound(String),

    /// An argument given by the caller is invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A part that is needed is not available here (a device, a feature, a service).
    #[error("unavailable: {0}")]
    Unavailable(String),

    /// Credentials were refused.
    #[error("access denied: {0}")]
    AccessDenied(String),

    /// A remote endpoint was not contacted, or not followed, because the
    /// endpoint policy refuses it: an address that is not public, a redirect.
    #[error("refused: {0}")]
    Refused(String),

    /// A file system operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A network request failed. `transient` errors (timeouts, 5xx, 429) may
    /// succeed when retried; the others will not.
    #[error("network error talking to {endpoint}: {detail}")]
    Network {
        /// The host, URL or endpoint.
        endpoint: String,
        /// What happened.
        detail: String,
        /// Whether a retry may succeed.
        transient: bool,
    },

    /// The chain refused a call or returned something unexpected.
    #[error("chain: {0}")]
    Chain(String),

    /// The model or libtorch failed.
    #[error("model: {0}")]
    Model(String),

    /// Timelock encryption or a sealed envelope failed: see [`TimelockError`].
    #[error("timelock: {0}")]
    Timelock(#[from] TimelockError),

    /// This participant's run parameters (protocol parameters, model) are
    /// not the ones a validator published
    /// ([`crate::node::run_params::RunParams`]).
    #[error("run parameters differ from those validator {publisher} published: {}", differences.join("; "))]
    ParamsMismatch {
        /// The publisher's hotkey (SS58).
        publisher: String,
        /// Each differing field: `path: ours here, theirs published`.
        differences: Vec<String>,
    },
}

/// What went wrong with timelock-encrypted data (a ciphertext, a beacon pulse
/// or a sealed delta's key and payload). Every variant is a rejection of the
/// input: none is worth a retry with the same pulse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimelockError {
    /// Bytes that should be a timelock ciphertext, a beacon key or a pulse
    /// signature do not parse (not a valid curve point, bad lengths, trailing
    /// bytes, an unknown cipher suite, over the size cap).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being parsed: `"ciphertext"`, `"beacon key"`, `"signature"`.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },

    /// The pulse is for another round than the data was sealed to.
    #[error("sealed to round {sealed}, but the pulse is for round {pulse}")]
    WrongRound {
        /// The round the data was sealed to.
        sealed: u64,
        /// The round of the pulse that was given.
        pulse: u64,
    },

    /// The pulse's signature is not the beacon's signature of its round.
    #[error("the pulse for round {round} does not verify against the beacon key")]
    BadPulse {
        /// The pulse's round.
        round: u64,
    },

    /// The data was sealed to another beacon than the one expected.
    #[error("sealed to another beacon (key id {found}, expected {expected})")]
    WrongBeacon {
        /// Hex of the expected key id.
        expected: String,
        /// Hex of the key id in the data.
        found: String,
    },

    /// The ciphertext does not open with the pulse's signature: it was made
    /// for another round or beacon, or it was altered.
    #[error("the ciphertext does not open with the pulse for round {round}")]
    DecryptFailed {
        /// The pulse's round.
        round: u64,
    },

    /// A sealed payload chunk failed authentication: the payload was altered,
    /// truncated or its chunks reordered (or the key opened to garbage).
    #[error("sealed payload chunk {chunk} failed authentication")]
    Unauthentic {
        /// The index of the first chunk found not to authenticate.
        chunk: u64,
    },
}

impl Error {
    /// Shorthand for [`Error::Corrupt`].
    pub fn corrupt(
        input: &'static str,
        location: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corrupt {
            input,
            location: location.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Shorthand for [`Error::LimitExceeded`].
    pub fn limit(what: impl Into<String>, limit: u64, actual: u64) -> Self {
        Error::LimitExceeded {
            what: what.into(),
            limit,
            actual,
        }
    }

    /// Whether retrying the operation that failed may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Network {
                transient: true,
                ..
            }
        )
    }
}
