//! Timelock encryption to a drand-style beacon (feature `timelock`).
//!
//! Data encrypted to round `r` of a beacon opens only with the beacon's
//! signature of `r`, which the beacon publishes at that round's time and no
//! one has before. This is Boneh–Franklin identity-based encryption over
//! BLS12-381 exactly as drand quicknet, the subtensor runtime and the
//! `bittensor-drand` Python package use it, through the same crate they use
//! (`timelock` 0.0.1, the `TinyBLS381` engine: signatures in G1, keys in G2):
//!
//! - the identity of round `r` is `sha256(r as u64 big-endian)`, hashed to G1
//!   with the ciphersuite `BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_`;
//! - a ciphertext is the crate's `TLECiphertext` serialized with
//!   `ark-serialize` (compressed): the IBE header `U` (G2, 96 bytes), `V` and
//!   `W` (32 bytes each, with u64 length prefixes), then the message under
//!   AES-256-GCM and the cipher suite `AES_GCM_`: **244 + message bytes**.
//!   These are the bytes subtensor's commit-reveal decrypts, and what
//!   `bittensor-drand` puts inside its envelope (`SCALE(Vec<u8>) ‖ u64 LE round`).
//!
//! Inputs are treated as hostile: ciphertexts are capped at
//! [`MAX_CIPHERTEXT_LEN`], fully parsed (no trailing bytes), and the fields
//! on which the crate would index out of bounds are checked before it sees
//! them; every failure is an [`Error::Timelock`] (no panic, no `catch_unwind`).
//!
//! [`LocalBeacon`] is a beacon with a known secret: the local chain's, and tests'.

use ark_ec::Group;
use ark_ff::{PrimeField, Zero};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::Digest as _;
use timelock::curves::drand::TinyBLS381;
use timelock::ibe::fullident::Identity;
use timelock::stream_ciphers::{AESGCMStreamCipherProvider, AESOutput};
use timelock::tlock::{EngineBLS, TLECiphertext, tld, tle};

use crate::error::{Error, Result, TimelockError};

pub use crate::chain::beacon::{
    BEACON_ID_LEN, BEACON_KEY_LEN, BeaconKey, Pulse, QUICKNET_KEY, SIGNATURE_LEN,
};

/// The largest ciphertext [`decrypt`] accepts (and [`encrypt`] makes):
/// 64 KiB, far above a commit-reveal payload (≤ 5000 bytes on subtensor) or
/// a sealed delta's 32-byte key (276 bytes).
pub const MAX_CIPHERTEXT_LEN: usize = 64 * 1024;

/// Bytes a ciphertext adds to its message.
pub const CIPHERTEXT_OVERHEAD: usize = 244;

/// The cipher suite id the ciphertext records for its body.
const CIPHER_SUITE: &[u8] = b"AES_GCM_";

/// G1 (signatures, round identities) and G2 (beacon keys) of BLS12-381.
type G1 = <TinyBLS381 as EngineBLS>::SignatureGroup;
type G2 = <TinyBLS381 as EngineBLS>::PublicKeyGroup;
type Scalar = <TinyBLS381 as EngineBLS>::Scalar;

/// drand quicknet's public key: the beacon subtensor records.
pub fn quicknet_key() -> BeaconKey {
    QUICKNET_KEY
}

/// Encrypts `message` to round `round` of the beacon `key`. `rng_seed` seeds
/// the encryption's randomness (ChaCha20): give fresh random bytes (for
/// example from [`random_seed`]); a fixed seed makes the output reproducible,
/// which only tests want. The output is the serialized `TLECiphertext`,
/// [`CIPHERTEXT_OVERHEAD`] bytes longer than `message`.
///
/// Errors: the key is not a valid G2 point ([`TimelockError::Malformed`]);
/// the message would make a ciphertext over [`MAX_CIPHERTEXT_LEN`]
/// ([`Error::LimitExceeded`]).
pub fn encrypt(key: &BeaconKey, round: u64, message: &[u8], rng_seed: [u8; 32]) -> Result<Vec<u8>> {
    let limit = MAX_CIPHERTEXT_LEN - CIPHERTEXT_OVERHEAD;
    if message.len() > limit {
        return Err(Error::limit(
            "timelock message bytes",
            limit as u64,
            message.len() as u64,
        ));
    }
    let public = parse_key(key)?;
    let mut rng = ChaCha20Rng::from_seed(rng_seed);
    // The symmetric key of the body; bittensor-drand draws it from the OS RNG.
    let mut body_key = [0u8; 32];
    rng.fill_bytes(&mut body_key);
    let ct = tle::<TinyBLS381, AESGCMStreamCipherProvider, _>(
        public,
        body_key,
        message,
        round_identity(round),
        rng,
    )
    .map_err(|e| malformed("message", format!("encryption failed: {e:?}")))?;
    let mut out = Vec::with_capacity(message.len() + CIPHERTEXT_OVERHEAD);
    ct.serialize_compressed(&mut out)
        .map_err(|e| malformed("ciphertext", format!("cannot serialize: {e}")))?;
    Ok(out)
}

