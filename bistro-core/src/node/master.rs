//! The master checkpoint: fetching and verifying it, publishing a new one.

use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::model::outer::OuterState;
use crate::model::{Checkpoint, Config, Device, Model};
use crate::storage::Bucket;
use crate::storage::keys::{
    MASTER_CONFIG_FILE, MASTER_GENERATION_CONFIG_FILE, MasterPointer, master_file_key,
    outer_state_key, publish_master, read_master_pointer,
};
use crate::util::atomic::unique_name_part;

/// A master checkpoint on local disk whose content digest was checked
/// against the pointer that named it.
#[derive(Clone, Debug)]
pub struct LocalMaster {
    /// The pointer it was published under.
    pub pointer: MasterPointer,
    /// The open checkpoint file.
    pub checkpoint: Checkpoint,
}

impl LocalMaster {
    /// The master's revision.
    pub fn revision(&self) -> Digest {
        self.pointer.revision
    }

    /// Loads it as a model.
    pub fn load(&self, config: &Config, device: Device) -> Result<Model> {
        Model::load(self.checkpoint.path(), config.clone(), device)
    }
}

/// The largest master checkpoint accepted for `config`: f32 parameters plus
/// a generous allowance for the safetensors header.
pub fn max_master_bytes(config: &Config) -> u64 {
    config
        .parameter_count()
        .saturating_mul(4)
        .saturating_add(16 << 20)
}

/// Where a master lives in a cache folder. Only a verified checkpoint ever
/// takes this name (a download is verified under a temporary name first;
/// a saved master is the model's own bytes), so a file here is not hashed
/// again. (The name differs from the one older versions downloaded into
/// directly, unverified until after: their files are not trusted.)
fn cache_path(cache_dir: &Path, revision: &Digest) -> PathBuf {
    cache_dir.join(format!("verified-master-{}.safetensors", revision.to_hex()))
}

/// Reads the master pointer from `bucket` and makes sure its checkpoint is
/// in `cache_dir` with the right content (downloading it when missing or
/// different). `Ok(None)` when no master has been published yet.
///
/// A download whose content does not hash to the pointer's revision is
/// deleted and reported as [`Error::DigestMismatch`].
pub fn fetch_master(
    bucket: &dyn Bucket,
    cache_dir: &Path,
    config: &Config,
) -> Result<Option<LocalMaster>> {
    let Some(pointer) = read_master_pointer(bucket)? else {
        return Ok(None);
    };
    fetch_pointed(bucket, cache_dir, config, pointer).map(Some)
}

