//! Applying a delta to the model in place, and undoing it bit for bit.

use crate::codec::{DeltaReader, TensorView};
use crate::error::{Error, Result};
use crate::model::host;
use crate::model::{Checkpoint, Model};

/// Where the old values of densely changed tensors are kept.
#[derive(Clone, Copy, Debug)]
pub enum Backup<'a> {
    /// A copy of each densely changed tensor in host memory (4 bytes per
    /// element of those tensors: the whole model for a dense delta).
    Memory,
    /// Nothing for dense tensors: each is checked, before anything changes,
    /// to equal its value in this checkpoint (e.g. the master file the model
    /// was loaded from), and undo reads it back from there.
    Checkpoint(&'a Checkpoint),
}

/// How one tensor is restored.
enum Saved {
    /// The old values at the touched indices of a sparse tensor.
    Sparse { indices: Vec<u32>, values: Vec<f32> },
    /// The whole old tensor.
    Dense(Vec<f32>),
    /// Read back from the checkpoint.
    FromCheckpoint,
}

struct Restore {
    param: usize,
    name: String,
    saved: Saved,
}

/// A delta applied to a model, with what it takes to restore the model's
/// previous bits exactly: [`undo`](AppliedDelta::undo) restores them;
/// dropping it keeps the change.
#[must_use = "dropping an AppliedDelta keeps the change; call undo() to restore"]
pub struct AppliedDelta {
    restores: Vec<Restore>,
    checkpoint: Option<Checkpoint>,
}

impl std::fmt::Debug for AppliedDelta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppliedDelta")
            .field("tensors", &self.restores.len())
            .field("backup_bytes", &self.backup_bytes())
            .finish()
    }
}

/// [`apply_with_backup`] with [`Backup::Memory`].
pub fn apply(model: &mut Model, delta: &DeltaReader<'_>, alpha: f32) -> Result<AppliedDelta> {
    apply_with_backup(model, delta, alpha, Backup::Memory)
}

/// Adds `alpha ×` each tensor of `delta` to the model's parameter of the
/// same name, in place (on a GPU through a host copy of one tensor at a
/// time).
///
/// Before any parameter changes, every tensor of the delta is checked: it
/// must name a parameter of the model, have its shape, and hold only finite
/// values; with [`Backup::Checkpoint`] each dense tensor's current value
/// must equal the checkpoint's. Any failure is returned with the model
/// unchanged (`Error::Corrupt` with input `"delta"` for a name or shape that
/// does not fit, `Error::NonFinite` for a NaN or infinity). Parameters the
/// delta does not name are untouched.
pub fn apply_with_backup(
    model: &mut Model,
    delta: &DeltaReader<'_>,
    alpha: f32,
    backup: Backup<'_>,
) -> Result<AppliedDelta> {
    if !alpha.is_finite() {
        return Err(Error::InvalidArgument(format!(
            "delta scale alpha must be finite, got {alpha}"
        )));
    }
    let plan = check(model, delta)?;
    let checkpoint = match backup {
        Backup::Memory => None,
        Backup::Checkpoint(c) => {
            for (param, view) in &plan {
                if !view.is_sparse() {
                    check_equal_to_checkpoint(model, *param, c)?;
                }
            }
            Some(c.clone())
        }
    };
    let mut applied = AppliedDelta {
        restores: Vec::with_capacity(plan.len()),
        checkpoint,
    };
    for (param, view) in plan {
        let from_checkpoint = applied.checkpoint.is_some();
        let result = host::write(&mut model.tensors[param], |dst| -> Result<Saved> {
            let saved = save(&view, dst, from_checkpoint)?;
            view.apply(dst, alpha)?;
            Ok(saved)
        })
        .and_then(|r| r);
        match result {
            Ok(saved) => applied.restores.push(Restore {
                param,
                name: view.name().to_string(),
                saved,
            }),
            Err(e) => {
                // Put back what was already changed before reporting.
                applied.restore(model)?;
                return Err(e);
            }
        }
    }
    Ok(applied)
}

/// Adds `alpha ×` each tensor of `delta` to the model in place, with the
/// checks of [`apply_with_backup`] first, and keeps nothing to undo it: for
/// merging deltas into a new master, where a failed merge reloads the
/// master from its file. A check failure leaves the model unchanged; an
/// error while writing (a GPU copy failing) may leave it partly changed, so
/// reload it then.
pub fn apply_permanently(model: &mut Model, delta: &DeltaReader<'_>, alpha: f32) -> Result<()> {
    if !alpha.is_finite() {
        return Err(Error::InvalidArgument(format!(
            "delta scale alpha must be finite, got {alpha}"
        )));
    }
    for (param, view) in check(model, delta)? {
        host::write(&mut model.tensors[param], |dst| view.apply(dst, alpha))??;
    }
    Ok(())
}

