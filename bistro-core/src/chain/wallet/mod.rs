//! Bittensor wallets on disk, as the official tools (`btcli`,
//! `bittensor-wallet`) write them.
//!
//! A wallet is a folder `<path>/<name>/` (`path` defaults to
//! `~/.bittensor/wallets`) holding `coldkey`, `coldkeypub.txt` and
//! `hotkeys/<hotkey>`. A hotkey file is normally plain JSON:
//!
//! ```json
//! {"accountId": "0x…", "publicKey": "0x…", "privateKey": "0x…",
//!  "secretPhrase": "twelve words …", "secretSeed": "0x…32 bytes…",
//!  "ss58Address": "5…", "cryptoType": 1}
//! ```
//!
//! bistro signs with the sr25519 key made from `secretSeed` (Substrate's
//! mini secret key) and checks it against `publicKey`. A file that starts
//! with `$NACL` is encrypted (argon2i + XSalsa20-Poly1305): reading it
//! needs its password and the `subtensor` feature, and gives a clear error
//! otherwise. Ansible-vault and legacy (Fernet) encrypted files are refused
//! with an explanation.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::digest::parse_hex_32;
use crate::error::{Error, Result};
use crate::identity::PublicKey;

#[cfg(feature = "subtensor")]
mod nacl;
#[cfg(feature = "sr25519")]
mod write;

/// The default wallet folder's name under `$HOME`.
pub const DEFAULT_WALLETS_DIR: &str = ".bittensor/wallets";

/// The default wallet and hotkey name.
pub const DEFAULT_NAME: &str = "default";

/// Largest key file read: real ones are under 1 KiB.
const MAX_KEYFILE_BYTES: u64 = 64 * 1024;

/// The magic that starts a NaCl-encrypted key file.
pub const NACL_MAGIC: &[u8] = b"$NACL";

/// A wallet: where its files are, and which hotkey to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wallet {
    /// The folder holding wallets (`~/.bittensor/wallets`).
    pub path: PathBuf,
    /// The wallet's name (`--wallet.name`).
    pub name: String,
    /// The hotkey's name (`--wallet.hotkey`).
    pub hotkey: String,
}

/// What a hotkey file holds, as far as bistro needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct HotkeyFile {
    /// The public key (`publicKey`, or from `ss58Address`).
    pub public_key: PublicKey,
    /// The 32-byte sr25519 seed (`secretSeed`), if the file has one.
    pub secret_seed: Option<[u8; 32]>,
}

impl std::fmt::Debug for HotkeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotkeyFile")
            .field("public_key", &self.public_key)
            .field("secret_seed", &self.secret_seed.map(|_| "…"))
            .finish()
    }
}

impl Wallet {
    /// A wallet `name` with hotkey `hotkey` in the folder `path`.
    pub fn new(
        path: impl Into<PathBuf>,
        name: impl Into<String>,
        hotkey: impl Into<String>,
    ) -> Self {
        Wallet {
            path: path.into(),
            name: name.into(),
            hotkey: hotkey.into(),
        }
    }

    /// `~/.bittensor/wallets` (from `$HOME`; `.bittensor/wallets` under the
    /// current folder if `$HOME` is unset).
    pub fn default_path() -> PathBuf {
        match std::env::var_os("HOME") {
            Some(home) if !home.is_empty() => PathBuf::from(home).join(DEFAULT_WALLETS_DIR),
            _ => PathBuf::from(DEFAULT_WALLETS_DIR),
        }
    }

    /// The hotkey file: `<path>/<name>/hotkeys/<hotkey>`.
    pub fn hotkey_path(&self) -> Result<PathBuf> {
        check_name("wallet name", &self.name)?;
        check_name("hotkey name", &self.hotkey)?;
        Ok(self
            .path
            .join(&self.name)
            .join("hotkeys")
            .join(&self.hotkey))
    }

    /// The public coldkey file: `<path>/<name>/coldkeypub.txt`.
    pub fn coldkeypub_path(&self) -> Result<PathBuf> {
        check_name("wallet name", &self.name)?;
        Ok(self.path.join(&self.name).join("coldkeypub.txt"))
    }

    /// Reads the hotkey file. `password` is needed only for encrypted files.
    pub fn read_hotkey(&self, password: Option<&str>) -> Result<HotkeyFile> {
        let path = self.hotkey_path()?;
        let bytes = read_keyfile(&path)?;
        parse_hotkey(&bytes, password).map_err(|e| in_file(e, &path))
    }

