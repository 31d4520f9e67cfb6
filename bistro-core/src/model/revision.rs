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
use super::transformer::Model;
use crate::digest::{Digest, Hasher};
use crate::error::Result;

/// The domain-separation prefix of the revision stream.
pub const REVISION_DOMAIN: &[u8; 24] = b"bistro.model.revision.v1";

impl Model {
    /// The content digest of the parameters (see `docs/model.md`). Hashes
    /// every byte of the model: about a second per GB of parameters per core.
    pub fn revision(&self) -> Result<Digest> {
        let mut h = Hasher::new();
        let order = self.sorted_indices();
        h.update(REVISION_DOMAIN);
        h.update(&(order.len() as u64).to_le_bytes());
        for i in order {
            let info = &self.specs[i].info;
            h.update(&(info.name.len() as u64).to_le_bytes());
            h.update(info.name.as_bytes());
            h.update(&3u64.to_le_bytes());
            h.update(b"F32");
            h.update(&(info.shape.len() as u64).to_le_bytes());
            for &d in &info.shape {
                h.update(&(d as u64).to_le_bytes());
            }
            host::read(&self.tensors[i], |values| {
                let bytes = host::f32_bytes(values);
                h.update(&(bytes.len() as u64).to_le_bytes());
                h.update(bytes);
            })?;
        }
        Ok(h.finalize())
    }
}
