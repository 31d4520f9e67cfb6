//! Keeping a trainer's optimizer state: across masters (the model's weights
//! change, the AdamW moments and the schedule's step stay, as DiLoCo's
//! workers keep their inner optimizer) and across restarts (a file).
//!
//! The file is a delta container (`docs/delta-format.md`: versioned, with a
//! BLAKE3 digest over its bytes): header `base_revision` = a digest of the
//! model's parameter layout (names and shapes), `block` = the steps taken; a
//! tensor `trainer.meta` = `[layout version]`; then `adamw.m/<parameter>` and
//! `adamw.v/<parameter>`, flat dense f32, for every parameter.

use std::path::Path;

use super::host;
use super::train::Trainer;
use super::transformer::Model;
use crate::codec::{DType, DeltaHeader, DeltaWriter, Encoding, Limits, open_file};
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::util::atomic::write_atomic_with;

/// Version of the trainer state file's layout.
pub const TRAINER_STATE_VERSION: u32 = 1;
const META: &str = "trainer.meta";

/// A digest of the model's parameter names and shapes, in model order.
fn layout_digest(model: &Model) -> Digest {
    let mut h = Hasher::new();
    h.update(b"bistro.trainer-state.layout.v1");
    for p in model.parameters() {
        h.update(&(p.name.len() as u64).to_le_bytes())
            .update(p.name.as_bytes())
            .update(&(p.shape.len() as u64).to_le_bytes());
        for d in &p.shape {
            h.update(&(*d as u64).to_le_bytes());
        }
    }
    h.finalize()
}

impl Trainer {
    /// Swaps in `model` (e.g. the next master) and keeps the optimizer: the
    /// AdamW moments and the step count, hence the schedule's position.
    /// Returns the previous model. `model` must have the same parameters
    /// (names and shapes) on the same device.
    pub fn replace_model(&mut self, model: Model) -> Result<Model> {
        if model.parameters() != self.model.parameters() || model.device() != self.model.device() {
            return Err(Error::InvalidArgument(
                "replace_model: the new model has other parameters or another device".into(),
            ));
        }
        Ok(std::mem::replace(&mut self.model, model))
    }

    /// Writes the optimizer state (moments and step count) to `path`,
    /// atomically. A non-finite moment is refused (as in any delta).
    pub fn save_state(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let header = DeltaHeader {
            base_revision: layout_digest(&self.model),
            block: self.steps,
            ..DeltaHeader::default()
        };
        let params = self.model.parameters();
        let elements: u64 = params.iter().map(|p| 2 * p.numel()).sum();
        let limits = Limits::for_model(elements + 1);
        let (m, v) = self.optimizer.moments();
        write_atomic_with(path, |w| {
            let mut writer = DeltaWriter::new(w, &header, &limits)?;
            let meta = [TRAINER_STATE_VERSION as f32];
            writer.add_tensor(META, &[1], &meta, Encoding::Dense(DType::F32), None)?;
            for (kind, moments) in [("m", m), ("v", v)] {
                for (p, t) in params.iter().zip(moments) {
                    let name = format!("adamw.{kind}/{}", p.name);
                    host::read(t, |values| {
                        writer.add_tensor(
                            &name,
                            &[values.len() as u64],
                            values,
                            Encoding::Dense(DType::F32),
                            None,
                        )
                    })??;
                }
            }
            writer.finish().map(|_| ())
        })
    }

