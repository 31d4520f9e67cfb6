//! [`TensorView`]: one tensor of an open delta, and the ways to use it.

use super::encoding::Encoding;
use super::kernels::{self, AddScaled, Combine, Store};
use super::sparse::SparsePayload;
use super::table::TableEntry;
use crate::error::{Error, Result};

/// One tensor of a [`DeltaReader`](super::DeltaReader): its name, shape and
/// encoding, and its payload, borrowed from the file.
#[derive(Clone, Copy)]
pub struct TensorView<'r> {
    entry: &'r TableEntry,
    payload: &'r [u8],
}

impl<'r> TensorView<'r> {
    pub(crate) fn new(entry: &'r TableEntry, file: &'r [u8]) -> Self {
        // The layout was validated: the payload lies inside the file.
        let start = entry.payload_offset as usize;
        let end = start.saturating_add(entry.payload_length as usize);
        TensorView {
            entry,
            payload: file.get(start..end).unwrap_or_default(),
        }
    }

    /// The tensor's name (as in the model's checkpoint).
    pub fn name(&self) -> &'r str {
        &self.entry.name
    }

    /// The tensor's shape, outermost dim first.
    pub fn shape(&self) -> &'r [u64] {
        &self.entry.shape
    }

    /// How the values are stored.
    pub fn encoding(&self) -> Encoding {
        self.entry.encoding
    }

    /// Number of elements (the product of the shape).
    pub fn element_count(&self) -> u64 {
        self.entry.elements
    }

    /// The payload bytes.
    pub fn payload(&self) -> &'r [u8] {
        self.payload
    }

    /// Where the payload starts in the file.
    pub fn payload_offset(&self) -> u64 {
        self.entry.payload_offset
    }

    /// Whether only some elements are stored (top-k); [`apply`](Self::apply)
    /// then changes only the elements [`touched_indices`](Self::touched_indices) yields.
    pub fn is_sparse(&self) -> bool {
        self.entry.encoding.is_sparse()
    }

    /// `dst[i] += alpha × value[i]` for every stored element (two roundings,
    /// no fused multiply-add, as the spec requires), in parallel for large
    /// tensors, allocating nothing per element. `dst` must have exactly
    /// [`element_count`](Self::element_count) elements.
    pub fn apply(&self, dst: &mut [f32], alpha: f32) -> Result<()> {
        self.check_len(dst, "apply")?;
        self.combine(dst, AddScaled(alpha));
        Ok(())
    }

    /// Writes every value (zeros where top-k kept nothing) into `dst`, which
    /// must have exactly [`element_count`](Self::element_count) elements.
    pub fn decode_into(&self, dst: &mut [f32]) -> Result<()> {
        self.check_len(dst, "decode_into")?;
        if self.is_sparse() {
            dst.fill(0.0);
        }
        self.combine(dst, Store);
        Ok(())
    }

    /// The values as a new vector (allocates `4 × element_count` bytes,
    /// bounded by the reader's limits).
    pub fn decode(&self) -> Result<Vec<f32>> {
        let n = usize::try_from(self.entry.elements).map_err(|_| {
            Error::limit(
                format!("elements of {:?} on this platform", self.name()),
                usize::MAX as u64,
                self.entry.elements,
            )
        })?;
        let mut out = vec![0f32; n];
        self.decode_into(&mut out)?;
        Ok(out)
    }

    /// [`Error::NonFinite`] with this tensor's name and the element index of
    /// its first NaN or infinite value (including int8 values whose scale
    /// makes them overflow).
    pub fn check_finite(&self) -> Result<()> {
        let first = match self.entry.encoding {
            Encoding::Dense(dtype) => {
                kernels::dense_first_non_finite(dtype, self.payload).map(|i| i as u64)
            }
            Encoding::Int8Block { block_size } => {
                kernels::int8_blocks_first_non_finite(block_size as usize, self.payload)
                    .map(|i| i as u64)
            }
            Encoding::TopK { .. } => self.sparse().and_then(|s| s.first_non_finite()),
        };
        match first {
            Some(index) => Err(Error::NonFinite {
                what: format!("delta tensor {:?}", self.name()),
                index,
            }),
            None => Ok(()),
        }
    }

    /// The element indices that [`apply`](Self::apply) changes, in increasing
    /// order: the kept indices for top-k, every index otherwise. A model
    /// backs these up to undo an apply exactly.
    pub fn touched_indices(&self) -> TouchedIndices<'r> {
        match self.sparse() {
            Some(s) => TouchedIndices(Touched::Sparse(s.ef.iter())),
            None => TouchedIndices(Touched::Dense(0..self.entry.elements)),
        }
    }

    /// Visits each stored `(element index, value)` of a top-k tensor in index
    /// order; does nothing for dense encodings (use [`decode`](Self::decode)).
    pub fn for_each_sparse(&self, f: impl FnMut(u64, f32)) {
        if let Some(s) = self.sparse() {
            s.for_each(f);
        }
    }

    fn sparse(&self) -> Option<SparsePayload<'r>> {
        match self.entry.encoding {
            Encoding::TopK { k, values } => Some(SparsePayload::new(
                self.payload,
                self.entry.elements,
                k,
                values,
            )),
            _ => None,
        }
    }

    fn check_len(&self, dst: &[f32], what: &str) -> Result<()> {
        if dst.len() as u64 != self.entry.elements {
            return Err(Error::InvalidArgument(format!(
                "{what}: tensor {:?} has {} elements, the buffer has {}",
                self.name(),
                self.entry.elements,
                dst.len()
            )));
        }
        Ok(())
    }

    fn combine<C: Combine>(&self, dst: &mut [f32], op: C) {
        match self.entry.encoding {
            Encoding::Dense(dtype) => kernels::dense(dtype, self.payload, dst, op),
            Encoding::Int8Block { block_size } => {
                kernels::int8_blocks(block_size as usize, self.payload, dst, op)
            }
            Encoding::TopK { .. } => {
                if let Some(s) = self.sparse() {
                    s.combine_into(dst, op);
                }
            }
        }
    }
}

impl std::fmt::Debug for TensorView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorView")
            .field("name", &self.name())
            .field("shape", &self.shape())
            .field("encoding", &self.encoding())
            .field("payload_offset", &self.payload_offset())
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// The element indices a tensor's apply changes (see
/// [`TensorView::touched_indices`]).
pub struct TouchedIndices<'r>(Touched<'r>);

enum Touched<'r> {
    Dense(std::ops::Range<u64>),
    Sparse(super::elias_fano::EfIter<'r>),
}

impl Iterator for TouchedIndices<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        match &mut self.0 {
            Touched::Dense(r) => r.next(),
            Touched::Sparse(it) => it.next(),
        }
    }
}
