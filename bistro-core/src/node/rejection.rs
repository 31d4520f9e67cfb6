//! Why a validator refused to evaluate a miner's delta.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The reason a delta was not evaluated. Every rejection is logged; all but
/// [`Rejection::ValidatorError`] count as an evaluation with score 0, so they
/// decay the uid's average. A `validator_error` is the validator's own
/// failure (its chain reads, its disk, its model, a snapshot it took too
/// late): it leaves the average as it was and the uid is judged again next
/// round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", content = "detail", rename_all = "snake_case")]
pub enum Rejection {
    /// The hotkey has no bucket commitment on the chain.
    NoCommitment,
    /// The commitment does not parse or names an unusable bucket.
    BadCommitment(String),
    /// The bucket could not be read.
    Unreachable(String),
    /// No delta for this round in the bucket.
    NoDelta,
    /// The object is larger than the cap for this model.
    TooLarge(String),
    /// The object was stored after the round's deadline.
    Late(String),
    /// The file is not a valid delta (truncated, malformed, digest mismatch).
    Corrupt(String),
    /// The delta was made against another master, or for another round.
    Stale(String),
    /// The header names another uid or hotkey than the bucket's owner.
    WrongAuthor(String),
    /// The signature does not verify with the header's hotkey.
    BadSignature(String),
    /// A tensor holds NaN or infinity.
    NonFinite(String),
    /// The same content was uploaded earlier by another hotkey.
    Copy(String),
    /// The tensors do not fit the model (names or shapes).
    Mismatch(String),
    /// The upload is not a sealed envelope (every delta must be sealed to
    /// its deadline's beacon round).
    Unsealed,
    /// The envelope is malformed, sealed to another beacon or to a round
    /// outside the deadline's window, or does not authenticate.
    BadSeal(String),
    /// The validator failed on its own side; not the miner's fault.
    ValidatorError(String),
}

impl Rejection {
    /// A short machine-readable code (`"stale"`, `"copy"`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::NoCommitment => "no_commitment",
            Rejection::BadCommitment(_) => "bad_commitment",
            Rejection::Unreachable(_) => "unreachable",
            Rejection::NoDelta => "no_delta",
            Rejection::TooLarge(_) => "too_large",
            Rejection::Late(_) => "late",
            Rejection::Corrupt(_) => "corrupt",
            Rejection::Stale(_) => "stale",
            Rejection::WrongAuthor(_) => "wrong_author",
            Rejection::BadSignature(_) => "bad_signature",
            Rejection::NonFinite(_) => "non_finite",
            Rejection::Copy(_) => "copy",
            Rejection::Mismatch(_) => "mismatch",
            Rejection::Unsealed => "unsealed",
            Rejection::BadSeal(_) => "bad_seal",
            Rejection::ValidatorError(_) => "validator_error",
        }
    }

    /// The human-readable detail, if any.
    pub fn detail(&self) -> &str {
        match self {
            Rejection::NoCommitment | Rejection::NoDelta | Rejection::Unsealed => "",
            Rejection::BadCommitment(d)
            | Rejection::Unreachable(d)
            | Rejection::TooLarge(d)
            | Rejection::Late(d)
            | Rejection::Corrupt(d)
            | Rejection::Stale(d)
            | Rejection::WrongAuthor(d)
            | Rejection::BadSignature(d)
            | Rejection::NonFinite(d)
            | Rejection::Copy(d)
            | Rejection::Mismatch(d)
            | Rejection::BadSeal(d)
            | Rejection::ValidatorError(d) => d,
        }
    }

    /// Whether the validator, not the miner, failed: the average stays.
    pub fn is_validators_fault(&self) -> bool {
        matches!(self, Rejection::ValidatorError(_))
    }

    /// The rejection for an error met while reading or checking a delta.
    pub fn from_delta_error(e: &Error) -> Rejection {
        match e {
            Error::LimitExceeded { .. } => Rejection::TooLarge(e.to_string()),
            Error::BadSignature(_) => Rejection::BadSignature(e.to_string()),
            Error::NonFinite { .. } => Rejection::NonFinite(e.to_string()),
            Error::Network { .. } | Error::AccessDenied(_) | Error::NotFound(_) => {
                Rejection::Unreachable(e.to_string())
            }
            Error::Refused(_) => Rejection::BadCommitment(e.to_string()),
            _ => Rejection::Corrupt(e.to_string()),
        }
    }

    /// The rejection for an error met while listing a miner's bucket: the
    /// endpoint policy's refusals (a private address, a redirect) are
    /// `bad_commitment`, everything else `unreachable`.
    pub fn from_listing_error(e: &Error) -> Rejection {
        match e {
            Error::Refused(_) => Rejection::BadCommitment(e.to_string()),
            _ => Rejection::Unreachable(e.to_string()),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.detail() {
            "" => f.write_str(self.code()),
            d => write!(f, "{}: {d}", self.code()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_the_reasons_a_reader_would_expect() {
        let e = Error::limit("delta size", 10, 20);
        assert_eq!(Rejection::from_delta_error(&e).code(), "too_large");
        let e = Error::NonFinite {
            what: "w".into(),
            index: 3,
        };
        assert_eq!(Rejection::from_delta_error(&e).code(), "non_finite");
        let e = Error::corrupt("delta", "table", "overlap");
        let r = Rejection::from_delta_error(&e);
        assert_eq!(r.code(), "corrupt");
        assert!(r.to_string().starts_with("corrupt: corrupt delta at table"));
        assert_eq!(Rejection::NoDelta.to_string(), "no_delta");
        let e = Error::Refused("a redirect".into());
        assert_eq!(Rejection::from_delta_error(&e).code(), "bad_commitment");
        assert_eq!(Rejection::from_listing_error(&e).code(), "bad_commitment");
        let e = Error::NotFound("k".into());
        assert_eq!(Rejection::from_listing_error(&e).code(), "unreachable");
    }

    #[test]
    fn serialises_with_code_and_detail() {
        let json = serde_json::to_string(&Rejection::Stale("base x".into())).unwrap();
        assert_eq!(json, r#"{"code":"stale","detail":"base x"}"#);
    }
}
