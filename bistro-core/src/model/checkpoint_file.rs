//! [`Checkpoint`]: an open, validated safetensors file whose tensors are read
//! one at a time, on demand.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::config::Config;
use super::host;
use super::params::{self, ParamInfo};
use super::revision::RevisionHasher;
use super::safetensors::{self, Dtype, Entry};
use crate::digest::Digest;
use crate::error::{Error, Result};

const INPUT: &str = "checkpoint";

/// Elements read per chunk when streaming a tensor.
const CHUNK_ELEMENTS: usize = 1 << 20;

/// A safetensors checkpoint checked against a [`Config`] (every parameter
/// present with its shape, nothing else; see `docs/model.md`) and kept open.
/// Tensors are read on demand, so a miner can diff against the master, or a
/// validator restore dense tensors from it, without a second model in memory.
///
/// The file handle is kept: a master replaced by an atomic rename (as
/// [`Model::save`](super::Model::save) does) goes on reading the old content.
/// Cloning is cheap (the handle is shared).
#[derive(Clone)]
pub struct Checkpoint {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    file: Mutex<File>,
    data_start: u64,
    /// The entries of the config's parameters, in layout order.
    entries: Vec<(ParamInfo, Entry)>,
    index: HashMap<String, usize>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("path", &self.inner.path)
            .field("tensors", &self.inner.entries.len())
            .finish()
    }
}

/// Buffers kept by older `transformers` versions in checkpoints; recomputed
/// by the model, so they are skipped when present.
fn is_ignored_buffer(name: &str) -> bool {
    name.ends_with(".rotary_emb.inv_freq")
}

