//! The key layout: where deltas, masters and validator records live.
//!
//! | what | key | in whose bucket |
//! | --- | --- | --- |
//! | a miner's delta for a block | `deltas/<miner ss58>/<block, 20 digits>-<digest, 64 hex>.delta` | the miner's |
//! | a master, as an HF model folder | `master/<revision hex>/`: `model.safetensors` (the checkpoint), `config.json`, `generation_config.json` | the master owner's |
//! | the outer optimizer's state that goes with a master | `master/<revision hex>.outer` | the master owner's |
//! | the pointer to the latest master | `master/LATEST.json` ([`MASTER_POINTER`]) | the master owner's |
//! | a validator's state | `validators/<validator ss58>/state.json` | the validator's |
//! | a validator's evaluation log for a block | `validators/<validator ss58>/evals/<block, 20 digits>.jsonl` | the validator's |
//!
//! Blocks are zero-padded to 20 digits (the width of `u64::MAX`) so that key
//! order is block order. Hotkeys are SS58 with prefix 42, the form people
//! read. Parsers accept exactly what the builders produce and nothing else.
//!
//! A delta's key names its content: the digest is BLAKE3 of the object's
//! bytes exactly as uploaded (the sealed envelope), so a key listed at the
//! deadline pins the content, and a download whose bytes hash otherwise is
//! corrupt. "The latest delta" of a miner is chosen by [`latest_delta`]: the
//! highest block *in the key* within the window the validator asks about,
//! then the key itself, never a timestamp the miner's storage server
//! reports. See `docs/storage.md`.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use super::{Bucket, ObjectInfo};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::identity::PublicKey;

/// Folder of all deltas (one sub-folder per miner hotkey).
pub const DELTAS_DIR: &str = "deltas";
/// The extension of a delta object.
pub const DELTA_EXT: &str = ".delta";
/// Folder of master checkpoints and their pointer.
pub const MASTER_DIR: &str = "master";
/// The checkpoint's name inside a master's folder (HF's single-file name).
pub const MASTER_WEIGHTS_FILE: &str = "model.safetensors";
/// The model configuration's name inside a master's folder (HF `config.json`).
pub const MASTER_CONFIG_FILE: &str = "config.json";
/// The generation defaults' name inside a master's folder (HF).
pub const MASTER_GENERATION_CONFIG_FILE: &str = "generation_config.json";
/// The extension of the outer optimizer state published beside a master.
pub const OUTER_STATE_EXT: &str = ".outer";
/// The key of the pointer to the latest master (a small JSON object, see
/// [`MasterPointer`]).
pub const MASTER_POINTER: &str = "master/LATEST.json";
/// The most bytes a master pointer may have (it is read from strangers).
pub const MAX_POINTER_BYTES: u64 = 4096;
/// Folder of validator records (one sub-folder per validator hotkey).
pub const VALIDATORS_DIR: &str = "validators";

/// Digits of a zero-padded block number (`u64::MAX` has 20).
const BLOCK_DIGITS: usize = 20;

/// The key of `hotkey`'s delta for `block` whose uploaded bytes have the
/// BLAKE3 digest `digest`.
pub fn delta_key(hotkey: &PublicKey, block: u64, digest: &Digest) -> String {
    format!(
        "{}{block:0width$}-{}{DELTA_EXT}",
        delta_prefix(hotkey),
        digest.to_hex(),
        width = BLOCK_DIGITS
    )
}

/// The prefix under which all of `hotkey`'s deltas are listed.
pub fn delta_prefix(hotkey: &PublicKey) -> String {
    format!("{DELTAS_DIR}/{}/", hotkey.to_ss58())
}

/// What a delta key names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeltaKey {
    /// The miner.
    pub hotkey: PublicKey,
    /// The block the delta is for.
    pub block: u64,
    /// BLAKE3 of the uploaded bytes.
    pub digest: Digest,
}

