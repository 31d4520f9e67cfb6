//! How a tensor's values are stored: the [`Encoding`] and the [`DType`] of
//! its stored values, their wire codes, and the payload length they imply.

use std::fmt;

/// The type of the values stored in a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16 (the upper half of an f32).
    BF16,
    /// Signed bytes, multiplied by an f32 scale.
    I8,
}

impl DType {
    /// Bytes per stored value.
    pub fn size(self) -> u64 {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::I8 => 1,
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            DType::F32 => 1,
            DType::F16 => 2,
            DType::BF16 => 3,
            DType::I8 => 4,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(DType::F32),
            2 => Some(DType::F16),
            3 => Some(DType::BF16),
            4 => Some(DType::I8),
            _ => None,
        }
    }
}

/// How one tensor of a delta is encoded.
///
/// The error each encoding may introduce is stated in `docs/delta-format.md`
/// ("Error bounds") and checked by [`naive::check_error_bounds`](super::naive::check_error_bounds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Every value, as f32 (exact), f16 or bf16.
    Dense(DType),
    /// The `k` values of largest magnitude with their indices (Elias–Fano
    /// coded, about `log2(n/k) + 2` bits each); values as f32, f16, bf16, or
    /// int8 with one f32 scale for the tensor. All other values are zero.
    TopK {
        /// How many values to keep (at most the element count).
        k: u64,
        /// How kept values are stored.
        values: DType,
    },
    /// Every value as int8, with an f32 scale per block of `block_size` values.
    Int8Block {
        /// Values per scale (at least 1).
        block_size: u32,
    },
}

const KIND_DENSE: u8 = 1;
const KIND_TOPK: u8 = 2;
const KIND_INT8_BLOCK: u8 = 3;

/// The raw encoding fields of a table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WireEncoding {
    pub kind: u8,
    pub dtype: u8,
    pub param: u32,
    pub count: u64,
}

impl Encoding {
    /// The dtype of the stored values.
    pub fn dtype(self) -> DType {
        match self {
            Encoding::Dense(d) => d,
            Encoding::TopK { values, .. } => values,
            Encoding::Int8Block { .. } => DType::I8,
        }
    }

    /// Whether only some elements are stored (top-k).
    pub fn is_sparse(self) -> bool {
        matches!(self, Encoding::TopK { .. })
    }

    pub(crate) fn to_wire(self) -> WireEncoding {
        let (kind, param, count) = match self {
            Encoding::Dense(_) => (KIND_DENSE, 0, 0),
            Encoding::TopK { k, .. } => (KIND_TOPK, 0, k),
            Encoding::Int8Block { block_size } => (KIND_INT8_BLOCK, block_size, 0),
        };
        WireEncoding {
            kind,
            dtype: self.dtype().code(),
            param,
            count,
        }
    }

    /// Decodes the wire fields, or says what is wrong with them.
    pub(crate) fn from_wire(w: WireEncoding) -> Result<Self, String> {
        let dtype =
            DType::from_code(w.dtype).ok_or_else(|| format!("unknown dtype code {}", w.dtype))?;
        let enc = match w.kind {
            KIND_DENSE => Encoding::Dense(dtype),
            KIND_TOPK => Encoding::TopK {
                k: w.count,
                values: dtype,
            },
            KIND_INT8_BLOCK => Encoding::Int8Block {
                block_size: w.param,
            },
            other => return Err(format!("unknown encoding code {other}")),
        };
        enc.check_form()?;
        if enc.to_wire() != w {
            return Err(format!(
                "fields not used by {enc} must be zero (param {}, count {})",
                w.param, w.count
            ));
        }
        Ok(enc)
    }

    /// Checks the encoding's own parameters (not against a tensor).
    pub(crate) fn check_form(self) -> Result<(), String> {
        match self {
            Encoding::Dense(DType::I8) => {
                Err("dense int8 is not an encoding; use int8 block".into())
            }
            Encoding::Int8Block { block_size: 0 } => Err("int8 block size is zero".into()),
            _ => Ok(()),
        }
    }

