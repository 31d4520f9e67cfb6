//! `bistro_core::timelock` against the real `bittensor-drand` package (PyPI,
//! the Bittensor SDK's timelock code, installed into `.deps/venv` by
//! `scripts/setup-test-tools.sh`) and drand quicknet's published pulse for
//! round 1000: ciphertexts made here open in Python and the reverse.
//!
//! The package's envelope (what `encrypt_at_round` returns and
//! `decrypt_with_signature` takes) is `SCALE(Vec<u8> ciphertext) ‖ u64 LE
//! round`. A missing venv or package fails these tests with the setup
//! command: they never skip.
#![cfg(feature = "timelock")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

use std::path::PathBuf;
use std::process::Command;

use bistro_core::Error;
use bistro_core::error::TimelockError;
use bistro_core::timelock::{self, LocalBeacon, Pulse};

/// drand quicknet's signature of round 1000.
const SIG_1000: &str = "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39";

/// The venv's Python (`$BISTRO_TEST_PYTHON` overrides), checked to import
/// `bittensor_drand`; panics with what to run otherwise.
fn python() -> PathBuf {
    let python = std::env::var_os("BISTRO_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.deps/venv/bin/python")
        });
    let ok = Command::new(&python)
        .args(["-c", "import bittensor_drand"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} cannot import bittensor_drand: run scripts/setup-test-tools.sh (installs \
         bittensor-drand into .deps/venv) or set BISTRO_TEST_PYTHON to a Python that has it",
        python.display()
    );
    python
}

/// Runs `script` with `args`; returns its stdout (trimmed) or panics with stderr.
fn run_python(script: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap().trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Lowercase hex (the core's encoder).
fn hex(bytes: &[u8]) -> String {
    bistro_core::util::hex::encode(bytes)
}

/// Decodes lowercase hex (the core's decoder); panics on bad hex.
fn unhex(s: &str) -> Vec<u8> {
    bistro_core::util::hex::decode(s).expect("hex")
}

/// SCALE compact encoding of a length.
fn compact(n: usize) -> Vec<u8> {
    match n {
        0..=0x3f => vec![(n as u8) << 2],
        0x40..=0x3fff => (((n as u16) << 2) | 1).to_le_bytes().to_vec(),
        _ => (((n as u32) << 2) | 2).to_le_bytes().to_vec(),
    }
}

/// Splits the package's envelope into (ciphertext, round).
fn open_envelope(bytes: &[u8]) -> (Vec<u8>, u64) {
    let (len, skip) = match bytes[0] & 3 {
        0 => (usize::from(bytes[0] >> 2), 1),
        1 => (
            usize::from(u16::from_le_bytes([bytes[0], bytes[1]]) >> 2),
            2,
        ),
        2 => (
            (u32::from_le_bytes(bytes[..4].try_into().unwrap()) >> 2) as usize,
            4,
        ),
        _ => panic!("big-integer compact length"),
    };
    assert_eq!(bytes.len(), skip + len + 8, "envelope length");
    let round = u64::from_le_bytes(bytes[skip + len..].try_into().unwrap());
    (bytes[skip..skip + len].to_vec(), round)
}

fn pulse_1000() -> Pulse {
    Pulse::from_hex(1000, SIG_1000).unwrap()
}

const DECRYPT: &str = "import sys, bittensor_drand as d\n\
    print(d.decrypt_with_signature(bytes.fromhex(sys.argv[1]), sys.argv[2]).hex())";

const ENCRYPT: &str = "import sys, bittensor_drand as d\n\
    ct, r = d.encrypt_at_round(bytes.fromhex(sys.argv[1]), int(sys.argv[2]))\n\
    print(ct.hex(), r)";

#[test]
fn a_rust_ciphertext_opens_in_bittensor_drand() {
    for message in [&b"weights: uid 3 -> 65535"[..], b"", &[0xa5; 300]] {
        let ct = timelock::encrypt(&timelock::quicknet_key(), 1000, message, [3; 32]).unwrap();
        let mut envelope = compact(ct.len());
        envelope.extend(&ct);
        envelope.extend(1000u64.to_le_bytes());
        let plain = run_python(DECRYPT, &[&hex(&envelope), SIG_1000]).unwrap();
        assert_eq!(plain, hex(message));
    }
}

#[test]
fn a_bittensor_drand_ciphertext_opens_here() {
    let message = b"sealed in python for round 1000";
    let out = run_python(ENCRYPT, &[&hex(message), "1000"]).unwrap();
    let (envelope, round) = out.split_once(' ').unwrap();
    assert_eq!(round, "1000");
    let (ct, round) = open_envelope(&unhex(envelope));
    assert_eq!(round, 1000);
    assert_eq!(ct.len(), message.len() + timelock::CIPHERTEXT_OVERHEAD);
    assert_eq!(timelock::decrypt(&ct, &pulse_1000()).unwrap(), message);
    // A pulse for another round, or from another beacon: a typed error.
    let other = LocalBeacon::from_seed([1; 32]);
    assert!(matches!(
        timelock::decrypt(&ct, &other.pulse(1000)),
        Err(Error::Timelock(TimelockError::DecryptFailed {
            round: 1000
        }))
    ));
    let mut flipped = ct.clone();
    let last = flipped.len() - 30;
    flipped[last] ^= 4;
    assert!(matches!(
        timelock::decrypt(&flipped, &pulse_1000()),
        Err(Error::Timelock(_))
    ));
}

#[test]
fn bittensor_drand_refuses_what_it_should() {
    // The package rejects a Rust ciphertext under another round's key, as we do.
    let local = LocalBeacon::from_seed([2; 32]);
    let ct = timelock::encrypt(&timelock::quicknet_key(), 1000, b"x", [5; 32]).unwrap();
    let mut envelope = compact(ct.len());
    envelope.extend(&ct);
    envelope.extend(1000u64.to_le_bytes());
    let wrong = hex(&local.pulse(1000).signature);
    assert!(run_python(DECRYPT, &[&hex(&envelope), &wrong]).is_err());
    timelock::verify_pulse(&timelock::quicknet_key(), &pulse_1000()).unwrap();
}
