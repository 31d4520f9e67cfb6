//! AdamW (decoupled weight decay), as `torch.optim.AdamW` computes it.

use tch::Tensor;

use crate::error::Result;

/// Hyper-parameters of one update.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hyper {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

/// First and second moment estimates per parameter.
pub(crate) struct AdamW {
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Whether weight decay applies (matrices yes, RMSNorm gains no).
    decay: Vec<bool>,
    steps: u64,
}

impl AdamW {
    pub fn new(params: &[Tensor]) -> Result<AdamW> {
        let zeros = || -> Result<Vec<Tensor>> {
            params
                .iter()
                .map(|p| Ok(p.f_zeros_like()?.set_requires_grad(false)))
                .collect()
        };
        Ok(AdamW {
            m: zeros()?,
            v: zeros()?,
            decay: params.iter().map(|p| p.dim() >= 2).collect(),
            steps: 0,
        })
    }

    /// Updates `params` from their gradients (which must be defined).
    pub fn step(&mut self, params: &mut [Tensor], h: Hyper) -> Result<()> {
        self.steps += 1;
        let t = self.steps as f64;
        let bias1 = 1.0 - h.beta1.powf(t);
        let bias2_sqrt = (1.0 - h.beta2.powf(t)).sqrt();
        tch::no_grad(|| -> Result<()> {
            for (i, p) in params.iter_mut().enumerate() {
                let g = p.f_grad()?;
                if !g.defined() {
                    continue;
                }
                let (m, v) = (&mut self.m[i], &mut self.v[i]);
                let _ = m.f_lerp_(&g, 1.0 - h.beta1)?;
                let _ = v.f_lerp_(&g.f_square()?, 1.0 - h.beta2)?;
                if self.decay[i] && h.weight_decay != 0.0 {
                    let _ = p.f_mul_scalar_(1.0 - h.lr * h.weight_decay)?;
                }
                let denom = v.f_sqrt()?.f_div_scalar(bias2_sqrt)?.f_add_scalar(h.eps)?;
                let _ = p.f_addcdiv_(&m.f_mul_scalar(-h.lr / bias1)?, &denom)?;
            }
            Ok(())
        })
    }

    /// The first and second moments, one tensor per parameter.
    pub fn moments(&self) -> (&[Tensor], &[Tensor]) {
        (&self.m, &self.v)
    }

    /// The moments, mutably (to restore saved ones), and the step count.
    pub fn moments_mut(&mut self) -> (&mut [Tensor], &mut [Tensor], &mut u64) {
        (&mut self.m, &mut self.v, &mut self.steps)
    }

    /// Bytes of optimizer state (two f32 moments per parameter).
    pub fn state_bytes(&self) -> u64 {
        self.m
            .iter()
            .chain(&self.v)
            .map(|t| t.numel() as u64 * 4)
            .sum()
    }
}
