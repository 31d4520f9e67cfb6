//! The inner loops: turning stored values into f32 and combining them with
//! the caller's buffer (store for decoding, `w + alpha × v` for applying),
//! on all cores for large tensors. Nothing here allocates per element.

use half::f16;
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
use rayon::prelude::*;

use super::encoding::DType;

/// Elements per parallel task (256 KiB of f32).
pub(crate) const CHUNK: usize = 1 << 16;

/// How a decoded value `v` is combined with a destination element.
pub(crate) trait Combine: Copy + Send + Sync {
    /// Combines `v` into `dst`.
    fn combine(self, dst: &mut f32, v: f32);
}

/// Decoding: `dst = v`.
#[derive(Clone, Copy)]
pub(crate) struct Store;

impl Combine for Store {
    #[inline(always)]
    fn combine(self, dst: &mut f32, v: f32) {
        *dst = v;
    }
}

/// Applying: `dst = dst + alpha × v`, two roundings (the spec's rule).
#[derive(Clone, Copy)]
pub(crate) struct AddScaled(pub f32);

impl Combine for AddScaled {
    #[inline(always)]
    fn combine(self, dst: &mut f32, v: f32) {
        *dst += self.0 * v;
    }
}

/// f32 from bf16 bits.
#[inline(always)]
pub(crate) fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

/// Combines dense values of `dtype` (`src` holds exactly `dst.len()` values)
/// into `dst`, one thread.
pub(crate) fn dense_chunk<C: Combine>(dtype: DType, src: &[u8], dst: &mut [f32], op: C) {
    match dtype {
        DType::F32 => {
            let (words, _) = src.as_chunks::<4>();
            for (d, w) in dst.iter_mut().zip(words) {
                op.combine(d, f32::from_le_bytes(*w));
            }
        }
        DType::BF16 => {
            let (halves, _) = src.as_chunks::<2>();
            for (d, h) in dst.iter_mut().zip(halves) {
                op.combine(d, bf16_to_f32(u16::from_le_bytes(*h)));
            }
        }
        DType::F16 => {
            // Convert through a small stack buffer so that `half` can use the
            // F16C instructions where the CPU has them.
            const STEP: usize = 256;
            let mut bits = [0u16; STEP];
            let mut values = [0f32; STEP];
            let (halves, _) = src.as_chunks::<2>();
            for (d, h) in dst.chunks_mut(STEP).zip(halves.chunks(STEP)) {
                let len = d.len().min(h.len());
                for (b, x) in bits.iter_mut().zip(h) {
                    *b = u16::from_le_bytes(*x);
                }
                let bits = &bits[..len];
                bits.reinterpret_cast::<f16>()
                    .convert_to_f32_slice(&mut values[..len]);
                for (d, &v) in d.iter_mut().zip(&values[..len]) {
                    op.combine(d, v);
                }
            }
        }
        // Not a dense dtype; the table parser rejects it before we get here.
        DType::I8 => {}
    }
}

/// Combines a whole dense tensor, in parallel when it is large.
pub(crate) fn dense<C: Combine>(dtype: DType, src: &[u8], dst: &mut [f32], op: C) {
    let size = dtype.size() as usize;
    if dst.len() <= CHUNK {
        dense_chunk(dtype, src, dst, op);
        return;
    }
    dst.par_chunks_mut(CHUNK)
        .zip(src.par_chunks(CHUNK * size))
        .for_each(|(d, s)| dense_chunk(dtype, s, d, op));
}

/// Combines int8 blocks (`scale | q × block`), one thread; `dst` holds whole blocks
/// (the last may be short).
pub(crate) fn int8_blocks_chunk<C: Combine>(block: usize, src: &[u8], dst: &mut [f32], op: C) {
    for (d, b) in dst.chunks_mut(block).zip(src.chunks(block + 4)) {
        let (scale, q) = b.split_at(4.min(b.len()));
        let Ok(scale) = <[u8; 4]>::try_from(scale) else {
            return;
        };
        let scale = f32::from_le_bytes(scale);
        for (d, &q) in d.iter_mut().zip(q) {
            op.combine(d, f32::from(q as i8) * scale);
        }
    }
}

/// Blocks per parallel task for a block size.
fn blocks_per_task(block: usize) -> usize {
    (CHUNK / block.max(1)).max(1)
}

/// Combines a whole int8-block tensor, in parallel when it is large.
pub(crate) fn int8_blocks<C: Combine>(block: usize, src: &[u8], dst: &mut [f32], op: C) {
    let block = block.max(1);
    if dst.len() <= CHUNK {
        int8_blocks_chunk(block, src, dst, op);
        return;
    }
    let per = blocks_per_task(block);
    dst.par_chunks_mut(per.saturating_mul(block))
        .zip(src.par_chunks(per.saturating_mul(block + 4)))
        .for_each(|(d, s)| int8_blocks_chunk(block, s, d, op));
}

