//! The parameter layout: HF LLaMA checkpoint names and shapes, in module order.

use super::config::Config;

/// A parameter's name (an HF checkpoint key) and shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ParamInfo {
    /// The HF key, e.g. `model.layers.0.self_attn.q_proj.weight`.
    pub name: String,
    /// The shape; linear weights are `[out_features, in_features]` as in PyTorch.
    pub shape: Vec<usize>,
}

impl ParamInfo {
    /// Number of elements (saturating; configurations are capped far below).
    pub fn numel(&self) -> u64 {
        self.shape
            .iter()
            .fold(1u64, |n, &d| n.saturating_mul(d as u64))
    }
}

/// What a parameter does, which decides its initialisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The token embedding (and a tied output head).
    Embedding,
    /// A projection that reads from the residual stream.
    Projection,
    /// A projection that writes into the residual stream (`o_proj`, `down_proj`).
    ResidualOutput,
    /// An RMSNorm gain.
    Norm,
    /// The untied output head.
    Head,
}

/// A parameter's place in the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParamSpec {
    pub info: ParamInfo,
    pub role: Role,
}

/// Indices into the layout of one decoder layer's parameters.
pub(crate) const PER_LAYER: usize = 9;
/// Offsets of each layer parameter within its group of [`PER_LAYER`].
pub(crate) mod slot {
    pub const INPUT_NORM: usize = 0;
    pub const Q: usize = 1;
    pub const K: usize = 2;
    pub const V: usize = 3;
    pub const O: usize = 4;
    pub const POST_NORM: usize = 5;
    pub const GATE: usize = 6;
    pub const UP: usize = 7;
    pub const DOWN: usize = 8;
}

/// The model's parameters in module order: `model.embed_tokens.weight`, then
/// per layer `input_layernorm`, `q/k/v/o_proj`, `post_attention_layernorm`,
/// `gate/up/down_proj`, then `model.norm.weight` and (untied only)
/// `lm_head.weight`. Index `1 + PER_LAYER * layer + slot` is a layer's parameter.
pub(crate) fn layout(config: &Config) -> Vec<ParamSpec> {
    let hidden = config.hidden_size;
    let q_width = config
        .num_attention_heads
        .saturating_mul(config.head_width());
    let kv_width = config.kv_heads().saturating_mul(config.head_width());
    let mlp = config.intermediate_size;
    let mut out = Vec::with_capacity(3 + PER_LAYER * config.num_hidden_layers.min(4096));
    let mut push = |name: String, shape: Vec<usize>, role: Role| {
        out.push(ParamSpec {
            info: ParamInfo { name, shape },
            role,
        })
    };
    push(
        "model.embed_tokens.weight".into(),
        vec![config.vocab_size, hidden],
        Role::Embedding,
    );
    for i in 0..config.num_hidden_layers {
        let p = format!("model.layers.{i}");
        push(
            format!("{p}.input_layernorm.weight"),
            vec![hidden],
            Role::Norm,
        );
        push(
            format!("{p}.self_attn.q_proj.weight"),
            vec![q_width, hidden],
            Role::Projection,
        );
        push(
            format!("{p}.self_attn.k_proj.weight"),
            vec![kv_width, hidden],
            Role::Projection,
        );
        push(
            format!("{p}.self_attn.v_proj.weight"),
            vec![kv_width, hidden],
            Role::Projection,
        );
        push(
            format!("{p}.self_attn.o_proj.weight"),
            vec![hidden, q_width],
            Role::ResidualOutput,
        );
        push(
            format!("{p}.post_attention_layernorm.weight"),
            vec![hidden],
            Role::Norm,
        );
        push(
            format!("{p}.mlp.gate_proj.weight"),
            vec![mlp, hidden],
            Role::Projection,
        );
        push(
            format!("{p}.mlp.up_proj.weight"),
            vec![mlp, hidden],
            Role::Projection,
        );
        push(
            format!("{p}.mlp.down_proj.weight"),
            vec![hidden, mlp],
            Role::ResidualOutput,
        );
    }
    push("model.norm.weight".into(), vec![hidden], Role::Norm);
    if !config.tie_word_embeddings {
        push(
            "lm_head.weight".into(),
            vec![config.vocab_size, hidden],
            Role::Head,
        );
    }
    out
}
