//! The run parameters a validator publishes — the subnet's protocol
//! parameters and the model's configuration — so that miners check theirs
//! against them and anyone can recompute its results.
//!
//! A validator writes them to `validators/<hotkey>/params.json` in its
//! bucket before the first log of a round that used them; every evaluation
//! record names their digest (the BLAKE3 of that file's bytes). A miner reads
//! those of the validator its master comes from and refuses to train with
//! other ones ([`Error::ParamsMismatch`]): its deltas would be judged on
//! other pages, by another rule, or not fit the model, and would silently
//! score nothing. See `docs/protocol.md`, "Run parameters".

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::identity::PublicKey;
use crate::model::Config;
use crate::storage::keys::VALIDATORS_DIR;
use crate::storage::{Bucket, get_if_present};

use super::params::SubnetParams;

/// Version of [`RunParams`].
pub const RUN_PARAMS_VERSION: u32 = 1;
/// The most bytes a published `params.json` may have.
pub const MAX_RUN_PARAMS_BYTES: u64 = 64 << 10;
/// The most differences [`RunParams::differences`] lists.
const MAX_LISTED: usize = 16;

/// The key of `validator`'s run parameters.
pub fn run_params_key(validator: &PublicKey) -> String {
    format!("{VALIDATORS_DIR}/{}/params.json", validator.to_ss58())
}

/// What a run is: the protocol parameters and the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunParams {
    /// Format version ([`RUN_PARAMS_VERSION`]).
    pub version: u32,
    /// The subnet's protocol parameters.
    pub subnet: SubnetParams,
    /// The model's configuration (HF `LlamaConfig` field names).
    pub model: Config,
}

impl RunParams {
    /// The run parameters of `subnet` and `model`.
    pub fn new(subnet: SubnetParams, model: Config) -> Self {
        RunParams {
            version: RUN_PARAMS_VERSION,
            subnet,
            model,
        }
    }

    /// The published bytes: compact JSON, fields in declaration order.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::InvalidArgument(format!("run params: {e}")))
    }

    /// The digest every evaluation record names: BLAKE3 of [`Self::to_json`].
    pub fn digest(&self) -> Result<Digest> {
        Ok(Digest::of(&self.to_json()?))
    }

    /// Parses published parameters: size, version, and every value usable
    /// ([`SubnetParams::validate`], [`Config::validate`]).
    pub fn from_json(bytes: &[u8]) -> Result<RunParams> {
        if bytes.len() as u64 > MAX_RUN_PARAMS_BYTES {
            return Err(Error::limit(
                "run params bytes",
                MAX_RUN_PARAMS_BYTES,
                bytes.len() as u64,
            ));
        }
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt("run params", "json", e.to_string()))?;
        let version = value.get("version").and_then(serde_json::Value::as_u64);
        if version != Some(u64::from(RUN_PARAMS_VERSION)) {
            return Err(Error::UnsupportedVersion {
                input: "run params",
                found: version.and_then(|v| u32::try_from(v).ok()).unwrap_or(0),
                supported: RUN_PARAMS_VERSION.to_string(),
            });
        }
        let params: RunParams = serde_json::from_value(value)
            .map_err(|e| Error::corrupt("run params", "json", e.to_string()))?;
        params
            .subnet
            .validate()
            .and_then(|()| params.model.validate())
            .map_err(|e| Error::corrupt("run params", "values", e.to_string()))?;
        Ok(params)
    }

    /// Reads `validator`'s published parameters (`None` if it has none).
    pub fn read(bucket: &dyn Bucket, validator: &PublicKey) -> Result<Option<RunParams>> {
        get_if_present(bucket, &run_params_key(validator), MAX_RUN_PARAMS_BYTES)?
            .map(|bytes| RunParams::from_json(&bytes))
            .transpose()
    }

    /// Publishes them as `validator`'s; returns their digest.
    pub fn publish(&self, bucket: &dyn Bucket, validator: &PublicKey) -> Result<Digest> {
        let bytes = self.to_json()?;
        bucket.put(&run_params_key(validator), &bytes)?;
        Ok(Digest::of(&bytes))
    }

    /// Every field whose value differs from `other`'s, as
    /// `path: ours vs theirs` (at most 16; the count of the rest after).
    pub fn differences(&self, other: &RunParams) -> Result<Vec<String>> {
        let as_value = |p: &RunParams| {
            serde_json::to_value(p).map_err(|e| Error::InvalidArgument(format!("run params: {e}")))
        };
        let mut found = Vec::new();
        diff("", &as_value(self)?, &as_value(other)?, &mut found);
        if found.len() > MAX_LISTED {
            let rest = found.len() - MAX_LISTED;
            found.truncate(MAX_LISTED);
            found.push(format!("and {rest} more"));
        }
        Ok(found)
    }

    /// [`Error::ParamsMismatch`] unless `theirs` (published by `publisher`)
    /// are these parameters.
    pub fn require_same(&self, theirs: &RunParams, publisher: &PublicKey) -> Result<()> {
        let differences = self.differences(theirs)?;
        if differences.is_empty() {
            return Ok(());
        }
        Err(Error::ParamsMismatch {
            publisher: publisher.to_ss58(),
            differences,
        })
    }
}

