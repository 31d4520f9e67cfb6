//! Caps on what a delta may declare, so that no input makes the reader (or
//! the writer) use more memory or time than the caller planned for.

use super::format::{ENTRY_FIXED_LEN, FOOTER_LEN, HEADER_LEN, PAYLOAD_ALIGN};

/// Bounds on a delta, checked by [`DeltaReader::open`](super::DeltaReader::open)
/// before anything is allocated and by [`DeltaWriter`](super::DeltaWriter)
/// before anything is written (a writer never makes a file its reader rejects
/// under the same limits).
///
/// The default fits models up to about 2 billion parameters. Size limits
/// from a model with [`Limits::for_model`]:
///
/// ```
/// use bistro_core::codec::Limits;
/// let limits = Limits::for_model(124_439_808); // GPT-2 small
/// assert_eq!(limits.max_total_elements, 124_439_808);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most tensors in one delta.
    pub max_tensors: u64,
    /// Largest rank (number of dims) of a tensor.
    pub max_rank: u8,
    /// Longest tensor name, in bytes.
    pub max_name_len: u16,
    /// Most elements over all tensors of a delta (a model's parameter count).
    pub max_total_elements: u64,
    /// Largest file, in bytes.
    pub max_file_size: u64,
}

/// The most bytes any encoding spends on one element (int8 block with block size 1).
pub const MAX_BYTES_PER_ELEMENT: u64 = 5;

impl Limits {
    /// Tensor count used by [`Limits::default`] and [`Limits::for_model`].
    pub const DEFAULT_MAX_TENSORS: u64 = 16_384;
    /// Rank used by the defaults.
    pub const DEFAULT_MAX_RANK: u8 = 8;
    /// Name length used by the defaults (HF names are under 100 bytes).
    pub const DEFAULT_MAX_NAME_LEN: u16 = 512;
    /// Total element count of [`Limits::default`]: 2^31, a ~2B-parameter model.
    pub const DEFAULT_MAX_TOTAL_ELEMENTS: u64 = 1 << 31;

    /// Limits for a model with `total_elements` parameters: at most that many
    /// elements, and a file size that any encoding of them fits in
    /// ([`MAX_BYTES_PER_ELEMENT`] per element plus the table). The other
    /// caps are the defaults.
    pub fn for_model(total_elements: u64) -> Self {
        let tensors = Self::DEFAULT_MAX_TENSORS;
        let rank = Self::DEFAULT_MAX_RANK;
        let name = Self::DEFAULT_MAX_NAME_LEN;
        Limits {
            max_tensors: tensors,
            max_rank: rank,
            max_name_len: name,
            max_total_elements: total_elements,
            max_file_size: file_size_for(total_elements, tensors, rank, name),
        }
    }

    /// The largest table entry these limits allow.
    pub(crate) fn max_entry_len(&self) -> u64 {
        ENTRY_FIXED_LEN + 8 * u64::from(self.max_rank) + u64::from(self.max_name_len) + 8
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::for_model(Self::DEFAULT_MAX_TOTAL_ELEMENTS)
    }
}

/// A file size that every delta within the other limits fits in.
fn file_size_for(elements: u64, tensors: u64, rank: u8, name: u16) -> u64 {
    let entry = ENTRY_FIXED_LEN + 8 * u64::from(rank) + u64::from(name) + 8;
    // Per tensor: its table entry, alignment padding and the fixed parts of
    // an encoding (Elias–Fano word rounding, an int8 scale).
    let per_tensor = entry + PAYLOAD_ALIGN + 32;
    elements
        .saturating_mul(MAX_BYTES_PER_ELEMENT)
        .saturating_add(tensors.saturating_mul(per_tensor))
        .saturating_add((HEADER_LEN + FOOTER_LEN) as u64 + PAYLOAD_ALIGN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_model_scales_with_elements_and_saturates() {
        let small = Limits::for_model(1000);
        let big = Limits::for_model(1_000_000);
        assert!(big.max_file_size - small.max_file_size == 999_000 * MAX_BYTES_PER_ELEMENT);
        assert_eq!(Limits::for_model(u64::MAX).max_file_size, u64::MAX);
        assert_eq!(
            Limits::default().max_total_elements,
            Limits::DEFAULT_MAX_TOTAL_ELEMENTS
        );
    }
}
