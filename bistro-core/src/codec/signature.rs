//! Signatures of finished deltas, for signers outside this crate (the C ABI,
//! Python, hardware wallets): they sign the digest and put the signature in.

use super::format::{FOOTER_LEN, FOOTER_MAGIC, HEADER_LEN, INPUT, MAGIC};
use crate::error::{Error, Result};
use crate::identity::Signature;

/// Puts `signature` into the footer of a finished delta held in `bytes`
/// (its last 64 bytes). The digest does not cover the signature, so the
/// delta's digest is unchanged. Checks the framing (magic numbers, length),
/// not the digest or the signature: open the result with
/// [`DeltaReader::open`](super::DeltaReader::open) and, with feature
/// `sr25519`, `DeltaReader::verify_signature`.
pub fn write_signature(bytes: &mut [u8], signature: &Signature) -> Result<()> {
    let len = bytes.len();
    let minimum = HEADER_LEN + FOOTER_LEN;
    if len < minimum {
        return Err(Error::Truncated {
            input: INPUT,
            what: "header and footer".into(),
            needed: minimum as u64,
            available: len as u64,
        });
    }
    if bytes[..8] != MAGIC {
        return Err(Error::BadMagic {
            input: INPUT,
            found: bytes[..8].to_vec(),
        });
    }
    let footer_magic = len - FOOTER_LEN + 24;
    if bytes[footer_magic..footer_magic + 8] != FOOTER_MAGIC {
        return Err(Error::corrupt(
            INPUT,
            format!("byte {footer_magic}"),
            "footer magic missing: not a finished delta",
        ));
    }
    bytes[len - 64..].copy_from_slice(&signature.0);
    Ok(())
}
