//! [`DeltaWriter`]: streams a delta to any `std::io::Write`, one tensor at a
//! time, with error feedback for miners.

use std::collections::HashSet;
use std::io::Write;

use rayon::prelude::*;

use super::elias_fano::EfBuilder;
use super::encoding::{DType, Encoding};
use super::format::{DeltaHeader, FOOTER_LEN, INPUT, Locator, PAYLOAD_ALIGN, align_up};
use super::kernels::{self, AddScaled};
use super::limits::Limits;
use super::quantize::{self, encode_dense, encode_int8_blocks, encode_value, fits, int8_scale};
use super::sparse::SparsePayload;
use super::table::{TableEntry, check_name, element_count};
use super::topk::for_each_top_k;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::identity::Signature;

/// Elements encoded per write.
const WRITE_CHUNK: usize = 1 << 20;

/// Writes a delta: the header first, then each tensor's payload as it is
/// added, then (on [`finish`](Self::finish)) the table and footer. Only one
/// tensor's encoded payload is held in memory at a time (top-k: its kept
/// values and indices; dense and int8: 1 Mi elements).
///
/// Everything written is checked with the reader's rules and `limits`
/// (names, ranks, element and file-size caps, finite input that fits the
/// dtype), so the writer never produces a file its reader rejects.
///
/// After an I/O error the writer refuses further calls: the output is
/// incomplete and must be discarded (write to a temp file and rename it once
/// `finish` succeeded).
pub struct DeltaWriter<W: Write> {
    out: W,
    header: DeltaHeader,
    hasher: Hasher,
    position: u64,
    limits: Limits,
    entries: Vec<TableEntry>,
    names: HashSet<Box<str>>,
    total_elements: u64,
    table_len: u64,
    scratch: Vec<u8>,
    broken: bool,
}

/// Where the values to encode come from: the input itself, or the caller's
/// residual buffer after the input was added to it (error feedback).
enum Source<'a> {
    Plain(&'a [f32]),
    Feedback(&'a mut [f32]),
}

impl Source<'_> {
    fn values(&self) -> &[f32] {
        match self {
            Source::Plain(s) => s,
            Source::Feedback(r) => r,
        }
    }
}

impl<W: Write> DeltaWriter<W> {
    /// Starts a delta with `header`, writing the header to `out` at once.
    pub fn new(out: W, header: &DeltaHeader, limits: &Limits) -> Result<Self> {
        let mut w = DeltaWriter {
            out,
            header: *header,
            hasher: Hasher::new(),
            position: 0,
            limits: *limits,
            entries: Vec::new(),
            names: HashSet::new(),
            total_elements: 0,
            table_len: 0,
            scratch: Vec::new(),
            broken: false,
        };
        w.write(&header.to_bytes())?;
        Ok(w)
    }

    /// The header this delta is written with.
    pub fn header(&self) -> &DeltaHeader {
        &self.header
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.position
    }

    /// Encodes and writes one tensor.
    ///
    /// `data` holds the tensor's values in row-major order (`shape`'s
    /// element count of them). With `residual` (error feedback, same length),
    /// the encoder first adds `data` into `residual`, encodes that sum, and
    /// leaves in `residual` what the encoding did not keep: `sum − decoded`,
    /// to be passed again with the next delta. Nothing is written and the
    /// residual is untouched when an argument is rejected.
    pub fn add_tensor(
        &mut self,
        name: &str,
        shape: &[u64],
        data: &[f32],
        encoding: Encoding,
        residual: Option<&mut [f32]>,
    ) -> Result<()> {
        if self.broken {
            return Err(Error::InvalidArgument(
                "the delta writer failed earlier; its output is incomplete".into(),
            ));
        }
        let (entry_len, payload_len, elements) =
            self.check_tensor(name, shape, data, encoding, residual.as_deref())?;
        let mut source = match residual {
            Some(r) => {
                r.par_chunks_mut(kernels::CHUNK)
                    .zip(data.par_chunks(kernels::CHUNK))
                    .for_each(|(r, x)| r.iter_mut().zip(x).for_each(|(r, &x)| *r += x));
                Source::Feedback(r)
            }
            None => Source::Plain(data),
        };
        let payload_offset = align_up(self.position, PAYLOAD_ALIGN)
            .ok_or_else(|| Error::InvalidArgument("delta offset overflows".into()))?;
        self.pad_to(payload_offset)?;
        match encoding {
            Encoding::Dense(dtype) => self.write_dense(dtype, &mut source)?,
            Encoding::Int8Block { block_size } => {
                self.write_int8_blocks(block_size as usize, &mut source)?
            }
            Encoding::TopK { k, values } => self.write_top_k(k, values, &mut source)?,
        }
        if self.position - payload_offset != payload_len {
            self.broken = true;
            return Err(Error::InvalidArgument(format!(
                "internal error: {encoding} payload of {name:?} is {} bytes, expected {payload_len}",
                self.position - payload_offset
            )));
        }
        self.names.insert(name.into());
        self.entries.push(TableEntry {
            name: name.into(),
            shape: shape.into(),
            encoding,
            elements,
            payload_offset,
            payload_length: payload_len,
        });
        self.total_elements += elements;
        self.table_len += entry_len;
        Ok(())
    }