    /// The payload length for a tensor of `n` elements, or why there is none.
    pub(crate) fn payload_len(self, n: u64) -> Result<u64, String> {
        let overflow = || format!("payload length of {self} over {n} elements overflows");
        match self {
            Encoding::Dense(d) => n.checked_mul(d.size()).ok_or_else(overflow),
            Encoding::Int8Block { block_size } => {
                let blocks = n.div_ceil(u64::from(block_size.max(1)));
                blocks
                    .checked_mul(4)
                    .and_then(|s| s.checked_add(n))
                    .ok_or_else(overflow)
            }
            Encoding::TopK { k, values } => {
                if k > n {
                    return Err(format!("k = {k} is more than the {n} elements"));
                }
                let ef = EfGeometry::new(n, k);
                let scale = if values == DType::I8 { 4 } else { 0 };
                ef.index_bytes()
                    .and_then(|i| i.checked_add(scale))
                    .and_then(|s| s.checked_add(k.checked_mul(values.size())?))
                    .ok_or_else(overflow)
            }
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I8 => "int8",
        })
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encoding::Dense(d) => write!(f, "dense {d}"),
            Encoding::TopK { k, values } => write!(f, "top-{k} {values}"),
            Encoding::Int8Block { block_size } => write!(f, "int8 block {block_size}"),
        }
    }
}

/// The shape of the Elias–Fano index arrays for `k` of `n` indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EfGeometry {
    /// Low bits per index (`l`).
    pub low_bits: u32,
    /// Length of the upper bit array, in bits (`U`).
    pub upper_bits: u64,
    /// Length of the lower bit array, in bits (`k × l`).
    pub lower_bits: u64,
}

impl EfGeometry {
    /// The geometry for `k <= n`.
    pub(crate) fn new(n: u64, k: u64) -> Self {
        if k == 0 {
            return EfGeometry {
                low_bits: 0,
                upper_bits: 0,
                lower_bits: 0,
            };
        }
        // k >= 1 and k <= n, so n / k >= 1 and ilog2 is defined; l <= 63.
        let low_bits = (n / k).ilog2();
        // k + ((n-1) >> l) + 1 <= k + n: fits, since both are below 2^63
        // whenever the limits allow them (checked by the caller's payload_len).
        let upper_bits = k.saturating_add((n - 1) >> low_bits).saturating_add(1);
        EfGeometry {
            low_bits,
            upper_bits,
            lower_bits: k.saturating_mul(u64::from(low_bits)),
        }
    }

    pub(crate) fn upper_words(&self) -> u64 {
        self.upper_bits.div_ceil(64)
    }

    pub(crate) fn lower_words(&self) -> u64 {
        self.lower_bits.div_ceil(64)
    }

    /// Bytes of both bit arrays, or `None` on overflow.
    pub(crate) fn index_bytes(&self) -> Option<u64> {
        self.upper_words()
            .checked_add(self.lower_words())?
            .checked_mul(8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trip_and_rejections() {
        for enc in [
            Encoding::Dense(DType::F32),
            Encoding::Dense(DType::BF16),
            Encoding::TopK {
                k: 9,
                values: DType::I8,
            },
            Encoding::Int8Block { block_size: 64 },
        ] {
            assert_eq!(Encoding::from_wire(enc.to_wire()), Ok(enc));
        }
        let mut w = Encoding::Dense(DType::F32).to_wire();
        w.count = 1;
        assert!(Encoding::from_wire(w).unwrap_err().contains("must be zero"));
        w = Encoding::Int8Block { block_size: 1 }.to_wire();
        w.dtype = DType::F16.code();
        assert!(Encoding::from_wire(w).is_err());
        w.kind = 9;
        assert!(
            Encoding::from_wire(w)
                .unwrap_err()
                .contains("unknown encoding")
        );
        assert!(Encoding::from_wire(Encoding::Dense(DType::I8).to_wire()).is_err());
    }

    #[test]
    fn ef_geometry_matches_the_spec_example() {
        // n = 5, k = 2: l = floor(log2(2)) = 1, U = 2 + (4 >> 1) + 1 = 5.
        let g = EfGeometry::new(5, 2);
        assert_eq!((g.low_bits, g.upper_bits, g.lower_bits), (1, 5, 2));
        // k = n: no low bits, U = 2n.
        let g = EfGeometry::new(100, 100);
        assert_eq!((g.low_bits, g.upper_bits), (0, 200));
    }

    #[test]
    fn payload_lengths() {
        assert_eq!(Encoding::Dense(DType::F16).payload_len(10), Ok(20));
        assert_eq!(
            Encoding::Int8Block { block_size: 4 }.payload_len(10),
            Ok(12 + 10)
        );
        let topk = Encoding::TopK {
            k: 2,
            values: DType::I8,
        };
        assert_eq!(topk.payload_len(5), Ok(8 + 8 + 4 + 2));
        assert!(topk.payload_len(1).is_err());
        assert!(Encoding::Dense(DType::F32).payload_len(u64::MAX).is_err());
    }
}