/// Splits a delta key into hotkey, block and digest; `None` for any other
/// key (including non-canonical spellings of the same hotkey, block or
/// digest, and keys without a digest).
pub fn parse_delta_key(key: &str) -> Option<DeltaKey> {
    let rest = key.strip_prefix(DELTAS_DIR)?.strip_prefix('/')?;
    let (ss58, file) = rest.split_once('/')?;
    let (digits, hex) = file.strip_suffix(DELTA_EXT)?.split_once('-')?;
    let block = parse_block(digits)?;
    let digest = parse_lower_hex_digest(hex)?;
    let hotkey = PublicKey::from_ss58(ss58).ok()?;
    // One spelling per hotkey: the prefix-42 form the builder writes.
    (hotkey.to_ss58() == ss58).then_some(DeltaKey {
        hotkey,
        block,
        digest,
    })
}

/// A digest spelled as the builders spell it: 64 lowercase hex digits.
/// A digest written as 64 lower-case hex digits, exactly as keys spell it.
pub(crate) fn parse_lower_hex_digest(hex: &str) -> Option<Digest> {
    let canonical = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !canonical {
        return None;
    }
    hex.parse().ok()
}

fn parse_block(digits: &str) -> Option<u64> {
    if digits.len() != BLOCK_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The key of the master checkpoint with content digest `revision`: the
/// weights file of its folder ([`master_file_key`]).
pub fn master_key(revision: &Digest) -> String {
    master_file_key(revision, MASTER_WEIGHTS_FILE)
}

/// The key of `file` in the folder of master `revision`
/// (`master/<revision hex>/<file>`), which `transformers` loads as a model
/// folder: [`MASTER_WEIGHTS_FILE`], [`MASTER_CONFIG_FILE`],
/// [`MASTER_GENERATION_CONFIG_FILE`].
pub fn master_file_key(revision: &Digest, file: &str) -> String {
    format!("{MASTER_DIR}/{}/{file}", revision.to_hex())
}

/// The key of the outer optimizer state (momentum) that goes with the
/// master `revision` (the `model::outer::OuterState` file, `docs/protocol.md`).
pub fn outer_state_key(revision: &Digest) -> String {
    format!("{MASTER_DIR}/{}{OUTER_STATE_EXT}", revision.to_hex())
}

/// The revision named by a master key; `None` for any other key.
pub fn parse_master_key(key: &str) -> Option<Digest> {
    let hex = key
        .strip_prefix(MASTER_DIR)?
        .strip_prefix('/')?
        .strip_suffix(MASTER_WEIGHTS_FILE)?
        .strip_suffix('/')?;
    parse_lower_hex_digest(hex)
}

/// The key of `validator`'s saved state.
pub fn validator_state_key(validator: &PublicKey) -> String {
    format!("{VALIDATORS_DIR}/{}/state.json", validator.to_ss58())
}

/// The key of `validator`'s evaluation log for `block` (one object per block:
/// S3 has no append).
pub fn eval_log_key(validator: &PublicKey, block: u64) -> String {
    format!(
        "{}{block:0width$}.jsonl",
        eval_log_prefix(validator),
        width = BLOCK_DIGITS
    )
}

/// The prefix under which `validator`'s evaluation logs are listed.
pub fn eval_log_prefix(validator: &PublicKey) -> String {
    format!("{VALIDATORS_DIR}/{}/evals/", validator.to_ss58())
}

/// The block of an evaluation-log key of `validator`; `None` otherwise.
pub fn parse_eval_log_key(validator: &PublicKey, key: &str) -> Option<u64> {
    let digits = key
        .strip_prefix(&eval_log_prefix(validator))?
        .strip_suffix(".jsonl")?;
    parse_block(digits)
}

/// A delta found in a miner's bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeltaObject {
    /// The block in its key.
    pub block: u64,
    /// The digest in its key: BLAKE3 of the bytes it must hold.
    pub digest: Digest,
    /// Its key, size and storage timestamp as listed.
    pub info: ObjectInfo,
}

