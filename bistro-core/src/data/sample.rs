//! The sample corpus shipped with the repository in `data/sample/`: the six
//! novels of Jane Austen (public domain), GPT-2 tokens, as a training split
//! and a held-out split for the validator's held-out evaluation. Source,
//! licence and the command that rebuilt the shards are in
//! `data/sample/README.md`.

use std::path::{Path, PathBuf};

use super::shard::ShardSource;
use crate::error::{Error, Result};

/// Environment variable that overrides where the sample shards are.
pub const SAMPLE_DIR_ENV: &str = "BISTRO_SAMPLE_DIR";

/// The directory of the sample shards: `$BISTRO_SAMPLE_DIR` if set, else
/// `data/sample` of the source tree this crate was built from.
pub fn dir() -> PathBuf {
    match std::env::var_os(SAMPLE_DIR_ENV) {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sample"),
    }
}

/// The shard files of a split (`"train"` or `"heldout"`): files named
/// `<split>-NNN.shard` in [`dir`], in name order.
pub fn split_paths(split: &str) -> Result<Vec<PathBuf>> {
    let dir = dir();
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        Error::Unavailable(format!(
            "sample corpus directory {} ({e}); set {SAMPLE_DIR_ENV}",
            dir.display()
        ))
    })?;
    let prefix = format!("{split}-");
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(&dir, e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with(&prefix) && name.ends_with(".shard") {
            paths.push(path);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(Error::Unavailable(format!(
            "no {prefix}*.shard files in {}",
            dir.display()
        )));
    }
    Ok(paths)
}

/// The training split.
pub fn train() -> Result<ShardSource> {
    ShardSource::open(&split_paths("train")?)
}

/// The held-out split (chapters never in the training split).
pub fn heldout() -> Result<ShardSource> {
    ShardSource::open(&split_paths("heldout")?)
}
