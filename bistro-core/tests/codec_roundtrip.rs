//! Round trips for every encoding and dtype, error feedback, parallel paths,
//! memory-mapped files and signatures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

mod codec_common;

use bistro_core::codec::{
    DType, DeltaReader, DeltaWriter, Encoding, Limits, naive, open_file, write_signature,
};
use codec_common::*;

fn all_encodings(n: u64) -> Vec<Encoding> {
    let mut v = vec![
        Encoding::Dense(DType::F32),
        Encoding::Dense(DType::F16),
        Encoding::Dense(DType::BF16),
        Encoding::Int8Block { block_size: 1 },
        Encoding::Int8Block { block_size: 7 },
        Encoding::Int8Block { block_size: 256 },
    ];
    for values in [DType::F32, DType::F16, DType::BF16, DType::I8] {
        for k in [0, 1, n / 100, n / 3, n] {
            if k <= n {
                v.push(Encoding::TopK { k, values });
            }
        }
    }
    v
}

/// Encodes `data` (with a residual when given), decodes it with the fast
/// reader and the naive one, and checks both against each other and the
/// spec's error bounds. Returns the decoded values.
fn round_trip(
    data: &[f32],
    shape: &[u64],
    enc: Encoding,
    residual: Option<&mut [f32]>,
) -> Vec<f32> {
    let encoded_input: Vec<f32> = match &residual {
        Some(r) => data.iter().zip(r.iter()).map(|(x, r)| x + r).collect(),
        None => data.to_vec(),
    };
    let mut w = DeltaWriter::new(Vec::new(), &header(), &Limits::default()).unwrap();
    let has_residual = residual.is_some();
    let mut residual = residual;
    w.add_tensor("t", shape, data, enc, residual.as_deref_mut())
        .unwrap();
    let (bytes, digest) = w.finish().unwrap();
    let reader = DeltaReader::open(&bytes, &Limits::default()).unwrap();
    assert_eq!(reader.digest(), digest);
    assert_eq!(reader.header(), &header());
    let t = reader.tensor("t").unwrap();
    assert_eq!((t.shape(), t.encoding()), (shape, enc));
    let decoded = t.decode().unwrap();
    let touched: Vec<u64> = t.touched_indices().collect();
    naive::check_error_bounds(enc, &encoded_input, &decoded, &touched)
        .unwrap_or_else(|e| panic!("{e}"));
    let oracle = naive::decode(&bytes, u64::MAX).unwrap();
    assert_eq!(oracle.len(), 1);
    assert_eq!(bits(&oracle[0].values), bits(&decoded), "{enc}");
    assert_eq!(oracle[0].touched, touched, "{enc}");
    if has_residual {
        // The residual now holds exactly (data + old residual) − decoded.
        let r = residual.unwrap();
        for i in 0..data.len() {
            assert_eq!(
                r[i].to_bits(),
                (encoded_input[i] - decoded[i]).to_bits(),
                "{enc} at {i}"
            );
        }
    }
    reader.check_all_finite().unwrap();
    decoded
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn every_encoding_and_dtype_round_trips_within_its_bound() {
    let n = 1000;
    let data = sample(n, 11);
    for enc in all_encodings(n as u64) {
        round_trip(&data, &[10, 100], enc, None);
        let mut residual = sample(n, 12).iter().map(|x| x * 0.01).collect::<Vec<_>>();
        round_trip(&data, &[n as u64], enc, Some(&mut residual));
    }
    // Dense f32 is exact.
    assert_eq!(
        round_trip(&data, &[n as u64], Encoding::Dense(DType::F32), None),
        data
    );
}

#[test]
fn edge_shapes_and_values() {
    for enc in all_encodings(1) {
        round_trip(&[-3.5], &[], enc, None);
    }
    for enc in all_encodings(0) {
        round_trip(&[], &[0, 5], enc, None);
    }
    // f16 extremes, subnormals, signed zeros, bf16 extremes.
    let edges = [65504.0, -65519.0, 6e-8, -1e-40, 0.0, -0.0, 1e-45, 3.3e38];
    round_trip(&edges[..7], &[7], Encoding::Dense(DType::F16), None);
    round_trip(&edges, &[8], Encoding::Dense(DType::BF16), None);
    round_trip(
        &edges[..7],
        &[7],
        Encoding::Int8Block { block_size: 3 },
        None,
    );
    // The largest magnitude int8 accepts (2^127), and one just over it.
    let top = [1.701_411_8e38, -1.0, 5.0];
    round_trip(&top, &[3], Encoding::Int8Block { block_size: 2 }, None);
    let mut w = DeltaWriter::new(Vec::new(), &header(), &Limits::default()).unwrap();
    let over = [3.3e38f32];
    assert!(
        w.add_tensor(
            "o",
            &[1],
            &over,
            Encoding::Int8Block { block_size: 1 },
            None
        )
        .is_err()
    );
    round_trip(
        &[f32::MAX, -f32::MAX, 1.0],
        &[3],
        Encoding::Dense(DType::F32),
        None,
    );
}

#[test]
fn error_feedback_carries_what_top_k_left_out() {
    // Over several steps with error feedback, what was sent plus what is
    // still in the residual equals the sum of the inputs.
    let n = 4096;
    let enc = Encoding::TopK {
        k: 64,
        values: DType::I8,
    };
    let mut residual = vec![0f32; n];
    let mut sent = vec![0f64; n];
    let mut total = vec![0f64; n];
    for step in 0..10 {
        let data = sample(n, 100 + step);
        for (t, x) in total.iter_mut().zip(&data) {
            *t += f64::from(*x);
        }
        let decoded = round_trip(&data, &[n as u64], enc, Some(&mut residual));
        for (s, y) in sent.iter_mut().zip(&decoded) {
            *s += f64::from(*y);
        }
    }
    for i in 0..n {
        let err = (sent[i] + f64::from(residual[i]) - total[i]).abs();
        assert!(err < 1e-5, "element {i}: off by {err}");
    }
    // Without feedback, the same data would lose most of its mass; with it,
    // every element was eventually sent or is still owed.
    assert!(residual.iter().any(|&r| r != 0.0));
}

#[test]
fn large_tensors_take_the_parallel_paths_and_agree_with_the_oracle() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    pool.install(|| {
        let n = 600_000;
        let data = sample(n, 21);
        for enc in [
            Encoding::Dense(DType::F32),
            Encoding::Dense(DType::F16),
            Encoding::Dense(DType::BF16),
            Encoding::Int8Block { block_size: 100 },
            Encoding::TopK {
                k: 50_000,
                values: DType::BF16,
            },
            Encoding::TopK {
                k: 300_000,
                values: DType::I8,
            },
        ] {
            let bytes = write(&[("big", vec![n as u64], data.clone(), enc)]);
            let r = DeltaReader::open(&bytes, &Limits::default()).unwrap();
            let t = r.tensor("big").unwrap();
            let oracle = &naive::decode(&bytes, u64::MAX).unwrap()[0];
            let base = sample(n, 22);
            for alpha in [1.0f32, -0.37] {
                let mut fast = base.clone();
                t.apply(&mut fast, alpha).unwrap();
                let mut slow = base.clone();
                naive::apply(oracle, &mut slow, alpha);
                assert_eq!(bits(&fast), bits(&slow), "{enc} alpha {alpha}");
            }
            // Undo by restoring exactly the touched elements.
            let mut weights = base.clone();
            let touched: Vec<u64> = t.touched_indices().collect();
            let backup: Vec<f32> = touched.iter().map(|&i| weights[i as usize]).collect();
            t.apply(&mut weights, 1.0).unwrap();
            for (&i, &v) in touched.iter().zip(&backup) {
                weights[i as usize] = v;
            }
            assert_eq!(bits(&weights), bits(&base), "{enc}: undo");
        }
    });
}

