//! Error-feedback buffers for a miner's successive deltas.

use std::collections::HashMap;
use std::path::Path;

use crate::codec::{DType, DeltaHeader, DeltaWriter, Encoding, Limits, open_file};
use crate::error::{Error, Result};
use crate::util::atomic::write_atomic_with;

/// Per-parameter residuals: what earlier deltas' lossy encodings left out,
/// added back into the next delta (see
/// [`DeltaWriter::add_tensor`](crate::codec::DeltaWriter::add_tensor)). A
/// buffer is created, zeroed, the first time a parameter is encoded.
#[derive(Clone, Debug, Default, PartialEq)]
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

    /// Writes the residuals to `path`, atomically, so that a restarted miner
    /// keeps them: a delta file (`docs/delta-format.md`) with one flat dense
    /// f32 tensor per parameter, names sorted, and `header` (the master they
    /// were left against, the block and author of the upload that left them).
    /// Non-finite residuals are refused, as in any delta.
    pub fn save(&self, path: impl AsRef<Path>, header: &DeltaHeader) -> Result<()> {
        let path = path.as_ref();
        let mut names: Vec<&String> = self.buffers.keys().collect();
        names.sort();
        let elements: u64 = self.buffers.values().map(|b| b.len() as u64).sum();
        let limits = Limits::for_model(elements.max(1));
        write_atomic_with(path, |w| {
            let mut writer = DeltaWriter::new(w, header, &limits)?;
            for name in names {
                let values = &self.buffers[name];
                let shape = [values.len() as u64];
                writer.add_tensor(name, &shape, values, Encoding::Dense(DType::F32), None)?;
            }
            writer.finish().map(|_| ())
        })
    }

    /// Reads residuals written by [`save`](Self::save), validated like any
    /// delta under `limits`, with the header they were saved with.
    pub fn load(path: impl AsRef<Path>, limits: &Limits) -> Result<(Residuals, DeltaHeader)> {
        let mapped = open_file(path, limits)?;
        let reader = mapped.reader();
        let mut buffers = HashMap::new();
        for tensor in reader.tensors() {
            if tensor.encoding() != Encoding::Dense(DType::F32) || tensor.shape().len() != 1 {
                return Err(Error::InvalidArgument(format!(
                    "residual {} is not a flat dense f32 tensor",
                    tensor.name()
                )));
            }
            buffers.insert(tensor.name().to_string(), tensor.decode()?);
        }
        Ok((Residuals { buffers }, *reader.header()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn residuals() -> Residuals {
        let mut r = Residuals::new();
        r.buffer("b.weight", 3)
            .unwrap()
            .copy_from_slice(&[1.0, -2.5, 0.0]);
        r.buffer("a.weight", 2)
            .unwrap()
            .copy_from_slice(&[f32::MIN_POSITIVE, 3e-9]);
        r
    }

    fn header() -> DeltaHeader {
        DeltaHeader {
            base_revision: Digest([7; 32]),
            block: 42,
            uid: 3,
            ..DeltaHeader::default()
        }
    }

    #[test]
    fn saved_residuals_load_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("residuals.delta");
        residuals().save(&path, &header()).unwrap();
        let (loaded, h) = Residuals::load(&path, &Limits::for_model(5)).unwrap();
        assert_eq!(loaded, residuals());
        assert_eq!(h, header());
    }

    #[test]
    fn bad_files_are_errors_and_a_failed_save_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("residuals.delta");
        residuals().save(&path, &header()).unwrap();
        let good = std::fs::read(&path).unwrap();

        let mut bad = residuals();
        bad.buffer("a.weight", 2).unwrap()[0] = f32::NAN;
        assert!(bad.save(&path, &header()).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), good);

        // Larger than the limits allow, truncated, a flipped byte.
        assert!(matches!(
            Residuals::load(&path, &Limits::for_model(1)),
            Err(Error::LimitExceeded { .. })
        ));
        std::fs::write(&path, &good[..good.len() - 1]).unwrap();
        assert!(Residuals::load(&path, &Limits::for_model(5)).is_err());
        let mut flipped = good.clone();
        flipped[200] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert!(Residuals::load(&path, &Limits::for_model(5)).is_err());
    }
}
