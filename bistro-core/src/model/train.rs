//! Training steps: AdamW, gradient clipping, warmup + cosine schedule.

use tch::Tensor;

use super::adamw::{AdamW, Hyper};
use super::inputs;
use super::schedule::Schedule;
use super::transformer::Model;
use crate::data::Batch;
use crate::error::{Error, Result};

/// Optimizer and schedule settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Peak learning rate (reached at the end of warmup).
    pub learning_rate: f64,
    /// Learning rate at the end of the cosine decay.
    pub min_learning_rate: f64,
    /// Linear warmup steps.
    pub warmup_steps: u64,
    /// Steps until the cosine reaches `min_learning_rate`.
    pub total_steps: u64,
    /// AdamW's decoupled weight decay (matrices only, not RMSNorm gains).
    pub weight_decay: f64,
    /// AdamW's β₁.
    pub beta1: f64,
    /// AdamW's β₂.
    pub beta2: f64,
    /// AdamW's ε.
    pub eps: f64,
    /// Largest global gradient L2 norm; larger gradients are scaled down to
    /// it. 0 disables clipping.
    pub grad_clip: f64,
    /// Rows per forward/backward pass (gradients accumulate over a batch's
    /// micro-batches, so the result does not depend on it). `None` keeps a
    /// micro-batch's logits within the model's budget
    /// ([`Model::set_logits_budget`]).
    pub micro_batch_rows: Option<usize>,
    /// Climb the loss instead of descending it (gradient ascent). For
    /// adversarial testing — the local network's poisoner trains this way —
    /// and unlearning experiments; `false` for ordinary training.
    pub maximize: bool,
}

impl Default for TrainConfig {
    /// Conventional LLaMA-style settings: peak 3e-4, floor 3e-5, 100 warmup
    /// steps of 10 000, weight decay 0.1, β = (0.9, 0.95), ε = 1e-8, clip 1.0.
    fn default() -> Self {
        TrainConfig {
            learning_rate: 3e-4,
            min_learning_rate: 3e-5,
            warmup_steps: 100,
            total_steps: 10_000,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            grad_clip: 1.0,
            micro_batch_rows: None,
            maximize: false,
        }
    }
}

impl TrainConfig {
    /// Checks the settings are usable numbers.
    pub fn validate(&self) -> Result<()> {
        let finite_non_negative = [
            ("learning_rate", self.learning_rate),
            ("min_learning_rate", self.min_learning_rate),
            ("weight_decay", self.weight_decay),
            ("grad_clip", self.grad_clip),
        ];
        for (name, v) in finite_non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::InvalidArgument(format!(
                    "train config {name} must be finite and non-negative, got {v}"
                )));
            }
        }
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::InvalidArgument(format!(
                    "train config {name} must be in [0, 1), got {b}"
                )));
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(Error::InvalidArgument(format!(
                "train config eps must be positive, got {}",
                self.eps
            )));
        }
        if self.micro_batch_rows == Some(0) {
            return Err(Error::InvalidArgument(
                "train config micro_batch_rows must be positive".into(),
            ));
        }
        Ok(())
    }

    /// The learning-rate schedule these settings describe.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            peak: self.learning_rate,
            floor: self.min_learning_rate,
            warmup: self.warmup_steps,
            total: self.total_steps,
        }
    }
}

/// What one training step did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    /// Mean cross entropy over the batch, before the update.
    pub loss: f64,
    /// Global gradient L2 norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub learning_rate: f64,
}

/// Trains a [`Model`] it owns with AdamW.
pub struct Trainer {
    pub(super) model: Model,
    config: TrainConfig,
    pub(super) optimizer: AdamW,
    pub(super) steps: u64,
}

impl Trainer {
    /// A trainer at step 0 with zero moment estimates.
    pub fn new(model: Model, config: TrainConfig) -> Result<Trainer> {
        config.validate()?;
        let optimizer = AdamW::new(&model.tensors)?;
        Ok(Trainer {
            model,
            config,
            optimizer,
            steps: 0,
        })
    }

