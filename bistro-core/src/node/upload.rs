//! Writing, signing and uploading one delta.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use crate::codec::{DeltaHeader, DeltaWriter, Limits};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::identity::Keypair;
use crate::node::sealing::SealTarget;
use crate::storage::keys::delta_key;
use crate::storage::{Bucket, write_file_atomic};

/// The file type a delta is written through before upload.
pub type DeltaFileWriter = DeltaWriter<BufWriter<File>>;

/// What [`upload_delta`] stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// The object's key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// The delta's content digest (its footer, inside the envelope).
    pub digest: Digest,
    /// BLAKE3 of the uploaded bytes (the envelope), named in the key.
    pub object_digest: Digest,
}

/// Writes a delta with `header` into a temporary file in `scratch_dir`
/// (tensors added by `fill`), signs it with `keypair` (the header's hotkey),
/// seals it to `seal` (`node::sealing`: no one can read it before the
/// deadline) and uploads the envelope under the delta's key, which names
/// the envelope's digest (`deltas/<hotkey>/<block>-<digest>.delta`). The upload is atomic; the temporary
/// files are removed whatever happens.
pub fn upload_delta(
    bucket: &dyn Bucket,
    scratch_dir: &Path,
    keypair: &Keypair,
    header: DeltaHeader,
    limits: &Limits,
    seal: &SealTarget,
    fill: impl FnOnce(&mut DeltaFileWriter) -> Result<()>,
) -> Result<Uploaded> {
    std::fs::create_dir_all(scratch_dir).map_err(|e| Error::io(scratch_dir, e))?;
    let path = scratch_dir.join(format!(
        "upload-{}-{}.delta.tmp",
        header.hotkey.to_ss58(),
        header.block
    ));
    let result = write_and_put(bucket, &path, keypair, header, limits, seal, fill);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("sealed"));
    result
}

fn write_and_put(
    bucket: &dyn Bucket,
    path: &Path,
    keypair: &Keypair,
    header: DeltaHeader,
    limits: &Limits,
    seal: &SealTarget,
    fill: impl FnOnce(&mut DeltaFileWriter) -> Result<()>,
) -> Result<Uploaded> {
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut writer = DeltaWriter::new(BufWriter::new(file), &header, limits)?;
    fill(&mut writer)?;
    let (out, digest) = writer.finish_signed(keypair)?;
    let file = out
        .into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?;
    drop(file);
    let plain = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let sealed = crate::seal::seal(&plain, &seal.beacon, seal.round)?;
    let sealed_path = path.with_extension("sealed");
    write_file_atomic(&sealed_path, &sealed)?;
    let object_digest = Digest::of(&sealed);
    let key = delta_key(&header.hotkey, header.block, &object_digest);
    bucket.put_file(&key, &sealed_path)?;
    Ok(Uploaded {
        key,
        size: sealed.len() as u64,
        digest,
        object_digest,
    })
}
