//! Checking a [`Batch`] against the model and turning it into tensors.

use tch::{Device, Kind, Tensor};

use crate::data::Batch;
use crate::error::{Error, Result};

use super::config::Config;

/// Label value the loss ignores (PyTorch's convention).
pub(crate) const IGNORE: i64 = -100;

/// Checks that `batch` is well formed and fits the model: consistent
/// lengths, `seq_len` within the context, token ids within the vocabulary,
/// mask values 0 or 1, at least one predicted position.
pub(crate) fn validate(batch: &Batch, config: &Config) -> Result<()> {
    let cells = batch.rows.checked_mul(batch.seq_len).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "batch of {} rows × {} tokens overflows",
            batch.rows, batch.seq_len
        ))
    })?;
    if batch.tokens.len() != cells || batch.mask.len() != cells {
        return Err(Error::InvalidArgument(format!(
            "batch declares {} × {} = {cells} tokens but holds {} tokens and {} mask flags",
            batch.rows,
            batch.seq_len,
            batch.tokens.len(),
            batch.mask.len()
        )));
    }
    if batch.rows == 0 || batch.seq_len < 2 {
        return Err(Error::InvalidArgument(format!(
            "batch must have rows and at least 2 tokens per row (has {} × {})",
            batch.rows, batch.seq_len
        )));
    }
    if batch.seq_len > config.max_position_embeddings {
        return Err(Error::limit(
            "batch seq_len (model context)",
            config.max_position_embeddings as u64,
            batch.seq_len as u64,
        ));
    }
    if let Some(i) = batch
        .tokens
        .iter()
        .position(|&t| t as usize >= config.vocab_size)
    {
        return Err(Error::InvalidArgument(format!(
            "token id {} at position {i} is outside the vocabulary of {}",
            batch.tokens[i], config.vocab_size
        )));
    }
    if let Some(i) = batch.mask.iter().position(|&m| m > 1) {
        return Err(Error::InvalidArgument(format!(
            "mask value {} at position {i} is neither 0 nor 1",
            batch.mask[i]
        )));
    }
    if batch.target_count() == 0 {
        return Err(Error::InvalidArgument(
            "batch has no position to predict (no two adjacent real tokens)".into(),
        ));
    }
    Ok(())
}

/// The inputs `[rows, seq_len]` and the labels `[rows, seq_len - 1]`
/// (`tokens[t + 1]` where both positions are real, else [`IGNORE`]) of a
/// validated batch.
pub(crate) fn tensors(batch: &Batch, device: Device) -> Result<(Tensor, Tensor)> {
    let (rows, seq) = (batch.rows as i64, batch.seq_len as i64);
    let ids: Vec<i64> = batch.tokens.iter().map(|&t| i64::from(t)).collect();
    let mut labels = Vec::with_capacity(batch.rows * (batch.seq_len - 1));
    for (tokens, mask) in batch
        .tokens
        .chunks_exact(batch.seq_len)
        .zip(batch.mask.chunks_exact(batch.seq_len))
    {
        for t in 0..batch.seq_len - 1 {
            let real = mask[t] == 1 && mask[t + 1] == 1;
            labels.push(if real {
                i64::from(tokens[t + 1])
            } else {
                IGNORE
            });
        }
    }
    let ids = Tensor::f_from_slice(&ids)?
        .f_view([rows, seq])?
        .f_to_device(device)?;
    let labels = Tensor::f_from_slice(&labels)?
        .f_view([rows, seq - 1])?
        .f_to_device(device)?;
    debug_assert_eq!(ids.kind(), Kind::Int64);
    Ok((ids, labels))
}
