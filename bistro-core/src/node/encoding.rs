//! How a miner encodes its deltas.

use serde::{Deserialize, Serialize};

use crate::codec::{DType, Encoding};

/// A miner's choice of delta encoding, applied to every parameter.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum DeltaEncoding {
    /// Every value, as f32, f16 or bf16.
    Dense(DTypeName),
    /// The `fraction` of values of largest magnitude per tensor (at least
    /// one), with error feedback: what is left out is sent later.
    TopK {
        /// Share of each tensor's values kept, in `(0, 1]`.
        fraction: f64,
        /// How kept values are stored.
        values: DTypeName,
    },
    /// Every value as int8 with one scale per block.
    Int8 {
        /// Values per scale.
        block_size: u32,
    },
}

/// The value types a miner may choose (serialisable names of [`DType`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DTypeName {
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    Bf16,
    /// int8 with a scale.
    I8,
}

impl From<DTypeName> for DType {
    fn from(d: DTypeName) -> DType {
        match d {
            DTypeName::F32 => DType::F32,
            DTypeName::F16 => DType::F16,
            DTypeName::Bf16 => DType::BF16,
            DTypeName::I8 => DType::I8,
        }
    }
}

impl DeltaEncoding {
    /// The codec encoding of a tensor of `elements` values.
    pub fn for_tensor(&self, elements: u64) -> Encoding {
        match *self {
            DeltaEncoding::Dense(d) => Encoding::Dense(d.into()),
            DeltaEncoding::TopK { fraction, values } => {
                let k = (fraction.clamp(0.0, 1.0) * elements as f64).ceil() as u64;
                Encoding::TopK {
                    k: k.clamp(1, elements.max(1)),
                    values: values.into(),
                }
            }
            DeltaEncoding::Int8 { block_size } => Encoding::Int8Block { block_size },
        }
    }

    /// Whether the encoding drops information that error feedback carries over.
    pub fn is_lossy_sparse(&self) -> bool {
        matches!(self, DeltaEncoding::TopK { .. })
    }

    /// Parses `dense-bf16`, `dense-f32`, `topk-0.1-bf16`, `int8-64`, ...
    pub fn parse(s: &str) -> Option<DeltaEncoding> {
        let dtype = |n: &str| match n {
            "f32" => Some(DTypeName::F32),
            "f16" => Some(DTypeName::F16),
            "bf16" => Some(DTypeName::Bf16),
            "i8" | "int8" => Some(DTypeName::I8),
            _ => None,
        };
        let parts: Vec<&str> = s.split('-').collect();
        match parts.as_slice() {
            ["dense", d] => dtype(d)
                .filter(|d| *d != DTypeName::I8)
                .map(DeltaEncoding::Dense),
            ["topk", f, d] => {
                let fraction: f64 = f.parse().ok()?;
                (fraction > 0.0 && fraction <= 1.0).then_some(())?;
                Some(DeltaEncoding::TopK {
                    fraction,
                    values: dtype(d)?,
                })
            }
            ["int8", b] => Some(DeltaEncoding::Int8 {
                block_size: b.parse().ok().filter(|&b| b > 0)?,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_sizes_top_k() {
        assert_eq!(
            DeltaEncoding::parse("dense-bf16"),
            Some(DeltaEncoding::Dense(DTypeName::Bf16))
        );
        let topk = DeltaEncoding::parse("topk-0.1-f16").unwrap();
        assert_eq!(
            topk.for_tensor(1000),
            Encoding::TopK {
                k: 100,
                values: DType::F16
            }
        );
        assert_eq!(
            topk.for_tensor(3),
            Encoding::TopK {
                k: 1,
                values: DType::F16
            }
        );
        assert_eq!(
            DeltaEncoding::parse("int8-64").unwrap().for_tensor(9),
            Encoding::Int8Block { block_size: 64 }
        );
        for bad in [
            "",
            "dense",
            "dense-i8",
            "topk-0-bf16",
            "topk-2-bf16",
            "int8-0",
            "zip",
        ] {
            assert_eq!(DeltaEncoding::parse(bad), None, "{bad}");
        }
    }
}
