//! Top-k payloads: Elias–Fano indices followed by (scale and) values.

use rayon::prelude::*;

use super::elias_fano::{EfIter, EliasFano};
use super::encoding::{DType, EfGeometry};
use super::kernels::{Combine, bf16_to_f32};

/// Kept entries at or above which a tensor is decoded on several threads.
const PARALLEL_ENTRIES: u64 = 1 << 15;

/// A validated top-k payload, split into its parts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SparsePayload<'a> {
    pub ef: EliasFano<'a>,
    dtype: DType,
    scale: f32,
    values: &'a [u8],
    k: u64,
}

impl<'a> SparsePayload<'a> {
    /// Splits a top-k payload of `k` kept values out of `n`; a payload whose
    /// parts do not add up to its length is refused (the table parser checks
    /// this first, so an error here means a broken invariant, not a file).
    pub(crate) fn new(payload: &'a [u8], n: u64, k: u64, dtype: DType) -> Result<Self, String> {
        let index_len = EfGeometry::new(n, k)
            .index_bytes()
            .and_then(|b| usize::try_from(b).ok())
            .ok_or_else(|| format!("top-k index of {k} of {n} elements overflows"))?;
        let (index, rest) = payload.split_at_checked(index_len).ok_or_else(|| {
            format!(
                "payload of {} bytes is shorter than its index",
                payload.len()
            )
        })?;
        let (scale, values) = if dtype == DType::I8 {
            let (s, v) = rest
                .split_first_chunk::<4>()
                .ok_or("int8 top-k payload has no scale")?;
            (f32::from_le_bytes(*s), v)
        } else {
            (1.0, rest)
        };
        let expected = k.checked_mul(dtype.size());
        if expected != Some(values.len() as u64) {
            return Err(format!(
                "{} value bytes where {k} {dtype:?} values need {}",
                values.len(),
                expected.map_or("more".into(), |e| e.to_string())
            ));
        }
        Ok(SparsePayload {
            ef: EliasFano::new(index, n, k),
            dtype,
            scale,
            values,
            k,
        })
    }

    /// The value bytes of entries `[rank, rank + count)`.
    fn value_bytes(&self, rank: u64, count: u64) -> Result<&'a [u8], String> {
        let size = self.dtype.size();
        let range = rank.checked_add(count).and_then(|end| {
            Some(
                usize::try_from(rank.checked_mul(size)?).ok()?
                    ..usize::try_from(end.checked_mul(size)?).ok()?,
            )
        });
        range.and_then(|r| self.values.get(r)).ok_or_else(|| {
            format!(
                "values {rank}..+{count} lie outside the {} value bytes",
                self.values.len()
            )
        })
    }

    /// Visits `(element index, value)` of one run of entries.
    #[inline]
    fn for_run(
        &self,
        indices: EfIter<'a>,
        rank: u64,
        count: u64,
        mut f: impl FnMut(u64, f32),
    ) -> Result<(), String> {
        let bytes = self.value_bytes(rank, count)?;
        match self.dtype {
            DType::F32 => {
                for (x, w) in indices.zip(bytes.as_chunks::<4>().0) {
                    f(x, f32::from_le_bytes(*w));
                }
            }
            DType::F16 => {
                for (x, h) in indices.zip(bytes.as_chunks::<2>().0) {
                    f(x, half::f16::from_le_bytes(*h).to_f32());
                }
            }
            DType::BF16 => {
                for (x, h) in indices.zip(bytes.as_chunks::<2>().0) {
                    f(x, bf16_to_f32(u16::from_le_bytes(*h)));
                }
            }
            DType::I8 => {
                let scale = self.scale;
                for (x, &q) in indices.zip(bytes) {
                    f(x, f32::from(q as i8) * scale);
                }
            }
        }
        Ok(())
    }

    /// Visits every `(element index, value)` in index order.
    pub(crate) fn for_each(&self, f: impl FnMut(u64, f32)) -> Result<(), String> {
        self.for_run(self.ef.iter(), 0, self.k, f)
    }

    /// Combines the kept values into `dst` (the whole tensor); elements not
    /// kept are left alone. In parallel for many entries.
    pub(crate) fn combine_into<C: Combine>(&self, dst: &mut [f32], op: C) -> Result<(), String> {
        let threads = rayon::current_num_threads();
        if self.k < PARALLEL_ENTRIES || threads < 2 {
            return self.for_each(|x, v| {
                if let Some(d) = dst.get_mut(x as usize) {
                    op.combine(d, v);
                }
            });
        }
        // Cut the entries into runs and dst at each run's first index, so
        // every thread owns the part of dst its indices fall in.
        let runs = self.ef.runs(threads * 4);
        let mut tasks = Vec::with_capacity(runs.len());
        let mut rest: &mut [f32] = dst;
        let mut rest_base = 0u64;
        for (i, &(word, rank, count)) in runs.iter().enumerate() {
            let end = match runs.get(i + 1) {
                Some(&(w, r, c)) => self.ef.iter_from(w, r, c).next().unwrap_or(rest_base),
                None => rest_base + rest.len() as u64,
            };
            let len = (end.saturating_sub(rest_base) as usize).min(rest.len());
            let (mine, tail) = std::mem::take(&mut rest).split_at_mut(len);
            tasks.push((mine, rest_base, word, rank, count));
            rest = tail;
            rest_base += len as u64;
        }
        tasks
            .into_par_iter()
            .try_for_each(|(part, base, word, rank, count)| {
                let indices = self.ef.iter_from(word, rank, count);
                self.for_run(indices, rank, count, |x, v| {
                    if let Some(d) = part.get_mut(x.wrapping_sub(base) as usize) {
                        op.combine(d, v);
                    }
                })
            })
    }

    /// The element index of the first kept value that is not finite.
    pub(crate) fn first_non_finite(&self) -> Result<Option<u64>, String> {
        let mut found = None;
        self.for_run(self.ef.iter(), 0, self.k, |x, v| {
            if found.is_none() && !v.is_finite() {
                found = Some(x);
            }
        })?;
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Payloads whose parts do not add up are refused, where they used to
    /// read as zero values (or a zero scale) and apply as nothing.
    #[test]
    fn mismatched_parts_are_errors() {
        // 2 of 8 elements: an 8-byte index word for the upper bits and one
        // for the lower bits (l = 2), then the values.
        let index = EfGeometry::new(8, 2).index_bytes().unwrap() as usize;
        let f32_payload = vec![0u8; index + 2 * 4];
        assert!(SparsePayload::new(&f32_payload, 8, 2, DType::F32).is_ok());
        assert!(SparsePayload::new(&f32_payload[..index + 4], 8, 2, DType::F32).is_err());
        assert!(SparsePayload::new(&f32_payload[..index - 1], 8, 2, DType::F32).is_err());
        let mut longer = f32_payload.clone();
        longer.push(0);
        assert!(SparsePayload::new(&longer, 8, 2, DType::F32).is_err());
        // int8 needs its scale before the values.
        let i8_payload = vec![0u8; index + 4 + 2];
        assert!(SparsePayload::new(&i8_payload, 8, 2, DType::I8).is_ok());
        let err = SparsePayload::new(&i8_payload[..index + 2], 8, 2, DType::I8).unwrap_err();
        assert!(
            err.contains("value bytes") || err.contains("scale"),
            "{err}"
        );
        assert!(SparsePayload::new(&i8_payload[..index + 3], 8, 2, DType::I8).is_err());
    }
}