#[test]
fn many_tensors_lookup_and_iteration_order() {
    let names = ["z.weight", "a.bias", "m.x", "a.bia", "b"];
    let tensors: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                *n,
                vec![i as u64 + 1],
                sample(i + 1, i as u64),
                Encoding::Dense(DType::F32),
            )
        })
        .collect();
    let bytes = write(&tensors);
    let r = DeltaReader::open(&bytes, &Limits::default()).unwrap();
    let order: Vec<&str> = r.tensors().map(|t| t.name()).collect();
    assert_eq!(order, names);
    for (i, n) in names.iter().enumerate() {
        assert_eq!(
            r.tensor(n).unwrap().decode().unwrap(),
            sample(i + 1, i as u64)
        );
    }
    assert!(r.get("a.bi").is_none() && r.get("zz").is_none());
    assert_eq!(r.total_elements(), 15);
}

#[test]
fn memory_mapped_files_and_their_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("delta.bin");
    let bytes = write(&[("w", vec![64], sample(64, 5), Encoding::Dense(DType::BF16))]);
    std::fs::write(&path, &bytes).unwrap();
    let mapped = open_file(&path, &Limits::default()).unwrap();
    let reader = mapped.reader();
    assert_eq!(reader.bytes(), &bytes[..]);
    assert_eq!(reader.tensor("w").unwrap().element_count(), 64);
    let tight = Limits {
        max_file_size: bytes.len() as u64 - 1,
        ..Limits::default()
    };
    assert!(matches!(
        open_file(&path, &tight),
        Err(bistro_core::Error::LimitExceeded { .. })
    ));
    std::fs::write(&path, b"").unwrap();
    assert!(open_file(&path, &Limits::default()).is_err());
    assert!(matches!(
        open_file(dir.path().join("missing"), &Limits::default()),
        Err(bistro_core::Error::Io { .. })
    ));
}

