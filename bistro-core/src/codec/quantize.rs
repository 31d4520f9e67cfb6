//! Turning f32 values into stored values (the encoder's side of each dtype),
//! and the range each dtype can hold without overflowing to infinity.

use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

use super::encoding::DType;

/// Largest magnitude accepted for int8 values: the decoded `q × scale` of a
/// block whose maximum is this stays finite.
pub(crate) const INT8_MAX_MAGNITUDE: f32 = 1.701_411_8e38; // 2^127

/// Whether `x` (finite) can be stored as `dtype` without becoming infinite.
#[inline]
pub(crate) fn fits(dtype: DType, x: f32) -> bool {
    let magnitude = x.to_bits() & 0x7fff_ffff;
    match dtype {
        DType::F32 => magnitude < 0x7f80_0000,
        // Values from 65520 up round to infinity in f16.
        DType::F16 => x.abs() < 65520.0,
        // From halfway between bf16::MAX and 2^128 up, bf16 rounds to infinity.
        DType::BF16 => magnitude < 0x7f7f_8000,
        DType::I8 => x.abs() <= INT8_MAX_MAGNITUDE,
    }
}

/// The scale of an int8 block (or top-k tensor) whose largest magnitude is `max_abs`.
#[inline]
pub(crate) fn int8_scale(max_abs: f32) -> f32 {
    max_abs / 127.0
}

/// `x` quantized with `scale`.
#[inline]
pub(crate) fn int8_quantize(x: f32, scale: f32) -> i8 {
    if scale > 0.0 {
        (x / scale).round().clamp(-127.0, 127.0) as i8
    } else {
        0
    }
}

/// Writes `src` as dense values of `dtype` (f32, f16 or bf16) into `out`
/// (`src.len() × size` bytes).
pub(crate) fn encode_dense(dtype: DType, src: &[f32], out: &mut [u8]) {
    match dtype {
        DType::F32 => {
            for (o, &x) in out.as_chunks_mut::<4>().0.iter_mut().zip(src) {
                *o = x.to_le_bytes();
            }
        }
        DType::F16 => {
            const STEP: usize = 256;
            let mut halves = [f16::ZERO; STEP];
            let (outs, _) = out.as_chunks_mut::<2>();
            for (chunk, o) in src.chunks(STEP).zip(outs.chunks_mut(STEP)) {
                let halves = &mut halves[..chunk.len()];
                halves.convert_from_f32_slice(chunk);
                for (o, h) in o.iter_mut().zip(halves.iter()) {
                    *o = h.to_le_bytes();
                }
            }
        }
        DType::BF16 => {
            for (o, &x) in out.as_chunks_mut::<2>().0.iter_mut().zip(src) {
                *o = bf16::from_f32(x).to_le_bytes();
            }
        }
        DType::I8 => {}
    }
}

/// Appends one stored value of `dtype` (int8 with `scale`).
#[inline]
pub(crate) fn encode_value(dtype: DType, x: f32, scale: f32, out: &mut Vec<u8>) {
    match dtype {
        DType::F32 => out.extend_from_slice(&x.to_le_bytes()),
        DType::F16 => out.extend_from_slice(&f16::from_f32(x).to_le_bytes()),
        DType::BF16 => out.extend_from_slice(&bf16::from_f32(x).to_le_bytes()),
        DType::I8 => out.push(int8_quantize(x, scale) as u8),
    }
}

/// Appends `src` (whole blocks; the last may be short) as int8 blocks.
pub(crate) fn encode_int8_blocks(block: usize, src: &[f32], out: &mut Vec<u8>) {
    for b in src.chunks(block.max(1)) {
        let max_abs = b.iter().fold(0f32, |m, x| m.max(x.abs()));
        let scale = int8_scale(max_abs);
        out.extend_from_slice(&scale.to_le_bytes());
        out.extend(b.iter().map(|&x| int8_quantize(x, scale) as u8));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_edges() {
        assert!(fits(DType::F16, 65519.0) && !fits(DType::F16, 65520.0));
        assert!(f16::from_f32(65519.0).is_finite() && f16::from_f32(65520.0).is_infinite());
        let edge = f32::from_bits(0x7f7f_8000);
        let below = f32::from_bits(0x7f7f_7fff);
        assert!(!fits(DType::BF16, edge) && fits(DType::BF16, -below));
        assert!(bf16::from_f32(edge).is_infinite() && bf16::from_f32(below).is_finite());
        let s = int8_scale(INT8_MAX_MAGNITUDE);
        assert!((127.0 * s).is_finite());
    }

    #[test]
    fn int8_quantization_is_within_half_a_step() {
        let block: Vec<f32> = (0..50).map(|i| (i as f32 - 20.0) * 0.37).collect();
        let max_abs = block.iter().fold(0f32, |m, x| m.max(x.abs()));
        let scale = int8_scale(max_abs);
        for &x in &block {
            let y = f32::from(int8_quantize(x, scale)) * scale;
            assert!((x - y).abs() <= 0.5 * scale * (1.0 + 1.0 / 16384.0));
        }
        assert_eq!(int8_quantize(5.0, 0.0), 0);
    }
}
