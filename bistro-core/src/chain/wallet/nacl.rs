//! Decrypting `$NACL` key files, as `bittensor-wallet` encrypts them.
//!
//! Layout: `$NACL` ‖ 24-byte nonce ‖ libsodium secretbox (16-byte Poly1305
//! tag, then the XSalsa20 ciphertext). The key is libsodium's
//! `crypto_pwhash_argon2i` of the password with a fixed 16-byte salt and the
//! "sensitive" limits (8 passes, 512 MiB): deriving it takes seconds and
//! half a gigabyte of memory by design.

use argon2::{Algorithm, Argon2, Params, Version};
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};

use super::NACL_MAGIC;
use crate::error::{Error, Result};

/// The salt `bittensor-wallet` uses for every `$NACL` file.
const NACL_SALT: &[u8; 16] = b"\x13q\x83\xdf\xf1Z\t\xbc\x9c\x90\xb5Q\x879\xe9\xb1";
/// `crypto_pwhash_argon2i_OPSLIMIT_SENSITIVE`.
const OPS_LIMIT: u32 = 8;
/// `crypto_pwhash_argon2i_MEMLIMIT_SENSITIVE` (512 MiB), in KiB.
const MEM_LIMIT_KIB: u32 = 512 * 1024;
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;

/// Decrypts a `$NACL` key file with `password`.
pub(super) fn decrypt(bytes: &[u8], password: &str) -> Result<Vec<u8>> {
    let body = bytes
        .strip_prefix(NACL_MAGIC)
        .ok_or_else(|| Error::BadMagic {
            input: "encrypted key file",
            found: bytes.iter().take(5).copied().collect(),
        })?;
    if body.len() < NONCE_BYTES + TAG_BYTES {
        return Err(Error::Truncated {
            input: "encrypted key file",
            what: "nonce and tag".into(),
            needed: (NACL_MAGIC.len() + NONCE_BYTES + TAG_BYTES) as u64,
            available: bytes.len() as u64,
        });
    }
    let (nonce, sealed) = body.split_at(NONCE_BYTES);
    let key = derive_key(password)?;
    XSalsa20Poly1305::new(&key)
        .decrypt(Nonce::from_slice(nonce), sealed)
        .map_err(|_| {
            Error::AccessDenied(
                "cannot decrypt the key file: wrong password, or the file is damaged".into(),
            )
        })
}

fn derive_key(password: &str) -> Result<Key> {
    let params = Params::new(MEM_LIMIT_KIB, OPS_LIMIT, 1, Some(32))
        .map_err(|e| Error::InvalidArgument(format!("argon2 parameters: {e}")))?;
    let mut key = Key::default();
    Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
        .hash_password_into(password.as_bytes(), NACL_SALT, &mut key)
        .map_err(|e| Error::InvalidArgument(format!("argon2: {e}")))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_foreign_input_fails_before_the_kdf() {
        assert!(matches!(
            decrypt(b"$NACLshort", "pw"),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            decrypt(b"{\"json\": 1}", "pw"),
            Err(Error::BadMagic { .. })
        ));
    }
}
