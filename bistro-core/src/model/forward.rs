//! The forward pass: token ids to logits.
//!
//! Per layer, as HF `LlamaDecoderLayer`:
//! `x += o_proj(attn(rope(q_proj(n1(x))), rope(k_proj(n1(x))), v_proj(n1(x))))`,
//! `x += down_proj(silu(gate_proj(n2(x))) * up_proj(n2(x)))`; then the final
//! RMSNorm and the output head (the embedding matrix when tied). Attention is
//! libtorch's causal `scaled_dot_product_attention` (flash / memory-efficient
//! kernels where the device has them) with grouped-query heads.

use tch::{Kind, Tensor};

use super::params::{PER_LAYER, slot};
use super::rope::Rope;
use crate::error::Result;

/// The shape numbers the forward pass needs.
pub(crate) struct Dims {
    pub heads: i64,
    pub kv_heads: i64,
    pub head_dim: i64,
    pub eps: f64,
    pub tied: bool,
    pub layers: usize,
}

/// `x · wᵀ` in the compute kind.
fn linear(x: &Tensor, w: &Tensor, kind: Kind) -> Result<Tensor> {
    Ok(x.f_linear::<Tensor>(&w.f_to_kind(kind)?, None)?)
}

/// RMSNorm as HF computes it: statistics in f32, then back to `x`'s kind
/// before the gain.
fn rms_norm(x: &Tensor, gain: &Tensor, eps: f64) -> Result<Tensor> {
    let kind = x.kind();
    let xf = x.f_to_kind(Kind::Float)?;
    let var = xf
        .f_pow_tensor_scalar(2)?
        .f_mean_dim(-1, true, Kind::Float)?;
    let normed = xf.f_mul(&var.f_add_scalar(eps)?.f_rsqrt()?)?;
    Ok(normed.f_to_kind(kind)?.f_mul(&gain.f_to_kind(kind)?)?)
}

/// Logits `[batch, positions, vocab]` (f32) for token ids `[batch, seq]`
/// (i64), for the first `positions` positions (the loss needs all but the
/// last; computing only those saves the head's work and a copy).
/// `params` are the model's tensors in layout order.
pub(crate) fn logits(
    params: &[Tensor],
    rope: &Rope,
    dims: &Dims,
    tokens: &Tensor,
    kind: Kind,
    positions: i64,
) -> Result<Tensor> {
    let size = tokens.size();
    let (batch, seq) = (size[0], size[1]);
    let embed = &params[0];
    let mut x = Tensor::f_embedding(embed, tokens, -1, false, false)?.f_to_kind(kind)?;
    for layer in 0..dims.layers {
        let p = &params[1 + PER_LAYER * layer..1 + PER_LAYER * (layer + 1)];
        let h = rms_norm(&x, &p[slot::INPUT_NORM], dims.eps)?;
        let heads = |w: &Tensor, n: i64| -> Result<Tensor> {
            Ok(linear(&h, w, kind)?
                .f_view([batch, seq, n, dims.head_dim])?
                .f_transpose(1, 2)?)
        };
        let q = rope.apply(&heads(&p[slot::Q], dims.heads)?, seq)?;
        let k = rope.apply(&heads(&p[slot::K], dims.kv_heads)?, seq)?;
        let v = heads(&p[slot::V], dims.kv_heads)?;
        let attn = Tensor::f_scaled_dot_product_attention::<Tensor>(
            &q,
            &k,
            &v,
            None,
            0.0,
            true,
            None,
            dims.kv_heads != dims.heads,
        )?;
        let attn = attn
            .f_transpose(1, 2)?
            .f_reshape([batch, seq, dims.heads * dims.head_dim])?;
        x = x.f_add(&linear(&attn, &p[slot::O], kind)?)?;
        let h = rms_norm(&x, &p[slot::POST_NORM], dims.eps)?;
        let gate = linear(&h, &p[slot::GATE], kind)?.f_silu()?;
        let up = linear(&h, &p[slot::UP], kind)?;
        x = x.f_add(&linear(&gate.f_mul(&up)?, &p[slot::DOWN], kind)?)?;
    }
    let norm = &params[1 + PER_LAYER * dims.layers];
    let x = rms_norm(&x.f_narrow(1, 0, positions)?, norm, dims.eps)?;
    let head = if dims.tied {
        embed
    } else {
        &params[2 + PER_LAYER * dims.layers]
    };
    Ok(linear(&x, head, kind)?.f_to_kind(Kind::Float)?)
}