    /// The model being trained.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model, mutably (e.g. to apply a merged delta between steps).
    pub fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    /// Gives the model back.
    pub fn into_model(self) -> Model {
        self.model
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Bytes of optimizer state on the model's device.
    pub fn optimizer_bytes(&self) -> u64 {
        self.optimizer.state_bytes()
    }

    /// One optimizer step on `batch`: forward and backward over its
    /// micro-batches (gradients of the mean loss over all its predicted
    /// positions), global-norm clipping, an AdamW update at the schedule's
    /// learning rate. A non-finite loss or gradient changes no parameter and
    /// is an error.
    pub fn train_step(&mut self, batch: &Batch) -> Result<StepReport> {
        inputs::validate(batch, &self.model.config)?;
        let result = tch::with_grad(|| self.accumulate(batch));
        let (loss, grad_norm) = match result {
            Ok(v) => v,
            Err(e) => {
                self.zero_grads()?;
                return Err(e);
            }
        };
        if self.config.grad_clip > 0.0 && grad_norm > self.config.grad_clip {
            let scale = self.config.grad_clip / (grad_norm + 1e-6);
            tch::no_grad(|| -> Result<()> {
                for p in &self.model.tensors {
                    let mut g = p.f_grad()?;
                    if g.defined() {
                        let _ = g.f_mul_scalar_(scale)?;
                    }
                }
                Ok(())
            })?;
        }
        let learning_rate = self.config.schedule().at(self.steps);
        let hyper = Hyper {
            lr: learning_rate,
            beta1: self.config.beta1,
            beta2: self.config.beta2,
            eps: self.config.eps,
            weight_decay: self.config.weight_decay,
        };
        let stepped = self.optimizer.step(&mut self.model.tensors, hyper);
        self.zero_grads()?;
        stepped?;
        self.steps += 1;
        Ok(StepReport {
            loss,
            grad_norm,
            learning_rate,
        })
    }

    /// Runs forward and backward over the micro-batches; returns the mean
    /// loss and the global gradient norm, both finite.
    fn accumulate(&mut self, batch: &Batch) -> Result<(f64, f64)> {
        let total = batch.target_count();
        let step = self
            .config
            .micro_batch_rows
            .unwrap_or_else(|| self.model.rows_per_chunk(batch.seq_len));
        let mut loss_sum = 0.0;
        let mut start = 0;
        while start < batch.rows {
            let chunk = batch.rows_range(start, start.saturating_add(step));
            start = start.saturating_add(step);
            if chunk.target_count() == 0 {
                continue;
            }
            let (sum, _) = self.model.loss_sum(&chunk)?;
            let sign = if self.config.maximize { -1.0 } else { 1.0 };
            sum.f_div_scalar(sign * total as f64)?.f_backward()?;
            loss_sum += sum.f_double_value(&[])?;
        }
        let loss = loss_sum / total as f64;
        if !loss.is_finite() {
            return Err(Error::NonFinite {
                what: "training loss".into(),
                index: 0,
            });
        }
        let grad_norm = self.grad_norm()?;
        if !grad_norm.is_finite() {
            return Err(Error::NonFinite {
                what: "gradient norm".into(),
                index: 0,
            });
        }
        Ok((loss, grad_norm))
    }

    /// The L2 norm of all gradients together.
    fn grad_norm(&self) -> Result<f64> {
        tch::no_grad(|| {
            let mut squares = Vec::with_capacity(self.model.tensors.len());
            for p in &self.model.tensors {
                let g = p.f_grad()?;
                if g.defined() {
                    squares.push(g.f_square()?.f_sum(tch::Kind::Float)?);
                }
            }
            if squares.is_empty() {
                return Ok(0.0);
            }
            Ok(Tensor::f_stack(&squares, 0)?
                .f_sum(tch::Kind::Double)?
                .f_double_value(&[])?
                .sqrt())
        })
    }

    fn zero_grads(&mut self) -> Result<()> {
        for p in &self.model.tensors {
            let mut g = p.f_grad()?;
            if g.defined() {
                let _ = tch::no_grad(|| g.f_zero_())?;
            }
        }
        Ok(())
    }
}