    /// Writes the table and the footer with an all-zero signature, and
    /// returns the output and the delta's digest (sign it later with
    /// [`write_signature`](super::write_signature)).
    pub fn finish(self) -> Result<(W, Digest)> {
        self.finish_with(|_| Signature::NONE)
    }

    /// Like [`finish`](Self::finish), signing the digest with `keypair`,
    /// which must be the header's hotkey.
    #[cfg(feature = "sr25519")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sr25519")))]
    pub fn finish_signed(self, keypair: &crate::identity::Keypair) -> Result<(W, Digest)> {
        if keypair.public() != self.header.hotkey {
            return Err(Error::InvalidArgument(format!(
                "signing key {} is not the header's hotkey {}",
                keypair.public(),
                self.header.hotkey
            )));
        }
        self.finish_with(|d| keypair.sign(&d.0))
    }

    fn finish_with(mut self, sign: impl FnOnce(&Digest) -> Signature) -> Result<(W, Digest)> {
        if self.broken {
            return Err(Error::InvalidArgument(
                "the delta writer failed earlier; its output is incomplete".into(),
            ));
        }
        let table_offset = align_up(self.position, PAYLOAD_ALIGN)
            .ok_or_else(|| Error::InvalidArgument("delta offset overflows".into()))?;
        self.pad_to(table_offset)?;
        let mut table = Vec::with_capacity(self.table_len as usize);
        for e in &self.entries {
            e.write_to(&mut table);
        }
        self.write(&table)?;
        let locator = Locator {
            table_offset,
            table_length: table.len() as u64,
            tensor_count: self.entries.len() as u64,
        };
        self.write(&locator.to_bytes())?;
        let digest = self.hasher.finalize();
        let signature = sign(&digest);
        self.write(&digest.0)?;
        self.write(&signature.0)?;
        self.out
            .flush()
            .map_err(|e| Error::io("<delta output>", e))?;
        Ok((self.out, digest))
    }

