//! A second, deliberately simple decoder written from `docs/delta-format.md`
//! alone, and the spec's error bounds as a checker.
//!
//! Nothing here is fast or shares code with the real reader: every field is
//! read with a bounds-checked helper, bit arrays are read one bit at a time,
//! and every value is converted on its own. Property tests and the fuzz
//! targets compare [`DeltaReader`](super::DeltaReader) against it; it is also
//! a template for decoders in other languages. It assumes the file already
//! passed [`DeltaReader::open`](super::DeltaReader::open) and skips most
//! validation, but never panics or allocates more than `max_elements` values.

use super::encoding::{DType, Encoding};

/// One tensor as the naive decoder sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct NaiveTensor {
    /// Name from the table.
    pub name: String,
    /// Shape from the table.
    pub shape: Vec<u64>,
    /// Every value (zero where top-k stored none).
    pub values: Vec<f32>,
    /// Indices the delta stores: all of them, or top-k's kept ones.
    pub touched: Vec<u64>,
}

fn le(bytes: &[u8], at: u64, len: u64) -> Result<u64, String> {
    let start = usize::try_from(at).map_err(|e| e.to_string())?;
    let end = start.checked_add(len as usize).ok_or("offset overflows")?;
    let b = bytes
        .get(start..end)
        .ok_or_else(|| format!("{len} bytes at {at} are outside the file"))?;
    Ok(b.iter()
        .rev()
        .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

fn f16_to_f32(bits: u16) -> f32 {
    let sign = if bits & 0x8000 != 0 { -1.0f64 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f64::from(bits & 0x3ff);
    let v = match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    };
    (sign * v) as f32
}

/// `a + b`, or an error if a hostile offset makes it overflow.
fn add(a: u64, b: u64) -> Result<u64, String> {
    a.checked_add(b).ok_or_else(|| "offset overflows".into())
}

/// `a × b`, or an error on overflow.
fn mul(a: u64, b: u64) -> Result<u64, String> {
    a.checked_mul(b).ok_or_else(|| "size overflows".into())
}

/// The `len`-byte field `off` bytes into the table entry at `at`.
fn field(bytes: &[u8], at: u64, off: u64, len: u64) -> Result<u64, String> {
    le(bytes, add(at, off)?, len)
}

/// Reads bit `j` of the little-endian u64-word bit array at `base`.
fn bit(bytes: &[u8], base: u64, j: u64) -> Result<bool, String> {
    let byte = le(bytes, add(base, j / 8)?, 1)?;
    Ok((byte >> (j % 8)) & 1 == 1)
}

/// Decodes every tensor of a delta (no digest or limit checks beyond
/// `max_elements` values in all).
pub fn decode(bytes: &[u8], max_elements: u64) -> Result<Vec<NaiveTensor>, String> {
    let len = bytes.len() as u64;
    if len < 256 || bytes.get(..8) != Some(b"BSTRDLTA".as_slice()) {
        return Err("not a delta".into());
    }
    let footer = len - 128;
    let table_offset = le(bytes, footer, 8)?;
    let count = le(bytes, footer + 16, 8)?;
    let mut at = table_offset;
    let mut out = Vec::new();
    let mut total = 0u64;
    for _ in 0..count {
        let kind = field(bytes, at, 0, 1)?;
        let dtype = field(bytes, at, 1, 1)?;
        let rank = field(bytes, at, 2, 1)?;
        let param = field(bytes, at, 4, 4)?;
        let k = field(bytes, at, 8, 8)?;
        let offset = field(bytes, at, 16, 8)?;
        let name_len = field(bytes, at, 32, 2)?;
        let mut shape = Vec::new();
        let mut n = 1u64;
        for d in 0..rank {
            let dim = field(bytes, at, 40 + 8 * d, 8)?;
            shape.push(dim);
            n = n.checked_mul(dim).ok_or("shape overflows")?;
        }
        let name_at = add(at, 40 + 8 * rank)?;
        let name = usize::try_from(name_at)
            .ok()
            .and_then(|start| bytes.get(start..start.checked_add(name_len as usize)?))
            .ok_or("name outside the file")?;
        let name = String::from_utf8(name.to_vec()).map_err(|e| e.to_string())?;
        at = add(at, 40 + 8 * rank + name_len.div_ceil(8) * 8)?;
        total = total.saturating_add(n);
        if total > max_elements {
            return Err("too many elements".into());
        }
        let mut values = vec![0f32; n as usize];
        let mut touched = Vec::new();
        let dtype = match dtype {
            1 => DType::F32,
            2 => DType::F16,
            3 => DType::BF16,
            4 => DType::I8,
            _ => return Err("bad dtype".into()),
        };
        let read = |at: u64, dtype: DType, scale: f32| -> Result<f32, String> {
            Ok(match dtype {
                DType::F32 => f32::from_bits(le(bytes, at, 4)? as u32),
                DType::F16 => f16_to_f32(le(bytes, at, 2)? as u16),
                DType::BF16 => f32::from_bits((le(bytes, at, 2)? as u32) << 16),
                DType::I8 => f32::from(le(bytes, at, 1)? as u8 as i8) * scale,
            })
        };
        match kind {
            1 => {
                for (i, v) in values.iter_mut().enumerate() {
                    *v = read(add(offset, i as u64 * dtype.size())?, dtype, 1.0)?;
                    touched.push(i as u64);
                }
            }
            3 => {
                let block = param.max(1);
                for (i, v) in values.iter_mut().enumerate() {
                    let (b, j) = (i as u64 / block, i as u64 % block);
                    let block_at = add(offset, mul(b, block + 4)?)?;
                    let scale = f32::from_bits(le(bytes, block_at, 4)? as u32);
                    *v = read(add(block_at, 4 + j)?, DType::I8, scale)?;
                    touched.push(i as u64);
                }
            }
            2 if k > n => return Err("more kept values than elements".into()),
            2 if k > 0 => {
                let l = u64::from((n / k).ilog2());
                let upper_bits = k + ((n - 1) >> l) + 1;
                let lower_at = add(offset, upper_bits.div_ceil(64) * 8)?;
                let mut values_at = add(lower_at, mul(k, l)?.div_ceil(64) * 8)?;
                let mut scale = 1.0;
                if dtype == DType::I8 {
                    scale = f32::from_bits(le(bytes, values_at, 4)? as u32);
                    values_at = add(values_at, 4)?;
                }
                let mut i = 0u64;
                for j in 0..upper_bits {
                    if !bit(bytes, offset, j)? {
                        continue;
                    }
                    let mut low = 0u64;
                    for b in 0..l {
                        if bit(bytes, lower_at, i * l + b)? {
                            low |= 1 << b;
                        }
                    }
                    let x = ((j - i) << l) | low;
                    let slot = values.get_mut(x as usize).ok_or("index out of range")?;
                    *slot = read(add(values_at, i * dtype.size())?, dtype, scale)?;
                    touched.push(x);
                    i += 1;
                }
            }
            2 => {}
            _ => return Err("bad encoding".into()),
        }
        out.push(NaiveTensor {
            name,
            shape,
            values,
            touched,
        });
    }
    Ok(out)
}

/// `dst[i] = dst[i] + alpha × values[i]` for each touched `i`.
pub fn apply(tensor: &NaiveTensor, dst: &mut [f32], alpha: f32) {
    for &i in &tensor.touched {
        if let (Some(d), Some(&v)) = (dst.get_mut(i as usize), tensor.values.get(i as usize)) {
            let scaled = alpha * v;
            *d += scaled;
        }
    }
}

fn pow2(e: i32) -> f64 {
    2f64.powi(e)
}

/// The bound of the spec's "Error bounds" table for a value `x` stored as
/// `dtype` (`scale` for int8).
pub fn value_bound(dtype: DType, x: f32, scale: f32) -> f64 {
    let x = f64::from(x).abs();
    match dtype {
        DType::F32 => 0.0,
        DType::F16 => (x * pow2(-11)).max(pow2(-25)),
        DType::BF16 => (x * pow2(-8)).max(pow2(-134)),
        DType::I8 => 0.5 * f64::from(scale) * (1.0 + pow2(-14)) + pow2(-116),
    }
}

/// Checks that `decoded` (with `touched`, the indices the delta stores) is
/// within the spec's error bounds of the encoder's `input` for `encoding`.
/// For error feedback, `input` is the sum of data and residual that was encoded.
pub fn check_error_bounds(
    encoding: Encoding,
    input: &[f32],
    decoded: &[f32],
    touched: &[u64],
) -> Result<(), String> {
    if input.len() != decoded.len() {
        return Err("lengths differ".into());
    }
    let max_abs = |s: &[f32]| s.iter().fold(0f32, |m, x| m.max(x.abs()));
    let within = |i: usize, x: f32, y: f32, bound: f64| {
        let err = (f64::from(x) - f64::from(y)).abs();
        if err <= bound {
            Ok(())
        } else {
            Err(format!(
                "{encoding}: element {i}: {x} decoded as {y}, error {err:e} over {bound:e}"
            ))
        }
    };
    match encoding {
        Encoding::Dense(dtype) => {
            for (i, (&x, &y)) in input.iter().zip(decoded).enumerate() {
                within(i, x, y, value_bound(dtype, x, 0.0))?;
            }
        }
        Encoding::Int8Block { block_size } => {
            let block = block_size.max(1) as usize;
            for (b, (xs, ys)) in input.chunks(block).zip(decoded.chunks(block)).enumerate() {
                let scale = max_abs(xs) / 127.0;
                for (j, (&x, &y)) in xs.iter().zip(ys).enumerate() {
                    within(b * block + j, x, y, value_bound(DType::I8, x, scale))?;
                }
            }
        }
        Encoding::TopK { k, values } => {
            if touched.len() as u64 != k {
                return Err(format!("{k} values should be kept, {} are", touched.len()));
            }
            let scale = max_abs(input) / 127.0;
            let mut kept = vec![false; input.len()];
            let mut smallest_kept = f32::INFINITY;
            for &i in touched {
                let i = i as usize;
                let (Some(&x), Some(&y)) = (input.get(i), decoded.get(i)) else {
                    return Err(format!("kept index {i} out of range"));
                };
                within(i, x, y, value_bound(values, x, scale))?;
                smallest_kept = smallest_kept.min(x.abs());
                kept[i] = true;
            }
            for (i, (&x, &y)) in input.iter().zip(decoded).enumerate() {
                if kept[i] {
                    continue;
                }
                if y != 0.0 {
                    return Err(format!("dropped element {i} decoded as {y}, not 0"));
                }
                if x.abs() > smallest_kept {
                    return Err(format!(
                        "dropped element {i} ({x}) is larger than a kept one ({smallest_kept})"
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 256-byte file with one table entry at 64 (`kind`, f32, one dim of
    /// `n`, `k`, payload at `offset`) that the footer points to.
    fn one_entry(kind: u8, n: u64, k: u64, offset: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; 256];
        bytes[..8].copy_from_slice(b"BSTRDLTA");
        let e = 64;
        bytes[e] = kind;
        bytes[e + 1] = 1;
        bytes[e + 2] = 1;
        bytes[e + 8..e + 16].copy_from_slice(&k.to_le_bytes());
        bytes[e + 16..e + 24].copy_from_slice(&offset.to_le_bytes());
        bytes[e + 40..e + 48].copy_from_slice(&n.to_le_bytes());
        let footer = 256 - 128;
        bytes[footer..footer + 8].copy_from_slice(&64u64.to_le_bytes());
        bytes[footer + 16..footer + 24].copy_from_slice(&1u64.to_le_bytes());
        bytes
    }

    #[test]
    fn hostile_offsets_are_errors_not_overflows() {
        // Top-k computes the index and value offsets from the payload
        // offset before reading anything: this used to overflow.
        let err = decode(&one_entry(2, 2, 1, u64::MAX - 1), 100).unwrap_err();
        assert!(err.contains("overflows"), "{err}");
        let err = decode(&one_entry(1, 2, 0, u64::MAX - 1), 100).unwrap_err();
        assert!(
            err.contains("outside") || err.contains("overflows"),
            "{err}"
        );
        // The table offset itself near the end of the address space.
        let mut bytes = one_entry(1, 2, 0, 0);
        bytes[128..136].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
        assert!(decode(&bytes, 100).is_err());
    }

    #[test]
    fn more_kept_values_than_elements_is_an_error() {
        // `(n / k).ilog2()` of 0 used to panic.
        let err = decode(&one_entry(2, 2, 3, 0), 100).unwrap_err();
        assert!(err.contains("more kept values"), "{err}");
    }
}
