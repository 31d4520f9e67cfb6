//! Every validation rule of `docs/delta-format.md` with a crafted bad file,
//! truncation at every byte, and the writer's own refusals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

mod codec_common;

use bistro_core::Error;
use bistro_core::codec::{DType, DeltaReader, DeltaWriter, Encoding, Limits};
use codec_common::*;

fn open(bytes: &[u8]) -> Result<(), Error> {
    DeltaReader::open(bytes, &Limits::default()).map(|_| ())
}

fn corrupt_reason(bytes: &[u8]) -> String {
    match open(bytes) {
        Err(Error::Corrupt {
            location, reason, ..
        }) => format!("{location}: {reason}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

fn small() -> Vec<u8> {
    write(&[
        (
            "layer.0.weight",
            vec![3, 4],
            sample(12, 1),
            Encoding::Dense(DType::F32),
        ),
        (
            "layer.0.bias",
            vec![100],
            sample(100, 2),
            Encoding::TopK {
                k: 5,
                values: DType::I8,
            },
        ),
    ])
}

#[test]
fn a_valid_raw_file_opens() {
    let bytes = raw_delta(&[RawEntry::dense_f32("x", &[1.0, 2.0])]);
    let r = DeltaReader::open(&bytes, &Limits::default()).unwrap();
    assert_eq!(r.tensor("x").unwrap().decode().unwrap(), [1.0, 2.0]);
}

#[test]
fn bad_magic_short_input_and_wrong_version() {
    assert!(matches!(
        open(b"GIF89a.........."),
        Err(Error::BadMagic { .. })
    ));
    assert!(matches!(open(b""), Err(Error::Truncated { .. })));
    assert!(matches!(open(b"BSTRD"), Err(Error::Truncated { .. })));
    let mut bytes = small();
    bytes[8] = 2;
    refix_digest(&mut bytes);
    assert!(matches!(
        open(&bytes),
        Err(Error::UnsupportedVersion { found: 2, .. })
    ));
}

#[test]
fn flags_and_reserved_header_bytes_must_be_zero() {
    let mut bytes = small();
    bytes[12] = 1;
    refix_digest(&mut bytes);
    assert!(corrupt_reason(&bytes).contains("flags"));
    for at in [58, 63, 96, 127] {
        let mut bytes = small();
        bytes[at] = 9;
        refix_digest(&mut bytes);
        let reason = corrupt_reason(&bytes);
        assert!(reason.contains(&format!("byte {at}")) && reason.contains("reserved"));
    }
}

#[test]
fn footer_magic_and_table_location() {
    let good = small();
    let footer = good.len() - 128;
    let mut bytes = good.clone();
    bytes[footer + 24] = b'X';
    refix_digest(&mut bytes);
    assert!(corrupt_reason(&bytes).contains("footer magic"));
    // Table offset past the end, misaligned, inside the header; length off by one.
    for (field, value) in [
        (0, u64::MAX - 10),
        (0, table_offset(&good) as u64 + 8),
        (0, 64),
        (8, read_u64(&good, footer + 8) + 1),
    ] {
        let mut bytes = good.clone();
        bytes[footer + field..footer + field + 8].copy_from_slice(&value.to_le_bytes());
        refix_digest(&mut bytes);
        let reason = corrupt_reason(&bytes);
        assert!(reason.contains("table"), "{reason}");
    }
}

#[test]
fn tensor_count_limit_and_mismatch() {
    let good = small();
    let footer = good.len() - 128;
    let limits = Limits {
        max_tensors: 1,
        ..Limits::default()
    };
    assert!(matches!(
        DeltaReader::open(&good, &limits),
        Err(Error::LimitExceeded {
            limit: 1,
            actual: 2,
            ..
        })
    ));
    let mut fewer = good.clone();
    fewer[footer + 16] = 1;
    refix_digest(&mut fewer);
    assert!(corrupt_reason(&fewer).contains("entries end before"));
    let mut more = good.clone();
    more[footer + 16] = 3;
    refix_digest(&mut more);
    assert!(matches!(open(&more), Err(Error::Truncated { .. })));
}

#[test]
fn limits_on_rank_name_elements_and_file_size() {
    let good = small();
    let tight = |f: &dyn Fn(&mut Limits)| {
        let mut l = Limits::default();
        f(&mut l);
        DeltaReader::open(&good, &l).unwrap_err()
    };
    let errors = [
        tight(&|l| l.max_rank = 1),
        tight(&|l| l.max_name_len = 13),
        tight(&|l| l.max_total_elements = 111),
        tight(&|l| l.max_file_size = good.len() as u64 - 1),
    ];
    for e in errors {
        assert!(matches!(e, Error::LimitExceeded { .. }), "{e}");
    }
    assert!(
        DeltaReader::open(
            &good,
            &Limits {
                max_total_elements: 112,
                max_name_len: 14,
                max_rank: 2,
                ..Limits::default()
            }
        )
        .is_ok()
    );
}

#[test]
fn names_must_be_utf8_non_empty_nul_free_unique_and_zero_padded() {
    let mut e = RawEntry::dense_f32("ok", &[1.0]);
    let cases: Vec<(RawEntry, &str)> = vec![
        (
            RawEntry {
                name: vec![0xff, 0xfe],
                ..e.clone()
            },
            "UTF-8",
        ),
        (
            RawEntry {
                name: vec![],
                ..e.clone()
            },
            "empty",
        ),
        (
            RawEntry {
                name: b"a\0b".to_vec(),
                ..e.clone()
            },
            "NUL",
        ),
        (
            RawEntry {
                name_padding: 1,
                ..e.clone()
            },
            "padding after name",
        ),
    ];
    for (entry, expected) in cases {
        let reason = corrupt_reason(&raw_delta(&[entry]));
        assert!(reason.contains(expected), "{reason}");
        assert!(reason.contains("table entry 0"), "{reason}");
    }
    e.name = b"twice".to_vec();
    let reason = corrupt_reason(&raw_delta(&[e.clone(), RawEntry::dense_f32("b", &[]), e]));
    assert!(
        reason.contains("duplicate") && reason.contains("entry 2"),
        "{reason}"
    );
}

#[test]
fn encodings_dtypes_and_their_parameters() {
    let base = RawEntry::dense_f32("t", &[1.0, 2.0, 3.0, 4.0]);
    let cases: Vec<(RawEntry, &str)> = vec![
        (
            RawEntry {
                kind: 9,
                ..base.clone()
            },
            "unknown encoding",
        ),
        (
            RawEntry {
                dtype: 0,
                ..base.clone()
            },
            "unknown dtype",
        ),
        (
            RawEntry {
                dtype: 4,
                ..base.clone()
            },
            "dense int8",
        ),
        (
            RawEntry {
                kind: 3,
                dtype: 4,
                param: 0,
                ..base.clone()
            },
            "block size is zero",
        ),
        (
            RawEntry {
                param: 2,
                ..base.clone()
            },
            "must be zero",
        ),
        (
            RawEntry {
                kind: 2,
                count: 5,
                ..base.clone()
            },
            "k = 5",
        ),
        (
            RawEntry {
                reserved: 1,
                ..base.clone()
            },
            "reserved",
        ),
    ];
    for (entry, expected) in cases {
        let reason = corrupt_reason(&raw_delta(&[entry]));
        assert!(reason.contains(expected), "{expected}: {reason}");
    }
}

#[test]
fn shapes_and_payload_lengths() {
    let base = RawEntry::dense_f32("t", &[1.0, 2.0, 3.0, 4.0]);
    let overflow = RawEntry {
        dims: vec![1 << 32, 1 << 32],
        ..base.clone()
    };
    assert!(corrupt_reason(&raw_delta(&[overflow])).contains("overflows"));
    let big = RawEntry {
        dims: vec![1 << 40],
        ..base.clone()
    };
    assert!(matches!(
        open(&raw_delta(&[big])),
        Err(Error::LimitExceeded { .. })
    ));
    let wrong_shape = RawEntry {
        dims: vec![5],
        ..base.clone()
    };
    assert!(corrupt_reason(&raw_delta(&[wrong_shape])).contains("needs a payload of 20 bytes"));
    let wrong_length = RawEntry {
        length: Some(12),
        ..base.clone()
    };
    assert!(corrupt_reason(&raw_delta(&[wrong_length])).contains("the table says 12"));
    // Rank 0 is a scalar with one element; a zero dim makes an empty tensor.
    let scalar = RawEntry {
        dims: vec![],
        payload: 2.5f32.to_le_bytes().to_vec(),
        ..base.clone()
    };
    let empty = RawEntry {
        name: b"e".to_vec(),
        dims: vec![3, 0],
        payload: vec![],
        ..base
    };
    let bytes = raw_delta(&[scalar, empty]);
    let r = DeltaReader::open(&bytes, &Limits::default()).unwrap();
    assert_eq!(r.tensor("t").unwrap().decode().unwrap(), [2.5]);
    assert_eq!(r.tensor("e").unwrap().element_count(), 0);
}

#[test]
fn payloads_are_contiguous_aligned_and_zero_padded() {
    let a = RawEntry::dense_f32("a", &[1.0, 2.0, 3.0]);
    let b = RawEntry::dense_f32("b", &[4.0]);
    // b placed over a (overlap), past its slot (gap), misaligned.
    for offset in [128, 256, 196] {
        let b = RawEntry {
            offset: Some(offset),
            ..b.clone()
        };
        let reason = corrupt_reason(&raw_delta(&[a.clone(), b]));
        assert!(
            reason.contains("entry 1") && reason.contains("contiguous"),
            "{reason}"
        );
    }
    let mut bytes = raw_delta(&[a, b]);
    bytes[128 + 12] = 1; // padding after a's 12 bytes
    refix_digest(&mut bytes);
    assert!(corrupt_reason(&bytes).contains("byte 140: padding"));
    // An offset that overflows when the length is added.
    let huge = RawEntry {
        offset: Some(u64::MAX - 63),
        ..RawEntry::dense_f32("h", &[1.0])
    };
    assert!(open(&raw_delta(&[huge])).is_err());
}

/// A top-k tensor of 100 elements keeping 3 (indices 3, 50, 99): l = 5,
/// U = 7 bits; upper word at byte 128, lower word at 136.
fn topk_file() -> Vec<u8> {
    let mut data = vec![0.0f32; 100];
    data[3] = 5.0;
    data[50] = -6.0;
    data[99] = 7.0;
    write(&[(
        "s",
        vec![100],
        data,
        Encoding::TopK {
            k: 3,
            values: DType::F32,
        },
    )])
}

fn with_words(upper: u64, lower: u64) -> Vec<u8> {
    let mut bytes = topk_file();
    bytes[128..136].copy_from_slice(&upper.to_le_bytes());
    bytes[136..144].copy_from_slice(&lower.to_le_bytes());
    refix_digest(&mut bytes);
    bytes
}

#[test]
fn topk_indices_are_checked() {
    let good = topk_file();
    let upper = read_u64(&good, 128);
    let lower = read_u64(&good, 136);
    // Positions: 3>>5 + 0 = 0, 50>>5 + 1 = 2, 99>>5 + 2 = 5.
    assert_eq!(upper, 0b100101);
    assert_eq!(lower, 3 | (18 << 5) | (3 << 10));
    assert!(open(&with_words(upper, lower)).is_ok());
    let cases = [
        (upper | 1 << 1, lower, "bits set"),
        (upper & !(1 << 5) | 1 << 9, lower, "past bit 7"),
        (upper, lower | 1 << 20, "lower index bits past"),
        // Second index = first: (0, 0) high parts, equal low parts.
        (0b100011, 3 | (3 << 5) | (3 << 10), "not greater"),
        // Last index 3 << 5 | 31 = 127 >= 100.
        (upper, lower | (31 << 10), "out of range"),
    ];
    for (u, l, expected) in cases {
        let reason = corrupt_reason(&with_words(u, l));
        assert!(reason.contains(expected), "{expected}: {reason}");
        assert!(reason.contains("tensor \"s\" indices"), "{reason}");
    }
}

#[test]
fn digest_must_match() {
    let mut bytes = small();
    bytes[130] ^= 1;
    assert!(matches!(open(&bytes), Err(Error::DigestMismatch { .. })));
    let mut bytes = small();
    let digest_at = bytes.len() - 96;
    bytes[digest_at] ^= 1;
    assert!(matches!(open(&bytes), Err(Error::DigestMismatch { .. })));
}

#[test]
fn every_truncation_and_every_byte_flip_is_handled() {
    let good = small();
    for len in 0..good.len() {
        assert!(open(&good[..len]).is_err(), "prefix of {len} bytes opened");
    }
    let sig_start = good.len() - 64;
    for at in 0..good.len() {
        let mut bytes = good.clone();
        bytes[at] ^= 0x5a;
        let result = open(&bytes);
        // The signature is not covered by the digest (and not checked by open).
        assert_eq!(result.is_ok(), at >= sig_start, "flip at {at}: {result:?}");
        // With the digest fixed up, structural checks alone must hold: any
        // outcome but a panic; if it opens, every tensor can be used.
        refix_digest(&mut bytes);
        if let Ok(r) = DeltaReader::open(&bytes, &Limits::default()) {
            for t in r.tensors() {
                let _ = t.check_finite();
                let mut dst = vec![0f32; t.element_count() as usize];
                t.apply(&mut dst, 0.5).unwrap();
            }
        }
    }
}

#[test]
fn non_finite_values_are_reported_with_tensor_and_index() {
    let cases: Vec<(Encoding, usize)> = vec![
        (Encoding::Dense(DType::F32), 4),
        (Encoding::Dense(DType::F16), 2),
        (Encoding::Dense(DType::BF16), 2),
    ];
    for (enc, size) in cases {
        let mut bytes = write(&[("w", vec![10], vec![1.0; 10], enc)]);
        let at = 128 + 7 * size;
        bytes[at + size - 1] = 0x7f;
        bytes[at + size - 2] |= 0xf0; // exponent all ones
        refix_digest(&mut bytes);
        let r = DeltaReader::open(&bytes, &Limits::default()).unwrap();
        match r.check_all_finite() {
            Err(Error::NonFinite { what, index }) => {
                assert!(what.contains("\"w\""));
                assert_eq!(index, 7, "{enc}");
            }
            other => panic!("{enc}: {other:?}"),
        }
    }
    // Int8 block: an infinite scale for the second block of 4.
    let mut bytes = write(&[(
        "q",
        vec![12],
        sample(12, 3),
        Encoding::Int8Block { block_size: 4 },
    )]);
    bytes[128 + 8..128 + 12].copy_from_slice(&f32::INFINITY.to_le_bytes());
    refix_digest(&mut bytes);
    let r = DeltaReader::open(&bytes, &Limits::default()).unwrap();
    assert!(matches!(
        r.tensor("q").unwrap().check_finite(),
        Err(Error::NonFinite { index: 4, .. })
    ));
    // Top-k: a NaN value for the second kept element (index 50).
    let mut bytes = topk_file();
    bytes[148..152].copy_from_slice(&f32::NAN.to_le_bytes());
    refix_digest(&mut bytes);
    let r = DeltaReader::open(&bytes, &Limits::default()).unwrap();
    assert!(matches!(
        r.check_all_finite(),
        Err(Error::NonFinite { index: 50, .. })
    ));
}

#[test]
fn apply_and_decode_check_buffer_lengths() {
    let bytes = small();
    let r = DeltaReader::open(&bytes, &Limits::default()).unwrap();
    let t = r.tensor("layer.0.weight").unwrap();
    let mut short = vec![0f32; 11];
    assert!(matches!(
        t.apply(&mut short, 1.0),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        t.decode_into(&mut short),
        Err(Error::InvalidArgument(_))
    ));
    assert!(short.iter().all(|&x| x == 0.0));
    assert!(matches!(r.tensor("nope"), Err(Error::NotFound(_))));
}

#[test]
fn the_writer_refuses_what_the_reader_would_reject() {
    let limits = Limits {
        max_tensors: 2,
        max_rank: 2,
        max_name_len: 8,
        max_total_elements: 100,
        max_file_size: 600,
    };
    let mut w = DeltaWriter::new(Vec::new(), &header(), &limits).unwrap();
    let f32d = Encoding::Dense(DType::F32);
    let mut residual = vec![0.5f32; 4];
    let mut huge = vec![f32::MAX; 4];
    let cases: Vec<(Result<(), Error>, &str)> = vec![
        (w.add_tensor("", &[1], &[1.0], f32d, None), "empty"),
        (w.add_tensor("a\0", &[1], &[1.0], f32d, None), "NUL"),
        (
            w.add_tensor("too-long-name", &[1], &[1.0], f32d, None),
            "length",
        ),
        (w.add_tensor("r", &[1, 1, 1], &[1.0], f32d, None), "rank"),
        (w.add_tensor("s", &[2, 2], &[1.0], f32d, None), "data has 1"),
        (
            w.add_tensor("s", &[101], &[0.0; 101], f32d, None),
            "total elements",
        ),
        (
            w.add_tensor("f", &[80], &[0.0; 80], f32d, None),
            "file size",
        ),
        (
            w.add_tensor("n", &[2], &[1.0, f32::NAN], f32d, None),
            "non-finite",
        ),
        (
            w.add_tensor("h", &[1], &[1e6], Encoding::Dense(DType::F16), None),
            "out of range for f16",
        ),
        (
            w.add_tensor("i", &[1], &[1.0], Encoding::Dense(DType::I8), None),
            "dense int8",
        ),
        (
            w.add_tensor(
                "b",
                &[1],
                &[1.0],
                Encoding::Int8Block { block_size: 0 },
                None,
            ),
            "block size",
        ),
        (
            w.add_tensor(
                "k",
                &[1],
                &[1.0],
                Encoding::TopK {
                    k: 2,
                    values: DType::F16,
                },
                None,
            ),
            "k = 2",
        ),
        (
            w.add_tensor("r", &[3], &[1.0; 3], f32d, Some(&mut residual)),
            "residual",
        ),
        (
            w.add_tensor("o", &[4], &[f32::MAX; 4], f32d, Some(&mut huge[..])),
            "non-finite",
        ),
    ];
    for (result, expected) in cases {
        let message = result.expect_err(expected).to_string();
        assert!(message.contains(expected), "{expected}: {message}");
    }
    assert_eq!(
        residual, [0.5; 4],
        "a rejected call leaves the residual alone"
    );
    assert_eq!(huge, [f32::MAX; 4]);
    w.add_tensor("ok", &[2], &[1.0, 2.0], f32d, None).unwrap();
    let dup = w.add_tensor("ok", &[2], &[1.0, 2.0], f32d, None);
    assert!(dup.unwrap_err().to_string().contains("duplicate"));
    w.add_tensor("ok2", &[2], &[1.0, 2.0], f32d, None).unwrap();
    let third = w.add_tensor("ok3", &[1], &[1.0], f32d, None);
    assert!(matches!(third, Err(Error::LimitExceeded { .. })));
    let (bytes, _) = w.finish().unwrap();
    assert!(bytes.len() as u64 <= limits.max_file_size);
    DeltaReader::open(&bytes, &limits).unwrap();
}
