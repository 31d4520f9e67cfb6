//! The model's shape: a LLaMA configuration with HF `config.json` field names.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest vocabulary accepted (Llama 3's is 128 256).
pub const MAX_VOCAB: usize = 1 << 20;
/// Largest hidden size accepted.
pub const MAX_HIDDEN: usize = 1 << 16;
/// Largest number of layers accepted.
pub const MAX_LAYERS: usize = 1024;
/// Largest context length accepted.
pub const MAX_POSITIONS: usize = 1 << 20;
/// Largest number of parameters accepted (a 100B model does not fit a validator).
pub const MAX_PARAMETERS: u64 = 100_000_000_000;
/// Largest `config.json` read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// GPT-2's vocabulary size: the sample shards are tokenized with GPT-2's BPE.
pub const GPT2_VOCAB: usize = 50257;
/// GPT-2's end-of-text token, used as BOS, EOS and padding.
pub const GPT2_EOS: u32 = 50256;

/// A decoder-only LLaMA-family transformer's configuration.
///
/// Field names are those of HF `transformers`' `LlamaConfig`, so the struct
/// reads and writes a checkpoint's `config.json` ([`Config::from_hf_json`],
/// [`Config::write_hf_json`]). Fields HF writes that do not change the
/// computation (`architectures`, `use_cache`, ...) are written and ignored on
/// reading; fields that would change it to something this model does not
/// implement (`rope_scaling`, biases, another activation) are rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Number of token ids.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP's hidden layer.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention when fewer than the
    /// query heads; HF's default when absent is `num_attention_heads`).
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Per-head width; HF's default when absent is `hidden_size / num_attention_heads`.
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// Longest sequence the model is meant for (the rotary tables' length).
    pub max_position_embeddings: usize,
    /// RMSNorm's epsilon.
    pub rms_norm_eps: f64,
    /// Rotary embeddings' base. Newer `transformers` write it inside
    /// `rope_parameters`; both forms are read.
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// Whether `lm_head` shares the token embedding's weight (then the
    /// checkpoint has no `lm_head.weight`, as in HF).
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Standard deviation of the initial weights.
    #[serde(default = "default_initializer_range")]
    pub initializer_range: f64,
    /// Activation of the MLP; only `"silu"` (SwiGLU) is implemented.
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    /// Beginning-of-sequence token id.
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token id.
    #[serde(default)]
    pub eos_token_id: Option<u32>,
    /// Padding token id.
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    /// Biases on the attention projections: must be false.
    #[serde(default)]
    pub attention_bias: bool,
    /// Biases on the MLP projections: must be false.
    #[serde(default)]
    pub mlp_bias: bool,
    /// Attention dropout: must be 0 (training here is dropout-free).
    #[serde(default)]
    pub attention_dropout: f64,
    /// Rotary scaling (Llama 3.1 style): must be absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<serde_json::Value>,
    /// Newer `transformers`' rotary parameters (`rope_type`, `rope_theta`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_parameters: Option<serde_json::Value>,
    /// HF's model type: `"llama"`.
    #[serde(default = "default_model_type")]
    pub model_type: String,
    /// HF's class list: `["LlamaForCausalLM"]`.
    #[serde(default = "default_architectures")]
    pub architectures: Vec<String>,
    /// The dtype the weights are stored in; bistro writes `"float32"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torch_dtype: Option<String>,
}

fn default_initializer_range() -> f64 {
    0.02
}
fn default_hidden_act() -> String {
    "silu".into()
}
fn default_model_type() -> String {
    "llama".into()
}
fn default_architectures() -> Vec<String> {
    vec!["LlamaForCausalLM".into()]
}

/// The names [`Config::preset`] knows.
pub const PRESETS: [&str; 3] = ["tiny", "150m", "1b"];

