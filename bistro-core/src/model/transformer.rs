//! The [`Model`]: parameters on a device, the loss, parameter access.

use tch::{Kind, Reduction, Tensor};

use super::config::Config;
use super::device::{Device, Precision};
use super::forward::{self, Dims};
use super::inputs::{self, IGNORE};
use super::params::{self, ParamInfo, ParamSpec};
use super::rope::Rope;
use super::{host, init};
use crate::data::Batch;
use crate::error::{Error, Result};

/// The default bound on the logits of one chunk of rows: the loss (and a
/// training step, unless told otherwise) runs over a batch's rows in chunks
/// of `budget / (seq_len × vocab × 4)` rows, at least one. 1 GiB is 20 rows
/// of 256 tokens at GPT-2's vocabulary; a smaller budget splits batches into
/// more chunks, which cost the tiny preset a quarter of its evaluation speed
/// at 256 MiB (BENCHMARKS.md).
pub const LOGITS_BUDGET_BYTES: usize = 1 << 30;

/// A decoder-only LLaMA-family transformer with f32 parameters on a device.
///
/// Parameters are named and shaped as in an HF LLaMA checkpoint
/// ([`Model::parameters`]); [`Model::save`] and [`Model::load`] read and
/// write them as safetensors, and [`Model::revision`] is a content digest of
/// them. The model has no dropout, so evaluation and training run the same
/// function (evaluation without autograd).
pub struct Model {
    pub(crate) config: Config,
    pub(crate) device: Device,
    pub(crate) tch_device: tch::Device,
    pub(crate) precision: Precision,
    pub(crate) specs: Vec<ParamSpec>,
    /// The parameters, in the order of `specs`: f32, contiguous, on
    /// `tch_device`, requiring gradients.
    pub(crate) tensors: Vec<Tensor>,
    rope: Rope,
    dims: Dims,
    logits_budget: usize,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("device", &self.device)
            .field("precision", &self.precision)
            .field("parameters", &self.config.parameter_count())
            .finish_non_exhaustive()
    }
}

impl Model {
    /// A freshly initialised model. The weights depend only on `config` and
    /// `seed` (bit-identical on any machine; see `docs/model.md`).
    pub fn new(config: Config, seed: u64, device: Device) -> Result<Model> {
        let init_config = config.clone();
        Model::build(config, device, |spec, values| {
            init::fill(&init_config, seed, spec, values);
            Ok(())
        })
    }