    /// The coldkey's public key from `coldkeypub.txt`, if the file exists.
    pub fn coldkey_public(&self) -> Result<Option<PublicKey>> {
        let path = self.coldkeypub_path()?;
        if !path.exists() {
            return Ok(None);
        }
        let bytes = read_keyfile(&path)?;
        let json: KeyfileJson = serde_json::from_slice(&bytes).map_err(|e| {
            Error::corrupt("wallet key file", path.display().to_string(), e.to_string())
        })?;
        public_key_of(&json)
            .map(Some)
            .map_err(|e| in_file(e, &path))
    }

    /// The hotkey's key pair (reads and checks the file).
    #[cfg(feature = "sr25519")]
    pub fn hotkey_pair(&self, password: Option<&str>) -> Result<crate::identity::Keypair> {
        let path = self.hotkey_path()?;
        let file = self.read_hotkey(password)?;
        file.keypair().map_err(|e| in_file(e, &path))
    }

    /// Writes a new unencrypted hotkey file for the key pair of `seed`, in
    /// the format `btcli` writes (atomically: a temporary file, then a
    /// rename). Refuses to replace an existing file unless `overwrite`.
    #[cfg(feature = "sr25519")]
    pub fn create_hotkey(
        &self,
        seed: [u8; 32],
        overwrite: bool,
    ) -> Result<crate::identity::Keypair> {
        write::create_hotkey(&self.hotkey_path()?, seed, overwrite)
    }

    /// Writes `coldkeypub.txt` for `public` (atomically), as `btcli` does.
    pub fn write_coldkeypub(&self, public: &PublicKey, overwrite: bool) -> Result<()> {
        let path = self.coldkeypub_path()?;
        let json = serde_json::json!({
            "accountId": public.to_hex(),
            "publicKey": public.to_hex(),
            "ss58Address": public.to_ss58(),
            "cryptoType": 1,
        });
        crate::chain::local::atomic_write(&path, json.to_string().as_bytes(), overwrite)
    }
}

impl HotkeyFile {
    /// The key pair made from `secretSeed`, checked against `publicKey`.
    #[cfg(feature = "sr25519")]
    pub fn keypair(&self) -> Result<crate::identity::Keypair> {
        let seed = self.secret_seed.ok_or_else(|| {
            Error::InvalidArgument(
                "the hotkey file has no secretSeed (it was made from a derivation path such \
                 as //Alice, or by a tool that does not store the seed); create the hotkey \
                 with `btcli wallet new-hotkey` or regenerate it from its mnemonic"
                    .into(),
            )
        })?;
        let pair = crate::identity::Keypair::from_seed(seed)?;
        if pair.public() != self.public_key {
            return Err(Error::corrupt(
                "wallet key file",
                "secretSeed",
                format!(
                    "the seed gives {} but the file says publicKey {}",
                    pair.public(),
                    self.public_key
                ),
            ));
        }
        Ok(pair)
    }
}

/// The JSON fields of a key file that bistro reads.
#[derive(Deserialize)]
struct KeyfileJson {
    #[serde(rename = "publicKey")]
    public_key: Option<String>,
    #[serde(rename = "accountId")]
    account_id: Option<String>,
    #[serde(rename = "ss58Address")]
    ss58_address: Option<String>,
    #[serde(rename = "secretSeed")]
    secret_seed: Option<String>,
}

/// Parses the bytes of a hotkey file (plain JSON, or `$NACL` with `password`).
pub fn parse_hotkey(bytes: &[u8], password: Option<&str>) -> Result<HotkeyFile> {
    if bytes.starts_with(NACL_MAGIC) {
        let plain = decrypt_nacl(bytes, password)?;
        return parse_hotkey(&plain, None);
    }
    if bytes.starts_with(b"$ANSIBLE_VAULT") || bytes.starts_with(b"gAAAAA") {
        return Err(Error::Unavailable(
            "the key file uses an old encryption (ansible-vault or legacy Fernet) that bistro \
             does not read; re-encrypt or regenerate it with a current `btcli` \
             (`btcli wallet regen-hotkey`)"
                .into(),
        ));
    }
    let json: KeyfileJson = serde_json::from_slice(bytes)
        .map_err(|e| Error::corrupt("wallet key file", "JSON", e.to_string()))?;
    let public_key = public_key_of(&json)?;
    let secret_seed = match &json.secret_seed {
        None => None,
        Some(hex) => Some(parse_hex_32(hex).ok_or_else(|| {
            Error::corrupt("wallet key file", "secretSeed", "not 32 bytes of hex")
        })?),
    };
    Ok(HotkeyFile {
        public_key,
        secret_seed,
    })
}

