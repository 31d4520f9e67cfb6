//! The plain structs and enums of the API (`repr(C)`, passed by pointer),
//! with their conversions to and from `bistro-core` types.

use bistro_core::codec::{DType, DeltaHeader, Encoding, Limits};
use bistro_core::{Digest, PublicKey};

use crate::ffi;
use crate::panic;
use crate::status::{Failure, FfiResult, bistro_status};
use crate::version::{BISTRO_DIGEST_LEN, BISTRO_PUBLIC_KEY_LEN};

/// What a delta says about itself (the 128-byte header of the file).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct bistro_delta_header {
    /// Content digest of the master weights the delta was computed against.
    pub base_revision: [u8; BISTRO_DIGEST_LEN],
    /// The chain block the delta was made for.
    pub block: u64,
    /// The author's uid on the subnet.
    pub uid: u16,
    /// The author's hotkey (sr25519 public key); a signature is by this key.
    pub hotkey: [u8; BISTRO_PUBLIC_KEY_LEN],
}

impl From<&bistro_delta_header> for DeltaHeader {
    fn from(h: &bistro_delta_header) -> Self {
        DeltaHeader {
            base_revision: Digest(h.base_revision),
            block: h.block,
            uid: h.uid,
            hotkey: PublicKey(h.hotkey),
        }
    }
}

impl From<&DeltaHeader> for bistro_delta_header {
    fn from(h: &DeltaHeader) -> Self {
        bistro_delta_header {
            base_revision: h.base_revision.0,
            block: h.block,
            uid: h.uid,
            hotkey: h.hotkey.0,
        }
    }
}

/// Bounds on a delta: a reader rejects files beyond them before allocating
/// anything, and a writer refuses tensors that would exceed them. Get the
/// defaults (models up to about 2 billion parameters) from
/// `bistro_limits_default`, or limits sized for a model from
/// `bistro_limits_for_model`. Functions taking `const bistro_limits *`
/// use the defaults when it is NULL.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct bistro_limits {
    /// Most tensors in one delta.
    pub max_tensors: u64,
    /// Most elements over all tensors of a delta (a model's parameter count).
    pub max_total_elements: u64,
    /// Largest file, in bytes.
    pub max_file_size: u64,
    /// Longest tensor name, in bytes.
    pub max_name_len: u16,
    /// Largest rank (number of dimensions) of a tensor.
    pub max_rank: u8,
}

impl From<&bistro_limits> for Limits {
    fn from(l: &bistro_limits) -> Self {
        Limits {
            max_tensors: l.max_tensors,
            max_rank: l.max_rank,
            max_name_len: l.max_name_len,
            max_total_elements: l.max_total_elements,
            max_file_size: l.max_file_size,
        }
    }
}

impl From<&Limits> for bistro_limits {
    fn from(l: &Limits) -> Self {
        bistro_limits {
            max_tensors: l.max_tensors,
            max_total_elements: l.max_total_elements,
            max_file_size: l.max_file_size,
            max_name_len: l.max_name_len,
            max_rank: l.max_rank,
        }
    }
}

/// The limits at `p`, or the defaults when `p` is NULL.
///
/// # Safety
/// `p` is NULL or points to a live `bistro_limits`.
pub(crate) unsafe fn limits_or_default(p: *const bistro_limits) -> FfiResult<Limits> {
    // SAFETY: forwarded contract.
    let limits = unsafe { ffi::arg_ref_opt(p, "limits") }?;
    Ok(limits.map(Limits::from).unwrap_or_default())
}

/// Writes the default limits (models up to 2^31 parameters) to `*out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_limits_default(out: *mut bistro_limits) -> bistro_status {
    panic::guard(|| {
        // SAFETY: `out` is valid for a write (contract).
        let out = unsafe { ffi::out(out, "out") }?;
        out.write((&Limits::default()).into());
        Ok(())
    })
}

/// Writes limits for a model of `total_elements` parameters to `*out`: at
/// most that many elements, and a file size that any encoding of them fits.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_limits_for_model(
    total_elements: u64,
    out: *mut bistro_limits,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: `out` is valid for a write (contract).
        let out = unsafe { ffi::out(out, "out") }?;
        out.write((&Limits::for_model(total_elements)).into());
        Ok(())
    })
}

/// How a tensor is encoded: the `kind` field of `bistro_encoding`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum bistro_encoding_kind {
    /// Every value, stored as f32 (exact), f16 or bf16 (`dtype`).
    BISTRO_ENCODING_DENSE = 1,
    /// The `k` values of largest magnitude and their indices; `dtype` says
    /// how kept values are stored (f32, f16, bf16, or int8 with one scale).
    /// All other values are zero.
    BISTRO_ENCODING_TOP_K = 2,
    /// Every value as int8 with an f32 scale per block of `block_size`
    /// values; `dtype` is `BISTRO_DTYPE_I8`.
    BISTRO_ENCODING_INT8_BLOCK = 3,
}

