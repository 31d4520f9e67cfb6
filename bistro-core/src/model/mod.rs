//! The model: a decoder-only LLaMA-family transformer on libtorch (`tch`).
//!
//! - [`Config`]: the shape, with HF `config.json` field names; presets
//!   `tiny`, `150m`, `1b` ([`Config::preset`]).
//! - [`Model`]: f32 parameters named as in an HF LLaMA checkpoint, on a
//!   [`Device`]; deterministic initialisation ([`Model::new`]), safetensors
//!   [`Model::save`] / [`Model::load`], a content digest [`Model::revision`],
//!   the evaluation [`Model::loss`] on a [`Batch`](crate::data::Batch).
//! - [`Trainer`]: AdamW steps with clipping and a warmup + cosine schedule.
//! - [`outer`]: the validator's outer optimizer (merge rule and its
//!   momentum state), turning merged deltas into the next master.
//! - [`delta`]: the bridge to the [`codec`](crate::codec): build a delta from
//!   a trained model and the master, apply one in place, undo it exactly.
//!
//! Needs libtorch 2.13.0: `scripts/setup-libtorch.sh` provisions it (see
//! `docs/model.md`).
#![doc = include_str!("../../../docs/model.md")]

#[cfg(not(target_endian = "little"))]
compile_error!("the torch model reads and writes little-endian f32 data in place");

// Everything but the configuration needs libtorch (feature `torch`).
#[cfg(feature = "torch")]
mod adamw;
#[cfg(feature = "torch")]
mod checkpoint;
#[cfg(feature = "torch")]
mod checkpoint_file;
mod config;
#[cfg(feature = "torch")]
pub mod delta;
#[cfg(feature = "torch")]
mod device;
#[cfg(feature = "torch")]
mod forward;
#[cfg(feature = "torch")]
mod host;
#[cfg(feature = "torch")]
mod init;
#[cfg(feature = "torch")]
mod inputs;
#[cfg(feature = "torch")]
pub mod outer;
#[cfg(feature = "torch")]
mod params;
#[cfg(feature = "torch")]
mod revision;
#[cfg(feature = "torch")]
mod rope;
#[cfg(feature = "torch")]
mod safetensors;
#[cfg(feature = "torch")]
mod schedule;
#[cfg(feature = "torch")]
mod train;
#[cfg(feature = "torch")]
mod train_state;
#[cfg(feature = "torch")]
mod transformer;

#[cfg(feature = "torch")]
pub use checkpoint::{CONFIG_FILE, WEIGHTS_FILE};
#[cfg(feature = "torch")]
pub use checkpoint_file::Checkpoint;
pub use config::{
    Config, GPT2_EOS, GPT2_VOCAB, MAX_CONFIG_BYTES, MAX_HIDDEN, MAX_LAYERS, MAX_PARAMETERS,
    MAX_POSITIONS, MAX_VOCAB, PRESETS,
};
#[cfg(feature = "torch")]
pub use device::{Device, Precision};
#[cfg(feature = "torch")]
pub use params::ParamInfo;
#[cfg(feature = "torch")]
pub use revision::REVISION_DOMAIN;
#[cfg(feature = "torch")]
pub use safetensors::{MAX_HEADER_BYTES, MAX_RANK, MAX_TENSORS};
#[cfg(feature = "torch")]
pub use schedule::Schedule;
#[cfg(feature = "torch")]
pub use train::{StepReport, TrainConfig, Trainer};
#[cfg(feature = "torch")]
pub use transformer::{LOGITS_BUDGET_BYTES, Model, RowLoss};

#[cfg(feature = "torch")]
/// Sets the number of threads libtorch uses for the operations of the
/// calling thread (OpenMP settings are per thread: call it in each thread
/// that runs the model). One thread per model is best when several models
/// share a machine's cores.
pub fn set_threads(n: usize) {
    tch::set_num_threads(i32::try_from(n.max(1)).unwrap_or(i32::MAX));
}

#[cfg(feature = "torch")]
impl From<tch::TchError> for crate::error::Error {
    fn from(e: tch::TchError) -> Self {
        crate::error::Error::Model(format!("libtorch: {e}"))
    }
}
