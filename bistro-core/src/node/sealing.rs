//! Sealed uploads in the protocol: which beacon round a miner seals its
//! delta to, which rounds a validator accepts for a deadline, and opening
//! an upload once that round's pulse exists (`docs/protocol.md`, "Sealed
//! deltas"; the envelope is `docs/delta-format.md`, "Sealed envelope").
//!
//! For the round at deadline `b` with reveal delay `D`, a sealed upload is
//! accepted when its round `r` satisfies
//! `beacon_round_at(b) < r <= beacon_round_at(b + D)`: its pulse did not
//! exist on the chain when block `b` was made, so no one could open the
//! upload before the deadline, and it exists by the reveal block, so every
//! validator can open it when it judges. Miners aim at the middle of that
//! window ([`seal_target`]).

use std::ops::RangeInclusive;
use std::path::Path;

use crate::chain::{BeaconKey, Chain};
use crate::error::{Error, Result};
use crate::node::params::SubnetParams;
use crate::node::rejection::Rejection;
use crate::seal::{is_sealed, read_header, unseal_file};

/// Where a miner seals an upload: the chain's beacon and a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealTarget {
    /// The beacon (the chain's).
    pub beacon: BeaconKey,
    /// The round whose pulse will open the upload.
    pub round: u64,
}

/// The chain's beacon key, or an error saying sealed deltas need one.
fn beacon_of(chain: &dyn Chain) -> Result<BeaconKey> {
    chain.beacon()?.ok_or_else(|| {
        Error::Unavailable("the chain records no timelock beacon: sealed deltas need one".into())
    })
}

/// The round a miner seals its upload for the deadline `deadline` to: the
/// chain's current round plus the rounds expected until the middle of the
/// accepted window (block `deadline + D / 2`), at the beacon's observed
/// rounds per block (measured over the last up to 16 blocks).
pub fn seal_target(chain: &dyn Chain, params: &SubnetParams, deadline: u64) -> Result<SealTarget> {
    let beacon = beacon_of(chain)?;
    let now = chain.block()?.number;
    let round_now = chain
        .beacon_round_at(now)?
        .ok_or_else(|| Error::Chain(format!("no beacon round at block {now}")))?;
    let back = now.min(16);
    let rate = match chain.beacon_round_at(now - back)? {
        Some(earlier) if back > 0 && round_now > earlier => {
            (round_now - earlier) as f64 / back as f64
        }
        _ => 1.0,
    };
    let target_block = deadline as f64 + params.pages.reveal_delay_blocks as f64 / 2.0;
    let ahead = ((target_block - now as f64) * rate).ceil().max(1.0) as u64;
    Ok(SealTarget {
        beacon,
        round: round_now.saturating_add(ahead),
    })
}

/// The rounds a validator accepts for the deadline `deadline`:
/// `beacon_round_at(b) + 1 ..= beacon_round_at(b + D)`. `None` while the
/// reveal block does not exist yet.
pub fn accepted_rounds(
    chain: &dyn Chain,
    params: &SubnetParams,
    deadline: u64,
) -> Result<Option<RangeInclusive<u64>>> {
    let (Some(first), Some(last)) = (
        chain.beacon_round_at(deadline)?,
        chain.beacon_round_at(params.reveal_block(deadline))?,
    ) else {
        return Ok(None);
    };
    Ok(Some(first.saturating_add(1)..=last))
}

/// Opens the sealed upload at `src` into `dst` (at most `max_plain_len`
/// bytes) if it was sealed to the chain's beacon at a round in `accepted`:
/// `unsealed` for a plain file, `bad_seal` for a malformed envelope, another
/// beacon, a round outside the window, or a key or payload that does not
/// authenticate. A pulse the chain lacks, a failed chain read or the
/// validator's own disk are not the miner's fault (`validator_error`).
pub fn open_upload(
    chain: &dyn Chain,
    accepted: &RangeInclusive<u64>,
    src: &Path,
    dst: &Path,
    max_plain_len: u64,
) -> std::result::Result<(), Rejection> {
    let mut head = [0u8; crate::seal::HEADER_LEN];
    let n = read_prefix(src, &mut head).map_err(|e| Rejection::ValidatorError(e.to_string()))?;
    if !is_sealed(&head[..n]) {
        return Err(Rejection::Unsealed);
    }
    let header = crate::seal::read_fixed_header(&head[..n], max_plain_len)
        .map_err(|e| Rejection::BadSeal(e.to_string()))?;
    let beacon = beacon_of(chain).map_err(|e| Rejection::ValidatorError(e.to_string()))?;
    header
        .check_beacon(&beacon)
        .map_err(|e| Rejection::BadSeal(e.to_string()))?;
    if !accepted.contains(&header.round) {
        return Err(Rejection::BadSeal(format!(
            "sealed to round {}; the deadline accepts rounds {}..={}",
            header.round,
            accepted.start(),
            accepted.end()
        )));
    }
    let pulse = chain
        .pulse(header.round)
        .map_err(|e| Rejection::ValidatorError(format!("chain: {e}")))?
        .ok_or_else(|| {
            Rejection::ValidatorError(format!("the chain has no pulse for round {}", header.round))
        })?;
    unseal_file(src, dst, &pulse, max_plain_len)
        .map(|_| ())
        .map_err(|e| match e {
            Error::Io { .. } => Rejection::ValidatorError(e.to_string()),
            _ => Rejection::BadSeal(e.to_string()),
        })
}

/// Opens sealed bytes whose round's pulse the chain already has, for
/// anyone reading public uploads after their deadline; `Ok(None)` while the
/// pulse does not exist (the upload cannot be read yet).
pub fn open_if_public(
    chain: &dyn Chain,
    sealed: &[u8],
    max_plain_len: u64,
) -> Result<Option<Vec<u8>>> {
    let header = read_header(sealed, max_plain_len)?;
    match chain.pulse(header.round)? {
        Some(pulse) => crate::seal::unseal(sealed, &pulse, max_plain_len).map(Some),
        None => Ok(None),
    }
}

/// Reads up to `buf.len()` bytes from the start of `path`.
fn read_prefix(path: &Path, buf: &mut [u8]) -> Result<usize> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(filled)
}
