//! Wallet files as the official `bittensor-wallet` writes them (fixtures in
//! tests/data/chain/wallets, see its README), and the files bistro writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

use std::path::PathBuf;

use bistro_core::Error;
use bistro_core::chain::wallet::{Wallet, parse_hotkey, random_seed};
use bistro_core::identity::PublicKey;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/chain/wallets")
}

/// The key in bob's and carol's files (from a random mnemonic).
const BOB: &str = "5FHxKcsCUspoYerkWhKbS8S85LzgCZDRPxvc1ct2ZkJWdcZ3";
const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

#[test]
fn a_btcli_hotkey_file_reads() {
    let file = Wallet::new(fixtures(), "bob", "hk2")
        .read_hotkey(None)
        .unwrap();
    assert_eq!(file.public_key, PublicKey::from_ss58(BOB).unwrap());
    assert_eq!(
        file.secret_seed.unwrap()[..4],
        [0x03, 0x81, 0x1b, 0x2e],
        "secretSeed 0x03811b2e…"
    );
    let cold = Wallet::new(fixtures(), "bob", "hk2")
        .coldkey_public()
        .unwrap();
    assert_eq!(cold, Some(PublicKey::from_ss58(BOB).unwrap()));
    assert_eq!(
        Wallet::new(fixtures(), "alice", "hk1")
            .coldkey_public()
            .unwrap(),
        None
    );
}

#[test]
fn random_seeds_differ() {
    let (a, b) = (random_seed().unwrap(), random_seed().unwrap());
    assert_ne!(a, b);
    assert_ne!(a, [0; 32]);
}

#[test]
fn a_derived_key_file_has_no_seed() {
    let wallet = Wallet::new(fixtures(), "alice", "hk1");
    let file = wallet.read_hotkey(None).unwrap();
    assert_eq!(file.public_key, PublicKey::from_ss58(ALICE).unwrap());
    assert_eq!(file.secret_seed, None);
    #[cfg(feature = "sr25519")]
    {
        let err = wallet.hotkey_pair(None).unwrap_err();
        assert!(err.to_string().contains("secretSeed"), "{err}");
    }
}

#[test]
fn missing_bad_and_hostile_files_give_clear_errors() {
    let wallet = Wallet::new(fixtures(), "nobody", "none");
    assert!(matches!(wallet.read_hotkey(None), Err(Error::NotFound(_))));
    for bad in ["..", "a/b", "", "."] {
        let w = Wallet::new(fixtures(), bad, "hk");
        assert!(
            matches!(w.read_hotkey(None), Err(Error::InvalidArgument(_))),
            "{bad:?}"
        );
        let w = Wallet::new(fixtures(), "bob", bad);
        assert!(
            matches!(w.hotkey_path(), Err(Error::InvalidArgument(_))),
            "{bad:?}"
        );
    }
    let good = std::fs::read(fixtures().join("bob/hotkeys/hk2")).unwrap();
    let text = String::from_utf8(good.clone()).unwrap();
    let cases: Vec<Vec<u8>> = vec![
        good[..good.len() / 2].to_vec(),
        b"not json".to_vec(),
        b"{}".to_vec(),
        text.replace("\"secretSeed\":\"0x03", "\"secretSeed\":\"0xzz")
            .into_bytes(),
        // The public key fields disagree.
        text.replace("\"publicKey\":\"0x8e", "\"publicKey\":\"0x9e")
            .into_bytes(),
    ];
    for bytes in cases {
        assert!(
            matches!(parse_hotkey(&bytes, None), Err(Error::Corrupt { .. })),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }
    // Old encryption formats are refused with an explanation.
    for old in [&b"$ANSIBLE_VAULT;1.1;AES256\n..."[..], b"gAAAAABk..."] {
        let err = parse_hotkey(old, Some("pw")).unwrap_err();
        assert!(err.to_string().contains("btcli"), "{err}");
    }
    // An oversized file is not read whole.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w/hotkeys/big");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::File::create(&path)
        .unwrap()
        .set_len(10 << 20)
        .unwrap();
    assert!(matches!(
        Wallet::new(dir.path(), "w", "big").read_hotkey(None),
        Err(Error::LimitExceeded { .. })
    ));
}

#[test]
fn an_encrypted_file_without_password_says_so() {
    let wallet = Wallet::new(fixtures(), "carol", "hk3");
    let err = wallet.read_hotkey(None).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(err.to_string().contains("encrypted"), "{err}");
    assert!(err.to_string().contains("password"), "{err}");
    #[cfg(not(feature = "subtensor"))]
    {
        let err = wallet
            .read_hotkey(Some("correct horse battery"))
            .unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err}");
    }
}

/// Decrypting runs libsodium's "sensitive" argon2i (512 MiB, 8 passes):
/// seconds of work, once.
#[cfg(feature = "subtensor")]
#[test]
fn an_encrypted_btwallet_file_decrypts_with_its_password() {
    let wallet = Wallet::new(fixtures(), "carol", "hk3");
    let pair = wallet.hotkey_pair(Some("correct horse battery")).unwrap();
    assert_eq!(pair.public().to_ss58(), BOB);
    let err = wallet.read_hotkey(Some("wrong password")).unwrap_err();
    assert!(matches!(err, Error::AccessDenied(_)), "{err}");
}

#[cfg(feature = "sr25519")]
#[test]
fn a_btcli_hotkey_gives_its_keypair() {
    let pair = Wallet::new(fixtures(), "bob", "hk2")
        .hotkey_pair(None)
        .unwrap();
    assert_eq!(pair.public().to_ss58(), BOB);
    let sig = pair.sign(b"delta digest");
    pair.public().verify(b"delta digest", &sig).unwrap();
}

#[cfg(feature = "sr25519")]
#[test]
fn created_hotkeys_read_back_and_match_btcli_files() {
    let dir = tempfile::tempdir().unwrap();
    let wallet = Wallet::new(dir.path(), "local", "miner0");
    // bob's seed: the file bistro writes must match btcli's field for field.
    let seed = Wallet::new(fixtures(), "bob", "hk2")
        .read_hotkey(None)
        .unwrap()
        .secret_seed
        .unwrap();
    let pair = wallet.create_hotkey(seed, false).unwrap();
    assert_eq!(pair.public().to_ss58(), BOB);
    let ours: serde_json::Value =
        serde_json::from_slice(&std::fs::read(wallet.hotkey_path().unwrap()).unwrap()).unwrap();
    let theirs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("bob/hotkeys/hk2")).unwrap())
            .unwrap();
    for field in [
        "accountId",
        "publicKey",
        "privateKey",
        "secretSeed",
        "ss58Address",
        "cryptoType",
    ] {
        assert_eq!(ours[field], theirs[field], "{field}");
    }
    assert_eq!(wallet.hotkey_pair(None).unwrap().public(), pair.public());
    // Not replaced unless asked.
    assert!(matches!(
        wallet.create_hotkey([9; 32], false),
        Err(Error::InvalidArgument(_))
    ));
    let other = wallet.create_hotkey([9; 32], true).unwrap();
    assert_eq!(wallet.hotkey_pair(None).unwrap().public(), other.public());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(wallet.hotkey_path().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "key files are private");
    }
    wallet.write_coldkeypub(&pair.public(), false).unwrap();
    assert_eq!(wallet.coldkey_public().unwrap(), Some(pair.public()));
}
