//! Building a delta: `trained − base` for every parameter, into a writer.

use std::io::Write;

use rayon::prelude::*;

use super::residuals::Residuals;
use super::source::ParameterSource;
use crate::codec::{DeltaWriter, Encoding};
use crate::error::{Error, Result};
use crate::model::{Model, ParamInfo};

/// What [`build`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BuildReport {
    /// Tensors written.
    pub tensors: usize,
    /// Elements over all tensors.
    pub elements: u64,
    /// Largest `|trained − base|` over all elements (before encoding).
    pub max_abs_change: f32,
}

/// Writes `trained − base` for every parameter of `trained` (module order)
/// into `writer`, each tensor with `encoding(parameter)`. With `residuals`
/// the writer's error feedback is used: what a lossy encoding leaves out of
/// this delta is carried into the next one.
///
/// `base` must have exactly `trained`'s parameters (names and shapes). The
/// writer's header should name the base's revision ([`Model::revision`],
/// [`Checkpoint::revision`](crate::model::Checkpoint::revision)). One tensor
/// is held in host memory at a time (plus its residual).
pub fn build<W: Write>(
    writer: &mut DeltaWriter<W>,
    trained: &Model,
    base: &(impl ParameterSource + ?Sized),
    mut encoding: impl FnMut(&ParamInfo) -> Encoding,
    mut residuals: Option<&mut Residuals>,
) -> Result<BuildReport> {
    let params = trained.parameters();
    let base_params = base.parameter_infos();
    if params != base_params {
        let first = params
            .iter()
            .zip(&base_params)
            .find(|(a, b)| a != b)
            .map(|(a, b)| format!("{} {:?} vs {} {:?}", a.name, a.shape, b.name, b.shape))
            .unwrap_or_else(|| format!("{} vs {} parameters", params.len(), base_params.len()));
        return Err(Error::InvalidArgument(format!(
            "the trained model and the base have different parameters: {first}"
        )));
    }
    let mut report = BuildReport::default();
    let mut scratch: Vec<f32> = Vec::new();
    for info in &params {
        let n = usize::try_from(info.numel()).map_err(|_| {
            Error::limit(
                format!("elements of {}", info.name),
                usize::MAX as u64,
                info.numel(),
            )
        })?;
        scratch.clear();
        scratch.resize(n, 0.0);
        base.read_parameter_into(&info.name, &mut scratch)?;
        let max = trained.with_parameter(&info.name, |t| {
            scratch
                .par_iter_mut()
                .zip(t.par_iter())
                .map(|(d, &w)| {
                    *d = w - *d;
                    d.abs()
                })
                .reduce(|| 0.0f32, f32::max)
        })?;
        report.max_abs_change = report.max_abs_change.max(max);
        let shape: Vec<u64> = info.shape.iter().map(|&d| d as u64).collect();
        let residual = match residuals.as_deref_mut() {
            Some(r) => Some(r.buffer(&info.name, n)?),
            None => None,
        };
        writer.add_tensor(&info.name, &shape, &scratch, encoding(info), residual)?;
        report.tensors += 1;
        report.elements += info.numel();
    }
    Ok(report)
}