/// Makes sure the checkpoint `pointer` names is in `cache_dir`, downloading
/// it from `bucket` when it is not. A download is verified (its content
/// must hash to the revision, else it is deleted and reported as
/// [`Error::DigestMismatch`]) before it takes its name in the cache, so a
/// file there was verified once and is not hashed again: only opened.
pub fn fetch_pointed(
    bucket: &dyn Bucket,
    cache_dir: &Path,
    config: &Config,
    pointer: MasterPointer,
) -> Result<LocalMaster> {
    std::fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
    let path = cache_path(cache_dir, &pointer.revision);
    if let Ok(checkpoint) = Checkpoint::open(&path, config) {
        return Ok(LocalMaster {
            pointer,
            checkpoint,
        });
    }
    let partial = path.with_extension(format!("{}.partial", unique_name_part()));
    let verified = bucket
        .get_to_file(&pointer.key, &partial, max_master_bytes(config))
        .and_then(|_| Checkpoint::open(&partial, config))
        .and_then(|checkpoint| {
            let computed = checkpoint.revision()?;
            if computed != pointer.revision {
                return Err(Error::DigestMismatch {
                    what: format!("master checkpoint {}", pointer.key),
                    expected: pointer.revision,
                    computed,
                });
            }
            Ok(())
        })
        .and_then(|()| std::fs::rename(&partial, &path).map_err(|e| Error::io(&path, e)));
    if let Err(e) = verified {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    Ok(LocalMaster {
        pointer,
        checkpoint: Checkpoint::open(&path, config)?,
    })
}

/// Saves `model` into `cache_dir` and publishes it to `bucket` at `block`:
/// its folder's `config.json` and `generation_config.json`
/// ([`publish_hf_files`]), the checkpoint, then the pointer, so readers
/// never see a pointer to a missing or partial master.
pub fn publish_model(
    model: &Model,
    bucket: &dyn Bucket,
    cache_dir: &Path,
    block: u64,
) -> Result<LocalMaster> {
    let saved = save_master(model, cache_dir, block)?;
    publish_saved(&saved, bucket, model.config())
}

/// Saves `model` into `cache_dir` as the master of `block`, publishing
/// nothing (a validator's genesis before [`publish_saved`]).
pub fn save_master(model: &Model, cache_dir: &Path, block: u64) -> Result<LocalMaster> {
    std::fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
    let revision = model.revision()?;
    let path = cache_path(cache_dir, &revision);
    model.save(&path)?;
    let checkpoint = Checkpoint::open(&path, model.config())?;
    let size = std::fs::metadata(&path)
        .map_err(|e| Error::io(&path, e))?
        .len();
    Ok(LocalMaster {
        pointer: MasterPointer::new(revision, block, size),
        checkpoint,
    })
}

/// Publishes a saved master to `bucket` as [`publish_model`] does (HF
/// files, checkpoint, then pointer).
pub fn publish_saved(
    master: &LocalMaster,
    bucket: &dyn Bucket,
    config: &Config,
) -> Result<LocalMaster> {
    let revision = master.revision();
    publish_hf_files(bucket, &revision, config)?;
    let pointer = publish_master(
        bucket,
        master.checkpoint.path(),
        revision,
        master.pointer.block,
    )?;
    Ok(LocalMaster {
        pointer,
        checkpoint: master.checkpoint.clone(),
    })
}

/// Writes the files that make master `revision`'s folder an HF model folder
/// besides its checkpoint (`config.json`, `generation_config.json`), so that
/// `transformers`' `from_pretrained` loads the folder as published.
pub fn publish_hf_files(bucket: &dyn Bucket, revision: &Digest, config: &Config) -> Result<()> {
    let files = [
        (MASTER_CONFIG_FILE, config.to_hf_json()?),
        (
            MASTER_GENERATION_CONFIG_FILE,
            config.generation_config_json()?,
        ),
    ];
    for (file, mut text) in files {
        text.push('\n');
        bucket.put(&master_file_key(revision, file), text.as_bytes())?;
    }
    Ok(())
}

fn outer_cache_path(cache_dir: &Path, revision: &Digest) -> PathBuf {
    cache_dir.join(format!("master-{}.outer", revision.to_hex()))
}

/// The outer optimizer state that goes with `master`: from `cache_dir` when
/// it is there and valid, otherwise downloaded from `bucket` (where it is
/// published beside the master). `Ok(None)` when the bucket has none (a
/// genesis master, or one published without a state: its momentum is
/// zero). A state that is corrupt, of another version or model shape, or
/// for another master is an error: a validator never merges from it.
pub fn fetch_outer_state(
    bucket: &dyn Bucket,
    cache_dir: &Path,
    master: &LocalMaster,
    config: &Config,
) -> Result<Option<OuterState>> {
    std::fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
    let revision = master.revision();
    let path = outer_cache_path(cache_dir, &revision);
    let cached_error = if path.exists() {
        match OuterState::load(&path, config, revision) {
            Ok(state) => return Ok(Some(state)),
            Err(e) => Some(e),
        }
    } else {
        None
    };
    match bucket.get_to_file(&outer_state_key(&revision), &path, max_master_bytes(config)) {
        Ok(_) => {}
        Err(Error::NotFound(_)) => return cached_error.map_or(Ok(None), Err),
        Err(e) => return Err(e),
    }
    OuterState::load(&path, config, revision).map(Some)
}

/// Saves `state` into `cache_dir` and uploads it beside its master (call it
/// before [`publish_model`], so that a reader who finds the pointer finds
/// the state too).
pub fn publish_outer_state(
    state: &OuterState,
    bucket: &dyn Bucket,
    cache_dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
    let path = outer_cache_path(cache_dir, &state.master());
    state.save(&path)?;
    bucket.put_file(&outer_state_key(&state.master()), &path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalBucket;
    use crate::storage::keys::master_key;

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_master_is_verified_once_when_downloaded_and_a_bad_one_never_enters_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::preset("tiny").unwrap();
        let bucket = LocalBucket::create(dir.path().join("bucket")).unwrap();
        let model = Model::new(config.clone(), 1, Device::Cpu).unwrap();
        let published = publish_model(&model, &bucket, &dir.path().join("own"), 5).unwrap();
        let cache = dir.path().join("cache");
        let fetched = fetch_pointed(&bucket, &cache, &config, published.pointer.clone()).unwrap();
        assert_eq!(fetched.revision(), model.revision().unwrap());
        let name = format!(
            "verified-master-{}.safetensors",
            fetched.revision().to_hex()
        );
        assert_eq!(files(&cache), std::slice::from_ref(&name));
        // Cached: served without the bucket.
        bucket.delete(&master_key(&fetched.revision())).unwrap();
        let again = fetch_pointed(&bucket, &cache, &config, published.pointer.clone()).unwrap();
        assert_eq!(again.checkpoint.path(), fetched.checkpoint.path());

        // A pointer whose checkpoint is another model's: refused, and
        // nothing (not even a partial download) is left in the cache.
        let other = Model::new(config.clone(), 2, Device::Cpu).unwrap();
        let other_path = dir.path().join("other.safetensors");
        other.save(&other_path).unwrap();
        let claimed = Digest::of(b"not the other model");
        bucket.put_file(&master_key(&claimed), &other_path).unwrap();
        let lying = MasterPointer::new(claimed, 6, 0);
        assert!(matches!(
            fetch_pointed(&bucket, &cache, &config, lying),
            Err(Error::DigestMismatch { .. })
        ));
        assert_eq!(files(&cache), [name]);
    }
}
