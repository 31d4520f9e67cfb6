//! Error-feedback buffers for a miner's successive deltas.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Per-parameter residuals: what earlier deltas' lossy encodings left out,
/// added back into the next delta (see
/// [`DeltaWriter::add_tensor`](crate::codec::DeltaWriter::add_tensor)). A
/// buffer is created, zeroed, the first time a parameter is encoded.
#[derive(Clone, Debug, Default)]
pub struct Residuals {
    buffers: HashMap<String, Vec<f32>>,
}

impl Residuals {
    /// No residuals yet.
    pub fn new() -> Residuals {
        Residuals::default()
    }

    /// The residual of parameter `name`, if it was encoded before.
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.buffers.get(name).map(Vec::as_slice)
    }

    /// Bytes held (4 per element of every parameter encoded so far).
    pub fn bytes(&self) -> u64 {
        self.buffers.values().map(|b| b.len() as u64 * 4).sum()
    }

    /// Forgets every residual (e.g. after the master moved on without this
    /// miner's delta).
    pub fn clear(&mut self) {
        self.buffers.clear();
    }

    /// The buffer of `name` with `len` elements, created zeroed if absent.
    pub(crate) fn buffer(&mut self, name: &str, len: usize) -> Result<&mut [f32]> {
        let buffer = self
            .buffers
            .entry(name.to_string())
            .or_insert_with(|| vec![0.0; len]);
        if buffer.len() != len {
            return Err(Error::InvalidArgument(format!(
                "residual of {name} has {} elements, the parameter {len}",
                buffer.len()
            )));
        }
        Ok(buffer)
    }
}
