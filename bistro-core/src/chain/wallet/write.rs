//! Writing hotkey files in the format `btcli` writes.

use std::path::Path;

use crate::error::{Error, Result};
use crate::identity::Keypair;

/// Writes an unencrypted hotkey file for the key pair of `seed` at `path`.
pub(super) fn create_hotkey(path: &Path, seed: [u8; 32], overwrite: bool) -> Result<Keypair> {
    let pair = Keypair::from_seed(seed)?;
    // The 64-byte schnorrkel secret key (scalar || nonce), what Substrate's
    // `Pair::to_raw_vec` and so `privateKey` in btcli's files hold.
    let mini = schnorrkel::MiniSecretKey::from_bytes(&seed)
        .map_err(|e| Error::InvalidArgument(format!("bad sr25519 seed: {e}")))?;
    let secret = mini.expand(schnorrkel::ExpansionMode::Ed25519).to_bytes();
    let public = pair.public();
    let json = serde_json::json!({
        "accountId": public.to_hex(),
        "publicKey": public.to_hex(),
        "privateKey": hex(&secret),
        "secretSeed": hex(&seed),
        "ss58Address": public.to_ss58(),
        "cryptoType": 1,
    });
    crate::chain::local::atomic_write(path, json.to_string().as_bytes(), overwrite)?;
    Ok(pair)
}

use crate::util::hex::encode_0x as hex;