    /// A model whose parameters `fill` writes, one tensor at a time in layout
    /// order (host memory; copied to the device afterwards).
    pub(crate) fn build(
        config: Config,
        device: Device,
        mut fill: impl FnMut(&ParamSpec, &mut [f32]) -> Result<()>,
    ) -> Result<Model> {
        config.validate()?;
        let tch_device = device.check()?;
        let specs = params::layout(&config);
        let mut tensors = Vec::with_capacity(specs.len());
        for spec in &specs {
            let shape: Vec<i64> = spec.info.shape.iter().map(|&d| d as i64).collect();
            let mut t = Tensor::f_empty(shape.as_slice(), (Kind::Float, tch::Device::Cpu))?;
            host::write(&mut t, |values| fill(spec, values))??;
            let t = t.f_to_device(tch_device)?.set_requires_grad(true);
            tensors.push(t);
        }
        let rope = Rope::new(
            config.head_width(),
            config.max_position_embeddings,
            config.rope_base(),
            tch_device,
        )?;
        let dims = Dims {
            heads: config.num_attention_heads as i64,
            kv_heads: config.kv_heads() as i64,
            head_dim: config.head_width() as i64,
            eps: config.rms_norm_eps,
            tied: config.tie_word_embeddings,
            layers: config.num_hidden_layers,
        };
        Ok(Model {
            precision: Precision::default_for(device),
            config,
            device,
            tch_device,
            specs,
            tensors,
            rope,
            dims,
            logits_budget: LOGITS_BUDGET_BYTES,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The device the parameters live on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// The compute precision ([`Precision::default_for`] the device unless set).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Sets the compute precision (parameters stay f32).
    pub fn set_precision(&mut self, precision: Precision) {
        self.precision = precision;
    }

    /// Names and shapes of the parameters in module order (embedding, layers
    /// 0.., final norm, untied head).
    pub fn parameters(&self) -> Vec<ParamInfo> {
        self.specs.iter().map(|s| s.info.clone()).collect()
    }

    /// Index of the parameter `name`.
    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.specs.iter().position(|s| s.info.name == name)
    }

    /// Runs `f` on the f32 values of parameter `name` (on a GPU, a host copy).
    pub fn with_parameter<R>(&self, name: &str, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
        let i = self
            .index_of(name)
            .ok_or_else(|| Error::NotFound(format!("model parameter {name}")))?;
        host::read(&self.tensors[i], f)
    }

    /// The f32 values of parameter `name`, copied.
    pub fn parameter_values(&self, name: &str) -> Result<Vec<f32>> {
        self.with_parameter(name, <[f32]>::to_vec)
    }

    /// Logits `[rows, seq, vocab]` (f32) for token ids `[rows, seq]` (i64 on
    /// the model's device), without autograd: the result holds no reference
    /// to the parameters (training goes through [`Trainer`](super::Trainer)).
    pub fn logits(&self, tokens: &Tensor) -> Result<Tensor> {
        let seq = self.check_tokens(tokens)?;
        tch::no_grad(|| self.forward(tokens, seq))
    }

    fn check_tokens(&self, tokens: &Tensor) -> Result<i64> {
        let size = tokens.size();
        if size.len() != 2 || tokens.kind() != Kind::Int64 {
            return Err(Error::InvalidArgument(format!(
                "logits need an i64 tensor [rows, seq], got {:?} {size:?}",
                tokens.kind()
            )));
        }
        if size[1] as usize > self.config.max_position_embeddings {
            return Err(Error::limit(
                "sequence length (model context)",
                self.config.max_position_embeddings as u64,
                size[1] as u64,
            ));
        }
        Ok(size[1])
    }

    /// Logits for the first `positions` positions.
    fn forward(&self, tokens: &Tensor, positions: i64) -> Result<Tensor> {
        forward::logits(
            &self.tensors,
            &self.rope,
            &self.dims,
            tokens,
            self.precision.kind(),
            positions,
        )
    }

    /// Bounds the bytes of logits computed at once (default
    /// [`LOGITS_BUDGET_BYTES`]); batches are split into chunks of rows that fit.
    pub fn set_logits_budget(&mut self, bytes: usize) {
        self.logits_budget = bytes;
    }

    /// Rows per chunk that keep a chunk's logits within the budget.
    pub(crate) fn rows_per_chunk(&self, seq_len: usize) -> usize {
        let per_row = seq_len
            .saturating_mul(self.config.vocab_size)
            .saturating_mul(4)
            .max(1);
        (self.logits_budget / per_row).max(1)
    }

    /// Sum of the next-token cross entropy over `batch`'s rows (a validated
    /// batch), and the number of predicted positions, with autograd as the
    /// caller's context has it. The sum is a scalar f32 tensor.
    pub(crate) fn loss_sum(&self, batch: &Batch) -> Result<(Tensor, usize)> {
        let (tokens, labels) = inputs::tensors(batch, self.tch_device)?;
        let seq = self.check_tokens(&tokens)?;
        let vocab = self.config.vocab_size as i64;
        // Position t predicts token t + 1: the last position predicts
        // nothing, so its logits are not computed.
        let predicted = self.forward(&tokens, seq - 1)?.f_reshape([-1, vocab])?;
        let sum = predicted.f_cross_entropy_loss::<Tensor>(
            &labels.f_reshape([-1])?,
            None,
            Reduction::Sum,
            IGNORE,
            0.0,
        )?;
        Ok((sum, batch.target_count()))
    }

    /// Mean next-token cross entropy (nats per predicted token) over the
    /// batch's real positions, without autograd. Rows are evaluated in chunks
    /// (see [`Model::set_logits_budget`]); a non-finite loss is an error.
    pub fn loss(&self, batch: &Batch) -> Result<f64> {
        let rows = self.row_losses(batch)?;
        let total: f64 = rows.iter().map(|r| r.sum).sum();
        let count: usize = rows.iter().map(|r| r.count).sum();
        finite_loss(total / count as f64)
    }

    /// The summed next-token cross entropy of each row of `batch` and the
    /// number of positions it predicts, without autograd (rows in chunks as
    /// [`Model::loss`]). A validator derives per-page losses from these for
    /// paired comparisons. A non-finite sum is an error.
    pub fn row_losses(&self, batch: &Batch) -> Result<Vec<RowLoss>> {
        inputs::validate(batch, &self.config)?;
        let step = self.rows_per_chunk(batch.seq_len);
        let mut rows = Vec::with_capacity(batch.rows);
        let mut start = 0;
        while start < batch.rows {
            let chunk = batch.rows_range(start, start.saturating_add(step));
            start = start.saturating_add(step);
            let sums = tch::no_grad(|| self.row_loss_sums(&chunk))?;
            for (row, sum) in chunk.mask.chunks(chunk.seq_len.max(1)).zip(sums) {
                let count = row.windows(2).filter(|w| w[0] == 1 && w[1] == 1).count();
                rows.push(RowLoss {
                    sum: finite_loss(sum)?,
                    count,
                });
            }
        }
        Ok(rows)
    }

    /// Per-row sums of the cross entropy of a validated chunk (ignored
    /// positions contribute 0).
    fn row_loss_sums(&self, chunk: &Batch) -> Result<Vec<f64>> {
        let (tokens, labels) = inputs::tensors(chunk, self.tch_device)?;
        let seq = self.check_tokens(&tokens)?;
        let vocab = self.config.vocab_size as i64;
        let predicted = self.forward(&tokens, seq - 1)?.f_reshape([-1, vocab])?;
        let each = predicted.f_cross_entropy_loss::<Tensor>(
            &labels.f_reshape([-1])?,
            None,
            Reduction::None,
            IGNORE,
            0.0,
        )?;
        let sums = each
            .f_reshape([chunk.rows as i64, seq - 1])?
            .f_sum_dim_intlist(1, false, Kind::Double)?
            .f_to_device(tch::Device::Cpu)?;
        Ok(Vec::<f64>::try_from(&sums)?)
    }
}

/// One row's share of a loss: the summed cross entropy (nats) over the
/// positions it predicts, and how many there are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowLoss {
    /// Sum of the next-token cross entropy over the row's predicted positions.
    pub sum: f64,
    /// Number of predicted positions.
    pub count: usize,
}

/// `loss` if finite, else [`Error::NonFinite`].
fn finite_loss(loss: f64) -> Result<f64> {
    if loss.is_finite() {
        Ok(loss)
    } else {
        Err(Error::NonFinite {
            what: "loss".into(),
            index: 0,
        })
    }
}
