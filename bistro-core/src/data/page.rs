//! A page: the token sequences a page id stands for.

use super::batch::Batch;
use crate::error::{Error, Result};

/// The tokens of one page, as sequences (documents, or rows of a dataset),
/// stored flat: sequence `i` is `tokens[offsets[i]..offsets[i + 1]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// The page id.
    pub id: u64,
    /// All tokens of the page, sequence after sequence.
    pub tokens: Vec<u32>,
    /// `sequences + 1` offsets into `tokens`, starting at 0, non-decreasing,
    /// ending at `tokens.len()`.
    pub offsets: Vec<usize>,
}

impl Page {
    /// A page from sequences (copied).
    pub fn from_sequences<'a>(id: u64, sequences: impl IntoIterator<Item = &'a [u32]>) -> Page {
        let mut page = Page {
            id,
            tokens: Vec::new(),
            offsets: vec![0],
        };
        for seq in sequences {
            page.tokens.extend_from_slice(seq);
            page.offsets.push(page.tokens.len());
        }
        page
    }

    /// Number of sequences.
    pub fn num_sequences(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Number of tokens.
    pub fn num_tokens(&self) -> usize {
        self.tokens.len()
    }

    /// The sequences in order. Offsets out of order (possible only if the
    /// public fields were edited by hand) yield empty sequences, not a panic.
    pub fn sequences(&self) -> impl Iterator<Item = &[u32]> {
        self.offsets
            .windows(2)
            .map(|w| self.tokens.get(w[0]..w[1]).unwrap_or(&[]))
    }

    /// The page as rows of `seq_len` for the model: its sequences are
    /// concatenated (each already ends with EOS where the source appends
    /// one) and cut into rows; the last row is padded with `pad_id` and the
    /// padding masked. See [`pages_to_batch`] for several pages.
    pub fn to_batch(&self, seq_len: usize, pad_id: u32) -> Result<Batch> {
        Batch::pack([&self.tokens[..]], seq_len, pad_id)
    }
}

/// Packs pages into one [`Batch`]: each page's tokens are concatenated and
/// cut into rows of `seq_len` (padding, masked, only at the end of a page),
/// pages in the order given. Fails on an empty result (nothing to evaluate).
pub fn pages_to_batch(pages: &[Page], seq_len: usize, pad_id: u32) -> Result<Batch> {
    let batch = Batch::pack(pages.iter().map(|p| &p.tokens[..]), seq_len, pad_id)?;
    if batch.rows == 0 {
        return Err(Error::InvalidArgument(format!(
            "pages {:?} hold no sequence of two or more tokens",
            pages.iter().map(|p| p.id).collect::<Vec<_>>()
        )));
    }
    Ok(batch)
}

/// Pages packed into one [`Batch`] as [`pages_to_batch`] packs them, with
/// the number of rows each page took, so that per-row losses can be summed
/// back into per-page losses (a validator's paired comparisons).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PagedBatch {
    /// The rows of every page, pages in order.
    pub batch: Batch,
    /// Rows of each page, in the same order (0 for a page too short to
    /// predict anything).
    pub rows_per_page: Vec<usize>,
}

impl PagedBatch {
    /// Packs `pages` (see [`pages_to_batch`]).
    pub fn pack(pages: &[Page], seq_len: usize, pad_id: u32) -> Result<PagedBatch> {
        let batch = pages_to_batch(pages, seq_len, pad_id)?;
        let rows_per_page = pages
            .iter()
            .map(|p| {
                let n = p.tokens.len();
                n / seq_len + usize::from(n % seq_len >= 2)
            })
            .collect::<Vec<usize>>();
        if rows_per_page.iter().sum::<usize>() != batch.rows {
            return Err(Error::InvalidArgument(
                "page rows do not add up to the batch's rows".into(),
            ));
        }
        Ok(PagedBatch {
            batch,
            rows_per_page,
        })
    }

    /// The mean loss of each page that predicts something, from each row's
    /// `(sum of losses, predicted positions)` in batch order. Pages that
    /// predict nothing are left out (the same pages for every model, so
    /// per-page lists stay paired).
    pub fn page_means(&self, rows: &[(f64, usize)]) -> Result<Vec<f64>> {
        if rows.len() != self.batch.rows {
            return Err(Error::InvalidArgument(format!(
                "{} row losses for a batch of {} rows",
                rows.len(),
                self.batch.rows
            )));
        }
        let mut means = Vec::with_capacity(self.rows_per_page.len());
        let mut start = 0usize;
        for &n in &self.rows_per_page {
            let page = rows.get(start..start + n).unwrap_or(&[]);
            start += n;
            let (sum, count) = page
                .iter()
                .fold((0.0, 0usize), |(s, c), &(rs, rc)| (s + rs, c + rc));
            if count > 0 {
                means.push(sum / count as f64);
            }
        }
        Ok(means)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_round_trip_and_pack() {
        let page = Page::from_sequences(7, [&[1u32, 2, 3][..], &[][..], &[4, 5, 6][..]]);
        assert_eq!(page.num_sequences(), 3);
        let seqs: Vec<&[u32]> = page.sequences().collect();
        assert_eq!(seqs, vec![&[1, 2, 3][..], &[][..], &[4, 5, 6][..]]);
        // Sequences are concatenated, then cut into rows; the tail is padded.
        let batch = page.to_batch(4, 0).unwrap();
        assert_eq!(batch.tokens, vec![1, 2, 3, 4, 5, 6, 0, 0]);
        assert_eq!(batch.mask, vec![1, 1, 1, 1, 1, 1, 0, 0]);
        let two = pages_to_batch(&[page.clone(), page.clone()], 4, 0).unwrap();
        assert_eq!(two.rows, 4);
        // Per page: 2 rows each; page means from row sums.
        let short = Page::from_sequences(9, [&[1u32][..]]);
        let paged = PagedBatch::pack(&[page.clone(), short, page], 4, 0).unwrap();
        assert_eq!(paged.rows_per_page, vec![2, 0, 2]);
        assert_eq!(paged.batch, two);
        let means = paged
            .page_means(&[(3.0, 3), (1.0, 1), (8.0, 3), (0.0, 1)])
            .unwrap();
        assert_eq!(means, vec![1.0, 2.0]);
        assert!(paged.page_means(&[(1.0, 1)]).is_err());
    }

    #[test]
    fn empty_pages_make_no_batch() {
        let page = Page::from_sequences(1, [&[9u32][..]]);
        assert!(matches!(
            pages_to_batch(&[page], 4, 0),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn bad_offsets_do_not_panic() {
        let page = Page {
            id: 0,
            tokens: vec![1, 2],
            offsets: vec![0, 5, 1],
        };
        assert_eq!(page.sequences().count(), 2);
    }
}
