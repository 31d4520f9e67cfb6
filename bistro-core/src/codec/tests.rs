//! Tests across the codec's parts: the spec's test vector, and the writer
//! against the reader on a small delta.

use super::*;
use crate::digest::Digest;
use crate::identity::PublicKey;

const SPEC: &str = include_str!("../../../docs/delta-format.md");

fn spec_vector() -> (Vec<u8>, Digest) {
    let header = DeltaHeader {
        base_revision: Digest([0x11; 32]),
        block: 7,
        uid: 3,
        hotkey: PublicKey([0x22; 32]),
    };
    let limits = Limits::default();
    let mut w = DeltaWriter::new(Vec::new(), &header, &limits).unwrap();
    w.add_tensor(
        "a",
        &[2, 2],
        &[1.0, -2.0, 0.5, 0.0],
        Encoding::Dense(DType::F32),
        None,
    )
    .unwrap();
    w.add_tensor(
        "b",
        &[5],
        &[0.0, 3.0, 0.0, -1.5, 0.25],
        Encoding::TopK {
            k: 2,
            values: DType::F16,
        },
        None,
    )
    .unwrap();
    w.finish().unwrap()
}

fn hex_lines(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|line| {
            line.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text between the "Test vector" section's first ```text fence and its end.
fn spec_hex() -> Option<&'static str> {
    let section = &SPEC[SPEC.find("## Test vector")?..];
    let start = section.find("```text\n")? + 8;
    let end = start + section[start..].find("```")?;
    Some(section[start..end].trim())
}

#[test]
fn spec_test_vector() {
    let (bytes, digest) = spec_vector();
    let hex = hex_lines(&bytes);
    assert_eq!(
        spec_hex().expect("the spec has a test vector"),
        hex,
        "docs/delta-format.md's test vector differs from what the writer makes:\n{hex}\n{digest}"
    );
    assert!(SPEC.contains(&format!("its digest is `{digest}`")));
    let reader = DeltaReader::open(&bytes, &Limits::default()).unwrap();
    assert_eq!(
        reader.tensor("a").unwrap().decode().unwrap(),
        [1.0, -2.0, 0.5, 0.0]
    );
    assert_eq!(
        reader.tensor("b").unwrap().decode().unwrap(),
        [0.0, 3.0, 0.0, -1.5, 0.0]
    );
    let touched: Vec<u64> = reader.tensor("b").unwrap().touched_indices().collect();
    assert_eq!(touched, [1, 3]);
}

#[test]
fn empty_delta_is_header_and_footer() {
    let (bytes, digest) = DeltaWriter::new(Vec::new(), &DeltaHeader::default(), &Limits::default())
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(bytes.len(), HEADER_LEN + FOOTER_LEN);
    let reader = DeltaReader::open(&bytes, &Limits::default()).unwrap();
    assert!(reader.is_empty());
    assert_eq!(reader.digest(), digest);
    assert_eq!(digest, Digest::of(&bytes[..bytes.len() - UNDIGESTED_LEN]));
}
