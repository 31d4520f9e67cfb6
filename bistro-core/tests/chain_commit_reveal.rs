//! Commit-reveal against the real `bittensor-drand` package from PyPI:
//! the reveal round v1 (`get_encrypted_commit`, package 1.3.0) and v2
//! (`get_encrypted_commit_v2`, package 2.0.0) for many chain states, and the
//! payload bytes the package encrypts (decrypted in Python with drand
//! quicknet's published round-1000 signature).
//!
//! The package reads the wall clock, so each Python process runs under
//! `libfaketime` (PyPI `libfaketime`, which bundles the library) frozen at a
//! chosen second: the rounds are then exact, not "within a few seconds".
//!
//! Needs `scripts/setup-test-tools.sh`: `.deps/venv` with `bittensor-drand`
//! 2.0.0 and `libfaketime`, and `.deps/drand-1.3.0` holding 1.3.0 (or the
//! paths in `BISTRO_TEST_PYTHON` / `BISTRO_DRAND_V1`). Without them each
//! test says so and returns, unless `BISTRO_REQUIRE_DRAND` is set (the test
//! script sets it): then they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bistro_core::chain::commit_reveal::{
    EpochSchedule, QUICKNET_GENESIS, WeightsTlockPayload, reveal_round_v1, reveal_round_v2,
};
use serde_json::{Value, json};

