//! Measuring a delta: the loss of every page under the master with and
//! without it. One helper for the validator that judges a round and the
//! auditor that re-measures it ([`crate::node::audit`]), so both measure
//! exactly the same way.

use std::time::{Duration, Instant};

use crate::codec::DeltaReader;
use crate::data::PagedBatch;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::model::delta::{Backup, apply_with_backup};
use crate::model::{Checkpoint, Model};
use crate::node::rejection::Rejection;
use crate::score::{Evaluation, PageLosses};

/// The mean loss of each page of `paged` under `model`.
pub(crate) fn page_losses(model: &Model, paged: &PagedBatch) -> Result<Vec<f64>> {
    let rows: Vec<(f64, usize)> = model
        .row_losses(&paged.batch)?
        .into_iter()
        .map(|r| (r.sum, r.count))
        .collect();
    paged.page_means(&rows)
}

/// [`page_losses`], with NaN for every page when the model cannot give a
/// finite loss (a delta that blows the model up scores `non_finite_loss`).
pub(crate) fn page_losses_or_nan(model: &Model, paged: &PagedBatch) -> Vec<f64> {
    page_losses(model, paged).unwrap_or_else(|_| vec![f64::NAN; paged.rows_per_page.len()])
}

/// The mean of `xs` (NaN for none).
pub(crate) fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// What [`measure_delta`] found.
pub(crate) struct Measured {
    /// Every page's loss without and with the delta.
    pub evaluation: Evaluation,
    /// Whether undoing the delta gave the master back bit for bit (when
    /// not, the model must be reloaded before it is used again).
    pub restored_exact: bool,
    /// Time spent applying, evaluating and undoing.
    pub apply: Duration,
    /// Time spent measuring the pages with the delta.
    pub eval: Duration,
    /// Time spent undoing and checking the revision.
    pub restore: Duration,
}

/// Applies `delta` (scale 1) to `model` — the master `master`, loaded from
/// `checkpoint` — measures `local` and `global` with it, and undoes it.
/// `master_local` and `master_global` are the pages' losses without it.
/// A delta that does not fit the model is a [`Rejection::Mismatch`], one
/// that holds non-finite values a [`Rejection::NonFinite`].
pub(crate) fn measure_delta(
    model: &mut Model,
    checkpoint: &Checkpoint,
    master: Digest,
    delta: &DeltaReader<'_>,
    local: (&PagedBatch, Vec<f64>),
    global: (&PagedBatch, Vec<f64>),
) -> std::result::Result<Measured, Rejection> {
    let started = Instant::now();
    let applied = match apply_with_backup(model, delta, 1.0, Backup::Checkpoint(checkpoint)) {
        Ok(applied) => applied,
        Err(e @ Error::NonFinite { .. }) => return Err(Rejection::NonFinite(e.to_string())),
        Err(e) => return Err(Rejection::Mismatch(e.to_string())),
    };
    let apply = started.elapsed();
    let started = Instant::now();
    let with_local = page_losses_or_nan(model, local.0);
    let with_global = page_losses_or_nan(model, global.0);
    let eval = started.elapsed();
    let started = Instant::now();
    let undone = applied.undo(model);
    let restored_exact = undone.is_ok() && model.revision().ok() == Some(master);
    let restore = started.elapsed();
    Ok(Measured {
        evaluation: Evaluation {
            local: PageLosses {
                master: local.1,
                with_delta: with_local,
            },
            global: PageLosses {
                master: global.1,
                with_delta: with_global,
            },
        },
        restored_exact,
        apply,
        eval,
        restore,
    })
}