/// The type of stored values: the `dtype` field of `bistro_encoding`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum bistro_dtype {
    /// IEEE binary32.
    BISTRO_DTYPE_F32 = 1,
    /// IEEE binary16.
    BISTRO_DTYPE_F16 = 2,
    /// bfloat16.
    BISTRO_DTYPE_BF16 = 3,
    /// Signed bytes times an f32 scale.
    BISTRO_DTYPE_I8 = 4,
}

/// How one tensor is (to be) encoded. Fields an encoding does not use must
/// be 0. Examples, as C99 compound literals:
///
/// ```c
/// (bistro_encoding){ .kind = BISTRO_ENCODING_DENSE, .dtype = BISTRO_DTYPE_BF16 }
/// (bistro_encoding){ .kind = BISTRO_ENCODING_TOP_K, .dtype = BISTRO_DTYPE_F16, .k = 1000 }
/// (bistro_encoding){ .kind = BISTRO_ENCODING_INT8_BLOCK, .dtype = BISTRO_DTYPE_I8, .block_size = 64 }
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct bistro_encoding {
    /// A `bistro_encoding_kind`.
    pub kind: u32,
    /// A `bistro_dtype`.
    pub dtype: u32,
    /// Top-k: how many values to keep (at most the element count).
    pub k: u64,
    /// Int8 block: values per scale (at least 1).
    pub block_size: u32,
}

fn dtype_from_code(code: u32) -> Option<DType> {
    match code {
        1 => Some(DType::F32),
        2 => Some(DType::F16),
        3 => Some(DType::BF16),
        4 => Some(DType::I8),
        _ => None,
    }
}

fn dtype_code(d: DType) -> u32 {
    (match d {
        DType::F32 => bistro_dtype::BISTRO_DTYPE_F32,
        DType::F16 => bistro_dtype::BISTRO_DTYPE_F16,
        DType::BF16 => bistro_dtype::BISTRO_DTYPE_BF16,
        DType::I8 => bistro_dtype::BISTRO_DTYPE_I8,
    }) as u32
}

impl bistro_encoding {
    /// The encoding these fields describe, or why they describe none.
    pub(crate) fn to_core(self) -> FfiResult<Encoding> {
        let bad = |why: String| Failure::invalid(format!("encoding {self:?}: {why}"));
        let dtype = dtype_from_code(self.dtype)
            .ok_or_else(|| bad(format!("unknown dtype {}", self.dtype)))?;
        let encoding = match self.kind {
            k if k == bistro_encoding_kind::BISTRO_ENCODING_DENSE as u32 => {
                if dtype == DType::I8 {
                    return Err(bad("dense int8 is not an encoding; use int8 block".into()));
                }
                Encoding::Dense(dtype)
            }
            k if k == bistro_encoding_kind::BISTRO_ENCODING_TOP_K as u32 => Encoding::TopK {
                k: self.k,
                values: dtype,
            },
            k if k == bistro_encoding_kind::BISTRO_ENCODING_INT8_BLOCK as u32 => {
                if dtype != DType::I8 {
                    return Err(bad("int8 block needs dtype BISTRO_DTYPE_I8".into()));
                }
                if self.block_size == 0 {
                    return Err(bad("int8 block size must be at least 1".into()));
                }
                Encoding::Int8Block {
                    block_size: self.block_size,
                }
            }
            other => return Err(bad(format!("unknown kind {other}"))),
        };
        if bistro_encoding::from_core(encoding) != self {
            return Err(bad("fields this encoding does not use must be 0".into()));
        }
        Ok(encoding)
    }

    /// The fields of a core encoding.
    pub(crate) fn from_core(e: Encoding) -> Self {
        match e {
            Encoding::Dense(d) => bistro_encoding {
                kind: bistro_encoding_kind::BISTRO_ENCODING_DENSE as u32,
                dtype: dtype_code(d),
                k: 0,
                block_size: 0,
            },
            Encoding::TopK { k, values } => bistro_encoding {
                kind: bistro_encoding_kind::BISTRO_ENCODING_TOP_K as u32,
                dtype: dtype_code(values),
                k,
                block_size: 0,
            },
            Encoding::Int8Block { block_size } => bistro_encoding {
                kind: bistro_encoding_kind::BISTRO_ENCODING_INT8_BLOCK as u32,
                dtype: dtype_code(DType::I8),
                k: 0,
                block_size,
            },
        }
    }
}