fn public_key_of(json: &KeyfileJson) -> Result<PublicKey> {
    let from_hex = |field: &'static str, value: &Option<String>| -> Result<Option<PublicKey>> {
        match value {
            None => Ok(None),
            Some(hex) => parse_hex_32(hex)
                .map(|b| Some(PublicKey(b)))
                .ok_or_else(|| Error::corrupt("wallet key file", field, "not 32 bytes of hex")),
        }
    };
    let keys = [
        from_hex("publicKey", &json.public_key)?,
        from_hex("accountId", &json.account_id)?,
        match &json.ss58_address {
            None => None,
            Some(a) => Some(
                PublicKey::from_ss58(a)
                    .map_err(|e| Error::corrupt("wallet key file", "ss58Address", e.to_string()))?,
            ),
        },
    ];
    let mut found = keys.iter().flatten();
    let first = *found.next().ok_or_else(|| {
        Error::corrupt(
            "wallet key file",
            "publicKey",
            "no publicKey, accountId or ss58Address",
        )
    })?;
    if found.any(|k| *k != first) {
        return Err(Error::corrupt(
            "wallet key file",
            "publicKey",
            "publicKey, accountId and ss58Address disagree",
        ));
    }
    Ok(first)
}

#[cfg(feature = "subtensor")]
fn decrypt_nacl(bytes: &[u8], password: Option<&str>) -> Result<Vec<u8>> {
    let password = password.ok_or_else(encrypted_without_password)?;
    nacl::decrypt(bytes, password)
}

#[cfg(not(feature = "subtensor"))]
fn decrypt_nacl(_bytes: &[u8], password: Option<&str>) -> Result<Vec<u8>> {
    if password.is_none() {
        return Err(encrypted_without_password());
    }
    Err(Error::Unavailable(
        "the key file is encrypted ($NACL) and this build cannot decrypt it: build bistro \
         with the `subtensor` feature, or store the hotkey unencrypted (`btcli wallet \
         regen-hotkey --no-use-password`)"
            .into(),
    ))
}

fn encrypted_without_password() -> Error {
    Error::InvalidArgument(
        "the key file is encrypted ($NACL): supply its password, or store the hotkey \
         unencrypted (`btcli wallet regen-hotkey --no-use-password`; hotkeys are \
         normally not encrypted)"
            .into(),
    )
}

/// 32 random bytes from the operating system (`/dev/urandom`), to make a
/// new hotkey with [`Wallet::create_hotkey`].
pub fn random_seed() -> Result<[u8; 32]> {
    let path = "/dev/urandom";
    let mut seed = [0u8; 32];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| Error::io(path, e))?;
    Ok(seed)
}

/// Reads a key file with a size cap.
fn read_keyfile(path: &Path) -> Result<Vec<u8>> {
    let file = fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound(format!(
            "no key file at {} (create the wallet with `btcli wallet new-hotkey`)",
            path.display()
        )),
        _ => Error::io(path, e),
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_KEYFILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > MAX_KEYFILE_BYTES {
        return Err(Error::limit(
            format!("key file {}", path.display()),
            MAX_KEYFILE_BYTES,
            bytes.len() as u64,
        ));
    }
    Ok(bytes)
}

/// Adds the file's path to an error about its content.
fn in_file(err: Error, path: &Path) -> Error {
    match err {
        Error::Corrupt {
            input,
            location,
            reason,
        } => Error::Corrupt {
            input,
            location: format!("{} ({location})", path.display()),
            reason,
        },
        Error::InvalidArgument(m) => Error::InvalidArgument(format!("{}: {m}", path.display())),
        Error::Unavailable(m) => Error::Unavailable(format!("{}: {m}", path.display())),
        other => other,
    }
}

/// Wallet and hotkey names are single path components.
fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 255
        && !name.contains(['/', '\\', '\0']);
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{what} {name:?} is not a plain file name"
        )))
    }
}
