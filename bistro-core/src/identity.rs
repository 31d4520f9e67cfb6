//! Who wrote something: hotkey public keys, their SS58 addresses, and
//! sr25519 signatures.
//!
//! A Bittensor hotkey is an sr25519 key pair. Its 32-byte public key is what
//! the delta header, the storage key layout and the chain name; its SS58
//! address (network prefix 42) is what people read. Signing and verifying need
//! the `sr25519` feature; the types themselves are always available so that a
//! decoder can carry a signature it does not check.

use std::fmt;
use std::str::FromStr;

use blake2::{Blake2b512, Digest as _};

use crate::digest::parse_hex_32;
use crate::error::{Error, Result};

/// The SS58 network prefix Bittensor uses (the generic Substrate prefix).
pub const SS58_PREFIX: u16 = 42;

/// A 32-byte sr25519 public key (a hotkey).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PublicKey(pub [u8; 32]);

/// A 64-byte sr25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// The all-zero signature: "not signed".
    pub const NONE: Signature = Signature([0; 64]);

    /// Whether this is the all-zero "not signed" value.
    pub fn is_none(&self) -> bool {
        self.0 == [0; 64]
    }
}

impl Default for Signature {
    fn default() -> Self {
        Signature::NONE
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

impl PublicKey {
    /// The SS58 address of this key with Bittensor's prefix (42).
    pub fn to_ss58(&self) -> String {
        // Prefixes below 64 take one byte; 42 is one of them.
        let mut payload = Vec::with_capacity(35);
        payload.push(SS58_PREFIX as u8);
        payload.extend_from_slice(&self.0);
        let checksum = ss58_checksum(&payload);
        payload.extend_from_slice(&checksum[..2]);
        base58_encode(&payload)
    }

    /// Parses an SS58 address (any one-byte prefix) and checks its checksum.
    pub fn from_ss58(address: &str) -> Result<Self> {
        let bad =
            |why: &str| Error::InvalidArgument(format!("bad SS58 address {address:?}: {why}"));
        let bytes = base58_decode(address).ok_or_else(|| bad("not base58"))?;
        if bytes.len() != 35 {
            return Err(bad("wrong length for a 32-byte key with a one-byte prefix"));
        }
        if bytes[0] >= 64 {
            return Err(bad("two-byte network prefixes are not used by Bittensor"));
        }
        let checksum = ss58_checksum(&bytes[..33]);
        if bytes[33..35] != checksum[..2] {
            return Err(bad("checksum mismatch"));
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes[1..33]);
        Ok(PublicKey(key))
    }

    /// The key as `0x`-prefixed hex, as wallet files write it.
    pub fn to_hex(&self) -> String {
        crate::util::hex::encode_0x(&self.0)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_ss58())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_ss58())
    }
}

impl FromStr for PublicKey {
    type Err = Error;

    /// Accepts an SS58 address or 64 hex digits (optionally `0x`-prefixed).
    fn from_str(s: &str) -> Result<Self> {
        match parse_hex_32(s) {
            Some(bytes) => Ok(PublicKey(bytes)),
            None => PublicKey::from_ss58(s),
        }
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_ss58())
    }
}

impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn ss58_checksum(payload: &[u8]) -> [u8; 64] {
    let mut h = Blake2b512::new();
    h.update(b"SS58PRE");
    h.update(payload);
    h.finalize().into()
}

const BASE58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