/// Matches every tensor of the delta to a model parameter; checks shapes
/// and values.
fn check<'r>(model: &Model, delta: &'r DeltaReader<'_>) -> Result<Vec<(usize, TensorView<'r>)>> {
    let mut plan = Vec::with_capacity(delta.len());
    for view in delta.tensors() {
        let Some(param) = model.index_of(view.name()) else {
            return Err(Error::corrupt(
                "delta",
                view.name(),
                "not a parameter of the model",
            ));
        };
        let shape = &model.specs[param].info.shape;
        let same = view.shape().len() == shape.len()
            && view.shape().iter().zip(shape).all(|(&a, &b)| a == b as u64);
        if !same {
            return Err(Error::corrupt(
                "delta",
                view.name(),
                format!(
                    "shape {:?}, the model's parameter is {shape:?}",
                    view.shape()
                ),
            ));
        }
        view.check_finite()?;
        plan.push((param, view));
    }
    Ok(plan)
}

/// Checks that the model's parameter equals its value in the checkpoint.
fn check_equal_to_checkpoint(model: &Model, param: usize, checkpoint: &Checkpoint) -> Result<()> {
    let name = &model.specs[param].info.name;
    host::read(&model.tensors[param], |current| {
        checkpoint.for_each_chunk(name, |start, stored| {
            let same = current.get(start..start + stored.len()).is_some_and(|c| {
                c.iter()
                    .zip(stored)
                    .all(|(a, b)| a.to_bits() == b.to_bits())
            });
            if same {
                Ok(())
            } else {
                Err(Error::InvalidArgument(format!(
                    "the model's {name} differs from {} near element {start}: the checkpoint \
                     cannot restore it (use Backup::Memory)",
                    checkpoint.path().display()
                )))
            }
        })
    })?
}

/// What restores `dst` after `view` is applied to it.
fn save(view: &TensorView<'_>, dst: &[f32], from_checkpoint: bool) -> Result<Saved> {
    if view.is_sparse() && dst.len() <= u32::MAX as usize {
        let mut indices = Vec::new();
        let mut values = Vec::new();
        for i in view.touched_indices() {
            let value = dst.get(i as usize).ok_or_else(|| {
                Error::Model(format!(
                    "internal: touched index {i} outside {}",
                    view.name()
                ))
            })?;
            indices.push(i as u32);
            values.push(*value);
        }
        return Ok(Saved::Sparse { indices, values });
    }
    if from_checkpoint && !view.is_sparse() {
        return Ok(Saved::FromCheckpoint);
    }
    Ok(Saved::Dense(dst.to_vec()))
}

impl AppliedDelta {
    /// Restores every changed parameter to its exact previous bits.
    ///
    /// `model` must be the model the delta was applied to, not changed since
    /// (other than by applies that were undone).
    pub fn undo(mut self, model: &mut Model) -> Result<()> {
        self.restore(model)
    }

    /// Number of parameters the delta changed.
    pub fn tensors(&self) -> usize {
        self.restores.len()
    }

    /// Host memory held to undo: 8 bytes per touched element of sparse
    /// tensors, 4 per element of densely changed tensors kept in memory,
    /// nothing for those restored from a checkpoint.
    pub fn backup_bytes(&self) -> u64 {
        self.restores
            .iter()
            .map(|r| match &r.saved {
                Saved::Sparse { indices, .. } => indices.len() as u64 * 8,
                Saved::Dense(v) => v.len() as u64 * 4,
                Saved::FromCheckpoint => 0,
            })
            .sum()
    }

    fn restore(&mut self, model: &mut Model) -> Result<()> {
        while let Some(r) = self.restores.pop() {
            let matches = model
                .specs
                .get(r.param)
                .is_some_and(|s| s.info.name == r.name);
            if !matches {
                return Err(Error::InvalidArgument(format!(
                    "undo: the model has no parameter {} where the delta was applied",
                    r.name
                )));
            }
            let checkpoint = self.checkpoint.as_ref();
            host::write(&mut model.tensors[r.param], |dst| -> Result<()> {
                match &r.saved {
                    Saved::Sparse { indices, values } => {
                        for (&i, &v) in indices.iter().zip(values) {
                            if let Some(slot) = dst.get_mut(i as usize) {
                                *slot = v;
                            }
                        }
                    }
                    Saved::Dense(old) => {
                        if old.len() != dst.len() {
                            return Err(Error::InvalidArgument(format!(
                                "undo: {} changed size",
                                r.name
                            )));
                        }
                        dst.copy_from_slice(old);
                    }
                    Saved::FromCheckpoint => {
                        let c = checkpoint.ok_or_else(|| {
                            Error::Model("internal: no checkpoint to restore from".into())
                        })?;
                        c.for_each_chunk(&r.name, |start, stored| {
                            let slot =
                                dst.get_mut(start..start + stored.len()).ok_or_else(|| {
                                    Error::InvalidArgument(format!("undo: {} changed size", r.name))
                                })?;
                            slot.copy_from_slice(stored);
                            Ok(())
                        })?;
                    }
                }
                Ok(())
            })??;
        }
        Ok(())
    }
}
