//! The network roles: the protocol's parameters, the miner, the validator,
//! and what they exchange (deltas, masters, evaluation logs).
//!
//! The protocol — rounds, deadlines, what a validator checks and in which
//! order — is specified in `docs/protocol.md`. The pure parts
//! ([`params`], [`fingerprint`], [`similarity`], [`rejection`], [`log`],
//! [`lead`], the [`lineage`] record, [`merge_rule`])
//! need no model; sealing uploads needs the `timelock` feature; the miner,
//! the validator and the [`audit`] need the `torch` feature (which includes `timelock`).

pub mod fingerprint;
pub mod lead;
pub mod lineage;
pub mod log;
pub mod merge_rule;
pub mod params;
pub mod rejection;
pub mod retention;
pub mod run_params;
pub mod similarity;

#[cfg(feature = "torch")]
#[cfg_attr(docsrs, doc(cfg(feature = "torch")))]
pub mod audit;
#[cfg(feature = "torch")]
#[cfg_attr(docsrs, doc(cfg(feature = "torch")))]
pub mod encoding;
#[cfg(feature = "torch")]
#[cfg_attr(docsrs, doc(cfg(feature = "torch")))]
pub mod master;
#[cfg(feature = "torch")]
#[cfg_attr(docsrs, doc(cfg(feature = "torch")))]
pub mod miner;
#[cfg(feature = "timelock")]
pub mod sealing;
#[cfg(feature = "torch")]
#[cfg_attr(docsrs, doc(cfg(feature = "torch")))]
pub mod upload;
#[cfg(feature = "torch")]
#[cfg_attr(docsrs, doc(cfg(feature = "torch")))]
pub mod validator;

pub use params::SubnetParams;
pub use rejection::Rejection;

#[cfg(feature = "torch")]
#[cfg_attr(docsrs, doc(cfg(feature = "torch")))]
pub use encoding::DeltaEncoding;
#[cfg(feature = "torch")]
#[cfg_attr(docsrs, doc(cfg(feature = "torch")))]
pub use miner::{Miner, MinerConfig};
#[cfg(feature = "torch")]
#[cfg_attr(docsrs, doc(cfg(feature = "torch")))]
pub use validator::{RoundReport, Validator, ValidatorConfig};