/// Decrypts a ciphertext made by [`encrypt`] (or by `bittensor-drand`, or
/// the subtensor runtime's format) with the pulse of its round.
///
/// Errors ([`Error::Timelock`]): [`TimelockError::Malformed`] for bytes that
/// are not a ciphertext (or over [`MAX_CIPHERTEXT_LEN`]) or a signature that
/// is not a G1 point; [`TimelockError::DecryptFailed`] when the pulse does
/// not open it (another round, another beacon, or altered bytes). The round
/// is not recorded in the ciphertext: a pulse for another round fails as
/// `DecryptFailed`.
pub fn decrypt(ciphertext: &[u8], pulse: &Pulse) -> Result<Vec<u8>> {
    let ct = parse_ciphertext(ciphertext)?;
    let signature = parse_signature(&pulse.signature)?;
    let failed = || Error::Timelock(TimelockError::DecryptFailed { round: pulse.round });
    tld::<TinyBLS381, AESGCMStreamCipherProvider>(ct, signature).map_err(|e| match e {
        timelock::tlock::Error::DeserializationError => {
            malformed("ciphertext", "the body is not an AES-GCM output")
        }
        _ => failed(),
    })
}

/// Checks that `pulse` is the beacon `key`'s signature of its round (the BLS
/// check `e(signature, g2) = e(H(round), key)`).
///
/// Errors: [`TimelockError::Malformed`] for a key or signature that is not a
/// valid point; [`TimelockError::BadPulse`] for a signature that does not
/// verify.
pub fn verify_pulse(key: &BeaconKey, pulse: &Pulse) -> Result<()> {
    let public = parse_key(key)?;
    let signature = parse_signature(&pulse.signature)?;
    let hashed = round_identity(pulse.round).public::<TinyBLS381>();
    let lhs = TinyBLS381::pairing(G2::generator(), signature);
    let rhs = TinyBLS381::pairing(public, hashed);
    if lhs == rhs {
        Ok(())
    } else {
        Err(Error::Timelock(TimelockError::BadPulse {
            round: pulse.round,
        }))
    }
}

/// 32 fresh bytes from the operating system's RNG (for [`encrypt`]'s seed
/// and for content keys). [`Error::Unavailable`] if the OS has no RNG.
pub fn random_seed() -> Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)
        .map_err(|e| Error::Unavailable(format!("the OS random number generator failed: {e}")))?;
    Ok(seed)
}

/// A beacon whose secret key we hold: it signs any round at once. The local
/// chain's beacon is one (its secret derived from the chain's genesis), so
/// that local networks run the same timelock cycle as Bittensor; tests use
/// one to make pulses for any round.
#[derive(Clone)]
pub struct LocalBeacon {
    secret: Scalar,
    key: BeaconKey,
}

impl std::fmt::Debug for LocalBeacon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBeacon")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl LocalBeacon {
    /// The beacon whose secret key is derived from `seed` (BLAKE3 in
    /// derive-key mode, 64 bytes reduced modulo the group order). Anyone who
    /// knows the seed can sign every round: it is not a secret beacon.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let mut wide = [0u8; 64];
        let mut hasher = blake3::Hasher::new_derive_key("bistro local beacon secret key v1");
        hasher.update(&seed);
        hasher.finalize_xof().fill(&mut wide);
        let mut secret = Scalar::from_le_bytes_mod_order(&wide);
        if secret.is_zero() {
            // Probability 2^-255; a zero key would sign nothing.
            secret = Scalar::from(1u64);
        }
        let key = BeaconKey(compress_g2(&(G2::generator() * secret)));
        LocalBeacon { secret, key }
    }

    /// The beacon's public key.
    pub fn key(&self) -> BeaconKey {
        self.key
    }

    /// The beacon's pulse for `round`: `secret · H(sha256(round))`.
    pub fn pulse(&self, round: u64) -> Pulse {
        let signature = round_identity(round).extract::<TinyBLS381>(self.secret).0;
        Pulse {
            round,
            signature: compress_g1(&signature),
        }
    }
}