fn base58_encode(bytes: &[u8]) -> String {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    // Base-58 digits, least significant first.
    let mut digits: Vec<u8> = Vec::with_capacity(bytes.len() * 138 / 100 + 1);
    for &byte in bytes {
        let mut carry = u32::from(byte);
        for d in digits.iter_mut() {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut out = String::with_capacity(zeros + digits.len());
    out.extend(std::iter::repeat_n('1', zeros));
    out.extend(
        digits
            .iter()
            .rev()
            .map(|&d| char::from(BASE58[usize::from(d)])),
    );
    out
}

fn base58_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() > 128 {
        return None;
    }
    let zeros = s.bytes().take_while(|&c| c == b'1').count();
    // Bytes, least significant first.
    let mut bytes: Vec<u8> = Vec::with_capacity(s.len());
    for c in s.bytes() {
        let mut carry = BASE58.iter().position(|&d| d == c)? as u32;
        for b in bytes.iter_mut() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let mut out = vec![0u8; zeros];
    out.extend(bytes.iter().rev());
    Some(out)
}

#[cfg(feature = "sr25519")]
#[cfg_attr(docsrs, doc(cfg(feature = "sr25519")))]
pub use keypair::Keypair;

#[cfg(feature = "sr25519")]
mod keypair {
    use super::{PublicKey, Signature};
    use crate::error::{Error, Result};

    /// The signing context Substrate uses for sr25519, so that signatures
    /// made here verify with any Substrate/Bittensor tool and vice versa.
    const SIGNING_CONTEXT: &[u8] = b"substrate";

    /// An sr25519 key pair (a hotkey), made from a 32-byte seed exactly as
    /// Substrate and Bittensor's wallets do (`secretSeed` in a hotkey file).
    pub struct Keypair {
        inner: schnorrkel::Keypair,
        seed: [u8; 32],
    }

    impl Keypair {
        /// The key pair of a 32-byte mini secret key (Substrate's "seed").
        pub fn from_seed(seed: [u8; 32]) -> Result<Self> {
            let mini = schnorrkel::MiniSecretKey::from_bytes(&seed)
                .map_err(|e| Error::InvalidArgument(format!("bad sr25519 seed: {e}")))?;
            Ok(Keypair {
                inner: mini.expand_to_keypair(schnorrkel::ExpansionMode::Ed25519),
                seed,
            })
        }

        /// The seed this pair was made from.
        pub fn seed(&self) -> [u8; 32] {
            self.seed
        }

        /// The public key.
        pub fn public(&self) -> PublicKey {
            PublicKey(self.inner.public.to_bytes())
        }

        /// Signs `message` (in bistro, always a 32-byte digest).
        pub fn sign(&self, message: &[u8]) -> Signature {
            let ctx = schnorrkel::signing_context(SIGNING_CONTEXT);
            Signature(self.inner.sign(ctx.bytes(message)).to_bytes())
        }
    }

    impl Clone for Keypair {
        fn clone(&self) -> Self {
            // A seed that made a pair once always makes it again.
            Keypair {
                inner: self.inner.clone(),
                seed: self.seed,
            }
        }
    }

    impl std::fmt::Debug for Keypair {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Keypair({})", self.public())
        }
    }

    impl PublicKey {
        /// Checks that `signature` is this key's signature of `message`.
        pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<()> {
            let key = schnorrkel::PublicKey::from_bytes(&self.0).map_err(|e| {
                Error::BadSignature(format!(
                    "public key {self} is not a valid sr25519 point: {e}"
                ))
            })?;
            let sig = schnorrkel::Signature::from_bytes(&signature.0)
                .map_err(|e| Error::BadSignature(format!("malformed signature: {e}")))?;
            let ctx = schnorrkel::signing_context(SIGNING_CONTEXT);
            key.verify(ctx.bytes(message), &sig)
                .map_err(|_| Error::BadSignature(format!("signature does not verify for {self}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ss58_of_alice_matches_substrate() {
        // Alice's well-known sr25519 public key and her generic-prefix address.
        let alice: PublicKey = "0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
            .parse()
            .unwrap();
        assert_eq!(
            alice.to_ss58(),
            "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
        );
        assert_eq!(PublicKey::from_ss58(&alice.to_ss58()).unwrap(), alice);
    }

    #[test]
    fn ss58_rejects_bad_checksum_and_garbage() {
        assert!(PublicKey::from_ss58("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ").is_err());
        assert!(PublicKey::from_ss58("0OIl").is_err());
        assert!(PublicKey::from_ss58("").is_err());
        assert!(PublicKey::from_ss58(&"1".repeat(500)).is_err());
    }

    #[cfg(feature = "sr25519")]
    #[test]
    fn alice_seed_gives_alice_and_signatures_verify() {
        // //Alice's mini secret key (subkey inspect //Alice).
        let seed =
            parse_hex_32("0xe5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a")
                .unwrap();
        let pair = Keypair::from_seed(seed).unwrap();
        assert_eq!(
            pair.public().to_ss58(),
            "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
        );
        let sig = pair.sign(b"digest");
        pair.public().verify(b"digest", &sig).unwrap();
        assert!(matches!(
            pair.public().verify(b"other", &sig),
            Err(Error::BadSignature(_))
        ));
        let mut forged = sig;
        forged.0[5] ^= 1;
        assert!(pair.public().verify(b"digest", &forged).is_err());
    }
}
