//! Rotary position embeddings, as HF `transformers`' LLaMA computes them.
//!
//! `inv_freq[j] = 1 / theta^(2j / head_dim)` for `j < head_dim / 2`; at
//! position `t` the angles are `t · inv_freq`, repeated twice along the head
//! dimension; a query or key `x` becomes `x · cos + rotate_half(x) · sin`,
//! where `rotate_half([x1, x2]) = [-x2, x1]` splits the head dimension in
//! halves (HF's convention, not the interleaved one of Meta's original code).

use tch::{Device, Kind, Tensor};

use crate::error::Result;

/// The cosine and sine tables for every position up to the context length.
pub(crate) struct Rope {
    /// `[max_positions, head_dim]`, f32.
    cos: Tensor,
    /// `[max_positions, head_dim]`, f32.
    sin: Tensor,
}

impl Rope {
    pub fn new(head_dim: usize, max_positions: usize, theta: f64, device: Device) -> Result<Rope> {
        let half = head_dim / 2;
        let inv_freq: Vec<f32> = (0..half)
            .map(|j| (1.0 / theta.powf((2 * j) as f64 / head_dim as f64)) as f32)
            .collect();
        let inv_freq = Tensor::f_from_slice(&inv_freq)?;
        let positions = Tensor::f_arange(max_positions as i64, (Kind::Float, Device::Cpu))?;
        let angles = positions.f_outer(&inv_freq)?;
        let angles = Tensor::f_cat(&[&angles, &angles], 1)?;
        Ok(Rope {
            cos: angles.f_cos()?.f_to_device(device)?,
            sin: angles.f_sin()?.f_to_device(device)?,
        })
    }

    /// Rotates `x` of shape `[batch, heads, seq, head_dim]` (any float kind;
    /// the tables are cast to it).
    pub fn apply(&self, x: &Tensor, seq: i64) -> Result<Tensor> {
        let kind = x.kind();
        let cos = self.cos.f_narrow(0, 0, seq)?.f_to_kind(kind)?;
        let sin = self.sin.f_narrow(0, 0, seq)?.f_to_kind(kind)?;
        let half = x.size().last().copied().unwrap_or(0) / 2;
        let x1 = x.f_narrow(-1, 0, half)?;
        let x2 = x.f_narrow(-1, half, half)?;
        let rotated = Tensor::f_cat(&[&x2.f_neg()?, &x1], -1)?;
        Ok(x.f_mul(&cos)?.f_add(&rotated.f_mul(&sin)?)?)
    }
}
