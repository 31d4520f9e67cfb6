//! Helpers shared by the codec tests: sample data, a writer shortcut, and a
//! raw file builder that can make files the real writer never would.
#![allow(dead_code)]

use bistro_core::codec::{DeltaHeader, DeltaWriter, Encoding, Limits, UNDIGESTED_LEN};
use bistro_core::{Digest, PublicKey};

pub fn header() -> DeltaHeader {
    DeltaHeader {
        base_revision: Digest::of(b"master"),
        block: 4_200_000,
        uid: 17,
        hotkey: PublicKey([7; 32]),
    }
}

/// Deterministic values with varied magnitudes, signs and some exact ties.
pub fn sample(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            if i % 97 == 5 {
                return 0.25; // ties
            }
            let mantissa = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let exponent = ((s >> 8) % 12) as i32 - 10;
            mantissa * 2f32.powi(exponent)
        })
        .collect()
}

/// A delta of `tensors` written with default limits.
pub fn write(tensors: &[(&str, Vec<u64>, Vec<f32>, Encoding)]) -> Vec<u8> {
    let mut w = DeltaWriter::new(Vec::new(), &header(), &Limits::default()).unwrap();
    for (name, shape, data, enc) in tensors {
        w.add_tensor(name, shape, data, *enc, None).unwrap();
    }
    w.finish().unwrap().0
}

/// Recomputes the footer digest after a test edited the bytes.
pub fn refix_digest(bytes: &mut [u8]) {
    let end = bytes.len() - UNDIGESTED_LEN;
    let d = Digest::of(&bytes[..end]);
    bytes[end..end + 32].copy_from_slice(&d.0);
}

/// Little-endian u64 at `at`.
pub fn read_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// The table offset from the footer.
pub fn table_offset(bytes: &[u8]) -> usize {
    read_u64(bytes, bytes.len() - 128) as usize
}

/// One raw table entry; every field is written as given.
#[derive(Clone, Debug)]
pub struct RawEntry {
    pub kind: u8,
    pub dtype: u8,
    pub reserved: u8,
    pub param: u32,
    pub count: u64,
    /// `None`: right after the previous payload, 64-aligned.
    pub offset: Option<u64>,
    /// `None`: the payload's length.
    pub length: Option<u64>,
    pub dims: Vec<u64>,
    pub name: Vec<u8>,
    pub name_padding: u8,
    pub payload: Vec<u8>,
}

impl RawEntry {
    /// A dense f32 entry of `values`.
    pub fn dense_f32(name: &str, values: &[f32]) -> Self {
        RawEntry {
            kind: 1,
            dtype: 1,
            reserved: 0,
            param: 0,
            count: 0,
            offset: None,
            length: None,
            dims: vec![values.len() as u64],
            name: name.as_bytes().to_vec(),
            name_padding: 0,
            payload: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

/// Builds a file from raw entries, laying payloads out as the spec says and
/// with a correct digest (unless the test changes bytes afterwards).
pub fn raw_delta(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = DeltaWriter::new(Vec::new(), &header(), &Limits::default())
        .unwrap()
        .finish()
        .unwrap()
        .0;
    out.truncate(128);
    let mut offsets = Vec::new();
    for e in entries {
        let at = out.len().next_multiple_of(64);
        out.resize(at, 0);
        offsets.push(e.offset.unwrap_or(at as u64));
        out.extend_from_slice(&e.payload);
    }
    let table_offset = out.len().next_multiple_of(64);
    out.resize(table_offset, 0);
    for (e, off) in entries.iter().zip(&offsets) {
        out.extend_from_slice(&[e.kind, e.dtype, e.dims.len() as u8, e.reserved]);
        out.extend_from_slice(&e.param.to_le_bytes());
        out.extend_from_slice(&e.count.to_le_bytes());
        out.extend_from_slice(&off.to_le_bytes());
        out.extend_from_slice(&e.length.unwrap_or(e.payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0; 6]);
        for d in &e.dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&e.name);
        let padded = e.name.len().next_multiple_of(8);
        out.extend(std::iter::repeat_n(e.name_padding, padded - e.name.len()));
    }
    let table_length = out.len() - table_offset;
    out.extend_from_slice(&(table_offset as u64).to_le_bytes());
    out.extend_from_slice(&(table_length as u64).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    out.extend_from_slice(b"BSTRTAIL");
    out.extend_from_slice(&[0; 96]);
    refix_digest(&mut out);
    out
}
