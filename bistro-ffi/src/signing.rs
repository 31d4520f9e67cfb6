//! sr25519 signatures of deltas (the Bittensor hotkey scheme): the public
//! key of a seed, signing a finished delta held in a caller's buffer, and
//! putting in a signature made elsewhere.

use bistro_core::Keypair;
use bistro_core::codec::{DeltaReader, write_signature};
use bistro_core::identity::Signature;

use crate::ffi;
use crate::panic;
use crate::status::{Failure, bistro_status};
use crate::types::{bistro_limits, limits_or_default};
use crate::version::{BISTRO_PUBLIC_KEY_LEN, BISTRO_SEED_LEN, BISTRO_SIGNATURE_LEN};

/// The sr25519 public key (hotkey, 32 bytes) of a 32-byte seed (a hotkey
/// file's `secretSeed`, as Substrate and Bittensor wallets derive it), into
/// `public_key_out` (32 bytes). Use it to fill `bistro_delta_header.hotkey`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_public_key_from_seed(
    seed: *const u8,
    public_key_out: *mut u8,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: 32 readable bytes at `seed`, 32 writable at the output (contract).
        let (seed, out) = unsafe {
            (
                ffi::arg_array::<BISTRO_SEED_LEN>(seed, "seed")?,
                ffi::out(
                    public_key_out.cast::<[u8; BISTRO_PUBLIC_KEY_LEN]>(),
                    "public_key_out",
                )?,
            )
        };
        out.write(Keypair::from_seed(*seed)?.public().0);
        Ok(())
    })
}

/// Signs a finished delta held in `delta` (`len` bytes) in place: validates
/// it against `limits` (NULL: the defaults), checks that `seed`'s public key
/// is the header's hotkey, and writes the signature of its digest into the
/// footer. The digest does not cover the signature, so it is unchanged.
/// On failure `delta` is not changed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_sign(
    delta: *mut u8,
    len: usize,
    seed: *const u8,
    limits: *const bistro_limits,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: `len` bytes at `delta` to read and change, 32 at `seed`
        // (contract).
        let (delta, seed, limits) = unsafe {
            (
                ffi::arg_slice_mut(delta, len, "delta")?,
                ffi::arg_array::<BISTRO_SEED_LEN>(seed, "seed")?,
                limits_or_default(limits)?,
            )
        };
        let keypair = Keypair::from_seed(*seed)?;
        let (hotkey, digest) = {
            let reader = DeltaReader::open(delta, &limits)?;
            (reader.header().hotkey, reader.digest())
        };
        if keypair.public() != hotkey {
            return Err(Failure::invalid(format!(
                "the seed's public key {} is not the delta's hotkey {hotkey}",
                keypair.public()
            )));
        }
        write_signature(delta, &keypair.sign(&digest.0))?;
        Ok(())
    })
}

/// Puts a 64-byte `signature` made elsewhere (a hardware wallet, another
/// signer) into the footer of the finished delta in `delta` (`len` bytes).
/// Checks the framing only (magic numbers, length): open the result and
/// call `bistro_delta_reader_verify_signature` to check the signature.
/// On failure `delta` is not changed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_set_signature(
    delta: *mut u8,
    len: usize,
    signature: *const u8,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: `len` bytes at `delta`, 64 at `signature` (contract).
        let (delta, signature) = unsafe {
            (
                ffi::arg_slice_mut(delta, len, "delta")?,
                ffi::arg_array::<BISTRO_SIGNATURE_LEN>(signature, "signature")?,
            )
        };
        write_signature(delta, &Signature(*signature))?;
        Ok(())
    })
}