    /// Every check on a tensor before anything is written; returns the
    /// entry length, payload length and element count.
    fn check_tensor(
        &self,
        name: &str,
        shape: &[u64],
        data: &[f32],
        encoding: Encoding,
        residual: Option<&[f32]>,
    ) -> Result<(u64, u64, u64)> {
        let limits = &self.limits;
        check_name(name, limits)?;
        if self.names.contains(name) {
            return Err(Error::InvalidArgument(format!(
                "duplicate tensor name {name:?}"
            )));
        }
        if shape.len() > usize::from(limits.max_rank) {
            return Err(Error::limit(
                format!("rank of tensor {name:?}"),
                u64::from(limits.max_rank),
                shape.len() as u64,
            ));
        }
        let elements = element_count(shape).ok_or_else(|| {
            Error::InvalidArgument(format!("element count of shape {shape:?} overflows"))
        })?;
        if elements != data.len() as u64 {
            return Err(Error::InvalidArgument(format!(
                "tensor {name:?} with shape {shape:?} has {elements} elements, data has {}",
                data.len()
            )));
        }
        if let Some(r) = residual
            && r.len() != data.len()
        {
            return Err(Error::InvalidArgument(format!(
                "residual for {name:?} has {} elements, data has {}",
                r.len(),
                data.len()
            )));
        }
        encoding
            .check_form()
            .and_then(|()| encoding.payload_len(elements).map(|_| ()))
            .map_err(|e| Error::InvalidArgument(format!("tensor {name:?}: {e}")))?;
        let payload_len = encoding
            .payload_len(elements)
            .map_err(Error::InvalidArgument)?;
        let count = self.entries.len() as u64 + 1;
        if count > limits.max_tensors {
            return Err(Error::limit("tensor count", limits.max_tensors, count));
        }
        let total = self.total_elements.saturating_add(elements);
        if total > limits.max_total_elements {
            return Err(Error::limit(
                "total elements",
                limits.max_total_elements,
                total,
            ));
        }
        let entry_len = TableEntry::encoded_len(name.len(), shape.len());
        let file_len = align_up(self.position, PAYLOAD_ALIGN)
            .and_then(|o| o.checked_add(payload_len))
            .and_then(|end| align_up(end, PAYLOAD_ALIGN))
            .and_then(|t| t.checked_add(self.table_len + entry_len + FOOTER_LEN as u64))
            .unwrap_or(u64::MAX);
        if file_len > limits.max_file_size {
            return Err(Error::limit(
                format!("delta file size with tensor {name:?}"),
                limits.max_file_size,
                file_len,
            ));
        }
        check_values(name, data, residual, encoding)?;
        Ok((entry_len, payload_len, elements))
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if let Err(e) = self.out.write_all(bytes) {
            self.broken = true;
            return Err(Error::io("<delta output>", e));
        }
        self.hasher.update(bytes);
        self.position += bytes.len() as u64;
        Ok(())
    }

    fn pad_to(&mut self, offset: u64) -> Result<()> {
        let zeros = [0u8; PAYLOAD_ALIGN as usize];
        let gap = (offset - self.position) as usize;
        self.write(&zeros[..gap.min(zeros.len())])
    }

    /// Writes `scratch`, then takes what it decodes to out of the residual.
    fn write_chunk(
        &mut self,
        scratch: &[u8],
        feedback: Option<&mut [f32]>,
        subtract: impl Fn(&[u8], &mut [f32]) -> Result<()>,
    ) -> Result<()> {
        self.write(scratch)?;
        match feedback {
            Some(r) => subtract(scratch, r),
            None => Ok(()),
        }
    }

    fn write_dense(&mut self, dtype: DType, source: &mut Source<'_>) -> Result<()> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let n = source.values().len();
        let size = dtype.size() as usize;
        let mut result = Ok(());
        for start in (0..n).step_by(WRITE_CHUNK) {
            let end = (start + WRITE_CHUNK).min(n);
            let chunk = &source.values()[start..end];
            scratch.clear();
            scratch.resize(chunk.len() * size, 0);
            scratch
                .par_chunks_mut(kernels::CHUNK * size)
                .zip(chunk.par_chunks(kernels::CHUNK))
                .for_each(|(out, src)| encode_dense(dtype, src, out));
            let feedback = match source {
                Source::Feedback(r) => Some(&mut r[start..end]),
                Source::Plain(_) => None,
            };
            result = self.write_chunk(&scratch, feedback, |bytes, r| {
                kernels::dense(dtype, bytes, r, AddScaled(-1.0));
                Ok(())
            });
            if result.is_err() {
                break;
            }
        }
        self.scratch = scratch;
        result
    }

    fn write_int8_blocks(&mut self, block: usize, source: &mut Source<'_>) -> Result<()> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let n = source.values().len();
        let step = (WRITE_CHUNK / block).max(1) * block;
        let mut result = Ok(());
        for start in (0..n).step_by(step) {
            let end = start.saturating_add(step).min(n);
            scratch.clear();
            encode_int8_blocks(block, &source.values()[start..end], &mut scratch);
            let feedback = match source {
                Source::Feedback(r) => Some(&mut r[start..end]),
                Source::Plain(_) => None,
            };
            result = self.write_chunk(&scratch, feedback, |bytes, r| {
                kernels::int8_blocks(block, bytes, r, AddScaled(-1.0));
                Ok(())
            });
            if result.is_err() {
                break;
            }
        }
        self.scratch = scratch;
        result
    }

