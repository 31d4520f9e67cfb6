//! Saving and loading the model as safetensors (and HF model directories).

use std::path::Path;

use super::checkpoint_file::Checkpoint;
use super::config::Config;
use super::device::Device;
use super::host;
use super::safetensors::{self, Outgoing};
use super::transformer::Model;
use crate::error::{Error, Result};

/// The weights file of an HF model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The configuration file of an HF model directory.
pub const CONFIG_FILE: &str = "config.json";

impl Model {
    /// Writes the parameters as a safetensors file (f32, sorted by name,
    /// `{"format": "pt"}` metadata), atomically. With tied embeddings there is
    /// no `lm_head.weight`, as in HF checkpoints.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let order = self.sorted_indices();
        let outgoing: Vec<Outgoing<'_>> = order
            .iter()
            .map(|&i| Outgoing {
                name: &self.specs[i].info.name,
                shape: &self.specs[i].info.shape,
            })
            .collect();
        let header = safetensors::header_bytes(&outgoing)?;
        crate::util::atomic::write_atomic_with(path, |w| {
            safetensors::put(w, path, &header)?;
            for &i in &order {
                host::read(&self.tensors[i], |values| {
                    safetensors::put(w, path, host::f32_bytes(values))
                })??;
            }
            Ok(())
        })
    }

    /// Loads a safetensors checkpoint for `config` onto `device`.
    ///
    /// The file is validated before any data is read (see
    /// [`Checkpoint::open`]), and must hold exactly the parameters `config`
    /// describes, with the same shapes; F32, F16 and BF16 data are accepted
    /// and held as f32. Old HF `rotary_emb.inv_freq` buffers are skipped.
    /// Values must be finite.
    pub fn load(path: impl AsRef<Path>, config: Config, device: Device) -> Result<Model> {
        let checkpoint = Checkpoint::open(path, &config)?;
        Model::build(config, device, |spec, values| {
            checkpoint.read_parameter(&spec.info.name, values)
        })
    }

    /// Writes an HF model directory: `config.json` and `model.safetensors`
    /// (each atomically), loadable by `LlamaForCausalLM.from_pretrained`.
    pub fn save_pretrained(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        self.save(dir.join(WEIGHTS_FILE))?;
        self.config.write_hf_json(dir.join(CONFIG_FILE))
    }

    /// Loads an HF model directory (`config.json` and a single
    /// `model.safetensors`; sharded checkpoints are not read).
    pub fn from_pretrained(dir: impl AsRef<Path>, device: Device) -> Result<Model> {
        let dir = dir.as_ref();
        let config = Config::from_hf_json(dir.join(CONFIG_FILE))?;
        Model::load(dir.join(WEIGHTS_FILE), config, device)
    }

    /// Parameter indices sorted by name (bytewise).
    pub(crate) fn sorted_indices(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.specs.len()).collect();
        order.sort_by(|&a, &b| self.specs[a].info.name.cmp(&self.specs[b].info.name));
        order
    }
}