/// `hotkey`'s deltas whose block lies in `window`, oldest block first.
/// Objects under the miner's prefix whose keys do not parse are ignored.
pub fn list_deltas(
    bucket: &dyn Bucket,
    hotkey: &PublicKey,
    window: RangeInclusive<u64>,
) -> Result<Vec<DeltaObject>> {
    let mut found: Vec<DeltaObject> = bucket
        .list(&delta_prefix(hotkey))?
        .into_iter()
        .filter_map(|info| match parse_delta_key(&info.key) {
            Some(k) if k.hotkey == *hotkey && window.contains(&k.block) => Some(DeltaObject {
                block: k.block,
                digest: k.digest,
                info,
            }),
            _ => None,
        })
        .collect();
    // By block, then key: a total order that no server's clock enters, so
    // every validator picks the same object from the same listing.
    found.sort_by(|a, b| (a.block, &a.info.key).cmp(&(b.block, &b.info.key)));
    Ok(found)
}

/// `hotkey`'s latest delta in `window`: the highest block in the key, then
/// the greatest key (so the greatest digest). `None` if the miner uploaded
/// nothing there.
pub fn latest_delta(
    bucket: &dyn Bucket,
    hotkey: &PublicKey,
    window: RangeInclusive<u64>,
) -> Result<Option<DeltaObject>> {
    Ok(list_deltas(bucket, hotkey, window)?.pop())
}

/// The pointer to the latest master: written after the checkpoint upload
/// completes, so a reader never finds a pointer to a half-uploaded master.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterPointer {
    /// Format version of this JSON object (currently 1).
    pub version: u32,
    /// The content digest of the checkpoint.
    pub revision: Digest,
    /// The block at which this master was published.
    pub block: u64,
    /// The checkpoint's key (always [`master_key`] of `revision`).
    pub key: String,
    /// The checkpoint's size in bytes.
    pub size: u64,
}

impl MasterPointer {
    /// The pointer format version this build writes and reads.
    pub const VERSION: u32 = 1;

    /// A pointer to the checkpoint `revision` of `size` bytes.
    pub fn new(revision: Digest, block: u64, size: u64) -> Self {
        MasterPointer {
            version: Self::VERSION,
            key: master_key(&revision),
            revision,
            block,
            size,
        }
    }

    /// Parses and checks a pointer read from a bucket.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        if bytes.len() as u64 > MAX_POINTER_BYTES {
            return Err(Error::limit(
                "master pointer",
                MAX_POINTER_BYTES,
                bytes.len() as u64,
            ));
        }
        let pointer: MasterPointer = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt("master pointer", "json", e.to_string()))?;
        if pointer.version != Self::VERSION {
            return Err(Error::UnsupportedVersion {
                input: "master pointer",
                found: pointer.version,
                supported: Self::VERSION.to_string(),
            });
        }
        if pointer.key != master_key(&pointer.revision) {
            return Err(Error::corrupt(
                "master pointer",
                "key",
                format!(
                    "{:?} is not the key of revision {}",
                    pointer.key, pointer.revision
                ),
            ));
        }
        Ok(pointer)
    }

    /// The pointer as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Uploads the checkpoint file at `path` (content digest `revision`) and then
/// the pointer to it. If the upload fails, the old pointer stays.
pub fn publish_master(
    bucket: &dyn Bucket,
    path: &std::path::Path,
    revision: Digest,
    block: u64,
) -> Result<MasterPointer> {
    let key = master_key(&revision);
    bucket.put_file(&key, path)?;
    let uploaded = bucket
        .head(&key)?
        .ok_or_else(|| Error::NotFound(format!("master {key:?} just after uploading it")))?;
    let pointer = MasterPointer::new(revision, block, uploaded.size);
    bucket.put(MASTER_POINTER, &pointer.to_json())?;
    Ok(pointer)
}

