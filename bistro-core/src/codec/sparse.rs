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
    /// Splits a payload whose length the table parser already checked.
    pub(crate) fn new(payload: &'a [u8], n: u64, k: u64, dtype: DType) -> Self {
        let index_len = EfGeometry::new(n, k).index_bytes().unwrap_or(0) as usize;
        let (index, rest) = payload.split_at(index_len.min(payload.len()));
        let (scale, values) = if dtype == DType::I8 {
            let (s, v) = rest.split_at(4.min(rest.len()));
            let s = <[u8; 4]>::try_from(s).map_or(0.0, f32::from_le_bytes);
            (s, v)
        } else {
            (1.0, rest)
        };
        SparsePayload {
            ef: EliasFano::new(index, n, k),
            dtype,
            scale,
            values,
            k,
        }
    }

    /// The value bytes of entries `[rank, rank + count)`.
    fn value_bytes(&self, rank: u64, count: u64) -> &'a [u8] {
        let size = self.dtype.size();
        let start = (rank * size) as usize;
        let end = ((rank + count) * size) as usize;
        self.values.get(start..end).unwrap_or_default()
    }

    /// Visits `(element index, value)` of one run of entries.
    #[inline]
    fn for_run(&self, indices: EfIter<'a>, rank: u64, count: u64, mut f: impl FnMut(u64, f32)) {
        let bytes = self.value_bytes(rank, count);
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
    }

    /// Visits every `(element index, value)` in index order.
    pub(crate) fn for_each(&self, f: impl FnMut(u64, f32)) {
        self.for_run(self.ef.iter(), 0, self.k, f);
    }

    /// Combines the kept values into `dst` (the whole tensor); elements not
    /// kept are left alone. In parallel for many entries.
    pub(crate) fn combine_into<C: Combine>(&self, dst: &mut [f32], op: C) {
        let threads = rayon::current_num_threads();
        if self.k < PARALLEL_ENTRIES || threads < 2 {
            self.for_each(|x, v| {
                if let Some(d) = dst.get_mut(x as usize) {
                    op.combine(d, v);
                }
            });
            return;
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
            .for_each(|(part, base, word, rank, count)| {
                let indices = self.ef.iter_from(word, rank, count);
                self.for_run(indices, rank, count, |x, v| {
                    if let Some(d) = part.get_mut(x.wrapping_sub(base) as usize) {
                        op.combine(d, v);
                    }
                });
            });
    }

    /// The element index of the first kept value that is not finite.
    pub(crate) fn first_non_finite(&self) -> Option<u64> {
        let mut found = None;
        self.for_run(self.ef.iter(), 0, self.k, |x, v| {
            if found.is_none() && !v.is_finite() {
                found = Some(x);
            }
        });
        found
    }
}