    fn write_top_k(&mut self, k: u64, dtype: DType, source: &mut Source<'_>) -> Result<()> {
        let src = source.values();
        let n = src.len() as u64;
        // Top-k keeps the largest magnitudes, so the tensor's maximum is the
        // maximum of the kept values.
        let scale = if dtype == DType::I8 && k > 0 {
            int8_scale(
                src.par_chunks(kernels::CHUNK)
                    .map(|c| c.iter().fold(0f32, |m, x| m.max(x.abs())))
                    .reduce(|| 0.0, f32::max),
            )
        } else {
            0.0
        };
        let mut ef = EfBuilder::new(n, k);
        let mut values = Vec::with_capacity((k * dtype.size()) as usize);
        for_each_top_k(src, k, |i| {
            ef.push(i);
            encode_value(dtype, src[i as usize], scale, &mut values);
        });
        debug_assert_eq!(ef.count(), k);
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        ef.write_to(&mut scratch);
        if dtype == DType::I8 {
            scratch.extend_from_slice(&scale.to_le_bytes());
        }
        scratch.extend_from_slice(&values);
        let feedback = match source {
            Source::Feedback(r) => Some(&mut **r),
            Source::Plain(_) => None,
        };
        let result = self.write_chunk(&scratch, feedback, |bytes, r| {
            SparsePayload::new(bytes, n, k, dtype)
                .and_then(|sparse| sparse.combine_into(r, AddScaled(-1.0)))
                .map_err(|reason| Error::corrupt(INPUT, "top-k payload written", reason))
        });
        self.scratch = scratch;
        result
    }
}

/// Input values must be finite and fit the stored dtype (for residuals: the
/// sum `data + residual` that will be encoded).
fn check_values(
    name: &str,
    data: &[f32],
    residual: Option<&[f32]>,
    encoding: Encoding,
) -> Result<()> {
    let dtype = match encoding {
        // Nothing is stored, so values only have to be finite.
        Encoding::TopK { k: 0, .. } => DType::F32,
        _ => encoding.dtype(),
    };
    let ok = |x: f32| x.is_finite() && fits(dtype, x);
    // Whole chunks are checked without early exit (so the loop vectorizes);
    // the first bad chunk is then searched element by element.
    let chunk_ok = |xs: &[f32], rs: Option<&[f32]>| match rs {
        Some(rs) => xs
            .iter()
            .zip(rs)
            .fold(true, |all, (&x, &r)| all & ok(x + r)),
        None => xs.iter().fold(true, |all, &x| all & ok(x)),
    };
    let task = match residual {
        Some(r) => data
            .par_chunks(kernels::CHUNK)
            .zip(r.par_chunks(kernels::CHUNK))
            .position_first(|(xs, rs)| !chunk_ok(xs, Some(rs))),
        None => data
            .par_chunks(kernels::CHUNK)
            .position_first(|xs| !chunk_ok(xs, None)),
    };
    let bad = task.and_then(|task| {
        let start = task * kernels::CHUNK;
        let end = (start + kernels::CHUNK).min(data.len());
        (start..end).find(|&i| {
            let r = residual.and_then(|r| r.get(i)).copied().unwrap_or(0.0);
            !ok(data.get(i).copied().unwrap_or(0.0) + r)
        })
    });
    let Some(index) = bad else {
        return Ok(());
    };
    let value = data.get(index).copied().unwrap_or(0.0)
        + residual.and_then(|r| r.get(index)).copied().unwrap_or(0.0);
    if !value.is_finite() {
        return Err(Error::NonFinite {
            what: format!("input tensor {name:?}"),
            index: index as u64,
        });
    }
    Err(Error::InvalidArgument(format!(
        "tensor {name:?} element {index} is {value}, out of range for {dtype} \
         (largest magnitude {})",
        match dtype {
            DType::F16 => "65504".to_string(),
            DType::BF16 => "3.39e38".to_string(),
            _ => quantize::INT8_MAX_MAGNITUDE.to_string(),
        }
    )))
}