/// The IBE identity of a round: sha256 of the round as u64 big-endian.
fn round_identity(round: u64) -> Identity {
    let digest = sha2::Sha256::digest(round.to_be_bytes());
    Identity::new(b"", vec![digest.to_vec()])
}

/// The G2 point of a beacon key: validated (on the curve, in the subgroup)
/// and not the identity (to which anything "encrypted" opens for everyone).
fn parse_key(key: &BeaconKey) -> Result<G2> {
    let point = G2::deserialize_compressed(&key.0[..])
        .map_err(|e| malformed("beacon key", format!("not a BLS12-381 G2 point: {e}")))?;
    if point.is_zero() {
        return Err(malformed("beacon key", "the point at infinity"));
    }
    Ok(point)
}

/// The G1 point of a pulse signature, validated, and not the identity (no
/// round of a non-zero key signs to it; `ark-serialize` reads any bytes with
/// the infinity flag as the identity).
fn parse_signature(signature: &[u8; SIGNATURE_LEN]) -> Result<G1> {
    let point = G1::deserialize_compressed(&signature[..])
        .map_err(|e| malformed("signature", format!("not a BLS12-381 G1 point: {e}")))?;
    if point.is_zero() {
        return Err(malformed("signature", "the point at infinity"));
    }
    Ok(point)
}

/// Parses a ciphertext and checks what the `timelock` crate would otherwise
/// panic on (`V` and `W` must be exactly 32 bytes: it indexes them as such).
fn parse_ciphertext(bytes: &[u8]) -> Result<TLECiphertext<TinyBLS381>> {
    if bytes.len() > MAX_CIPHERTEXT_LEN {
        return Err(malformed(
            "ciphertext",
            format!(
                "{} bytes, over the limit of {MAX_CIPHERTEXT_LEN}",
                bytes.len()
            ),
        ));
    }
    let mut reader = bytes;
    let ct = TLECiphertext::<TinyBLS381>::deserialize_compressed(&mut reader)
        .map_err(|e| malformed("ciphertext", format!("does not parse: {e}")))?;
    if !reader.is_empty() {
        return Err(malformed(
            "ciphertext",
            format!("{} trailing bytes", reader.len()),
        ));
    }
    if ct.header.v.len() != 32 || ct.header.w.len() != 32 {
        return Err(malformed(
            "ciphertext",
            format!(
                "IBE fields of {} and {} bytes (both must be 32)",
                ct.header.v.len(),
                ct.header.w.len()
            ),
        ));
    }
    if ct.cipher_suite != CIPHER_SUITE {
        return Err(malformed("ciphertext", "unknown cipher suite"));
    }
    // The body: the AES-GCM output (ciphertext with tag, 12-byte nonce), exactly.
    let mut body = &ct.body[..];
    let aes = AESOutput::deserialize_compressed(&mut body)
        .map_err(|e| malformed("ciphertext", format!("the body does not parse: {e}")))?;
    if !body.is_empty() || aes.nonce.len() != 12 || aes.ciphertext.len() < 16 {
        return Err(malformed(
            "ciphertext",
            "the body is not an AES-GCM output (12-byte nonce, 16-byte tag)",
        ));
    }
    Ok(ct)
}

fn compress_g1(point: &G1) -> [u8; SIGNATURE_LEN] {
    let mut out = [0u8; SIGNATURE_LEN];
    // A G1 point always serializes to exactly 48 compressed bytes.
    let _ = point.serialize_compressed(&mut out[..]);
    out
}

fn compress_g2(point: &G2) -> [u8; BEACON_KEY_LEN] {
    let mut out = [0u8; BEACON_KEY_LEN];
    // A G2 point always serializes to exactly 96 compressed bytes.
    let _ = point.serialize_compressed(&mut out[..]);
    out
}

fn malformed(what: &'static str, reason: impl Into<String>) -> Error {
    Error::Timelock(TimelockError::Malformed {
        what,
        reason: reason.into(),
    })
}

#[cfg(test)]
mod tests;
