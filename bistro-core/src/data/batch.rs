//! A batch of token sequences, the unit the model evaluates and trains on.

use crate::error::{Error, Result};

/// Token ids laid out as `rows × seq_len`, row-major, with a per-token mask:
/// `mask[i] == 1` for a real token, `0` for padding. Padding positions carry
/// `pad_id` in `tokens` and are excluded from the loss (as label -100 is in
/// PyTorch). The loss predicts `tokens[r][t + 1]` from `tokens[r][..=t]` where
/// both positions are real.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Number of sequences.
    pub rows: usize,
    /// Tokens per sequence.
    pub seq_len: usize,
    /// `rows * seq_len` token ids.
    pub tokens: Vec<u32>,
    /// `rows * seq_len` flags: 1 real, 0 padding.
    pub mask: Vec<u8>,
}

impl Batch {
    /// Packs sequences into rows of `seq_len`: each sequence is cut into
    /// `seq_len`-token rows; the last, shorter piece of each is padded with
    /// `pad_id`. Pieces of one token are dropped (they predict nothing).
    pub fn pack<'a>(
        sequences: impl IntoIterator<Item = &'a [u32]>,
        seq_len: usize,
        pad_id: u32,
    ) -> Result<Batch> {
        if seq_len < 2 {
            return Err(Error::InvalidArgument(format!(
                "seq_len must be at least 2, got {seq_len}"
            )));
        }
        let mut batch = Batch {
            rows: 0,
            seq_len,
            tokens: Vec::new(),
            mask: Vec::new(),
        };
        for seq in sequences {
            for piece in seq.chunks(seq_len).filter(|p| p.len() >= 2) {
                batch.tokens.extend_from_slice(piece);
                batch.mask.extend(std::iter::repeat_n(1u8, piece.len()));
                let pad = seq_len - piece.len();
                batch.tokens.extend(std::iter::repeat_n(pad_id, pad));
                batch.mask.extend(std::iter::repeat_n(0u8, pad));
                batch.rows += 1;
            }
        }
        Ok(batch)
    }

    /// Number of predicted positions (pairs of adjacent real tokens).
    pub fn target_count(&self) -> usize {
        self.mask
            .chunks(self.seq_len.max(1))
            .map(|row| row.windows(2).filter(|w| w[0] == 1 && w[1] == 1).count())
            .sum()
    }

    /// The rows `start..end` as a new batch (for splitting into micro-batches).
    pub fn rows_range(&self, start: usize, end: usize) -> Batch {
        let end = end.min(self.rows);
        let start = start.min(end);
        let (a, b) = (start * self.seq_len, end * self.seq_len);
        Batch {
            rows: end - start,
            seq_len: self.seq_len,
            tokens: self.tokens[a..b].to_vec(),
            mask: self.mask[a..b].to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_pads() {
        let a = [1u32, 2, 3, 4, 5];
        let b = [7u32, 8];
        let batch = Batch::pack([&a[..], &b[..]], 3, 0).unwrap();
        assert_eq!(batch.rows, 3);
        assert_eq!(batch.tokens, vec![1, 2, 3, 4, 5, 0, 7, 8, 0]);
        assert_eq!(batch.mask, vec![1, 1, 1, 1, 1, 0, 1, 1, 0]);
        assert_eq!(batch.target_count(), 2 + 1 + 1);
        assert_eq!(batch.rows_range(1, 9).tokens, vec![4, 5, 0, 7, 8, 0]);
    }

    #[test]
    fn drops_single_token_pieces_and_rejects_tiny_seq_len() {
        let a = [1u32, 2, 3];
        let batch = Batch::pack([&a[..]], 2, 0).unwrap();
        assert_eq!(batch.rows, 1);
        assert!(Batch::pack([&a[..]], 1, 0).is_err());
    }
}