/// Appends to `out` the paths below `path` where `a` and `b` differ.
fn diff(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value::Object;
    match (a, b) {
        (Object(x), Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            let null = serde_json::Value::Null;
            for k in keys {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff(
                    &sub,
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        _ if a != b => out.push(format!("{path}: {a} here, {b} published")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::DatasetParams;

    fn params() -> RunParams {
        let pages = DatasetParams {
            dataset_id: Digest::of(b"data"),
            num_pages: 1000,
            window_pages: 8,
            epoch_blocks: 10,
            reveal_delay_blocks: 2,
        };
        RunParams::new(SubnetParams::new(1, pages), Config::preset("tiny").unwrap())
    }

    #[test]
    fn round_trip_digest_and_differences() {
        let p = params();
        let json = p.to_json().unwrap();
        assert_eq!(RunParams::from_json(&json).unwrap(), p);
        assert_eq!(p.digest().unwrap(), Digest::of(&json));
        assert!(p.differences(&p).unwrap().is_empty());
        let key = PublicKey([3; 32]);
        p.require_same(&p.clone(), &key).unwrap();

        let mut other = p.clone();
        other.subnet.pages.window_pages = 24;
        other.model.hidden_size = 96;
        assert_ne!(other.digest().unwrap(), p.digest().unwrap());
        let d = p.differences(&other).unwrap();
        assert_eq!(
            d,
            vec![
                "model.hidden_size: 64 here, 96 published".to_string(),
                "subnet.pages.window_pages: 8 here, 24 published".to_string(),
            ],
            "{d:?}"
        );
        match p.require_same(&other, &key) {
            Err(Error::ParamsMismatch {
                publisher,
                differences,
            }) => {
                assert_eq!(publisher, key.to_ss58());
                assert_eq!(differences, d);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hostile_params_are_typed_errors() {
        let p = params();
        let mut value = serde_json::to_value(&p).unwrap();
        value["version"] = 2.into();
        assert!(matches!(
            RunParams::from_json(&serde_json::to_vec(&value).unwrap()),
            Err(Error::UnsupportedVersion { found: 2, .. })
        ));
        let mut bad = p.clone();
        bad.subnet.round_blocks = 0;
        assert!(matches!(
            RunParams::from_json(&bad.to_json().unwrap()),
            Err(Error::Corrupt { .. })
        ));
        let mut bad = p.clone();
        bad.subnet.rule.confidence_z = -1.0;
        assert!(RunParams::from_json(&bad.to_json().unwrap()).is_err());
        let huge = vec![b' '; MAX_RUN_PARAMS_BYTES as usize + 1];
        assert!(matches!(
            RunParams::from_json(&huge),
            Err(Error::LimitExceeded { .. })
        ));
        for junk in [&b"{"[..], b"[]", b"{\"version\":1}", b"null", b""] {
            assert!(RunParams::from_json(junk).is_err(), "{junk:?}");
        }
    }
}
