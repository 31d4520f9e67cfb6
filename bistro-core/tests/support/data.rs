//! Self-checking test objects: an object says who wrote it and carries a
//! digest of itself, so a reader can tell a whole object from a torn one.

use bistro_core::Digest;

/// Bytes of a deterministic pseudo-random stream (xorshift), fast enough to
/// generate hundreds of MB.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    fill_pattern(seed, &mut out, len);
    out
}

/// Appends `len` pattern bytes for `seed` to `out`.
pub fn fill_pattern(seed: u64, out: &mut Vec<u8>, len: usize) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut left = len;
    while left > 0 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        let n = left.min(8);
        out.extend_from_slice(&bytes[..n]);
        left -= n;
    }
}

/// An object of `len` bytes (at least 40) written by `writer` in `round`:
/// `[writer u32][round u32][digest of the rest: 32 bytes][pattern]`.
pub fn versioned_object(writer: u32, round: u32, len: usize) -> Vec<u8> {
    let body = pattern(u64::from(writer) << 32 | u64::from(round), len - 40);
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&writer.to_le_bytes());
    out.extend_from_slice(&round.to_le_bytes());
    out.extend_from_slice(&Digest::of(&body).0);
    out.extend_from_slice(&body);
    out
}

/// Checks a [`versioned_object`]: returns (writer, round) if it is whole.
pub fn check_versioned(bytes: &[u8], len: usize) -> Result<(u32, u32), String> {
    if bytes.len() != len {
        return Err(format!(
            "torn object: {} bytes, expected {len}",
            bytes.len()
        ));
    }
    let writer = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
    let round = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
    let digest = &bytes[8..40];
    if Digest::of(&bytes[40..]).0 != digest {
        return Err(format!(
            "torn object: digest mismatch (header says writer {writer} round {round})"
        ));
    }
    if bytes[40..] != pattern(u64::from(writer) << 32 | u64::from(round), len - 40)[..] {
        return Err("object body is not the writer's pattern".into());
    }
    Ok((writer, round))
}
