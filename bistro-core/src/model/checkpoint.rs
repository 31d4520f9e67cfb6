//! Saving and loading the model as safetensors (and HF model directories).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::config::Config;
use super::device::Device;
use super::safetensors::{self, Dtype, Entry, Outgoing};
use super::transformer::Model;
use super::{host, io};
use crate::error::{Error, Result};

const INPUT: &str = "checkpoint";

/// The weights file of an HF model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The configuration file of an HF model directory.
pub const CONFIG_FILE: &str = "config.json";

/// Buffers kept by older `transformers` versions in checkpoints; recomputed
/// here, so they are skipped when present.
fn is_ignored_buffer(name: &str) -> bool {
    name.ends_with(".rotary_emb.inv_freq")
}

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
        io::write_atomic(path, |w| {
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
    /// `model::safetensors`), and must hold exactly the parameters `config`
    /// describes, with the same shapes; F32, F16 and BF16 data are accepted
    /// and held as f32. Old HF `rotary_emb.inv_freq` buffers are skipped.
    /// Values must be finite.
    pub fn load(path: impl AsRef<Path>, config: Config, device: Device) -> Result<Model> {
        let path = path.as_ref();
        config.validate()?;
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let header = safetensors::read_header(&mut file, file_len, path)?;
        let entries = match_layout(&header.entries, &config)?;
        Model::build(config, device, |spec, values| {
            // match_layout found an entry for every spec.
            let entry = entries.get(spec.info.name.as_str()).ok_or_else(|| {
                Error::Model(format!("internal: no entry for {}", spec.info.name))
            })?;
            read_tensor(&mut file, path, header.data_start, entry, values)
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

/// Checks that the file's tensors are exactly `config`'s parameters; returns
/// the entries by name.
fn match_layout<'a>(entries: &'a [Entry], config: &Config) -> Result<HashMap<&'a str, &'a Entry>> {
    let by_name: HashMap<&str, &Entry> = entries.iter().map(|e| (e.name.as_str(), e)).collect();
    let specs = super::params::layout(config);
    for spec in &specs {
        let Some(entry) = by_name.get(spec.info.name.as_str()) else {
            return Err(Error::corrupt(
                INPUT,
                spec.info.name.clone(),
                "missing: the config's model has this parameter, the checkpoint does not",
            ));
        };
        if entry.shape != spec.info.shape {
            return Err(Error::corrupt(
                INPUT,
                spec.info.name.clone(),
                format!(
                    "shape {:?} in the checkpoint, {:?} in the config's model",
                    entry.shape, spec.info.shape
                ),
            ));
        }
    }
    let known: std::collections::HashSet<&str> =
        specs.iter().map(|s| s.info.name.as_str()).collect();
    for e in entries {
        if known.contains(e.name.as_str()) || is_ignored_buffer(&e.name) {
            continue;
        }
        let reason = if e.name == "lm_head.weight" && config.tie_word_embeddings {
            "the config ties embeddings (tie_word_embeddings), so the checkpoint must not \
             have an lm_head"
        } else {
            "not a parameter of the config's model"
        };
        return Err(Error::corrupt(INPUT, e.name.clone(), reason));
    }
    Ok(by_name)
}

/// Reads one tensor's data into `values` (f32), converting F16/BF16, and
/// checks that every value is finite.
fn read_tensor(
    file: &mut File,
    path: &Path,
    data_start: u64,
    entry: &Entry,
    values: &mut [f32],
) -> Result<()> {
    let offset = data_start
        .checked_add(entry.begin)
        .ok_or_else(|| Error::corrupt(INPUT, entry.name.clone(), "offset overflows"))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| Error::io(path, e))?;
    let eof = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Truncated {
                input: INPUT,
                what: format!("tensor {} (file shrank while reading)", entry.name),
                needed: entry.end - entry.begin,
                available: 0,
            }
        } else {
            Error::io(path, e)
        }
    };
    match entry.dtype {
        Dtype::F32 => file.read_exact(host::f32_bytes_mut(values)).map_err(eof)?,
        Dtype::F16 | Dtype::BF16 => {
            let mut raw = vec![0u8; values.len() * 2];
            file.read_exact(&mut raw).map_err(eof)?;
            for (v, b) in values.iter_mut().zip(raw.chunks_exact(2)) {
                let bits = u16::from_le_bytes([b[0], b[1]]);
                *v = if entry.dtype == Dtype::F16 {
                    half::f16::from_bits(bits).to_f32()
                } else {
                    half::bf16::from_bits(bits).to_f32()
                };
            }
        }
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: format!("checkpoint tensor {}", entry.name),
            index: i as u64,
        });
    }
    Ok(())
}
