//! The model's revision: a BLAKE3 digest of its parameters' names, shapes,
//! dtypes and bytes.
//!
//! The byte stream hashed (all integers u64 little-endian):
//!
//! ```text
//! "bistro.model.revision.v1"           24 ASCII bytes
//! count                                number of tensors
//! for each tensor, sorted by name (bytewise):
//!     len(name)  name                  UTF-8
//!     len(dtype) dtype                 "F32"
//!     rank       dims[0] .. dims[rank-1]
//!     len(data)  data                  the f32 values, little-endian
//! ```
//!
//! The tensors are those of the safetensors checkpoint (no `lm_head.weight`
//! when embeddings are tied), so the revision can be recomputed from a saved
//! file alone, and it is the same before saving and after loading.

use super::host;
use super::params::ParamInfo;
use super::transformer::Model;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};

/// The domain-separation prefix of the revision stream.
pub const REVISION_DOMAIN: &[u8; 24] = b"bistro.model.revision.v1";

/// Feeds the revision stream: tensors in name order, each announced with
/// [`begin_tensor`](Self::begin_tensor) and followed by all of its values.
pub(crate) struct RevisionHasher {
    h: Hasher,
}

impl RevisionHasher {
    pub fn new(count: usize) -> RevisionHasher {
        let mut h = Hasher::new();
        h.update(REVISION_DOMAIN);
        h.update(&(count as u64).to_le_bytes());
        RevisionHasher { h }
    }

    pub fn begin_tensor(&mut self, info: &ParamInfo) -> Result<()> {
        let h = &mut self.h;
        h.update(&(info.name.len() as u64).to_le_bytes());
        h.update(info.name.as_bytes());
        h.update(&3u64.to_le_bytes());
        h.update(b"F32");
        h.update(&(info.shape.len() as u64).to_le_bytes());
        for &d in &info.shape {
            h.update(&(d as u64).to_le_bytes());
        }
        let bytes = info
            .numel()
            .checked_mul(4)
            .ok_or_else(|| Error::Model(format!("{} is too large", info.name)))?;
        h.update(&bytes.to_le_bytes());
        Ok(())
    }

    pub fn update_values(&mut self, values: &[f32]) {
        self.h.update(host::f32_bytes(values));
    }

    pub fn finalize(&self) -> Digest {
        self.h.finalize()
    }
}

impl Model {
    /// The content digest of the parameters (see `docs/model.md`). Hashes
    /// every byte of the model (BLAKE3 on all cores: well under a second per
    /// GB on a few cores).
    pub fn revision(&self) -> Result<Digest> {
        let order = self.sorted_indices();
        let mut h = RevisionHasher::new(order.len());
        for i in order {
            h.begin_tensor(&self.specs[i].info)?;
            host::read(&self.tensors[i], |values| h.update_values(values))?;
        }
        Ok(h.finalize())
    }
}
