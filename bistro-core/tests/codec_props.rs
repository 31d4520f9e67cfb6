//! Property tests: the fast reader against the naive oracle, and the
//! writer's output against the spec's error bounds, on fixed seeds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

mod codec_common;

use bistro_core::codec::{DType, DeltaReader, DeltaWriter, Encoding, Limits, naive};
use codec_common::header;
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, RngSeed};

/// Finite f32 values of every kind f16 can hold: zeros, subnormals, normals
/// up to 2^14, both signs.
fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<u32>().prop_map(|b| {
            let exponent = (b >> 23) % 142;
            f32::from_bits((b & 0x807f_ffff) | (exponent << 23))
        }),
        Just(0.0f32),
        Just(0.5f32),
        -1.0f32..1.0,
    ]
}

fn dtype() -> impl Strategy<Value = DType> {
    prop_oneof![
        Just(DType::F32),
        Just(DType::F16),
        Just(DType::BF16),
        Just(DType::I8)
    ]
}

fn encoding(n: u64) -> impl Strategy<Value = Encoding> {
    prop_oneof![
        dtype().prop_map(|d| Encoding::Dense(if d == DType::I8 { DType::F32 } else { d })),
        (0..=n, dtype()).prop_map(|(k, values)| Encoding::TopK { k, values }),
        (1u32..300).prop_map(|block_size| Encoding::Int8Block { block_size }),
    ]
}

#[derive(Debug, Clone)]
struct Tensor {
    shape: Vec<u64>,
    data: Vec<f32>,
    encoding: Encoding,
    residual: Option<Vec<f32>>,
}

fn tensor() -> impl Strategy<Value = Tensor> {
    prop::collection::vec(0u64..12, 0..4)
        .prop_flat_map(|shape| {
            let n = shape.iter().product::<u64>();
            (
                Just(shape),
                prop::collection::vec(value(), n as usize),
                encoding(n),
                prop::option::of(prop::collection::vec(-0.01f32..0.01, n as usize)),
            )
        })
        .prop_map(|(shape, data, encoding, residual)| Tensor {
            shape,
            data,
            encoding,
            residual,
        })
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 192,
        rng_seed: RngSeed::Fixed(0x5eed_b157_0c0d_ec00),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fast_reader_matches_naive_oracle_and_bounds(
        tensors in prop::collection::vec(tensor(), 0..5),
        alpha in -2.0f32..2.0,
    ) {
        let limits = Limits::default();
        let mut w = DeltaWriter::new(Vec::new(), &header(), &limits).unwrap();
        let mut inputs = Vec::new();
        for (i, t) in tensors.iter().enumerate() {
            let mut residual = t.residual.clone();
            let input: Vec<f32> = match &residual {
                Some(r) => t.data.iter().zip(r).map(|(x, r)| x + r).collect(),
                None => t.data.clone(),
            };
            w.add_tensor(&format!("t{i}"), &t.shape, &t.data, t.encoding, residual.as_deref_mut())
                .unwrap();
            inputs.push((input, residual));
        }
        let (bytes, _) = w.finish().unwrap();
        let reader = DeltaReader::open(&bytes, &limits).unwrap();
        reader.check_all_finite().unwrap();
        let oracle = naive::decode(&bytes, limits.max_total_elements).unwrap();
        prop_assert_eq!(oracle.len(), reader.len());
        for ((view, slow), (t, (input, residual))) in
            reader.tensors().zip(&oracle).zip(tensors.iter().zip(&inputs))
        {
            prop_assert_eq!(view.name(), slow.name.as_str());
            prop_assert_eq!(view.shape(), slow.shape.as_slice());
            let decoded = view.decode().unwrap();
            prop_assert_eq!(bits(&decoded), bits(&slow.values));
            let touched: Vec<u64> = view.touched_indices().collect();
            prop_assert_eq!(&touched, &slow.touched);
            if let Err(e) = naive::check_error_bounds(t.encoding, input, &decoded, &touched) {
                return Err(TestCaseError::fail(e));
            }
            if let Some(r) = residual {
                for i in 0..input.len() {
                    prop_assert_eq!(r[i].to_bits(), (input[i] - decoded[i]).to_bits());
                }
            }
            let mut fast = t.data.clone();
            view.apply(&mut fast, alpha).unwrap();
            let mut reference = t.data.clone();
            naive::apply(slow, &mut reference, alpha);
            prop_assert_eq!(bits(&fast), bits(&reference));
        }
    }

    #[test]
    fn edited_valid_files_are_rejected_or_agree_with_the_oracle(
        tensors in prop::collection::vec(tensor(), 1..4),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let limits = Limits::default();
        let mut w = DeltaWriter::new(Vec::new(), &header(), &limits).unwrap();
        for (i, t) in tensors.iter().enumerate() {
            w.add_tensor(&format!("t{i}"), &t.shape, &t.data, t.encoding, None).unwrap();
        }
        let (mut bytes, _) = w.finish().unwrap();
        for (at, value) in &edits {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
        codec_common::refix_digest(&mut bytes);
        if let Ok(reader) = DeltaReader::open(&bytes, &limits) {
            let oracle = naive::decode(&bytes, limits.max_total_elements).unwrap();
            for (view, slow) in reader.tensors().zip(&oracle) {
                let decoded = view.decode().unwrap();
                prop_assert_eq!(bits(&decoded), bits(&slow.values));
                let touched: Vec<u64> = view.touched_indices().collect();
                prop_assert_eq!(&touched, &slow.touched);
                let _ = view.check_finite();
            }
        }
    }
}