/// drand quicknet's published signature for round 1000.
const ROUND_1000_SIGNATURE: &str = "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venv Python with the packages, and the 1.3.0 package directory.
fn tools(test: &str) -> Option<(PathBuf, PathBuf)> {
    let python = std::env::var_os("BISTRO_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".deps/venv/bin/python"));
    let v1 = std::env::var_os("BISTRO_DRAND_V1")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".deps/drand-1.3.0"));
    let ok = python.exists()
        && v1.join("bittensor_drand").exists()
        && Command::new(&python)
            .args(["-c", "import bittensor_drand, libfaketime"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if ok {
        return Some((python, v1));
    }
    if std::env::var_os("BISTRO_REQUIRE_DRAND").is_some() {
        panic!(
            "{test}: BISTRO_REQUIRE_DRAND is set but {} lacks bittensor-drand 2.0.0 / libfaketime \
             or {} lacks bittensor-drand 1.3.0 (run scripts/setup-test-tools.sh)",
            python.display(),
            v1.display()
        );
    }
    eprintln!("skipping {test}: no bittensor-drand (run scripts/setup-test-tools.sh)");
    None
}

/// Runs `script` with `input` (JSON on stdin) under a clock frozen at
/// `now` (Unix seconds), with `pythonpath` first on the path; returns the
/// JSON it prints.
fn python_at(
    python: &Path,
    pythonpath: Option<&Path>,
    now: u64,
    script: &str,
    input: &Value,
) -> Value {
    let lib = Command::new(python)
        .args([
            "-c",
            "import libfaketime, glob, os; \
             print(glob.glob(os.path.join(os.path.dirname(libfaketime.__file__), \
             'vendor', '**', 'libfaketime.so.1'), recursive=True)[0])",
        ])
        .output()
        .expect("run python");
    assert!(
        lib.status.success(),
        "{}",
        String::from_utf8_lossy(&lib.stderr)
    );
    let lib = String::from_utf8(lib.stdout).unwrap().trim().to_string();
    let mut cmd = Command::new(python);
    cmd.arg("-c")
        .arg(script)
        .env("LD_PRELOAD", lib)
        .env("FAKETIME_FMT", "%s")
        .env("FAKETIME", now.to_string())
        .env("DONT_FAKE_MONOTONIC", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = pythonpath {
        cmd.env("PYTHONPATH", p);
    }
    let mut child = cmd.spawn().expect("spawn python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

const V1_SCRIPT: &str = r#"
import json, sys, time
import bittensor_drand as d
assert hasattr(d, "get_encrypted_commit"), d.__file__
out = {"now": time.time(), "rounds": []}
for c in json.load(sys.stdin):
    ct, r = d.get_encrypted_commit([0, 1], [65535, 7], 1, c["tempo"], c["block"], c["netuid"],
                                   c["period"], c["block_time"], bytes(32))
    out["rounds"].append(r)
print(json.dumps(out))
"#;

const V2_SCRIPT: &str = r#"
import json, sys, time
import bittensor_drand as d
out = {"now": time.time(), "rounds": []}
for c in json.load(sys.stdin):
    try:
        ct, r = d.get_encrypted_commit_v2([0, 1], [65535, 7], 1, c["last"], c["pending"],
                                          c["index"], c["tempo"], c["since"], c["block"],
                                          c["period"], c["block_time"], bytes(32))
        out["rounds"].append(r)
    except ValueError as e:
        out["rounds"].append(None)
print(json.dumps(out))
"#;

/// Two clocks: drand round 1000 of quicknet, and a time in 2026.
const CLOCKS: [u64; 2] = [QUICKNET_GENESIS + 3001, 1_780_000_123];

#[test]
fn reveal_round_v1_matches_bittensor_drand_1_3() {
    let Some((python, v1)) = tools("reveal_round_v1_matches_bittensor_drand_1_3") else {
        return;
    };
    let mut cases = Vec::new();
    for (block, netuid, tempo, period, block_time) in [
        (5000u64, 1u16, 360u16, 1u64, 12.0f64),
        (0, 0, 360, 1, 12.0),
        (7_654_321, 3, 360, 1, 12.0),
        (7_654_321, 3, 360, 3, 12.0),
        (7_654_321, 212, 99, 2, 12.0),
        (359, 0, 360, 1, 12.0),     // the last block of epoch 0
        (360, 0, 360, 1, 12.0),     // the first block of epoch 1
        (1234, 65535, 10, 1, 0.25), // fast blocks, the largest netuid
        (10, 1, 4, 1, 2.0),
    ] {
        cases.push(json!({"block": block, "netuid": netuid, "tempo": tempo,
                          "period": period, "block_time": block_time}));
    }
    let input = Value::Array(cases.clone());
    for now in CLOCKS {
        let out = python_at(&python, Some(&v1), now, V1_SCRIPT, &input);
        assert_eq!(out["now"].as_f64(), Some(now as f64), "the clock is frozen");
        for (case, got) in cases.iter().zip(out["rounds"].as_array().unwrap()) {
            let want = reveal_round_v1(
                case["block"].as_u64().unwrap(),
                case["netuid"].as_u64().unwrap() as u16,
                case["tempo"].as_u64().unwrap() as u16,
                case["period"].as_u64().unwrap(),
                case["block_time"].as_f64().unwrap(),
                now as f64,
            );
            assert_eq!(got.as_u64(), Some(want), "{case} at {now}");
        }
    }
}

/// (last_epoch_block, pending_epoch_at, subnet_epoch_index, tempo,
/// blocks_since_last_step, current_block, reveal period, block time)
type Schedule = (u64, u64, u64, u16, u64, u64, u64, f64);

#[test]
fn reveal_round_v2_matches_bittensor_drand_2_0() {
    let Some((python, _)) = tools("reveal_round_v2_matches_bittensor_drand_2_0") else {
        return;
    };
    // (last_epoch_block, pending_epoch_at, subnet_epoch_index, tempo,
    //  blocks_since_last_step, current_block, period, block_time)
    let states: [Schedule; 12] = [
        // The package's published vectors (src/epoch_schedule_vectors.rs).
        (10, 0, 0, 0, 0, 10, 1, 12.0),
        (10, 0, 0, 50, 0, 10, 1, 12.0),
        (80, 95, 0, 20, 0, 91, 1, 12.0),
        (100, 0, 0, 50, 0, 120, 1, 12.0),
        // A main-network-like subnet at several points of its epoch.
        (7_654_000, 0, 21_000, 360, 321, 7_654_321, 1, 12.0),
        (7_654_000, 0, 21_000, 360, 359, 7_654_359, 1, 12.0),
        (7_654_000, 0, 21_000, 360, 360, 7_654_360, 1, 12.0),
        (7_654_000, 0, 21_000, 360, 0, 7_654_000, 3, 12.0),
        // An owner-triggered epoch pending, and an overdue step counter.
        (1000, 1005, 7, 100, 2, 1002, 2, 12.0),
        (1000, 0, 7, 100, 60_000, 1010, 1, 12.0),
        // Tiny tempo, fast blocks, a head past the schedule.
        (40, 0, 9, 4, 1, 47, 1, 0.25),
        (40, 0, 9, 4, 1, 41, 1, 2.0),
    ];
    let cases: Vec<Value> = states
        .iter()
        .map(|s| {
            json!({"last": s.0, "pending": s.1, "index": s.2, "tempo": s.3, "since": s.4,
                   "block": s.5, "period": s.6, "block_time": s.7})
        })
        .collect();
    let input = Value::Array(cases);
    for now in CLOCKS {
        let out = python_at(&python, None, now, V2_SCRIPT, &input);
        assert_eq!(out["now"].as_f64(), Some(now as f64), "the clock is frozen");
        for (s, got) in states.iter().zip(out["rounds"].as_array().unwrap()) {
            let head = EpochSchedule {
                last_epoch_block: s.0,
                pending_epoch_at: s.1,
                subnet_epoch_index: s.2,
                tempo: s.3,
                blocks_since_last_step: s.4,
                current_block: s.5,
            };
            let want = reveal_round_v2(&head, s.6, s.7, now as f64).ok();
            assert_eq!(got.as_u64(), want, "{s:?} at {now}");
        }
    }
}

const PAYLOAD_SCRIPT: &str = r#"
import json, sys
import bittensor_drand as d
def compact(n):
    if n < 1 << 6: return bytes([n << 2])
    if n < 1 << 14: return ((n << 2) | 1).to_bytes(2, "little")
    if n < 1 << 30: return ((n << 2) | 2).to_bytes(4, "little")
    raise ValueError(n)
out = []
for c in json.load(sys.stdin):
    # block_time 0: the target is "now", drand round 1000 under the frozen clock.
    ct, r = d.get_encrypted_commit_v2(c["uids"], c["values"], c["version_key"], 0, 0, 0, 360,
                                      0, 10, 1, 0.0, bytes.fromhex(c["hotkey"]))
    envelope = compact(len(ct)) + ct + r.to_bytes(8, "little")
    plain = d.decrypt_with_signature(envelope, c["signature"])
    out.append({"round": r, "ciphertext": ct.hex(), "payload": plain.hex()})
print(json.dumps(out))
"#;

#[test]
fn payload_bytes_match_the_package() {
    let Some((python, _)) = tools("payload_bytes_match_the_package") else {
        return;
    };
    let payloads = [
        WeightsTlockPayload {
            hotkey: (0..32).collect(),
            uids: vec![0, 1, 300],
            values: vec![65535, 32768, 1],
            version_key: 1_000_003,
        },
        WeightsTlockPayload {
            hotkey: vec![0xd4; 32],
            uids: vec![],
            values: vec![],
            version_key: 0,
        },
        WeightsTlockPayload {
            hotkey: vec![7; 32],
            uids: (0..100).collect(),
            values: (0..100).map(|i| 655 * i + 1).collect(),
            version_key: u64::MAX,
        },
    ];
    let input: Vec<Value> = payloads
        .iter()
        .map(|p| {
            json!({"hotkey": hex(&p.hotkey), "uids": p.uids, "values": p.values,
                   "version_key": p.version_key, "signature": ROUND_1000_SIGNATURE})
        })
        .collect();
    let out = python_at(
        &python,
        None,
        QUICKNET_GENESIS + 3001,
        PAYLOAD_SCRIPT,
        &Value::Array(input),
    );
    for (p, got) in payloads.iter().zip(out.as_array().unwrap()) {
        assert_eq!(got["round"].as_u64(), Some(1000));
        let golden = got["payload"].as_str().unwrap();
        assert_eq!(golden, hex(&p.encode()));
        assert_eq!(
            WeightsTlockPayload::decode(&unhex(golden)).unwrap(),
            p.clone()
        );
        // The ciphertext is 244 bytes of timelock framing plus the payload.
        let ct = got["ciphertext"].as_str().unwrap();
        assert_eq!(ct.len() / 2, 244 + p.encode().len());
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