/// The latest master's pointer, or `None` if no master was published.
pub fn read_master_pointer(bucket: &dyn Bucket) -> Result<Option<MasterPointer>> {
    super::get_if_present(bucket, MASTER_POINTER, MAX_POINTER_BYTES)?
        .map(|bytes| MasterPointer::from_json(&bytes))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::validate_key;

    fn hotkey(n: u8) -> PublicKey {
        PublicKey([n; 32])
    }

    #[test]
    fn keys_are_valid_and_parse_back() {
        let hk = hotkey(7);
        let digest = Digest::of(b"sealed bytes");
        for block in [0, 1, 42, 9_999_999, u64::MAX] {
            let key = delta_key(&hk, block, &digest);
            validate_key(&key).unwrap();
            assert_eq!(
                parse_delta_key(&key),
                Some(DeltaKey {
                    hotkey: hk,
                    block,
                    digest
                })
            );
        }
        let rev = Digest::of(b"master");
        validate_key(&master_key(&rev)).unwrap();
        assert_eq!(parse_master_key(&master_key(&rev)), Some(rev));
        validate_key(MASTER_POINTER).unwrap();
        validate_key(&validator_state_key(&hk)).unwrap();
        let log = eval_log_key(&hk, 77);
        validate_key(&log).unwrap();
        assert_eq!(parse_eval_log_key(&hk, &log), Some(77));
        assert_eq!(parse_eval_log_key(&hotkey(8), &log), None);
    }

    #[test]
    fn key_order_is_block_order() {
        let hk = hotkey(1);
        let mut blocks = vec![5u64, 100, 9, 10_000_000_000, 0, u64::MAX];
        let mut keys: Vec<String> = blocks
            .iter()
            .map(|&b| delta_key(&hk, b, &Digest::of(&b.to_le_bytes())))
            .collect();
        keys.sort();
        blocks.sort();
        let parsed: Vec<u64> = keys
            .iter()
            .map(|k| parse_delta_key(k).unwrap().block)
            .collect();
        assert_eq!(parsed, blocks);
    }

    #[test]
    fn parsers_reject_other_spellings() {
        let hk = hotkey(3);
        let digest = Digest::of(b"d");
        let good = delta_key(&hk, 12, &digest);
        let ss58 = hk.to_ss58();
        let hex = digest.to_hex();
        assert!(parse_delta_key(&good).is_some());
        for bad in [
            format!("deltas/{ss58}/00000000000000000012.delta"), // no digest
            format!(
                "deltas/{ss58}/00000000000000000012-{}.delta",
                hex.to_uppercase()
            ),
            format!("deltas/{ss58}/00000000000000000012-{}.delta", &hex[..63]),
            format!("deltas/{ss58}/00000000000000000012-{hex}0.delta"),
            format!("deltas/{ss58}/00000000000000000012_{hex}.delta"),
            format!("deltas/{ss58}/12-{hex}.delta"),
            format!("deltas/{ss58}/000000000000000000012-{hex}.delta"),
            format!("deltas/{ss58}/0000000000000000001a-{hex}.delta"),
            format!("deltas/{ss58}/00000000000000000012-{hex}.bin"),
            format!("deltas/{}/00000000000000000012-{hex}.delta", hk.to_hex()),
            format!("deltas/{ss58}/x/00000000000000000012-{hex}.delta"),
            format!("deltas/{ss58}/99999999999999999999-{hex}.delta"), // > u64::MAX
            good.replace("deltas/", "delta/"),
        ] {
            assert_eq!(parse_delta_key(&bad), None, "{bad}");
        }
        let rev = Digest::of(b"x");
        assert_eq!(parse_master_key(&master_key(&rev).to_uppercase()), None);
        assert_eq!(parse_master_key("master/LATEST.json"), None);
    }

    #[test]
    fn pointer_round_trip_and_rejections() {
        let p = MasterPointer::new(Digest::of(b"ckpt"), 1234, 99);
        assert_eq!(MasterPointer::from_json(&p.to_json()).unwrap(), p);

        let mut wrong_key = p.clone();
        wrong_key.key = "master/other/model.safetensors".into();
        assert!(matches!(
            MasterPointer::from_json(&wrong_key.to_json()),
            Err(Error::Corrupt { .. })
        ));
        let mut v2 = p.clone();
        v2.version = 2;
        assert!(matches!(
            MasterPointer::from_json(&v2.to_json()),
            Err(Error::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            MasterPointer::from_json(b"{\"version\":1"),
            Err(Error::Corrupt { .. })
        ));
        let mut extra = String::from_utf8(p.to_json()).unwrap();
        extra.insert_str(1, "\"evil\":1,");
        assert!(MasterPointer::from_json(extra.as_bytes()).is_err());
        let huge = vec![b' '; MAX_POINTER_BYTES as usize + 1];
        assert!(matches!(
            MasterPointer::from_json(&huge),
            Err(Error::LimitExceeded { .. })
        ));
    }
}
