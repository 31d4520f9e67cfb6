//! Arbitrary tensors through `DeltaWriter` and back through `DeltaReader`:
//! the writer accepts exactly the inputs the spec allows, never writes a
//! file its reader rejects, and decoded values are within each encoding's
//! stated error bound (checked by `codec::naive::check_error_bounds`).
#![no_main]

use bistro_core::Error;
use bistro_core::codec::{DType, DeltaHeader, DeltaReader, DeltaWriter, Encoding, Limits, naive};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Tensor {
    dims: Vec<u8>,
    values: Vec<u32>,
    /// Use the bits as given (NaN, infinity, huge values) instead of
    /// folding them into the range every dtype holds.
    raw_bits: bool,
    kind: u8,
    dtype: u8,
    param: u16,
    k: u32,
    residual: Option<Vec<i16>>,
}

fn dtype(code: u8) -> DType {
    [DType::F32, DType::F16, DType::BF16, DType::I8][usize::from(code % 4)]
}

fn fits(dtype: DType, x: f32) -> bool {
    x.is_finite()
        && match dtype {
            DType::F32 => true,
            DType::F16 => x.abs() < 65520.0,
            DType::BF16 => x.to_bits() & 0x7fff_ffff < 0x7f7f_8000,
            DType::I8 => x.abs() <= 1.701_411_8e38,
        }
}

fuzz_target!(|tensors: Vec<Tensor>| {
    let limits = Limits::default();
    let mut w = DeltaWriter::new(Vec::new(), &DeltaHeader::default(), &limits).unwrap();
    let mut kept = Vec::new();
    for (i, t) in tensors.iter().take(8).enumerate() {
        let shape: Vec<u64> = t.dims.iter().take(3).map(|&d| u64::from(d % 24)).collect();
        let n: u64 = shape.iter().product();
        let data: Vec<f32> = (0..n as usize)
            .map(|j| {
                let b = t
                    .values
                    .get(j % t.values.len().max(1))
                    .copied()
                    .unwrap_or(0);
                let b = b.rotate_left(j as u32 % 7);
                if t.raw_bits {
                    f32::from_bits(b)
                } else {
                    let exponent = (b >> 23) % 142;
                    f32::from_bits((b & 0x807f_ffff) | (exponent << 23))
                }
            })
            .collect();
        let encoding = match t.kind % 3 {
            0 => Encoding::Dense(dtype(t.dtype % 3)),
            1 => Encoding::TopK {
                k: u64::from(t.k) % (n + 1),
                values: dtype(t.dtype),
            },
            _ => Encoding::Int8Block {
                block_size: u32::from(t.param).max(1),
            },
        };
        let mut residual: Option<Vec<f32>> = t.residual.as_ref().map(|r| {
            (0..n as usize)
                .map(|j| f32::from(r.get(j % r.len().max(1)).copied().unwrap_or(0)) / 4096.0)
                .collect()
        });
        let input: Vec<f32> = match &residual {
            Some(r) => data.iter().zip(r).map(|(x, r)| x + r).collect(),
            None => data.clone(),
        };
        let stores = !matches!(encoding, Encoding::TopK { k: 0, .. });
        let check_dtype = if stores { encoding.dtype() } else { DType::F32 };
        // The writer reports the first value that does not fit: NonFinite if
        // it is NaN or infinite, InvalidArgument if it is finite but too large.
        let first_bad = input.iter().find(|&&x| !fits(check_dtype, x));
        let expect_ok = first_bad.is_none();
        let result = w.add_tensor(
            &format!("t{i}"),
            &shape,
            &data,
            encoding,
            residual.as_deref_mut(),
        );
        match (&result, first_bad) {
            (Ok(()), None) => kept.push((encoding, input, residual, data)),
            (Err(Error::NonFinite { index, .. }), Some(x)) => {
                assert!(!x.is_finite());
                assert_eq!(input[*index as usize].to_bits(), x.to_bits());
            }
            (Err(Error::InvalidArgument(_)), Some(x)) => assert!(x.is_finite()),
            _ => panic!("{encoding}: writer said {result:?}, expected ok = {expect_ok}"),
        }
    }
    let (bytes, digest) = w.finish().unwrap();
    let reader =
        DeltaReader::open(&bytes, &limits).expect("the reader accepts what the writer wrote");
    assert_eq!(reader.digest(), digest);
    reader.check_all_finite().unwrap();
    assert_eq!(reader.len(), kept.len());
    for (view, (encoding, input, residual, _)) in reader.tensors().zip(&kept) {
        let decoded = view.decode().unwrap();
        let touched: Vec<u64> = view.touched_indices().collect();
        if let Err(e) = naive::check_error_bounds(*encoding, input, &decoded, &touched) {
            panic!("{e}");
        }
        if let Some(r) = residual {
            for i in 0..input.len() {
                assert_eq!(r[i].to_bits(), (input[i] - decoded[i]).to_bits());
            }
        }
    }
});
