//! The timelock beacon a chain records: its public key ([`BeaconKey`]) and
//! its signed rounds ([`Pulse`]).
//!
//! A beacon in the drand style (drand *quicknet*, which subtensor records in
//! its `Drand` pallet, or the local chain's own) signs every round number
//! with one BLS12-381 key: the signature of round `r` is `sk · H(sha256(r as
//! u64 big-endian))` in G1 (48 bytes compressed), the key is `sk · g2` in G2
//! (96 bytes compressed). Data encrypted to round `r` opens with that
//! signature, which no one has before the beacon publishes it. The
//! cryptography is in `crate::timelock` (feature `timelock`); these plain data
//! types are always built, because [`Chain`](super::Chain) mentions them.

use std::fmt;

use crate::error::{Error, Result};

/// Bytes of a pulse signature (a compressed BLS12-381 G1 point).
pub const SIGNATURE_LEN: usize = 48;

/// Bytes of a beacon public key (a compressed BLS12-381 G2 point).
pub const BEACON_KEY_LEN: usize = 96;

/// Bytes of a [`BeaconKey::id`].
pub const BEACON_ID_LEN: usize = 32;

/// A beacon's public key: a compressed BLS12-381 G2 point, as drand
/// publishes it. Serialized (serde) as a lowercase hex string.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BeaconKey(pub [u8; BEACON_KEY_LEN]);

/// drand quicknet's public key (chain hash
/// `52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971`, 3 s
/// rounds from genesis 1692803367): the beacon subtensor records.
pub const QUICKNET_KEY: BeaconKey = BeaconKey(hex_array(
    "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c\
     8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb\
     5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a",
));

impl BeaconKey {
    /// The key from its 96 bytes; [`Error::InvalidArgument`] for another length.
    /// (Whether the bytes are a valid curve point is checked where the key
    /// is used, by `crate::timelock`.)
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let array: [u8; BEACON_KEY_LEN] = bytes.try_into().map_err(|_| {
            Error::InvalidArgument(format!(
                "a beacon key is {BEACON_KEY_LEN} bytes, not {}",
                bytes.len()
            ))
        })?;
        Ok(BeaconKey(array))
    }

    /// The key from 192 hex digits (an optional `0x` prefix is allowed).
    pub fn from_hex(text: &str) -> Result<Self> {
        let digits = text.strip_prefix("0x").unwrap_or(text);
        let bytes = decode_hex(digits)
            .ok_or_else(|| Error::InvalidArgument(format!("beacon key is not hex: {text:?}")))?;
        Self::from_slice(&bytes)
    }

    /// The key as lowercase hex.
    pub fn to_hex(&self) -> String {
        encode_hex(&self.0)
    }

    /// The key's id: BLAKE3-256 of its 96 bytes (what a sealed delta records
    /// to say which beacon it was sealed to).
    pub fn id(&self) -> [u8; BEACON_ID_LEN] {
        *blake3::hash(&self.0).as_bytes()
    }
}

impl fmt::Debug for BeaconKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BeaconKey({})", self.to_hex())
    }
}

impl fmt::Display for BeaconKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl serde::Serialize for BeaconKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for BeaconKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        BeaconKey::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// One round of a beacon: its number and the beacon's signature of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pulse {
    /// The round number.
    pub round: u64,
    /// The beacon's BLS signature of the round (compressed G1 point).
    pub signature: [u8; SIGNATURE_LEN],
}

impl Pulse {
    /// A pulse from a signature in hex (as drand's HTTP API and subtensor's
    /// `Drand.Pulses` give it); [`Error::InvalidArgument`] if it is not 48
    /// bytes of hex.
    pub fn from_hex(round: u64, signature: &str) -> Result<Self> {
        let digits = signature.strip_prefix("0x").unwrap_or(signature);
        let bytes = decode_hex(digits).ok_or_else(|| {
            Error::InvalidArgument(format!("pulse signature is not hex: {signature:?}"))
        })?;
        let signature = bytes.as_slice().try_into().map_err(|_| {
            Error::InvalidArgument(format!(
                "a pulse signature is {SIGNATURE_LEN} bytes, not {}",
                bytes.len()
            ))
        })?;
        Ok(Pulse { round, signature })
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Bytes of a hex string (either case); `None` if it is not hex.
pub(crate) fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

const fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A hex literal as a byte array, at compile time (a bad literal fails the build).
const fn hex_array<const N: usize>(text: &str) -> [u8; N] {
    let digits = text.as_bytes();
    assert!(digits.len() == 2 * N, "hex literal of the wrong length");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        let (Some(hi), Some(lo)) = (nibble(digits[2 * i]), nibble(digits[2 * i + 1])) else {
            // Only ever evaluated in a const context (the beacon constants
            // below): a bad literal stops the build, never a running program.
            #[allow(clippy::panic)]
            {
                panic!("not a hex literal");
            }
        };
        out[i] = hi << 4 | lo;
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quicknet_key_matches_its_hex() {
        let key = BeaconKey::from_hex(
            "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a",
        )
        .unwrap();
        assert_eq!(key, QUICKNET_KEY);
        assert_eq!(BeaconKey::from_hex(&key.to_hex()).unwrap(), key);
    }

    #[test]
    fn serde_is_a_hex_string() {
        let json = serde_json::to_string(&QUICKNET_KEY).unwrap();
        assert_eq!(json, format!("\"{}\"", QUICKNET_KEY.to_hex()));
        let back: BeaconKey = serde_json::from_str(&json).unwrap();
        assert_eq!(back, QUICKNET_KEY);
        assert!(serde_json::from_str::<BeaconKey>("\"abcd\"").is_err());
        assert!(serde_json::from_str::<BeaconKey>("\"zz\"").is_err());
    }

    #[test]
    fn bad_hex_is_an_error() {
        assert!(BeaconKey::from_hex("0").is_err());
        assert!(BeaconKey::from_hex(&"g".repeat(192)).is_err());
        assert!(Pulse::from_hex(1, &"ab".repeat(47)).is_err());
        assert!(Pulse::from_hex(1, "é").is_err());
        let p = Pulse::from_hex(7, &format!("0x{}", "AB".repeat(48))).unwrap();
        assert_eq!(p.signature, [0xab; 48]);
    }
}