#[test]
fn a_writer_streams_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.tmp");
    let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut w = DeltaWriter::new(file, &header(), &Limits::default()).unwrap();
    let data = sample(3_000_000, 8);
    w.add_tensor(
        "big",
        &[3_000_000],
        &data,
        Encoding::Dense(DType::F16),
        None,
    )
    .unwrap();
    let (_, digest) = w.finish().unwrap();
    let mapped = open_file(&path, &Limits::default()).unwrap();
    assert_eq!(mapped.reader().digest(), digest);
}

#[test]
fn external_signatures_go_into_the_footer_without_changing_the_digest() {
    let mut bytes = write(&[("w", vec![4], sample(4, 1), Encoding::Dense(DType::F32))]);
    let digest = DeltaReader::open(&bytes, &Limits::default())
        .unwrap()
        .digest();
    let sig = bistro_core::Signature([0xab; 64]);
    write_signature(&mut bytes, &sig).unwrap();
    let r = DeltaReader::open(&bytes, &Limits::default()).unwrap();
    assert_eq!((r.digest(), r.signature()), (digest, sig));
    assert!(write_signature(&mut bytes[..100], &sig).is_err());
    let mut not_delta = vec![0u8; 300];
    assert!(write_signature(&mut not_delta, &sig).is_err());
}

#[cfg(feature = "sr25519")]
#[test]
fn signed_deltas_verify_against_the_header_hotkey() {
    use bistro_core::Keypair;
    let pair = Keypair::from_seed([9; 32]).unwrap();
    let mut h = header();
    h.hotkey = pair.public();
    let mut w = DeltaWriter::new(Vec::new(), &h, &Limits::default()).unwrap();
    w.add_tensor(
        "w",
        &[3],
        &[1.0, 2.0, 3.0],
        Encoding::Dense(DType::F32),
        None,
    )
    .unwrap();
    let (bytes, digest) = w.finish_signed(&pair).unwrap();
    let r = DeltaReader::open(&bytes, &Limits::default()).unwrap();
    r.verify_signature().unwrap();
    assert_eq!(r.digest(), digest);

    // An external signer signs the digest of an unsigned file.
    let mut w = DeltaWriter::new(Vec::new(), &h, &Limits::default()).unwrap();
    w.add_tensor("w", &[1], &[1.0], Encoding::Dense(DType::F32), None)
        .unwrap();
    let (mut unsigned, digest) = w.finish().unwrap();
    let r = DeltaReader::open(&unsigned, &Limits::default()).unwrap();
    assert!(matches!(
        r.verify_signature(),
        Err(bistro_core::Error::BadSignature(_))
    ));
    write_signature(&mut unsigned, &pair.sign(&digest.0)).unwrap();
    DeltaReader::open(&unsigned, &Limits::default())
        .unwrap()
        .verify_signature()
        .unwrap();

    // Another key's signature, or a signature by a key that is not the hotkey.
    let other = Keypair::from_seed([10; 32]).unwrap();
    write_signature(&mut unsigned, &other.sign(&digest.0)).unwrap();
    let r = DeltaReader::open(&unsigned, &Limits::default()).unwrap();
    assert!(matches!(
        r.verify_signature(),
        Err(bistro_core::Error::BadSignature(_))
    ));
    let w = DeltaWriter::new(Vec::new(), &h, &Limits::default()).unwrap();
    assert!(matches!(
        w.finish_signed(&other),
        Err(bistro_core::Error::InvalidArgument(_))
    ));
}