/// Position of the first non-finite value among dense values of `dtype`.
pub(crate) fn dense_first_non_finite(dtype: DType, src: &[u8]) -> Option<usize> {
    let size = dtype.size() as usize;
    let scan = |s: &[u8]| -> Option<usize> {
        match dtype {
            DType::F32 => s
                .as_chunks::<4>()
                .0
                .iter()
                .position(|w| u32::from_le_bytes(*w) & 0x7f80_0000 == 0x7f80_0000),
            DType::F16 => s
                .as_chunks::<2>()
                .0
                .iter()
                .position(|h| u16::from_le_bytes(*h) & 0x7c00 == 0x7c00),
            DType::BF16 => s
                .as_chunks::<2>()
                .0
                .iter()
                .position(|h| u16::from_le_bytes(*h) & 0x7f80 == 0x7f80),
            DType::I8 => None,
        }
    };
    let bytes_per_task = CHUNK * size;
    let task = src
        .par_chunks(bytes_per_task)
        .position_first(|s| scan(s).is_some())?;
    let start = task * bytes_per_task;
    Some(task * CHUNK + scan(src.get(start..)?)?)
}

/// Position of the first int8-block element whose value `q × scale` is not finite.
pub(crate) fn int8_blocks_first_non_finite(block: usize, src: &[u8]) -> Option<usize> {
    let block = block.max(1);
    let scan = |s: &[u8]| -> Option<usize> {
        for (b, bytes) in s.chunks(block + 4).enumerate() {
            let (scale, q) = bytes.split_at(4.min(bytes.len()));
            let scale = f32::from_le_bytes(<[u8; 4]>::try_from(scale).ok()?);
            if let Some(i) = q
                .iter()
                .position(|&q| !(f32::from(q as i8) * scale).is_finite())
            {
                return Some(b * block + i);
            }
        }
        None
    };
    let per = blocks_per_task(block);
    let bytes_per_task = per.saturating_mul(block + 4);
    let task = src
        .par_chunks(bytes_per_task)
        .position_first(|s| scan(s).is_some())?;
    let start = task.checked_mul(bytes_per_task)?;
    Some(task * per * block + scan(src.get(start..)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_is_multiply_then_add() {
        let src: Vec<u8> = [1.5f32, -2.0, 1e-3]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let mut dst = [1.0f32, 1.0, 1.0];
        dense(DType::F32, &src, &mut dst, AddScaled(0.5));
        assert_eq!(dst, [1.0 + 0.5 * 1.5, 0.0, 1.0 + 0.5 * 1e-3]);
    }

    #[test]
    fn parallel_and_serial_agree_and_find_first_non_finite() {
        let n = 3 * CHUNK + 17;
        let values: Vec<f32> = (0..n).map(|i| (i as f32).sin()).collect();
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            let src: Vec<u8> = values
                .iter()
                .flat_map(|&v| match dtype {
                    DType::F32 => v.to_le_bytes().to_vec(),
                    DType::F16 => f16::from_f32(v).to_le_bytes().to_vec(),
                    _ => half::bf16::from_f32(v).to_le_bytes().to_vec(),
                })
                .collect();
            let mut par = vec![0f32; n];
            dense(dtype, &src, &mut par, Store);
            let mut serial = vec![0f32; n];
            dense_chunk(dtype, &src, &mut serial, Store);
            assert_eq!(par, serial);
            assert_eq!(dense_first_non_finite(dtype, &src), None);
            let mut bad = src.clone();
            let at = 2 * CHUNK + 5;
            let size = dtype.size() as usize;
            for b in &mut bad[at * size..(at + 1) * size] {
                *b = 0xff; // all-ones exponent: NaN
            }
            assert_eq!(dense_first_non_finite(dtype, &bad), Some(at));
        }
    }

    #[test]
    fn int8_blocks_decode_and_non_finite_scales() {
        let block = 3;
        let mut src = Vec::new();
        for (scale, qs) in [(0.5f32, [1i8, -2, 127]), (2.0, [0, 1, -127])] {
            src.extend_from_slice(&scale.to_le_bytes());
            src.extend(qs.iter().map(|&q| q as u8));
        }
        src.extend_from_slice(&1.0f32.to_le_bytes());
        src.push(5);
        let mut out = vec![0f32; 7];
        int8_blocks(block, &src, &mut out, Store);
        assert_eq!(out, [0.5, -1.0, 63.5, 0.0, 2.0, -254.0, 5.0]);
        assert_eq!(int8_blocks_first_non_finite(block, &src), None);
        src[7..11].copy_from_slice(&f32::INFINITY.to_le_bytes());
        assert_eq!(int8_blocks_first_non_finite(block, &src), Some(3));
    }
}
