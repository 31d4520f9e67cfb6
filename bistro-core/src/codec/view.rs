//! [`TensorView`]: one tensor of an open delta, and the ways to use it.

use super::encoding::Encoding;
use super::format::INPUT;
use super::kernels::{self, AddScaled, Combine, Store};
use super::sparse::SparsePayload;
use super::table::TableEntry;
use crate::error::{Error, Result};

/// One tensor of a [`DeltaReader`](super::DeltaReader): its name, shape and
/// encoding, and its payload, borrowed from the file.
///
/// The reader validated the layout when it opened the file, so the payload
/// is always there; should that invariant ever break, every method that
/// reads values fails with [`Error::Corrupt`] rather than doing nothing.
#[derive(Clone, Copy)]
pub struct TensorView<'r> {
    entry: &'r TableEntry,
    /// The payload, `None` if it is not inside the file at the length its
    /// encoding needs (or a top-k payload does not split into its parts).
    payload: Option<&'r [u8]>,
    /// The split top-k payload.
    sparse: Option<SparsePayload<'r>>,
}

impl<'r> TensorView<'r> {
    pub(crate) fn new(entry: &'r TableEntry, file: &'r [u8]) -> Self {
        let mut payload = locate(entry, file);
        let mut sparse = None;
        if let (Encoding::TopK { k, values }, Some(bytes)) = (entry.encoding, payload) {
            sparse = SparsePayload::new(bytes, entry.elements, k, values).ok();
            payload = payload.filter(|_| sparse.is_some());
        }
        TensorView {
            entry,
            payload,
            sparse,
        }
    }