    /// Restores the optimizer state saved by [`save_state`](Self::save_state)
    /// for a model with the same parameters. All or nothing: a file that
    /// fails the container's checks, has another layout version, was saved
    /// for other parameters, lacks a moment or holds a non-finite one is an
    /// error and leaves the trainer as it was.
    pub fn load_state(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let params = self.model.parameters();
        let elements: u64 = params.iter().map(|p| 2 * p.numel()).sum();
        let mapped = open_file(path, &Limits::for_model(elements + 1))?;
        let reader = mapped.reader();
        let corrupt = |what: &str, detail: String| Error::corrupt("trainer state", what, detail);
        let layout = layout_digest(&self.model);
        if reader.header().base_revision != layout {
            return Err(Error::DigestMismatch {
                what: "trainer state: the model's parameter layout".into(),
                expected: layout,
                computed: reader.header().base_revision,
            });
        }
        let meta = reader.tensor(META)?;
        if meta.encoding() != Encoding::Dense(DType::F32) || meta.element_count() != 1 {
            return Err(corrupt(
                "meta",
                format!("{META} is not one dense f32 value"),
            ));
        }
        let version = meta.decode()?[0];
        if version != TRAINER_STATE_VERSION as f32 {
            return Err(Error::UnsupportedVersion {
                input: "trainer state",
                found: if version.is_finite() && version >= 0.0 {
                    version as u32
                } else {
                    u32::MAX
                },
                supported: TRAINER_STATE_VERSION.to_string(),
            });
        }
        if reader.len() != 1 + 2 * params.len() {
            return Err(corrupt(
                "tensors",
                format!(
                    "{} tensors, expected {} for {} parameters",
                    reader.len(),
                    1 + 2 * params.len(),
                    params.len()
                ),
            ));
        }
        // Decode everything before changing anything.
        let mut restored = Vec::with_capacity(2 * params.len());
        for kind in ["m", "v"] {
            for p in &params {
                let name = format!("adamw.{kind}/{}", p.name);
                let tensor = reader.tensor(&name)?;
                if tensor.encoding() != Encoding::Dense(DType::F32)
                    || tensor.element_count() != p.numel()
                {
                    return Err(corrupt(
                        "tensor",
                        format!("{name} is not {} dense f32 values", p.numel()),
                    ));
                }
                tensor.check_finite()?;
                restored.push(tensor.decode()?);
            }
        }
        let steps = reader.header().block;
        let (m, v, adam_steps) = self.optimizer.moments_mut();
        for (t, values) in m.iter_mut().chain(v.iter_mut()).zip(&restored) {
            host::write(t, |dst| dst.copy_from_slice(values))?;
        }
        *adam_steps = steps;
        self.steps = steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Batch;
    use crate::model::{Config, Device, TrainConfig};

    fn batch(config: &Config, seed: u32) -> Batch {
        let tokens: Vec<u32> = (0..34u32)
            .map(|i| (i * 7919 + seed * 104_729) % config.vocab_size as u32)
            .collect();
        Batch::pack([tokens.as_slice()], 17, 0).unwrap()
    }

    fn trainer(seed: u64) -> Trainer {
        let config = Config::preset("tiny").unwrap();
        let model = Model::new(config, seed, Device::Cpu).unwrap();
        let train = TrainConfig {
            learning_rate: 1e-3,
            warmup_steps: 1,
            total_steps: 10,
            ..TrainConfig::default()
        };
        Trainer::new(model, train).unwrap()
    }

    #[test]
    fn saved_state_continues_training_exactly() {
        crate::model::set_threads(1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("optimizer.state");
        let config = Config::preset("tiny").unwrap();
        let mut a = trainer(1);
        for s in 0..2 {
            a.train_step(&batch(&config, s)).unwrap();
        }
        a.save_state(&path).unwrap();
        // A new trainer on the same weights, restored from the file, takes
        // the same next step bit for bit.
        let weights = dir.path().join("w.safetensors");
        a.model().save(&weights).unwrap();
        let model = Model::load(&weights, config.clone(), Device::Cpu).unwrap();
        let mut b = Trainer::new(model, a.config().clone()).unwrap();
        b.load_state(&path).unwrap();
        assert_eq!(b.steps(), 2);
        let ra = a.train_step(&batch(&config, 9)).unwrap();
        let rb = b.train_step(&batch(&config, 9)).unwrap();
        assert_eq!(ra, rb);
        assert_eq!(a.model().revision().unwrap(), b.model().revision().unwrap());
    }

    #[test]
    fn replace_model_keeps_the_moments_and_bad_files_change_nothing() {
        crate::model::set_threads(1);
        let dir = tempfile::tempdir().unwrap();
        let config = Config::preset("tiny").unwrap();
        let mut a = trainer(1);
        a.train_step(&batch(&config, 1)).unwrap();
        let before = dir.path().join("before.state");
        a.save_state(&before).unwrap();
        let next = Model::new(config.clone(), 5, Device::Cpu).unwrap();
        a.replace_model(next).unwrap();
        assert_eq!(a.steps(), 1);
        let after = dir.path().join("after.state");
        a.save_state(&after).unwrap();
        assert_eq!(
            std::fs::read(&before).unwrap(),
            std::fs::read(&after).unwrap()
        );

        let mut fresh = trainer(2);
        let untouched = dir.path().join("fresh.state");
        fresh.save_state(&untouched).unwrap();
        let good = std::fs::read(&before).unwrap();
        let bad = dir.path().join("bad.state");
        let mut flipped = good.clone();
        let at = good.len() / 2;
        flipped[at] ^= 1;
        std::fs::write(&bad, &flipped).unwrap();
        assert!(fresh.load_state(&bad).is_err());
        std::fs::write(&bad, &good[..100]).unwrap();
        assert!(fresh.load_state(&bad).is_err());
        std::fs::write(&bad, b"").unwrap();
        assert!(fresh.load_state(&bad).is_err());
        // Saved for another shape.
        let mut other = config.clone();
        other.intermediate_size += 8;
        let model = Model::new(other, 1, Device::Cpu).unwrap();
        let mut wrong = Trainer::new(model, fresh.config().clone()).unwrap();
        assert!(matches!(
            wrong.load_state(&before),
            Err(Error::DigestMismatch { .. })
        ));
        // Nothing changed in the trainer that refused the files.
        let check = dir.path().join("check.state");
        fresh.save_state(&check).unwrap();
        assert_eq!(
            std::fs::read(&check).unwrap(),
            std::fs::read(&untouched).unwrap()
        );
        assert_eq!(fresh.steps(), 0);
    }
}
