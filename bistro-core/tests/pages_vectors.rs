//! The Rust page selection against the published test vectors
//! (`tests/vectors/pages.json`) and against the Python reference
//! (`tests/vectors/pages_reference.py`, standard library only) on extra
//! random cases. Needs `python3` on the PATH: the test fails, loudly, without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use bistro_core::Digest;
use bistro_core::pages::{DatasetParams, global_pages, local_pages, window};
use serde_json::{Value, json};

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

fn u64_of(case: &Value, key: &str) -> u64 {
    case[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a u64 in {}", case["name"]))
}

fn hash_of(case: &Value, key: &str) -> [u8; 32] {
    bistro_core::digest::parse_hex_32(case[key].as_str().unwrap()).unwrap()
}

fn ids(value: &Value) -> Vec<u64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

fn params_of(case: &Value) -> DatasetParams {
    DatasetParams {
        dataset_id: Digest(hash_of(case, "dataset_id")),
        num_pages: u64_of(case, "num_pages"),
        window_pages: u64_of(case, "window_pages"),
        epoch_blocks: u64_of(case, "epoch_blocks"),
        reveal_delay_blocks: u64_of(case, "reveal_delay_blocks"),
    }
}

/// Words of BLAKE3-XOF(message), written here from the spec's text rather
/// than taken from the crate.
fn xof_words(message: &[u8], count: usize) -> Vec<u64> {
    let mut bytes = vec![0u8; 8 * count];
    blake3::Hasher::new()
        .update(message)
        .finalize_xof()
        .fill(&mut bytes);
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Every output of one case, computed by the Rust crate.
fn compute(case: &Value) -> Value {
    let p = params_of(case);
    let uid = u16::try_from(u64_of(case, "uid")).unwrap();
    let block = u64_of(case, "block");
    let hash = hash_of(case, "block_hash");
    let epoch = p.epoch_of(block);
    let local_count = u64_of(case, "local_count") as usize;
    let global_count = u64_of(case, "global_count") as usize;
    let mut local_msg = b"bistro.pages.v1.local\0".to_vec();
    local_msg.extend_from_slice(&p.dataset_id.0);
    for v in [
        p.num_pages,
        p.window_pages,
        p.epoch_blocks,
        u64::from(uid),
        block,
    ] {
        local_msg.extend_from_slice(&v.to_le_bytes());
    }
    local_msg.extend_from_slice(&hash);
    let mut window_msg = b"bistro.pages.v1.window\0".to_vec();
    window_msg.extend_from_slice(&p.dataset_id.0);
    window_msg.extend_from_slice(&p.num_pages.to_le_bytes());
    window_msg.extend_from_slice(&epoch.to_le_bytes());
    json!({
        "epoch": epoch,
        "window": window(&p, uid, epoch).unwrap().iter().take(64).collect::<Vec<_>>(),
        "local": local_pages(&p, uid, block, &hash, local_count).unwrap(),
        "global": global_pages(&p, block, &hash, global_count).unwrap(),
        "local_stream_words": xof_words(&local_msg, 4),
        "window_keys": xof_words(&window_msg, 6),
    })
}

fn python(args: &[&str], stdin: Option<&str>) -> String {
    let script = vectors_dir().join("pages_reference.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect(
            "python3 is required by this test (it runs the Python reference) and was not found",
        );
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "python reference {args:?} failed:\n{text}"
    );
    text
}

#[test]
fn rust_matches_the_published_vectors() {
    let text = std::fs::read_to_string(vectors_dir().join("pages.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["version"], 1);
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let got = compute(case);
        for key in [
            "epoch",
            "window",
            "local",
            "global",
            "local_stream_words",
            "window_keys",
        ] {
            assert_eq!(got[key], case[key], "case {:?}, field {key}", case["name"]);
        }
        assert_eq!(
            ids(&case["local"]).len() as u64,
            u64_of(case, "local_count")
        );
    }
}

#[test]
fn python_reference_matches_the_published_vectors() {
    let out = python(
        &["check", vectors_dir().join("pages.json").to_str().unwrap()],
        None,
    );
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn rust_and_python_agree_on_random_cases() {
    // Fixed pseudo-random inputs (from BLAKE3 of a counter), spanning tiny
    // to u64-sized datasets.
    let mut cases = Vec::new();
    for i in 0..60u64 {
        let w = xof_words(&i.to_le_bytes(), 8);
        let num_pages = match i % 4 {
            0 => 1 + w[0] % 50,
            1 => 1 + w[0] % 100_000,
            2 => 1 + w[0] % (1 << 40),
            _ => w[0].max(1),
        };
        let window_pages = 1 + w[1] % num_pages.min(5000);
        let local_count = (w[2] % window_pages.min(20).saturating_add(1)) as usize;
        let global_count = (w[3] % num_pages.min(20).saturating_add(1)) as usize;
        cases.push(json!({
            "name": format!("random {i}"),
            "dataset_id": Digest::of(&w[4].to_le_bytes()).to_hex(),
            "num_pages": num_pages,
            "window_pages": window_pages,
            "epoch_blocks": 1 + w[5] % 10_000,
            "reveal_delay_blocks": 1 + w[5] % 7,
            "uid": w[6] % 65_536,
            "block": w[7] >> (i % 64),
            "block_hash": Digest::of(&w[7].to_le_bytes()).to_hex(),
            "local_count": local_count,
            "global_count": global_count,
        }));
    }
    let out = python(&["compute"], Some(&json!({ "cases": cases }).to_string()));
    let answers: Value = serde_json::from_str(&out).unwrap();
    let answers = answers["cases"].as_array().unwrap();
    assert_eq!(answers.len(), cases.len());
    for (case, answer) in cases.iter().zip(answers) {
        let got = compute(case);
        for key in [
            "epoch",
            "window",
            "local",
            "global",
            "local_stream_words",
            "window_keys",
        ] {
            assert_eq!(
                got[key], answer[key],
                "case {:?}, field {key}",
                case["name"]
            );
        }
    }
}

#[test]
fn python_blake3_matches_rust_blake3() {
    let messages: Vec<String> = [
        0usize, 1, 31, 63, 64, 65, 127, 128, 129, 200, 1000, 1023, 1024,
    ]
    .iter()
    .map(|&n| {
        let bytes: Vec<u8> = (0..n).map(|i| (i * 31 + n) as u8).collect();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    })
    .collect();
    let out = python(
        &["xof"],
        Some(&json!({ "messages": messages, "bytes": 200 }).to_string()),
    );
    let answers: Value = serde_json::from_str(&out).unwrap();
    for (hex, answer) in messages.iter().zip(answers["outputs"].as_array().unwrap()) {
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let mut expected = [0u8; 200];
        blake3::Hasher::new()
            .update(&bytes)
            .finalize_xof()
            .fill(&mut expected);
        let expected: String = expected.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            answer.as_str().unwrap(),
            expected,
            "message of {} bytes",
            bytes.len()
        );
    }
}
