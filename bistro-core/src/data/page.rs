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
        let two = pages_to_batch(&[page.clone(), page], 4, 0).unwrap();
        assert_eq!(two.rows, 4);
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