impl Config {
    /// A named configuration:
    ///
    /// | name | layers | hidden | heads (kv) | MLP | context | parameters |
    /// |---|---|---|---|---|---|---|
    /// | `tiny` | 2 | 64 | 4 (2) | 176 | 256 | 3.31 M (3.22 M of them the embedding) |
    /// | `150m` | 16 | 768 | 12 (12) | 2048 | 2048 | 151.9 M |
    /// | `1b` | 16 | 2048 | 32 (8) | 8192 | 2048 | 1.076 B |
    ///
    /// All use GPT-2's vocabulary (50 257, the sample shards' tokenizer) with
    /// tied embeddings and token 50 256 as BOS/EOS/padding. `tiny` trains
    /// visibly on a CPU in seconds and exercises grouped-query attention.
    pub fn preset(name: &str) -> Result<Config> {
        let (hidden, layers, heads, kv_heads, mlp, context, theta) = match name {
            "tiny" => (64, 2, 4, 2, 176, 256, 10_000.0),
            "150m" => (768, 16, 12, 12, 2048, 2048, 10_000.0),
            "1b" => (2048, 16, 32, 8, 8192, 2048, 500_000.0),
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "unknown model preset {name:?} (known: {})",
                    PRESETS.join(", ")
                )));
            }
        };
        let config = Config {
            vocab_size: GPT2_VOCAB,
            hidden_size: hidden,
            intermediate_size: mlp,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: Some(kv_heads),
            head_dim: Some(hidden / heads),
            max_position_embeddings: context,
            rms_norm_eps: 1e-5,
            rope_theta: Some(theta),
            tie_word_embeddings: true,
            initializer_range: 0.02,
            hidden_act: default_hidden_act(),
            bos_token_id: Some(GPT2_EOS),
            eos_token_id: Some(GPT2_EOS),
            pad_token_id: Some(GPT2_EOS),
            attention_bias: false,
            mlp_bias: false,
            attention_dropout: 0.0,
            rope_scaling: None,
            rope_parameters: None,
            model_type: default_model_type(),
            architectures: default_architectures(),
            torch_dtype: Some("float32".into()),
        };
        config.validate()?;
        Ok(config)
    }

    /// Number of key/value heads (HF's default applied).
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Per-head width (HF's default applied).
    pub fn head_width(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// The rotary base (from `rope_theta` or `rope_parameters.rope_theta`;
    /// HF's default 10 000 when neither is present).
    pub fn rope_base(&self) -> f64 {
        self.rope_theta
            .or_else(|| {
                self.rope_parameters
                    .as_ref()
                    .and_then(|p| p.get("rope_theta"))
                    .and_then(|t| t.as_f64())
            })
            .unwrap_or(10_000.0)
    }

    /// Checks that the configuration describes a model this crate implements,
    /// within the named caps.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidArgument(format!("model config: {what}")));
        let positive = [
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("hidden_size", self.hidden_size, MAX_HIDDEN),
            ("intermediate_size", self.intermediate_size, 4 * MAX_HIDDEN),
            ("num_hidden_layers", self.num_hidden_layers, MAX_LAYERS),
            ("num_attention_heads", self.num_attention_heads, MAX_HIDDEN),
            ("num_key_value_heads", self.kv_heads(), MAX_HIDDEN),
            ("head_dim", self.head_width(), MAX_HIDDEN),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                MAX_POSITIONS,
            ),
        ];
        for (name, value, cap) in positive {
            if value == 0 {
                return bad(format!("{name} must be positive"));
            }
            if value > cap {
                return Err(Error::limit(
                    format!("model config {name}"),
                    cap as u64,
                    value as u64,
                ));
            }
        }
        if !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            return bad(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads,
                self.kv_heads()
            ));
        }
        if !self.head_width().is_multiple_of(2) {
            return bad(format!(
                "head_dim {} must be even (rotary embeddings)",
                self.head_width()
            ));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return bad(format!(
                "rms_norm_eps {} must be positive",
                self.rms_norm_eps
            ));
        }
        let theta = self.rope_base();
        if !(theta.is_finite() && theta > 1.0) {
            return bad(format!(
                "rope_theta {theta} must be a finite number above 1"
            ));
        }
        if !(self.initializer_range.is_finite() && self.initializer_range >= 0.0) {
            return bad(format!(
                "initializer_range {} must be finite and non-negative",
                self.initializer_range
            ));
        }
        if self.hidden_act != "silu" {
            return bad(format!(
                "hidden_act {:?} is not implemented (only \"silu\")",
                self.hidden_act
            ));
        }
        if self.attention_bias || self.mlp_bias {
            return bad("attention_bias and mlp_bias are not implemented".into());
        }
        if self.attention_dropout != 0.0 {
            return bad("attention_dropout must be 0".into());
        }
        if self.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return bad("rope_scaling is not implemented".into());
        }
        if let Some(kind) = self
            .rope_parameters
            .as_ref()
            .and_then(|p| p.get("rope_type"))
            .and_then(|t| t.as_str())
            && kind != "default"
        {
            return bad(format!("rope_type {kind:?} is not implemented"));
        }
        if self.model_type != "llama" {
            return bad(format!("model_type {:?} is not \"llama\"", self.model_type));
        }
        let count = self.parameter_count();
        if count > MAX_PARAMETERS {
            return Err(Error::limit("model parameters", MAX_PARAMETERS, count));
        }
        Ok(())
    }

    /// Number of parameters (elements), counting a tied embedding once.
    /// Saturates instead of overflowing (then [`Config::validate`] rejects it).
    pub fn parameter_count(&self) -> u64 {
        let m = |a: usize, b: usize| (a as u64).saturating_mul(b as u64);
        let hidden = self.hidden_size;
        let q_width = self.num_attention_heads.saturating_mul(self.head_width());
        let kv_width = self.kv_heads().saturating_mul(self.head_width());
        let per_layer = (2 * hidden as u64)
            .saturating_add(m(q_width, hidden).saturating_mul(2))
            .saturating_add(m(kv_width, hidden).saturating_mul(2))
            .saturating_add(m(self.intermediate_size, hidden).saturating_mul(3));
        let embeddings = if self.tie_word_embeddings { 1 } else { 2 };
        m(self.vocab_size, hidden)
            .saturating_mul(embeddings)
            .saturating_add(per_layer.saturating_mul(self.num_hidden_layers as u64))
            .saturating_add(hidden as u64)
    }

    /// Reads an HF `config.json` and validates it.
    pub fn from_hf_json(path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        let len = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        if len > MAX_CONFIG_BYTES {
            return Err(Error::limit("config.json bytes", MAX_CONFIG_BYTES, len));
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Config::from_hf_json_bytes(&bytes)
    }

    /// Parses the bytes of an HF `config.json` and validates it.
    pub fn from_hf_json_bytes(bytes: &[u8]) -> Result<Config> {
        let config: Config = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt("config.json", e.to_string(), "not a LLaMA config"))?;
        config.validate()?;
        Ok(config)
    }

    /// The configuration as HF `config.json` text.
    pub fn to_hf_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::Model(format!("cannot serialize config: {e}")))
    }

    /// HF `generation_config.json` for this model: its special token ids
    /// (those it has), marked as taken from the model's configuration, as
    /// `transformers`' `GenerationConfig.from_model_config` writes it.
    pub fn generation_config_json(&self) -> Result<String> {
        let mut fields = serde_json::Map::new();
        fields.insert("_from_model_config".into(), true.into());
        for (name, id) in [
            ("bos_token_id", self.bos_token_id),
            ("eos_token_id", self.eos_token_id),
            ("pad_token_id", self.pad_token_id),
        ] {
            if let Some(id) = id {
                fields.insert(name.into(), id.into());
            }
        }
        serde_json::to_string_pretty(&fields)
            .map_err(|e| Error::Model(format!("cannot serialize generation config: {e}")))
    }

    /// Writes the configuration as HF `config.json`, atomically.
    pub fn write_hf_json(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut text = self.to_hf_json()?;
        text.push('\n');
        let path = path.as_ref();
        crate::util::atomic::write_atomic_with(path, |f| {
            std::io::Write::write_all(f, text.as_bytes()).map_err(|e| Error::io(path, e))
        })
    }
}