impl Checkpoint {
    /// Opens `path` and validates its header against `config` (no tensor
    /// data is read yet).
    pub fn open(path: impl AsRef<Path>, config: &Config) -> Result<Checkpoint> {
        let path = path.as_ref();
        config.validate()?;
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let header = safetensors::read_header(&mut file, file_len, path)?;
        let entries = match_layout(header.entries, config)?;
        let index = entries
            .iter()
            .enumerate()
            .map(|(i, (info, _))| (info.name.clone(), i))
            .collect();
        Ok(Checkpoint {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                file: Mutex::new(file),
                data_start: header.data_start,
                entries,
                index,
            }),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The parameters, in the model's module order.
    pub fn parameters(&self) -> Vec<ParamInfo> {
        self.inner.entries.iter().map(|(i, _)| i.clone()).collect()
    }

    /// Reads parameter `name` into `out` (its element count), converting
    /// F16/BF16 to f32; every value must be finite.
    pub fn read_parameter(&self, name: &str, out: &mut [f32]) -> Result<()> {
        let (info, entry) = self.entry(name)?;
        let numel = usize::try_from(info.numel()).unwrap_or(usize::MAX);
        if out.len() != numel {
            return Err(Error::InvalidArgument(format!(
                "{name} has {numel} elements, the buffer {}",
                out.len()
            )));
        }
        self.read_range(entry, 0, out)
    }

    /// Calls `f` on consecutive chunks of parameter `name`'s values (f32),
    /// with each chunk's first element index; reads at most 4 MiB at a time.
    pub fn for_each_chunk(
        &self,
        name: &str,
        mut f: impl FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<()> {
        let (info, entry) = self.entry(name)?;
        let numel = usize::try_from(info.numel()).unwrap_or(usize::MAX);
        let mut buf = vec![0f32; numel.min(CHUNK_ELEMENTS)];
        let mut start = 0;
        while start < numel {
            let n = (numel - start).min(CHUNK_ELEMENTS);
            let chunk = &mut buf[..n];
            self.read_range(entry, start, chunk)?;
            f(start, chunk)?;
            start += n;
        }
        Ok(())
    }

    /// The revision (`docs/model.md`) of the parameters as stored, read and
    /// hashed tensor by tensor; equals the revision of a model loaded from it.
    pub fn revision(&self) -> Result<Digest> {
        let mut order: Vec<usize> = (0..self.inner.entries.len()).collect();
        order.sort_by(|&a, &b| {
            self.inner.entries[a]
                .0
                .name
                .cmp(&self.inner.entries[b].0.name)
        });
        let mut h = RevisionHasher::new(order.len());
        for i in order {
            let info = &self.inner.entries[i].0;
            h.begin_tensor(info)?;
            self.for_each_chunk(&info.name, |_, values| {
                h.update_values(values);
                Ok(())
            })?;
        }
        Ok(h.finalize())
    }

    fn entry(&self, name: &str) -> Result<(&ParamInfo, &Entry)> {
        let i = self
            .inner
            .index
            .get(name)
            .ok_or_else(|| Error::NotFound(format!("checkpoint parameter {name}")))?;
        let (info, entry) = &self.inner.entries[*i];
        Ok((info, entry))
    }

    /// Reads elements `first..first + out.len()` of `entry` into `out`.
    fn read_range(&self, entry: &Entry, first: usize, out: &mut [f32]) -> Result<()> {
        let path = &self.inner.path;
        let size = entry.dtype.size();
        let offset = (first as u64)
            .checked_mul(size)
            .and_then(|o| o.checked_add(entry.begin))
            .and_then(|o| o.checked_add(self.inner.data_start))
            .ok_or_else(|| Error::corrupt(INPUT, entry.name.clone(), "offset overflows"))?;
        let eof = |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Truncated {
                    input: INPUT,
                    what: format!(
                        "tensor {} (the file shrank after it was opened)",
                        entry.name
                    ),
                    needed: entry.end - entry.begin,
                    available: 0,
                }
            } else {
                Error::io(path, e)
            }
        };
        {
            let mut file = self
                .inner
                .file
                .lock()
                .map_err(|_| Error::Model("checkpoint file lock poisoned".into()))?;
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| Error::io(path, e))?;
            match entry.dtype {
                Dtype::F32 => file.read_exact(host::f32_bytes_mut(out)).map_err(eof)?,
                Dtype::F16 | Dtype::BF16 => {
                    let mut raw = vec![0u8; out.len() * 2];
                    file.read_exact(&mut raw).map_err(eof)?;
                    for (v, b) in out.iter_mut().zip(raw.chunks_exact(2)) {
                        let bits = u16::from_le_bytes([b[0], b[1]]);
                        *v = if entry.dtype == Dtype::F16 {
                            half::f16::from_bits(bits).to_f32()
                        } else {
                            half::bf16::from_bits(bits).to_f32()
                        };
                    }
                }
            }
        }
        if let Some(i) = out.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: format!("checkpoint tensor {}", entry.name),
                index: (first + i) as u64,
            });
        }
        Ok(())
    }
}

/// Checks that the file's tensors are exactly `config`'s parameters; returns
/// the entries in layout order.
fn match_layout(entries: Vec<Entry>, config: &Config) -> Result<Vec<(ParamInfo, Entry)>> {
    let specs = params::layout(config);
    let mut by_name: HashMap<String, Entry> =
        entries.into_iter().map(|e| (e.name.clone(), e)).collect();
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let Some(entry) = by_name.remove(&spec.info.name) else {
            return Err(Error::corrupt(
                INPUT,
                spec.info.name,
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
        out.push((spec.info, entry));
    }
    let mut extra: Vec<&String> = by_name.keys().filter(|n| !is_ignored_buffer(n)).collect();
    extra.sort();
    if let Some(name) = extra.first() {
        let reason = if name.as_str() == "lm_head.weight" && config.tie_word_embeddings {
            "the config ties embeddings (tie_word_embeddings), so the checkpoint must not \
             have an lm_head"
        } else {
            "not a parameter of the config's model"
        };
        return Err(Error::corrupt(INPUT, (*name).clone(), reason));
    }
    Ok(out)
}