    /// The payload, or [`Error::Corrupt`] if it is unusable.
    fn checked_payload(&self) -> Result<&'r [u8]> {
        self.payload.ok_or_else(|| {
            Error::corrupt(
                INPUT,
                format!("tensor {:?}", self.name()),
                "payload is outside the file or not the length its encoding needs",
            )
        })
    }

    /// The split top-k payload (`None` for dense encodings), or
    /// [`Error::Corrupt`] if it is unusable.
    fn checked_sparse(&self) -> Result<Option<SparsePayload<'r>>> {
        self.checked_payload()?;
        Ok(self.sparse)
    }

    /// Wraps a top-k payload's complaint as this tensor's error.
    fn corrupt(&self, reason: String) -> Error {
        Error::corrupt(INPUT, format!("tensor {:?}", self.name()), reason)
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

    /// The payload bytes (empty only if the payload is unusable; every
    /// method that reads values then fails).
    pub fn payload(&self) -> &'r [u8] {
        match self.payload {
            Some(bytes) => bytes,
            None => &[],
        }
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
        self.combine(dst, AddScaled(alpha))
    }

    /// Writes every value (zeros where top-k kept nothing) into `dst`, which
    /// must have exactly [`element_count`](Self::element_count) elements.
    pub fn decode_into(&self, dst: &mut [f32]) -> Result<()> {
        self.check_len(dst, "decode_into")?;
        self.checked_payload()?;
        if self.is_sparse() {
            dst.fill(0.0);
        }
        self.combine(dst, Store)
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
        let payload = self.checked_payload()?;
        let first = match (self.entry.encoding, self.checked_sparse()?) {
            (_, Some(s)) => s.first_non_finite().map_err(|r| self.corrupt(r))?,
            (Encoding::Dense(dtype), None) => {
                kernels::dense_first_non_finite(dtype, payload).map(|i| i as u64)
            }
            (Encoding::Int8Block { block_size }, None) => {
                kernels::int8_blocks_first_non_finite(block_size as usize, payload)
                    .map(|i| i as u64)
            }
            (Encoding::TopK { .. }, None) => return Err(self.corrupt("no top-k payload".into())),
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
    /// backs these up to undo an apply exactly. (An unusable payload, which
    /// [`apply`](Self::apply) refuses, yields every index: backing up too
    /// much is safe, too little is not.)
    pub fn touched_indices(&self) -> TouchedIndices<'r> {
        match self.sparse {
            Some(s) => TouchedIndices(Touched::Sparse(s.ef.iter())),
            None => TouchedIndices(Touched::Dense(0..self.entry.elements)),
        }
    }

    /// Visits each stored `(element index, value)` of a top-k tensor in index
    /// order; does nothing for dense encodings (use [`decode`](Self::decode)).
    pub fn for_each_sparse(&self, f: impl FnMut(u64, f32)) -> Result<()> {
        match self.checked_sparse()? {
            Some(s) => s.for_each(f).map_err(|r| self.corrupt(r)),
            None => Ok(()),
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

    fn combine<C: Combine>(&self, dst: &mut [f32], op: C) -> Result<()> {
        let payload = self.checked_payload()?;
        match (self.entry.encoding, self.checked_sparse()?) {
            (_, Some(s)) => s.combine_into(dst, op).map_err(|r| self.corrupt(r))?,
            (Encoding::Dense(dtype), None) => kernels::dense(dtype, payload, dst, op),
            (Encoding::Int8Block { block_size }, None) => {
                kernels::int8_blocks(block_size as usize, payload, dst, op)
            }
            (Encoding::TopK { .. }, None) => return Err(self.corrupt("no top-k payload".into())),
        }
        Ok(())
    }
}

/// The payload of `entry` in `file`, if it lies inside the file and has the
/// length its encoding needs for its element count.
fn locate<'r>(entry: &TableEntry, file: &'r [u8]) -> Option<&'r [u8]> {
    let len = entry.encoding.payload_len(entry.elements).ok()?;
    if len != entry.payload_length {
        return None;
    }
    let start = usize::try_from(entry.payload_offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    file.get(start..end)
}

impl std::fmt::Debug for TensorView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorView")
            .field("name", &self.name())
            .field("shape", &self.shape())
            .field("encoding", &self.encoding())
            .field("payload_offset", &self.payload_offset())
            .field("payload_len", &self.payload().len())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::DType;

    fn entry(encoding: Encoding, elements: u64, offset: u64, length: u64) -> TableEntry {
        TableEntry {
            name: "t".into(),
            shape: Box::new([elements]),
            encoding,
            elements,
            payload_offset: offset,
            payload_length: length,
        }
    }

    /// The bug this guards against: a view whose payload was not where the
    /// table said used to read as empty, so `apply` silently did nothing.
    #[test]
    fn a_payload_outside_the_file_fails_every_read() {
        let file = [0u8; 16];
        let dense = Encoding::Dense(DType::F32);
        let top_k = Encoding::TopK {
            k: 1,
            values: DType::F32,
        };
        for e in [
            entry(dense, 4, 8, 16),            // runs past the end
            entry(dense, 4, 0, 12),            // shorter than 4 f32
            entry(dense, 4, u64::MAX - 1, 16), // offset overflows
            entry(top_k, 4, 0, 16),            // not index + one value
        ] {
            let view = TensorView::new(&e, &file);
            let mut dst = vec![1.0f32; 4];
            assert!(matches!(
                view.apply(&mut dst, 1.0),
                Err(Error::Corrupt { .. })
            ));
            assert!(matches!(
                view.decode_into(&mut dst),
                Err(Error::Corrupt { .. })
            ));
            assert!(matches!(view.check_finite(), Err(Error::Corrupt { .. })));
            assert!(view.for_each_sparse(|_, _| {}).is_err() || !e.encoding.is_sparse());
            assert_eq!(dst, [1.0; 4], "{e:?}");
            assert!(view.payload().is_empty());
            // Backing up every index is the safe answer.
            assert_eq!(view.touched_indices().count(), 4);
        }
        // The same entry inside the file works.
        let e = entry(dense, 4, 0, 16);
        let mut dst = vec![1.0f32; 4];
        TensorView::new(&e, &file).apply(&mut dst, 1.0).unwrap();
        assert_eq!(dst, [1.0; 4]);
    }
}
